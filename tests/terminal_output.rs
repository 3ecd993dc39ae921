//! Stored text reaches a terminal harmless: tickets, traces and memories holding escape
//! sequences (an OSC 52 clipboard write, a title change, a screen clear, 8-bit CSI) and
//! bidi overrides, shown by the real binary. Human-readable output holds none of what a
//! terminal acts on, and shows it escaped; `--json` holds none of it either, and reads
//! back as exactly the original text.

use crate::common;

use common::Env;
use serde_json::{Value, json};
use shopfloor::safe_text::is_unsafe;

/// Text an agent, a transcript or a ticket's author controls.
const HOSTILE: &str = "pwned\x1b]52;c;cHduZWQ=\x07 \x1b]0;title\x07 \x1b[2J \u{9b}2J \u{202e}txt.exe\u{2066}x\u{2069} \x7f end";

/// What `for_terminal` shows of it: every sequence visible, nothing executed.
const SHOWN: &str = r"pwned\x1b]52;c;cHduZWQ=\x07 \x1b]0;title\x07 \x1b[2J \u{9b}2J \u{202e}txt.exe\u{2066}x\u{2069} \x7f end";

fn assert_terminal_safe(what: &str, out: &str) {
    let bad: Vec<String> = out
        .chars()
        .filter(|&c| is_unsafe(c))
        .map(|c| format!("{c:?}"))
        .collect();
    assert!(bad.is_empty(), "{what} prints {bad:?}:\n{out}");
}

fn workspace() -> (Env, u64) {
    let env = Env::new();
    env.ok(&["workspace", "create", "w"]);
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("hostile.jsonl");
    let lines = [
        json!({"type": "user_message", "text": HOSTILE}),
        json!({"type": "agent_message", "text": HOSTILE}),
        json!({"type": "tool_call", "call_id": "c1", "name": "Bash", "input": json!({"command": HOSTILE}).to_string()}),
        json!({"type": "tool_result", "call_id": "c1", "output": HOSTILE, "is_error": false}),
        json!({"type": "command", "argv": ["printf", HOSTILE], "exit_code": 0, "output": HOSTILE}),
        json!({"type": "error", "message": HOSTILE}),
    ];
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(&trace, text.join("\n") + "\n").unwrap();
    let report = env.json(&[
        "trace",
        "import",
        trace.to_str().unwrap(),
        "--agent",
        &format!("agent {HOSTILE}"),
        "--json",
    ]);
    let run = report["run"].as_u64().unwrap();
    (env, run)
}

#[test]
fn human_output_shows_escape_sequences_and_executes_none() {
    let (env, run) = workspace();
    let run = run.to_string();
    let title = format!("ticket {HOSTILE}");
    let body = format!("body line\n{HOSTILE}\nlast line");
    let added = env.ok(&["ticket", "add", &title, "--body", &body]);
    assert_terminal_safe("ticket add", &added);
    env.ok(&["memory", "add", &format!("memory {HOSTILE}")]);

    let shown = env.ok(&["ticket", "show", "1"]);
    assert_terminal_safe("ticket show", &shown);
    assert!(
        shown.contains(&format!("title     ticket {SHOWN}")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("body line\n{SHOWN}\nlast line")),
        "{shown}"
    );

    let mut outputs = vec![
        ("ticket list", env.ok(&["ticket", "list"])),
        ("trace list", env.ok(&["trace", "list"])),
        ("trace show", env.ok(&["trace", "show", &run])),
        ("trace search", env.ok(&["trace", "search", "pwned"])),
        ("run list", env.ok(&["run", "list"])),
        ("run show", env.ok(&["run", "show", &run])),
        ("run logs", env.ok(&["run", "logs", &run])),
        (
            "memory search",
            env.ok(&["memory", "search", "pwned memory"]),
        ),
        ("workspace show", env.ok(&["workspace", "show"])),
        ("audit", env.ok(&["audit"])),
    ];
    for step in 0..6 {
        let s = step.to_string();
        outputs.push((
            "trace show --step",
            env.ok(&["trace", "show", &run, "--step", &s]),
        ));
    }
    for (what, out) in &outputs {
        assert_terminal_safe(what, out);
    }
    let steps: Vec<&String> = outputs
        .iter()
        .filter(|(w, _)| *w == "trace show --step")
        .map(|(_, o)| o)
        .collect();
    // Each step shows the text whole, escaped; the agent's name too.
    for out in &steps {
        assert!(out.contains(SHOWN), "{out}");
        assert!(out.contains(&format!("agent {SHOWN}")), "{out}");
    }
    // One-line views show the text escaped, cut to their width.
    let memory = &outputs[7].1;
    assert!(memory.contains(r"memory pwned\x1b]52;c;"), "{memory}");
}

#[test]
fn json_output_is_terminal_safe_and_reads_back_exactly() {
    let (env, run) = workspace();
    let run = run.to_string();
    let title = format!("ticket {HOSTILE}");
    env.ok(&["ticket", "add", &title, "--body", HOSTILE]);

    let raw = env.ok(&["ticket", "show", "1", "--json"]);
    assert_terminal_safe("ticket show --json", &raw);
    assert!(raw.contains(r"\u001b]52;c;"), "{raw}");
    assert!(
        raw.contains(r"\u009b2J \u202etxt.exe\u2066x\u2069 \u007f"),
        "{raw}"
    );
    let t: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(t["title"], title.as_str());
    assert_eq!(t["body"], HOSTILE);

    let raw = env.ok(&["trace", "show", &run, "--step", "1", "--json"]);
    assert_terminal_safe("trace show --step --json", &raw);
    let step: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(step["text"], HOSTILE);
    assert_eq!(step["agent"], format!("agent {HOSTILE}").as_str());

    for (what, args) in [
        ("trace show --json", vec!["trace", "show", &run, "--json"]),
        ("run logs --json", vec!["run", "logs", &run, "--json"]),
    ] {
        let raw = env.ok(&args);
        assert_terminal_safe(what, &raw);
        let texts: Vec<Value> = raw
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect();
        assert_eq!(texts.len(), 6, "{what}");
        assert_eq!(texts[1]["text"], HOSTILE, "{what}");
        assert_eq!(texts[4]["argv"][1], HOSTILE, "{what}");
    }
    for (what, args) in [
        ("ticket list --json", vec!["ticket", "list", "--json"]),
        ("run show --json", vec!["run", "show", &run, "--json"]),
        ("trace list --json", vec!["trace", "list", "--json"]),
    ] {
        let raw = env.ok(&args);
        assert_terminal_safe(what, &raw);
        serde_json::from_str::<Value>(&raw).unwrap();
    }
}

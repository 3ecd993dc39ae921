//! Claude Code hooks through the real binary: `connect claude-code --hooks` installs them,
//! and `shopfloor hook claude-code`, fed real hook payloads over a real session transcript
//! that grows between events, records the session as exactly one run, with every step
//! once, finished at `Stop`; on the store directly and through a running factory.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::serve::{Serve, wait_for_socket};
use common::{Env, fixtures};
use serde_json::{Value, json};

const WS: &str = "ws";

fn setup() -> Env {
    let env = Env::new();
    env.ok(&["workspace", "create", WS]);
    env
}

/// A real Claude Code session log with tool calls, results and file edits.
fn fixture() -> PathBuf {
    fixtures()
        .expect("the test checked with have_fixtures() first")
        .join("claude-code/transcripts/v2.1.29-edit-permission-dialog.jsonl")
}

/// Whether the shared agent logs are here; a test on them skips (one line) when not.
fn have_fixtures() -> bool {
    fixtures().is_some()
}

/// `shopfloor hook claude-code --workspace ws` with `payload` on stdin: (stdout, stderr),
/// asserting it exits 0, as a hook always must.
fn hook(env: &Env, payload: &[u8]) -> (String, String) {
    let out = env
        .cmd()
        .args(["hook", "claude-code", "--workspace", WS])
        .write_stdin(payload.to_vec())
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "a hook must exit 0: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn payload(event: &str, session: &str, transcript: &Path, cwd: &Path) -> Vec<u8> {
    let mut p = json!({
        "session_id": session,
        "transcript_path": transcript,
        "cwd": cwd,
        "hook_event_name": event,
        "permission_mode": "default",
    });
    if event == "PostToolUse" {
        p["tool_name"] = json!("Edit");
        p["tool_input"] =
            json!({"file_path": "/tmp/workspace/x.txt", "old_string": "a", "new_string": "b"});
        p["tool_response"] = json!({"filePath": "/tmp/workspace/x.txt", "success": true});
    } else {
        p["stop_hook_active"] = json!(false);
    }
    serde_json::to_vec(&p).unwrap()
}

/// Copy the first `n` lines of the fixture to `dst` (all of them for None).
fn grow(dst: &Path, n: Option<usize>) {
    let text = std::fs::read_to_string(fixture()).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let take = n.unwrap_or(lines.len());
    std::fs::write(dst, lines[..take].concat()).unwrap();
}

fn fixture_lines() -> usize {
    std::fs::read_to_string(fixture()).unwrap().lines().count()
}

/// A run's steps as `trace show --json` prints them, without what legitimately differs
/// between two runs of the same transcript (the run id; the time of steps that carry
/// none, which is the time they were read).
fn steps_of(env: &Env, run: u64) -> Vec<Value> {
    env.ok(&["trace", "show", &run.to_string(), "--json"])
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("run");
            o.remove("ts");
            v
        })
        .collect()
}

fn session_runs(env: &Env, session: &str) -> Vec<Value> {
    let runs = env.json(&["run", "list", "--json"]);
    runs.as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["source"]
                .as_str()
                .unwrap()
                .starts_with(&format!("claude-code session {session}: "))
        })
        .cloned()
        .collect()
}

/// Two events over a growing transcript, then the checks; returns the session's run id.
fn record_session(env: &Env, dir: &Path, session: &str) -> u64 {
    let transcript = dir.join(format!("{session}.jsonl"));
    let half = fixture_lines() / 2;
    grow(&transcript, Some(half));
    let (out, err) = hook(
        env,
        &payload("PostToolUse", session, &transcript, &env.repo_path()),
    );
    assert_eq!(out, "", "a hook prints nothing on stdout");
    assert_eq!(err, "", "{err}");
    let runs = session_runs(env, session);
    assert_eq!(runs.len(), 1, "{runs:#?}");
    let first_steps = runs[0]["steps"].as_u64().unwrap();
    assert!(first_steps > 0);
    assert_eq!(runs[0]["state"], "imported");
    assert_eq!(runs[0]["ended"], Value::Null);

    grow(&transcript, None);
    let (out, err) = hook(
        env,
        &payload("Stop", session, &transcript, &env.repo_path()),
    );
    assert_eq!((out.as_str(), err.as_str()), ("", ""));
    let runs = session_runs(env, session);
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert!(runs[0]["steps"].as_u64().unwrap() > first_steps);
    assert_eq!(runs[0]["state"], "succeeded");
    assert_ne!(runs[0]["ended"], Value::Null);
    assert_eq!(runs[0]["agent"], "claude-code");

    // The same event again appends nothing.
    hook(
        env,
        &payload("Stop", session, &transcript, &env.repo_path()),
    );
    let again = session_runs(env, session);
    assert_eq!(again[0]["steps"], runs[0]["steps"]);
    runs[0]["id"].as_u64().unwrap()
}

/// The session's run holds exactly what importing the whole transcript at once gives:
/// every step, each once, in order.
fn assert_same_as_import(env: &Env, run: u64) {
    let imported = env.json(&["trace", "import", fixture().to_str().unwrap(), "--json"]);
    let import_run = imported["run"].as_u64().unwrap();
    let synced = steps_of(env, run);
    let whole = steps_of(env, import_run);
    assert_eq!(synced.len(), whole.len());
    for (i, s) in synced.iter().enumerate() {
        assert_eq!(
            s["seq"], i as u64,
            "seqs are dense: no step twice, none lost"
        );
    }
    assert_eq!(synced, whole);
}

#[test]
fn connect_installs_the_hooks_next_to_the_users_own() {
    let env = setup();
    let home = tempfile::tempdir().unwrap();
    let settings = env.repo_path().join(".claude/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    let original = r#"{
  // team settings
  "permissions": { "allow": ["Bash(cargo test:*)"] },
  "hooks": {
    "PostToolUse": [
      { "matcher": "Edit|Write", "hooks": [{ "type": "command", "command": "cargo fmt" }] }
    ]
  }
}
"#;
    std::fs::write(&settings, original).unwrap();
    let run = |args: &[&str]| {
        let out = env
            .cmd()
            .env("HOME", home.path())
            .args(["connect", "claude-code", "--hooks", "--workspace", WS])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let out = run(&[]);
    assert!(
        out.contains(&format!(
            "{}: added hooks.PostToolUse, hooks.Stop",
            settings.display()
        )),
        "{out}"
    );
    let text = std::fs::read_to_string(&settings).unwrap();
    assert!(text.starts_with(
        "{\n  // team settings\n  \"permissions\": { \"allow\": [\"Bash(cargo test:*)\"] },\n"
    ));
    assert!(text.contains(
        "      { \"matcher\": \"Edit|Write\", \"hooks\": [{ \"type\": \"command\", \"command\": \"cargo fmt\" }] },\n"
    ));
    let exe = assert_cmd::cargo::cargo_bin("shopfloor")
        .canonicalize()
        .unwrap();
    let command = format!("{} hook claude-code --workspace ws", exe.display());
    let v = jsonc(&text);
    assert_eq!(
        v["hooks"]["PostToolUse"][1],
        json!({"matcher": "*", "hooks": [{"type": "command", "command": command}]})
    );
    assert_eq!(
        v["hooks"]["Stop"],
        json!([{"hooks": [{"type": "command", "command": command}]}])
    );
    // The MCP entry went in too.
    assert!(env.repo_path().join(".mcp.json").exists());

    // Idempotent.
    let out = run(&[]);
    assert!(
        out.contains("hooks.PostToolUse, hooks.Stop already up to date"),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), text);

    // User scope goes under $HOME.
    run(&["--scope", "user"]);
    let user = jsonc(&std::fs::read_to_string(home.path().join(".claude/settings.json")).unwrap());
    assert_eq!(
        user["hooks"]["Stop"][0]["hooks"][0]["command"],
        command.as_str()
    );
}

fn jsonc(text: &str) -> Value {
    // Comments out, for serde_json: the hooks test's files have only `//` line comments.
    let plain: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    serde_json::from_str(&plain).unwrap()
}

#[test]
fn a_session_becomes_one_run_with_no_factory() {
    if !have_fixtures() {
        return;
    }
    let env = setup();
    let dir = tempfile::tempdir().unwrap();
    let run = record_session(&env, dir.path(), "c2fc3a3f-direct");
    assert_same_as_import(&env, run);
    // A second session is a second run.
    let other = record_session(&env, dir.path(), "another-session");
    assert_ne!(run, other);
    // Its steps are searchable like any run's.
    let hits = env.ok(&["trace", "search", "permission", "--run", &run.to_string()]);
    assert!(!hits.trim().is_empty(), "{hits}");
}

/// A running `shopfloor serve --paused` whose socket answers.
fn serve_paused(env: &Env) -> Serve {
    let s = Serve::paused(env);
    wait_for_socket(&env.home.path().join(WS).join("factory.sock"));
    s
}

#[test]
fn a_session_becomes_one_run_through_a_running_factory() {
    if !have_fixtures() {
        return;
    }
    let env = setup();
    let dir = tempfile::tempdir().unwrap();
    let server = serve_paused(&env);
    // The factory holds the store's lock, so the hook can only have succeeded (no stderr,
    // checked inside) by going through its socket.
    let run = record_session(&env, dir.path(), "c2fc3a3f-remote");
    assert_same_as_import(&env, run);
    drop(server);
    // And it is all there once the factory is gone.
    assert_eq!(session_runs(&env, "c2fc3a3f-remote").len(), 1);
    assert_same_as_import(&env, run);
}

#[test]
fn odd_input_never_fails_the_session() {
    if !have_fixtures() {
        return;
    }
    let env = setup();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.jsonl");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "not the JSON object"),
        (b"not json at all".to_vec(), "not the JSON object"),
        (b"[1, 2, 3]".to_vec(), "not the JSON object"),
        (vec![0xff, 0xfe, 0x00], "not the JSON object"),
        (
            br#"{"hook_event_name": "Stop"}"#.to_vec(),
            "no `session_id`",
        ),
        (br#"{"session_id": "s"}"#.to_vec(), "no `transcript_path`"),
        (
            payload("Stop", "s", &missing, &env.repo_path()),
            "cannot read the transcript",
        ),
        (
            payload("Stop", "bad\u{7}id", &fixture(), &env.repo_path()),
            "not a session id",
        ),
    ];
    for (input, says) in cases {
        let (out, err) = hook(&env, &input);
        assert_eq!(out, "");
        assert!(
            err.contains("shopfloor hook: session not recorded"),
            "{err}"
        );
        assert!(err.contains(says), "expected `{says}` in: {err}");
    }
    // An unknown workspace is a note too, not a failure.
    let out = env
        .cmd()
        .args(["hook", "claude-code", "--workspace", "nope"])
        .write_stdin(payload("Stop", "s", &fixture(), &env.repo_path()))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
    // Nothing was recorded by any of it.
    assert_eq!(env.json(&["run", "list", "--json"]), json!([]));
}

#[test]
fn a_line_still_being_written_waits_for_the_next_event() {
    if !have_fixtures() {
        return;
    }
    let env = setup();
    let dir = tempfile::tempdir().unwrap();
    let transcript = dir.path().join("t.jsonl");
    let text = std::fs::read_to_string(fixture()).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    // Four whole lines and half of the fifth.
    let cut = lines[4].len() / 2;
    std::fs::write(
        &transcript,
        format!("{}{}", lines[..4].concat(), &lines[4][..cut]),
    )
    .unwrap();
    hook(
        &env,
        &payload("PostToolUse", "partial", &transcript, &env.repo_path()),
    );
    let runs = session_runs(&env, "partial");
    let raw = env.ok(&["trace", "show", &runs[0]["id"].to_string(), "--json"]);
    assert!(!raw.contains("malformed"), "a half line was parsed: {raw}");
    grow(&transcript, None);
    hook(
        &env,
        &payload("Stop", "partial", &transcript, &env.repo_path()),
    );
    assert_same_as_import(&env, runs[0]["id"].as_u64().unwrap());
}

/// A hook committed to the repository fires in the factory's own runs too; there the
/// factory records the run, so the hook records nothing.
#[test]
fn a_hook_inside_a_sandbox_does_nothing() {
    if !have_fixtures() {
        return;
    }
    let env = setup();
    let dir = tempfile::tempdir().unwrap();
    let transcript = dir.path().join("s.jsonl");
    grow(&transcript, None);
    let out = env
        .cmd()
        .args(["hook", "claude-code", "--workspace", WS])
        .env("SHOPFLOOR_SANDBOX", "worktree")
        .write_stdin(payload("Stop", "in-a-run", &transcript, &env.repo_path()))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert!(session_runs(&env, "in-a-run").is_empty());
}

/// With hooks and MCP both connected and no factory, neither waits on the other: the
/// `shopfloor mcp` session holding the store serves the workspace's socket, and the hooks
/// go through it (each MCP call once waited out a 5 s hold behind a hook). A factory that
/// starts then takes the store over at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_and_an_mcp_session_never_wait_on_each_other() {
    if !have_fixtures() {
        return;
    }
    use rmcp::ServiceExt;
    use rmcp::model::CallToolRequestParams;
    let env = setup();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("shopfloor"));
    cmd.args(["mcp", "-w", WS])
        .env("SHOPFLOOR_HOME", env.home.path())
        .env_remove("SHOPFLOOR_TOKEN")
        .env_remove("SHOPFLOOR_SOCKET")
        .stderr(std::process::Stdio::inherit());
    let mcp = ().serve(rmcp::transport::TokioChildProcess::new(cmd).unwrap()).await.unwrap();
    let call = |text: String| {
        let serde_json::Value::Object(args) = json!({"kind": "note", "text": text}) else {
            unreachable!()
        };
        CallToolRequestParams::new("memory_write").with_arguments(args)
    };
    mcp.call_tool(call("the session's first note".into()))
        .await
        .unwrap();
    let transcript = dir.path().join("live.jsonl");
    let total = fixture_lines();
    let mut call_ms = Vec::new();
    let mut hook_ms = Vec::new();
    for i in 1..=6 {
        grow(&transcript, Some(total * i / 6));
        let t = std::time::Instant::now();
        mcp.call_tool(call(format!("note {i}"))).await.unwrap();
        call_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let t = std::time::Instant::now();
        let event = if i == 6 { "Stop" } else { "PostToolUse" };
        let (_, err) = hook(&env, &payload(event, "live", &transcript, &env.repo_path()));
        assert_eq!(err, "", "{err}");
        hook_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    eprintln!("mcp calls between hooks, ms: {call_ms:.1?}; hooks, ms: {hook_ms:.1?}");
    call_ms.sort_by(f64::total_cmp);
    // Tens of milliseconds on a quiet machine (the README's figures); the bounds here leave
    // room for a loaded CI machine while still catching a call that waits out a hold (5 s).
    assert!(
        call_ms[call_ms.len() / 2] < 250.0 && call_ms.iter().all(|ms| *ms < 1000.0),
        "no MCP call waits behind a hook: {call_ms:?}"
    );
    assert!(
        hook_ms.iter().all(|ms| *ms < 4000.0),
        "no hook waits out the session's hold: {hook_ms:?}"
    );
    let runs = session_runs(&env, "live");
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["state"], "succeeded");

    // A factory starting now asks the session for the store and gets it at once; the
    // session's next call goes to the factory.
    let t = std::time::Instant::now();
    let server = serve_paused(&env);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let r = mcp
        .call_tool(call("after the factory".into()))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true));
    let health = env.json(&["workspace", "show", "--json"]);
    assert_eq!(health["name"], WS, "{health}");
    drop(server);
    let _ = mcp.cancel().await;
}

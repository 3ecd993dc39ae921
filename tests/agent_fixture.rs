//! The fixture agent, driven as the real binary (`shopfloor fixture-agent SCENARIO`) in a
//! real git repository holding the demo project: it must really do what it prints, and
//! what it prints must be Claude Code stream-json that the `claude-stream` importer reads.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use shopfloor::agent::{DecoderKind, OutputDecoder};
use shopfloor::model::{Lifecycle, StepKind};
use shopfloor::trace::{Draft, Format, parser};

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/scenarios")
        .join(format!("{name}.toml"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A temp git repository with the demo project committed.
fn demo_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/repo"),
        dir.path(),
    );
    git2::Repository::init(dir.path()).unwrap();
    common::commit_all(dir.path(), "demo");
    dir
}

fn agent(dir: &Path, scenario: &Path, prompt: &str) -> std::process::Output {
    Command::cargo_bin("shopfloor")
        .unwrap()
        .current_dir(dir)
        .env("SHOPFLOOR_PROMPT", prompt)
        .env_remove("SHOPFLOOR_MCP_URL")
        .env_remove("SHOPFLOOR_MODEL")
        .arg("fixture-agent")
        .arg(scenario)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap()
}

/// Stdout through the `claude-stream` importer, as `trace import` would read it.
fn parse(stdout: &[u8]) -> Vec<Draft> {
    let mut p = parser(Format::ClaudeStream);
    let mut out = Vec::new();
    for (i, line) in stdout.split(|&b| b == b'\n').enumerate() {
        if !line.is_empty() {
            p.feed(i as u64 + 1, line, &mut out);
        }
    }
    p.finish(&mut out);
    out
}

/// A compact label per draft: kind, plus the tool name for calls.
fn labels(drafts: &[Draft]) -> Vec<String> {
    drafts
        .iter()
        .map(|d| match &d.kind {
            StepKind::ToolCall { name, .. } => format!("call {name}"),
            StepKind::Lifecycle {
                event: Lifecycle::Started { .. },
            } => "started".into(),
            StepKind::Lifecycle {
                event: Lifecycle::Usage(_),
            } => "usage".into(),
            k => k.name().into(),
        })
        .collect()
}

#[test]
fn success_really_edits_runs_and_prints_claude_stream_json() {
    let repo = demo_repo();
    let out = agent(repo.path(), &scenario("success"), "Add Stock.release()");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The edits are real: the file changed on disk and the new test exists.
    let stock = std::fs::read_to_string(repo.path().join("inventory/stock.py")).unwrap();
    assert!(stock.contains("def release(self, sku, qty):"), "{stock}");
    assert!(
        stock.contains("def reserve(self, sku, qty):"),
        "kept the old code"
    );
    assert!(repo.path().join("tests/test_release.py").is_file());
    let git = git2::Repository::open(repo.path()).unwrap();
    let st = |p: &str| git.status_file(Path::new(p)).unwrap();
    assert_eq!(st("inventory/stock.py"), git2::Status::WT_MODIFIED);
    assert_eq!(st("tests/test_release.py"), git2::Status::WT_NEW);

    let drafts = parse(&out.stdout);
    assert_eq!(
        labels(&drafts),
        [
            "started",
            "user", // the prompt, echoed
            "agent",
            "thinking",
            "call Read",
            "tool_result",
            "call Write", // append = Write of old + new content
            "tool_result",
            "file_edit",
            "call Write",
            "tool_result",
            "file_edit",
            "call Bash",
            "tool_result",
            "command",
            "agent",
            "usage",
        ]
    );
    assert!(
        !drafts.iter().any(|d| d.kind.is_error()),
        "a passing run has no error steps"
    );
    let StepKind::FileEdit {
        path,
        before,
        after,
        patch,
    } = &drafts[8].kind
    else {
        panic!()
    };
    assert!(path.ends_with("inventory/stock.py"), "{path}");
    assert!(before.as_ref().unwrap().preview().contains("def reserve"));
    assert!(after.as_ref().unwrap().preview().contains("def release"));
    assert!(
        patch
            .preview()
            .contains("+    def release(self, sku, qty):")
    );
    let StepKind::Command {
        argv,
        exit_code,
        output,
    } = &drafts[14].kind
    else {
        panic!()
    };
    assert_eq!(argv[2], "python3 -m unittest discover -s tests");
    // Claude Code reports only a failing exit code (`Exit code N`); success reads as 0.
    assert_eq!(exit_code.unwrap_or(0), 0);
    assert!(output.preview().contains("OK"), "the command really ran");
    let StepKind::Lifecycle {
        event: Lifecycle::Usage(u),
    } = &drafts[16].kind
    else {
        panic!()
    };
    assert!(u.input_tokens > 0 && u.output_tokens > 0);
    assert!(u.cost_usd.is_some_and(|c| c > 0.0));
    assert_eq!(u.turns, Some(7));

    // The live decoder, fed in awkward chunks, sees the same steps.
    let mut d = OutputDecoder::new(DecoderKind::ClaudeStream);
    let mut live = Vec::new();
    for chunk in out.stdout.chunks(13) {
        live.extend(d.feed_stdout(chunk));
    }
    live.extend(d.finish());
    assert_eq!(labels(&live), labels(&drafts));
}

#[test]
fn a_failing_command_is_a_command_step_with_its_exit_code() {
    let repo = demo_repo();
    let out = agent(repo.path(), &scenario("breaks-tests"), "");
    // The agent claims success; its own test run shows the failure.
    assert_eq!(out.status.code(), Some(0));
    let drafts = parse(&out.stdout);
    let cmd = drafts
        .iter()
        .find_map(|d| match &d.kind {
            StepKind::Command { exit_code, .. } => Some(*exit_code),
            _ => None,
        })
        .expect("a Command step");
    assert_eq!(cmd, Some(1));
    let stock = std::fs::read_to_string(repo.path().join("inventory/stock.py")).unwrap();
    assert!(
        !stock.contains("raise OutOfStock"),
        "the check was really removed"
    );
}

#[test]
fn fail_exits_with_its_code_after_an_error_result() {
    let dir = tempfile::tempdir().unwrap();
    let sc = dir.path().join("fail.toml");
    std::fs::write(
        &sc,
        "name = \"f\"\n[[step]]\nsay = \"trying\"\n[[step]]\nfail = 3\n",
    )
    .unwrap();
    let out = agent(dir.path(), &sc, "x");
    assert_eq!(out.status.code(), Some(3));
    let drafts = parse(&out.stdout);
    assert_eq!(
        labels(&drafts),
        ["started", "user", "agent", "agent", "usage", "error"]
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("exit code 3"));
}

#[test]
fn fail_then_pass_needs_the_failed_assertion_in_the_prompt() {
    let repo = demo_repo();
    let first = agent(
        repo.path(),
        &scenario("fail-then-pass"),
        "Add Stock.release()",
    );
    assert_eq!(
        first.status.code(),
        Some(1),
        "tests fail without the lesson"
    );
    let drafts = parse(&first.stdout);
    assert!(drafts.iter().any(|d| matches!(
        d.kind,
        StepKind::Command {
            exit_code: Some(1),
            ..
        }
    )));
    assert!(matches!(
        drafts.last().map(|d| &d.kind),
        Some(StepKind::Error { .. })
    ));

    let retry = demo_repo();
    let second = agent(
        retry.path(),
        &scenario("fail-then-pass"),
        "Add Stock.release()\n\nLesson: attempt 1 failed:\n    AssertionError: -1 != 5",
    );
    assert_eq!(
        second.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&second.stdout)
    );
    // The memory write is printed as an MCP call; with no server it reports so.
    let drafts = parse(&second.stdout);
    let mcp = drafts
        .iter()
        .position(|d| {
            matches!(&d.kind, StepKind::ToolCall { name, .. } if name == "mcp__shopfloor__memory_write")
        })
        .expect("memory_write call");
    let StepKind::ToolResult {
        output, is_error, ..
    } = &drafts[mcp + 1].kind
    else {
        panic!()
    };
    assert!(*is_error && output.preview().contains("No MCP server"));
}

#[test]
fn hang_prints_then_goes_silent_until_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("shopfloor"))
        .current_dir(dir.path())
        .arg("fixture-agent")
        .arg(scenario("hang"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // init and the one message arrive promptly...
    let mut lines = Vec::new();
    while lines.len() < 2 {
        lines.push(
            rx.recv_timeout(Duration::from_secs(30))
                .expect("early output"),
        );
    }
    // ...then nothing more, and the process is still alive.
    let quiet = Instant::now();
    assert!(rx.recv_timeout(Duration::from_millis(1500)).is_err());
    assert!(quiet.elapsed() >= Duration::from_millis(1400));
    assert!(child.try_wait().unwrap().is_none(), "still running");
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    reader.join().unwrap();
    assert!(rx.try_recv().is_err(), "nothing more after the kill");
    let drafts = parse(lines.join("\n").as_bytes());
    assert_eq!(labels(&drafts), ["started", "agent"]);
}

#[test]
fn a_bad_scenario_is_a_clear_error_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let sc = dir.path().join("bad.toml");
    std::fs::write(
        &sc,
        "name = \"bad\"\n\n[[step]]\nsay = \"ok\"\n\n[[step]]\nrunn = \"ls\"\n",
    )
    .unwrap();
    let out = agent(dir.path(), &sc, "");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing printed before the check");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:7:"), "{err}");
    assert!(err.contains("runn"), "{err}");

    let out = agent(dir.path(), &dir.path().join("missing.toml"), "");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no scenario file") && err.contains("missing.toml"),
        "{err}"
    );
}

#[test]
fn flood_prints_at_its_rate() {
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let out = Command::cargo_bin("shopfloor")
        .unwrap()
        .current_dir(dir.path())
        .env("SHOPFLOOR_FLOOD_SECONDS", "0.5")
        .env_remove("SHOPFLOOR_PROMPT")
        .args(["fixture-agent", "flood"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let drafts = parse(&out.stdout);
    // init + say + 500 flood lines + say + usage
    assert_eq!(drafts.len(), 504);
    assert!(
        t.elapsed() >= Duration::from_millis(450),
        "{:?}",
        t.elapsed()
    );
}

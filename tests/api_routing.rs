//! The local API through the real binary: `shopfloor serve` holding a workspace, and every
//! CLI command giving the same output through it as it gives with no factory running.

use crate::common;

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use common::Env;
use common::serve::{Serve, wait_for_socket};

const WS: &str = "ws";

/// A workspace named `ws` over a fresh repository.
fn setup() -> Env {
    let env = Env::new();
    env.ok(&["workspace", "create", WS]);
    env
}

fn socket(env: &Env) -> PathBuf {
    env.home.path().join(WS).join("factory.sock")
}

/// `shopfloor serve --paused` (tickets stay queued, so both sides of the comparison see
/// the same), checked to say where it listens, with its socket answering.
struct Server;

impl Server {
    fn start(env: &Env) -> Serve {
        let s = Serve::paused(env);
        assert!(
            s.banner[0].starts_with(&format!("factory for workspace `{WS}` listening on ")),
            "{:?}",
            s.banner
        );
        let sock = socket(env);
        assert_eq!(s.socket(), sock.display().to_string());
        wait_for_socket(&sock);
        s
    }
}

/// A Codex rollout of `n` tool results, one of them too large to store inline, so the
/// remote walk over steps crosses pages and payloads come back as blob references.
fn big_rollout(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("big-rollout.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(f, r#"{{"timestamp":"2026-01-11T02:06:03.115Z","type":"session_meta","payload":{{"id":"s","timestamp":"2026-01-11T02:06:03.083Z","cwd":"/x","originator":"codex_cli_rs","cli_version":"0.80.0"}}}}"#).unwrap();
    for i in 0..n {
        let out = if i == 7 {
            "long output line ".repeat(400)
        } else {
            format!("file{i}")
        };
        writeln!(f, r#"{{"timestamp":"2026-01-11T02:06:04.000Z","type":"response_item","payload":{{"type":"function_call_output","call_id":"call_{i}","output":"{out}"}}}}"#).unwrap();
    }
    f.flush().unwrap();
    path
}

/// What one command did, with what legitimately differs between two workspaces (temp
/// paths, wall-clock times) masked.
fn run_masked(env: &Env, args: &[String]) -> String {
    // Memories are written by `$USER`; the same one on both sides.
    let out = env.cmd().env("USER", "tester").args(args).output().unwrap();
    let text = format!(
        "$ shopfloor {}\nexit: {:?}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    mask(env, &text)
}

fn mask(env: &Env, text: &str) -> String {
    let home = env.home.path().canonicalize().unwrap();
    let text = text
        .replace(&env.repo_path().display().to_string(), "<REPO>")
        .replace(&env.repo.path().display().to_string(), "<REPO>")
        .replace(&home.display().to_string(), "<HOME>")
        .replace(&env.home.path().display().to_string(), "<HOME>");
    let ts =
        regex::Regex::new(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?")
            .unwrap();
    let text = ts.replace_all(&text, "<TIME>");
    // Clock times in timelines: a log without timestamps is stamped when it is read.
    let clock = regex::Regex::new(r"\b\d{2}:\d{2}:\d{2}\b").unwrap();
    clock.replace_all(&text, "<CLOCK>").into_owned()
}

/// Every command of `ticket`, `trace`, `memory` and `workspace show`, the failing ones
/// included, each with and without `--json`.
fn the_sequence(env: &Env, big: &Path) -> Vec<String> {
    let fixture = common::recorded_codex_log();
    let fixture = fixture.display().to_string();
    let big = big.display().to_string();
    std::fs::write(
        env.repo.path().join("memories.jsonl"),
        concat!(
            r#"{"text": "Migrations live in migrations/ and run in order", "kind": "convention", "paths": ["migrations/"]}"#,
            "\n",
            "not json\n",
            r#"{"text": "The flaky test was a race in the store writer", "kind": "lesson", "tags": ["flaky"], "ref": "x-1"}"#,
            "\n",
        ),
    )
    .unwrap();
    // A second file, not the same one twice: duplicate texts tie in BM25, and tantivy
    // breaks ties by segment layout, which differs between one long-lived writer and a
    // commit per command (a ranking question for recall, not a routing one).
    std::fs::write(
        env.repo.path().join("memories2.jsonl"),
        concat!(
            r#"{"text": "Index commits are batched by the writer task", "kind": "decision", "paths": ["src/index/"]}"#,
            "\n",
        ),
    )
    .unwrap();
    let cmds: Vec<Vec<&str>> = vec![
        vec!["ticket", "list"],
        vec![
            "ticket",
            "add",
            "first thing",
            "--priority",
            "2",
            "--paths",
            "src/a.rs,src/b.rs",
        ],
        vec![
            "ticket",
            "add",
            "second thing",
            "--body",
            "more words",
            "--agent",
            "codex",
            "--json",
        ],
        vec!["ticket", "add", "   "],
        vec!["ticket", "list"],
        vec!["ticket", "list", "--json"],
        vec!["ticket", "list", "--state", "queued"],
        vec!["ticket", "show", "1"],
        vec!["ticket", "show", "2", "--json"],
        vec!["ticket", "show", "99"],
        vec!["ticket", "cancel", "1"],
        vec!["ticket", "cancel", "1"],
        vec!["ticket", "cancel", "99"],
        vec!["ticket", "list", "--state", "cancelled", "--json"],
        // The merge queue and the audit log: empty, but answered alike, errors too.
        vec!["queue", "list"],
        vec!["queue", "list", "--json"],
        vec!["queue", "show", "7"],
        vec!["queue", "approve", "7"],
        vec!["queue", "reject", "7", "--reason", "no"],
        vec!["queue", "bump", "7"],
        vec!["audit", "--json"],
        vec!["queue", "pause"],
        vec!["queue", "list"],
        vec!["queue", "resume"],
        vec!["trace", "list"],
        vec!["trace", "import", &fixture],
        vec!["trace", "import", &fixture, "--agent", "other", "--json"],
        vec!["trace", "import", &big, "--format", "codex"],
        vec!["trace", "import", "no-such-file.jsonl"],
        vec!["trace", "list"],
        vec!["trace", "list", "--json"],
        vec!["trace", "show", "1"],
        vec!["trace", "show", "1", "--json"],
        vec!["trace", "show", "1", "--step", "3"],
        vec!["trace", "show", "1", "--step", "3", "--json"],
        vec!["trace", "show", "1", "--step", "999"],
        vec!["trace", "show", "3"],
        vec!["trace", "show", "3", "--json"],
        vec!["trace", "show", "3", "--step", "8", "--json"],
        vec!["trace", "show", "42"],
        vec!["trace", "search", "file1"],
        vec!["trace", "search", "codex", "--json"],
        vec!["trace", "search", "ls", "--run", "2", "--kind", "tool_call"],
        vec!["trace", "search", "ls", "--kind", "bogus"],
        vec!["trace", "export", "1"],
        vec!["trace", "export", "3"],
        vec!["trace", "export", "2", "-o", "out.jsonl"],
        vec!["trace", "export", "42"],
        vec![
            "memory",
            "add",
            "We chose redb for the store",
            "--kind",
            "decision",
            "--paths",
            "src/store",
        ],
        vec![
            "memory",
            "add",
            "Tickets are cancelled, never deleted",
            "--tags",
            "tickets",
            "--json",
        ],
        vec!["memory", "add", "   "],
        vec!["memory", "import", "memories.jsonl"],
        vec!["memory", "import", "memories2.jsonl", "--json"],
        vec!["memory", "import", "missing.jsonl"],
        vec!["memory", "search", "store"],
        vec!["memory", "search", "store", "--json"],
        vec![
            "memory",
            "search",
            "migrations order",
            "--kind",
            "convention,decision",
            "--agent",
            "tester",
            "--paths",
            "migrations/0001.sql",
            "--paths-only",
            "--since",
            "7d",
            "--recent",
            "--limit",
            "3",
            "--json",
        ],
        vec!["memory", "search", "store", "--run", "1"],
        vec!["workspace", "show", "--json"],
        vec!["workspace", "show"],
    ];
    let mut outs: Vec<String> = cmds
        .iter()
        .map(|c| run_masked(env, &c.iter().map(|s| s.to_string()).collect::<Vec<_>>()))
        .collect();
    outs.push(format!(
        "out.jsonl:\n{}",
        mask(
            env,
            &std::fs::read_to_string(env.repo.path().join("out.jsonl")).unwrap()
        )
    ));
    outs
}

#[test]
fn every_command_says_the_same_through_a_factory_as_directly() {
    let scratch = tempfile::tempdir().unwrap();
    let big = big_rollout(scratch.path(), 2500);

    let served = setup();
    let server = Server::start(&served);
    let remote = the_sequence(&served, &big);
    assert!(server.stop().success(), "serve exits cleanly on SIGTERM");
    assert!(!socket(&served).exists(), "a clean stop removes the socket");

    let direct_env = setup();
    let direct = the_sequence(&direct_env, &big);

    assert_eq!(remote.len(), direct.len());
    for (r, d) in remote.iter().zip(&direct) {
        assert_eq!(r, d, "remote (left) and direct (right) differ");
    }
    // The comparison means something only if the commands really went through the
    // factory: its log has a line per request.
    let log = std::fs::read_to_string(served.home.path().join("logs/shopfloor.log")).unwrap();
    let requests = log.matches("api request").count();
    assert!(
        requests >= direct.len(),
        "only {requests} API requests logged"
    );
    // And did real work: the big run crossed the page size and kept its blob.
    assert!(
        direct.iter().any(|o| o.contains("2501 steps")),
        "{direct:?}"
    );
    assert!(
        direct.iter().any(|o| o.contains("\"blob\"")),
        "a large payload is shown as stored, a blob reference"
    );
}

/// Send one raw HTTP request on the socket; (status, body).
fn raw(sock: &Path, request: &str) -> (u16, String) {
    let mut s = UnixStream::connect(sock).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let body = resp.split_once("\r\n\r\n").unwrap().1.to_string();
    (status, body)
}

fn error_of(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {body}"));
    v["error"].as_str().expect("an `error` field").to_string()
}

#[test]
fn one_factory_a_workspace_private_socket_stale_socket_cleaned_bad_requests_answered() {
    let env = setup();
    let sock = socket(&env);
    let server = Server::start(&env);

    let meta = std::fs::metadata(&sock).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "owner-only socket"
    );

    let (code, err) = env.fails(&["serve", "--paused"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("a factory already runs for workspace `{WS}`")),
        "{err}"
    );

    // Bad requests get a JSON error naming the problem, and the server keeps serving.
    let (status, body) = raw(
        &sock,
        "POST /v1/tickets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{\"title\":",
    );
    assert_eq!(status, 400, "{body}");
    assert!(error_of(&body).contains("malformed request body"), "{body}");
    let (status, body) = raw(
        &sock,
        "GET /v1/tickets/12345 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        error_of(&body),
        "ticket 12345 not found; `shopfloor ticket list` shows the tickets"
    );
    let (status, body) = raw(
        &sock,
        "GET /v1/runs/abc/steps?from=x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 400, "{body}");
    error_of(&body);
    let (status, body) = raw(
        &sock,
        "GET /v2/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 404, "{body}");
    error_of(&body);
    let (status, body) = raw(
        &sock,
        "GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200, "still serving after bad requests: {body}");
    let (code, err) = env.fails(&["ticket", "show", "12345"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: ticket 12345 not found; `shopfloor ticket list` shows the tickets\n"
    );
    env.ok(&["ticket", "add", "survives a kill"]);

    // SIGKILL leaves the socket file behind; nothing answers on it.
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert!(sock.exists(), "a killed factory leaves its socket");
    assert!(UnixStream::connect(&sock).is_err());
    // With no factory, commands work on the store directly despite the stale socket.
    assert!(env.ok(&["ticket", "list"]).contains("survives a kill"));

    // The next serve removes the stale socket and serves.
    let server = Server::start(&env);
    assert!(env.ok(&["ticket", "list"]).contains("survives a kill"));
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(server.stop().success());
    assert!(!sock.exists());
}

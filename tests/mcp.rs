//! MCP end to end, with rmcp's own client: `shopfloor mcp` over stdio (forwarding to a
//! running factory, and serving the store itself when none runs), the factory's `/mcp`
//! over streamable HTTP on its Unix socket and on loopback TCP, run tokens scoped to their
//! workspace (refusals audited), argument checks, and a fixture agent whose memory calls
//! go through the factory.

use crate::common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Env;
use common::serve::Serve;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde_json::{Value, json};
use shopfloor::workspace::Home;

use common::mcp::{Client, result_text, unix_transport};

const TOOLS: [&str; 9] = [
    "lease",
    "memory_search",
    "memory_write",
    "release",
    "review_submit",
    "ticket_get",
    "trace_search",
    "trace_step",
    "wip",
];

fn workspace(name: &str, config: Option<&str>) -> Env {
    let env = Env::new();
    if let Some(c) = config {
        std::fs::write(env.repo.path().join("shopfloor.toml"), c).unwrap();
        common::commit_all(env.repo.path(), "config");
    }
    env.ok(&["workspace", "create", name]);
    env
}

fn socket(env: &Env, ws: &str) -> PathBuf {
    env.home.path().join(ws).join("factory.sock")
}

/// The command line of `shopfloor mcp -w WS`, the way an agent CLI spawns it.
fn stdio_command(env: &Env, ws: &str, token: Option<&str>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("shopfloor"));
    cmd.args(["mcp", "-w", ws])
        .env("SHOPFLOOR_HOME", env.home.path())
        .env_remove("SHOPFLOOR_TOKEN")
        .env_remove("SHOPFLOOR_SOCKET")
        .stderr(Stdio::inherit());
    if let Some(t) = token {
        cmd.env("SHOPFLOOR_TOKEN", t);
    }
    cmd
}

/// `shopfloor mcp -w WS` as a child process, with a client talking to it.
async fn stdio_client(env: &Env, ws: &str, token: Option<&str>) -> Client {
    ().serve(TokioChildProcess::new(stdio_command(env, ws, token)).unwrap())
        .await
        .unwrap()
}

async fn call(c: &Client, tool: &str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments are an object")
    };
    c.call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{tool} failed: {e}"))
}

/// The text of a successful call.
async fn text(c: &Client, tool: &str, args: Value) -> String {
    let r = call(c, tool, args).await;
    let t = result_text(&r);
    assert_ne!(r.is_error, Some(true), "{tool} gave an error result: {t}");
    t
}

/// The MCP error a call with bad arguments gets.
async fn mcp_error(c: &Client, tool: &str, args: Value) -> String {
    refusal(c, tool, args).await.1
}

/// How a call is refused: (true, message) for a tool execution error the model reads
/// (`isError: true`: bad arguments), (false, message) for a protocol error (an unknown
/// tool, a factory that refused the session).
async fn refusal(c: &Client, tool: &str, args: Value) -> (bool, String) {
    let Value::Object(args) = args else {
        panic!("arguments are an object")
    };
    match c
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args))
        .await
    {
        Ok(r) if r.is_error == Some(true) => (true, result_text(&r)),
        Ok(r) => panic!("{tool} should be refused, got {}", result_text(&r)),
        Err(e) => (false, e.to_string()),
    }
}

/// Status line and body of a raw HTTP request on a Unix socket.
fn raw_http(sock: &Path, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = UnixStream::connect(sock).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).unwrap().parse().unwrap();
    (status, out)
}

/// A profile whose agent starts, says one line and waits to be killed: a live run whose
/// token the tests can use.
const HANGER: &str = "\n[agents.hanger]\nadapter = \"fixture\"\nscenario = \"hang\"\n";

/// The run id and token of the live `hanger` run the factory started for `ticket`: the
/// token file the factory wrote in the run's sandbox, as its agent reads it.
fn live_run_token(env: &Env, ws: &str, ticket: u64) -> (u64, String) {
    let run = common::wait_for("the hanger's run to start", Duration::from_secs(60), || {
        let runs = env.json(&["run", "list", "--json"]);
        runs.as_array().unwrap().iter().find_map(|r| {
            (r["ticket"] == ticket && r["state"] == "running").then(|| r["id"].as_u64().unwrap())
        })
    });
    let dir = env.home.path().join(ws).join("worktrees");
    let token = common::wait_for("the run's token file", Duration::from_secs(30), || {
        std::fs::read_dir(&dir).ok()?.flatten().find_map(|e| {
            std::fs::read_to_string(e.path().join(".shopfloor/token"))
                .ok()
                .filter(|t| t.starts_with(&format!("sf_{run}_")))
        })
    });
    (run, token.trim().to_string())
}

fn sandbox_socket(env: &Env, ws: &str) -> PathBuf {
    env.home.path().join(ws).join("sandbox.sock")
}

fn audit_refusals(env: &Env, ws: &str) -> Vec<String> {
    let info = Home::at(env.home.path().to_path_buf()).get(ws).unwrap();
    let ws = shopfloor::workspace::Workspace::open(info).unwrap();
    ws.store
        .audit_log()
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "api.refused")
        .map(|e| format!("{} {}", e.actor, e.detail))
        .collect()
}

const API_CONFIG: &str = "[factory]\ndefault_agent = \"hanger\"\n\n[sandbox]\nbackend = \"worktree\"\n\n[api]\nlisten = \"127.0.0.1:0\"\n\n[agents.hanger]\nadapter = \"fixture\"\nscenario = \"hang\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_and_http_sessions_share_memory_through_the_factory() {
    let env = workspace("alpha", Some(API_CONFIG));
    // An imported Codex session (run 1, agent `codex`), for the trace tools.
    let rollout = common::recorded_codex_log();
    env.ok(&["trace", "import", rollout.to_str().unwrap()]);
    env.ok(&[
        "ticket",
        "add",
        "Tune the db pool",
        "--paths",
        "src/db/**",
        "--agent",
        "hanger",
    ]);
    let serve = Serve::start(&env);
    let sock = socket(&env, "alpha");
    // The ticket's run: started, waiting to be killed, holding a live token.
    let (run, run_token) = live_run_token(&env, "alpha", 1);

    // Session 1: stdio, forwarded to the factory.
    let one = stdio_client(&env, "alpha", None).await;
    let info = one.peer_info().unwrap();
    assert_eq!(info.server_info.as_ref().unwrap().name, "shopfloor");
    assert!(
        info.instructions
            .as_deref()
            .unwrap()
            .contains("memory_search")
    );
    let tools = one.list_all_tools().await.unwrap();
    let names: BTreeSet<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, TOOLS.into_iter().collect());
    for t in &tools {
        assert_eq!(t.input_schema["type"], "object", "{}", t.name);
        assert!(t.description.as_ref().unwrap().len() > 20);
    }
    let saved = text(
        &one,
        "memory_write",
        json!({"kind": "decision", "text": "The db pool size is 8 because the database allows 10 connections and migrations need 2.", "paths": ["src/db/**"], "tags": ["db"]}),
    )
    .await;
    assert!(
        saved.starts_with("Saved memory m1 (decision) as human:"),
        "{saved}"
    );

    // Session 2: streamable HTTP straight to /mcp on the socket, recalls it.
    let two: Client = ().serve(unix_transport(&sock, None)).await.unwrap();
    let hits = text(
        &two,
        "memory_search",
        json!({"query": "why is the pool size 8", "paths": ["src/db/pool.rs"], "since": "1h"}),
    )
    .await;
    assert!(hits.starts_with("1 memory for"), "{hits}");
    assert!(hits.contains("[m1] decision"), "{hits}");
    assert!(hits.contains("paths: src/db/**"), "{hits}");
    assert!(hits.contains("migrations need 2"), "{hits}");
    let none = text(
        &two,
        "memory_search",
        json!({"query": "pool", "kinds": ["lesson"]}),
    )
    .await;
    assert!(none.starts_with("No memories match"), "{none}");

    // Traces: short hits with ids, then the whole step.
    let found = text(
        &two,
        "trace_search",
        json!({"query": "Patched running tests", "agent": "codex"}),
    )
    .await;
    let first = found.lines().nth(1).unwrap();
    assert!(first.starts_with("[run 1 step "), "{found}");
    let step: u64 = first["[run 1 step ".len()..]
        .split(']')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let whole = text(&two, "trace_step", json!({"run": 1, "step": step})).await;
    assert!(whole.contains("Patched; running the tests"), "{whole}");
    let missing = call(&two, "trace_step", json!({"run": 1, "step": 999})).await;
    assert_eq!(missing.is_error, Some(true));
    assert!(result_text(&missing).contains("has no step 999"));

    let ticket = text(&one, "ticket_get", json!({"id": 1})).await;
    assert!(ticket.contains("Tune the db pool"), "{ticket}");
    assert!(ticket.contains("paths: src/db/**"), "{ticket}");
    let wip = text(&one, "wip", json!({})).await;
    assert!(wip.contains(&format!("run {run}")), "{wip}");
    let lease = call(&one, "lease", json!({"paths": ["src/db/**"]})).await;
    assert_eq!(
        lease.is_error,
        Some(true),
        "a person has no run to lease for"
    );
    assert!(result_text(&lease).contains("only a run can call it"));

    // Bad arguments are tool errors the model reads (isError, protocol 2025-11-25); an
    // unknown tool is a protocol error; the session goes on either way.
    for (tool, args, says) in [
        (
            "memory_search",
            json!({"query": "x", "bogus": 1}),
            "unknown field `bogus`",
        ),
        (
            "memory_search",
            json!({"query": "q".repeat(5000)}),
            "at most 2000",
        ),
        (
            "memory_write",
            json!({"kind": "lesson", "text": "t", "paths": ["../../etc/passwd"]}),
            "climbs out",
        ),
        (
            "memory_write",
            json!({"kind": "lesson", "text": "t", "paths": ["/etc/passwd"]}),
            "repository-relative",
        ),
        (
            "memory_write",
            json!({"kind": "lesson", "text": "x".repeat(20_000)}),
            "at most 16000",
        ),
        (
            "trace_step",
            json!({"run": "one", "step": 0}),
            "bad arguments",
        ),
        ("no_such_tool", json!({}), "the tools are"),
    ] {
        let (tool_error, e) = refusal(&one, tool, args).await;
        assert!(e.contains(says), "{tool}: {e}");
        assert_eq!(tool_error, tool != "no_such_tool", "{tool}: {e}");
    }
    assert!(
        text(&one, "memory_search", json!({"query": "pool"}))
            .await
            .contains("[m1]")
    );

    // A run's token: attributed writes through stdio, and TCP, which needs a token.
    let agent = stdio_client(&env, "alpha", Some(&run_token)).await;
    let saved = text(
        &agent,
        "memory_write",
        json!({"kind": "lesson", "text": "Run the db tests with --test-threads 1; they share one database.", "paths": ["tests/db/**"]}),
    )
    .await;
    assert!(saved.contains("as agent:hanger"), "{saved}");
    let listed = env.json(&["memory", "search", "test threads database", "--json"]);
    let m = &listed[0]["memory"];
    assert_eq!(
        m["author"],
        json!({"by": "agent", "name": "hanger"}),
        "{listed}"
    );
    assert_eq!(m["source"]["run"], run, "{listed}");

    let tcp = serve.tcp().expect("the TCP listener is announced");
    let url = format!("{tcp}/mcp");
    let anonymous = ().serve(StreamableHttpClientTransport::from_uri(url.clone())).await;
    assert!(anonymous.is_err(), "TCP without a token is refused");
    let over_tcp: Client = ()
        .serve(StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(url).auth_header(run_token.clone()),
        ))
        .await
        .unwrap();
    assert_eq!(over_tcp.list_all_tools().await.unwrap().len(), TOOLS.len());
    assert!(
        text(&over_tcp, "memory_search", json!({"query": "test threads"}))
            .await
            .contains("[m2] lesson")
    );

    // A run's token opens MCP only, not the control API.
    let (status, _) = raw_http(&sock, "GET", "/v1/tickets", Some(&run_token));
    assert_eq!(status, 403);
    let (status, _) = raw_http(&sock, "GET", "/v1/tickets", None);
    assert_eq!(status, 200, "a person on the socket needs no token");

    // The sandboxes' socket: MCP with a live token, nothing without one.
    let boxed = sandbox_socket(&env, "alpha");
    let (status, _) = raw_http(&boxed, "GET", "/v1/tickets", None);
    assert_eq!(status, 401, "no token is no one on the sandboxes' socket");
    let (status, _) = raw_http(&boxed, "GET", "/v1/tickets", Some(&run_token));
    assert_eq!(status, 403);
    let in_box: Client = ().serve(unix_transport(&boxed, Some(&run_token))).await.unwrap();
    assert!(
        text(&in_box, "memory_search", json!({"query": "test threads"}))
            .await
            .contains("[m2] lesson")
    );
    let _ = in_box.cancel().await;
    assert!(
        ().serve(unix_transport(&boxed, None)).await.is_err(),
        "MCP without a token is refused there"
    );

    // Killed, the run's token opens nothing any more.
    env.ok(&["run", "kill", &run.to_string()]);
    common::wait_for("the run to end", Duration::from_secs(20), || {
        let r = env.json(&["run", "show", &run.to_string(), "--json"]);
        (r["state"] != "running").then_some(())
    });
    let (status, _) = raw_http(&boxed, "POST", "/mcp", Some(&run_token));
    assert_eq!(status, 401, "a dead run's token is refused");
    assert!(
        ().serve(unix_transport(&sock, Some(&run_token)))
            .await
            .is_err(),
        "on every socket"
    );

    for c in [one, two, agent, over_tcp] {
        let _ = c.cancel().await;
    }
    serve.stop();
    let refused = audit_refusals(&env, "alpha");
    assert!(
        refused.iter().any(|r| r.contains("no token on tcp")),
        "{refused:?}"
    );
    let shown = env.ok(&["audit"]);
    assert!(
        shown.contains("api.refused") && shown.contains(&format!("run:{run}:hanger")),
        "{shown}"
    );
    assert!(
        refused
            .iter()
            .any(|r| r.starts_with(&format!("run:{run}:hanger GET /v1/tickets"))),
        "{refused:?}"
    );
    assert!(
        refused
            .iter()
            .any(|r| r.contains("bad token on sandbox socket")),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_one_workspace_gets_nothing_from_another() {
    let config = format!(
        "[factory]\ndefault_agent = \"hanger\"\n\n[sandbox]\nbackend = \"worktree\"\n{HANGER}"
    );
    let a = workspace("ws-a", Some(&config));
    let b = workspace("ws-b", Some(&config));
    // Both have a live run 1: the number alone must not be enough.
    a.ok(&["ticket", "add", "Wait", "--agent", "hanger"]);
    b.ok(&["ticket", "add", "Wait", "--agent", "hanger"]);
    let serve_a = Serve::start(&a);
    let serve_b = Serve::start(&b);
    let (a_run, a_token) = live_run_token(&a, "ws-a", 1);
    let (b_run, b_token) = live_run_token(&b, "ws-b", 1);
    assert_eq!((a_run, b_run), (1, 1));
    assert_ne!(a_token, b_token);

    // A's token on A: fine.
    let ok: Client = ().serve(unix_transport(&socket(&a, "ws-a"), Some(&a_token))).await.unwrap();
    let wip = text(&ok, "wip", json!({})).await;
    assert!(wip.contains("run 1 (you)"), "{wip}");
    let _ = ok.cancel().await;

    // A's token on B: refused at the door, exactly like a made-up token.
    let sock_b = socket(&b, "ws-b");
    for t in [a_token.as_str(), "sf_1_0000", "garbage"] {
        let refused = ().serve(unix_transport(&sock_b, Some(t))).await;
        assert!(refused.is_err(), "B accepted {t}");
    }
    let (s1, body1) = raw_http(&sock_b, "POST", "/mcp", Some(&a_token));
    let (s2, body2) = raw_http(&sock_b, "POST", "/mcp", Some("sf_1_0000"));
    assert_eq!((s1, s2), (401, 401));
    let body = |b: &str| b.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    assert_eq!(
        body(&body1),
        body(&body2),
        "nothing tells A's token from garbage"
    );

    // Through `shopfloor mcp` too: the stdio server says the factory refused.
    let via_stdio = stdio_client(&b, "ws-b", Some(&a_token)).await;
    let e = mcp_error(&via_stdio, "memory_search", json!({"query": "anything"})).await;
    assert!(e.contains("refused"), "{e}");
    let _ = via_stdio.cancel().await;

    serve_a.stop();
    serve_b.stop();
    let refused = audit_refusals(&b, "ws-b");
    // Refusals of one kind are summed into one row per window: count what the rows say.
    let total: usize = refused
        .iter()
        .map(|r| {
            r.strip_prefix("unknown ")
                .and_then(|r| r.split(" more refused").next())
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(1)
        })
        .sum();
    assert!(total >= 4 && refused.len() < total, "{refused:?}");
    assert!(
        refused.iter().all(|r| r.starts_with("unknown ")),
        "{refused:?}"
    );
    assert!(audit_refusals(&a, "ws-a").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_factory_the_stdio_server_serves_the_store_then_lets_a_factory_start() {
    let env = workspace("solo", None);
    let c = stdio_client(&env, "solo", None).await;
    let saved = text(
        &c,
        "memory_write",
        json!({"kind": "convention", "text": "Errors are one line on stderr and exit code 1.", "paths": ["src/cli/**"]}),
    )
    .await;
    assert!(saved.contains("m1"), "{saved}");
    assert!(
        text(&c, "memory_search", json!({"query": "stderr exit code"}))
            .await
            .contains("[m1] convention")
    );
    let wip = text(&c, "wip", json!({})).await;
    assert!(wip.contains("No factory runs"), "{wip}");

    // A factory starting asks the session to let the store go, and the same session now
    // goes to it.
    let serve = Serve::paused(&env);
    let deadline = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(socket(&env, "solo")).is_err() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    let wip = text(&c, "wip", json!({})).await;
    assert_eq!(
        wip.trim(),
        "No run is in progress.",
        "answered by the factory"
    );
    assert!(
        text(&c, "memory_search", json!({"query": "stderr exit code"}))
            .await
            .contains("[m1]")
    );
    let _ = c.cancel().await;
    serve.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_hold_tool_arguments_redacted_and_cut_never_whole() {
    let env = workspace("logged", None);
    let mut cmd = stdio_command(&env, "logged", None);
    cmd.env("SHOPFLOOR_LOG", "debug");
    let c = ().serve(TokioChildProcess::new(cmd).unwrap()).await.unwrap();
    let secret = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
    let query = format!("deploy token {secret}");
    text(&c, "memory_search", json!({ "query": query })).await;
    let long = format!("{}the end of a long note", "a lesson learned. ".repeat(40));
    text(&c, "memory_write", json!({"kind": "note", "text": long})).await;
    let _ = c.cancel().await;

    let log_file = env.home.path().join("logs/shopfloor.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = std::fs::read_to_string(&log_file).unwrap_or_default();
        if log.contains("mcp tool call tool=memory_write") || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        log.contains("mcp tool call tool=memory_search")
            && log.contains("deploy token [REDACTED:github_token]"),
        "{log}"
    );
    assert!(log.contains("mcp tool call tool=memory_write"), "{log}");
    // Neither the secret (sent, and echoed in the answer) nor a long text whole.
    assert!(!log.contains(secret), "{log}");
    assert!(!log.contains("the end of a long note"), "{log}");
}

/// A fixture agent run by the factory: it searches memory, leases, writes a lesson and
/// releases, all through `shopfloor mcp` spawned from its MCP config.
const REMEMBERS: &str = r#"
name = "remembers"
[[step]]
memory_search = "how are files written here"
[[step]]
lease = ["notes/**"]
[[step]]
write = { path = "notes/today.md", content = "written by a fixture agent\n" }
[[step]]
memory_write = { kind = "lesson", text = "Notes go under notes/ as markdown ({prompt})." }
[[step]]
release = ["notes/**"]
[[step]]
say = "done"
"#;

#[test]
fn a_factory_run_uses_the_memory_over_mcp() {
    let env = Env::new();
    let root = env.repo.path();
    std::fs::write(root.join("remembers.toml"), REMEMBERS).unwrap();
    std::fs::write(
        root.join("shopfloor.toml"),
        "[factory]\ndefault_agent = \"rem\"\nquiet_timeout_s = 30\n\n[sandbox]\nbackend = \"worktree\"\n\n[agents.rem]\nadapter = \"fixture\"\nscenario = \"remembers.toml\"\n",
    )
    .unwrap();
    common::commit_all(root, "fixture agent");
    env.ok(&["workspace", "create", "fac"]);
    env.ok(&[
        "memory",
        "add",
        "--kind",
        "convention",
        "Files are written with a trailing newline.",
    ]);
    env.ok(&["ticket", "add", "Write today's notes"]);
    let serve = Serve::start(&env);
    let deadline = Instant::now() + Duration::from_secs(90);
    let run = loop {
        let runs = env.json(&["run", "list", "--json"]);
        if let Some(r) = runs
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["state"] != "running" && r["state"] != "preparing")
        {
            break r.clone();
        }
        assert!(Instant::now() < deadline, "the run never finished: {runs}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(run["state"], "succeeded", "{run}");
    let id = run["id"].as_u64().unwrap();
    let shown = env.ok(&["trace", "export", &id.to_string()]);
    assert!(shown.contains("mcp__shopfloor__memory_search"), "{shown}");
    assert!(
        shown.contains("trailing newline"),
        "the search result came back: {shown}"
    );
    assert!(
        shown.contains(&format!("Leased to run {id}: notes/**")),
        "{shown}"
    );
    assert!(
        shown.contains("Saved memory m2 (lesson) as agent:rem"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("Released 1 lease of run {id}")),
        "{shown}"
    );
    serve.stop();
    let found = env.json(&["memory", "search", "where do notes go", "--json"]);
    let m = &found[0]["memory"];
    assert_eq!(
        m["author"],
        json!({"by": "agent", "name": "rem"}),
        "{found}"
    );
    assert_eq!(m["source"]["run"], id, "{found}");
    assert!(
        m["text"].as_str().unwrap().contains("Write today's notes"),
        "{found}"
    );
}

/// `initialize` over HTTP with a JSON body; the JSON-RPC answer.
fn initialize(sock: &Path, version: &str) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {},
        "clientInfo": {"name": "probe", "version": "0"}}})
    .to_string();
    let mut s = UnixStream::connect(sock).unwrap();
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    serde_json::from_str(out.split("\r\n\r\n").nth(1).unwrap()).unwrap()
}

/// The server speaks the protocol the client asks for when rmcp knows it, and the newest
/// one with an `initialize` handshake (2025-11-25; 2026-07-28 clients send no
/// `initialize`) to a client from the future.
#[test]
fn the_server_negotiates_the_newest_protocol_version() {
    let env = workspace("proto", None);
    let serve = Serve::paused(&env);
    let sock = socket(&env, "proto");
    for (asked, answered) in [
        ("2025-11-25", "2025-11-25"),
        ("2025-06-18", "2025-06-18"),
        ("2099-01-01", "2025-11-25"),
    ] {
        let r = initialize(&sock, asked);
        assert_eq!(r["result"]["protocolVersion"], answered, "{asked}: {r}");
    }
    serve.stop();
}

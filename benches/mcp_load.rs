//! Memory under load (issue 11), run with `cargo bench --bench mcp_load`: a real
//! `shopfloor serve` with 10,000 memories and 16 fixture agents streaming steps, and 200 MCP
//! sessions at once on the sandboxes' socket, each holding a live run's token as agents do.
//! Two phases in the same run: searches only (the peer), then the same sessions mixing
//! `memory_search` and `memory_write` half and half (what once deadlocked the bank). Each
//! prints p50/p99 per call and the errors, which must be 0.
//! LOAD_MEMORIES, LOAD_SESSIONS, LOAD_CALLS scale it down for a quick look.

mod corpus;
mod harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use corpus::{Rng, percentile};
use harness::{committed_repo, shopfloor};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, UnixSocketHttpClient};
use shopfloor::memory::NewMemory;
use shopfloor::model::{Author, MemoryKind};
use shopfloor::workspace::{Home, Workspace};

type Client = RunningService<RoleClient, ()>;

const WS: &str = "load";
const AGENTS: usize = 16;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn tool(name: &str, args: serde_json::Value) -> CallToolRequestParams {
    let serde_json::Value::Object(args) = args else {
        unreachable!()
    };
    CallToolRequestParams::new(name.to_string()).with_arguments(args)
}

async fn session(socket: &Path, token: &str) -> Result<Client, String> {
    let uri = "http://localhost/mcp";
    ().serve(StreamableHttpClientTransport::with_client(
        UnixSocketHttpClient::new(&socket.to_string_lossy(), uri),
        StreamableHttpClientTransportConfig::with_uri(uri).auth_header(token.to_string()),
    ))
    .await
    .map_err(|e| e.to_string())
}

/// Every session makes `calls` calls at once with the others; a write every other call
/// when `mixed`. Per-call latencies in ms, sorted, and the number of failed calls.
async fn phase(
    clients: &[Client],
    calls: usize,
    mixed: bool,
    queries: &[String],
) -> (Vec<f64>, usize) {
    let mut tasks = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        let c = c.peer().clone();
        let queries = queries.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut ms = Vec::with_capacity(calls);
            let mut failed = 0;
            for k in 0..calls {
                let call = if mixed && (i + k) % 2 == 1 {
                    tool(
                        "memory_write",
                        serde_json::json!({"kind": "lesson", "text": format!("Load note {i}-{k}: retry the flaky port test with a fresh port.")}),
                    )
                } else {
                    tool(
                        "memory_search",
                        serde_json::json!({"query": queries[(i * 7 + k) % queries.len()], "limit": 8}),
                    )
                };
                let t = Instant::now();
                match c.call_tool(call).await {
                    Ok(r) if r.is_error != Some(true) => ms.push(t.elapsed().as_secs_f64() * 1e3),
                    _ => failed += 1,
                }
            }
            (ms, failed)
        }));
    }
    let mut all = Vec::new();
    let mut failed = 0;
    for t in tasks {
        match t.await {
            Ok((ms, f)) => {
                all.extend(ms);
                failed += f;
            }
            Err(_) => failed += calls,
        }
    }
    all.sort_by(f64::total_cmp);
    (all, failed)
}

fn main() {
    let memories = env_usize("LOAD_MEMORIES", 10_000);
    let sessions = env_usize("LOAD_SESSIONS", 200);
    let calls = env_usize("LOAD_CALLS", 10);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let repo = dir.path().join("repo");
    // Agents that stream 20 steps a second for as long as the benchmark runs.
    committed_repo(
        &repo,
        &[
            ("README.md", "load\n".into()),
            (
                "stream.toml",
                "name = \"stream\"\n[[step]]\nflood = { per_second = 20, seconds = 600 }\n".into(),
            ),
            (
                "shopfloor.toml",
                format!(
                    "[factory]\nconcurrency = {AGENTS}\ndefault_agent = \"stream\"\nquiet_timeout_s = 600\ntimeout_s = 900\n\
                     [sandbox]\nbackend = \"worktree\"\n[agents.stream]\nadapter = \"fixture\"\nscenario = \"stream.toml\"\n"
                ),
            ),
        ],
    );
    shopfloor(&home, &repo, &["workspace", "create", WS]);
    let info = Home::at(home.clone()).get(WS).unwrap();
    let mut rng = Rng::new(11);
    {
        let ws = Workspace::open(info.clone()).unwrap();
        let mut batch = Vec::with_capacity(1000);
        for i in 0..memories {
            let (text, paths, kind) = corpus::memory(&mut rng);
            let mut m = NewMemory::new(
                kind.parse::<MemoryKind>().unwrap(),
                text,
                Author::Agent {
                    name: format!("agent-{}", i % 16),
                },
            );
            m.paths = paths;
            batch.push(m);
            if batch.len() == 1000 {
                ws.memory.add_unflushed(std::mem::take(&mut batch)).unwrap();
            }
        }
        ws.memory.add_unflushed(batch).unwrap();
        ws.memory.flush_index().unwrap();
    }
    let queries: Vec<String> = (0..500).map(|_| corpus::query(&mut rng)).collect();
    for i in 0..AGENTS {
        shopfloor(&home, &repo, &["ticket", "add", &format!("stream {i}")]);
    }
    let mut serve = Command::new(env!("CARGO_BIN_EXE_shopfloor"))
        .arg("serve")
        .env("SHOPFLOOR_HOME", &home)
        .env_remove("SHOPFLOOR_WORKSPACE")
        .current_dir(&repo)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The live runs' tokens, as their agents read them from their sandboxes.
    let tokens = {
        let root = info.dir.join("worktrees");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let found: Vec<String> = std::fs::read_dir(&root)
                .map(|d| {
                    d.flatten()
                        .filter_map(|e| {
                            std::fs::read_to_string(e.path().join(".shopfloor/token")).ok()
                        })
                        .map(|t| t.trim().to_string())
                        .filter(|t| !t.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            if found.len() == AGENTS {
                break found;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {AGENTS} agents started",
                found.len()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let socket: PathBuf = info.sandbox_socket_path();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (search_only, mixed, start_errors) = rt.block_on(async {
        let mut clients = Vec::with_capacity(sessions);
        let mut start_errors = 0;
        for i in 0..sessions {
            match session(&socket, &tokens[i % tokens.len()]).await {
                Ok(c) => clients.push(c),
                Err(e) => {
                    start_errors += 1;
                    eprintln!("a session failed to start: {e}");
                }
            }
        }
        let search_only = phase(&clients, calls, false, &queries).await;
        let mixed = phase(&clients, calls, true, &queries).await;
        for c in clients {
            let _ = c.cancel().await;
        }
        (search_only, mixed, start_errors)
    });
    let steps: u64 = serde_json::from_str::<serde_json::Value>(&shopfloor(
        &home,
        &repo,
        &["run", "list", "--json"],
    ))
    .unwrap()
    .as_array()
    .unwrap()
    .iter()
    .map(|r| r["steps"].as_u64().unwrap_or(0))
    .sum();
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(serve.id() as i32, libc::SIGTERM);
    }
    let _ = serve.wait();

    println!();
    println!(
        "{sessions} MCP sessions at once on the sandboxes' socket (run tokens), {calls} calls each, \
         {memories} memories, {AGENTS} agents streaming ({steps} steps stored meanwhile); ms per call"
    );
    println!("| calls | p50 | p99 | calls ok | errors |");
    println!("|---|---|---|---|---|");
    for (name, (ms, failed)) in [
        ("memory_search only (peer)", &search_only),
        ("memory_search + memory_write, half and half", &mixed),
    ] {
        println!(
            "| {name} | {:.1} | {:.1} | {} | {failed} |",
            percentile(ms, 0.5),
            percentile(ms, 0.99),
            ms.len()
        );
    }
    println!("sessions that failed to start: {start_errors}");
    let errors = search_only.1 + mixed.1 + start_errors;
    assert_eq!(errors, 0, "memory calls failed under load");
}

//! MCP end to end (issue 4), run with `cargo bench --bench mcp`: a workspace holding
//! 100,000 memories, a real `shopfloor serve`, and `memory_search` timed three ways in the
//! same run — store-direct (the memory bank in this process, no MCP), over streamable
//! HTTP on the factory's socket, and through `shopfloor mcp` (stdio → socket → factory, the
//! path an agent CLI takes). Then 200 `shopfloor mcp` sessions held at once, each calling.
//! MCP_MEMORIES and MCP_SESSIONS scale it down for a quick look.

mod corpus;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use corpus::{Rng, percentile};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess, UnixSocketHttpClient};
use shopfloor::memory::{NewMemory, RecallQuery};
use shopfloor::model::{Author, MemoryKind};
use shopfloor::workspace::{Home, Workspace};

type Client = RunningService<RoleClient, ()>;

const WS: &str = "bench";
const CALLS: usize = 300;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn shopfloor(home: &Path, repo: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shopfloor"));
    c.env("SHOPFLOOR_HOME", home)
        .env_remove("SHOPFLOOR_WORKSPACE")
        .env_remove("SHOPFLOOR_TOKEN")
        .current_dir(repo);
    c
}

fn search_args(q: &str) -> CallToolRequestParams {
    let serde_json::Value::Object(args) = serde_json::json!({ "query": q, "limit": 8 }) else {
        unreachable!()
    };
    CallToolRequestParams::new("memory_search").with_arguments(args)
}

/// p50 and p99 in ms of `CALLS` memory_search calls on one client, after a warm-up.
async fn time_calls(c: &Client, queries: &[String]) -> (f64, f64) {
    for q in queries.iter().take(20) {
        c.call_tool(search_args(q)).await.unwrap();
    }
    let mut ms = Vec::with_capacity(CALLS);
    for i in 0..CALLS {
        let t = Instant::now();
        let r = c
            .call_tool(search_args(&queries[i % queries.len()]))
            .await
            .unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert_ne!(r.is_error, Some(true));
    }
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 0.5), percentile(&ms, 0.99))
}

async fn stdio_client(home: &Path, repo: &Path) -> Result<Client, String> {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_shopfloor"));
    cmd.args(["mcp", "-w", WS])
        .env("SHOPFLOOR_HOME", home)
        .env_remove("SHOPFLOOR_TOKEN")
        .env_remove("SHOPFLOOR_SOCKET")
        .current_dir(repo)
        .stderr(Stdio::null());
    let t = TokioChildProcess::new(cmd).map_err(|e| e.to_string())?;
    ().serve(t).await.map_err(|e| e.to_string())
}

fn main() {
    let memories = env_usize("MCP_MEMORIES", 100_000);
    let sessions = env_usize("MCP_SESSIONS", 200);
    let home = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    {
        let r = git2::Repository::init(repo.path()).unwrap();
        std::fs::write(repo.path().join("README.md"), "bench\n").unwrap();
        let mut index = r.index().unwrap();
        index.add_path(Path::new("README.md")).unwrap();
        let tree = r.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("bench", "bench@example.com").unwrap();
        r.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
            .unwrap();
    }
    let out = shopfloor(home.path(), repo.path())
        .args(["workspace", "create", WS])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut rng = Rng::new(3);
    let queries: Vec<String> = (0..1000).map(|_| corpus::query(&mut rng)).collect();
    let info = Home::at(home.path().to_path_buf()).get(WS).unwrap();

    // ---- fill the workspace, then store-direct recall in this process ----
    let (direct_p50, direct_p99) = {
        let ws = Workspace::open(info.clone()).unwrap();
        let t = Instant::now();
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
        eprintln!(
            "wrote {memories} memories in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        for q in queries.iter().take(20) {
            ws.memory
                .search(&RecallQuery {
                    text: q.clone(),
                    limit: 8,
                    ..RecallQuery::default()
                })
                .unwrap();
        }
        let mut ms = Vec::with_capacity(CALLS);
        for i in 0..CALLS {
            let t = Instant::now();
            ws.memory
                .search(&RecallQuery {
                    text: queries[i % queries.len()].clone(),
                    limit: 8,
                    ..RecallQuery::default()
                })
                .unwrap();
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        ms.sort_by(f64::total_cmp);
        (percentile(&ms, 0.5), percentile(&ms, 0.99))
    };

    // ---- the factory ----
    let mut serve = shopfloor(home.path(), repo.path())
        .args(["serve", "--paused"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let socket = info.socket_path();
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "the factory never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (http, stdio, held, errors, spread) = rt.block_on(async {
        let uri = "http://localhost/mcp";
        let http_client: Client = ()
            .serve(StreamableHttpClientTransport::with_client(
                UnixSocketHttpClient::new(&socket.to_string_lossy(), uri),
                StreamableHttpClientTransportConfig::with_uri(uri),
            ))
            .await
            .unwrap();
        let http = time_calls(&http_client, &queries).await;
        let stdio_client_one = stdio_client(home.path(), repo.path()).await.unwrap();
        let stdio = time_calls(&stdio_client_one, &queries).await;

        // ---- many sessions at once ----
        let mut clients = Vec::with_capacity(sessions);
        let mut errors = 0usize;
        for _ in 0..sessions {
            match stdio_client(home.path(), repo.path()).await {
                Ok(c) => clients.push(c),
                Err(e) => {
                    errors += 1;
                    eprintln!("session failed to start: {e}");
                }
            }
        }
        let held = clients.len();
        let t = Instant::now();
        let mut tasks = Vec::new();
        for (i, c) in clients.into_iter().enumerate() {
            let q = queries[i % queries.len()].clone();
            tasks.push(tokio::spawn(async move {
                let mut failed = 0;
                for _ in 0..3 {
                    match c.call_tool(search_args(&q)).await {
                        Ok(r) if r.is_error != Some(true) => {}
                        _ => failed += 1,
                    }
                }
                let _ = c.cancel().await;
                failed
            }));
        }
        for task in tasks {
            errors += task.await.unwrap_or(1);
        }
        let spread = t.elapsed().as_secs_f64();
        let _ = http_client.cancel().await;
        let _ = stdio_client_one.cancel().await;
        (http, stdio, held, errors, spread)
    });
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(serve.id() as i32, libc::SIGTERM);
    }
    let _ = serve.wait();

    println!();
    println!("memory_search, {memories} memories, {CALLS} queries, limit 8 (ms)");
    println!("| path | p50 | p99 |");
    println!("|---|---|---|");
    println!("| store-direct (in process, no MCP) | {direct_p50:.2} | {direct_p99:.2} |");
    println!(
        "| MCP over streamable HTTP on the socket | {:.2} | {:.2} |",
        http.0, http.1
    );
    println!(
        "| MCP through `shopfloor mcp` (stdio -> socket -> factory) | {:.2} | {:.2} |",
        stdio.0, stdio.1
    );
    println!("| Hivemind, its own published recall figures | hundreds of ms to ~1000 | |");
    println!(
        "end-to-end overhead over store-direct at p50: {:.2} ms ({:.1}x); target p50 < 10 ms",
        stdio.0 - direct_p50,
        stdio.0 / direct_p50
    );
    println!(
        "{held} `shopfloor mcp` sessions held at once, 3 calls each in {spread:.1} s: {errors} errors"
    );
}

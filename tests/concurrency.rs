//! The factory under ordinary concurrency, on the real binary: eighty tickets at
//! concurrency 8, each run searching and writing memory over MCP and writing a file on its
//! branch, while people search and write memory through the CLI and MCP sessions search and
//! write at the same time. Every ticket must land, with no run lost to a race and nothing
//! hung. (A write racing a search once froze memory for good; concurrent sandboxes once
//! failed 7% of runs.) `SHOPFLOOR_STRESS_ROUNDS` sets the rounds (1 by default; CI runs 10).

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::Env;
use common::mcp::{Client, result_text, try_call, unix_transport};
use common::serve::Serve;
use rmcp::ServiceExt;
use serde_json::{Value, json};

const TICKETS: usize = 80;

const CONFIG: &str = r#"
[factory]
default_agent = "stress"
concurrency = 8
max_attempts = 2
quiet_timeout_s = 60
timeout_s = 600

[sandbox]
backend = "worktree"

[test]
command = "true"

# Landing speed is not what this measures: batches keep the queue up with the runs.
[merge]
mode = "batch"

[agents.stress]
adapter = "fixture"
scenario = "stress.toml"
"#;

/// Searches memory, writes a file of its own run (so branches never conflict), writes a
/// lesson, and ends: every MCP path a real agent uses all day.
const SCENARIO: &str = r#"
name = "stress"
echo_prompt = false
[[step]]
memory_search = "where do the notes of a run go"
[[step]]
run = "mkdir -p notes && echo \"note of run $SHOPFLOOR_RUN\" > notes/run-$SHOPFLOOR_RUN.md"
expect_exit = 0
[[step]]
memory_write = { kind = "lesson", text = "Each run writes its note under notes/, one file a run." }
[[step]]
say = "done"
"#;

fn rounds() -> usize {
    std::env::var("SHOPFLOOR_STRESS_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1)
}

#[test]
fn eighty_tickets_at_concurrency_eight_with_memory_traffic_all_land() {
    for round in 1..=rounds() {
        let started = Instant::now();
        let figures = round_of_stress();
        eprintln!(
            "stress round {round}: {TICKETS} tickets landed in {:.1} s; {} CLI and {} MCP memory calls alongside, 0 errors",
            started.elapsed().as_secs_f64(),
            figures.cli,
            figures.mcp
        );
    }
}

struct Figures {
    cli: usize,
    mcp: usize,
}

fn round_of_stress() -> Figures {
    let env = Env::new();
    let root = env.repo.path();
    std::fs::write(root.join("shopfloor.toml"), CONFIG).unwrap();
    std::fs::write(root.join("stress.toml"), SCENARIO).unwrap();
    common::commit_all(root, "stress fixture");
    env.ok(&["workspace", "create", "stress"]);
    env.ok(&["memory", "add", "Notes of a run go under notes/."]);
    for i in 0..TICKETS / 2 {
        env.ok(&["ticket", "add", &format!("Write the note of ticket {i}")]);
    }
    let serve = Serve::start(&env);
    let socket = std::path::PathBuf::from(serve.socket());

    // People at the same time: CLI searches and writes through the factory, and MCP
    // sessions on the socket.
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let cli_calls = Arc::new(AtomicUsize::new(0));
    let mcp_calls = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for t in 0..3 {
        let (stop, errors, calls) = (stop.clone(), errors.clone(), cli_calls.clone());
        let home = env.home.path().to_path_buf();
        let repo = root.to_path_buf();
        load.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let args: Vec<String> = if (t + i) % 4 == 0 {
                    vec![
                        "memory".into(),
                        "add".into(),
                        format!("A person's note {t}-{i}."),
                    ]
                } else {
                    vec!["memory".into(), "search".into(), "notes of a run".into()]
                };
                let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("shopfloor"))
                    .args(&args)
                    .env("SHOPFLOOR_HOME", &home)
                    .env_remove("SHOPFLOOR_WORKSPACE")
                    .current_dir(&repo)
                    .output()
                    .unwrap();
                if !out.status.success() {
                    errors.lock().unwrap().push(format!(
                        "{args:?}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                calls.fetch_add(1, Ordering::SeqCst);
                i += 1;
            }
        }));
    }
    {
        let (stop, errors, calls) = (stop.clone(), errors.clone(), mcp_calls.clone());
        let socket = socket.clone();
        load.push(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let sessions = (0..4).map(|s| {
                    let (stop, errors, calls, socket) =
                        (stop.clone(), errors.clone(), calls.clone(), socket.clone());
                    tokio::spawn(async move {
                        let c: Client = ().serve(unix_transport(&socket, None)).await.unwrap();
                        let mut i = 0;
                        while !stop.load(Ordering::SeqCst) {
                            let (tool, args) = if (s + i) % 2 == 0 {
                                ("memory_search", json!({"query": "notes of a run"}))
                            } else {
                                (
                                    "memory_write",
                                    json!({"kind": "note", "text": format!("MCP note {s}-{i}")}),
                                )
                            };
                            match try_call(&c, tool, args).await {
                                Ok(r) if r.is_error != Some(true) => {}
                                Ok(r) => errors
                                    .lock()
                                    .unwrap()
                                    .push(format!("{tool}: {}", result_text(&r))),
                                Err(e) => errors.lock().unwrap().push(format!("{tool}: {e}")),
                            }
                            calls.fetch_add(1, Ordering::SeqCst);
                            i += 1;
                        }
                        let _ = c.cancel().await;
                    })
                });
                for s in sessions.collect::<Vec<_>>() {
                    s.await.unwrap();
                }
            });
        }));
    }
    for i in TICKETS / 2..TICKETS {
        env.ok(&["ticket", "add", &format!("Write the note of ticket {i}")]);
    }

    // Every ticket lands; a hang shows as the deadline passing with the board frozen.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let tickets = env.json(&["ticket", "list", "--json"]);
        let tickets = tickets.as_array().unwrap();
        let merged = tickets.iter().filter(|t| t["state"] == "merged").count();
        let failed: Vec<&Value> = tickets
            .iter()
            .filter(|t| matches!(t["state"].as_str(), Some("failed" | "cancelled")))
            .collect();
        assert!(failed.is_empty(), "tickets failed: {failed:#?}");
        if merged == TICKETS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "hung: {merged} of {TICKETS} merged after 600 s; states: {:?}",
            tickets
                .iter()
                .map(|t| t["state"].as_str().unwrap_or("?"))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::SeqCst);
    for l in load {
        l.join().unwrap();
    }
    let errors = errors.lock().unwrap().clone();
    assert!(errors.is_empty(), "memory calls failed: {errors:#?}");

    // No run lost to a race: one run a ticket, each succeeded.
    let runs = env.json(&["run", "list", "--json"]);
    let runs = runs.as_array().unwrap();
    let not_ok: Vec<&Value> = runs.iter().filter(|r| r["state"] != "succeeded").collect();
    assert!(not_ok.is_empty(), "runs that did not succeed: {not_ok:#?}");
    assert_eq!(runs.len(), TICKETS);
    let lessons = env.json(&[
        "memory",
        "search",
        "one file a run",
        "--kind",
        "lesson",
        "--limit",
        "1000",
        "--json",
    ]);
    assert_eq!(
        lessons.as_array().unwrap().len(),
        TICKETS,
        "every run's memory_write arrived"
    );
    serve.stop();
    Figures {
        cli: cli_calls.load(Ordering::SeqCst),
        mcp: mcp_calls.load(Ordering::SeqCst),
    }
}

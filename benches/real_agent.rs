//! The time the factory adds to a real agent run, run with `cargo bench --bench real_agent`:
//! from the moment `shopfloor serve` picks a ticket (the run's `started` time) to the real
//! CLI's first request to the (scripted) model server, beside the CLI's own start-up —
//! the same planned command launched directly, to its first request — measured in the same
//! run on the same machine. The difference is the factory's share: preparing the sandbox,
//! building the context pack and prompt, writing the run's files and spawning. Target:
//! under 300 ms. Each of Claude Code and Codex, ROUNDS tickets each (REAL_AGENT_ROUNDS).
//!
//! Needs scripts/install-agent-clis.sh; without it this prints one line and exits.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::Env;
use common::agent_clis::{self as clis, AgentClis};
use common::model_server::{ModelServer, Turn};
use shopfloor::agent::{self, Adapter, AgentProfile, LaunchContext};
use shopfloor::sandbox::BackendKind;

const TARGET_MS: f64 = 300.0;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[derive(Clone, Copy)]
enum Cli {
    Claude,
    Codex,
}

fn main() {
    let Some(clis) = AgentClis::find() else {
        return;
    };
    let rounds = std::env::var("REAL_AGENT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5usize);
    println!("real_agent: {rounds} tickets per CLI, worktree sandbox, medians");
    for cli in [Cli::Claude, Cli::Codex] {
        bench(cli, &clis, rounds);
    }
}

fn bench(cli: Cli, clis: &AgentClis, rounds: usize) {
    let env = Env::new();
    let root = env.repo.path();
    for (path, text) in clis::PROJECT {
        std::fs::write(root.join(path), text).unwrap();
    }
    // One answer per run: the factory's run and the direct launch each take one turn.
    let turns = || {
        (0..rounds * 2)
            .map(|_| Turn::text("ok"))
            .collect::<Vec<_>>()
    };
    let server = match cli {
        Cli::Claude => ModelServer::anthropic(turns()),
        Cli::Codex => ModelServer::openai(turns()),
    };
    let (name, profile_toml, mut profile) = match cli {
        Cli::Claude => {
            let mut p = AgentProfile::new(Adapter::ClaudeCode);
            p.env = clis::claude_env(&server.url())
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            (
                "claude",
                format!(
                    "adapter = \"claude-code\"\nenv = {}",
                    clis::toml_env(&clis::claude_env(&server.url()))
                ),
                p,
            )
        }
        Cli::Codex => {
            let mut p = AgentProfile::new(Adapter::Codex);
            p.model = Some(clis::CODEX_MODEL.into());
            p.args = clis::codex_provider_args(&server.url());
            p.env = clis::codex_env()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            (
                "codex",
                format!(
                    "adapter = \"codex\"\nmodel = \"{}\"\nargs = {}\nenv = {}",
                    clis::CODEX_MODEL,
                    clis::toml_array(&clis::codex_provider_args(&server.url())),
                    clis::toml_env(&clis::codex_env())
                ),
                p,
            )
        }
    };
    std::fs::write(
        root.join("shopfloor.toml"),
        format!(
            "[factory]\ndefault_agent = \"{name}\"\n[sandbox]\nbackend = \"worktree\"\n\
             [test]\ncommand = \"{}\"\n[agents.{name}]\n{profile_toml}\n",
            clis::TEST_COMMAND
        ),
    )
    .unwrap();
    common::commit_all(root, "the project");
    env.ok(&["workspace", "create", "bench"]);
    let home = tempfile::tempdir().unwrap();
    let serve = clis.serve(&env, home.path());
    profile.command = Some(match cli {
        Cli::Claude => clis.claude().display().to_string(),
        Cli::Codex => clis.codex().display().to_string(),
    });

    let (mut factory, mut direct) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        // The factory: a ticket, picked, prepared, launched.
        let seen = server.requests().len();
        env.ok(&["ticket", "add", &format!("Ticket {i}")]);
        let first = wait_request(&server, seen);
        let t = wait_ticket_done(&env, i as u64 + 1);
        let run = t["runs"][0].as_u64().unwrap();
        let r = env.json(&["run", "show", &run.to_string(), "--json"]);
        let started: jiff::Timestamp = r["started"].as_str().unwrap().parse().unwrap();
        let started = SystemTime::UNIX_EPOCH + Duration::from_nanos(started.as_nanosecond() as u64);
        factory.push(ms(first.duration_since(started).unwrap_or_default()));

        // The CLI alone: the same plan, launched here, to its first request.
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("w");
        common::init_repo(&work);
        let ctx = LaunchContext {
            workdir: work.clone(),
            mcp_socket: Some(PathBuf::from(serve.socket())),
            token: None,
            shopfloor_exe: assert_cmd::cargo::cargo_bin("shopfloor"),
            run: 0,
            backend: BackendKind::Worktree,
            test_command: Some(clis::TEST_COMMAND.into()),
        };
        let plan = agent::plan(name, &profile, "say ok", &ctx).unwrap();
        for (path, bytes) in &plan.files {
            let p = work.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        let seen = server.requests().len();
        let launched = SystemTime::now();
        let mut child = Command::new(&plan.argv[0])
            .args(&plan.argv[1..])
            .current_dir(&work)
            .env("HOME", home.path())
            .envs(plan.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let first = wait_request(&server, seen);
        let _ = child.wait();
        direct.push(ms(first.duration_since(launched).unwrap_or_default()));
    }
    serve.stop();
    let (f, d) = (median(factory.clone()), median(direct.clone()));
    let added = f - d;
    println!(
        "real_agent {name}: picked -> first model request {f:.0} ms; the CLI alone, launched -> first request {d:.0} ms; \
         the factory adds {added:.0} ms (target < {TARGET_MS:.0} ms: {})",
        if added < TARGET_MS { "met" } else { "MISSED" }
    );
    println!("  factory runs (ms): {factory:.0?}\n  direct runs (ms):  {direct:.0?}");
}

/// The wall time of the first request after the first `seen` ones.
fn wait_request(server: &ModelServer, seen: usize) -> SystemTime {
    let start = Instant::now();
    loop {
        if let Some(r) = server.requests().get(seen) {
            return r.wall;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no model request within 60 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn wait_ticket_done(env: &Env, id: u64) -> serde_json::Value {
    common::wait_for(
        &format!("ticket {id} to finish"),
        Duration::from_secs(60),
        || {
            let t = env.json(&["ticket", "show", &id.to_string(), "--json"]);
            let s = t["state"].as_str().unwrap_or("");
            (s != "queued" && s != "running" && !t["runs"].as_array().unwrap().is_empty())
                .then_some(t)
        },
    )
}

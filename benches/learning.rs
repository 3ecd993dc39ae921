//! What the learning loop is worth (issue 14), run with `cargo bench --bench learning`:
//! the same six tickets through a real `shopfloor serve`, once with `[factory] learning`
//! on and once off, in the same run. Every ticket hides a trap its first attempt falls
//! into: a check that fails with an assertion saying what is missing. Three traps, each
//! hidden in two tickets worked one after the other.
//!
//! The scripted agent (fixture scenarios) does the right thing only when its prompt tells
//! it: the trap's assertion (which only a failure digest carries: in the retry's prompt,
//! or in a lesson recalled from another ticket's failure), or, like an agent that
//! eventually stumbles on it, on its third attempt. Printed: landed tickets, attempts and
//! tokens per landed ticket, and wall time, loop on beside loop off.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod harness;
use harness::{committed_repo, shopfloor};

const TRAPS: [(&str, &str); 3] = [
    ("a", "the cache must be warmed before the first read"),
    ("b", "dates are stored in UTC, not local time"),
    ("c", "the retry budget is per request, not per client"),
];

/// Ticket `i`'s agent, whose change sits near trap `trap`.
fn scenario(i: usize, trap: &str) -> String {
    let work = format!("trap_{trap}/work_{i}.txt");
    format!(
        r#"name = "ticket-{i}"
[[step]]
say = "Working on the ticket."
[[step]]
write = {{ path = "{work}", content = "the change\n" }}
# Told what the check asserts (a failure digest: its own, or another ticket's lesson),
# the agent does the right thing.
[[step]]
when_prompt_contains = "trap {trap}:"
write = {{ path = "{work}", content = "the change, fixed\n" }}
# An agent that gets there on its third try anyway.
[[step]]
when_prompt_contains = "attempt 2 (run"
write = {{ path = "{work}", content = "the change, fixed\n" }}
[[step]]
run = "sh trap_{trap}/check.sh {work}"
expect_exit = 0
[[step]]
say = "Done: the check passes."
"#
    )
}

/// Ticket `i`'s trap: each trap is hidden in two tickets, the second worked after the first.
fn trap_of(i: usize) -> &'static str {
    TRAPS[i % TRAPS.len()].0
}

struct Outcome {
    landed: usize,
    attempts: u64,
    tokens: u64,
    wall: Duration,
}

fn run(learning: bool) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let repo = dir.path().join("repo");
    let mut files = vec![("README.md", "learning\n".to_string())];
    let mut agents = String::new();
    let checks: Vec<(String, String)> = TRAPS
        .iter()
        .map(|(t, why)| {
            (
                format!("trap_{t}/check.sh"),
                format!(
                    "grep -q fixed \"$1\" || {{ echo \"AssertionError: trap {t}: {why} ($1 lacks the fix)\"; exit 1; }}\n"
                ),
            )
        })
        .collect();
    let scenarios: Vec<(String, String)> = (0..6)
        .map(|i| (format!("ticket-{i}.toml"), scenario(i, trap_of(i))))
        .collect();
    for i in 0..6 {
        agents.push_str(&format!(
            "[agents.ticket-{i}]\nadapter = \"fixture\"\nscenario = \"ticket-{i}.toml\"\n"
        ));
    }
    let config = format!(
        "[factory]\nconcurrency = 1\nmax_attempts = 3\nlearning = {learning}\ndefault_agent = \"ticket-0\"\n\
         [sandbox]\nbackend = \"worktree\"\n[test]\ncommand = \"true\"\n{agents}"
    );
    files.push(("shopfloor.toml", config));
    let owned: Vec<(String, String)> = checks.into_iter().chain(scenarios).collect();
    let mut all: Vec<(&str, String)> = files.clone();
    for (p, c) in &owned {
        all.push((p.as_str(), c.clone()));
    }
    committed_repo(&repo, &all);
    shopfloor(&home, &repo, &["workspace", "create", "learn"]);
    // Tickets in order: each trap twice, the second after the first has ended.
    for i in 0..6 {
        let t = trap_of(i);
        shopfloor(
            &home,
            &repo,
            &[
                "ticket",
                "add",
                &format!("Change {i} near trap {t}"),
                "--agent",
                &format!("ticket-{i}"),
                "--paths",
                &format!("trap_{t}/**"),
                "--priority",
                &(10 - i).to_string(),
            ],
        );
    }
    let started = Instant::now();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_shopfloor"))
        .args(["serve"])
        .env("SHOPFLOOR_HOME", &home)
        .current_dir(&repo)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = serve.stdout.take().unwrap();
    std::thread::spawn(move || for _ in BufReader::new(out).lines() {});
    let deadline = Instant::now() + Duration::from_secs(300);
    let tickets = loop {
        let t: serde_json::Value =
            serde_json::from_str(&shopfloor(&home, &repo, &["ticket", "list", "--json"])).unwrap();
        let done = t
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "merged" || t["state"] == "failed");
        if done || Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let wall = started.elapsed();
    if std::env::var("LEARNING_SHOW").is_ok() {
        for t in tickets.as_array().unwrap() {
            for r in t["runs"].as_array().unwrap() {
                println!("ticket {} run {r}:", t["id"]);
                let steps = shopfloor(&home, &repo, &["run", "logs", &r.to_string()]);
                println!("{}", steps.lines().take(6).collect::<Vec<_>>().join("\n"));
            }
        }
    }
    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    let _ = serve.wait();
    let landed: Vec<&serde_json::Value> = tickets
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == "merged")
        .collect();
    let runs: serde_json::Value =
        serde_json::from_str(&shopfloor(&home, &repo, &["run", "list", "--json"])).unwrap();
    let mut attempts = 0;
    let mut tokens = 0;
    for t in &landed {
        for r in t["runs"].as_array().unwrap() {
            attempts += 1;
            if let Some(run) = runs.as_array().unwrap().iter().find(|x| x["id"] == *r) {
                let u = &run["usage"];
                tokens += u["input_tokens"].as_u64().unwrap_or(0)
                    + u["output_tokens"].as_u64().unwrap_or(0);
            }
        }
    }
    Outcome {
        landed: landed.len(),
        attempts,
        tokens,
        wall,
    }
}

fn main() {
    let on = run(true);
    let off = run(false);
    let per = |o: &Outcome, n: u64| n as f64 / o.landed.max(1) as f64;
    println!("learning loop: 6 tickets, 3 traps hidden in two tickets each, max_attempts 3");
    println!(
        "{:<10} {:>7} {:>20} {:>18} {:>9}",
        "loop", "landed", "attempts / landed", "tokens / landed", "wall"
    );
    for (name, o) in [("on", &on), ("off", &off)] {
        println!(
            "{:<10} {:>5}/6 {:>20.2} {:>18.0} {:>8.1}s",
            name,
            o.landed,
            per(o, o.attempts),
            per(o, o.tokens),
            o.wall.as_secs_f64()
        );
    }
    println!(
        "with the loop: {:.2}x the attempts and {:.2}x the tokens per landed ticket",
        per(&on, on.attempts) / per(&off, off.attempts),
        per(&on, on.tokens) / per(&off, off.tokens)
    );
}

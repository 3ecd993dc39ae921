//! The factory under load (issue 3), run with `cargo bench --bench factory_load`:
//! 16 fixture agents each printing 1,000 stream-json lines a second for 60 s through a
//! real `shopfloor serve` with worktree sandboxes. Printed: steps expected and stored per
//! run (no line lost), the factory process's own CPU (its agents excluded) in cores, and
//! its resident memory over time (flat, not growing with the steps it has seen).
//! LOAD_AGENTS and LOAD_SECONDS scale it down for a quick look.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod harness;
use harness::{committed_repo, proc_usage, shopfloor};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let agents = env_u64("LOAD_AGENTS", 16);
    let seconds = env_u64("LOAD_SECONDS", 60);
    let rate = 1000;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let repo = dir.path().join("repo");
    committed_repo(
        &repo,
        &[
            ("README.md", "load\n".into()),
            (
                "flood.toml",
                format!(
                    "name = \"flood\"\n[[step]]\nflood = {{ per_second = {rate}, seconds = {seconds} }}\n"
                ),
            ),
            (
                "shopfloor.toml",
                format!(
                    "[factory]\nconcurrency = {agents}\ndefault_agent = \"flood\"\nquiet_timeout_s = 60\n\
                     [sandbox]\nbackend = \"worktree\"\n[agents.flood]\nadapter = \"fixture\"\nscenario = \"flood.toml\"\n"
                ),
            ),
        ],
    );
    shopfloor(&home, &repo, &["workspace", "create", "load"]);

    let mut serve = Command::new(env!("CARGO_BIN_EXE_shopfloor"))
        .args(["serve", "--paused"])
        .env("SHOPFLOOR_HOME", &home)
        .current_dir(&repo)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(serve.stdout.take().unwrap()).lines();
    for l in lines.by_ref() {
        if l.unwrap().starts_with("sandbox:") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let pid = serve.id();
    for i in 0..agents {
        shopfloor(&home, &repo, &["ticket", "add", &format!("flood {i}")]);
    }
    // Start them all at once: stop the factory, unpause by restarting without --paused.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    serve.wait().unwrap();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_shopfloor"))
        .args(["serve"])
        .env("SHOPFLOOR_HOME", &home)
        .current_dir(&repo)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = serve.id();
    println!(
        "factory load: {agents} fixture agents x {rate} lines/s x {seconds} s, worktree sandboxes"
    );

    let start = Instant::now();
    let (cpu0, _) = proc_usage(pid);
    let mut rss = vec![];
    let mut done = false;
    while !done {
        std::thread::sleep(Duration::from_secs(2));
        let (_, r) = proc_usage(pid);
        rss.push((start.elapsed().as_secs(), r));
        let tickets: serde_json::Value =
            serde_json::from_str(&shopfloor(&home, &repo, &["ticket", "list", "--json"])).unwrap();
        done = tickets
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] != "queued" && t["state"] != "running");
        assert!(
            start.elapsed() < Duration::from_secs(seconds * 4 + 120),
            "the load run did not finish"
        );
    }
    let wall = start.elapsed().as_secs_f64();
    let (cpu1, _) = proc_usage(pid);
    let runs: serde_json::Value =
        serde_json::from_str(&shopfloor(&home, &repo, &["run", "list", "--json"])).unwrap();
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    serve.wait().unwrap();

    // Expected per run: started, the echoed prompt, one message per flood line, usage, exit.
    let flood_lines = rate * seconds;
    let mut lost = 0i64;
    let mut states = std::collections::BTreeMap::new();
    for r in runs.as_array().unwrap() {
        *states
            .entry(r["state"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
        let steps = r["steps"].as_u64().unwrap() as i64;
        let expected = flood_lines as i64 + 4;
        lost += (expected - steps).max(0);
        if steps != expected {
            println!("  run {}: {steps} steps, expected {expected}", r["id"]);
        }
    }
    let total_steps: u64 = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["steps"].as_u64().unwrap())
        .sum();
    println!("  runs by state: {states:?}");
    println!(
        "  steps stored: {total_steps} ({:.0} steps/s over {wall:.1} s); lines lost: {lost}",
        total_steps as f64 / wall
    );
    println!(
        "  factory CPU (its own, agents excluded): {:.2} cores (target < 1.0)",
        (cpu1 - cpu0) / wall
    );
    let warm: Vec<u64> = rss
        .iter()
        .filter(|(t, _)| *t >= 10)
        .map(|(_, r)| *r)
        .collect();
    if let (Some(min), Some(max)) = (warm.iter().min(), warm.iter().max()) {
        println!(
            "  factory anonymous RSS (heap) after warm-up: min {} MiB, max {} MiB, last {} MiB (flat = max close to min)",
            min / 1024,
            max / 1024,
            warm.last().unwrap() / 1024
        );
    }
    println!(
        "  rss samples (s, MiB): {:?}",
        rss.iter().map(|(t, r)| (*t, r / 1024)).collect::<Vec<_>>()
    );
}

//! Runs on other machines against the same runs on this one, measured in the same run
//! (`cargo bench --bench hosts`; needs root and openssh-server, as the hosts tests do):
//!
//! 1. Ticket picked (the run's `started`) to the agent's first line back, on `local` and
//!    on a host over SSH, one ticket at a time: the first remote run pushes the whole
//!    repository to the host's mirror, later ones only what landed since. Target: under
//!    1 s on a host plus that transfer.
//! 2. Steps streamed back from 3 hosts x 8 fixture agents flooding at once, against 8
//!    agents on `local`: steps per second, and every run's step count against the count a
//!    local run of the same scenario stores (0 lost).
//! 3. A host's link cut with a run live: the time until the run is started again on
//!    another host. Target: under 15 s.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::Env;
use common::hosts::{Lacks, NetnsHost};
use common::serve::Serve;
use serde_json::Value;

const ROUNDS: usize = 5;
const FLOOD_LINES: u64 = 2000;

fn config(hosts: &str, local_slots: usize, concurrency: usize, scenario: &str) -> String {
    format!(
        "[factory]\ndefault_agent = \"a\"\nquiet_timeout_s = 120\nlocal_slots = {local_slots}\n\
         concurrency = {concurrency}\n\n[sandbox]\nbackend = \"worktree\"\n\n[test]\ncommand = \"true\"\n\n\
         [agents.a]\nadapter = \"fixture\"\nscenario = \"{scenario}\"\n\n{hosts}"
    )
}

const QUICK: &str = "name = \"quick\"\n[[step]]\nsay = \"started\"\n[[step]]\nrun = \"echo x > quick-$SHOPFLOOR_RUN.txt\"\n";

fn flood() -> String {
    format!(
        "name = \"flood\"\n[[step]]\nsay = \"started\"\n[[step]]\nflood = {{ per_second = 100000, lines = {FLOOD_LINES} }}\n[[step]]\nsay = \"done\"\n"
    )
}

const SLOW: &str = "name = \"slow\"\n[[step]]\nsay = \"started\"\n[[step]]\nsleep_ms = 4000\n[[step]]\nsay = \"done\"\n";

fn ts(v: &Value) -> jiff::Timestamp {
    v.as_str().unwrap().parse().unwrap()
}

/// Picked to first line back, in ms, for run `r`.
fn to_first_line(env: &Env, r: &Value) -> f64 {
    // One step a line; the first the agent printed (not the factory's lifecycle marks).
    let trace = env.ok(&["trace", "show", &r["id"].to_string(), "--json"]);
    let first: Value = trace
        .lines()
        .find(|l| !l.contains("\"lifecycle\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_else(|| panic!("no step: {trace}"));
    let d = ts(&first["ts"]).duration_since(ts(&r["started"]));
    d.as_secs_f64() * 1e3
}

/// Tickets one at a time; ms from picked to first line for each.
fn one_at_a_time(env: &Env) -> Vec<f64> {
    let mut out = vec![];
    for i in 0..ROUNDS {
        env.ok(&["ticket", "add", &format!("quick {i}")]);
        env.wait_merged(i + 1, Duration::from_secs(600));
        let r = env
            .runs()
            .into_iter()
            .max_by_key(|r| r["id"].as_u64())
            .unwrap();
        out.push(to_first_line(env, &r));
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Over `n` flooding tickets: steps per second from the first run picked to the last
/// ended, steps per second while agents streamed (first line to last line of any run),
/// each run's stored step count, and each run's host.
fn flood_rate(env: &Env, n: usize) -> (f64, f64, Vec<u64>, Vec<String>) {
    for i in 0..n {
        env.ok(&["ticket", "add", &format!("flood {i}")]);
    }
    env.wait_merged(n, Duration::from_secs(600));
    let rs = env.runs();
    let first = rs.iter().map(|r| ts(&r["started"])).min().unwrap();
    let last = rs.iter().map(|r| ts(&r["ended"])).max().unwrap();
    let steps: Vec<u64> = rs.iter().map(|r| r["steps"].as_u64().unwrap()).collect();
    let total: u64 = steps.iter().sum();
    let (mut line0, mut line1) = (None::<jiff::Timestamp>, None::<jiff::Timestamp>);
    for r in &rs {
        let trace = env.ok(&["trace", "show", &r["id"].to_string(), "--json"]);
        for l in trace.lines().filter(|l| !l.contains("\"lifecycle\"")) {
            let t = ts(&serde_json::from_str::<Value>(l).unwrap()["ts"]);
            line0 = Some(line0.map_or(t, |x| x.min(t)));
            line1 = Some(line1.map_or(t, |x| x.max(t)));
        }
    }
    let whole = last.duration_since(first).as_secs_f64();
    let streaming = line1.unwrap().duration_since(line0.unwrap()).as_secs_f64();
    let hosts = rs
        .iter()
        .map(|r| r["host"].as_str().unwrap_or("local").to_string())
        .collect();
    (total as f64 / whole, total as f64 / streaming, steps, hosts)
}

fn main() {
    let hosts: Vec<NetnsHost> = (1..=4)
        .filter_map(|_| NetnsHost::start(Lacks::default()))
        .collect();
    if hosts.len() < 4 {
        println!("hosts: needs root and openssh-server (network namespaces with sshd); skipped");
        return;
    }
    println!("hosts: fixture agents, worktree sandboxes, hosts are network namespaces over veth");

    // 1. Picked to first line.
    let local = Env::project(
        "bl",
        &[
            ("shopfloor.toml", &config("", 1, 1, "quick.toml")),
            ("quick.toml", QUICK),
        ],
    );
    let remote = Env::project(
        "br",
        &[
            (
                "shopfloor.toml",
                &config(&hosts[0].config("h1", ""), 0, 1, "quick.toml"),
            ),
            ("quick.toml", QUICK),
        ],
    );
    let l = {
        let _s = Serve::start(&local);
        one_at_a_time(&local)
    };
    let r = {
        let _s = Serve::start(&remote);
        one_at_a_time(&remote)
    };
    let (first, later) = (r[0], median(r[1..].to_vec()));
    println!(
        "  picked to first line: local median {:.0} ms; host first {:.0} ms (whole repo to its mirror), later median {:.0} ms (incremental) -> {:.2}x local; target < 1000 ms",
        median(l.clone()),
        first,
        later,
        later / median(l)
    );

    // 2. Steps streamed back: 3 hosts x 8 agents, against 8 agents on local.
    let three: String = hosts[1..4]
        .iter()
        .enumerate()
        .map(|(i, h)| {
            h.config(&format!("f{i}"), "")
                .replace("slots = 2", "slots = 8")
        })
        .collect();
    let far = Env::project(
        "bf",
        &[
            ("shopfloor.toml", &config(&three, 0, 24, "flood.toml")),
            ("flood.toml", &flood()),
        ],
    );
    let near = Env::project(
        "bn",
        &[
            ("shopfloor.toml", &config("", 8, 8, "flood.toml")),
            ("flood.toml", &flood()),
        ],
    );
    let (near_rate, near_stream, near_steps, _) = {
        let _s = Serve::start(&near);
        flood_rate(&near, 8)
    };
    let (far_rate, far_stream, far_steps, far_hosts) = {
        let _s = Serve::start(&far);
        flood_rate(&far, 24)
    };
    let want = near_steps[0];
    let lost: u64 = far_steps.iter().map(|s| want.saturating_sub(*s)).sum();
    assert!(near_steps.iter().all(|s| *s == want), "{near_steps:?}");
    let mut by_host = std::collections::BTreeMap::<String, usize>::new();
    for h in far_hosts {
        *by_host.entry(h).or_default() += 1;
    }
    println!(
        "  streamed back: 3 hosts x 8 agents {far_stream:.0} steps/s while streaming, {far_rate:.0} steps/s picked to ended ({} steps, runs by host {by_host:?}); local x 8 {near_stream:.0} and {near_rate:.0} steps/s -> {:.2}x and {:.2}x; lost {lost} (each run {want} steps)",
        far_steps.iter().sum::<u64>(),
        far_stream / near_stream,
        far_rate / near_rate
    );
    assert_eq!(lost, 0, "{far_steps:?}");

    // 3. A dead host noticed and its run started elsewhere.
    drop(far);
    let hosts2: Vec<NetnsHost> = (5..=6)
        .filter_map(|_| NetnsHost::start(Lacks::default()))
        .collect();
    let env = Env::project(
        "bd",
        &[
            (
                "shopfloor.toml",
                &config(
                    &format!(
                        "{}{}",
                        hosts2[0].config("d1", ""),
                        hosts2[1].config("d2", "")
                    ),
                    0,
                    4,
                    "slow.toml",
                )
                .replace("slots = 2", "slots = 1"),
            ),
            ("slow.toml", SLOW),
        ],
    );
    let _s = Serve::start(&env);
    env.ok(&["ticket", "add", "outlive a host"]);
    let start = Instant::now();
    let on = loop {
        if let Some(r) = env
            .runs()
            .into_iter()
            .find(|r| r["state"] == "running" && r["steps"].as_u64() >= Some(1))
        {
            break r;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no run started");
        std::thread::sleep(Duration::from_millis(20));
    };
    let dead = if on["host"] == "d1" {
        &hosts2[0]
    } else {
        &hosts2[1]
    };
    let cut = Instant::now();
    dead.cut();
    let moved = loop {
        if env.runs().iter().any(|r| r["id"] != on["id"]) {
            break cut.elapsed();
        }
        assert!(cut.elapsed() < Duration::from_secs(60), "no restart");
        std::thread::sleep(Duration::from_millis(20));
    };
    env.wait_merged(1, Duration::from_secs(600));
    println!(
        "  dead host: link cut to its run started on another host {:.1} s (keepalives every {} s, {} missed); target < 15 s",
        moved.as_secs_f64(),
        shopfloor::hosts::link::KEEPALIVE.as_secs(),
        shopfloor::hosts::link::KEEPALIVE_MISSES
    );
}

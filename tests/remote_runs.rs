//! Runs on other machines through the real binary: each host is a network namespace with
//! its own sshd and address (common::hosts), reached only over SSH, sharing nothing the
//! factory relies on. A ticket runs on a host and lands, its agent reaching the factory's
//! MCP through the forwarded socket; sixteen agents spread over three hosts by their
//! slots; a host's link cut mid-run sends its runs to another host; a `kill -9` of the
//! factory with remote runs live, then a restart, reaps them there and finishes the work;
//! a Docker host runs the agent in a container hardened as locally. Each test uses host
//! numbers of its own: tests in one process run at once.

use crate::common;

use std::time::{Duration, Instant};

use common::Env;
use common::hosts::{Lacks, NetnsHost};
use common::serve::Serve;
use serde_json::Value;

const REMOTE: &str = r#"
name = "remote"
[[step]]
run = "pwd"
[[step]]
write = { path = "done-{ticket}.txt", content = "written on a host\n" }
[[step]]
memory_write = { kind = "note", text = "a note from a host" }
[[step]]
say = "done"
"#;

/// The workspace's config: runs only on `hosts`, agent `remote` playing `scenario`.
fn config(hosts: &str, extra: &str, scenario: &str) -> String {
    format!(
        "[factory]\ndefault_agent = \"remote\"\nquiet_timeout_s = 60\nlocal_slots = 0\nconcurrency = 24\n{extra}\n\
         [sandbox]\nbackend = \"worktree\"\n\n[test]\ncommand = \"true\"\n\n\
         [agents.remote]\nadapter = \"fixture\"\nscenario = \"{scenario}\"\n\n{hosts}"
    )
}

#[test]
fn a_ticket_runs_on_a_remote_host_and_lands() {
    let Some(host) = NetnsHost::start(Lacks::default()) else {
        return;
    };
    let env = Env::project(
        "rr",
        &[
            (
                "shopfloor.toml",
                &config(&host.config("alpha", ""), "", "remote.toml"),
            ),
            ("remote.toml", &REMOTE.replace("{ticket}", "1")),
        ],
    );
    let _serve = Serve::start(&env);
    let started = Instant::now();
    env.ok(&["ticket", "add", "Write a file on a host"]);
    env.wait_merged(1, Duration::from_secs(90));
    eprintln!("ticket to merged on a host: {:?}", started.elapsed());
    let r = &env.runs()[0];
    assert_eq!(r["host"], "alpha", "{r}");
    assert_eq!(r["state"], "succeeded", "{r}");
    // The agent ran in the host's work dir, not this machine's data dir.
    let steps = env.ok(&["trace", "show", &r["id"].to_string()]);
    assert!(
        steps.contains(&format!("/tmp/{}-work/", host.ns)),
        "{steps}"
    );
    // Its memory write went through the socket forwarded over SSH.
    let found = env.ok(&["memory", "search", "a note from a host"]);
    assert!(found.contains("a note from a host"), "{found}");
    let listed = env.ok(&["run", "list"]);
    assert!(
        listed.contains("HOST") && listed.contains("alpha"),
        "{listed}"
    );
    // The work came back and landed on the factory's main.
    let clone = git2::Repository::open(env.home.path().join("rr/repo")).unwrap();
    let head = clone.head().unwrap().peel_to_tree().unwrap();
    assert!(head.get_path(std::path::Path::new("done-1.txt")).is_ok());
    // The checkout on the host is gone, the mirror stays.
    let runs_dir = std::fs::read_dir(format!("/tmp/{}-work", host.ns))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path()
        .join("runs");
    assert_eq!(std::fs::read_dir(&runs_dir).unwrap().count(), 0);

    // A label no host offers: the ticket fails at once, saying what to add.
    env.ok(&["ticket", "add", "Needs a TPU", "--labels", "tpu"]);
    let failed = common::wait_for("the tpu ticket failed", Duration::from_secs(30), || {
        env.tickets()
            .into_iter()
            .find(|t| t["title"] == "Needs a TPU" && t["state"] == "failed")
    });
    let shown = env.ok(&["ticket", "show", &failed["id"].to_string()]);
    assert!(shown.contains("labels    tpu"), "{shown}");
    let why = env.ok(&["ticket", "list", "--json"]);
    assert!(why.contains("no host offers the labels tpu"), "{why}");
    // A label made to be something else is refused with what a label is.
    let (_, err) = env.fails(&["ticket", "add", "x", "--labels", "g p u"]);
    assert!(err.contains("is not a word"), "{err}");
    let (_, err) = env.fails(&["ticket", "add", "x", "--labels", "$(reboot)"]);
    assert!(err.contains("is not a word"), "{err}");
}

/// A scenario that takes a while, so runs overlap and a test can act while they live.
fn slow(ms: u64) -> String {
    format!(
        "name = \"slow\"\n[[step]]\nsay = \"working\"\n[[step]]\nsleep_ms = {ms}\n\
         [[step]]\nrun = \"echo made > made-$SHOPFLOOR_RUN.txt\"\n[[step]]\nsay = \"done\"\n"
    )
}

/// The most runs that were live at once on each host, from their start and end times.
fn peak_by_host(runs: &[Value]) -> std::collections::BTreeMap<String, usize> {
    let mut edges: std::collections::BTreeMap<String, Vec<(String, i32)>> = Default::default();
    for r in runs {
        let host = r["host"].as_str().unwrap_or("local").to_string();
        let e = edges.entry(host).or_default();
        e.push((r["started"].as_str().unwrap().to_string(), 1));
        e.push((r["ended"].as_str().unwrap().to_string(), -1));
    }
    edges
        .into_iter()
        .map(|(h, mut e)| {
            // An end sorts before a start at the same instant: a slot freed is reusable.
            e.sort();
            let (mut now, mut peak) = (0i32, 0i32);
            for (_, d) in e {
                now += d;
                peak = peak.max(now);
            }
            (h, peak as usize)
        })
        .collect()
}

#[test]
fn sixteen_agents_spread_over_three_hosts_by_their_slots() {
    let hosts: Vec<NetnsHost> = (2..=4)
        .filter_map(|_| NetnsHost::start(Lacks::default()))
        .collect();
    if hosts.len() < 3 {
        return;
    }
    let slots = [2usize, 3, 5];
    let config_hosts: String = hosts
        .iter()
        .zip(slots)
        .enumerate()
        .map(|(i, (h, s))| {
            h.config(&format!("h{i}"), "")
                .replace("slots = 2", &format!("slots = {s}"))
        })
        .collect();
    let env = Env::project(
        "rs",
        &[
            ("shopfloor.toml", &config(&config_hosts, "", "slow.toml")),
            ("slow.toml", &slow(1500)),
        ],
    );
    let _serve = Serve::start(&env);
    let started = Instant::now();
    for i in 0..16 {
        env.ok(&["ticket", "add", &format!("Spread {i}")]);
    }
    env.wait_merged(16, Duration::from_secs(240));
    eprintln!("16 tickets over 3 hosts: {:?}", started.elapsed());
    let runs = env.runs();
    assert_eq!(runs.len(), 16, "{}", env.dump());
    let peaks = peak_by_host(&runs);
    eprintln!("peak live runs by host: {peaks:?}");
    for (i, s) in slots.iter().enumerate() {
        let name = format!("h{i}");
        let peak = peaks.get(&name).copied().unwrap_or(0);
        assert!(peak >= 1, "{name} ran nothing: {peaks:?}");
        assert!(peak <= *s, "{name} ran {peak} at once with {s} slots");
    }
    assert!(!peaks.contains_key("local"), "local_slots = 0: {peaks:?}");
    // Every run's work came back: 16 files on main.
    let clone = git2::Repository::open(env.home.path().join("rs/repo")).unwrap();
    let tree = clone.head().unwrap().peel_to_tree().unwrap();
    let made = tree
        .iter()
        .filter(|e| e.name().is_ok_and(|n| n.starts_with("made-")))
        .count();
    assert_eq!(made, 16);
}

#[test]
fn a_cut_link_sends_its_runs_to_another_host_counted_as_no_attempt() {
    let Some(alpha) = NetnsHost::start(Lacks::default()) else {
        return;
    };
    let Some(beta) = NetnsHost::start(Lacks::default()) else {
        return;
    };
    // One attempt allowed: a retry after a lost host must not count as one.
    let hosts = format!(
        "{}{}",
        alpha.config("alpha", "labels = [\"first\"]"),
        beta.config("beta", "labels = [\"first\"]")
    );
    let env = Env::project(
        "rc",
        &[
            (
                "shopfloor.toml",
                &config(&hosts, "max_attempts = 1", "slow.toml"),
            ),
            ("slow.toml", &slow(6000)),
        ],
    );
    let _serve = Serve::start(&env);
    env.ok(&["ticket", "add", "Survive a lost host", "--labels", "first"]);
    let on_alpha = common::wait_for(
        "a run on alpha with a step streamed",
        Duration::from_secs(60),
        || {
            env.runs().into_iter().find(|r| {
                r["host"] == "alpha" && r["state"] == "running" && r["steps"].as_u64() >= Some(1)
            })
        },
    );
    let cut = Instant::now();
    alpha.cut();
    let moved = common::wait_for("a run started on beta", Duration::from_secs(60), || {
        env.runs()
            .into_iter()
            .find(|r| r["host"] == "beta")
            .map(|r| (r, cut.elapsed()))
    });
    eprintln!("link cut to a run restarted on beta: {:?}", moved.1);
    assert!(moved.1 < Duration::from_secs(15), "{:?}", moved.1);
    env.wait_merged(1, Duration::from_secs(60));
    let all = env.runs();
    let first = all.iter().find(|r| r["id"] == on_alpha["id"]).unwrap();
    assert_eq!(first["state"], "interrupted", "{first}");
    assert!(
        first["outcome"].as_str().unwrap().contains("alpha"),
        "{first}"
    );
    // Down until a check passes; the steps streamed before the cut stayed.
    let listed = env.ok(&["host", "list"]);
    assert!(listed.contains("down"), "{listed}");
    let trace = env.ok(&["trace", "show", &on_alpha["id"].to_string()]);
    assert!(trace.contains("working"), "{trace}");
}

#[test]
fn a_killed_factory_leaves_no_remote_run_behind_and_a_restart_finishes_the_work() {
    let Some(host) = NetnsHost::start(Lacks::default()) else {
        return;
    };
    let env = Env::project(
        "rk",
        &[
            (
                "shopfloor.toml",
                &config(&host.config("alpha", ""), "", "slow.toml"),
            ),
            // Long enough that only the session's watchdog, not a failed write after
            // the sleep, can explain an agent gone within the wait below.
            ("slow.toml", &slow(20_000)),
        ],
    );
    let serve = Serve::start(&env);
    env.ok(&["ticket", "add", "Outlive a crash"]);
    env.ok(&["ticket", "add", "Outlive it too"]);
    let live = common::wait_for("two runs live on alpha", Duration::from_secs(60), || {
        let r: Vec<u64> = env
            .runs()
            .into_iter()
            .filter(|r| r["state"] == "running")
            .map(|r| r["id"].as_u64().unwrap())
            .collect();
        (r.len() == 2).then_some(r)
    });
    serve.kill9();
    // The agents on the host die with their sessions (the factory's ssh went with it).
    let started = Instant::now();
    common::wait_for("the host's agents gone", Duration::from_secs(10), || {
        (!live.iter().any(|id| agent_alive(*id))).then_some(())
    });
    eprintln!(
        "agents on the host gone {:?} after kill -9",
        started.elapsed()
    );
    let _serve = Serve::start(&env);
    env.wait_merged(2, Duration::from_secs(90));
    let all = env.runs();
    for id in &live {
        let r = all.iter().find(|r| r["id"] == *id).unwrap();
        assert_eq!(r["state"], "interrupted", "{r}");
    }
    assert!(all.iter().filter(|r| r["state"] == "succeeded").count() == 2);
}

/// Whether a process of run `id` started by a remote sandbox still lives (the host is a
/// namespace of this machine: its processes are visible here).
fn agent_alive(id: u64) -> bool {
    let want = format!("SHOPFLOOR_RUN={id}");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            !zombie
                && env.split(|b| *b == 0).any(|v| v == want.as_bytes())
                && env
                    .split(|b| *b == 0)
                    .any(|v| v.starts_with(b"SHOPFLOOR_SANDBOX="))
        })
}

#[test]
fn a_docker_host_runs_the_agent_in_a_hardened_container() {
    let Some(image) = common::docker::test_image() else {
        return;
    };
    let Some(host) = NetnsHost::start(Lacks::default()) else {
        return;
    };
    let probe = "name = \"probe\"\n[[step]]\nrun = \"id -u; touch /etc/probe 2>&1; cat /proc/1/cgroup; pwd\"\n\
                 [[step]]\nwrite = { path = \"in-container.txt\", content = \"yes\\n\" }\n\
                 [[step]]\nmemory_write = { kind = \"note\", text = \"a note from a container on a host\" }\n\
                 [[step]]\nsay = \"done\"\n";
    let env = Env::project(
        "rd",
        &[
            (
                "shopfloor.toml",
                &config(
                    &host.config(
                        "dock",
                        &format!("backend = \"docker\"\nimage = \"{image}\""),
                    ),
                    "",
                    "probe.toml",
                ),
            ),
            ("probe.toml", probe),
        ],
    );
    let _serve = Serve::start(&env);
    env.ok(&["ticket", "add", "Run in a container on a host"]);
    env.wait_merged(1, Duration::from_secs(120));
    let r = &env.runs()[0];
    assert_eq!(
        (r["host"].as_str(), r["sandbox"].as_str()),
        (Some("dock"), Some("docker"))
    );
    let trace = env.ok(&["trace", "show", &r["id"].to_string(), "--json"]);
    assert!(trace.contains("Read-only file system"), "{trace}");
    assert!(trace.contains("/workspace"), "{trace}");
    let found = env.ok(&["memory", "search", "a note from a container on a host"]);
    assert!(found.contains("container on a host"), "{found}");
    let clone = git2::Repository::open(env.home.path().join("rd/repo")).unwrap();
    let tree = clone.head().unwrap().peel_to_tree().unwrap();
    assert!(
        tree.get_path(std::path::Path::new("in-container.txt"))
            .is_ok()
    );
}

#[test]
fn an_agent_linking_its_git_config_out_of_its_checkout_writes_nothing_there() {
    let Some(host) = NetnsHost::start(Lacks::default()) else {
        return;
    };
    let victim = format!("/tmp/{}-victim", host.ns);
    std::fs::write(&victim, "precious\n").unwrap();
    // Its repository's config becomes a link to a file of the host's user, and a hook
    // that would write there: bringing its work back must write through neither.
    let hostile = format!(
        "name = \"hostile\"\n[[step]]\nrun = \"rm .git/config && ln -s {victim} .git/config && mkdir -p .git/hooks && printf '#!/bin/sh\\\\necho hooked > {victim}\\\\n' > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit\"\n\
         [[step]]\nwrite = {{ path = \"work.txt\", content = \"work\\n\" }}\n[[step]]\nsay = \"done\"\n"
    );
    let env = Env::project(
        "rh",
        &[
            (
                "shopfloor.toml",
                &config(&host.config("alpha", ""), "", "hostile.toml"),
            ),
            ("hostile.toml", &hostile),
        ],
    );
    let _serve = Serve::start(&env);
    env.ok(&["ticket", "add", "Reach out of the checkout"]);
    env.wait_merged(1, Duration::from_secs(90));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let _ = std::fs::remove_file(&victim);
    let clone = git2::Repository::open(env.home.path().join("rh/repo")).unwrap();
    let tree = clone.head().unwrap().peel_to_tree().unwrap();
    assert!(tree.get_path(std::path::Path::new("work.txt")).is_ok());
}

#[test]
fn a_persons_cancel_stops_a_run_on_a_host_and_nothing_lands() {
    let Some(host) = NetnsHost::start(Lacks::default()) else {
        return;
    };
    let hang = "name = \"hang\"\n[[step]]\nsay = \"working\"\n[[step]]\nwrite = { path = \"half.txt\", content = \"half\\n\" }\n[[step]]\nhang = true\n";
    let env = Env::project(
        "rx",
        &[
            (
                "shopfloor.toml",
                &config(&host.config("alpha", ""), "", "hang.toml"),
            ),
            ("hang.toml", hang),
        ],
    );
    let _serve = Serve::start(&env);
    env.ok(&["ticket", "add", "Hang on a host"]);
    let run = common::wait_for("a run on alpha printing", Duration::from_secs(60), || {
        env.runs().into_iter().find(|r| {
            r["host"] == "alpha" && r["state"] == "running" && r["steps"].as_u64() >= Some(1)
        })
    });
    let id = run["id"].as_u64().unwrap();
    assert!(agent_alive(id));
    let asked = Instant::now();
    env.ok(&["ticket", "cancel", "1"]);
    while !env
        .runs()
        .iter()
        .any(|r| r["id"] == id && r["state"] == "cancelled")
    {
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "the run was not cancelled:\n{}",
            env.dump()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("cancel to run cancelled on a host: {:?}", asked.elapsed());
    assert!(!agent_alive(id), "the agent still runs on the host");
    // The cancel holds: nothing is queued to land, no other run starts.
    std::thread::sleep(Duration::from_secs(2));
    let t = &env.tickets()[0];
    assert_eq!(t["state"], "cancelled", "{t}");
    assert_eq!(env.runs().len(), 1);
    assert!(env.queue_entries().is_empty());
}

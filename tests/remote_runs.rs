//! Runs on other machines through the real binary: each host is a network namespace with
//! its own sshd and address (common::hosts), reached only over SSH, sharing nothing the
//! factory relies on. A ticket runs on a host and lands, its agent reaching the factory's
//! MCP through the forwarded socket; sixteen agents spread over three hosts by their
//! slots; a host's link cut mid-run sends its runs to another host; a `kill -9` of the
//! factory with remote runs live, then a restart, reaps them there and finishes the work.

mod common;

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

fn config(hosts: &str, extra: &str) -> String {
    format!(
        "[factory]\ndefault_agent = \"remote\"\nquiet_timeout_s = 60\nlocal_slots = 0\nconcurrency = 24\n{extra}\n\
         [sandbox]\nbackend = \"worktree\"\n\n[test]\ncommand = \"true\"\n\n\
         [agents.remote]\nadapter = \"fixture\"\nscenario = \"remote.toml\"\n\n{hosts}"
    )
}

fn runs(env: &Env) -> Vec<Value> {
    env.json(&["run", "list", "--json"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn tickets(env: &Env) -> Vec<Value> {
    env.json(&["ticket", "list", "--json"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// What the factory said, for a failure's message.
fn dump(env: &Env) -> String {
    let mut out = format!(
        "runs:\n{}\ntickets:\n{}\n",
        env.ok(&["run", "list"]),
        env.ok(&["ticket", "list"])
    );
    for entry in walk(&env.home.path().join("logs")) {
        out.push_str(&format!(
            "--- {}\n{}\n",
            entry.display(),
            std::fs::read_to_string(&entry).unwrap_or_default()
        ));
    }
    out
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            v.extend(walk(&e.path()));
        } else {
            v.push(e.path());
        }
    }
    v
}

/// Wait for `n` tickets merged, or fail with what the factory said.
fn wait_merged(env: &Env, n: usize, within: Duration) {
    let start = Instant::now();
    while merged(env) < n {
        if start.elapsed() > within {
            panic!("{n} tickets not merged within {within:?}\n{}", dump(env));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn merged(env: &Env) -> usize {
    tickets(env)
        .iter()
        .filter(|t| t["state"] == "merged")
        .count()
}

#[test]
fn a_ticket_runs_on_a_remote_host_and_lands() {
    let Some(host) = NetnsHost::start(1, Lacks::default()) else {
        return;
    };
    let env = Env::project(
        "rr",
        &[
            ("shopfloor.toml", &config(&host.config("alpha", ""), "")),
            ("remote.toml", &REMOTE.replace("{ticket}", "1")),
        ],
    );
    let _serve = Serve::start(&env);
    let started = Instant::now();
    env.ok(&["ticket", "add", "Write a file on a host"]);
    wait_merged(&env, 1, Duration::from_secs(90));
    eprintln!("ticket to merged on a host: {:?}", started.elapsed());
    let r = &runs(&env)[0];
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
}

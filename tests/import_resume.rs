//! `trace import` through the real binary on a real store: one killed with SIGKILL
//! mid-file leaves its run marked partial, says so in `run list`, `run show` and `trace
//! show`, and importing the same file again resumes that run to exactly the full set of
//! steps; a FIFO is refused at once, with or without a factory.

use crate::common;
use common::serve::Serve;
use common::{Env, wait_for};

use std::time::Duration;

const LINES: usize = 60_000;

#[test]
fn kill_9_mid_import_then_import_again_gives_every_step_once_in_order() {
    let env = Env::new();
    env.ok(&["workspace", "create", "w"]);
    let trace = env.home.path().join("long.jsonl");
    let body: String = (0..LINES)
        .map(|i| {
            format!(
                "{{\"type\":\"agent_message\",\"text\":\"step {i} of a long run: cargo test failed in src/lib.rs\"}}\n"
            )
        })
        .collect();
    std::fs::write(&trace, body).unwrap();
    let trace_arg = trace.to_str().unwrap();

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_shopfloor"))
        .env("SHOPFLOOR_HOME", env.home.path())
        .env_remove("SHOPFLOOR_WORKSPACE")
        .current_dir(env.repo.path())
        .args(["trace", "import", trace_arg, "--format", "jsonl"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The store file grows as batches of steps are committed (one durable transaction
    // each, a batch at a time): past a few MB, some are stored and most are not.
    let store = env.home.path().join("w/store.redb");
    wait_for(
        "the import to store some steps",
        Duration::from_secs(60),
        || {
            let grown = std::fs::metadata(&store).is_ok_and(|m| m.len() > 6 << 20);
            let ended = child.try_wait().unwrap().is_some();
            assert!(!ended, "the import ended before it could be killed");
            grown.then_some(())
        },
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let runs = env.json(&["run", "list", "--json"]);
    let run = &runs[0];
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(run["state"], "partial_import", "{run}");
    let stored = run["steps"].as_u64().unwrap();
    assert!(
        stored > 0 && stored < LINES as u64,
        "killed mid-import: {stored} steps"
    );
    let list = env.ok(&["run", "list"]);
    assert!(list.contains("partial-import"), "{list}");
    let show = env.ok(&["run", "show", "1"]);
    assert!(
        show.contains("partial-import")
            && show.contains(&format!("steps     {stored}"))
            && show.contains("importing the same file again resumes it"),
        "{show}"
    );
    let timeline = env.ok(&["trace", "show", "1"]);
    let header = timeline.lines().next().unwrap();
    assert!(
        header.contains(&format!("partial-import · {stored} steps")),
        "{header}"
    );

    let out = env.ok(&["trace", "import", trace_arg, "--format", "jsonl"]);
    assert!(
        out.contains("as run 1 ") && out.contains("resumed it"),
        "{out}"
    );
    let runs = env.json(&["run", "list", "--json"]);
    assert_eq!(runs.as_array().unwrap().len(), 1, "no duplicate run");
    assert_eq!(runs[0]["state"], "imported");
    assert_eq!(runs[0]["steps"], LINES as u64);
    let steps = env.ok(&["trace", "show", "1", "--json"]);
    let mut n = 0;
    for (i, line) in steps.lines().enumerate() {
        let s: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(s["seq"], i as u64);
        let want = format!("step {i} of a long run: cargo test failed in src/lib.rs");
        assert_eq!(s["text"], want.as_str(), "seq {i}");
        n += 1;
    }
    assert_eq!(n, LINES, "every step once, none lost, in order");
    // The steps stored before the kill are searchable too.
    let hits = env.json(&["trace", "search", "step 7", "--limit", "1", "--json"]);
    assert_eq!(hits[0]["step"], 7, "{hits}");
}

#[test]
fn a_fifo_is_refused_at_once_by_the_cli_and_by_a_running_factory() {
    let env = Env::new();
    env.ok(&["workspace", "create", "w"]);
    let fifo = env.home.path().join("live.jsonl");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let fifo = fifo.to_str().unwrap();
    let refused = |env: &Env| {
        let started = std::time::Instant::now();
        let (code, err) = env.fails(&["trace", "import", fifo]);
        assert!(started.elapsed() < Duration::from_secs(30), "it waited");
        assert_eq!(code, 1);
        assert!(
            err.contains("is a FIFO") && err.contains("save the log to a file first"),
            "{err}"
        );
    };
    refused(&env);
    // Through the factory's API: refused, and the factory serves the next request.
    let serve = Serve::paused(&env);
    refused(&env);
    let runs = env.json(&["run", "list", "--json"]);
    assert_eq!(runs.as_array().unwrap().len(), 0);
    serve.stop();
}

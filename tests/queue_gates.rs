//! A person's decision holds on a real `shopfloor serve` (issue 13): a `queue reject` while
//! the entry is being tested, and a `ticket cancel` of a ticket waiting in a paused queue,
//! each end with nothing landed, the entry and the ticket where the person put them, and a
//! message that says so.

mod common;

use std::time::Duration;

use common::Env;
use common::serve::Serve;
use common::wait_for;
use serde_json::Value;

const CONFIG: &str = r#"
[factory]
default_agent = "feature"
quiet_timeout_s = 30

[sandbox]
backend = "worktree"

[test]
command = "sh check.sh"

[agents.feature]
adapter = "fixture"
scenario = "feature.toml"
"#;

const FEATURE: &str = "name = \"feature\"\n[[step]]\nwrite = { path = \"feature.txt\", content = \"a feature\\n\" }\n[[step]]\nsay = \"done\"\n";

fn setup(check: &str) -> Env {
    let env = Env::new();
    let root = env.repo.path();
    std::fs::write(root.join("shopfloor.toml"), CONFIG).unwrap();
    std::fs::write(root.join("feature.toml"), FEATURE).unwrap();
    std::fs::write(root.join("check.sh"), check).unwrap();
    common::commit_all(root, "project");
    env.ok(&["workspace", "create", "gates"]);
    env
}

fn entries(env: &Env) -> Vec<Value> {
    env.json(&["queue", "list", "--json"])["entries"]
        .as_array()
        .unwrap()
        .clone()
}

fn clone_main(env: &Env) -> git2::Oid {
    let repo = git2::Repository::open(env.home.path().join("gates/repo")).unwrap();
    repo.head().unwrap().target().unwrap()
}

fn ticket_state(env: &Env) -> Value {
    env.json(&["ticket", "show", "1", "--json"])["state"].clone()
}

#[test]
fn a_rejection_while_the_entry_is_tested_holds_and_nothing_lands() {
    let env = setup("sleep 3\n");
    let _serve = Serve::start(&env);
    env.ok(&["ticket", "add", "Add a feature"]);
    let e = wait_for("the entry to be tested", Duration::from_secs(60), || {
        entries(&env).into_iter().find(|e| e["state"] == "testing")
    });
    let id = e["id"].as_u64().unwrap().to_string();
    let before = clone_main(&env);
    let said = env.ok(&["queue", "reject", &id, "--reason", "not this way"]);

    // The test run ends green a few seconds later; its result arrives after the person's
    // decision and must change nothing.
    let shown = wait_for("the test result to arrive", Duration::from_secs(30), || {
        let d = env.json(&["queue", "show", &id, "--json"]);
        let done = d["entry"]["tests"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
            || d["entry"]["state"] == "merged";
        done.then_some(d)
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(clone_main(&env), before, "a rejected entry never lands");
    let e = env.json(&["queue", "show", &id, "--json"])["entry"].clone();
    assert_eq!(e["state"], "rejected", "{e}");
    assert_eq!(ticket_state(&env), "failed");
    assert!(
        shown["entry"]["tests"][0]["ok"] == true,
        "the green result is recorded all the same: {shown}"
    );
    assert!(
        said.contains("being tested") && said.contains("will not land"),
        "the person is told the rejection holds: {said}"
    );
    let audit = env.ok(&["audit"]);
    assert!(audit.contains("queue.result_discarded"), "{audit}");
}

#[test]
fn a_ticket_cancelled_while_the_queue_is_paused_never_lands() {
    let env = setup("true\n");
    let _serve = Serve::start(&env);
    env.ok(&["queue", "pause"]);
    env.ok(&["ticket", "add", "Add a feature"]);
    wait_for(
        "the ticket to reach review",
        Duration::from_secs(60),
        || (ticket_state(&env) == "review" && !entries(&env).is_empty()).then_some(()),
    );
    let before = clone_main(&env);
    env.ok(&["ticket", "cancel", "1"]);
    env.ok(&["queue", "resume"]);
    // Give the queue a few turns (it polls every second and is woken on resume).
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        clone_main(&env),
        before,
        "a cancelled ticket's branch never lands"
    );
    assert_eq!(ticket_state(&env), "cancelled");
    let all = entries(&env);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["state"], "rejected", "{all:?}");
    let why = all[0]["reason"].as_str().unwrap_or_default();
    assert!(
        why.contains("cancelled") && why.contains("will not land"),
        "{why}"
    );
}

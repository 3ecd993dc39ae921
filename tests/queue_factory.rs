//! The merge queue inside a real `shopfloor serve`, driven from the CLI: a fixture agent's
//! branch touching a human-gated path waits, tested, for `queue approve`, then lands on the
//! factory's main (never the user's checkout); and a `kill -9` of the factory while a
//! candidate is being tested leaves main at the old commit and, after a restart, the queue
//! consistent and the entry landed exactly once.

use crate::common;

use std::time::{Duration, Instant};

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

[policy]
paths = ["approve migrations/**"]

[agents.feature]
adapter = "fixture"
scenario = "feature.toml"

[agents.migrate]
adapter = "fixture"
scenario = "migrate.toml"
"#;

const FEATURE: &str = "name = \"feature\"\n[[step]]\nwrite = { path = \"feature.txt\", content = \"a feature\\n\" }\n[[step]]\nsay = \"done\"\n";
const MIGRATE: &str = "name = \"migrate\"\n[[step]]\nwrite = { path = \"migrations/001.sql\", content = \"create table t (id int);\\n\" }\n[[step]]\nsay = \"done\"\n";

fn setup(check: &str) -> Env {
    Env::project(
        "qf",
        &[
            ("shopfloor.toml", CONFIG),
            ("feature.toml", FEATURE),
            ("migrate.toml", MIGRATE),
            ("check.sh", check),
        ],
    )
}

fn entries(env: &Env) -> Vec<Value> {
    env.queue_entries()
}

fn clone_main(env: &Env) -> (git2::Oid, git2::Repository) {
    let repo = git2::Repository::open(env.home.path().join("qf/repo")).unwrap();
    let head = repo.head().unwrap().target().unwrap();
    (head, repo)
}

fn has_file(repo: &git2::Repository, commit: git2::Oid, path: &str) -> bool {
    repo.find_commit(commit)
        .unwrap()
        .tree()
        .unwrap()
        .get_path(std::path::Path::new(path))
        .is_ok()
}

#[test]
fn a_gated_branch_waits_for_approval_then_lands_on_the_factorys_main() {
    let env = setup("true\n");
    let user_head = git2::Repository::open(env.repo.path())
        .unwrap()
        .head()
        .unwrap()
        .target()
        .unwrap();
    let _serve = Serve::start(&env);
    env.ok(&[
        "ticket",
        "add",
        "Add the first migration",
        "--agent",
        "migrate",
    ]);
    let e = wait_for(
        "an entry waiting for a human",
        Duration::from_secs(60),
        || {
            entries(&env)
                .into_iter()
                .find(|e| e["state"] == "awaiting_approval")
        },
    );
    let id = e["id"].as_u64().unwrap().to_string();
    let listed = env.ok(&["queue", "list"]);
    assert!(
        listed.contains("AWAITING APPROVAL") && listed.contains("1 waiting for a human"),
        "{listed}"
    );
    let shown = env.ok(&["queue", "show", &id]);
    assert!(shown.contains("policy: needs approval"), "{shown}");
    assert!(shown.contains("migrations/001.sql"), "{shown}");
    assert!(shown.contains("test run 1: green"), "{shown}");
    let (before, _) = clone_main(&env);

    let approved = env.ok(&["queue", "approve", &id, "--note", "schema reviewed"]);
    assert!(approved.contains("approved"), "{approved}");
    wait_for("the ticket to land", Duration::from_secs(30), || {
        let t = env.json(&["ticket", "show", "1", "--json"]);
        (t["state"] == "merged").then_some(())
    });
    let (after, repo) = clone_main(&env);
    assert_ne!(after, before);
    assert!(has_file(&repo, after, "migrations/001.sql"));
    let user = git2::Repository::open(env.repo.path()).unwrap();
    assert_eq!(
        user.head().unwrap().target().unwrap(),
        user_head,
        "the user's checkout is never moved"
    );
    let audit = env.ok(&["audit"]);
    assert!(
        audit.contains("queue.approved") && audit.contains("queue.merged"),
        "{audit}"
    );
    let recalled = env.ok(&["memory", "search", "migration landed approved", "--json"]);
    assert!(recalled.contains("schema reviewed"), "{recalled}");
}

#[test]
fn kill_dash_nine_while_testing_leaves_main_whole_and_the_queue_recovers() {
    // Slow tests, so the factory is killed mid-test.
    let env = setup("sleep 3\n");
    let serve = Serve::start(&env);
    env.ok(&["ticket", "add", "Add a feature"]);
    wait_for("the entry to be tested", Duration::from_secs(60), || {
        entries(&env).into_iter().find(|e| e["state"] == "testing")
    });
    let (before, repo) = clone_main(&env);
    serve.kill9();
    std::thread::sleep(Duration::from_millis(200));
    let (now, _) = clone_main(&env);
    assert_eq!(now, before, "killed mid-test: main is at the old commit");
    assert!(!has_file(&repo, now, "feature.txt"));

    let _again = Serve::start(&env);
    let start = Instant::now();
    loop {
        let t = env.json(&["ticket", "show", "1", "--json"]);
        if t["state"] == "merged" {
            break;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let log = std::fs::read_to_string(env.home.path().join("logs/shopfloor.log"))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            panic!(
                "the ticket did not land after the restart: {t}\nqueue: {}\nlog, newest first:\n{}",
                env.ok(&["queue", "list", "--json"]),
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let all = entries(&env);
    assert_eq!(all.len(), 1, "one entry for the one run: {all:?}");
    assert_eq!(all[0]["state"], "merged");
    let (landed, repo) = clone_main(&env);
    assert!(has_file(&repo, landed, "feature.txt"));
    assert!(repo.graph_descendant_of(landed, before).unwrap());
}

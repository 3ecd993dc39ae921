//! A person's decision holds on a real `shopfloor serve` (issue 13): a `queue reject` while
//! the entry is being tested, and a `ticket cancel` of a ticket waiting in a paused queue,
//! each end with nothing landed, the entry and the ticket where the person put them, and a
//! message that says so.

use crate::common;

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
    Env::project(
        "gates",
        &[
            ("shopfloor.toml", CONFIG),
            ("feature.toml", FEATURE),
            ("check.sh", check),
        ],
    )
}

fn entries(env: &Env) -> Vec<Value> {
    env.queue_entries()
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

fn user_view(env: &Env) -> (String, git2::Oid, Vec<(String, git2::Status)>) {
    let user = git2::Repository::open(env.repo.path()).unwrap();
    let head = user.head().unwrap();
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true);
    let statuses = user
        .statuses(Some(&mut opts))
        .unwrap()
        .iter()
        .map(|s| (s.path().unwrap_or_default().to_string(), s.status()))
        .collect();
    (
        head.name().unwrap().to_string(),
        head.target().unwrap(),
        statuses,
    )
}

#[test]
fn a_landing_updates_shopfloor_main_in_the_users_repository_and_nothing_else() {
    let env = setup("true\n");
    let before = user_view(&env);
    let _serve = Serve::start(&env);
    env.ok(&["ticket", "add", "Add a feature"]);
    wait_for("the ticket to land", Duration::from_secs(60), || {
        (ticket_state(&env) == "merged").then_some(())
    });
    let landed = clone_main(&env);
    let user = git2::Repository::open(env.repo.path()).unwrap();
    // Published right after the landing is recorded.
    let mut published = None;
    for _ in 0..100 {
        published = user.refname_to_id("refs/heads/shopfloor/main").ok();
        if published.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let published =
        published.unwrap_or_else(|| panic!("no shopfloor/main; audit:\n{}", env.ok(&["audit"])));
    assert_eq!(published, landed, "shopfloor/main is the landed main");
    assert_eq!(
        user_view(&env),
        before,
        "the user's HEAD, branch, index and working tree are untouched"
    );
    assert!(
        user.find_commit(published)
            .unwrap()
            .tree()
            .unwrap()
            .get_path(std::path::Path::new("feature.txt"))
            .is_ok()
    );
}

/// Pids of processes whose working directory is under `dir` (the queue's scratch: the
/// merge test and what it started).
fn processes_in(dir: &std::path::Path) -> Vec<i32> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|c| c.starts_with(&dir))
                && alive(*pid)
        })
        .collect()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rfind(')')
            .and_then(|i| s[i + 2..].chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X')
    })
}

#[test]
fn kill_dash_nine_mid_test_leaves_no_test_process_behind() {
    let env = setup("sleep 30\n");
    let serve = Serve::start(&env);
    env.ok(&["ticket", "add", "Add a feature"]);
    let scratch = env.home.path().join("gates/queue");
    let pids = wait_for("the merge test to run", Duration::from_secs(60), || {
        let p = processes_in(&scratch);
        (p.len() >= 2).then_some(p)
    });
    // The test sees only the sandbox's environment: labelled, none of the factory's own.
    let environ = std::fs::read(format!("/proc/{}/environ", pids[0])).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(
        environ.contains("SHOPFLOOR_SANDBOX=worktree")
            && environ.contains("SHOPFLOOR_WORKSPACE=gates-"),
        "{environ}"
    );
    assert!(!environ.contains("SHOPFLOOR_HOME="), "{environ}");
    serve.kill9();
    let _again = Serve::start(&env);
    wait_for(
        "the dead factory's test processes to be gone",
        Duration::from_secs(10),
        || pids.iter().all(|p| !alive(*p)).then_some(()),
    );
}

fn docker(args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn merge_tests_run_in_a_hardened_labelled_container_reaped_after_a_kill() {
    let Some(image) = common::docker::test_image() else {
        return;
    };
    let env = Env::new();
    let root = env.repo.path();
    let config = CONFIG.replace(
        "backend = \"worktree\"",
        &format!("backend = \"docker\"\nimage = \"{image}\""),
    );
    std::fs::write(root.join("shopfloor.toml"), config).unwrap();
    std::fs::write(root.join("feature.toml"), FEATURE).unwrap();
    std::fs::write(root.join("check.sh"), "sleep 60\n").unwrap();
    common::commit_all(root, "project");
    env.ok(&["workspace", "create", "gates"]);
    let serve = Serve::start(&env);
    env.ok(&["ticket", "add", "Add a feature"]);
    let e = wait_for("the entry to be tested", Duration::from_secs(120), || {
        entries(&env).into_iter().find(|e| e["state"] == "testing")
    });
    let id = e["id"].as_u64().unwrap().to_string();
    let mine = |c: &Value| {
        c["Config"]["Labels"]["shopfloor.workspace"]
            .as_str()
            .is_some_and(|w| w.starts_with("gates-"))
            && c["Config"]["Labels"]["shopfloor.merge-test"] == id.as_str()
            && c["Mounts"].as_array().is_some_and(|m| {
                m.iter().any(|m| {
                    m["Source"]
                        .as_str()
                        .is_some_and(|s| s.starts_with(env.home.path().to_str().unwrap()))
                })
            })
    };
    let inspected = wait_for("the merge-test container", Duration::from_secs(30), || {
        docker(&["ps", "-q", "--filter", "label=shopfloor.merge-test"])
            .lines()
            .filter_map(|c| {
                serde_json::from_str::<Value>(&docker(&["inspect", c]))
                    .ok()
                    .and_then(|v| v[0].clone().as_object().map(|_| v[0].clone()))
            })
            .find(|c| mine(c))
    });
    let hc = &inspected["HostConfig"];
    assert_eq!(hc["NetworkMode"], "none", "{hc}");
    assert_eq!(hc["ReadonlyRootfs"], true, "{hc}");
    assert!(
        hc["CapDrop"].as_array().unwrap().iter().any(|c| c == "ALL"),
        "{hc}"
    );
    assert!(
        hc["SecurityOpt"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "no-new-privileges"),
        "{hc}"
    );
    assert!(hc["PidsLimit"].as_i64().unwrap() > 0, "{hc}");
    let container = inspected["Id"].as_str().unwrap().to_string();

    serve.kill9();
    let _again = Serve::start(&env);
    wait_for(
        "the dead factory's merge-test container to be reaped",
        Duration::from_secs(30),
        || {
            docker(&["ps", "-aq", "--no-trunc"])
                .lines()
                .all(|c| c != container)
                .then_some(())
        },
    );
}

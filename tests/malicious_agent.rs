//! A malicious agent in a Docker sandbox, run by a real `shopfloor serve`: it looks for the
//! person's socket, calls the control API with and without its token, forges a token, asks
//! the factory to import the host's `/etc/shadow`, writes memory as a person, pauses the
//! queue, injects tickets, writes the clone's objects, main and another run's branch, and
//! floods the socket. Every attempt must be refused and audited, and nothing of it may
//! show in the factory afterwards. (Once, from a container with no network and no token,
//! an agent did all of this through a mounted `factory.sock`.)

use crate::common;

use std::time::Duration;

use common::Env;
use common::serve::Serve;
use serde_json::Value;

const BENIGN: &str = "name = \"benign\"\n[[step]]\nwrite = { path = \"benign.txt\", content = \"ok\\n\" }\n[[step]]\nsay = \"done\"\n";
const EVIL: &str = "name = \"evil\"\n[[step]]\nrun = \"python3 attack.py\"\nexpect_exit = 0\n[[step]]\nsay = \"done\"\n";

fn wait_ticket(env: &Env, id: u64, states: &[&str]) -> Value {
    common::wait_for(
        &format!("ticket {id} to be one of {states:?}"),
        Duration::from_secs(120),
        || {
            let t = env.json(&["ticket", "show", &id.to_string(), "--json"]);
            states.iter().any(|s| t["state"] == *s).then_some(t)
        },
    )
}

#[test]
fn a_malicious_agent_in_a_container_gets_nothing_from_the_factory() {
    let Some(image) = common::docker::test_image() else {
        return;
    };
    let env = Env::new();
    let root = env.repo.path();
    std::fs::write(
        root.join("shopfloor.toml"),
        format!(
            "[factory]\ndefault_agent = \"benign\"\nquiet_timeout_s = 120\n\n[sandbox]\nbackend = \"docker\"\nimage = \"{image}\"\n\n[agents.benign]\nadapter = \"fixture\"\nscenario = \"benign.toml\"\n\n[agents.evil]\nadapter = \"fixture\"\nscenario = \"evil.toml\"\n"
        ),
    )
    .unwrap();
    std::fs::write(root.join("benign.toml"), BENIGN).unwrap();
    std::fs::write(root.join("evil.toml"), EVIL).unwrap();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/malicious_agent.py"),
        root.join("attack.py"),
    )
    .unwrap();
    common::commit_all(root, "project");
    env.ok(&["workspace", "create", "mal"]);
    let serve = Serve::start(&env);
    // First a benign run, whose branch the evil one will try to move.
    env.ok(&["ticket", "add", "Be good"]);
    wait_ticket(&env, 1, &["review", "merged"]);
    let clone = git2::Repository::open(env.home.path().join("mal/repo")).unwrap();
    let benign_branch = clone.refname_to_id("refs/heads/shopfloor/1-1").unwrap();
    let store = env.home.path().join("mal/store.redb");
    let store_before = std::fs::metadata(&store).unwrap().len();

    env.ok(&["ticket", "add", "Be evil", "--agent", "evil"]);
    let t = wait_ticket(&env, 2, &["review", "merged", "failed"]);
    let run = t["runs"][0].as_u64().unwrap();
    let steps: Vec<Value> = env
        .ok(&["trace", "export", &run.to_string()])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let report_line = steps
        .iter()
        .filter_map(|s| s["output"].as_str())
        .flat_map(|o| o.lines())
        .find_map(|l| l.strip_prefix("ATTACK-REPORT "))
        .unwrap_or_else(|| panic!("the attack ran and reported: {steps:#?}"));
    let r: Value = serde_json::from_str(report_line).unwrap();
    eprintln!("attack report: {r:#}");

    // The person's socket is nowhere in the container; the sandboxes' is, with a token.
    assert_eq!(r["socket"], "/run/shopfloor/sandbox.sock", "{r}");
    assert_eq!(r["have_token"], true);
    let seen = r["sockets_seen"].as_array().unwrap();
    assert!(
        seen.iter()
            .all(|s| !s.as_str().unwrap().contains("factory.sock")),
        "{seen:?}"
    );
    // The control API: 401 without a token, 403 with the run's own.
    for (attempt, want) in [
        ("ticket_no_token", 401),
        ("ticket_with_token", 403),
        ("import_shadow_no_token", 401),
        ("import_shadow_with_token", 403),
        ("pause_queue_with_token", 403),
        ("memory_as_human_with_token", 403),
        ("tickets_read_with_token", 403),
        ("mcp_no_token", 401),
        ("mcp_forged_token", 401),
    ] {
        assert_eq!(r[attempt], want, "{attempt}: {r}");
    }
    // Its own token works for MCP, as itself, inside the repository only.
    assert_eq!(r["mcp_write_status"], 200, "{r}");
    assert!(
        r["mcp_write_says"]
            .as_str()
            .unwrap()
            .contains("as agent:evil"),
        "{r}"
    );
    assert!(
        r["mcp_path_escape_says"]
            .as_str()
            .unwrap()
            .contains("climbs out"),
        "{r}"
    );
    // The clone: objects read-only, refs not there at all.
    for attempt in [
        "clone_objects_write",
        "clone_main_write",
        "other_branch_write",
    ] {
        assert_ne!(r[attempt][0], 0, "{attempt} succeeded: {r}");
    }
    assert!(
        r["clone_objects_write"][1]
            .as_str()
            .unwrap()
            .contains("Read-only file system"),
        "{r}"
    );
    assert_ne!(r["clone_refs_listing"][0], 0, "{r}");
    // The flood: every request refused.
    assert_eq!(r["flood"], serde_json::json!({"401": 2000}), "{r}");

    // And nothing of it shows in the factory.
    let tickets = env.json(&["ticket", "list", "--json"]);
    assert_eq!(
        tickets.as_array().unwrap().len(),
        2,
        "no ticket injected: {tickets}"
    );
    let queue = env.json(&["queue", "list", "--json"]);
    assert_eq!(queue["paused"], false, "{queue}");
    let runs = env.json(&["run", "list", "--json"]);
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] != "imported"),
        "no host file imported: {runs}"
    );
    let shadow = env.json(&["memory", "search", "evil human memory", "--json"]);
    assert!(
        shadow
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["memory"]["author"]["by"] != "human"),
        "{shadow}"
    );
    assert_eq!(
        clone.refname_to_id("refs/heads/shopfloor/1-1").unwrap(),
        benign_branch,
        "another run's branch did not move"
    );
    let audit = env.json(&["audit", "--json"]);
    let refused: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "api.refused")
        .collect();
    assert!(
        refused
            .iter()
            .any(|e| e["actor"] == format!("run:{run}:evil")),
        "the run's attempts are audited as its own: {refused:#?}"
    );
    assert!(
        refused.len() <= 20,
        "2,000 refusals make a handful of rows: {} rows",
        refused.len()
    );
    serve.stop();
    let store_after = std::fs::metadata(&store).unwrap().len();
    assert!(
        store_after.saturating_sub(store_before) < 1 << 20,
        "the store grew from {store_before} to {store_after} bytes"
    );
}

//! The real Claude Code and Codex CLIs take a ticket through `shopfloor serve` to a landed
//! change: picked, run in a worktree or a Docker sandbox with nothing but the user's own
//! choices in the profile (model, provider), their MCP calls reaching the factory (a
//! memory a person wrote is found; the memory the agent writes is attributed to its run),
//! the `[test]` command run by the agent and by the merge queue, and the branch landed on
//! the factory's main. The vendors' APIs are the scripted model servers.
//!
//! Needs scripts/install-agent-clis.sh (and for Docker, scripts/build-agent-image.sh):
//! without them each test skips with one line, or fails under CI=true.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Env;
use common::agent_clis::{self as clis, AgentClis};
use common::model_server::ModelServer;
use common::wait_for;
use serde_json::Value;

#[derive(Clone, Copy, PartialEq)]
enum Cli {
    Claude,
    Codex,
}

/// `shopfloor.toml` for one agent, profile `agent`: the model and the provider, nothing
/// about permissions or MCP (the adapter's business).
fn config(cli: Cli, server: &ModelServer, docker: Option<&str>) -> String {
    let sandbox = match docker {
        // The model server listens on the host's loopback: the container shares the host's
        // network to reach it (a real setup would allow the vendor's API instead).
        Some(image) => format!("backend = \"docker\"\nimage = \"{image}\"\nnetwork = \"host\""),
        None => "backend = \"worktree\"".to_string(),
    };
    let profile = match cli {
        Cli::Claude => format!(
            "adapter = \"claude-code\"\nmodel = \"claude-sonnet-4-5\"\nenv = {}",
            clis::toml_env(&clis::claude_env(&server.url()))
        ),
        Cli::Codex => format!(
            "adapter = \"codex\"\nmodel = \"{}\"\nargs = {}\nenv = {}",
            clis::CODEX_MODEL,
            clis::toml_array(&clis::codex_provider_args(&server.url())),
            clis::toml_env(&clis::codex_env())
        ),
    };
    // A model the built-in price list does not know is priced as the user says.
    let prices = format!(
        "[prices.\"{}\"]\ninput = 5.0\noutput = 40.0\ncache_read = 0.5\n",
        clis::CODEX_MODEL
    );
    format!(
        "[factory]\ndefault_agent = \"agent\"\nquiet_timeout_s = 60\ntimeout_s = 180\n\n\
         [sandbox]\n{sandbox}\n\n[test]\ncommand = \"{}\"\n\n[agents.agent]\n{profile}\n\n{prices}",
        clis::TEST_COMMAND
    )
}

struct Landed {
    run: u64,
    /// From `ticket add` to the model server's first request.
    to_first_request: Duration,
    /// From `ticket add` to the ticket merged.
    to_landed: Duration,
}

fn work_a_ticket(cli: Cli, docker: Option<&str>, clis: &AgentClis) -> Landed {
    let env = Env::new();
    let root = env.repo.path();
    for (path, text) in clis::PROJECT {
        std::fs::write(root.join(path), text).unwrap();
    }
    let server = match cli {
        Cli::Claude => ModelServer::anthropic(clis::claude_script(None)),
        Cli::Codex => ModelServer::openai(clis::codex_script()),
    };
    std::fs::write(root.join("shopfloor.toml"), config(cli, &server, docker)).unwrap();
    common::commit_all(root, "the project");
    env.ok(&["workspace", "create", "real"]);
    env.ok(&["memory", "add", "--kind", "decision", clis::HUMAN_MEMORY]);
    let home = tempfile::tempdir().unwrap();
    let serve = clis.serve(&env, home.path());
    let added = Instant::now();
    env.ok(&["ticket", "add", "Fix calc.add: it subtracts"]);
    let landed = wait_for("the ticket to land", Duration::from_secs(120), || {
        let t = env.json(&["ticket", "show", "1", "--json"]);
        if t["state"] == "failed" {
            panic!(
                "the ticket failed: {t}\nsteps: {}",
                env.ok(&["run", "logs", "1", "--json"])
            );
        }
        (t["state"] == "merged").then_some(t)
    });
    let to_landed = added.elapsed();
    server.finish();
    let to_first_request = server.first_request_at().unwrap() - added;
    let run = landed["runs"][0].as_u64().unwrap();
    let r = env.json(&["run", "show", &run.to_string(), "--json"]);
    assert_eq!(r["state"], "succeeded", "{r}");
    // Every run has a cost: Claude Code reports its own, Codex's tokens are priced.
    let usage = &r["usage"];
    assert!(
        usage["cost_usd"].as_f64().is_some_and(|c| c > 0.0),
        "{usage}"
    );
    assert_eq!(
        usage["cost_priced"].as_bool().unwrap_or(false),
        matches!(cli, Cli::Codex),
        "{usage}"
    );
    assert_eq!(
        r["sandbox"],
        if docker.is_some() {
            "docker"
        } else {
            "worktree"
        }
    );

    // Landed on the factory's main, the user's checkout untouched.
    let clone = git2::Repository::open(env.home.path().join("real/repo")).unwrap();
    let main = clone.head().unwrap().peel_to_commit().unwrap();
    let blob = main
        .tree()
        .unwrap()
        .get_path(Path::new("calc.py"))
        .unwrap()
        .to_object(&clone)
        .unwrap();
    let calc = String::from_utf8_lossy(blob.as_blob().unwrap().content()).into_owned();
    assert!(calc.contains(clis::FIXED), "main has the fix: {calc}");
    assert!(
        std::fs::read_to_string(root.join("calc.py"))
            .unwrap()
            .contains("a - b"),
        "the user's checkout is untouched"
    );

    // The agent's memory is in the factory's memory, attributed to the agent and its run.
    let hits = env.json(&["memory", "search", "calc.add fixed", "--json"]);
    let mine = hits
        .as_array()
        .unwrap()
        .iter()
        .map(|h| &h["memory"])
        .find(|m| m["text"] == clis::AGENT_MEMORY)
        .unwrap_or_else(|| panic!("the agent's memory_write landed: {hits}"));
    assert_eq!(mine["author"]["name"], "agent", "{mine}");
    assert_eq!(mine["source"]["run"], run, "{mine}");

    // What the trace holds: the commands and the MCP calls as steps.
    let steps: Vec<Value> = env
        .ok(&["run", "logs", &run.to_string(), "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Traces true to the run: what stays raw (at most 2% of steps), file edits named
    // repo-relative whatever the sandbox, and steps stamped when they were produced.
    let raw: Vec<&str> = steps
        .iter()
        .filter(|s| s["type"] == "raw")
        .filter_map(|s| s["reason"].as_str())
        .collect();
    let edits: Vec<&str> = steps
        .iter()
        .filter(|s| s["type"] == "file_edit")
        .filter_map(|s| s["path"].as_str())
        .collect();
    let stamps: std::collections::BTreeSet<&str> =
        steps.iter().filter_map(|s| s["ts"].as_str()).collect();
    eprintln!(
        "{} steps, {} distinct timestamps; raw: {raw:?}; file edits: {edits:?}",
        steps.len(),
        stamps.len()
    );
    assert!(
        raw.len() * 50 <= steps.len(),
        "at most 2% of steps raw: {raw:?}"
    );
    assert!(
        !edits.is_empty() && edits.iter().all(|p| *p == "calc.py"),
        "file edits are repo-relative: {edits:?}"
    );
    assert!(
        stamps.len() * 2 >= steps.len(),
        "steps carry their own times, not one instant: {} distinct over {} steps",
        stamps.len(),
        steps.len()
    );
    let commands = serde_json::to_string(
        &steps
            .iter()
            .filter(|s| s["type"] == "command" || s["type"] == "tool_call")
            .collect::<Vec<_>>(),
    )
    .unwrap();
    for root in ["/workspace/", &format!("{}/", env.home.path().display())] {
        assert!(
            !commands.contains(root),
            "no sandbox path {root} in commands or tool inputs: {commands}"
        );
    }
    let text = serde_json::to_string(&steps).unwrap();
    assert!(
        text.contains("memory_search"),
        "the MCP call is in the trace"
    );
    assert!(
        text.contains(clis::TEST_COMMAND),
        "the test command is in the trace"
    );
    // The control API finds the edit by its repo path (it answered "has not edited calc.py"
    // while edits carried the sandbox's absolute path).
    let edit_seq = steps
        .iter()
        .rev()
        .filter(|s| s["type"] == "file_edit")
        .find_map(|s| s["seq"].as_u64())
        .unwrap();
    let client = shopfloor::api::client::Client::new(serve.socket());
    let file = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(client.file_at(run, edit_seq, "calc.py"))
        .unwrap_or_else(|e| panic!("calc.py at step {edit_seq}: {e}"));
    // Claude Code's edits carry the text; Codex's file_change events name the path only,
    // so its file is known to be edited, its content unknown.
    match cli {
        Cli::Claude => assert!(
            file.content.is_some_and(|c| c.contains(clis::FIXED)),
            "the file as the agent left it"
        ),
        Cli::Codex => assert_eq!(file.edited_at, edit_seq),
    }
    serve.stop();
    Landed {
        run,
        to_first_request,
        to_landed,
    }
}

fn report(what: &str, l: &Landed) {
    eprintln!(
        "{what}: run {} first model request {:?} after `ticket add`, landed after {:?}",
        l.run, l.to_first_request, l.to_landed
    );
}

#[test]
fn claude_code_lands_a_ticket_from_a_worktree() {
    let Some(clis) = AgentClis::find() else {
        return;
    };
    report("claude, worktree", &work_a_ticket(Cli::Claude, None, &clis));
}

#[test]
fn codex_lands_a_ticket_from_a_worktree() {
    let Some(clis) = AgentClis::find() else {
        return;
    };
    report("codex, worktree", &work_a_ticket(Cli::Codex, None, &clis));
}

#[test]
fn claude_code_lands_a_ticket_from_a_container() {
    let Some(clis) = AgentClis::find() else {
        return;
    };
    let Some(image) = clis::agent_image() else {
        return;
    };
    report(
        "claude, docker",
        &work_a_ticket(Cli::Claude, Some(image), &clis),
    );
}

#[test]
fn codex_lands_a_ticket_from_a_container() {
    let Some(clis) = AgentClis::find() else {
        return;
    };
    let Some(image) = clis::agent_image() else {
        return;
    };
    report(
        "codex, docker",
        &work_a_ticket(Cli::Codex, Some(image), &clis),
    );
}

//! The real Codex CLI as the merge queue's reviewer: it reads the change (the diff is in
//! its prompt), finds `review_submit` among the factory's MCP tools, asks for changes with
//! a comment on a line; the writer's retry is told exactly that and fixes it; Codex's
//! second review approves and the change lands. In a container the reviewer's checkout is
//! mounted read-only: its attempt to write is refused by the kernel. The writer is a
//! fixture agent (the real-agent tests cover real writers); the vendor's API is the
//! scripted model server.
//!
//! On the host the checkout's files are made read-only (which does not stop root, who
//! runs CI); nothing a reviewer writes comes back either way, since a review run has no
//! branch and answers only through MCP.
//!
//! Needs scripts/install-agent-clis.sh (and for Docker, scripts/build-agent-image.sh):
//! without them each test skips with one line, or fails under CI=true.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::Env;
use common::agent_clis::{self as clis, AgentClis};
use common::model_server::{ModelServer, Turn};
use common::wait_for;
use serde_json::json;

/// Fixes calc.add, first with a leftover the reviewer objects to; told the comment, clean.
const WRITER: &str = r#"name = "writer"
[[step]]
unless_prompt_contains = "REVIEW-SAYS-FIX"
write = { path = "calc.py", content = "def add(a, b):\n    return a + b  # TODO-LEFTOVER\n" }
[[step]]
when_prompt_contains = "REVIEW-SAYS-FIX"
write = { path = "calc.py", content = "def add(a, b):\n    return a + b\n" }
[[step]]
say = "done"
"#;

const COMMENT: &str = "REVIEW-SAYS-FIX: drop the TODO-LEFTOVER comment";

/// Two review sessions: the first asks for changes (after trying to write, in a
/// container), the second approves.
fn codex_review_script(docker: bool) -> Vec<Turn> {
    let mut turns = Vec::new();
    let first = Turn::tool_search("shopfloor review submit verdict").expect(|r| {
        let body = r.body.to_string();
        if body.contains("TODO-LEFTOVER") && body.contains("review_submit") {
            Ok(())
        } else {
            Err("the reviewer's prompt lacks the diff or how to answer".into())
        }
    });
    if docker {
        turns.push(
            Turn::tool(
                "exec_command",
                json!({ "cmd": "touch calc.py 2>&1; grep ' /workspace ' /proc/mounts" }),
            )
            .saying("Checking whether I can write here."),
        );
        turns.push(
            // Its files are read-only, and so is the mount (for an agent that would chmod).
            Turn::tool_search("shopfloor review submit verdict")
                .after_result_containing("cannot touch")
                .after_result_containing(" /workspace ")
                .after_result_containing(" ro,"),
        );
    } else {
        turns.push(first);
    }
    turns.push(
        Turn::tool(
            "mcp__shopfloor__review_submit",
            json!({
                "verdict": "request_changes",
                "summary": "The fix is right but leaves a TODO comment behind.",
                "comments": [{ "path": "calc.py", "line": 2, "text": COMMENT }],
            }),
        )
        .after_result_containing("review_submit"),
    );
    turns.push(Turn::text("Requested changes.").after_result_containing("recorded"));
    turns.push(
        Turn::tool_search("shopfloor review submit verdict").expect(|r| {
            let body = r.body.to_string();
            if body.contains("+    return a + b") && !body.contains("+    return a + b  # TODO") {
                Ok(())
            } else {
                Err("the second review was not shown the fixed change".into())
            }
        }),
    );
    turns.push(
        Turn::tool(
            "mcp__shopfloor__review_submit",
            json!({ "verdict": "approve", "summary": "Clean fix; the test covers it." }),
        )
        .after_result_containing("review_submit"),
    );
    turns.push(Turn::text("Approved.").after_result_containing("recorded"));
    turns
}

fn review_with_codex(docker: Option<&str>, clis: &AgentClis) {
    let env = Env::new();
    let root = env.repo.path();
    for (path, text) in clis::PROJECT {
        std::fs::write(root.join(path), text).unwrap();
    }
    std::fs::write(root.join("writer.toml"), WRITER).unwrap();
    let server = ModelServer::openai(codex_review_script(docker.is_some()));
    let sandbox = match docker {
        Some(image) => format!("backend = \"docker\"\nimage = \"{image}\"\nnetwork = \"host\""),
        None => "backend = \"worktree\"".to_string(),
    };
    let config = format!(
        "[factory]\ndefault_agent = \"writer\"\nquiet_timeout_s = 60\ntimeout_s = 180\n\n\
         [sandbox]\n{sandbox}\n\n[test]\ncommand = \"{}\"\n\n\
         [policy]\nrequired_checks = [\"test\", \"review\"]\n\n\
         [review]\nagents = [\"codex\"]\ntimeout_s = 120\n\n\
         [agents.writer]\nadapter = \"fixture\"\nscenario = \"writer.toml\"\n\n\
         [agents.codex]\nadapter = \"codex\"\nmodel = \"{}\"\nargs = {}\nenv = {}\n\n\
         [prices.\"{}\"]\ninput = 5.0\noutput = 40.0\n",
        clis::TEST_COMMAND,
        clis::CODEX_MODEL,
        clis::toml_array(&clis::codex_provider_args(&server.url())),
        clis::toml_env(&clis::codex_env()),
        clis::CODEX_MODEL,
    );
    std::fs::write(root.join("shopfloor.toml"), config).unwrap();
    common::commit_all(root, "the project");
    env.ok(&["workspace", "create", "rr"]);
    let home = tempfile::tempdir().unwrap();
    let serve = clis.serve(&env, home.path());
    env.ok(&["ticket", "add", "Fix calc.add: it subtracts"]);
    let t = wait_for("the ticket to land", Duration::from_secs(240), || {
        let t = env.json(&["ticket", "show", "1", "--json"]);
        matches!(t["state"].as_str(), Some("merged" | "failed")).then_some(t)
    });
    server.finish();
    assert_eq!(
        t["state"],
        "merged",
        "{t}\nqueue: {:#?}\nruns: {}",
        env.queue_entries(),
        env.ok(&["run", "list", "--json"])
    );
    let writer_runs = t["runs"].as_array().unwrap();
    assert_eq!(writer_runs.len(), 2, "{t}");

    // Codex reviewed twice, in runs of their own, and asked for the change first.
    let runs = env.json(&["run", "list", "--json"]);
    let reviews: Vec<&serde_json::Value> = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["review_of"].is_null())
        .collect();
    assert_eq!(reviews.len(), 2, "{runs:#}");
    for r in &reviews {
        assert_eq!(r["agent"], "codex");
        assert_eq!(r["state"], "succeeded", "{r}");
    }
    let entries = env.queue_entries();
    let first = entries.iter().find(|e| e["id"] == 1).unwrap();
    assert_eq!(first["state"], "bounced");
    assert_eq!(first["reviews"][0]["verdict"], "request-changes");
    assert_eq!(first["reviews"][0]["agent"], "codex");
    // The writer's retry was told the comment with its path and line.
    let retry = writer_runs[1].as_u64().unwrap();
    let steps = env.ok(&["trace", "show", &retry.to_string(), "--json"]);
    assert!(
        steps.contains(COMMENT) && steps.contains("calc.py:2"),
        "{steps}"
    );
    // What landed is the clean fix.
    let clone = git2::Repository::open(env.home.path().join("rr/repo")).unwrap();
    let tree = clone.head().unwrap().peel_to_tree().unwrap();
    let blob = tree.get_path(Path::new("calc.py")).unwrap();
    let calc = String::from_utf8_lossy(clone.find_blob(blob.id()).unwrap().content()).into_owned();
    assert_eq!(calc, "def add(a, b):\n    return a + b\n");
    // The review run's trace holds its MCP call.
    let review_steps = env.ok(&[
        "trace",
        "show",
        &reviews[0]["id"].as_u64().unwrap().to_string(),
        "--json",
    ]);
    assert!(review_steps.contains("review_submit"), "{review_steps}");
    serve.stop();
}

#[test]
fn codex_reviews_a_change_and_its_comment_reaches_the_writer() {
    let Some(clis) = AgentClis::find() else {
        return;
    };
    review_with_codex(None, &clis);
}

#[test]
fn codex_reviews_from_a_read_only_container() {
    let Some(clis) = AgentClis::find() else {
        return;
    };
    let Some(image) = clis::agent_image() else {
        return;
    };
    review_with_codex(Some(image), &clis);
}

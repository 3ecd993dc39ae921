//! The review loop inside a real `shopfloor serve`, with fixture agents: after its tests
//! pass, an entry is reviewed by another agent in a read-only checkout; its request for
//! changes, with a comment on a line, bounces the entry and reaches the retry's prompt,
//! which fixes it; the second review approves and it lands. A person's line comments take
//! the same path (`queue comment`, `queue send-back`). A coding agent cannot review (its
//! own change or any other).

mod common;

use std::time::Duration;

use common::Env;
use common::serve::Serve;
use common::wait_for;
use serde_json::Value;

const CONFIG: &str = r#"
[factory]
default_agent = "writer"
quiet_timeout_s = 30

[sandbox]
backend = "worktree"

[test]
command = "true"

[policy]
required_checks = ["test", "review"]

[review]
# The writer is listed first: it must not review its own change.
agents = ["writer", "reviewer"]

[agents.writer]
adapter = "fixture"
scenario = "writer.toml"

[agents.reviewer]
adapter = "fixture"
scenario = "reviewer.toml"
"#;

/// Writes the wrong value until its prompt carries the reviewer's comment; first tries to
/// approve itself.
const WRITER: &str = r#"name = "writer"
[[step]]
review_submit = { verdict = "approve", summary = "I approve my own change" }
[[step]]
unless_prompt_contains = "REVIEW-SAYS-FIX"
write = { path = "value.txt", content = "WRONG-VALUE\n" }
[[step]]
when_prompt_contains = "REVIEW-SAYS-FIX"
write = { path = "value.txt", content = "RIGHT-VALUE\n" }
[[step]]
say = "done"
"#;

/// Requests changes while the diff it is shown adds the wrong value, else approves.
const REVIEWER: &str = r#"name = "reviewer"
[[step]]
read = "value.txt"
[[step]]
run = "touch written-by-review.txt 2>/dev/null && echo REVIEW-WROTE || echo REVIEW-READ-ONLY"
[[step]]
when_prompt_contains = "+WRONG-VALUE"
review_submit = { verdict = "request_changes", summary = "The value is not the one the ticket asks for.", comments = [{ path = "value.txt", line = 1, text = "REVIEW-SAYS-FIX: write the right value here" }] }
[[step]]
unless_prompt_contains = "+WRONG-VALUE"
review_submit = { verdict = "approve", summary = "Looks right." }
"#;

fn steps_text(env: &Env, run: u64) -> String {
    env.ok(&["trace", "show", &run.to_string(), "--json"])
}

fn runs(env: &Env) -> Vec<Value> {
    env.json(&["run", "list", "--json"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_reviewers_request_for_changes_reaches_the_retry_and_the_fixed_change_lands() {
    let env = Env::project(
        "rv",
        &[
            ("shopfloor.toml", CONFIG),
            ("writer.toml", WRITER),
            ("reviewer.toml", REVIEWER),
        ],
    );
    let _serve = Serve::start(&env);
    env.ok(&[
        "ticket",
        "add",
        "Set the value",
        "--body",
        "value.txt holds the right value",
    ]);
    let t = wait_for("the ticket to land", Duration::from_secs(120), || {
        let t = env.json(&["ticket", "show", "1", "--json"]);
        matches!(t["state"].as_str(), Some("merged" | "failed")).then_some(t)
    });
    assert_eq!(t["state"], "merged", "{t:#}");
    let writer_runs: Vec<u64> = t["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_u64().unwrap())
        .collect();
    assert_eq!(
        writer_runs.len(),
        2,
        "one bounce by review, then a landing: {t:#}"
    );

    // Two review runs, both by the other profile, never the writer; they changed nothing.
    let all = runs(&env);
    let reviews: Vec<&Value> = all.iter().filter(|r| !r["review_of"].is_null()).collect();
    assert_eq!(reviews.len(), 2, "{all:#?}");
    for r in &reviews {
        assert_eq!(r["agent"], "reviewer", "{r:#}");
        assert!(r["ticket"].is_null() && r["branch"].is_null(), "{r:#}");
        assert_eq!(r["state"], "succeeded", "{r:#}");
    }

    // The first entry went back with the review on it; the second landed.
    let entries = env.queue_entries();
    let first = entries.iter().find(|e| e["id"] == 1).unwrap();
    assert_eq!(first["state"], "bounced", "{first:#}");
    let reason = first["reason"].as_str().unwrap();
    assert!(
        reason.contains("asked for changes") && reason.contains("value.txt:1: REVIEW-SAYS-FIX"),
        "{reason}"
    );
    assert_eq!(first["reviews"][0]["verdict"], "request-changes");
    assert_eq!(first["reviews"][0]["comments"][0]["line"], 1);
    let second = entries.iter().find(|e| e["id"] == 2).unwrap();
    assert_eq!(second["state"], "merged", "{second:#}");
    assert_eq!(second["reviews"][0]["verdict"], "approve");
    let shown = env.ok(&["queue", "show", "1"]);
    assert!(
        shown.contains("request-changes") && shown.contains("value.txt:1:"),
        "{shown}"
    );

    // The retry's prompt carried the comment with its path and line.
    let retry = steps_text(&env, writer_runs[1]);
    assert!(
        retry.contains("REVIEW-SAYS-FIX") && retry.contains("value.txt:1"),
        "the retry was not told: {retry}"
    );
    // The writer's attempt to approve itself was refused, each time.
    let first_run = steps_text(&env, writer_runs[0]);
    assert!(first_run.contains("is not a review run"), "{first_run}");
    // What landed is the fix.
    let repo = git2::Repository::open(env.home.path().join("rv/repo")).unwrap();
    let main = repo.head().unwrap().peel_to_tree().unwrap();
    let blob = main.get_path(std::path::Path::new("value.txt")).unwrap();
    let content = repo.find_blob(blob.id()).unwrap().content().to_vec();
    assert_eq!(content, b"RIGHT-VALUE\n");
    // The lesson is in memory, on the path, from the review.
    let m = env.json(&["memory", "search", "REVIEW-SAYS-FIX", "--json"]);
    assert!(m.to_string().contains("value.txt"), "{m:#}");
    let audit = env.ok(&["audit"]);
    assert!(
        audit.contains("queue.reviewed") && audit.contains("review.refused"),
        "{audit}"
    );
}

const HUMAN_CONFIG: &str = r#"
[factory]
default_agent = "writer"
quiet_timeout_s = 30

[sandbox]
backend = "worktree"

[test]
command = "true"

[policy]
paths = ["approve value.txt"]

[agents.writer]
adapter = "fixture"
scenario = "writer.toml"
"#;

/// Writes the wrong value until its prompt carries the person's comment.
const HUMAN_WRITER: &str = r#"name = "writer"
[[step]]
unless_prompt_contains = "HUMAN-SAYS"
write = { path = "value.txt", content = "WRONG-VALUE\n" }
[[step]]
when_prompt_contains = "HUMAN-SAYS"
write = { path = "value.txt", content = "RIGHT-VALUE\n" }
[[step]]
say = "done"
"#;

#[test]
fn a_persons_line_comment_sent_back_reaches_the_retry() {
    let env = Env::project(
        "hc",
        &[
            ("shopfloor.toml", HUMAN_CONFIG),
            ("writer.toml", HUMAN_WRITER),
        ],
    );
    let _serve = Serve::start(&env);
    env.ok(&["ticket", "add", "Set the value"]);
    let waiting = |n: u64| {
        wait_for(
            "an entry waiting for a human",
            Duration::from_secs(60),
            || {
                env.queue_entries()
                    .into_iter()
                    .find(|e| e["id"] == n && e["state"] == "awaiting_approval")
            },
        )
    };
    waiting(1);
    // Nothing to send back yet: a clear refusal.
    let (_, err) = env.fails(&["queue", "send-back", "1"]);
    assert!(err.contains("no comments to send back"), "{err}");
    // Hostile comments are refused with what to do.
    let (_, err) = env.fails(&[
        "queue",
        "comment",
        "1",
        "--path",
        "../etc/passwd",
        "--line",
        "1",
        "x",
    ]);
    assert!(err.contains("leaves the repository"), "{err}");
    let (_, err) = env.fails(&[
        "queue",
        "comment",
        "1",
        "--path",
        "value.txt",
        "--line",
        "0",
        "x",
    ]);
    assert!(err.contains("start at 1"), "{err}");
    let said = env.ok(&[
        "queue",
        "comment",
        "1",
        "--path",
        "value.txt",
        "--line",
        "1",
        "HUMAN-SAYS: this must be the right value",
    ]);
    assert!(said.contains("1 comment"), "{said}");
    let shown = env.ok(&["queue", "show", "1"]);
    assert!(shown.contains("value.txt:1: HUMAN-SAYS"), "{shown}");
    let sent = env.ok(&["queue", "send-back", "1"]);
    assert!(sent.contains("sent back"), "{sent}");

    // The retry fixes it and waits for the person again, who approves it.
    waiting(2);
    let t = env.json(&["ticket", "show", "1", "--json"]);
    let retry = t["runs"][1].as_u64().unwrap();
    let steps = env.ok(&["trace", "show", &retry.to_string(), "--json"]);
    assert!(
        steps.contains("HUMAN-SAYS: this must be the right value") && steps.contains("value.txt:1"),
        "{steps}"
    );
    env.ok(&["queue", "approve", "2"]);
    wait_for("the ticket to land", Duration::from_secs(60), || {
        let t = env.json(&["ticket", "show", "1", "--json"]);
        (t["state"] == "merged").then_some(())
    });
    // A landed entry takes no more comments.
    let (_, err) = env.fails(&[
        "queue",
        "comment",
        "2",
        "--path",
        "value.txt",
        "--line",
        "1",
        "late",
    ]);
    assert!(err.contains("still to land"), "{err}");
}

//! The review loop inside a real `shopfloor serve`, with fixture agents: after its tests
//! pass, an entry is reviewed by another agent in a read-only checkout; its request for
//! changes, with a comment on a line, bounces the entry and reaches the retry's prompt,
//! which fixes it; the second review approves and it lands. A person's line comments take
//! the same path (`queue comment`, `queue send-back`). A coding agent cannot review (its
//! own change or any other).

use crate::common;

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
    let lesson = m
        .as_array()
        .unwrap()
        .iter()
        .map(|h| &h["memory"])
        .find(|m| {
            m["text"]
                .as_str()
                .is_some_and(|t| t.contains("came back from the merge queue"))
        })
        .unwrap_or_else(|| panic!("the review's lesson: {m:#}"));
    assert_eq!(lesson["source"]["run"], writer_runs[0], "{lesson:#}");
    assert!(
        lesson["paths"].to_string().contains("value.txt"),
        "{lesson:#}"
    );
    // ... and its digest ends the bounced run's trace, as a failed run's would.
    let first_run = steps_text(&env, writer_runs[0]);
    assert!(first_run.contains("failure digest"), "{first_run}");
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

fn human_project(name: &str) -> Env {
    Env::project(
        name,
        &[
            ("shopfloor.toml", HUMAN_CONFIG),
            ("writer.toml", HUMAN_WRITER),
        ],
    )
}

/// Wait for entry `id` to be in `state`; the entry.
fn entry_in(env: &Env, id: u64, state: &str) -> Value {
    wait_for(
        &format!("entry {id} {state}"),
        Duration::from_secs(60),
        || {
            env.queue_entries()
                .into_iter()
                .find(|e| e["id"] == id && e["state"] == state)
        },
    )
}

/// The trace of ticket 1's second run, the retry.
fn retry_steps(env: &Env) -> String {
    let t = env.json(&["ticket", "show", "1", "--json"]);
    steps_text(env, t["runs"][1].as_u64().unwrap())
}

#[test]
fn a_persons_line_comment_sent_back_reaches_the_retry() {
    let env = human_project("hc");
    let _serve = Serve::start(&env);
    env.ok(&["ticket", "add", "Set the value"]);
    entry_in(&env, 1, "awaiting_approval");
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
    entry_in(&env, 2, "awaiting_approval");
    let steps = retry_steps(&env);
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

/// The same from the control room, in a real terminal: `4` the queue, `l` into the diff,
/// `c` on the added line, the comment typed, `R` and `y`: the retry is told.
#[test]
fn a_comment_written_in_the_control_room_reaches_the_retry() {
    let env = human_project("cr");
    let _serve = Serve::start(&env);
    env.ok(&["ticket", "add", "Set the value"]);
    entry_in(&env, 1, "awaiting_approval");
    let tmux = common::tmux::Tmux::new("review-comment");
    let cmd = format!(
        "cd {} && env SHOPFLOOR_HOME={} {} up; echo UP-EXIT=$?; sleep 600",
        env.repo.path().display(),
        env.home.path().display(),
        env!("CARGO_BIN_EXE_shopfloor")
    );
    tmux.start(&cmd, 150, 40);
    tmux.wait("the status bar", 30, |s| s.contains(" cr │ main"));
    tmux.keys("4");
    tmux.wait("the entry's diff", 20, |s| s.contains("+WRONG-VALUE"));
    // Into the diff: the cursor starts on the first line a comment can go on, line 1.
    tmux.keys("l");
    tmux.wait("the line cursor", 10, |s| s.contains("c comment"));
    tmux.keys("c");
    tmux.wait("the comment prompt", 10, |s| {
        s.contains("Comment on value.txt:1")
    });
    tmux.keys("HUMAN-SAYS: from the control room");
    tmux.keys("Enter");
    tmux.wait("the comment under its line", 20, |s| {
        s.contains("HUMAN-SAYS: from the control room") && s.contains("1 comment to send back")
    });
    tmux.keys("R");
    tmux.wait("the confirmation", 10, |s| s.contains("Send entry 1"));
    tmux.keys("y");
    let e = entry_in(&env, 1, "bounced");
    assert_eq!(e["comments"][0]["path"], "value.txt", "{e:#}");
    assert_eq!(e["comments"][0]["line"], 1, "{e:#}");
    entry_in(&env, 2, "awaiting_approval");
    let steps = retry_steps(&env);
    assert!(
        steps.contains("HUMAN-SAYS: from the control room") && steps.contains("value.txt:1"),
        "{steps}"
    );
    assert!(steps.contains("RIGHT-VALUE"), "the retry fixed it: {steps}");
    tmux.keys("q");
    let s = tmux.wait("up to exit", 30, |s| s.contains("UP-EXIT="));
    assert!(s.contains("UP-EXIT=0"), "{s}");
}

/// Speculative mode reviews the green prefix at once: four tickets, four agents, review
/// runs side by side; the one the reviewer sends back is fixed on its retry, the rest land
/// as they are, and nothing waits for ever.
#[test]
fn reviews_run_side_by_side_in_speculative_mode() {
    let mut config = String::from(
        "[factory]\ndefault_agent = \"a1\"\nconcurrency = 4\nquiet_timeout_s = 30\n\n\
         [sandbox]\nbackend = \"worktree\"\n\n[test]\ncommand = \"true\"\n\n\
         [merge]\nmode = \"speculative\"\ndepth = 4\n\n\
         [policy]\nrequired_checks = [\"test\", \"review\"]\n\n\
         [review]\nagents = [\"reviewer\"]\n\n\
         [agents.reviewer]\nadapter = \"fixture\"\nscenario = \"reviewer.toml\"\n\n\
         [agents.bad]\nadapter = \"fixture\"\nscenario = \"bad.toml\"\n",
    );
    let mut files: Vec<(String, String)> = vec![
        (
            "reviewer.toml".into(),
            REVIEWER
                .replace("[[step]]\nread = \"value.txt\"\n", "")
                .replace("value.txt", "bad.txt"),
        ),
        ("bad.toml".into(), WRITER.replace("value.txt", "bad.txt")),
    ];
    for a in ["a1", "a2", "a3"] {
        config.push_str(&format!(
            "\n[agents.{a}]\nadapter = \"fixture\"\nscenario = \"{a}.toml\"\n"
        ));
        files.push((
            format!("{a}.toml"),
            format!(
                "name = \"{a}\"\n[[step]]\nwrite = {{ path = \"{a}.txt\", content = \"from {a}\\n\" }}\n[[step]]\nsay = \"done\"\n"
            ),
        ));
    }
    files.push(("shopfloor.toml".into(), config));
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let env = Env::project("sp", &files);
    let _serve = Serve::start(&env);
    for a in ["a1", "bad", "a2", "a3"] {
        env.ok(&["ticket", "add", &format!("Work for {a}"), "--agent", a]);
    }
    let tickets = wait_for("every ticket to land", Duration::from_secs(120), || {
        let ts = env.json(&["ticket", "list", "--json"]);
        let ts = ts.as_array().unwrap().clone();
        ts.iter()
            .all(|t| matches!(t["state"].as_str(), Some("merged" | "failed")))
            .then_some(ts)
    });
    for t in &tickets {
        assert_eq!(t["state"], "merged", "{t:#}");
    }
    let entries = env.queue_entries();
    let bounced: Vec<&Value> = entries.iter().filter(|e| e["state"] == "bounced").collect();
    assert_eq!(bounced.len(), 1, "only the bad one went back: {entries:#?}");
    assert_eq!(bounced[0]["reviews"][0]["verdict"], "request-changes");
    // Every landed entry was approved by a review of the head it landed with.
    for e in entries.iter().filter(|e| e["state"] == "merged") {
        let head = &e["head"];
        assert!(
            e["reviews"].as_array().is_some_and(|rs| rs
                .iter()
                .any(|r| r["verdict"] == "approve" && r["head"] == *head)),
            "{e:#}"
        );
    }
    // How many review runs were live at once, at most.
    let runs = env.json(&["run", "list", "--json"]);
    let spans: Vec<(String, String)> = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["review_of"].is_null())
        .map(|r| {
            (
                r["started"].as_str().unwrap().to_string(),
                r["ended"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let overlap = spans
        .iter()
        .map(|(s, _)| spans.iter().filter(|(s2, e2)| s2 <= s && s < e2).count())
        .max()
        .unwrap_or(0);
    eprintln!("{} review runs, at most {overlap} at once", spans.len());
    assert!(
        overlap >= 2,
        "the green prefix is reviewed at once: {spans:?}"
    );
    let main = git2::Repository::open(env.home.path().join("sp/repo")).unwrap();
    let tree = main.head().unwrap().peel_to_tree().unwrap();
    for f in ["a1.txt", "a2.txt", "a3.txt", "bad.txt"] {
        assert!(tree.get_path(std::path::Path::new(f)).is_ok(), "{f} landed");
    }
    let bad = tree.get_path(std::path::Path::new("bad.txt")).unwrap();
    assert_eq!(
        main.find_blob(bad.id()).unwrap().content(),
        b"RIGHT-VALUE\n"
    );
}

/// A person's reject while the reviewer is still reading holds: the review is stopped
/// within a second, its verdict never comes, and the entry never lands.
#[test]
fn a_reject_during_the_review_stops_it_and_holds() {
    const SLOW_REVIEWER: &str = r#"name = "reviewer"
[[step]]
sleep_ms = 30000
[[step]]
review_submit = { verdict = "approve", summary = "Looks right." }
"#;
    let env = Env::project(
        "rj",
        &[
            ("shopfloor.toml", CONFIG),
            ("writer.toml", WRITER),
            ("reviewer.toml", SLOW_REVIEWER),
        ],
    );
    let _serve = Serve::start(&env);
    env.ok(&["ticket", "add", "Set the value"]);
    wait_for("the review run", Duration::from_secs(60), || {
        let runs = env.json(&["run", "list", "--json"]);
        runs.as_array()
            .unwrap()
            .iter()
            .any(|r| !r["review_of"].is_null() && r["state"] == "running")
            .then_some(())
    });
    let rejected = std::time::Instant::now();
    env.ok(&["queue", "reject", "1", "--reason", "not this way"]);
    let review = wait_for("the review run to stop", Duration::from_secs(20), || {
        let runs = env.json(&["run", "list", "--json"]);
        runs.as_array()
            .unwrap()
            .iter()
            .find(|r| !r["review_of"].is_null() && r["state"] != "running")
            .cloned()
    });
    let took = rejected.elapsed();
    assert_eq!(review["state"], "cancelled", "{review:#}");
    assert!(took < Duration::from_secs(5), "stopped in {took:?}");
    let e = entry_in(&env, 1, "rejected");
    assert!(
        e["reviews"].is_null() || e["reviews"] == serde_json::json!([]),
        "{e:#}"
    );
    assert!(
        e["reason"].as_str().unwrap().contains("not this way"),
        "{e:#}"
    );
    let t = env.json(&["ticket", "show", "1", "--json"]);
    assert_eq!(t["state"], "failed", "{t:#}");
    let clone = git2::Repository::open(env.home.path().join("rj/repo")).unwrap();
    let tree = clone.head().unwrap().peel_to_tree().unwrap();
    assert!(
        tree.get_path(std::path::Path::new("value.txt")).is_err(),
        "it never landed"
    );
}

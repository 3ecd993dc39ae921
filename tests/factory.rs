//! The factory end to end: `shopfloor serve` on a real git repository runs real tickets
//! with the fixture agent through the worktree and Docker sandboxes: a clean success, a
//! failure retried with the lesson in its next prompt, a hang killed by the no-output
//! timeout, a cancel, a `kill -9` of the factory mid-run and a clean restart, and two runs
//! whose leases collide.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Env;
use common::serve::Serve;
use common::wait_for;
use serde_json::Value;

/// The demo repository with a shopfloor.toml and extra scenarios, committed on main.
fn factory_env(name: &str, config: &str, scenarios: &[(&str, &str)]) -> Env {
    let env = Env::new();
    let root = env.repo.path();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/repo");
    copy_dir(&demo, root);
    std::fs::write(root.join("shopfloor.toml"), config).unwrap();
    for (name, text) in scenarios {
        std::fs::write(root.join(name), text).unwrap();
    }
    common::commit_all(root, "factory fixture");
    env.ok(&["workspace", "create", name]);
    env
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn ticket(env: &Env, id: u64) -> Value {
    env.json(&["ticket", "show", &id.to_string(), "--json"])
}

fn runs(env: &Env) -> Vec<Value> {
    env.json(&["run", "list", "--json"])
        .as_array()
        .unwrap()
        .clone()
}

/// Wait for a ticket's state; "review" also accepts "merged", since the merge queue may
/// land a finished branch (no `[test]` command here) before the test looks.
fn wait_ticket(env: &Env, id: u64, state: &str, timeout: Duration) -> Value {
    wait_for(&format!("ticket {id} to be {state}"), timeout, || {
        let t = ticket(env, id);
        (t["state"] == state || (state == "review" && t["state"] == "merged")).then_some(t)
    })
}

fn steps(env: &Env, run: u64) -> Vec<Value> {
    env.ok(&["run", "logs", &run.to_string(), "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn pid_alive(pid: i32) -> bool {
    unsafe { libc::kill(pid, 0) == 0 }
}

const WORKTREE_CONFIG: &str = r#"
[factory]
default_agent = "ok"
concurrency = 4
max_attempts = 2
quiet_timeout_s = 2
timeout_s = 120

[sandbox]
backend = "worktree"

[agents.ok]
adapter = "fixture"
scenario = "success"

[agents.flaky]
adapter = "fixture"
scenario = "fail-then-pass"

[agents.hang]
adapter = "fixture"
scenario = "hang"

[agents.slow]
adapter = "fixture"
scenario = "slow.toml"
"#;

/// Prints every half second for about 15 s: long enough to still run when the test
/// cancels it, chatty enough to stay under the 2 s no-output limit.
fn slow_scenario() -> String {
    let mut s = String::from(
        "name = \"slow-writer\"\n[[step]]\nsay = \"I will take a while\"\n\
         [[step]]\nwrite = { path = \"inventory/stock.py\", content = \"# being rewritten\\n\" }\n",
    );
    s.push_str(&"[[step]]\nsleep_ms = 500\n[[step]]\nsay = \"still going\"\n".repeat(30));
    s.push_str("[[step]]\nsay = \"done\"\n");
    s
}

#[test]
fn worktree_factory_success_retry_hang_cancel() {
    let slow = slow_scenario();
    let env = factory_env("fac", WORKTREE_CONFIG, &[("slow.toml", &slow)]);
    let user_head = git2::Repository::open(env.repo.path())
        .unwrap()
        .head()
        .unwrap()
        .target()
        .unwrap();
    let serve = Serve::start(&env);

    env.ok(&["ticket", "add", "Add Stock.release()"]);
    env.ok(&[
        "ticket",
        "add",
        "Release must give units back",
        "--agent",
        "flaky",
    ]);
    env.ok(&["ticket", "add", "Never finishes", "--agent", "hang"]);
    env.ok(&[
        "ticket",
        "add",
        "Slow rewrite",
        "--agent",
        "slow",
        "--paths",
        "inventory/**",
    ]);

    // A clean success: the branch holds the agent's work, the ticket waits for review.
    let t1 = wait_ticket(&env, 1, "review", Duration::from_secs(30));
    let run1 = t1["runs"][0].as_u64().unwrap();
    let r1 = env.json(&["run", "show", &run1.to_string(), "--json"]);
    assert_eq!(r1["state"], "succeeded");
    assert_eq!(r1["sandbox"], "worktree");
    assert_eq!(r1["branch"], "shopfloor/1-1");
    let changed: Vec<&str> = r1["files_changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        changed.contains(&"inventory/stock.py") && changed.contains(&"tests/test_release.py"),
        "{changed:?}"
    );
    let kinds: Vec<String> = steps(&env, run1)
        .iter()
        .map(|s| s["type"].as_str().unwrap().to_string())
        .collect();
    for k in [
        "lifecycle",
        "tool_call",
        "tool_result",
        "file_edit",
        "command",
        "agent_message",
    ] {
        assert!(kinds.contains(&k.to_string()), "run 1 lacks {k}: {kinds:?}");
    }
    assert!(
        r1["usage"]["output_tokens"].as_u64().unwrap() > 0,
        "tokens recorded: {r1}"
    );
    let clone = git2::Repository::open(env.home.path().join("fac/repo")).unwrap();
    let branch = clone
        .find_branch("shopfloor/1-1", git2::BranchType::Local)
        .unwrap();
    let tree = branch.get().peel_to_tree().unwrap();
    assert!(
        tree.get_path(Path::new("tests/test_release.py")).is_ok(),
        "the agent's new file is committed on its branch"
    );
    assert!(
        !env.home.path().join("fac/worktrees/1-1").exists(),
        "the worktree is cleaned up"
    );

    // A failure that retries with the lesson in the next prompt, and passes.
    let t2 = wait_ticket(&env, 2, "review", Duration::from_secs(30));
    let runs2: Vec<u64> = t2["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(runs2.len(), 2, "one failure, one retry: {t2}");
    let first = env.json(&["run", "show", &runs2[0].to_string(), "--json"]);
    assert_eq!(first["state"], "failed");
    assert!(
        first["outcome"]
            .as_str()
            .unwrap()
            .contains("exited with code 1"),
        "{first}"
    );
    let prompt_seq = steps(&env, runs2[1])
        .into_iter()
        .find(|s| s["type"] == "user_message")
        .map(|s| s["seq"].to_string())
        .unwrap();
    // The step whole: a prompt over 1 KiB is kept as a blob.
    let retry_prompt = env.json(&[
        "trace",
        "show",
        &runs2[1].to_string(),
        "--step",
        &prompt_seq,
        "--json",
    ])["text"]
        .as_str()
        .unwrap()
        .to_string();
    // The retry is told what failed: the assertion, the command and the file it touched
    // (the fixture passes only when its prompt carries the assertion).
    for part in [
        "Lesson: attempt 1",
        "Ended: the agent exited with code 1.",
        "Failing command: `python3 -m unittest discover -s tests` (exit 1)",
        "AssertionError",
        "Files touched: inventory/stock.py",
    ] {
        assert!(
            retry_prompt.contains(part),
            "{part:?} is in the next prompt: {retry_prompt}"
        );
    }
    let lessons = env.json(&[
        "memory",
        "search",
        "Release must give units back",
        "--kind",
        "lesson",
        "--json",
    ]);
    let lesson = lessons
        .as_array()
        .unwrap()
        .iter()
        .map(|h| &h["memory"])
        .find(|m| m["text"].as_str().unwrap().contains("failed this way"))
        .unwrap_or_else(|| panic!("the failure is saved as a lesson: {lessons}"));
    assert!(
        lesson["text"].as_str().unwrap().contains("AssertionError"),
        "{lesson}"
    );
    assert!(
        lesson["paths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "inventory/stock.py"),
        "on the paths the run touched: {lesson}"
    );
    // It points at the step it came from: the failing test command of the first run.
    assert_eq!(lesson["source"]["run"], runs2[0], "{lesson}");
    let source = env.json(&[
        "trace",
        "show",
        &runs2[0].to_string(),
        "--step",
        &lesson["source"]["step"].to_string(),
        "--json",
    ]);
    assert_eq!(source["type"], "command", "{source}");
    assert_eq!(source["exit_code"], 1, "{source}");
    // Its history says where it came from and who was handed it.
    let shown = env.ok(&["memory", "show", &lesson["id"].to_string()]);
    assert!(
        shown.contains(&format!("written from run {} step", runs2[0])),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("recalled for run {}", runs2[1])),
        "the retry was handed the lesson: {shown}"
    );

    // What it cost: per ticket (both attempts of ticket 2), per agent, per day.
    let cost = env.json(&["cost", "--since", "1h", "--json"]);
    let t2_cost = cost["by_ticket"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["key"] == "#2 Release must give units back")
        .unwrap_or_else(|| panic!("{cost}"));
    assert_eq!(t2_cost["runs"], 2, "{cost}");
    assert!(t2_cost["cost_usd"].as_f64().unwrap() > 0.0, "{cost}");
    assert!(
        cost["by_agent"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["key"] == "flaky"),
        "{cost}"
    );
    let table = env.ok(&["cost"]);
    assert!(
        table.contains("#2 Release must give units back") && table.contains("total: $"),
        "{table}"
    );

    // A hang killed by the no-output timeout, on both attempts.
    let t3 = wait_ticket(&env, 3, "failed", Duration::from_secs(30));
    let last = t3["runs"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_u64()
        .unwrap();
    let r3 = env.json(&["run", "show", &last.to_string(), "--json"]);
    assert!(
        r3["outcome"].as_str().unwrap().contains("no output for"),
        "{r3}"
    );
    // The same failure twice is one lesson seen twice, not two lessons.
    let hang_lessons: Vec<Value> = env
        .json(&[
            "memory",
            "search",
            "Never finishes",
            "--kind",
            "lesson",
            "--json",
        ])
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["memory"].clone())
        .filter(|m| m["text"].as_str().unwrap().contains("\"Never finishes\""))
        .collect();
    assert_eq!(hang_lessons.len(), 1, "{hang_lessons:?}");
    assert_eq!(hang_lessons[0]["seen"], 2, "{hang_lessons:?}");

    // Leases: the slow run holds inventory/**; another run on those paths is told who.
    let slow_run = wait_for("the slow run to be live", Duration::from_secs(20), || {
        runs(&env)
            .into_iter()
            .find(|r| r["ticket"] == 4 && r["state"] == "running")
            .map(|r| r["id"].as_u64().unwrap())
    });
    let leases = env.json(&["run", "leases", "--json"]);
    assert!(
        leases
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["run"] == slow_run && l["path"] == "inventory/**"),
        "leases are visible to all: {leases}"
    );
    env.ok(&[
        "ticket",
        "add",
        "Also touches stock",
        "--agent",
        "ok",
        "--paths",
        "inventory/stock.py",
    ]);
    let t5 = wait_ticket(&env, 5, "review", Duration::from_secs(30));
    let run5 = t5["runs"][0].as_u64().unwrap();
    let told = steps(&env, run5)
        .into_iter()
        .find(|s| s["type"] == "decision")
        .expect("a lease decision step");
    let text = told["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("leased by run {slow_run} (slow)")),
        "{text}"
    );

    // Cancel: the slow run stops within a second of `ticket cancel`.
    let t = Instant::now();
    env.ok(&["ticket", "cancel", "4"]);
    wait_for("the slow run to stop", Duration::from_secs(3), || {
        let r = env.json(&["run", "show", &slow_run.to_string(), "--json"]);
        (r["state"] == "cancelled").then_some(())
    });
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "cancel took {:?}",
        t.elapsed()
    );
    assert_eq!(ticket(&env, 4)["state"], "cancelled");
    let (code, err) = env.fails(&["run", "kill", &slow_run.to_string()]);
    assert_eq!(code, 1);
    assert!(err.contains("not running"), "{err}");

    serve.stop();
    // The user's checkout never moved and has no stray files.
    let user = git2::Repository::open(env.repo.path()).unwrap();
    assert_eq!(user.head().unwrap().target().unwrap(), user_head);
    assert!(
        user.statuses(None).unwrap().is_empty(),
        "the user's working tree is untouched"
    );
}

#[test]
fn kill_dash_nine_mid_run_then_a_clean_restart() {
    let config = WORKTREE_CONFIG.replace("quiet_timeout_s = 2", "quiet_timeout_s = 60");
    let env = factory_env("crash", &config, &[]);
    let serve = Serve::start(&env);
    env.ok(&["ticket", "add", "Hangs until killed", "--agent", "hang"]);
    let run = wait_for("the run to be live", Duration::from_secs(20), || {
        runs(&env)
            .into_iter()
            .find(|r| r["state"] == "running")
            .map(|r| r["id"].as_u64().unwrap())
    });
    // The agent's own pid, from the run's sandbox label, to see it reaped later.
    let agent_pid = wait_for("the agent process", Duration::from_secs(5), || {
        find_labelled_pid("crash-", run)
    });
    let acknowledged = wait_for("the run's first steps", Duration::from_secs(5), || {
        let n = steps(&env, run).len();
        (n > 0).then_some(n)
    });
    serve.kill9();
    assert!(
        pid_alive(agent_pid),
        "the agent outlives a kill -9 of its factory (an orphan)"
    );

    let serve = Serve::start(&env);
    wait_for("the orphan to be reaped", Duration::from_secs(5), || {
        (!pid_alive(agent_pid)).then_some(())
    });
    let r = env.json(&["run", "show", &run.to_string(), "--json"]);
    assert_eq!(r["state"], "interrupted", "{r}");
    assert!(
        steps(&env, run).len() >= acknowledged,
        "acknowledged steps survive kill -9"
    );
    assert!(
        !env.home
            .path()
            .join(format!("crash/worktrees/1-{}", r["attempt"]))
            .exists(),
        "its sandbox is cleaned"
    );
    // The ticket went back to the queue and runs again.
    let retried = wait_for("the ticket to run again", Duration::from_secs(20), || {
        runs(&env)
            .into_iter()
            .find(|x| x["ticket"] == 1 && x["id"] != run && x["state"] == "running")
            .map(|x| x["id"].as_u64().unwrap())
    });
    env.ok(&["run", "kill", &retried.to_string()]);
    wait_ticket(&env, 1, "cancelled", Duration::from_secs(5));
    serve.stop();
}

/// A process whose environment labels it as this run's sandbox child.
fn find_labelled_pid(workspace_prefix: &str, run: u64) -> Option<i32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = env.split(|b| *b == 0).collect();
        let has = |needle: &str| vars.contains(&needle.as_bytes());
        let ws = format!("SHOPFLOOR_WORKSPACE={workspace_prefix}");
        if has(&format!("SHOPFLOOR_RUN={run}"))
            && vars.iter().any(|v| v.starts_with(ws.as_bytes()))
            && vars.iter().any(|v| v.starts_with(b"SHOPFLOOR_SANDBOX="))
        {
            return Some(pid);
        }
    }
    None
}

const DOCKER_SCENARIO: &str = r#"
name = "docker-ok"
[[step]]
say = "in a container"
[[step]]
write = { path = "hello.txt", content = "from the container\n" }
[[step]]
run = "cat hello.txt && id -u"
expect_exit = 0
[[step]]
memory_write = { kind = "note", text = "Written over MCP from inside a container with no network." }
[[step]]
say = "done"
"#;

#[test]
fn docker_factory_runs_a_ticket_in_a_container() {
    let Some(image) = common::docker::test_image() else {
        return;
    };
    let config = format!(
        r#"
[factory]
default_agent = "box"
[sandbox]
backend = "docker"
image = "{image}"
[agents.box]
adapter = "fixture"
scenario = "docker.toml"
"#
    );
    let env = factory_env("box", &config, &[("docker.toml", DOCKER_SCENARIO)]);
    let serve = Serve::start(&env);
    env.ok(&["ticket", "add", "Say hello from a container"]);
    let t = wait_ticket(&env, 1, "review", Duration::from_secs(60));
    let run = t["runs"][0].as_u64().unwrap();
    let r = env.json(&["run", "show", &run.to_string(), "--json"]);
    assert_eq!(r["sandbox"], "docker");
    let cmd = steps(&env, run)
        .into_iter()
        .find(|s| s["type"] == "command")
        .expect("a command step");
    let out = cmd["output"].as_str().unwrap();
    assert!(out.contains("from the container"), "{cmd}");
    let uid = unsafe { libc::getuid() };
    assert!(
        out.contains(&uid.to_string()),
        "runs as the host user: {out}"
    );
    // MCP works with `network = "none"`: the socket is mounted, `shopfloor mcp` forwards.
    let saved = steps(&env, run)
        .into_iter()
        .find(|s| {
            s["type"] == "tool_result"
                && s["output"]
                    .as_str()
                    .is_some_and(|o| o.starts_with("Saved memory"))
        })
        .unwrap_or_else(|| {
            panic!(
                "the container's memory_write reached the factory: {:?}",
                steps(&env, run)
            )
        });
    assert!(
        saved["output"].as_str().unwrap().contains("as agent:box"),
        "{saved}"
    );
    let clone = git2::Repository::open(env.home.path().join("box/repo")).unwrap();
    let tree = clone
        .find_branch("shopfloor/1-1", git2::BranchType::Local)
        .unwrap()
        .get()
        .peel_to_tree()
        .unwrap();
    assert!(
        tree.get_path(Path::new("hello.txt")).is_ok(),
        "the container's work is committed on the branch"
    );
    serve.stop();
}

/// POST a control route on the factory's socket; the status code.
fn post(socket: &str, path: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split(' ').nth(1).unwrap().parse().unwrap()
}

/// A sandbox that cannot be prepared is the machine's trouble, not the agent's: each run
/// is interrupted (not failed) and tried again, counted as no attempt, up to a bound; then
/// the ticket fails with a reason, and once mended it runs with its attempts intact.
#[test]
fn a_sandbox_that_cannot_be_prepared_interrupts_runs_up_to_a_bound() {
    let config = WORKTREE_CONFIG.replace("max_attempts = 2", "max_attempts = 1");
    let env = factory_env("prep", &config, &[]);
    let root = env.home.path().join("prep/worktrees");
    std::fs::write(&root, "in the way\n").unwrap();
    let serve = Serve::start(&env);
    env.ok(&["ticket", "add", "Add Stock.release()"]);
    wait_ticket(&env, 1, "failed", Duration::from_secs(60));
    let tried = runs(&env);
    assert_eq!(tried.len(), 5, "bounded at five interruptions: {tried:#?}");
    for r in &tried {
        assert_eq!(r["state"], "interrupted", "{r}");
        assert!(
            r["outcome"].as_str().unwrap().contains("could not run it"),
            "{r}"
        );
    }
    // Mended, and retried: max_attempts = 1, yet the agent gets its one attempt.
    std::fs::remove_file(&root).unwrap();
    let last = tried
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .max()
        .unwrap();
    assert_eq!(post(serve.socket(), &format!("/v1/runs/{last}/retry")), 200);
    wait_ticket(&env, 1, "review", Duration::from_secs(60));
    serve.stop();
}

/// A factory killed again and again while a ticket runs: each kill is an interruption,
/// never an attempt of the agent's, and the fifth ends the ticket rather than running it
/// without end (a ticket once reached attempt 16 with max_attempts = 2).
#[test]
fn a_factory_killed_again_and_again_fails_the_ticket_after_five_interruptions() {
    let config = WORKTREE_CONFIG.replace("quiet_timeout_s = 2", "quiet_timeout_s = 60");
    let env = factory_env("again", &config, &[]);
    env.ok(&["ticket", "add", "Hangs until killed", "--agent", "hang"]);
    for _ in 1..=5 {
        let serve = Serve::start(&env);
        wait_for("the run to be live", Duration::from_secs(30), || {
            runs(&env)
                .into_iter()
                .any(|r| r["state"] == "running")
                .then_some(())
        });
        serve.kill9();
    }
    let serve = Serve::start(&env);
    let t = wait_ticket(&env, 1, "failed", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(2));
    let all = runs(&env);
    assert_eq!(all.len(), 5, "no sixth run: {all:#?}");
    assert!(all.iter().all(|r| r["state"] == "interrupted"), "{all:#?}");
    assert_eq!(t["state"], "failed");
    serve.stop();
}

/// Budgets hold: a run whose reported spend crosses its ticket's `max_cost_usd` is stopped
/// and the ticket fails with the reason (no retry spends more); once the day's budget is
/// spent, nothing new starts, and `ticket list`, the status and `cost` say so. (Claude
/// Code's stream reports its spend once, at its end; Codex's after each turn.)
#[test]
fn budgets_stop_a_run_and_hold_the_day() {
    // The fixture reports about $0.04 a run.
    let config = r#"
[factory]
default_agent = "ok"
concurrency = 1
max_attempts = 3
max_cost_usd = 0.01
budget_usd_per_day = 0.02
quiet_timeout_s = 10
[sandbox]
backend = "worktree"
[agents.slow]
adapter = "fixture"
scenario = "slow.toml"
[agents.ok]
adapter = "fixture"
scenario = "success"
"#;
    let env = factory_env("budget", config, &[]);
    let serve = Serve::start(&env);
    env.ok(&["ticket", "add", "Slow rewrite"]);
    let t1 = wait_ticket(&env, 1, "failed", Duration::from_secs(30));
    let runs1 = t1["runs"].as_array().unwrap();
    assert_eq!(runs1.len(), 1, "no retry once the budget is spent: {t1}");
    let r = env.json(&["run", "show", &runs1[0].to_string(), "--json"]);
    assert!(
        r["outcome"]
            .as_str()
            .unwrap()
            .contains("the ticket's budget of $0.01 is spent"),
        "{r}"
    );
    // The lesson says why.
    let lessons = env.ok(&[
        "memory",
        "search",
        "Slow rewrite",
        "--kind",
        "lesson",
        "--json",
    ]);
    assert!(
        lessons.contains("the ticket's budget of $0.01 is spent"),
        "{lessons}"
    );

    // That run spent over the day's two cents: the next ticket waits, and everyone is told.
    env.ok(&["ticket", "add", "Next one", "--agent", "ok"]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(ticket(&env, 2)["state"], "queued");
    let list = env.ok(&["ticket", "list"]);
    assert!(
        list.contains("today's budget of $0.02 is spent") && list.contains("budget_usd_per_day"),
        "{list}"
    );
    let cost = env.json(&["cost", "--json"]);
    assert!(cost["total"]["cost_usd"].as_f64().unwrap() > 0.02, "{cost}");
    // `serve`'s output says it too, once.
    let said = wait_for(
        "serve to say the day is held",
        Duration::from_secs(10),
        || {
            let said = serve.said();
            said.iter()
                .any(|l| l.contains("today's budget of $0.02 is spent"))
                .then_some(said)
        },
    );
    let times = said.iter().filter(|l| l.contains("today's budget")).count();
    assert_eq!(times, 1, "{said:?}");
    drop(serve);
}

/// `[notify] command` gets each notice as JSON on stdin, from the real factory: an agent
/// gone quiet (it may be waiting for input), then its ticket failed for good.
#[test]
fn the_notify_command_hears_a_quiet_agent_and_a_ticket_failed_for_good() {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("notices.jsonl");
    let config = format!(
        r#"
[factory]
default_agent = "hang"
max_attempts = 1
quiet_timeout_s = 2
[sandbox]
backend = "worktree"
[agents.hang]
adapter = "fixture"
scenario = "hang"
[notify]
command = "cat >> '{}'; echo >> '{}'"
"#,
        file.display(),
        file.display()
    );
    let env = factory_env("notify", &config, &[]);
    let serve = Serve::start(&env);
    env.ok(&["ticket", "add", "Never finishes"]);
    wait_ticket(&env, 1, "failed", Duration::from_secs(30));
    let notices: Vec<Value> = wait_for("both notices", Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let v: Vec<Value> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (v.len() >= 2).then_some(v)
    });
    assert_eq!(notices[0]["kind"], "agent_quiet", "{notices:?}");
    assert_eq!(notices[0]["ticket"], 1);
    assert!(
        notices[0]["text"]
            .as_str()
            .unwrap()
            .contains("waiting for input"),
        "{notices:?}"
    );
    assert_eq!(notices[1]["kind"], "ticket_failed", "{notices:?}");
    assert_eq!(notices[1]["workspace"], "notify");
    drop(serve);
}

/// `[sandbox] ports`: 16 runs live at once each get their own block of ports, exported to
/// the agent as SHOPFLOOR_PORT and SHOPFLOOR_PORTS; no two blocks overlap.
#[test]
fn sixteen_parallel_runs_get_ports_that_never_overlap() {
    sixteen_runs_get_their_own_ports("backend = \"worktree\"");
}

/// The same in Docker: sixteen containers at once, each with its own block, and the
/// sandbox's setup run in each container before its agent.
#[test]
fn sixteen_parallel_containers_get_ports_that_never_overlap() {
    let Some(image) = common::docker::test_image() else {
        return;
    };
    sixteen_runs_get_their_own_ports(&format!(
        "backend = \"docker\"\nimage = \"{image}\"\nsetup = [\"echo set up in $(hostname)\"]"
    ));
}

fn sixteen_runs_get_their_own_ports(sandbox: &str) {
    let scenario = "name = \"ports\"\n[[step]]\nrun = \"echo PORTS=$SHOPFLOOR_PORTS FIRST=$SHOPFLOOR_PORT\"\n\
                    [[step]]\nsleep_ms = 2500\n[[step]]\nsay = \"done\"\n";
    let config = format!(
        r#"
[factory]
default_agent = "ports"
concurrency = 16
[sandbox]
{sandbox}
ports = 10
port_base = 31000
[agents.ports]
adapter = "fixture"
scenario = "ports.toml"
"#
    );
    let env = factory_env("ports", &config, &[("ports.toml", scenario)]);
    let serve = Serve::start(&env);
    for i in 0..16 {
        env.ok(&["ticket", "add", &format!("Serve on my own ports {i}")]);
    }
    // (first port, last port, started, ended) of each run.
    let mut blocks: Vec<(u16, u16, String, String)> = Vec::new();
    for id in 1..=16 {
        let t = wait_ticket(&env, id, "review", Duration::from_secs(60));
        let run = t["runs"][0].as_u64().unwrap();
        let out = steps(&env, run)
            .into_iter()
            .find(|s| s["type"] == "command" && s["agent"] == "ports")
            .map(|s| s["output"].as_str().unwrap_or_default().to_string())
            .unwrap();
        if sandbox.contains("setup") {
            let setup = steps(&env, run)
                .into_iter()
                .find(|s| s["agent"] == "shopfloor/setup")
                .expect("the setup step");
            assert!(
                setup["output"].as_str().unwrap().starts_with("set up in "),
                "{setup}"
            );
        }
        let ports = out
            .split_whitespace()
            .find_map(|w| w.strip_prefix("PORTS="))
            .unwrap_or_else(|| panic!("{out}"));
        let (a, b) = ports.split_once('-').unwrap();
        let (a, b): (u16, u16) = (a.parse().unwrap(), b.parse().unwrap());
        assert_eq!(b - a + 1, 10, "{out}");
        assert!(out.contains(&format!("FIRST={a}")), "{out}");
        assert!(a >= 31000, "{out}");
        // Held from before its first step (the block is taken before launch; `started` is
        // when the run was created, before its sandbox was prepared) to after it ended.
        let r = env.json(&["run", "show", &run.to_string(), "--json"]);
        let first = steps(&env, run)[0]["ts"].as_str().unwrap().to_string();
        blocks.push((a, b, first, r["ended"].as_str().unwrap().to_string()));
    }
    // A block is held from before a run starts until after it has ended, so two runs live
    // at the same time never share a port (a block comes back once its run is over).
    let ts = |t: &str| t.parse::<jiff::Timestamp>().unwrap();
    let mut overlapping = 0;
    for (i, x) in blocks.iter().enumerate() {
        for y in &blocks[i + 1..] {
            let live_together = ts(&x.2) < ts(&y.3) && ts(&y.2) < ts(&x.3);
            if live_together {
                overlapping += 1;
                assert!(x.1 < y.0 || y.1 < x.0, "live together: {x:?} and {y:?}");
            }
        }
    }
    assert!(
        overlapping >= 15,
        "runs of 2.5 s each at concurrency 16 ran together: {overlapping} pairs"
    );
    drop(serve);
}

/// `[sandbox] setup` runs in each new sandbox before the agent, its output a step;
/// `teardown` after the agent; a failing setup ends the run before the agent starts, with
/// the setup's output as the lesson.
#[test]
fn setup_and_teardown_run_in_the_sandbox_and_a_failed_setup_stops_the_run() {
    let scenario = "name = \"reads-setup\"\n[[step]]\nrun = \"cat .setup-ran\"\nexpect_exit = 0\n";
    let config = r#"
[factory]
default_agent = "reads"
max_attempts = 1
[sandbox]
backend = "worktree"
ports = 5
setup = ["echo ready on $SHOPFLOOR_PORT > .setup-ran", "echo installed"]
teardown = ["echo stopping; rm .setup-ran"]
[agents.reads]
adapter = "fixture"
scenario = "reads.toml"
"#;
    let env = factory_env("setup", config, &[("reads.toml", scenario)]);
    let serve = Serve::start(&env);
    env.ok(&["ticket", "add", "Needs its deps"]);
    let t = wait_ticket(&env, 1, "review", Duration::from_secs(30));
    let run = t["runs"][0].as_u64().unwrap();
    let all = steps(&env, run);
    let by = |who: &str| -> Vec<&Value> { all.iter().filter(|s| s["agent"] == who).collect() };
    let setup = by("shopfloor/setup");
    assert_eq!(setup.len(), 2, "{all:?}");
    assert_eq!(setup[1]["output"], "installed\n");
    assert_eq!(setup[0]["exit_code"], 0);
    // The agent saw what setup made, with its port.
    let agent_cat = all
        .iter()
        .find(|s| s["type"] == "command" && s["agent"] != "shopfloor/setup")
        .unwrap();
    assert!(
        agent_cat["output"]
            .as_str()
            .unwrap()
            .starts_with("ready on "),
        "{agent_cat}"
    );
    let teardown = by("shopfloor/teardown");
    assert_eq!(teardown.len(), 1, "{all:?}");
    assert_eq!(teardown[0]["output"], "stopping\n");
    assert!(
        teardown[0]["seq"].as_u64() > setup[1]["seq"].as_u64(),
        "teardown comes after the agent"
    );
    drop(serve);

    // A setup that fails: the agent never starts; the run fails with the setup's output.
    let failing = config.replace(
        r#"setup = ["echo ready on $SHOPFLOOR_PORT > .setup-ran", "echo installed"]"#,
        r#"setup = ["echo 'npm ERR! missing script: ci' >&2; exit 3"]"#,
    );
    let env = factory_env("setup-fails", &failing, &[("reads.toml", scenario)]);
    let serve = Serve::start(&env);
    env.ok(&["ticket", "add", "Needs its deps"]);
    let t = wait_ticket(&env, 1, "failed", Duration::from_secs(30));
    let run = t["runs"][0].as_u64().unwrap();
    let r = env.json(&["run", "show", &run.to_string(), "--json"]);
    assert!(
        r["outcome"]
            .as_str()
            .unwrap()
            .contains("setup `echo 'npm ERR! missing script: ci' >&2; exit 3` failed (exit 3)"),
        "{r}"
    );
    let all = steps(&env, run);
    assert!(
        !all.iter().any(|s| s["agent"] == "reads"),
        "the agent never started: {all:?}"
    );
    let lessons = env.ok(&[
        "memory",
        "search",
        "Needs its deps",
        "--kind",
        "lesson",
        "--json",
    ]);
    assert!(lessons.contains("npm ERR! missing script: ci"), "{lessons}");
    drop(serve);
}

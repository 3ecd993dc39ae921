//! The merge queue, serial against batch (issue 5) and speculative (issue 13), run with
//! `cargo bench --bench merge_queue`: 20 queued branches on a real repository (200 files,
//! each branch edits its own), one of them breaking the tests, and a test command that takes
//! a fixed time T (`MQ_TEST_SECONDS`, default 1). Printed side by side: wall time, test runs,
//! landed and bounced, for `mode = "serial"`, `mode = "batch"` (batch_size 20) and
//! `mode = "speculative"` (depth 4, candidates tested in parallel sandboxes) on identical
//! queues. Target: speculative at most a third of serial's wall time.

use std::path::Path;
use std::time::Instant;

use git2::{Oid, Repository};
use shopfloor::mergeq::{self, MergeConfig, MergeQueue, Mode};
use shopfloor::model::{Run, RunState};
use shopfloor::policy::Policy;
use shopfloor::workspace::{Home, Workspace};

const BRANCHES: usize = 20;
const BAD: usize = 13;
const DEPTH: usize = 4;

fn commit_all(root: &Path) {
    let repo = Repository::init(root).unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("bench", "bench@example.com").unwrap();
    repo.commit(Some("HEAD"), &sig, &sig, "project", &tree, &[])
        .unwrap();
}

/// A branch off main replacing `path` with `text`.
fn branch(repo: &Repository, main: &str, name: &str, path: &str, text: &str) {
    let base = repo
        .find_commit(repo.refname_to_id(&format!("refs/heads/{main}")).unwrap())
        .unwrap();
    let mut tb = repo.treebuilder(Some(&base.tree().unwrap())).unwrap();
    let (dir, file) = path.split_once('/').unwrap();
    let sub = base.tree().unwrap().get_name(dir).unwrap().id();
    let mut sb = repo
        .treebuilder(Some(&repo.find_tree(sub).unwrap()))
        .unwrap();
    sb.insert(file, repo.blob(text.as_bytes()).unwrap(), 0o100644)
        .unwrap();
    tb.insert(dir, sb.write().unwrap(), 0o040000).unwrap();
    let tree = repo.find_tree(tb.write().unwrap()).unwrap();
    let sig = git2::Signature::now("agent", "agent@example.com").unwrap();
    let c: Oid = repo
        .commit(None, &sig, &sig, name, &tree, &[&base])
        .unwrap();
    repo.reference(&format!("refs/heads/{name}"), c, true, "bench")
        .unwrap();
}

struct Figures {
    seconds: f64,
    test_runs: usize,
    landed: usize,
    bounced: usize,
}

fn run_mode(mode: Mode, test_seconds: f64) -> Figures {
    let home = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("src")).unwrap();
    for i in 0..200 {
        std::fs::write(
            root.path().join(format!("src/m{i}.txt")),
            format!("module {i}\n"),
        )
        .unwrap();
    }
    std::fs::write(
        root.path().join("shopfloor.toml"),
        format!("[test]\ncommand = \"sleep {test_seconds}; ! grep -rq BROKEN src\"\n"),
    )
    .unwrap();
    commit_all(root.path());
    let h = Home::at(home.path().to_path_buf());
    let info = h.create("mq", root.path()).unwrap();
    let ws = Workspace::open(info).unwrap();
    let (clone, main) = shopfloor::mergeq::clone::ensure(&ws.info).unwrap();
    let repo = Repository::open(&clone).unwrap();
    for i in 0..BRANCHES {
        let name = format!("agent-{i}");
        let text = if i == BAD {
            "BROKEN\n".to_string()
        } else {
            format!("module {i}, improved\n")
        };
        branch(&repo, &main, &name, &format!("src/m{i}.txt"), &text);
        let run = ws
            .store
            .create_run(Run {
                id: 0,
                ticket: None,
                agent: "agent".into(),
                state: RunState::Succeeded,
                started: jiff::Timestamp::now(),
                ended: None,
                steps: 0,
                source: "bench".into(),
                attempt: 1,
                branch: Some(name),
                usage: Default::default(),
                files_changed: vec![],
                sandbox: None,
                outcome: None,
                recalled: Vec::new(),
                review_of: None,
                host: None,
            })
            .unwrap();
        mergeq::enqueue_run(&ws, &repo, &run).unwrap();
    }
    let policy = Policy::from_config(&ws.config.policy).unwrap();
    let cfg = MergeConfig {
        mode,
        batch_size: BRANCHES,
        depth: DEPTH,
        ..MergeConfig::default()
    };
    let q = MergeQueue::new(
        &ws,
        clone,
        main,
        cfg,
        ws.config.test.command.clone(),
        &policy,
    );
    let t = Instant::now();
    let mut f = Figures {
        seconds: 0.0,
        test_runs: 0,
        landed: 0,
        bounced: 0,
    };
    loop {
        let turn = q.turn().unwrap();
        if turn.is_idle() {
            break;
        }
        f.test_runs += turn.test_runs;
        f.landed += turn.landed.len();
        f.bounced += turn.bounced.len();
    }
    f.seconds = t.elapsed().as_secs_f64();
    f
}

fn main() {
    let t: f64 = std::env::var("MQ_TEST_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let serial = run_mode(Mode::Serial, t);
    let batch = run_mode(Mode::Batch, t);
    let speculative = run_mode(Mode::Speculative, t);
    println!();
    println!("{BRANCHES} queued branches, one breaking the tests, test command takes T = {t} s");
    println!("| mode | wall time | test runs | landed | bounced |");
    println!("|---|---|---|---|---|");
    for (name, f) in [
        ("serial", &serial),
        ("batch (20)", &batch),
        ("speculative (depth 4)", &speculative),
    ] {
        println!(
            "| {name} | {:.1} s | {} | {} | {} |",
            f.seconds, f.test_runs, f.landed, f.bounced
        );
    }
    println!(
        "batch used {:.2} of serial's test runs and {:.2} of its wall time; speculative {:.2} of its wall time (target: at most a third)",
        batch.test_runs as f64 / serial.test_runs as f64,
        batch.seconds / serial.seconds,
        speculative.seconds / serial.seconds
    );
    assert!(
        serial.landed == BRANCHES - 1
            && batch.landed == serial.landed
            && speculative.landed == serial.landed,
        "every mode lands the same {} branches",
        BRANCHES - 1
    );
}

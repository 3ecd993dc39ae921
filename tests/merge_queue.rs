//! The merge queue's invariants on real git repositories and a real workspace: main
//! never points at a commit whose tests failed or whose gate was not satisfied; a writer
//! racing the queue (a hand-run git command) and the queue cannot both win; an approval
//! of commit X does not land commit Y; a denied path never lands whatever the tests say;
//! a conflict bounces with its paths; batches bisect to the one bad entry; flaky retries
//! are bounded and recorded; landings, bounces and rejections become memories.

use crate::common;

use std::path::Path;

use common::Env;
use git2::{Oid, Repository};
use shopfloor::mergeq::{self, MergeConfig, MergeQueue, Mode};
use shopfloor::model::{MemoryKind, QueueEntry, QueueState, Run, RunState};
use shopfloor::policy::Policy;
use shopfloor::workspace::{Home, Workspace};

/// The tests fail when any file holds the word BROKEN.
const CHECK: &str = "! grep -rq BROKEN --exclude=check.sh .";

fn setup(extra_config: &str) -> (Env, Workspace, Repository, String) {
    let env = Env::new();
    let root = env.repo.path();
    std::fs::write(root.join("check.sh"), format!("{CHECK}\n")).unwrap();
    std::fs::write(root.join("app.txt"), "one\ntwo\nthree\n").unwrap();
    std::fs::write(
        root.join("shopfloor.toml"),
        format!(
            "[test]\ncommand = \"sh check.sh\"\n\n[policy]\npaths = [\"approve migrations/**\", \"deny secrets/**\"]\n{extra_config}"
        ),
    )
    .unwrap();
    common::commit_all(root, "project");
    env.ok(&["workspace", "create", "q"]);
    let info = Home::at(env.home.path().to_path_buf()).get("q").unwrap();
    let ws = Workspace::open(info).unwrap();
    let (clone, main) = shopfloor::mergeq::clone::ensure(&ws.info).unwrap();
    let repo = Repository::open(clone).unwrap();
    (env, ws, repo, main)
}

fn main_oid(repo: &Repository, main: &str) -> Oid {
    repo.refname_to_id(&format!("refs/heads/{main}")).unwrap()
}

/// A branch off main with `files` written, as an agent's run leaves it.
fn branch(repo: &Repository, main: &str, name: &str, files: &[(&str, &str)]) -> Oid {
    branch_from(repo, main_oid(repo, main), name, files)
}

fn branch_from(repo: &Repository, from: Oid, name: &str, files: &[(&str, &str)]) -> Oid {
    let parent = repo.find_commit(from).unwrap();
    let mut index = git2::Index::new().unwrap();
    index.read_tree(&parent.tree().unwrap()).unwrap();
    for (path, text) in files {
        let blob = repo.blob(text.as_bytes()).unwrap();
        let mut entry = index_entry(path, blob, text.len());
        entry.mode = 0o100644;
        index.add(&entry).unwrap();
    }
    let tree = repo.find_tree(index.write_tree_to(repo).unwrap()).unwrap();
    let sig = git2::Signature::now("agent", "agent@example.com").unwrap();
    let c = repo
        .commit(
            None,
            &sig,
            &sig,
            &format!("work on {name}"),
            &tree,
            &[&parent],
        )
        .unwrap();
    repo.reference(&format!("refs/heads/{name}"), c, true, "test")
        .unwrap();
    c
}

fn index_entry(path: &str, id: Oid, len: usize) -> git2::IndexEntry {
    git2::IndexEntry {
        ctime: git2::IndexTime::new(0, 0),
        mtime: git2::IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode: 0o100644,
        uid: 0,
        gid: 0,
        file_size: len as u32,
        id,
        flags: 0,
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    }
}

/// Queue `branch` as a finished run's would be.
fn enqueue(ws: &Workspace, repo: &Repository, branch: &str) -> QueueEntry {
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
            source: "test".into(),
            attempt: 1,
            branch: Some(branch.to_string()),
            usage: Default::default(),
            files_changed: vec![],
            sandbox: Some("worktree".into()),
            outcome: None,
            recalled: Vec::new(),
            review_of: None,
            host: None,
        })
        .unwrap();
    mergeq::enqueue_run(ws, repo, &run).unwrap().unwrap()
}

fn queue<'a>(
    ws: &'a Workspace,
    repo: &Repository,
    main: &str,
    cfg: MergeConfig,
    policy: &'a Policy,
) -> MergeQueue<'a> {
    MergeQueue::new(
        ws,
        repo.path().parent().unwrap().to_path_buf(),
        main.to_string(),
        cfg,
        ws.config.test.command.clone(),
        policy,
    )
}

/// Queue `n` branches `<name>i`, each adding `<file>i.txt`; branch `bad` breaks the tests.
fn queue_one_broken(
    ws: &Workspace,
    repo: &Repository,
    main: &str,
    name: &str,
    file: &str,
    n: usize,
    bad: usize,
) -> Vec<u64> {
    (0..n)
        .map(|i| {
            let b = format!("{name}{i}");
            let text = if i == bad {
                "BROKEN\n".to_string()
            } else {
                format!("file {i}\n")
            };
            branch(repo, main, &b, &[(&format!("{file}{i}.txt"), &text)]);
            enqueue(ws, repo, &b).id
        })
        .collect()
}

fn entry(ws: &Workspace, id: u64) -> QueueEntry {
    ws.store.queue_entry(id).unwrap().unwrap()
}

fn file_at(repo: &Repository, commit: Oid, path: &str) -> Option<String> {
    let tree = repo.find_commit(commit).unwrap().tree().unwrap();
    let e = tree.get_path(Path::new(path)).ok()?;
    let blob = repo.find_blob(e.id()).ok()?;
    Some(String::from_utf8_lossy(blob.content()).into_owned())
}

#[test]
fn serial_lands_green_bounces_red_and_conflicts_and_rejects_denied_paths() {
    let (_env, ws, repo, main) = setup("");
    let policy = Policy::from_config(&ws.config.policy).unwrap();
    let q = queue(&ws, &repo, &main, MergeConfig::default(), &policy);
    let start = main_oid(&repo, &main);

    branch(&repo, &main, "good", &[("feature.txt", "new\n")]);
    let good = enqueue(&ws, &repo, "good");
    let turn = q.turn().unwrap();
    assert_eq!(turn.landed, vec![good.id]);
    let after_good = main_oid(&repo, &main);
    assert_ne!(after_good, start);
    assert_eq!(
        file_at(&repo, after_good, "feature.txt").as_deref(),
        Some("new\n")
    );
    let e = entry(&ws, good.id);
    assert_eq!(e.state, QueueState::Merged);
    assert_eq!(e.landed.as_deref(), Some(after_good.to_string().as_str()));
    assert!(e.tests[0].ok);

    // Red tests: bounced, main untouched.
    branch(
        &repo,
        &main,
        "breaks",
        &[("app.txt", "one\nBROKEN\nthree\n")],
    );
    let broken = enqueue(&ws, &repo, "breaks");
    let turn = q.turn().unwrap();
    assert_eq!(turn.bounced, vec![broken.id]);
    assert_eq!(
        main_oid(&repo, &main),
        after_good,
        "a red candidate never lands"
    );
    let e = entry(&ws, broken.id);
    assert_eq!(e.state, QueueState::Bounced);
    assert!(
        e.reason.as_deref().unwrap().contains("tests failed"),
        "{:?}",
        e.reason
    );

    // A denied path never lands, though its tests pass.
    branch(&repo, &main, "leaks", &[("secrets/key.pem", "-----\n")]);
    let denied = enqueue(&ws, &repo, "leaks");
    let turn = q.turn().unwrap();
    assert_eq!(turn.rejected, vec![denied.id]);
    assert_eq!(main_oid(&repo, &main), after_good);
    let e = entry(&ws, denied.id);
    assert_eq!(e.state, QueueState::Rejected);
    assert!(
        e.verdict
            .as_ref()
            .unwrap()
            .denied
            .contains(&"secrets/key.pem".to_string())
    );
    assert!(e.tests.is_empty(), "a denied entry is not even tested");

    // Two branches editing the same line: the second conflicts once the first lands.
    branch_from(
        &repo,
        after_good,
        "left",
        &[("app.txt", "one\nleft\nthree\n")],
    );
    branch_from(
        &repo,
        after_good,
        "right",
        &[("app.txt", "one\nright\nthree\n")],
    );
    let left = enqueue(&ws, &repo, "left");
    let right = enqueue(&ws, &repo, "right");
    assert_eq!(q.turn().unwrap().landed, vec![left.id]);
    let turn = q.turn().unwrap();
    assert_eq!(turn.bounced, vec![right.id]);
    let e = entry(&ws, right.id);
    assert!(
        e.reason.as_deref().unwrap().contains("merge conflict"),
        "{:?}",
        e.reason
    );
    assert!(e.reason.as_deref().unwrap().contains("app.txt"));
    assert!(q.turn().unwrap().is_idle());

    // Every landing, bounce and rejection is a memory on its paths.
    let kinds: Vec<(MemoryKind, String)> = ws
        .memory
        .search(&shopfloor::memory::RecallQuery {
            text: "merge queue landed bounced rejected".into(),
            limit: 20,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .filter(|h| h.memory.tags.contains(&"merge-queue".to_string()))
        .map(|h| (h.memory.kind, h.memory.text))
        .collect();
    assert!(
        kinds
            .iter()
            .any(|(k, t)| *k == MemoryKind::Decision && t.starts_with("Landed on main")),
        "{kinds:?}"
    );
    assert!(
        kinds.iter().any(|(k, t)| *k == MemoryKind::Lesson
            && t.contains("bounced")
            && t.contains("app.txt")),
        "{kinds:?}"
    );
    assert!(
        kinds
            .iter()
            .any(|(k, t)| *k == MemoryKind::Lesson && t.contains("rejected")),
        "{kinds:?}"
    );
    let audit: Vec<String> = ws
        .store
        .audit_log()
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    for action in [
        "queue.enqueued",
        "queue.merged",
        "queue.bounced",
        "queue.rejected",
    ] {
        assert!(audit.iter().any(|a| a == action), "{action} in {audit:?}");
    }
}

#[test]
fn an_approval_pins_the_commit_it_was_given_for() {
    let (_env, ws, repo, main) = setup("");
    let policy = Policy::from_config(&ws.config.policy).unwrap();
    let q = queue(&ws, &repo, &main, MergeConfig::default(), &policy);
    let start = main_oid(&repo, &main);
    let x = branch(
        &repo,
        &main,
        "migrate",
        &[("migrations/001.sql", "create table t;\n")],
    );
    let e = enqueue(&ws, &repo, "migrate");

    let turn = q.turn().unwrap();
    assert_eq!(turn.waiting, vec![e.id], "green, but a human must sign off");
    assert_eq!(entry(&ws, e.id).state, QueueState::AwaitingApproval);
    assert_eq!(main_oid(&repo, &main), start);

    mergeq::approve(&ws, e.id, "alice", Some("reviewed the migration".into())).unwrap();
    assert_eq!(entry(&ws, e.id).approval.unwrap().commit, x.to_string());
    // The branch moves to Y after the approval of X.
    let y = branch_from(
        &repo,
        x,
        "migrate",
        &[("migrations/002.sql", "drop table t;\n")],
    );
    let turn = q.turn().unwrap();
    assert_eq!(
        turn.waiting,
        vec![e.id],
        "the approval of X does not land Y"
    );
    assert_eq!(main_oid(&repo, &main), start);
    let waiting = entry(&ws, e.id);
    assert_eq!(waiting.head, y.to_string());
    assert_eq!(waiting.state, QueueState::AwaitingApproval);

    mergeq::approve(&ws, e.id, "alice", None).unwrap();
    let turn = q.turn().unwrap();
    assert_eq!(turn.landed, vec![e.id]);
    let landed = main_oid(&repo, &main);
    assert!(file_at(&repo, landed, "migrations/002.sql").is_some());
    let audit: Vec<String> = ws
        .store
        .audit_log()
        .unwrap()
        .into_iter()
        .map(|a| format!("{} {}", a.actor, a.action))
        .collect();
    assert!(
        audit.contains(&"human:alice queue.approved".to_string()),
        "{audit:?}"
    );
}

#[test]
fn a_hand_run_git_command_moving_main_mid_test_wins_and_the_queue_rebuilds() {
    // The test command itself moves main (as a person's `git update-ref` would, while
    // the candidate is tested): the queue's compare-and-swap must lose.
    let (_env, ws, repo, main) = setup("");
    let policy = Policy::from_config(&ws.config.policy).unwrap();
    let start = main_oid(&repo, &main);
    let theirs = branch(&repo, &main, "hand", &[("hand.txt", "by hand\n")]);
    let git_dir = repo.path().to_path_buf();
    let marker = git_dir.join("moved-once");
    let command = format!(
        "if [ ! -f {m} ]; then touch {m}; git --git-dir={g} update-ref refs/heads/{main} {theirs} {start}; fi; {CHECK}",
        m = marker.display(),
        g = git_dir.display()
    );
    let q = MergeQueue::new(
        &ws,
        repo.path().parent().unwrap().to_path_buf(),
        main.clone(),
        MergeConfig::default(),
        Some(command),
        &policy,
    );
    branch(&repo, &main, "agent", &[("agent.txt", "by an agent\n")]);
    let e = enqueue(&ws, &repo, "agent");
    let turn = q.turn().unwrap();
    assert!(turn.landed.is_empty(), "the queue lost the race: {turn:?}");
    assert_eq!(
        main_oid(&repo, &main),
        theirs,
        "the other writer's main stands"
    );
    let mid = entry(&ws, e.id);
    assert_eq!(mid.state, QueueState::Queued);
    assert!(mid.reason.as_deref().unwrap().contains("main moved"));
    // Next turn: rebuilt on the new main, tested, landed; both changes are in.
    assert_eq!(q.turn().unwrap().landed, vec![e.id]);
    let now = main_oid(&repo, &main);
    assert!(
        file_at(&repo, now, "hand.txt").is_some() && file_at(&repo, now, "agent.txt").is_some()
    );
    assert!(repo.graph_descendant_of(now, theirs).unwrap());
}

#[test]
fn batches_bisect_to_the_one_bad_entry_with_fewer_test_runs() {
    let (_env, ws, repo, main) = setup("");
    let policy = Policy::from_config(&ws.config.policy).unwrap();
    let cfg = MergeConfig {
        mode: Mode::Batch,
        batch_size: 8,
        ..MergeConfig::default()
    };
    let q = queue(&ws, &repo, &main, cfg, &policy);
    let ids = queue_one_broken(&ws, &repo, &main, "b", "f", 8, 5);
    let mut runs = 0;
    let mut landed = Vec::new();
    let mut bounced = Vec::new();
    for _ in 0..10 {
        let t = q.turn().unwrap();
        if t.is_idle() {
            break;
        }
        runs += t.test_runs;
        landed.extend(t.landed);
        bounced.extend(t.bounced);
    }
    landed.sort();
    assert_eq!(bounced, vec![ids[5]]);
    assert_eq!(landed, [&ids[..5], &ids[6..]].concat());
    assert!(
        runs <= 6,
        "8 entries, one bad: {runs} test runs (serial needs 8)"
    );
    let head = main_oid(&repo, &main);
    assert!(
        file_at(&repo, head, "f5.txt").is_none(),
        "the culprit never lands"
    );
    for i in [0, 4, 6, 7] {
        assert!(file_at(&repo, head, &format!("f{i}.txt")).is_some());
    }
}

#[test]
fn flaky_tests_are_retried_a_bounded_number_of_times_and_recorded() {
    let (env, ws, repo, main) = setup("");
    let policy = Policy::from_config(&ws.config.policy).unwrap();
    let counter = env.home.path().join("tries");
    // Fails on the first try, passes on the second.
    let command = format!(
        "n=$(cat {c} 2>/dev/null || echo 0); echo $((n+1)) > {c}; [ $n -ge 1 ]",
        c = counter.display()
    );
    let cfg = MergeConfig {
        flaky_retries: 1,
        ..MergeConfig::default()
    };
    let q = MergeQueue::new(
        &ws,
        repo.path().parent().unwrap().to_path_buf(),
        main.clone(),
        cfg,
        Some(command),
        &policy,
    );
    branch(&repo, &main, "flaky", &[("x.txt", "x\n")]);
    let e = enqueue(&ws, &repo, "flaky");
    let t = q.turn().unwrap();
    assert_eq!(t.landed, vec![e.id]);
    assert_eq!(t.test_runs, 2);
    let tests = entry(&ws, e.id).tests;
    assert_eq!(tests.len(), 2, "{tests:?}");
    assert!(!tests[0].ok && tests[0].retry == 0);
    assert!(tests[1].ok && tests[1].retry == 1);
    assert_eq!(
        mergeq::flaky(&entry(&ws, e.id)),
        vec![(tests[1].commit.clone(), 1)],
        "recorded as flaky, for `queue show`"
    );
}

#[test]
fn speculation_tests_the_next_entries_at_once_and_rebuilds_only_behind_the_red_one() {
    let (_env, ws, repo, main) = setup("");
    let policy = Policy::from_config(&ws.config.policy).unwrap();
    let cfg = MergeConfig {
        mode: Mode::Speculative,
        depth: 4,
        ..MergeConfig::default()
    };
    // Each test takes 1 s: four at once take about one, not four.
    let q = MergeQueue::new(
        &ws,
        repo.path().parent().unwrap().to_path_buf(),
        main.clone(),
        cfg,
        Some(format!("sleep 1; {CHECK}")),
        &policy,
    );
    let ids = queue_one_broken(&ws, &repo, &main, "s", "s", 6, 2);
    let started = std::time::Instant::now();
    let first = q.turn().unwrap();
    let took = started.elapsed().as_secs_f64();
    assert_eq!(first.test_runs, 4, "main+0, +1, +2, +3 at once");
    assert!(
        took < 3.5,
        "four 1 s test runs in parallel took {took:.1} s"
    );
    assert_eq!(
        first.landed,
        ids[..2].to_vec(),
        "the green prefix, in order"
    );
    assert_eq!(first.bounced, vec![ids[2]]);
    let behind = entry(&ws, ids[3]);
    assert_eq!(
        behind.state,
        QueueState::Queued,
        "rebuilt without the red one"
    );
    assert!(behind.reason.unwrap().contains("ahead of it broke"));
    let e2 = entry(&ws, ids[2]);
    assert!(e2.reason.unwrap().contains("entries ahead of it"));
    let second = q.turn().unwrap();
    assert_eq!(second.landed, ids[3..].to_vec());
    let head = main_oid(&repo, &main);
    assert!(file_at(&repo, head, "s2.txt").is_none(), "red never lands");
    for i in [0, 1, 3, 4, 5] {
        assert!(file_at(&repo, head, &format!("s{i}.txt")).is_some());
    }
}

#[test]
fn with_tests_required_and_no_test_command_nothing_lands_untested() {
    let (_env, ws, repo, main) = setup("");
    let policy = Policy::from_config(&ws.config.policy).unwrap();
    let path = repo.path().parent().unwrap().to_path_buf();
    let q = MergeQueue::new(
        &ws,
        path,
        main.clone(),
        MergeConfig::default(),
        None,
        &policy,
    );
    let start = main_oid(&repo, &main);
    branch(&repo, &main, "untested", &[("u.txt", "u\n")]);
    let e = enqueue(&ws, &repo, "untested");
    assert_eq!(q.turn().unwrap().waiting, vec![e.id]);
    assert_eq!(main_oid(&repo, &main), start, "nothing lands untested");
    let waiting = entry(&ws, e.id);
    assert_eq!(waiting.state, QueueState::AwaitingApproval);
    assert!(waiting.reason.unwrap().contains("no [test] command"));
    mergeq::approve(&ws, e.id, "bob", Some("landing untested on purpose".into())).unwrap();
    assert_eq!(q.turn().unwrap().landed, vec![e.id]);
}

#[test]
fn push_sends_main_after_each_landing_and_a_refusal_is_a_clear_error() {
    let (env, ws, repo, main) = setup("");
    let policy = Policy::from_config(&ws.config.policy).unwrap();
    let mirror_dir = env.home.path().join("mirror.git");
    let mirror = Repository::init_bare(&mirror_dir).unwrap();
    repo.remote("mirror", mirror_dir.to_str().unwrap()).unwrap();
    let cfg = MergeConfig {
        push: Some("mirror".into()),
        ..MergeConfig::default()
    };
    let path = repo.path().parent().unwrap().to_path_buf();
    let q = MergeQueue::new(
        &ws,
        path,
        main.clone(),
        cfg,
        ws.config.test.command.clone(),
        &policy,
    );
    branch(&repo, &main, "one", &[("one.txt", "1\n")]);
    let e = enqueue(&ws, &repo, "one");
    assert_eq!(q.turn().unwrap().landed, vec![e.id]);
    let landed = main_oid(&repo, &main);
    assert_eq!(
        mirror.refname_to_id(&format!("refs/heads/{main}")).unwrap(),
        landed
    );

    // The mirror's main moves elsewhere: the next push is not a fast-forward, and refused.
    let elsewhere = branch(&repo, &main, "elsewhere", &[("x.txt", "x\n")]);
    let other = branch_from(&repo, elsewhere, "elsewhere2", &[("y.txt", "y\n")]);
    let mut r = repo.find_remote("mirror").unwrap();
    r.push(&["+refs/heads/elsewhere2:refs/heads/elsewhere2"], None)
        .unwrap();
    mirror
        .reference(&format!("refs/heads/{main}"), other, true, "diverge")
        .unwrap();
    branch(&repo, &main, "two", &[("two.txt", "2\n")]);
    let two = enqueue(&ws, &repo, "two");
    let err = q.turn().unwrap_err().to_string();
    assert!(
        err.contains("mirror") && (err.contains("refused") || err.contains("failed")),
        "{err}"
    );
    assert_eq!(
        entry(&ws, two.id).state,
        QueueState::Merged,
        "main landed in the clone all the same"
    );
    let audit: Vec<String> = ws
        .store
        .audit_log()
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert!(
        audit.iter().any(|a| a.starts_with("queue.push_")),
        "{audit:?}"
    );
}

#[test]
fn recover_after_a_kill_between_moving_main_and_recording_it() {
    // The worst moment: main already moved to the candidate, the entry still says testing.
    let (_env, ws, repo, main) = setup("");
    let policy = Policy::from_config(&ws.config.policy).unwrap();
    let q = queue(&ws, &repo, &main, MergeConfig::default(), &policy);
    let base = main_oid(&repo, &main);
    let tip = branch(&repo, &main, "done", &[("done.txt", "d\n")]);
    let landed = enqueue(&ws, &repo, "done");
    branch(&repo, &main, "pending", &[("p.txt", "p\n")]);
    let pending = enqueue(&ws, &repo, "pending");
    for (id, candidate) in [(landed.id, tip), (pending.id, base)] {
        let mut e = entry(&ws, id);
        e.state = QueueState::Testing;
        e.base = Some(base.to_string());
        e.candidate = Some(candidate.to_string());
        ws.store.put_queue_entry(e).unwrap();
    }
    // Only the first one's candidate reached main before the kill.
    repo.reference(
        &format!("refs/heads/{main}"),
        tip,
        true,
        "landed before the kill",
    )
    .unwrap();
    let pending_candidate = branch(&repo, &main, "pending-candidate", &[("q.txt", "q\n")]);
    let mut e = entry(&ws, pending.id);
    e.candidate = Some(pending_candidate.to_string());
    ws.store.put_queue_entry(e).unwrap();

    q.recover().unwrap();
    assert_eq!(entry(&ws, landed.id).state, QueueState::Merged);
    assert_eq!(entry(&ws, pending.id).state, QueueState::Queued);
    assert_eq!(main_oid(&repo, &main), tip, "recovery never moves main");
    assert_eq!(q.turn().unwrap().landed, vec![pending.id]);
}

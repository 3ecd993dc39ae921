//! The worktree sandbox on real git repositories and real processes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use shopfloor::sandbox::{
    self, BackendKind, Labels, LaunchSpec, Output, PrepareSpec, Sandbox, SandboxConfig,
    WorktreeSandbox,
};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A user checkout (with an ignored `.env`) and the workspace's clone of it.
struct Fixture {
    _tmp: tempfile::TempDir,
    user: PathBuf,
    clone: PathBuf,
    root: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let user = tmp.path().join("user");
    std::fs::create_dir_all(user.join("src")).unwrap();
    git(&user, &["init", "-q", "-b", "main"]);
    std::fs::write(user.join(".gitignore"), ".env\n.env.*\ntarget/\n").unwrap();
    std::fs::write(user.join("README.md"), "hello\n").unwrap();
    std::fs::write(user.join("src/lib.rs"), "pub fn a() {}\n").unwrap();
    git(&user, &["add", "."]);
    git(&user, &["commit", "-q", "-m", "first"]);
    std::fs::write(user.join(".env"), "TOKEN=local\n").unwrap();
    std::fs::write(user.join(".env.test"), "T=1\n").unwrap();
    std::fs::create_dir_all(user.join("target")).unwrap();
    std::fs::write(user.join("target/big"), "not copied\n").unwrap();
    // The user is mid-work on another branch with an uncommitted edit.
    git(&user, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(user.join("README.md"), "hello, edited\n").unwrap();

    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let clone = data.join("repo");
    git(&data, &["clone", "-q", user.to_str().unwrap(), "repo"]);
    git(&clone, &["branch", "-q", "-f", "main", "origin/main"]);
    Fixture {
        root: data.join("worktrees"),
        _tmp: tmp,
        user,
        clone,
    }
}

fn spec(f: &Fixture, ticket: u64, attempt: u32) -> PrepareSpec {
    PrepareSpec {
        workspace: "ws-test".into(),
        run: 1,
        ticket,
        attempt,
        repo: f.clone.clone(),
        base: "main".into(),
        user_checkout: f.user.clone(),
        root: f.root.clone(),
    }
}

fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn launch_spec(dir: &Path, argv: &[&str], run: u64) -> LaunchSpec {
    LaunchSpec {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: vec![("EXTRA_FROM_CALLER".into(), "yes".into())],
        workdir: dir.to_path_buf(),
        labels: Labels {
            workspace: "ws-test".into(),
            run,
        },
        socket: None,
        read_only: vec![],
        workdir_read_only: false,
    }
}

#[test]
fn prepare_branches_from_main_outside_the_checkout_and_copies_ignored_includes() {
    let f = fixture();
    let user_before = snapshot(&f.user);
    let user_head = git(&f.user, &["rev-parse", "HEAD"]);
    let main = git(&f.clone, &["rev-parse", "main"]);

    let cfg = SandboxConfig::default();
    let p = sandbox::prepare(&spec(&f, 12, 1), &cfg.include).unwrap();
    assert_eq!(p.branch, "shopfloor/12-1");
    assert_eq!(p.base_commit, main);
    assert!(
        p.dir.starts_with(f.root.canonicalize().unwrap()),
        "{:?}",
        p.dir
    );
    assert!(!p.dir.starts_with(&f.user));
    assert_eq!(
        git(&p.dir, &["rev-parse", "--abbrev-ref", "HEAD"]),
        "shopfloor/12-1"
    );
    assert_eq!(git(&p.dir, &["rev-parse", "HEAD"]), main);
    assert_eq!(
        std::fs::read_to_string(p.dir.join("README.md")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        std::fs::read_to_string(p.dir.join(".env")).unwrap(),
        "TOKEN=local\n"
    );
    assert_eq!(
        std::fs::read_to_string(p.dir.join(".env.test")).unwrap(),
        "T=1\n"
    );
    assert!(
        !p.dir.join("target").exists(),
        "only the include globs are copied"
    );
    // The copied files stay ignored in the worktree: not part of any commit.
    assert_eq!(git(&p.dir, &["status", "--porcelain"]), "");

    assert_eq!(
        snapshot(&f.user),
        user_before,
        "the user's files are untouched"
    );
    assert_eq!(git(&f.user, &["rev-parse", "HEAD"]), user_head);
    assert_eq!(
        git(&f.user, &["rev-parse", "--abbrev-ref", "HEAD"]),
        "feature"
    );
}

#[test]
fn a_root_inside_the_users_checkout_is_refused() {
    let f = fixture();
    let mut s = spec(&f, 1, 1);
    s.root = f.user.join("worktrees");
    let err = sandbox::prepare(&s, &[]).unwrap_err();
    assert!(
        err.to_string().contains("inside the user's checkout"),
        "{err}"
    );
    let mut s = spec(&f, 1, 1);
    s.base = "nope".into();
    assert!(
        sandbox::prepare(&s, &[])
            .unwrap_err()
            .to_string()
            .contains("`nope` not found")
    );
}

#[test]
fn commit_leftovers_commits_new_modified_and_deleted_files_and_remove_keeps_the_branch() {
    let f = fixture();
    let p = sandbox::prepare(&spec(&f, 3, 1), &[".env".to_string()]).unwrap();
    let clean = sandbox::commit_leftovers(&p, "nothing", "bot").unwrap();
    assert_eq!(clean.commit, None);
    assert!(clean.files_changed.is_empty());

    std::fs::write(p.dir.join("README.md"), "changed\n").unwrap();
    std::fs::write(p.dir.join("src/new.rs"), "// new\n").unwrap();
    std::fs::remove_file(p.dir.join("src/lib.rs")).unwrap();
    std::fs::write(p.dir.join(".env"), "TOKEN=changed\n").unwrap();
    let l = sandbox::commit_leftovers(&p, "leftovers of run 1", "Agent <agent@shopfloor>").unwrap();
    let commit = l.commit.expect("a dirty worktree is committed");
    assert_eq!(
        l.files_changed,
        vec!["README.md", "src/lib.rs", "src/new.rs"]
    );
    assert_eq!(git(&f.clone, &["rev-parse", "shopfloor/3-1"]), commit);
    assert_eq!(
        git(&f.clone, &["log", "-1", "--format=%an <%ae>|%s", &commit]),
        "Agent <agent@shopfloor>|leftovers of run 1"
    );
    assert_eq!(git(&p.dir, &["status", "--porcelain"]), "");

    sandbox::remove(&p).unwrap();
    assert!(!p.dir.exists());
    assert_eq!(
        git(&f.clone, &["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        1
    );
    assert_eq!(
        git(&f.clone, &["rev-parse", "shopfloor/3-1"]),
        commit,
        "the branch stays"
    );
}

#[test]
fn a_second_prepare_after_a_crash_starts_clean() {
    let f = fixture();
    let p = sandbox::prepare(&spec(&f, 5, 2), &[]).unwrap();
    std::fs::write(p.dir.join("junk.txt"), "half-done\n").unwrap();
    sandbox::commit_leftovers(&p, "wip", "bot").unwrap();
    std::fs::write(p.dir.join("more-junk.txt"), "x\n").unwrap();
    // "Crash": nothing is cleaned up; the same ticket/attempt is prepared again.
    let again = sandbox::prepare(&spec(&f, 5, 2), &[]).unwrap();
    assert_eq!(again.dir, p.dir);
    assert_eq!(git(&again.dir, &["rev-parse", "HEAD"]), again.base_commit);
    assert!(!again.dir.join("junk.txt").exists() && !again.dir.join("more-junk.txt").exists());
    assert_eq!(git(&again.dir, &["status", "--porcelain"]), "");
}

#[tokio::test]
async fn launch_streams_lines_scrubs_env_and_reports_the_exit_code() {
    let f = fixture();
    let p = sandbox::prepare(&spec(&f, 7, 1), &[]).unwrap();
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("SECRET_X", "leaked") };
    let sb = WorktreeSandbox::new(&SandboxConfig::default());
    assert_eq!(sb.kind(), BackendKind::Worktree);
    let script = r#"echo "out one"; echo "err one" >&2; echo "secret=${SECRET_X:-absent}";
        echo "path=${PATH:+present}"; echo "extra=$EXTRA_FROM_CALLER";
        echo "label=$SHOPFLOOR_WORKSPACE/$SHOPFLOOR_RUN"; echo "pwd=$(pwd)"; printf 'no newline'; exit 3"#;
    let mut proc = sb
        .launch(launch_spec(&p.dir, &["sh", "-c", script], 42))
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut err = Vec::new();
    while let Some(o) = proc.output.recv().await {
        match o {
            Output::Stdout(l) => out.push(String::from_utf8(l).unwrap()),
            Output::Stderr(l) => err.push(String::from_utf8(l).unwrap()),
        }
    }
    let exit = proc.control.wait().await.unwrap();
    assert_eq!(exit.code, Some(3));
    assert_eq!(exit.signal, None);
    assert_eq!(err, vec!["err one"]);
    assert_eq!(
        out,
        vec![
            "out one".to_string(),
            "secret=absent".into(),
            "path=present".into(),
            "extra=yes".into(),
            "label=ws-test/42".into(),
            format!("pwd={}", p.dir.display()),
            "no newline".into(),
        ]
    );
    // wait() may be called again.
    assert_eq!(proc.control.wait().await.unwrap().code, Some(3));
    let bad = sb.launch(launch_spec(&p.dir, &["/no/such/agent"], 1)).await;
    assert!(
        bad.err()
            .unwrap()
            .to_string()
            .contains("cannot start `/no/such/agent`")
    );
    assert!(sb.launch(launch_spec(&p.dir, &[], 1)).await.is_err());
}

fn alive(pid: i32) -> bool {
    // Gone, or a zombie waiting for a reaper that never comes: either way not running.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat[stat.rfind(')').unwrap() + 2..].chars().next().unwrap();
            state != 'Z' && state != 'X'
        }
        Err(_) => false,
    }
}

#[tokio::test]
async fn kill_takes_down_the_whole_tree_in_under_a_second() {
    let f = fixture();
    let p = sandbox::prepare(&spec(&f, 8, 1), &[]).unwrap();
    let sb = WorktreeSandbox::new(&SandboxConfig::default());
    // The grandchild ignores SIGTERM, so only the SIGKILL to the group stops it.
    let script = "sh -c 'trap \"\" TERM; echo $$; exec sleep 60' & wait";
    let mut proc = sb
        .launch(launch_spec(&p.dir, &["sh", "-c", script], 2))
        .await
        .unwrap();
    let Some(Output::Stdout(line)) = proc.output.recv().await else {
        panic!("no pid printed")
    };
    let grandchild: i32 = String::from_utf8(line).unwrap().trim().parse().unwrap();
    assert!(alive(grandchild));
    let started = Instant::now();
    proc.control.kill().await.unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "kill took {took:?}");
    assert!(!alive(grandchild), "the grandchild is gone too");
    let exit = tokio::time::timeout(Duration::from_secs(1), proc.control.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.signal.is_some(), "{exit:?}");
}

#[tokio::test]
async fn reap_orphans_kills_labelled_strays_of_its_workspace_only() {
    let sb = WorktreeSandbox::new(&SandboxConfig::default());
    let labelled = |ws: &str| {
        Command::new("sleep")
            .arg("60")
            .env("SHOPFLOOR_WORKSPACE", ws)
            .env("SHOPFLOOR_RUN", "9")
            .env("SHOPFLOOR_SANDBOX", "worktree")
            .spawn()
            .unwrap()
    };
    // A leftover of a crashed factory of this workspace, one of another workspace, and a
    // user's shell that merely selects the workspace (no sandbox label).
    let mut stray = labelled("reap-ws");
    let mut other = labelled("reap-other");
    let mut users = Command::new("sleep")
        .arg("60")
        .env("SHOPFLOOR_WORKSPACE", "reap-ws")
        .spawn()
        .unwrap();
    // One this sandbox launched itself is live, not an orphan.
    let tmp = tempfile::tempdir().unwrap();
    let mut mine_spec = launch_spec(tmp.path(), &["sleep", "60"], 10);
    mine_spec.labels.workspace = "reap-ws".into();
    let mine = sb.launch(mine_spec).await.unwrap();

    let n = sb.reap_orphans("reap-ws").await.unwrap();
    assert_eq!(n, 1);
    let status = stray.wait().unwrap();
    assert!(!status.success());
    assert!(
        other.try_wait().unwrap().is_none(),
        "another workspace's process lives"
    );
    assert!(
        users.try_wait().unwrap().is_none(),
        "an unlabelled process lives"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(200), mine.control.wait())
            .await
            .is_err()
    );
    for c in [&mut other, &mut users] {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    mine.control.kill().await.unwrap();
}

/// Sixteen runs preparing, committing and removing sandboxes of one clone at once, four
/// times each. With git worktrees (a shared registry in the clone) 1 in 14 of these failed
/// with "already checked out" or "directory exists"; a checkout of a run's own has nothing
/// shared to race on but the clone's refs, written under one lock.
#[test]
fn concurrent_prepares_commits_and_removes_never_race() {
    let f = std::sync::Arc::new(fixture());
    let workers: Vec<_> = (1..=16u64)
        .map(|ticket| {
            let f = f.clone();
            std::thread::spawn(move || {
                for attempt in 1..=4u32 {
                    let p = sandbox::prepare(&spec(&f, ticket, attempt), &[]).unwrap();
                    std::fs::write(p.dir.join(format!("t{ticket}.txt")), "x\n").unwrap();
                    let l = sandbox::commit_leftovers(&p, "work", "bot").unwrap();
                    assert_eq!(l.files_changed, vec![format!("t{ticket}.txt")]);
                    sandbox::remove(&p).unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a worker failed");
    }
    let branches = git(&f.clone, &["branch", "--list", "shopfloor/*"]);
    assert_eq!(branches.lines().count(), 64, "{branches}");
    assert_eq!(
        git(&f.clone, &["show", "shopfloor/9-3:t9.txt"]),
        "x",
        "each run's work came back to the clone"
    );
    assert_eq!(git(&f.clone, &["fsck", "--no-progress"]), "");
}

/// The agent owns its sandbox, `.git` included. Whatever it does there, the factory's own
/// reads stay in the sandbox: alternates are written back, `core.worktree` is ignored,
/// and a `.git` replaced by a link to somewhere else is refused.
#[test]
fn a_tampered_git_dir_cannot_send_the_factory_elsewhere() {
    let f = fixture();
    let p = sandbox::prepare(&spec(&f, 4, 1), &[]).unwrap();
    let alternates = p.dir.join(".git/objects/info/alternates");
    std::fs::write(&alternates, "/etc\n").unwrap();
    git(
        &p.dir,
        &["config", "core.worktree", f.user.to_str().unwrap()],
    );
    std::fs::write(p.dir.join("mine.txt"), "agent\n").unwrap();
    let l = sandbox::commit_leftovers(&p, "work", "bot").unwrap();
    assert_eq!(
        l.files_changed,
        vec!["mine.txt"],
        "the user's checkout was not read as the sandbox"
    );
    assert_eq!(
        std::fs::read_to_string(&alternates).unwrap().trim(),
        p.clone_objects().to_str().unwrap()
    );

    let p = sandbox::prepare(&spec(&f, 4, 2), &[]).unwrap();
    let main_before = git(&f.clone, &["rev-parse", "main"]);
    std::fs::remove_dir_all(p.dir.join(".git")).unwrap();
    std::os::unix::fs::symlink(f.clone.join(".git"), p.dir.join(".git")).unwrap();
    std::fs::write(p.dir.join("evil.txt"), "x\n").unwrap();
    let e = sandbox::commit_leftovers(&p, "work", "bot").unwrap_err();
    assert!(e.to_string().contains("no longer a directory"), "{e}");
    assert_eq!(git(&f.clone, &["rev-parse", "main"]), main_before);
}

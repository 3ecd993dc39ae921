//! Helpers for tests that drive the real binary: a temp shopfloor home and a real git repo.
#![allow(dead_code)]

pub mod agent_clis;
pub mod docker;
pub mod hosts;
pub mod mcp;
pub mod model_server;
pub mod serve;
pub mod tmux;

use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub struct Env {
    pub home: tempfile::TempDir,
    pub repo: tempfile::TempDir,
}

impl Env {
    /// A fresh home and a repository holding `files` (path, text) committed, with the
    /// workspace `name` created on it: a project the factory tests run in.
    pub fn project(name: &str, files: &[(&str, &str)]) -> Env {
        let env = Env::new();
        let root = env.repo.path();
        for (path, text) in files {
            std::fs::write(root.join(path), text).unwrap();
        }
        commit_all(root, "project");
        env.ok(&["workspace", "create", name]);
        env
    }

    /// The merge queue's entries, as `queue list --json` gives them.
    pub fn queue_entries(&self) -> Vec<serde_json::Value> {
        self.json(&["queue", "list", "--json"])["entries"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Every run, as `run list --json` gives them.
    pub fn runs(&self) -> Vec<serde_json::Value> {
        self.json(&["run", "list", "--json"])
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Every ticket, as `ticket list --json` gives them.
    pub fn tickets(&self) -> Vec<serde_json::Value> {
        self.json(&["ticket", "list", "--json"])
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// How many tickets have landed.
    pub fn merged(&self) -> usize {
        self.tickets()
            .iter()
            .filter(|t| t["state"] == "merged")
            .count()
    }

    /// Wait until `n` tickets have landed, or fail with the runs, the tickets and the
    /// factory's log.
    pub fn wait_merged(&self, n: usize, within: std::time::Duration) {
        let start = std::time::Instant::now();
        while self.merged() < n {
            if start.elapsed() > within {
                panic!("{n} tickets not merged within {within:?}\n{}", self.dump());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// What the factory said: its runs, its tickets and its log files.
    pub fn dump(&self) -> String {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    walk(&e.path(), out);
                } else {
                    out.push(e.path());
                }
            }
        }
        let mut out = format!(
            "runs:\n{}\ntickets:\n{}\n",
            self.ok(&["run", "list"]),
            self.ok(&["ticket", "list"])
        );
        let mut logs = vec![];
        walk(&self.home.path().join("logs"), &mut logs);
        for log in logs {
            out.push_str(&format!(
                "--- {}\n{}\n",
                log.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        out
    }

    /// A fresh home and a git repository with one commit.
    pub fn new() -> Env {
        let home = tempfile::tempdir().unwrap();
        let repo = tempfile::tempdir().unwrap();
        init_repo(repo.path());
        Env { home, repo }
    }

    pub fn repo_path(&self) -> PathBuf {
        self.repo.path().canonicalize().unwrap()
    }

    /// `shopfloor ARGS` run inside the repository with this home.
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("shopfloor").unwrap();
        c.env("SHOPFLOOR_HOME", self.home.path())
            .env_remove("SHOPFLOOR_WORKSPACE")
            .current_dir(self.repo.path());
        c
    }

    /// Run and return stdout, asserting success.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "shopfloor {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run and return (exit code, stderr), asserting failure.
    pub fn fails(&self, args: &[&str]) -> (i32, String) {
        let out = self.cmd().args(args).output().unwrap();
        assert!(!out.status.success(), "shopfloor {args:?} should fail");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }
}

pub fn init_repo(dir: &Path) {
    let repo = git2::Repository::init(dir).unwrap();
    std::fs::write(dir.join("README.md"), "hello\n").unwrap();
    let mut index = repo.index().unwrap();
    index.add_path(Path::new("README.md")).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("test", "test@example.com").unwrap();
    repo.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
        .unwrap();
}

/// The shared fixtures folder (real agent logs, read in place, never copied into the
/// repository), or None, after one line on stderr, when this checkout has no `../shared`
/// beside it: a person who clones the repository has none. Under CI (`CI=true`) a missing
/// folder fails the test instead.
pub fn fixtures() -> Option<PathBuf> {
    static SAID: std::sync::Once = std::sync::Once::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{} is missing: CI needs the real agent logs beside the clone",
        dir.display()
    );
    SAID.call_once(|| {
        eprintln!(
            "skipping the tests on real agent logs: {} is absent",
            dir.display()
        )
    });
    None
}

/// A real Codex `exec --json` log recorded by this project's own real-CLI tests (ours to
/// keep, so it is in the repository): for tests that need any imported run.
pub fn recorded_codex_log() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real-cli/codex-allowlist.jsonl")
}

/// Stage everything in a repository's working tree and commit it on HEAD (the first
/// commit of an empty repository, or on top of the current one).
pub fn commit_all(root: &Path, message: &str) {
    let repo = git2::Repository::open(root).unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("test", "test@example.com").unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .unwrap();
}

/// Poll `f` every 100 ms until it gives a value; fail naming `what` after `timeout`.
pub fn wait_for<T>(
    what: &str,
    timeout: std::time::Duration,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

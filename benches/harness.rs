//! What the benchmarks that run a real factory share: a committed repository to run it
//! on, the `shopfloor` binary as a command, and what a process costs, read from /proc.

// Each benchmark uses the part of this it needs.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// A git repository at `repo` (created) holding `files`, committed on `main`.
pub fn committed_repo(repo: &Path, files: &[(&str, String)]) {
    std::fs::create_dir_all(repo).unwrap();
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args(args)
            .current_dir(repo)
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    for (path, text) in files {
        let file = repo.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
    git(&["add", "-A"]);
    git(&[
        "-c",
        "user.name=b",
        "-c",
        "user.email=b@b",
        "commit",
        "-qm",
        "init",
    ]);
}

/// `shopfloor ARGS` in `repo` with `home`, which must succeed; its stdout.
pub fn shopfloor(home: &Path, repo: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_shopfloor"))
        .args(args)
        .env("SHOPFLOOR_HOME", home)
        .env_remove("SHOPFLOOR_WORKSPACE")
        .current_dir(repo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shopfloor {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// (user + system CPU seconds of the process itself, anonymous resident KiB: the heap,
/// not the file pages of the store and index it has mapped or read, which the kernel
/// reclaims at will).
pub fn proc_usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name's closing parenthesis; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = (f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0))
        / ticks;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("RssAnon:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (cpu, rss)
}

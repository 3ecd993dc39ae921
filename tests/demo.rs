//! `shopfloor demo`, the real binary end to end: headless to the end, and in a real
//! pseudo-terminal (tmux) where a person approves the gated entry in the control room and
//! sees main move.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common;
use common::tmux::Tmux;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_shopfloor")
}

fn main_head(root: &Path) -> Option<git2::Oid> {
    let repo = git2::Repository::open(root.join("home/demo/repo")).ok()?;
    repo.head().ok()?.target()
}

fn file_on_main(root: &Path, path: &str) -> Option<String> {
    let repo = git2::Repository::open(root.join("home/demo/repo")).ok()?;
    let tree = repo.head().ok()?.peel_to_tree().ok()?;
    let entry = tree.get_path(Path::new(path)).ok()?;
    let blob = repo.find_blob(entry.id()).ok()?;
    Some(String::from_utf8_lossy(blob.content()).into_owned())
}

#[test]
fn the_headless_demo_bounces_retries_with_the_lesson_and_lands_everything() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("demo");
    let out = Command::new(bin())
        .args(["demo", "--headless", "--dir"])
        .arg(&root)
        .env("SHOPFLOOR_HOME", dir.path().join("unused-home"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "bounced: the tests failed",
        "waits for a human",
        "approving it as the demo's reviewer",
        "landed on main",
        "ticket 1 merged",
        "ticket 2 merged",
        "ticket 3 merged",
        "(approved by demo-reviewer)",
        "lesson",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    // The summary prints a bounce whole: its reason's first line ends in a colon, and the
    // test output under it is what a reader needs.
    let summary = stdout.split("\nsummary").nth(1).expect("a summary");
    let bounced = summary
        .lines()
        .position(|l| l.contains("bounced") && l.trim_end().ends_with(':'))
        .unwrap_or_else(|| panic!("a bounce in the summary:\n{summary}"));
    let below = summary.lines().nth(bounced + 1).unwrap_or("");
    assert!(
        below.starts_with("      ") && !below.trim().is_empty(),
        "the bounce's detail follows it:\n{summary}"
    );
    // The demo's repository is on `main`.
    let user = git2::Repository::open(root.join("inventory")).unwrap();
    assert_eq!(user.head().unwrap().shorthand().unwrap(), "main");
    // The retry kept the check the first attempt dropped, and every change is on main.
    let stock = file_on_main(&root, "inventory/stock.py").unwrap();
    assert!(stock.contains("def release"), "{stock}");
    assert!(stock.contains("raise OutOfStock"), "{stock}");
    assert!(file_on_main(&root, "migrations/0002_reservations.sql").is_some());
    assert!(file_on_main(&root, ".github/workflows/ci.yml").is_some());
    // The queue keeps what a reviewer saw: the gated entry's diff, file by file.
    let home = shopfloor::workspace::Home::at(root.join("home"));
    let ws =
        shopfloor::workspace::Workspace::open(home.resolve(Some("demo"), &root).unwrap()).unwrap();
    let view = shopfloor::api::ops::queue(&ws).unwrap();
    let gated = view
        .entries
        .iter()
        .find(|e| e.approval.is_some())
        .expect("the approved entry");
    let detail = shopfloor::api::ops::queue_entry(&ws, gated.id).unwrap();
    assert!(
        detail
            .patch
            .contains("+++ b/migrations/0002_reservations.sql"),
        "{}",
        detail.patch
    );
    let files: Vec<String> = shopfloor::tui::app::split_patch(&detail.patch)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        files,
        [
            ".github/workflows/ci.yml",
            "migrations/0002_reservations.sql"
        ]
    );
}

#[test]
fn in_the_control_room_a_person_approves_the_gated_entry_and_main_moves() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("demo");
    let tmux = Tmux::new("demo");
    let cmd = format!(
        "env -u NO_COLOR TERM=xterm-256color {} demo --dir {}; echo DEMO-EXIT=$?; sleep 600",
        bin(),
        root.display()
    );
    tmux.start(&cmd, 160, 45);
    // The control room opens on live panes, and the gated entry comes to wait.
    tmux.wait("the control room", 60, |s| s.contains("1 Fleet"));
    tmux.wait("an approval waiting", 180, |s| {
        s.contains("waiting for approval")
    });
    let before = main_head(&root).expect("the factory's clone has a main");
    tmux.keys("4");
    let mut screen = tmux.wait("the merge queue", 20, |s| s.contains("merge queue"));
    for _ in 0..12 {
        if screen.lines().any(|l| l.contains("▶ ⚑ awaiting-approval")) {
            break;
        }
        // Move toward the waiting entry: the selection follows its entry as the queue
        // reorders, so it may be above or below.
        let row = |pat: &str| screen.lines().position(|l| l.contains(pat));
        let key = match (row("▶ "), row("⚑ awaiting-approval")) {
            (Some(sel), Some(w)) if w < sel => "k",
            _ => "j",
        };
        tmux.keys(key);
        std::thread::sleep(Duration::from_millis(300));
        screen = tmux.screen();
    }
    assert!(
        screen.lines().any(|l| l.contains("▶ ⚑ awaiting-approval")),
        "the waiting entry is selected:\n{screen}"
    );
    tmux.keys("a");
    tmux.wait("the confirmation", 10, |s| s.contains("confirm"));
    tmux.keys("y");
    // Main moves: the gated change lands on the factory's main.
    let start = Instant::now();
    while file_on_main(&root, "migrations/0002_reservations.sql").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "main did not get the approved change; the screen:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_ne!(main_head(&root), Some(before));
    tmux.wait("the landing on screen", 30, |s| {
        s.contains("✓ merged") && !s.contains("waiting for approval")
    });
    // Quit: the terminal is given back and the demo prints its summary.
    tmux.keys("q");
    let s = tmux.wait("the demo to exit", 60, |s| s.contains("DEMO-EXIT="));
    assert!(s.contains("DEMO-EXIT=0"), "{s}");
    assert!(s.contains("summary"), "{s}");
    assert!(s.contains("approved by"), "{s}");
}

#[test]
fn the_demo_piped_runs_headless_rather_than_failing() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["demo", "--dir"])
        .arg(dir.path().join("d"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("running it headless"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("summary"));
}

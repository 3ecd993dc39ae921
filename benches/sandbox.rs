//! Sandbox preparation and start-up, each beside a peer measured in the same run:
//! - `prepare` (a checkout of its own on a fresh branch, borrowing the clone's objects) vs
//!   `git worktree add -b` (the git CLI) on a
//!   generated 5,000-file repository; target: within 1.5x of the CLI.
//! - Docker sandbox ready time (container created + started until its first output line),
//!   with the image present; target: under 1 s (OpenHands' sandbox start is about 15 s).
//!
//! Run: `cargo bench --bench sandbox`. The Docker figure needs an engine and
//! `shopfloor-test-base:bookworm-v2` (scripts/build-test-image.sh); without them it says so.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use shopfloor::sandbox::{
    self, BackendChoice, DockerSandbox, Labels, LaunchSpec, PrepareSpec, Sandbox, SandboxConfig,
};

const FILES: usize = 5_000;
const ROUNDS: usize = 7;

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=B", "-c", "user.email=b@b"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let repo = tmp.path().join("repo");
    for d in 0..50 {
        let dir = repo.join(format!("src/mod{d:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..FILES / 50 {
            let body = format!("// file {d}/{f}\npub fn f{f}() -> usize {{ {f} }}\n").repeat(20);
            std::fs::write(dir.join(format!("f{f:03}.rs")), body).unwrap();
        }
    }
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "generated"]);
    let root = tmp.path().join("worktrees");
    let cli_root = tmp.path().join("cli-worktrees");
    std::fs::create_dir_all(&cli_root).unwrap();

    // Interleaved, so both see the same page cache and machine load.
    let (mut ours, mut cli) = (Vec::new(), Vec::new());
    for i in 0..ROUNDS {
        let spec = PrepareSpec {
            workspace: "bench".into(),
            run: i as u64,
            ticket: i as u64,
            attempt: 1,
            repo: repo.clone(),
            base: "main".into(),
            user_checkout: repo.clone(),
            root: root.clone(),
        };
        let t = Instant::now();
        let p = sandbox::prepare(&spec, &[]).expect("prepare");
        ours.push(t.elapsed());
        assert_eq!(std::fs::read_dir(p.dir.join("src")).unwrap().count(), 50);

        let dir = cli_root.join(format!("{i}"));
        let t = Instant::now();
        git(
            &repo,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                &format!("cli/{i}"),
                dir.to_str().unwrap(),
                "main",
            ],
        );
        cli.push(t.elapsed());
    }
    let (o, c) = (median(ours), median(cli));
    println!("prepare on a {FILES}-file repo, median of {ROUNDS}:");
    println!("  shopfloor prepare (git2)    {:8.1} ms", ms(o));
    println!("  git worktree add (git CLI)  {:8.1} ms", ms(c));
    println!(
        "  ratio                       {:8.2}x  (target <= 1.5x)",
        o.as_secs_f64() / c.as_secs_f64()
    );

    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    rt.block_on(async {
        let cfg = SandboxConfig {
            backend: BackendChoice::Docker,
            image: "shopfloor-test-base:bookworm-v2".into(),
            ..Default::default()
        };
        let sb = match DockerSandbox::connect(&cfg).await {
            Ok(sb) => sb,
            Err(e) => {
                println!("docker ready time: not measured ({e})");
                return;
            }
        };
        let dir = root.join("0-1");
        let mut ready = Vec::new();
        for run in 0..ROUNDS as u64 {
            let spec = LaunchSpec {
                argv: vec!["sh".into(), "-c".into(), "echo ready".into()],
                env: vec![],
                workdir: dir.clone(),
                labels: Labels {
                    workspace: "bench".into(),
                    run,
                },
                socket: None,
                read_only: vec![],
                workdir_read_only: false,
            };
            let t = Instant::now();
            let mut p = sb.launch(spec).await.expect("launch");
            p.output.recv().await.expect("a first line");
            ready.push(t.elapsed());
            p.control.wait().await.expect("exit");
        }
        let all: Vec<String> = ready.iter().map(|d| format!("{:.0}", ms(*d))).collect();
        println!(
            "docker sandbox ready (create + start -> first line), median of {ROUNDS}: {:.1} ms \
             (target < 1000 ms; OpenHands ~15000 ms); all: [{}] ms",
            ms(median(ready)),
            all.join(", ")
        );
    });
}

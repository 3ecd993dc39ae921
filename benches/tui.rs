//! The control room under load (issue 6), run with `cargo bench --bench tui`.
//!
//! 1. Frame render: 16 live panes, each with a full scrollback of ANSI-coloured agent
//!    output, drawn at 200x60 on ratatui's TestBackend; printed beside a peer measured in
//!    the same run: the same grid drawn as 16 plain bordered paragraphs of the same text
//!    (what any ratatui app pays for the cells alone). Target: under 8 ms a frame.
//! 2. Replay of a 100,000-step run through a real `serve`: the outline in the control
//!    room's chunks, a step's detail, and the replay keys over the held outline.
//! 3. Factory plus control room: `shopfloor up` in a real pseudo-terminal (tmux) with 16
//!    fixture agents streaming for TUI_SECONDS (300 by default), its CPU in cores and its
//!    resident memory over time; beside it, the peer: `shopfloor serve` (the factory
//!    alone) on the same load for half the time. Target: under 0.5 core, flat.
//!    TUI_RATE sets each agent's lines a second (20: a busy real agent); TUI_SKIP_RENDER
//!    and TUI_SKIP_LOAD run one half.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::widgets::{Block, Borders, Paragraph};
use shopfloor::model::{Run, RunState, Step, StepKind, Usage};
use shopfloor::tui::app::{App, Msg};
use shopfloor::tui::keymap::Keymap;
use shopfloor::tui::theme::Theme;

mod harness;
use harness::{committed_repo, proc_usage, shopfloor};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn run(id: u64, now: Timestamp) -> Run {
    Run {
        id,
        ticket: Some(id),
        agent: format!("agent-{id}"),
        state: RunState::Running,
        started: now - jiff::SignedDuration::from_secs(90),
        ended: None,
        steps: 0,
        source: "bench".into(),
        attempt: 1,
        branch: None,
        usage: Usage::default(),
        files_changed: vec![],
        sandbox: None,
        outcome: None,
        recalled: Vec::new(),
        review_of: None,
        host: None,
    }
}

fn step(run: u64, seq: u64, now: Timestamp) -> Step {
    let kind = match seq % 4 {
        0 => StepKind::AgentMessage {
            text: format!(
                "\x1b[1mthinking\x1b[0m about step {seq}: \x1b[32mall good\x1b[0m, moving on"
            )
            .into(),
        },
        1 => StepKind::ToolCall {
            call_id: None,
            name: "Read".into(),
            input: format!("{{\"file_path\":\"src/module_{seq}.rs\"}}").into(),
        },
        2 => StepKind::Command {
            argv: vec!["cargo".into(), "test".into()],
            exit_code: Some((seq % 7 == 2) as i32),
            output: "\x1b[32mtest a ... ok\x1b[0m\n\x1b[31mtest b ... FAILED\x1b[0m".into(),
        },
        _ => StepKind::FileEdit {
            path: format!("src/module_{seq}.rs"),
            before: None,
            after: None,
            patch: "+fn x() {}".into(),
        },
    };
    Step {
        run,
        seq,
        ts: now,
        agent: format!("agent-{run}"),
        parent: None,
        kind,
    }
}

fn render_bench() {
    let now = Timestamp::now();
    let theme = Theme::load("dark", None, false).0;
    let mut app = App::new(Keymap::builtin(), theme, "bench".into(), now);
    let runs: Vec<Run> = (1..=16).map(|i| run(i, now)).collect();
    app.update(Msg::Runs(runs));
    // Fill every scrollback to its bound.
    for r in 1..=16u64 {
        let steps: Vec<Step> = (0..1_000).map(|s| step(r, s, now)).collect();
        app.update(Msg::PaneSteps { run: r, steps });
    }
    let lines: usize = app.fleet.by_run.values().map(|p| p.lines.len()).sum();
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
    let frames = 300;
    let mut ours = vec![];
    for i in 0..frames {
        // A new step on one pane per frame, as when agents stream.
        let r = (i % 16) as u64 + 1;
        app.update(Msg::PaneSteps {
            run: r,
            steps: vec![step(r, 1_000 + i as u64, now)],
        });
        let t = Instant::now();
        term.draw(|f| shopfloor::tui::view::draw(f, &app)).unwrap();
        ours.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    // The peer: the same grid, the same text, as plain paragraphs.
    let texts: Vec<String> = (1..=16u64)
        .map(|r| {
            (0..60)
                .map(|s| format!("step {s} of agent-{r}: thinking about it, all good\n"))
                .collect()
        })
        .collect();
    let mut peer = vec![];
    let mut term2 = Terminal::new(TestBackend::new(200, 60)).unwrap();
    for _ in 0..frames {
        let t = Instant::now();
        term2
            .draw(|f| {
                let cells = shopfloor::tui::fleet::grid(16, f.area());
                for (c, text) in cells.into_iter().zip(&texts) {
                    f.render_widget(
                        Paragraph::new(text.as_str()).block(Block::default().borders(Borders::ALL)),
                        c,
                    );
                }
            })
            .unwrap();
        peer.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "frame render, 16 panes at 200x60 ({lines} scrollback lines held, bounded at {} a pane):",
        shopfloor::tui::fleet::SCROLLBACK_LINES
    );
    println!(
        "  control room: p50 {:.3} ms, p99 {:.3} ms (target < 8 ms)",
        percentile(&mut ours.clone(), 0.5),
        percentile(&mut ours, 0.99)
    );
    println!(
        "  peer, plain paragraphs: p50 {:.3} ms, p99 {:.3} ms",
        percentile(&mut peer.clone(), 0.5),
        percentile(&mut peer, 0.99)
    );
}

fn setup(
    dir: &Path,
    agents: u64,
    rate: u64,
    seconds: u64,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let home = dir.join("home");
    let repo = dir.join("repo");
    committed_repo(
        &repo,
        &[
            ("README.md", "load\n".into()),
            (
                "stream.toml",
                format!(
                    "name = \"stream\"\n[[step]]\nflood = {{ per_second = {rate}, seconds = {seconds} }}\n"
                ),
            ),
            (
                "shopfloor.toml",
                format!(
                    "[factory]\nconcurrency = {agents}\ndefault_agent = \"stream\"\nquiet_timeout_s = 60\n\
                     [sandbox]\nbackend = \"worktree\"\n[test]\ncommand = \"true\"\n\
                     [agents.stream]\nadapter = \"fixture\"\nscenario = \"stream.toml\"\n"
                ),
            ),
        ],
    );
    let sf = |args: &[&str]| {
        shopfloor(&home, &repo, args);
    };
    sf(&["workspace", "create", "load"]);
    for i in 0..agents {
        sf(&["ticket", "add", &format!("stream {i}")]);
    }
    (home, repo)
}

/// Watch `pid` for `seconds`: (cores, RSS KiB sampled every 5 s).
fn watch(pid: u32, seconds: u64) -> (f64, Vec<u64>) {
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let (cpu0, _) = proc_usage(pid);
    let t0 = Instant::now();
    let mut rss = vec![];
    while start.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(5));
        rss.push(proc_usage(pid).1);
    }
    let (cpu1, _) = proc_usage(pid);
    ((cpu1 - cpu0) / t0.elapsed().as_secs_f64(), rss)
}

/// Every sixth 5-second sample (one per 30 s), in MiB.
fn series(rss: &[u64]) -> String {
    rss.iter()
        .skip(5)
        .step_by(6)
        .map(|k| format!("{}", k / 1024))
        .collect::<Vec<_>>()
        .join(" ")
}

fn pid_of(pattern: &str) -> u32 {
    for _ in 0..100 {
        let out = Command::new("pgrep")
            .args(["-n", "-f", pattern])
            .output()
            .unwrap();
        if let Ok(p) = String::from_utf8_lossy(&out.stdout).trim().parse() {
            return p;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no process matches {pattern}");
}

fn load_bench() {
    let agents = env_u64("TUI_AGENTS", 16);
    let rate = env_u64("TUI_RATE", 20);
    let seconds = env_u64("TUI_SECONDS", 300);
    let peer_seconds = (seconds / 2).max(30);
    println!(
        "factory + control room: {agents} fixture agents x {rate} lines/s, worktree sandboxes"
    );
    // The control room, in a real terminal.
    let dir = tempfile::tempdir().unwrap();
    let (home, repo) = setup(dir.path(), agents, rate, seconds + 30);
    let sock = format!("shopfloor-bench-{}", std::process::id());
    let cmd = format!(
        "cd {} && SHOPFLOOR_HOME={} {} up",
        repo.display(),
        home.display(),
        env!("CARGO_BIN_EXE_shopfloor")
    );
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .arg("-L")
            .arg(&sock)
            .args(args)
            .output()
            .unwrap()
    };
    // A 200x60 terminal running `cmd`.
    let open_terminal = |cmd: &str| {
        tmux(&["new-session", "-d", "-s", "b", "-x", "200", "-y", "60", cmd]);
    };
    open_terminal(&cmd);
    let pid = pid_of(&format!("{} up", env!("CARGO_BIN_EXE_shopfloor")));
    let (cores, rss) = watch(pid, seconds);
    let screen =
        String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", "b"]).stdout).into_owned();
    tmux(&["send-keys", "-t", "b", "q"]);
    std::thread::sleep(Duration::from_secs(3));
    tmux(&["kill-server"]);
    assert!(
        screen.contains("agents"),
        "the control room was on screen:\n{screen}"
    );
    println!(
        "  `shopfloor up` (factory + control room), {seconds} s: {cores:.3} cores (target < 0.5)"
    );
    println!("    anonymous RSS every 30 s, MiB: {}", series(&rss));
    // The peer: the factory alone on the same load.
    let dir = tempfile::tempdir().unwrap();
    let (home, repo) = setup(dir.path(), agents, rate, peer_seconds + 30);
    let mut serve = Command::new(env!("CARGO_BIN_EXE_shopfloor"))
        .arg("serve")
        .env("SHOPFLOOR_HOME", &home)
        .current_dir(&repo)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (peer_cores, peer_rss) = watch(serve.id(), peer_seconds);
    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    serve.wait().unwrap();
    println!("  peer, `shopfloor serve` (factory alone), {peer_seconds} s: {peer_cores:.3} cores");
    println!("    anonymous RSS every 30 s, MiB: {}", series(&peer_rss));
    println!(
        "  the control room's share: {:.3} cores",
        (cores - peer_cores).max(0.0)
    );
    // The control room as a process of its own (`up --attach` on a `serve`), so its own
    // memory is seen apart from the factory's caches.
    let dir = tempfile::tempdir().unwrap();
    let (home, repo) = setup(dir.path(), agents, rate, peer_seconds + 30);
    let mut serve = Command::new(env!("CARGO_BIN_EXE_shopfloor"))
        .arg("serve")
        .env("SHOPFLOOR_HOME", &home)
        .current_dir(&repo)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let cmd = format!(
        "cd {} && SHOPFLOOR_HOME={} {} up --attach",
        repo.display(),
        home.display(),
        env!("CARGO_BIN_EXE_shopfloor")
    );
    open_terminal(&cmd);
    let tui = pid_of(&format!("{} up --attach", env!("CARGO_BIN_EXE_shopfloor")));
    let serve_pid = serve.id();
    let watcher = std::thread::spawn(move || watch(serve_pid, peer_seconds));
    let (tui_cores, tui_rss) = watch(tui, peer_seconds);
    let (serve_cores, _) = watcher.join().unwrap();
    tmux(&["send-keys", "-t", "b", "q"]);
    std::thread::sleep(Duration::from_secs(2));
    tmux(&["kill-server"]);
    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    serve.wait().unwrap();
    println!(
        "  attached: `up --attach` {tui_cores:.3} cores + `serve` {serve_cores:.3} cores = {:.3}, {peer_seconds} s",
        tui_cores + serve_cores
    );
    println!(
        "    the control room's own anonymous RSS every 30 s, MiB: {}",
        series(&tui_rss)
    );
}

/// Replay of a 100,000-step run through the real API: the outline a timeline needs, in
/// the control room's chunks, a step's detail, and the jumps over the outline.
fn replay_bench() {
    let dir = tempfile::tempdir().unwrap();
    let (home, repo) = setup(dir.path(), 1, 1, 1);
    let now = Timestamp::now();
    let trace = dir.path().join("long.jsonl");
    let mut text = String::new();
    for seq in 0..100_000u64 {
        text.push_str(&serde_json::to_string(&step(1, seq, now)).unwrap());
        text.push('\n');
    }
    std::fs::write(&trace, text).unwrap();
    let sf = |args: &[&str]| {
        shopfloor(&home, &repo, args);
    };
    sf(&[
        "trace",
        "import",
        trace.to_str().unwrap(),
        "--format",
        "jsonl",
    ]);
    let mut serve = Command::new(env!("CARGO_BIN_EXE_shopfloor"))
        .args(["serve", "--paused"])
        .env("SHOPFLOOR_HOME", &home)
        .current_dir(&repo)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let socket = home.join("load/factory.sock");
    let start = Instant::now();
    while !socket.exists() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = shopfloor::api::Client::new(&socket);
    let (first, whole, rows, mut detail) = rt.block_on(async {
        let start = Instant::now();
        let mut rows = vec![];
        let mut first = Duration::ZERO;
        loop {
            let from = rows.len() as u64;
            let chunk = client
                .outline(1, from, from + shopfloor::tui::app::OUTLINE_CHUNK)
                .await
                .unwrap();
            if from == 0 {
                first = start.elapsed();
            }
            let n = chunk.len() as u64;
            rows.extend(chunk);
            if n < shopfloor::tui::app::OUTLINE_CHUNK {
                break;
            }
        }
        let whole = start.elapsed();
        let mut detail = vec![];
        for seq in (0..100_000u64).step_by(997) {
            let t = Instant::now();
            client.step(1, seq).await.unwrap();
            detail.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        (first, whole, rows, detail)
    });
    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    serve.wait().unwrap();
    // The jumps, on an app holding the outline.
    let theme = Theme::load("dark", None, false).0;
    let mut app = App::new(Keymap::builtin(), theme, "bench".into(), now);
    app.open_replay(1, None, &mut vec![]);
    for chunk in rows.chunks(shopfloor::tui::app::OUTLINE_CHUNK as usize) {
        app.update(Msg::Outline {
            run: 1,
            from: chunk[0].seq,
            rows: chunk.to_vec(),
        });
    }
    let keys = ["G", "g", "g", "K", "e", "J", "k", "j"];
    let mut jumps = vec![];
    for _ in 0..50 {
        for k in keys {
            let t = Instant::now();
            app.update(Msg::Key(crossterm::event::KeyEvent::new(
                crossterm::event::KeyCode::Char(k.chars().next().unwrap()),
                crossterm::event::KeyModifiers::NONE,
            )));
            jumps.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    println!("replay of a 100,000-step run through the API:");
    println!(
        "  outline: first {} rows in {:.0} ms, all {} in {:.0} ms",
        shopfloor::tui::app::OUTLINE_CHUNK,
        first.as_secs_f64() * 1000.0,
        rows.len(),
        whole.as_secs_f64() * 1000.0
    );
    println!(
        "  a step's detail: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&mut detail.clone(), 0.5),
        percentile(&mut detail, 0.99)
    );
    println!(
        "  a key (G, gg, K, e, J, j, k) over the held outline: p50 {:.3} ms, p99 {:.3} ms",
        percentile(&mut jumps.clone(), 0.5),
        percentile(&mut jumps, 0.99)
    );
}

fn main() {
    if std::env::var_os("TUI_SKIP_RENDER").is_none() {
        render_bench();
        replay_bench();
    }
    if std::env::var_os("TUI_SKIP_LOAD").is_none() {
        load_bench();
    }
}

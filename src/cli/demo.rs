//! `shopfloor demo`: a real factory on a throwaway workspace, with nothing to set up (no
//! Docker, no API key). It copies a small sample repository (compiled into the binary)
//! with three fixture agents, queues a ticket for each, and opens the control room while
//! they work in parallel: two edit the same file, one of them breaks a test and is bounced
//! by the merge queue, then retried with the bounce as its lesson; the third touches paths
//! the policy gates, so its entry waits for a human. `--headless` runs it to the end
//! without a terminal (approving the gated entry as the demo's reviewer) and prints what
//! happened.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use shopfloor::api::Client;
use shopfloor::model::{Author, MemoryKind, QueueState, TicketState};
use shopfloor::trace::Format;
use shopfloor::tui::runtime::{self, Options};
use shopfloor::wire::FactoryEvent;
use shopfloor::wire::{MemorySearch, NewTicket, QueueAction};
use shopfloor::workspace::{Home, Workspace};

use super::output::{say, say_err};
use super::serve;

const REPO: &[(&str, &str)] = &[
    (
        "README.md",
        include_str!("../../assets/demo/repo/README.md"),
    ),
    (
        ".gitignore",
        include_str!("../../assets/demo/repo/.gitignore"),
    ),
    (
        "inventory/__init__.py",
        include_str!("../../assets/demo/repo/inventory/__init__.py"),
    ),
    (
        "inventory/stock.py",
        include_str!("../../assets/demo/repo/inventory/stock.py"),
    ),
    (
        "tests/test_stock.py",
        include_str!("../../assets/demo/repo/tests/test_stock.py"),
    ),
    (
        "agents/release.toml",
        include_str!("../../assets/demo/agents/release.toml"),
    ),
    (
        "agents/simplify.toml",
        include_str!("../../assets/demo/agents/simplify.toml"),
    ),
    (
        "agents/ci.toml",
        include_str!("../../assets/demo/agents/ci.toml"),
    ),
    ("shopfloor.toml", CONFIG),
];

/// The demo's factory: three fixture agents, the sample's tests as the merge queue's
/// check, and CI config and migrations gated for a human.
const CONFIG: &str = r#"# The demo's factory (see `shopfloor init` for every key).
[factory]
concurrency = 3
max_attempts = 2
default_agent = "release"
quiet_timeout_s = 120

[sandbox]
backend = "worktree"

[test]
command = "python3 -m unittest discover -s tests"

[policy]
paths = ["approve .github/**", "approve migrations/**"]

[agents.release]
adapter = "fixture"
scenario = "agents/release.toml"

[agents.simplify]
adapter = "fixture"
scenario = "agents/simplify.toml"

[agents.ci]
adapter = "fixture"
scenario = "agents/ci.toml"
"#;

const CLAUDE_TRACE: &str = include_str!("../../assets/demo/traces/claude-release.stream.jsonl");
const CODEX_TRACE: &str = include_str!("../../assets/demo/traces/codex-oversell.exec.jsonl");
const MEMORIES: &str = include_str!("../../assets/demo/memories.jsonl");

/// The tickets: (title, body, priority, agent).
const TICKETS: &[(&str, &str, i32, &str)] = &[
    (
        "Add Stock.release() to give reserved units back",
        "release(sku, qty) is the inverse of reserve(); validate qty like receive().",
        2,
        "release",
    ),
    (
        "Simplify Stock.reserve()",
        "reserve() reads awkwardly; make it simpler without changing what it guarantees.",
        1,
        "simplify",
    ),
    (
        "Run CI on Python 3.12 and add the reservations migration",
        "Bump the CI workflow's Python and add migrations/0002_reservations.sql.",
        0,
        "ci",
    ),
];

/// How long the headless demo waits for the factory before it gives up.
const HEADLESS_LIMIT: Duration = Duration::from_secs(240);

fn make_repo(dir: &Path) -> Result<()> {
    for (path, text) in REPO {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().expect("files have a parent"))?;
        std::fs::write(&p, text)?;
    }
    // `main`, whatever the machine's git says: the demo's summary and README name it.
    let repo =
        git2::Repository::init_opts(dir, git2::RepositoryInitOptions::new().initial_head("main"))?;
    let mut index = repo.index()?;
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = git2::Signature::now("shopfloor demo", "demo@shopfloor.invalid")?;
    repo.commit(
        Some("HEAD"),
        &sig,
        &sig,
        "inventory: initial import",
        &tree,
        &[],
    )?;
    Ok(())
}

/// Where the demo lives: a temporary directory, or `dir` when given (kept).
enum Place {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl Place {
    fn path(&self) -> &Path {
        match self {
            Place::Temp(t) => t.path(),
            Place::Kept(p) => p,
        }
    }
}

/// Make the sample repository, the workspace, its history (two imported agent traces and
/// the team's memories, so replay and recall have something from the start) and the
/// tickets. Returns the workspace, opened.
fn prepare(root: &Path, say: &dyn Fn(&str)) -> Result<Workspace> {
    let home = Home::at(root.join("home"));
    let repo = root.join("inventory");
    make_repo(&repo).context("making the sample repository")?;
    let info = home.create("demo", &repo)?;
    say(&format!(
        "demo workspace on a copy of the sample repository: {}",
        repo.display()
    ));
    let ws = Workspace::open(info)?;
    let traces = root.join("traces");
    std::fs::create_dir_all(&traces)?;
    for (name, text, format) in [
        (
            "claude-release.stream.jsonl",
            CLAUDE_TRACE,
            Format::ClaudeStream,
        ),
        ("codex-oversell.exec.jsonl", CODEX_TRACE, Format::CodexExec),
    ] {
        let path = traces.join(name);
        std::fs::write(&path, text)?;
        ws.import_trace(&path, format, None)?;
    }
    ws.memory.import_jsonl(
        std::io::Cursor::new(MEMORIES),
        Author::Human {
            name: "demo".into(),
        },
    )?;
    for (title, body, priority, agent) in TICKETS {
        let t = shopfloor::api::ops::add_ticket(
            &ws,
            NewTicket {
                title: title.to_string(),
                body: body.to_string(),
                priority: *priority,
                agent: Some(agent.to_string()),
                paths: vec![],
                labels: vec![],
            },
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        say(&format!("ticket {} for agent `{agent}`: {}", t.id, t.title));
    }
    Ok(ws)
}

pub fn run(keep: bool, headless: bool, dir: Option<PathBuf>) -> Result<()> {
    let interactive = !headless && std::io::IsTerminal::is_terminal(&std::io::stdout());
    if !headless && !interactive {
        // Piped or scripted: the demo still runs, to the end, as --headless does.
        say_err!(
            "shopfloor demo: stdout is not a terminal, so no control room; running it headless"
        );
    }
    let place = match dir {
        Some(d) => {
            if d.exists() && std::fs::read_dir(&d)?.next().is_some() {
                bail!(
                    "{} is not empty; give --dir a new or empty directory",
                    d.display()
                );
            }
            std::fs::create_dir_all(&d)?;
            Place::Kept(d.canonicalize()?)
        }
        None => Place::Temp(
            tempfile::Builder::new()
                .prefix("shopfloor-demo-")
                .tempdir()?,
        ),
    };
    let root = place.path().to_path_buf();
    let quiet = |_: &str| {};
    let print = |l: &str| say!("{l}");
    let ws = prepare(&root, if interactive { &quiet } else { &print })?;
    let rt = serve::runtime()?;
    let result = rt.block_on(async {
        let say: &dyn Fn(&str) = if interactive {
            &|l: &str| tracing::info!("{l}")
        } else {
            &print
        };
        let running = serve::start(ws, false, say).await?;
        let client = Client::new(running.socket.clone());
        let shown = if interactive {
            runtime::run(
                client.clone(),
                Options::from_env(),
                serve::shutdown_signal(),
            )
            .await
        } else {
            headless_run(&running, &client).await
        };
        let summary = if shown.is_ok() {
            summary(&client).await
        } else {
            Ok(String::new())
        };
        let stopped = running.stop().await;
        shown?;
        stopped?;
        summary
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    let summary = result?;
    if !summary.is_empty() {
        say!("{}", summary.trim_end_matches('\n'));
    }
    let kept = match place {
        Place::Kept(p) => Some(p),
        Place::Temp(t) if keep => Some(t.keep()),
        Place::Temp(_) => None,
    };
    match kept {
        Some(p) => {
            say!("\nkept the demo in {}", p.display());
            say!(
                "explore it: SHOPFLOOR_HOME={} shopfloor -w demo up",
                p.join("home").display()
            );
        }
        None => {
            say!("\nthe demo workspace was removed (`shopfloor demo --keep` keeps it to explore)")
        }
    }
    Ok(())
}

/// Follow the factory until every ticket settled, approve the gated entry as the demo's
/// reviewer, and wait for it to land.
async fn headless_run(running: &serve::Running, client: &Client) -> Result<()> {
    let mut events = running.factory.subscribe();
    let started = Instant::now();
    let mut approved = std::collections::BTreeSet::new();
    loop {
        if started.elapsed() > HEADLESS_LIMIT {
            bail!(
                "the demo did not finish within {}s; the factory's log says why (SHOPFLOOR_LOG=debug for more)",
                HEADLESS_LIMIT.as_secs()
            );
        }
        let tickets = client.tickets(None).await?;
        let queue = client.queue().await?;
        let waiting: Vec<_> = queue
            .entries
            .iter()
            .filter(|e| e.state == QueueState::AwaitingApproval)
            .collect();
        let busy = tickets
            .iter()
            .any(|t| matches!(t.state, TicketState::Queued | TicketState::Running))
            || queue
                .entries
                .iter()
                .any(|e| matches!(e.state, QueueState::Queued | QueueState::Testing));
        if !busy && tickets.iter().all(|t| t.state.is_final()) {
            return Ok(());
        }
        if !busy && let Some(e) = waiting.iter().find(|e| !approved.contains(&e.id)) {
            let why = e
                .verdict
                .as_ref()
                .map(|v| v.reasons.join("; "))
                .unwrap_or_default();
            say!("entry {} `{}` waits for a human: {why}", e.id, e.branch);
            say!("approving it as the demo's reviewer (in the control room: 4, select it, a, y)");
            client
                .queue_act(
                    e.id,
                    "approve",
                    &QueueAction {
                        by: "demo-reviewer".into(),
                        note: Some("approved by `shopfloor demo --headless`".into()),
                        ..QueueAction::default()
                    },
                )
                .await?;
            approved.insert(e.id);
            continue;
        }
        // Print what happens while waiting for the next change.
        match tokio::time::timeout(Duration::from_millis(500), events.recv()).await {
            Ok(Ok(FactoryEvent::RunState {
                run,
                ticket,
                agent,
                state,
                detail,
                ..
            })) => {
                let ticket = ticket.map_or("-".into(), |t| t.to_string());
                let detail = detail.map(|d| format!(": {d}")).unwrap_or_default();
                say!("run {run} (ticket {ticket}, {agent}) {state}{detail}");
            }
            Ok(Ok(FactoryEvent::Queue {
                landed,
                bounced,
                rejected,
                waiting,
            })) => {
                for (what, ids) in [
                    ("landed on main", landed),
                    ("bounced", bounced),
                    ("rejected", rejected),
                    ("waits for approval", waiting),
                ] {
                    for id in ids {
                        let e = client.queue_entry(id).await?;
                        let why = e.entry.reason.map(|r| format!(": {r}")).unwrap_or_default();
                        say!("merge queue: entry {id} `{}` {what}{why}", e.entry.branch);
                    }
                }
            }
            _ => {}
        }
    }
}

/// What happened, from the API: tickets and their attempts, the queue, the lessons, main.
/// A message printed whole under its summary line: a bounce's reason ends its first line
/// with a colon and puts the test's output below, which is the part worth reading.
fn whole(text: &str) -> String {
    text.trim_end().replace('\n', "\n      ")
}

async fn summary(client: &Client) -> Result<String> {
    use std::fmt::Write;
    let mut out = String::new();
    let tickets = client.tickets(None).await?;
    let runs = client.runs().await?;
    let queue = client.queue().await?;
    let status = client.status().await?;
    writeln!(out, "\nsummary")?;
    for t in &tickets {
        let attempts: Vec<String> = runs
            .iter()
            .filter(|r| r.ticket == Some(t.id))
            .map(|r| format!("run {} {}", r.id, r.state))
            .collect();
        writeln!(
            out,
            "  ticket {} {:<9} {} [{}]",
            t.id,
            t.state.name(),
            t.title,
            attempts.join(", ")
        )?;
    }
    for e in &queue.entries {
        let why = e
            .reason
            .as_deref()
            .map(|r| format!(": {}", whole(r)))
            .unwrap_or_default();
        let by = e
            .approval
            .as_ref()
            .map(|a| format!(" (approved by {})", a.by))
            .unwrap_or_default();
        writeln!(
            out,
            "  queue entry {} {:<17} {}{by}{why}",
            e.id,
            e.state.name(),
            e.branch
        )?;
    }
    let lessons = client
        .search_memory(&MemorySearch {
            text: "came back from the merge queue tests failed".into(),
            limit: 3,
            kinds: vec![MemoryKind::Lesson],
            recent: false,
            ..Default::default()
        })
        .await?;
    // The merge queue's lessons: a bounce's digest, written on the paths it touched.
    for h in lessons
        .iter()
        .filter(|h| h.memory.tags.iter().any(|t| t == "merge-queue"))
    {
        // Its head and what it printed: the whole digest is `shopfloor memory show ID`.
        let head: Vec<&str> = h.memory.text.lines().take(7).collect();
        writeln!(
            out,
            "  lesson {}: {}\n      … (shopfloor memory show {})",
            h.memory.id,
            whole(&head.join("\n")),
            h.memory.id
        )?;
    }
    writeln!(
        out,
        "  main is at {} ({} landed)",
        status
            .main_head
            .as_deref()
            .map_or("-", shopfloor::model::short_commit),
        queue
            .entries
            .iter()
            .filter(|e| e.state == QueueState::Merged)
            .count()
    )?;
    Ok(out)
}

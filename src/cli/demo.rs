//! `shopfloor demo`: a scripted tour on a throwaway workspace, with nothing to set up.
//! It copies a small sample repository (compiled into the binary), queues tickets, imports
//! two agent traces, loads memories, and shows recall, trace search and replay, printing
//! the command a user would type for each step.

use std::path::Path;

use anyhow::{Context, Result};
use shopfloor::memory::{NewMemory, RecallQuery};
use shopfloor::model::{Author, MemoryKind, StepKind, Ticket, TicketState};
use shopfloor::trace::{FileContent, Format};
use shopfloor::workspace::{Home, Workspace};

use super::output::clip;

const REPO: &[(&str, &str)] = &[
    (
        "README.md",
        include_str!("../../assets/demo/repo/README.md"),
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
];
const CLAUDE_TRACE: &str = include_str!("../../assets/demo/traces/claude-release.stream.jsonl");
const CODEX_TRACE: &str = include_str!("../../assets/demo/traces/codex-oversell.exec.jsonl");
const MEMORIES: &str = include_str!("../../assets/demo/memories.jsonl");

fn say(cmd: &str) {
    println!("\n\x1b[1m$ shopfloor {cmd}\x1b[0m");
}

fn plain_say(cmd: &str) {
    println!("\n$ shopfloor {cmd}");
}

fn make_repo(dir: &Path) -> Result<()> {
    for (path, text) in REPO {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().expect("files have a parent"))?;
        std::fs::write(&p, text)?;
    }
    let repo = git2::Repository::init(dir)?;
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

pub fn run(keep: bool) -> Result<()> {
    let color = std::env::var_os("NO_COLOR").is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let say = if color { say } else { plain_say };
    let root = tempfile::Builder::new()
        .prefix("shopfloor-demo-")
        .tempdir()?;
    let home = Home::at(root.path().join("home"));
    let repo = root.path().join("inventory");
    make_repo(&repo).context("making the sample repository")?;

    println!("shopfloor demo: a throwaway workspace on a copy of a small sample repository");
    println!("repository: {}", repo.display());

    say("workspace create demo --repo inventory");
    let info = home.create("demo", &repo)?;
    println!("created workspace `demo`, data in {}", info.dir.display());
    let ws = Workspace::open(info)?;

    say("ticket add ... (three tickets)");
    let now = jiff::Timestamp::now();
    for (title, prio, paths) in [
        (
            "Add Stock.release() to return reserved units",
            2,
            vec!["inventory/stock.py"],
        ),
        (
            "Fix: reserve() must never oversell",
            5,
            vec!["inventory/stock.py", "tests/**"],
        ),
        ("Document the public API in README.md", 0, vec!["README.md"]),
    ] {
        let t = ws.store.add_ticket(Ticket {
            id: 0,
            title: title.into(),
            body: String::new(),
            priority: prio,
            agent: None,
            paths: paths.into_iter().map(String::from).collect(),
            state: TicketState::Queued,
            created: now,
            updated: now,
            runs: vec![],
        })?;
        println!(
            "ticket {} queued (priority {}): {}",
            t.id, t.priority, t.title
        );
    }

    say("trace import claude-release.stream.jsonl --format claude-stream");
    let traces = root.path().join("traces");
    std::fs::create_dir_all(&traces)?;
    let mut runs = vec![];
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
        let r = ws.import_trace(&path, format, None)?;
        let kinds: Vec<String> = r.by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!(
            "run {} from {name} ({}): {} steps [{}]",
            r.run,
            format.name(),
            r.steps,
            kinds.join(", ")
        );
        runs.push(r.run);
    }

    say(&format!("trace show {}", runs[0]));
    ws.store.for_each_step(runs[0], |s| {
        let mark = if s.kind.is_error() { "!" } else { " " };
        println!(
            "{:>3} {mark} {:<11} {}",
            s.seq,
            s.kind.name(),
            clip(&s.kind.summary(), 90)
        );
        Ok(())
    })?;

    say(&format!(
        "trace show {} --step N   (replay: the file as it was at that step)",
        runs[0]
    ));
    let mut edit_step = None;
    ws.store.for_each_step(runs[0], |s| {
        if matches!(s.kind, StepKind::FileEdit { .. }) && edit_step.is_none() {
            edit_step = Some(s.seq);
        }
        Ok(())
    })?;
    if let Some(seq) = edit_step {
        for (path, state) in shopfloor::trace::files_at(&ws.store, runs[0], seq)? {
            println!("at step {seq}, {path} (last edited at step {}):", state.seq);
            if let FileContent::Known(text) = state.content {
                for line in text
                    .lines()
                    .rev()
                    .take(6)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                {
                    println!("    {line}");
                }
            }
        }
    }

    say("memory import memories.jsonl");
    let summary = ws.memory.import_jsonl(
        std::io::Cursor::new(MEMORIES),
        Author::Human {
            name: "demo".into(),
        },
    )?;
    println!("imported {} memories", summary.imported);
    let lesson = ws.memory.add(NewMemory {
        paths: vec!["inventory/stock.py".into()],
        ..NewMemory::new(
            MemoryKind::Lesson,
            "A codex run failed test_never_oversells: reserve() compared against the wrong level. Check levels before subtracting.",
            Author::Agent { name: "codex".into() },
        )
    })?;
    println!("memory {} added by agent codex (lesson)", lesson.id);

    for (query, paths) in [
        ("how do I run the test suite?", vec![]),
        ("can stock go below zero", vec![]),
        (
            "what should I know before editing",
            vec!["inventory/stock.py".to_string()],
        ),
    ] {
        let shown = if paths.is_empty() {
            format!("memory search \"{query}\"")
        } else {
            format!("memory search \"{query}\" --paths {}", paths.join(","))
        };
        say(&shown);
        let hits = ws.memory.search(&RecallQuery {
            text: query.into(),
            limit: 3,
            paths,
            ..Default::default()
        })?;
        for h in hits {
            let legs: Vec<&str> = h.legs.iter().map(|l| l.name()).collect();
            println!(
                "  [{}] {:<12} {:<16} {}",
                h.memory.id,
                h.memory.kind,
                legs.join("+"),
                clip(&h.memory.text, 80)
            );
        }
    }

    say("trace search \"unittest failed\"   (one query over the whole fleet)");
    let hits = ws
        .index()
        .search_steps("unittest failed", &Default::default(), 5)?;
    for h in hits {
        if let Some(s) = ws.store.step(h.run, h.seq)? {
            println!(
                "  run {} step {:<3} {:<11} {}",
                s.run,
                s.seq,
                s.kind.name(),
                clip(&s.kind.summary(), 80)
            );
        }
    }

    drop(ws);
    println!();
    if keep {
        let kept = root.keep();
        println!("kept the demo in {}", kept.display());
        println!(
            "explore it: SHOPFLOOR_HOME={} shopfloor -w demo trace list",
            kept.join("home").display()
        );
    } else {
        println!(
            "done; the demo workspace was removed (`shopfloor demo --keep` keeps it to explore)"
        );
    }
    Ok(())
}

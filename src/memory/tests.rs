//! The bank end to end on a real temp store and index.

use std::path::Path;

use jiff::Timestamp;

use super::*;

fn open(dir: &Path) -> MemoryBank {
    let store = Store::open(&dir.join("store.redb")).unwrap();
    let index = Index::open(&dir.join("index")).unwrap();
    MemoryBank::open(store, index, StaticEmbedder::builtin()).unwrap()
}

fn agent(name: &str) -> Author {
    Author::Agent { name: name.into() }
}

fn at(secs: i64) -> Option<Timestamp> {
    Some(Timestamp::from_second(1_700_000_000 + secs).unwrap())
}

fn seed(bank: &MemoryBank) -> Vec<Memory> {
    let mk = |kind, text: &str, paths: &[&str], who: &str, secs| NewMemory {
        paths: paths.iter().map(|p| p.to_string()).collect(),
        ts: at(secs),
        ..NewMemory::new(kind, text, agent(who))
    };
    bank.add_many(vec![
        mk(
            MemoryKind::Decision,
            "We chose redb over sqlite for the store because it is pure Rust",
            &["src/store/mod.rs"],
            "claude",
            0,
        ),
        mk(
            MemoryKind::Lesson,
            "The parseConfigFile helper panics on a missing shopfloor.toml; check existence first",
            &["src/config.rs"],
            "codex",
            100,
        ),
        mk(
            MemoryKind::Convention,
            "Errors use thiserror in the core and anyhow at the binary edge",
            &[],
            "claude",
            200,
        ),
        mk(
            MemoryKind::Lesson,
            "The integration tests are flaky when two of them bind the same TCP port",
            &["tests/api.rs"],
            "claude",
            300,
        ),
    ])
    .unwrap()
}

fn texts(hits: &[RecallHit]) -> Vec<&str> {
    hits.iter().map(|h| h.memory.text.as_str()).collect()
}

fn q(text: &str) -> RecallQuery {
    RecallQuery {
        text: text.into(),
        limit: 3,
        ..Default::default()
    }
}

#[test]
fn add_then_recall_by_words_paraphrase_path_and_filters_then_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let bank = open(dir.path());
        let added = seed(&bank);
        assert_eq!(bank.len(), 4);
        assert!(added.iter().all(|m| m.id > 0));

        // Words, including a part of an identifier.
        let hits = bank.search(&q("config helper")).unwrap();
        assert!(
            hits[0].memory.text.contains("parseConfigFile"),
            "{:?}",
            texts(&hits)
        );
        assert!(hits[0].legs.contains(&Leg::Bm25));

        // A paraphrase sharing no word with the memory: only the dense leg can find it.
        let para = "unreliable CI: parallel suites grab identical sockets";
        let hits = bank.search(&q(para)).unwrap();
        let hit = hits
            .iter()
            .find(|h| h.memory.text.contains("flaky"))
            .unwrap_or_else(|| panic!("paraphrase not recalled: {:?}", texts(&hits)));
        assert_eq!(hit.legs, vec![Leg::Dense]);
        let without_dense = Legs {
            dense: false,
            ..Legs::default()
        };
        let lexical = bank.search_legs(&q(para), without_dense).unwrap();
        assert!(lexical.iter().all(|h| h.memory.id != hit.memory.id));
        assert_eq!(hits[0].memory.id, hit.memory.id, "{:?}", texts(&hits));

        // A path: a file in the query text, or given as the caller's paths.
        let hits = bank.search(&q("what about src/store/mod.rs")).unwrap();
        assert!(hits[0].memory.text.contains("redb"));
        assert!(hits[0].legs.contains(&Leg::Path));
        let hits = bank
            .search(&RecallQuery {
                paths: vec!["src/store".into()],
                paths_only: true,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(texts(&hits).len(), 1);
        assert!(hits[0].memory.text.contains("redb"));

        // Filters hold on every leg.
        let hits = bank
            .search(&RecallQuery {
                kinds: vec![MemoryKind::Lesson],
                ..q("store errors tests config")
            })
            .unwrap();
        assert_eq!(hits.len(), 2);
        assert!(hits.iter().all(|h| h.memory.kind == MemoryKind::Lesson));
        let hits = bank
            .search(&RecallQuery {
                since: at(150),
                limit: 10,
                ..q("store errors tests config redb")
            })
            .unwrap();
        assert_eq!(hits.len(), 2);
        assert!(hits.iter().all(|h| h.memory.ts >= at(150).unwrap()));
        let hits = bank
            .search(&RecallQuery {
                agent: Some("codex".into()),
                ..q("store errors tests config")
            })
            .unwrap();
        assert_eq!(hits.len(), 1);

        // Recency: asked for in words, the newest memory ranks first.
        let hits = bank.search(&q("latest lesson")).unwrap();
        assert!(hits[0].legs.contains(&Leg::Recent));
        assert!(hits[0].memory.text.contains("flaky"), "{:?}", texts(&hits));

        // Bad input is an error or no hits, never a panic.
        assert!(matches!(
            bank.add(NewMemory::new(MemoryKind::Note, "  ", agent("x"))),
            Err(MemoryError::EmptyText)
        ));
        for text in ["fn(x) -> \"y\"", "a AND (", "", "\u{0}\u{ffff}"] {
            bank.search(&q(text)).unwrap();
        }
    }
    // Reopen: vectors come back from the store and everything is found again.
    let bank = open(dir.path());
    assert_eq!(bank.len(), 4);
    let hits = bank.search(&q("redb sqlite")).unwrap();
    assert!(hits[0].memory.text.contains("redb"));
    let hits = bank
        .search(&q("unreliable CI: parallel suites grab identical sockets"))
        .unwrap();
    assert!(hits[0].memory.text.contains("flaky"));
}

#[test]
fn index_is_rebuilt_from_the_store_when_missing() {
    let dir = tempfile::tempdir().unwrap();
    {
        let bank = open(dir.path());
        seed(&bank);
    }
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let bank = open(dir.path());
    let hits = bank.search(&q("thiserror anyhow")).unwrap();
    assert!(hits[0].memory.text.contains("thiserror"));
    assert!(hits[0].legs.contains(&Leg::Bm25));
}

#[test]
fn import_jsonl_reports_bad_lines_and_keeps_refs() {
    let dir = tempfile::tempdir().unwrap();
    let bank = open(dir.path());
    let jsonl = concat!(
        r#"{"text":"Caroline went to the LGBTQ support group","ref":"D1:3","ts":"2023-05-08T13:56:00Z"}"#,
        "\n",
        r#"{"text": "broken"#,
        "\n\n",
        r#"{"text":"Melanie painted a sunrise","kind":"note","tags":["art"],"paths":["notes/art.md"],"ref":"D1:7"}"#,
        "\n",
    );
    let summary = bank
        .import_jsonl(
            std::io::Cursor::new(jsonl),
            Author::Human { name: "me".into() },
        )
        .unwrap();
    assert_eq!(summary.imported, 2);
    assert_eq!(summary.errors.len(), 1);
    assert_eq!(summary.errors[0].line, 2);
    let hits = bank.search(&q("painting a sunrise")).unwrap();
    assert_eq!(hits[0].memory.reference.as_deref(), Some("D1:7"));
    assert_eq!(hits[0].memory.tags, vec!["art"]);
    let hits = bank.search(&q("support group")).unwrap();
    assert_eq!(hits[0].memory.reference.as_deref(), Some("D1:3"));
    assert_eq!(hits[0].memory.ts, "2023-05-08T13:56:00Z".parse().unwrap());
}

#[test]
fn path_filters_match_parent_directories_and_globs_on_every_leg() {
    let dir = tempfile::tempdir().unwrap();
    let bank = open(dir.path());
    let mk = |text: &str, path: &str| NewMemory {
        paths: vec![path.to_string()],
        ..NewMemory::new(MemoryKind::Convention, text, agent("claude"))
    };
    bank.add_many(vec![
        mk(
            "Migrations are append-only; never edit a shipped one",
            "migrations/**",
        ),
        mk(
            "Everything under src is formatted with rustfmt defaults",
            "src",
        ),
        mk("The docs site builds with mdbook", "docs/book.toml"),
    ])
    .unwrap();
    let search = |text: &str, path: &str| {
        bank.search(&RecallQuery {
            text: text.into(),
            paths: vec![path.into()],
            paths_only: true,
            ..Default::default()
        })
        .unwrap()
    };
    let hits = search("migrations edit", "migrations/0001_init.sql");
    assert_eq!(hits.len(), 1);
    assert!(hits[0].legs.contains(&Leg::Bm25), "{:?}", hits[0].legs);
    assert!(hits[0].memory.text.starts_with("Migrations"));
    let hits = search("formatted rustfmt", "src/index/mod.rs");
    assert_eq!(hits.len(), 1);
    assert!(hits[0].legs.contains(&Leg::Bm25), "{:?}", hits[0].legs);
    assert!(
        search("mdbook", "src/index/mod.rs")
            .iter()
            .all(|h| !h.memory.text.contains("mdbook"))
    );
}

/// Writes racing searches: with the vectors and the catalog under two locks taken in
/// opposite orders, a write that took the vectors while a search held the catalog (and
/// was embedding its query before reading the vectors) froze both for good. Long queries
/// widen that window, as real agents' queries do. A watchdog turns a hang into a failure
/// instead of a test run that never ends.
#[test]
fn concurrent_writes_and_searches_never_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let bank = std::sync::Arc::new(open(dir.path()));
    seed(&bank);
    let long_query = "why does the config parser panic on an empty shopfloor file ".repeat(60);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    const WRITERS: usize = 2;
    const SEARCHERS: usize = 6;
    const WRITES: usize = 40;
    for t in 0..WRITERS + SEARCHERS {
        let bank = bank.clone();
        let done = done_tx.clone();
        let long_query = long_query.clone();
        std::thread::spawn(move || {
            if t < WRITERS {
                for i in 0..WRITES {
                    let m = NewMemory {
                        paths: vec![format!("src/mod{t}.rs")],
                        ..NewMemory::new(
                            MemoryKind::Lesson,
                            format!("lesson {t}-{i}: the parser panics on empty config files"),
                            agent("stress"),
                        )
                    };
                    bank.add(m).unwrap();
                }
            } else {
                for i in 0..150 {
                    let mut query = q(&long_query);
                    query.paths = vec![format!("src/mod{}.rs", i % 3)];
                    bank.search(&query).unwrap();
                }
            }
            done.send(t).unwrap();
        });
    }
    drop(done_tx);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut finished = 0;
    while finished < WRITERS + SEARCHERS {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match done_rx.recv_timeout(left) {
            Ok(_) => finished += 1,
            // The hung threads are left behind: the test process ends with the failure.
            Err(_) => panic!(
                "memory deadlocked: {finished} of {} workers finished in 120 s",
                WRITERS + SEARCHERS
            ),
        }
    }
    assert_eq!(bank.len(), 4 + WRITERS * WRITES);
}

#[test]
fn a_huge_limit_is_clamped_not_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let bank = open(dir.path());
    seed(&bank);
    let mut query = q("store");
    query.limit = usize::MAX;
    let hits = bank.search(&query).unwrap();
    assert!(!hits.is_empty() && hits.len() <= MAX_LIMIT);
}

/// Eight runs failing the same way at once write one lesson seen eight times; another
/// failure is another lesson. Without the lesson lock, look-then-write races and writes
/// several.
#[test]
fn the_same_failure_at_once_from_many_runs_is_one_lesson_counted() {
    let dir = tempfile::tempdir().unwrap();
    let bank = std::sync::Arc::new(open(dir.path()));
    let threads: Vec<_> = (0..8u64)
        .map(|run| {
            let bank = bank.clone();
            std::thread::spawn(move || {
                let mut m = NewMemory::new(
                    MemoryKind::Lesson,
                    format!("Ticket 3 failed: assert 1 == 5 (run {run})"),
                    agent("claude"),
                );
                m.paths = vec![format!("src/f{run}.rs")];
                m.source = Some(StepRef { run, step: 4 });
                bank.record_lesson(m, "sig-a").unwrap().1
            })
        })
        .collect();
    let new: usize = threads
        .into_iter()
        .map(|t| usize::from(t.join().unwrap()))
        .sum();
    assert_eq!(new, 1, "one of them writes it");
    let (other, is_new) = bank
        .record_lesson(
            NewMemory::new(MemoryKind::Lesson, "KeyError: sku", agent("codex")),
            "sig-b",
        )
        .unwrap();
    assert!(is_new);
    assert_eq!(bank.len(), 2);
    let id = bank
        .search(&RecallQuery {
            text: "assert 1 == 5".into(),
            limit: 5,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|h| h.memory)
        .find(|m| m.id != other.id)
        .unwrap()
        .id;
    let lesson = bank.store().memory(id).unwrap().unwrap();
    assert_eq!(lesson.seen, 8);
    assert_eq!(lesson.paths.len(), 8, "the paths of every run joined");
    let history = bank.history(id).unwrap();
    assert_eq!(history.len(), 8, "written, then repeated seven times");
    assert!(matches!(history[0].what, MemoryEventKind::Written { .. }));
    bank.confirm(&[id], 42).unwrap();
    assert_eq!(
        bank.store().memory(id).unwrap().unwrap().confirmed,
        Some(42)
    );
    assert!(matches!(
        bank.history(id).unwrap().last().unwrap().what,
        MemoryEventKind::Confirmed { run: 42 }
    ));
}

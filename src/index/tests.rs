use jiff::Timestamp;

use super::*;
use crate::model::{Author, MemoryKind, StepKind, StepRef};

fn mem(id: u64, kind: MemoryKind, text: &str, paths: &[&str], secs: i64) -> Memory {
    Memory {
        id,
        kind,
        text: text.into(),
        paths: paths.iter().map(|p| p.to_string()).collect(),
        tags: vec!["infra".into()],
        author: Author::Agent {
            name: "claude".into(),
        },
        source: Some(StepRef { run: 7, step: 1 }),
        ts: Timestamp::from_second(secs).unwrap(),
        reference: None,
        seen: 1,
        confirmed: None,
    }
}

fn ids(hits: &[(MemoryId, f32)]) -> Vec<MemoryId> {
    hits.iter().map(|h| h.0).collect()
}

#[test]
fn memories_are_searchable_after_flush_by_identifier_parts() {
    let dir = tempfile::tempdir().unwrap();
    let idx = Index::open(dir.path()).unwrap();
    idx.add_memories(&[
        mem(
            1,
            MemoryKind::Lesson,
            "call parseConfigFile before Store::open",
            &[],
            10,
        ),
        mem(
            2,
            MemoryKind::Decision,
            "we use redb for the store",
            &["src/store/mod.rs"],
            20,
        ),
    ])
    .unwrap();
    idx.flush().unwrap();
    let any = MemoryFilter::default();
    assert_eq!(
        ids(&idx.search_memories("config", &any, 10).unwrap()),
        vec![1]
    );
    assert_eq!(
        ids(&idx.search_memories("parseconfigfile", &any, 10).unwrap()),
        vec![1]
    );
    assert_eq!(
        ids(&idx.search_memories("redb", &any, 10).unwrap()),
        vec![2]
    );
    // Paths are searchable words too.
    assert_eq!(
        ids(&idx.search_memories("mod.rs", &any, 10).unwrap()),
        vec![2]
    );
    // Hostile query syntax is just words.
    for q in ["fn(x) -> \"y\"", "a AND (", "store:*", "", "((("] {
        idx.search_memories(q, &any, 10).unwrap();
    }
    assert_eq!(idx.memory_count().unwrap(), 2);
}

#[test]
fn memory_filters_narrow_bm25_hits() {
    let dir = tempfile::tempdir().unwrap();
    let idx = Index::open(dir.path()).unwrap();
    idx.add_memories(&[
        mem(
            1,
            MemoryKind::Lesson,
            "flaky test in writer",
            &["src/store/writer.rs"],
            10,
        ),
        mem(
            2,
            MemoryKind::Decision,
            "writer batches commits",
            &["src/index/writer.rs"],
            20,
        ),
    ])
    .unwrap();
    idx.flush().unwrap();
    let q = |f: MemoryFilter| ids(&idx.search_memories("writer", &f, 10).unwrap());
    assert_eq!(
        q(MemoryFilter {
            kinds: vec![MemoryKind::Decision],
            ..Default::default()
        }),
        vec![2]
    );
    assert_eq!(
        q(MemoryFilter {
            paths: vec!["src/store".into()],
            ..Default::default()
        }),
        vec![1]
    );
    assert_eq!(
        q(MemoryFilter {
            paths: vec!["src/index/**".into()],
            ..Default::default()
        }),
        vec![2]
    );
    assert_eq!(
        q(MemoryFilter {
            since: Some(Timestamp::from_second(15).unwrap()),
            ..Default::default()
        }),
        vec![2]
    );
    assert_eq!(
        q(MemoryFilter {
            agent: Some("codex".into()),
            ..Default::default()
        }),
        Vec::<u64>::new()
    );
    assert_eq!(
        q(MemoryFilter {
            run: Some(7),
            ..Default::default()
        })
        .len(),
        2
    );
    // A file inside a memory's directory matches it (the memory is about all of it).
    idx.add_memories(&[mem(3, MemoryKind::Note, "writer docs", &["src/index"], 30)])
        .unwrap();
    idx.flush().unwrap();
    assert_eq!(
        {
            let mut ids = q(MemoryFilter {
                paths: vec!["src/index/writer.rs".into()],
                ..Default::default()
            });
            ids.sort();
            ids
        },
        vec![2, 3]
    );
}

#[test]
fn delete_and_upsert_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let idx = Index::open(dir.path()).unwrap();
        // A second writer on the same directory is refused with a clear error.
        assert!(matches!(
            Index::open(dir.path()),
            Err(IndexError::Locked { .. })
        ));
        idx.add_memories(&[mem(1, MemoryKind::Note, "alpha", &[], 1)])
            .unwrap();
        idx.add_memories(&[mem(1, MemoryKind::Note, "beta", &[], 1)])
            .unwrap();
        idx.add_memories(&[mem(2, MemoryKind::Note, "gamma", &[], 1)])
            .unwrap();
        idx.flush().unwrap();
        let any = MemoryFilter::default();
        assert!(idx.search_memories("alpha", &any, 10).unwrap().is_empty());
        assert_eq!(
            ids(&idx.search_memories("beta", &any, 10).unwrap()),
            vec![1]
        );
        idx.delete_memory(2).unwrap();
        // Dropped without flush: the writer thread commits on the way out.
    }
    let idx = Index::open(dir.path()).unwrap();
    let any = MemoryFilter::default();
    assert!(idx.search_memories("gamma", &any, 10).unwrap().is_empty());
    assert_eq!(idx.memory_count().unwrap(), 1);
}

#[test]
fn commits_happen_without_flush_after_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let idx = Index::open(dir.path()).unwrap();
    idx.add_memories(&[mem(1, MemoryKind::Note, "eventually", &[], 1)])
        .unwrap();
    let deadline = std::time::Instant::now() + writer::COMMIT_INTERVAL * 10;
    loop {
        if !idx
            .search_memories("eventually", &MemoryFilter::default(), 1)
            .unwrap()
            .is_empty()
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never committed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn steps_are_searchable_with_filters() {
    let dir = tempfile::tempdir().unwrap();
    let idx = Index::open(dir.path()).unwrap();
    let step = |run, seq, agent: &str, kind| Step {
        run,
        seq,
        ts: Timestamp::from_second(100 + seq as i64).unwrap(),
        agent: agent.into(),
        parent: None,
        kind,
    };
    idx.add_steps(&[
        step(
            1,
            0,
            "claude",
            StepKind::ToolCall {
                call_id: None,
                name: "Bash".into(),
                input: r#"{"command":"cargo test --workspace"}"#.into(),
            },
        ),
        step(
            1,
            1,
            "claude",
            StepKind::Command {
                argv: vec!["cargo".into(), "test".into()],
                exit_code: Some(101),
                output: "thread 'main' panicked at src/lib.rs".into(),
            },
        ),
        step(
            2,
            0,
            "codex",
            StepKind::FileEdit {
                path: "src/index/mod.rs".into(),
                before: None,
                after: None,
                patch: "+ fn searchSteps()".into(),
            },
        ),
    ])
    .unwrap();
    idx.flush().unwrap();
    let any = StepFilter::default();
    let hits = idx.search_steps("cargo", &any, 10).unwrap();
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h.run == 1));
    let hits = idx
        .search_steps(
            "cargo",
            &StepFilter {
                kind: Some("command".into()),
                ..Default::default()
            },
            10,
        )
        .unwrap();
    assert_eq!((hits[0].run, hits[0].seq, hits.len()), (1, 1, 1));
    let hits = idx
        .search_steps(
            "search steps",
            &StepFilter {
                agent: Some("codex".into()),
                ..Default::default()
            },
            10,
        )
        .unwrap();
    assert_eq!((hits[0].run, hits[0].seq), (2, 0));
    let hits = idx
        .search_steps(
            "cargo",
            &StepFilter {
                run: Some(2),
                ..Default::default()
            },
            10,
        )
        .unwrap();
    assert!(hits.is_empty());
    let hits = idx
        .search_steps(
            "cargo",
            &StepFilter {
                since: Some(Timestamp::from_second(101).unwrap()),
                ..Default::default()
            },
            10,
        )
        .unwrap();
    assert_eq!(hits.len(), 1);
    // Memories and steps do not leak into each other's searches.
    assert!(
        idx.search_memories("cargo", &MemoryFilter::default(), 10)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn function_words_do_not_match_on_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let idx = Index::open(dir.path()).unwrap();
    idx.add_memories(&[
        mem(1, MemoryKind::Note, "the store is what it is", &[], 1),
        mem(2, MemoryKind::Note, "redb compacts on open", &[], 2),
    ])
    .unwrap();
    idx.flush().unwrap();
    let any = MemoryFilter::default();
    // "the" and "is" are dropped from the query; "redb" decides.
    assert_eq!(
        ids(&idx.search_memories("the redb is", &any, 10).unwrap()),
        vec![2]
    );
    // A query of function words only still searches them.
    assert_eq!(
        ids(&idx.search_memories("what it is", &any, 10).unwrap()),
        vec![1]
    );
}

#[test]
fn index_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Index>();
    assert_send_sync::<crate::memory::MemoryBank>();
}

#[test]
fn an_index_of_another_schema_is_replaced_and_reported_fresh() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut b = tantivy::schema::Schema::builder();
        b.add_text_field("old", tantivy::schema::STRING);
        tantivy::Index::create_in_dir(dir.path(), b.build()).unwrap();
    }
    let idx = Index::open(dir.path()).unwrap();
    assert!(idx.is_fresh());
    idx.add_memories(&[mem(1, MemoryKind::Note, "hello", &[], 1)])
        .unwrap();
    idx.flush().unwrap();
    drop(idx);
    let idx = Index::open(dir.path()).unwrap();
    assert!(!idx.is_fresh());
    assert_eq!(idx.memory_count().unwrap(), 1);
}

use super::*;
use crate::model::{Lifecycle, RunState, StepKind, TicketState};
use jiff::Timestamp;

fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store.redb")).unwrap();
    (dir, store)
}

fn run_draft() -> Run {
    Run {
        id: 0,
        ticket: None,
        agent: "test".into(),
        state: RunState::Imported,
        started: Timestamp::now(),
        ended: None,
        steps: 0,
        source: "test".into(),
        attempt: 0,
        branch: None,
        usage: Default::default(),
        files_changed: vec![],
        sandbox: None,
        outcome: None,
        recalled: Vec::new(),
        review_of: None,
        host: None,
    }
}

fn step(run: RunId, seq: u64, kind: StepKind) -> Step {
    Step {
        run,
        seq,
        ts: Timestamp::now(),
        agent: "test".into(),
        parent: None,
        kind,
    }
}

#[test]
fn large_payloads_go_to_blobs_and_come_back_whole() {
    let (_d, store) = temp_store();
    let run = store.create_run(run_draft()).unwrap();
    let big = "x".repeat(INLINE_PAYLOAD_MAX * 10);
    let steps = vec![
        step(run.id, 0, StepKind::AgentMessage { text: "hi".into() }),
        step(
            run.id,
            1,
            StepKind::ToolResult {
                call_id: None,
                output: big.clone().into(),
                is_error: false,
            },
        ),
    ];
    assert_eq!(store.append_steps(run.id, steps).unwrap(), 2);
    let mut stored = store.step(run.id, 1).unwrap().unwrap();
    let StepKind::ToolResult { output, .. } = &stored.kind else {
        panic!("kind changed")
    };
    assert!(output.is_blob(), "a 10 KiB output must be a blob");
    assert_eq!(output.preview().len(), PREVIEW_CHARS);
    store.inline_step(&mut stored).unwrap();
    let StepKind::ToolResult { output, .. } = &stored.kind else {
        panic!()
    };
    assert_eq!(output, &Payload::Text(big));
    assert_eq!(store.run(run.id).unwrap().unwrap().steps, 2);
}

#[test]
fn out_of_order_steps_are_refused_and_nothing_is_written() {
    let (_d, store) = temp_store();
    let run = store.create_run(run_draft()).unwrap();
    let err = store
        .append_steps(
            run.id,
            vec![step(run.id, 5, StepKind::AgentMessage { text: "x".into() })],
        )
        .unwrap_err();
    assert!(err.to_string().contains("expected seq 0"), "{err}");
    assert_eq!(store.run(run.id).unwrap().unwrap().steps, 0);
    assert!(store.step(run.id, 5).unwrap().is_none());
}

#[test]
fn concurrent_writers_share_batches_and_every_write_lands() {
    let (_d, store) = temp_store();
    let runs: Vec<Run> = (0..8)
        .map(|_| store.create_run(run_draft()).unwrap())
        .collect();
    std::thread::scope(|s| {
        for r in &runs {
            let store = store.clone();
            s.spawn(move || {
                for seq in 0..50 {
                    store
                        .append_steps(
                            r.id,
                            vec![step(
                                r.id,
                                seq,
                                StepKind::AgentMessage {
                                    text: format!("{seq}").into(),
                                },
                            )],
                        )
                        .unwrap();
                }
            });
        }
    });
    for r in &runs {
        assert_eq!(store.run(r.id).unwrap().unwrap().steps, 50);
        assert_eq!(store.steps(r.id, 0, u64::MAX).unwrap().len(), 50);
    }
}

#[test]
fn a_failing_write_does_not_fail_its_batch_neighbours() {
    let (_d, store) = temp_store();
    let run = store.create_run(run_draft()).unwrap();
    std::thread::scope(|s| {
        let bad = {
            let store = store.clone();
            s.spawn(move || store.update_ticket(999, |_| Ok(())))
        };
        let good = {
            let store = store.clone();
            s.spawn(move || {
                store.append_steps(
                    run.id,
                    vec![step(run.id, 0, StepKind::Decision { text: "d".into() })],
                )
            })
        };
        assert!(bad.join().unwrap().is_err());
        assert_eq!(good.join().unwrap().unwrap(), 1);
    });
}

#[test]
fn steps_seek_by_run_and_sequence() {
    let (_d, store) = temp_store();
    let a = store.create_run(run_draft()).unwrap();
    let b = store.create_run(run_draft()).unwrap();
    let mk = |run: RunId, n: u64| -> Vec<Step> {
        (0..n)
            .map(|i| {
                step(
                    run,
                    i,
                    StepKind::Lifecycle {
                        event: Lifecycle::Exited {
                            code: Some(i as i32),
                            signal: None,
                        },
                    },
                )
            })
            .collect()
    };
    store.append_steps(a.id, mk(a.id, 1000)).unwrap();
    store.append_steps(b.id, mk(b.id, 10)).unwrap();
    let s = store.step(a.id, 777).unwrap().unwrap();
    assert_eq!((s.run, s.seq), (a.id, 777));
    assert_eq!(store.steps(b.id, 5, 100).unwrap().len(), 5);
    let mut n = 0;
    store
        .for_each_step(b.id, |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(n, 10);
}

#[test]
fn tickets_get_ids_and_refused_updates_write_nothing() {
    let (_d, store) = temp_store();
    let now = Timestamp::now();
    let t = Ticket {
        id: 0,
        title: "fix login".into(),
        body: String::new(),
        priority: 1,
        agent: None,
        paths: vec![],
        labels: vec![],
        state: TicketState::Queued,
        created: now,
        updated: now,
        runs: vec![],
    };
    let a = store.add_ticket(t.clone()).unwrap();
    let b = store.add_ticket(t).unwrap();
    assert_eq!((a.id, b.id), (1, 2));
    let err = store
        .update_ticket(a.id, |t| {
            t.title = "changed".into();
            Err(StoreError::Invalid("no".into()))
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)));
    assert_eq!(store.ticket(a.id).unwrap().unwrap().title, "fix login");
}

#[test]
fn a_second_open_of_the_same_file_is_a_clear_lock_error() {
    let (d, _store) = temp_store();
    let err = Store::open(&d.path().join("store.redb")).err().unwrap();
    assert!(
        err.to_string().contains("in use by another process"),
        "{err}"
    );
}

#[test]
fn opens_a_store_written_by_the_previous_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    // Write a v1 store by hand, as shopfloor's v1 did.
    {
        let db = redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        migrate::write_version(&tx, 1).unwrap();
        {
            let mut runs = tx.open_table(RUNS).unwrap();
            let mut r = run_draft();
            r.id = 7;
            r.steps = 3;
            runs.insert(7, encode(&r).as_slice()).unwrap();
            let mut steps = tx.open_table(migrate::v1::STEPS).unwrap();
            for seq in 0..3u64 {
                let s = step(
                    7,
                    seq,
                    StepKind::AgentMessage {
                        text: format!("step {seq}").into(),
                    },
                );
                steps
                    .insert(migrate::v1::key(7, seq), encode(&s).as_slice())
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let s = store.step(7, 2).unwrap().unwrap();
    assert_eq!(
        s.kind,
        StepKind::AgentMessage {
            text: "step 2".into()
        }
    );
    // Appending continues the migrated run's sequence.
    store
        .append_steps(
            7,
            vec![step(
                7,
                3,
                StepKind::Decision {
                    text: "next".into(),
                },
            )],
        )
        .unwrap();
    assert_eq!(store.steps(7, 0, 10).unwrap().len(), 4);
}

#[test]
fn a_v2_store_opens_with_its_runs_and_gains_the_imports_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    // A v2 store: every table but `imports`, and a run as v2 wrote it.
    {
        let db = redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        migrate::write_version(&tx, 2).unwrap();
        let mut r = run_draft();
        r.id = 4;
        tx.open_table(RUNS)
            .unwrap()
            .insert(4, encode(&r).as_slice())
            .unwrap();
        tx.open_table(STEPS).unwrap();
        tx.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(store.run(4).unwrap().unwrap().state, RunState::Imported);
    assert!(store.import_marks().unwrap().is_empty());
    let mark = crate::model::ImportMark {
        path: Some("/t.jsonl".into()),
        format: "jsonl".into(),
        agent: None,
        read: 0,
        hash: BlobHash::of(b""),
    };
    let mut draft = run_draft();
    draft.state = RunState::PartialImport;
    let run = store.begin_import(draft, mark.clone()).unwrap();
    let moved = crate::model::ImportMark { read: 9, ..mark };
    let s = step(run.id, 0, StepKind::AgentMessage { text: "a".into() });
    assert_eq!(
        store
            .append_import_steps(run.id, vec![s], moved.clone())
            .unwrap(),
        1
    );
    assert_eq!(store.import_marks().unwrap(), vec![(run.id, moved)]);
    let s = step(run.id, 1, StepKind::AgentMessage { text: "b".into() });
    let done = store
        .finish_import(run.id, vec![s], |r| r.state = RunState::Imported)
        .unwrap();
    assert_eq!((done.state, done.steps), (RunState::Imported, 2));
    assert!(store.import_marks().unwrap().is_empty());
}

#[test]
fn a_newer_schema_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        migrate::write_version(&tx, SCHEMA_VERSION + 1).unwrap();
        tx.commit().unwrap();
    }
    let err = Store::open(&path).err().unwrap();
    assert!(err.to_string().contains("upgrade shopfloor"), "{err}");
}

#[test]
fn a_v3_store_gains_memory_histories_and_reads_old_memories_as_seen_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        migrate::write_version(&tx, 3).unwrap();
        // A memory as v3 wrote it: no `seen`, no `confirmed`.
        let old = br#"{"id":1,"kind":"lesson","text":"t","paths":[],"tags":[],"author":{"by":"human","name":"a"},"ts":"2026-01-01T00:00:00Z"}"#;
        tx.open_table(MEMORIES)
            .unwrap()
            .insert(1, old.as_slice())
            .unwrap();
        tx.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let m = store.memory(1).unwrap().unwrap();
    assert_eq!((m.seen, m.confirmed), (1, None));
    assert!(store.memory_events(1).unwrap().is_empty());
    let event = |run| crate::model::MemoryEvent {
        ts: jiff::Timestamp::now(),
        what: crate::model::MemoryEventKind::Confirmed { run },
    };
    let m = store
        .update_memory(1, Some(event(9)), |m| {
            m.seen += 1;
            m.text = "ignored: the text is the index's".into();
        })
        .unwrap()
        .unwrap();
    assert_eq!((m.seen, m.text.as_str()), (2, "t"));
    store.add_memory_events(vec![(1, event(10))]).unwrap();
    let runs: Vec<_> = store
        .memory_events(1)
        .unwrap()
        .into_iter()
        .map(|e| e.what)
        .collect();
    assert_eq!(
        runs,
        [
            crate::model::MemoryEventKind::Confirmed { run: 9 },
            crate::model::MemoryEventKind::Confirmed { run: 10 }
        ]
    );
    assert!(store.update_memory(2, None, |_| {}).unwrap().is_none());
}

#[test]
fn runs_started_since_reads_back_only_to_the_day_past_imports_and_late_stamps() {
    let (_d, store) = temp_store();
    let at = |s: &str| s.parse::<Timestamp>().unwrap();
    let add = |started: &str, sandbox: bool, cost: f64| {
        let mut r = Run::new("claude", RunState::Succeeded, at(started));
        r.sandbox = sandbox.then(|| "worktree".to_string());
        r.usage.cost_usd = Some(cost);
        store.create_run(r).unwrap().id
    };
    add("2026-11-20T10:00:00Z", true, 100.0);
    add("2026-11-27T23:30:00Z", true, 50.0);
    let a = add("2026-11-28T00:10:00Z", true, 1.0);
    // Stamped before the day but stored after a run of the day (within the hour's slack).
    add("2026-11-27T23:59:30Z", true, 20.0);
    // An import of an old session, stored late: counted by its own time, and the scan
    // goes on past it.
    add("2026-10-01T09:00:00Z", false, 30.0);
    let b = add("2026-11-28T05:00:00Z", true, 2.0);
    let c = add("2026-11-28T06:00:00Z", false, 4.0);

    let since = at("2026-11-28T00:00:00Z");
    let got: Vec<RunId> = store
        .runs_started_since(since)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(got, [a, b, c]);
    // The same as reading every run.
    let all: Vec<RunId> = store
        .runs()
        .unwrap()
        .iter()
        .filter(|r| r.started >= since)
        .map(|r| r.id)
        .collect();
    assert_eq!(got, all);
    assert_eq!(crate::spend::day_start(at("2026-11-28T23:59:59Z")), since);
    assert_eq!(crate::spend::day_start(since), since);
    assert_eq!(
        store
            .runs_by_id(&[b, 999, a])
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        [b, a]
    );
}

#[test]
fn the_newest_matching_run_is_found_from_the_end() {
    let (_d, store) = temp_store();
    let add = |source: &str| {
        let mut r = run_draft();
        r.source = source.into();
        store.create_run(r).unwrap().id
    };
    add("claude-code session a: /t/a.jsonl");
    let b = add("claude-code session b: /t/b.jsonl");
    for _ in 0..5 {
        add("worktree");
    }
    let found = |prefix: &str| {
        store
            .newest_run_where(|r| r.source.starts_with(prefix))
            .unwrap()
            .map(|r| r.id)
    };
    assert_eq!(found("claude-code session b: "), Some(b));
    assert_eq!(found("claude-code session z: "), None);
    let newer_b = add("claude-code session b: /t/b2.jsonl");
    assert_eq!(found("claude-code session b: "), Some(newer_b));
}

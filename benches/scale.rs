//! The core's scale benchmark (issue 2), run with `cargo bench --bench scale`:
//! a generated workspace of 1,000,000 steps and 100,000 memories, measuring durable step
//! ingest, seek into a 100,000-step run, and hybrid recall latency, each printed beside
//! SQLite (rusqlite, bundled; FTS5 for search) doing the same work on the same data in the
//! same run. Sizes can be scaled down with SCALE_STEPS / SCALE_MEMORIES for a quick look.

mod corpus;

use std::time::Instant;

use corpus::{Rng, percentile};
use jiff::Timestamp;
use shopfloor::model::{Run, RunState, Step, StepKind};
use shopfloor::store::Store;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn make_step(run: u64, seq: u64, rng: &mut Rng) -> Step {
    let (kind, text) = corpus::step_text(rng, seq);
    let kind = match kind {
        0 => StepKind::ToolCall {
            call_id: Some(format!("toolu_{seq}")),
            name: "Read".into(),
            input: format!("{{\"file_path\":\"{}\"}}", text.trim_start_matches("Read ")).into(),
        },
        1 => StepKind::Command {
            argv: text.split(' ').map(str::to_string).collect(),
            exit_code: Some(0),
            output: "ok".into(),
        },
        2 => StepKind::AgentMessage { text: text.into() },
        3 => StepKind::Decision { text: text.into() },
        _ => StepKind::ToolResult {
            call_id: Some(format!("toolu_{}", seq - 4)),
            output: text.into(),
            is_error: false,
        },
    };
    Step {
        run,
        seq,
        ts: Timestamp::now(),
        agent: "bench".into(),
        parent: None,
        kind,
    }
}

fn run_draft() -> Run {
    Run {
        id: 0,
        ticket: None,
        agent: "bench".into(),
        state: RunState::Imported,
        started: Timestamp::now(),
        ended: None,
        steps: 0,
        source: "bench".into(),
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

struct Figures;

impl Figures {
    fn add(&self, what: &str, ours: String, peer: String, ratio: String) {
        println!("  {what:<56} shopfloor {ours:>15}   sqlite {peer:>15}   {ratio}");
    }
}

fn main() {
    let total_steps = env_usize("SCALE_STEPS", 1_000_000) as u64;
    let runs = 10u64;
    let per_run = total_steps / runs;
    let batch = 1000usize;
    let dir = tempfile::tempdir().unwrap();
    let mut figs = Figures;
    println!(
        "scale benchmark: {total_steps} steps in {runs} runs of {per_run}, batches of {batch}"
    );

    // ---- durable ingest: shopfloor store ----
    let store = Store::open(&dir.path().join("store.redb")).unwrap();
    let mut rng = Rng::new(1);
    let mut run_ids = vec![];
    let t = Instant::now();
    for _ in 0..runs {
        let run = store.create_run(run_draft()).unwrap();
        run_ids.push(run.id);
        let mut seq = 0;
        while seq < per_run {
            let n = (batch as u64).min(per_run - seq);
            let steps: Vec<Step> = (seq..seq + n)
                .map(|s| make_step(run.id, s, &mut rng))
                .collect();
            store.append_steps(run.id, steps).unwrap();
            seq += n;
        }
    }
    let ours_ingest = total_steps as f64 / t.elapsed().as_secs_f64();

    // ---- durable ingest: SQLite peer, same rows, same batches, fsync per commit ----
    let conn = rusqlite::Connection::open(dir.path().join("peer.sqlite")).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE steps(run INTEGER, seq INTEGER, body BLOB, PRIMARY KEY(run, seq)) WITHOUT ROWID;",
    )
    .unwrap();
    let mut rng = Rng::new(1);
    let mut conn = conn;
    let t = Instant::now();
    for r in 0..runs {
        let mut seq = 0;
        while seq < per_run {
            let n = (batch as u64).min(per_run - seq);
            let tx = conn.transaction().unwrap();
            {
                let mut ins = tx
                    .prepare_cached("INSERT INTO steps VALUES (?1, ?2, ?3)")
                    .unwrap();
                for s in seq..seq + n {
                    let step = make_step(r + 1, s, &mut rng);
                    ins.execute(rusqlite::params![
                        (r + 1) as i64,
                        s as i64,
                        serde_json::to_vec(&step).unwrap()
                    ])
                    .unwrap();
                }
            }
            tx.commit().unwrap();
            seq += n;
        }
    }
    let peer_ingest = total_steps as f64 / t.elapsed().as_secs_f64();
    figs.add(
        "durable step ingest (steps/s, target >= 50k)",
        format!("{ours_ingest:.0}"),
        format!("{peer_ingest:.0}"),
        format!("{:.2}x", ours_ingest / peer_ingest),
    );

    // ---- seek to random steps of one 100,000-step run ----
    let seek_run = run_ids[0];
    let mut rng = Rng::new(7);
    let mut ours = vec![];
    for _ in 0..2000 {
        let seq = rng.below(per_run as usize) as u64;
        let t = Instant::now();
        let s = store.step(seek_run, seq).unwrap().unwrap();
        ours.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(s.seq, seq);
    }
    ours.sort_by(f64::total_cmp);
    let mut rng = Rng::new(7);
    let mut peer = vec![];
    let mut get = conn
        .prepare_cached("SELECT body FROM steps WHERE run = ?1 AND seq = ?2")
        .unwrap();
    for _ in 0..2000 {
        let seq = rng.below(per_run as usize) as u64;
        let t = Instant::now();
        let body: Vec<u8> = get
            .query_row(rusqlite::params![1i64, seq as i64], |r| r.get(0))
            .unwrap();
        let step: Step = serde_json::from_slice(&body).unwrap();
        peer.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(step.seq, seq);
    }
    drop(get);
    peer.sort_by(f64::total_cmp);
    figs.add(
        "seek any step, p50 / p99 (ms, target <= 10)",
        format!(
            "{:.3} / {:.3}",
            percentile(&ours, 0.5),
            percentile(&ours, 0.99)
        ),
        format!(
            "{:.3} / {:.3}",
            percentile(&peer, 0.5),
            percentile(&peer, 0.99)
        ),
        format!("{:.2}x", percentile(&peer, 0.5) / percentile(&ours, 0.5)),
    );

    recall::bench(&dir, &store, &run_ids, &mut figs);
}

mod recall {
    use super::*;
    use shopfloor::index::{Index, StepFilter};
    use shopfloor::memory::embed::StaticEmbedder;
    use shopfloor::memory::{MemoryBank, NewMemory, RecallQuery};
    use shopfloor::model::{Author, MemoryKind};

    fn fts_query(q: &str) -> String {
        // Question words OR'ed, each quoted so FTS5 syntax in them is inert.
        q.split(|c: char| !c.is_alphanumeric() && c != '_')
            .filter(|w| !w.is_empty())
            .map(|w| format!("\"{w}\""))
            .collect::<Vec<_>>()
            .join(" OR ")
    }

    fn timed<T>(n: usize, mut f: impl FnMut(usize) -> T) -> Vec<f64> {
        let mut v = Vec::with_capacity(n);
        for i in 0..n {
            let t = Instant::now();
            std::hint::black_box(f(i));
            v.push(t.elapsed().as_secs_f64() * 1e3);
        }
        v.sort_by(f64::total_cmp);
        v
    }

    pub fn bench(dir: &tempfile::TempDir, store: &Store, runs: &[u64], figs: &mut Figures) {
        let memories = env_usize("SCALE_MEMORIES", 100_000);
        let index = Index::open(&dir.path().join("index")).unwrap();

        // ---- index every step (trace search) ----
        let t = Instant::now();
        let mut n_steps = 0u64;
        for &run in runs {
            let total = store.run(run).unwrap().unwrap().steps;
            let mut from = 0;
            while from < total {
                let steps = store.steps(run, from, from + 5000).unwrap();
                n_steps += steps.len() as u64;
                index.add_steps(&steps).unwrap();
                from += 5000;
            }
        }
        index.flush().unwrap();
        let ours_index = n_steps as f64 / t.elapsed().as_secs_f64();
        let mut conn = rusqlite::Connection::open(dir.path().join("peer.sqlite")).unwrap();
        conn.execute_batch("CREATE VIRTUAL TABLE step_fts USING fts5(body); CREATE VIRTUAL TABLE mem_fts USING fts5(body, paths);")
            .unwrap();
        let mut rng = Rng::new(1);
        let t = Instant::now();
        let per_run = n_steps / runs.len() as u64;
        for r in 0..runs.len() as u64 {
            let tx = conn.transaction().unwrap();
            {
                let mut ins = tx
                    .prepare_cached("INSERT INTO step_fts(rowid, body) VALUES (?1, ?2)")
                    .unwrap();
                for s in 0..per_run {
                    let (_, text) = corpus::step_text(&mut rng, s);
                    ins.execute(rusqlite::params![(r * per_run + s) as i64, text])
                        .unwrap();
                }
            }
            tx.commit().unwrap();
        }
        let peer_index = n_steps as f64 / t.elapsed().as_secs_f64();
        figs.add(
            "full-text index of steps (steps/s)",
            format!("{ours_index:.0}"),
            format!("{peer_index:.0}"),
            format!("{:.2}x", ours_index / peer_index),
        );

        // ---- 100,000 memories, embedded, stored, indexed ----
        let bank = MemoryBank::open(store.clone(), index, StaticEmbedder::builtin()).unwrap();
        let mut rng = Rng::new(3);
        let mut texts = Vec::with_capacity(memories);
        let t = Instant::now();
        let mut batch = Vec::with_capacity(1000);
        for i in 0..memories {
            let (text, paths, kind) = corpus::memory(&mut rng);
            texts.push((text.clone(), paths.join(" ")));
            let mut m = NewMemory::new(
                kind.parse::<MemoryKind>().unwrap(),
                text,
                Author::Agent {
                    name: format!("agent-{}", i % 16),
                },
            );
            m.paths = paths;
            batch.push(m);
            if batch.len() == 1000 {
                bank.add_unflushed(std::mem::take(&mut batch)).unwrap();
            }
        }
        bank.add_unflushed(batch).unwrap();
        bank.flush_index().unwrap();
        let ours_mem = memories as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        {
            let tx = conn.transaction().unwrap();
            {
                let mut ins = tx
                    .prepare_cached("INSERT INTO mem_fts(body, paths) VALUES (?1, ?2)")
                    .unwrap();
                for (text, paths) in &texts {
                    ins.execute(rusqlite::params![text, paths]).unwrap();
                }
            }
            tx.commit().unwrap();
        }
        let peer_mem = memories as f64 / t.elapsed().as_secs_f64();
        figs.add(
            "memory writes (memories/s; ours embeds too)",
            format!("{ours_mem:.0}"),
            format!("{peer_mem:.0}"),
            format!("{:.2}x", ours_mem / peer_mem),
        );

        // ---- recall latency: the same 1,000 queries ----
        let mut rng = Rng::new(11);
        let queries: Vec<String> = (0..1000).map(|_| corpus::query(&mut rng)).collect();
        // Warm both: first-query costs (page cache, lazy model load) are not recall.
        for q in queries.iter().take(20) {
            bank.search(&RecallQuery {
                text: q.clone(),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        }
        let ours = timed(queries.len(), |i| {
            bank.search(&RecallQuery {
                text: queries[i].clone(),
                limit: 10,
                ..Default::default()
            })
            .unwrap()
            .len()
        });
        let mut stmt = conn
            .prepare("SELECT rowid FROM mem_fts WHERE mem_fts MATCH ?1 ORDER BY rank LIMIT 10")
            .unwrap();
        let peer = timed(queries.len(), |i| {
            stmt.query_map([fts_query(&queries[i])], |r| r.get::<_, i64>(0))
                .unwrap()
                .count()
        });
        drop(stmt);
        figs.add(
            "hybrid recall, 100k memories, p50 / p99 (ms; <=5/<=25)",
            format!(
                "{:.2} / {:.2}",
                percentile(&ours, 0.5),
                percentile(&ours, 0.99)
            ),
            format!(
                "{:.2} / {:.2}",
                percentile(&peer, 0.5),
                percentile(&peer, 0.99)
            ),
            format!(
                "{:.2}x (peer: BM25 only)",
                percentile(&peer, 0.5) / percentile(&ours, 0.5)
            ),
        );
        // The same text leg alone, like for like with FTS5.
        let bm25 = timed(queries.len(), |i| {
            bank.index()
                .search_memories(&queries[i], &Default::default(), 10)
                .unwrap()
                .len()
        });
        figs.add(
            "BM25 alone, 100k memories, p50 / p99 (ms)",
            format!(
                "{:.2} / {:.2}",
                percentile(&bm25, 0.5),
                percentile(&bm25, 0.99)
            ),
            format!(
                "{:.2} / {:.2}",
                percentile(&peer, 0.5),
                percentile(&peer, 0.99)
            ),
            format!("{:.2}x", percentile(&peer, 0.5) / percentile(&bm25, 0.5)),
        );

        // ---- trace search over every step ----
        let ours = timed(queries.len(), |i| {
            bank.index()
                .search_steps(&queries[i], &StepFilter::default(), 20)
                .unwrap()
                .len()
        });
        let mut stmt = conn
            .prepare("SELECT rowid FROM step_fts WHERE step_fts MATCH ?1 ORDER BY rank LIMIT 20")
            .unwrap();
        let peer = timed(queries.len(), |i| {
            stmt.query_map([fts_query(&queries[i])], |r| r.get::<_, i64>(0))
                .unwrap()
                .count()
        });
        figs.add(
            &format!("trace search over {n_steps} steps, p50 / p99 (ms)"),
            format!(
                "{:.2} / {:.2}",
                percentile(&ours, 0.5),
                percentile(&ours, 0.99)
            ),
            format!(
                "{:.2} / {:.2}",
                percentile(&peer, 0.5),
                percentile(&peer, 0.99)
            ),
            format!("{:.2}x", percentile(&peer, 0.5) / percentile(&ours, 0.5)),
        );
    }
}

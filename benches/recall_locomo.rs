//! Memory recall on LoCoMo (dev half), beside a peer: SQLite FTS5 BM25.
//!
//! `cargo bench --bench recall_locomo`. Reads `../shared/eval/locomo-dev.json` relative to
//! the crate at run time; the data is CC BY-NC and must never be copied into this repo.
//! Every turn of a conversation becomes one memory of its own workspace (temp store and
//! index); every question of categories 1-4 is asked; recall@k is the share of its
//! evidence turns found in the top k, averaged over questions. Then the dense leg's
//! latency at 100,000 memories, against the exact float scan it replaces.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use shopfloor::index::Index;
use shopfloor::memory::vectors::{Quantized, VectorIndex, XorShift, perturb};
use shopfloor::memory::{
    Embedder, Legs, MemoryBank, NewMemory, RRF_K, RecallQuery, StaticEmbedder,
};
use shopfloor::model::{Author, MemoryKind};
use shopfloor::store::Store;

const KS: [usize; 3] = [5, 10, 20];

struct Question {
    text: String,
    evidence: Vec<String>,
}

struct Conversation {
    id: String,
    turns: Vec<(String, String)>, // (dia_id, memory text)
    questions: Vec<Question>,
}

/// `"D8:6; D9:17"` -> D8:6, D9:17; `"D:11:26"` -> D11:26; `"D30:05"` -> D30:5; `"D"` -> none.
fn normalize_evidence(raw: &str) -> Vec<String> {
    raw.split([';', ',', ' '])
        .filter_map(|piece| {
            let nums: Vec<u32> = piece
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .filter_map(|s| s.parse().ok())
                .collect();
            match nums.as_slice() {
                [session, turn] => Some(format!("D{session}:{turn}")),
                _ => None,
            }
        })
        .collect()
}

fn load(path: &PathBuf) -> (Vec<Conversation>, usize) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; the LoCoMo dev set lives in ../shared/eval/",
            path.display()
        )
    });
    let data: Vec<Value> = serde_json::from_str(&text).expect("locomo json");
    let mut skipped = 0;
    let mut out = Vec::new();
    for conv in data {
        let c = &conv["conversation"];
        let mut turns = Vec::new();
        for n in 1.. {
            let Some(session) = c.get(format!("session_{n}")).and_then(Value::as_array) else {
                if c.get(format!("session_{}", n + 1)).is_some() {
                    continue;
                }
                break;
            };
            let date = c[format!("session_{n}_date_time")].as_str().unwrap_or("");
            for t in session {
                let s = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("");
                let mut text = format!("[{date}] {}: {}", s("speaker"), s("text"));
                if !s("blip_caption").is_empty() {
                    text.push_str(&format!(" (shares {})", s("blip_caption")));
                }
                let dia = normalize_evidence(s("dia_id")).pop().unwrap_or_default();
                turns.push((dia, text));
            }
        }
        let mut questions = Vec::new();
        for qa in conv["qa"].as_array().into_iter().flatten() {
            let cat = qa["category"].as_u64().unwrap_or(0);
            if !(1..=4).contains(&cat) {
                continue;
            }
            let mut evidence: Vec<String> = qa["evidence"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .flat_map(normalize_evidence)
                .collect();
            evidence.sort();
            evidence.dedup();
            if evidence.is_empty() {
                skipped += 1;
                continue;
            }
            questions.push(Question {
                text: qa["question"].as_str().unwrap_or("").to_string(),
                evidence,
            });
        }
        out.push(Conversation {
            id: conv["sample_id"].as_str().unwrap_or("?").to_string(),
            turns,
            questions,
        });
    }
    (out, skipped)
}

#[derive(Default, Clone)]
struct Tally {
    sums: [f64; 3],
    n: usize,
}

impl Tally {
    fn add(&mut self, ranked: &[String], evidence: &[String]) {
        for (i, k) in KS.iter().enumerate() {
            let top = &ranked[..ranked.len().min(*k)];
            let found = evidence.iter().filter(|e| top.contains(e)).count();
            self.sums[i] += found as f64 / evidence.len() as f64;
        }
        self.n += 1;
    }
    fn row(&self, name: &str) -> String {
        let r = |i: usize| self.sums[i] / self.n.max(1) as f64;
        format!("{name:<34} {:>8.3} {:>8.3} {:>8.3}", r(0), r(1), r(2))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// SQLite FTS5 with its default tokenizer and BM25, question words OR'ed.
fn fts5(conv: &Conversation, tally: &mut Tally) {
    let db = rusqlite::Connection::open_in_memory().unwrap();
    db.execute_batch("CREATE VIRTUAL TABLE t USING fts5(text, ref UNINDEXED);")
        .unwrap();
    let tx = db.unchecked_transaction().unwrap();
    for (dia, text) in &conv.turns {
        tx.execute("INSERT INTO t(text, ref) VALUES (?1, ?2)", (text, dia))
            .unwrap();
    }
    tx.commit().unwrap();
    let mut stmt = db
        .prepare("SELECT ref FROM t WHERE t MATCH ?1 ORDER BY bm25(t) LIMIT 20")
        .unwrap();
    for q in &conv.questions {
        let words: Vec<String> = q
            .text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| format!("\"{w}\""))
            .collect();
        let ranked: Vec<String> = if words.is_empty() {
            Vec::new()
        } else {
            stmt.query_map([words.join(" OR ")], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        tally.add(&ranked, &q.evidence);
    }
}

struct Config {
    name: &'static str,
    legs: Legs,
}

fn main() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/eval/locomo-dev.json");
    let (convs, skipped) = load(&path);
    let questions: usize = convs.iter().map(|c| c.questions.len()).sum();
    println!(
        "LoCoMo dev: {} conversations, {} turns, {questions} questions (cat 1-4; {skipped} without a usable evidence id skipped)",
        convs.len(),
        convs.iter().map(|c| c.turns.len()).sum::<usize>()
    );

    let only = |bm25, dense, recent, rrf_k| Legs {
        bm25,
        dense,
        path: true,
        recent,
        rrf_k,
    };
    let mut configs = vec![
        Config {
            name: "shopfloor BM25 only (tantivy)",
            legs: only(true, false, false, RRF_K),
        },
        Config {
            name: "shopfloor dense only (model2vec)",
            legs: only(false, true, false, RRF_K),
        },
        Config {
            name: "shopfloor hybrid RRF (default k)",
            legs: Legs::default(),
        },
        Config {
            name: "  hybrid without recency leg",
            legs: only(true, true, false, RRF_K),
        },
    ];
    for k in [5.0, 15.0, 20.0, 30.0, 60.0] {
        let name: &'static str = Box::leak(format!("  hybrid RRF k={k}").into_boxed_str());
        configs.push(Config {
            name,
            legs: Legs {
                rrf_k: k,
                ..Legs::default()
            },
        });
    }

    let embedder = StaticEmbedder::builtin();
    let mut tallies = vec![Tally::default(); configs.len()];
    let mut peer = Tally::default();
    let mut hybrid_lat = Vec::new();
    let mut build = Duration::ZERO;
    for conv in &convs {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.redb")).unwrap();
        let index = Index::open(&dir.path().join("index")).unwrap();
        let bank = MemoryBank::open(store, index, embedder.clone()).unwrap();
        let t = Instant::now();
        let base = jiff::Timestamp::from_second(1_680_000_000).unwrap();
        let memories = conv
            .turns
            .iter()
            .enumerate()
            .map(|(i, (dia, text))| NewMemory {
                reference: Some(dia.clone()),
                // Conversation order is time order.
                ts: Some(base + jiff::SignedDuration::from_secs(60 * i as i64)),
                ..NewMemory::new(
                    MemoryKind::Note,
                    text,
                    Author::Human {
                        name: conv.id.clone(),
                    },
                )
            })
            .collect();
        bank.add_many(memories).unwrap();
        build += t.elapsed();
        for (ci, cfg) in configs.iter().enumerate() {
            for q in &conv.questions {
                let query = RecallQuery {
                    text: q.text.clone(),
                    limit: 20,
                    ..Default::default()
                };
                let t = Instant::now();
                let hits = bank.search_legs(&query, cfg.legs).unwrap();
                if ci == 2 {
                    hybrid_lat.push(t.elapsed());
                }
                let ranked: Vec<String> = hits
                    .into_iter()
                    .filter_map(|h| h.memory.reference)
                    .collect();
                tallies[ci].add(&ranked, &q.evidence);
            }
        }
        fts5(conv, &mut peer);
    }

    println!(
        "\n{:<34} {:>8} {:>8} {:>8}",
        format!("recall@k (RRF k={RRF_K})"),
        "@5",
        "@10",
        "@20"
    );
    for (cfg, t) in configs.iter().zip(&tallies) {
        println!("{}", t.row(cfg.name));
    }
    println!("{}", peer.row("peer: SQLite FTS5 BM25 (OR)"));
    println!("(README reference: FTS5 recall@10 0.555; issue's BM25+dense fusion ~0.600)");

    hybrid_lat.sort();
    println!(
        "\nhybrid query latency over {} queries (~{} memories a workspace; embed + 3 legs + fuse + load): p50 {:?}, p99 {:?}; ingest {:?} total",
        hybrid_lat.len(),
        convs.iter().map(|c| c.turns.len()).sum::<usize>() / convs.len().max(1),
        percentile(&hybrid_lat, 0.5),
        percentile(&hybrid_lat, 0.99),
        build
    );

    let texts: Vec<String> = convs
        .iter()
        .flat_map(|c| c.turns.iter().map(|t| t.1.clone()))
        .collect();
    let t = Instant::now();
    std::hint::black_box(embedder.embed_batch(&texts));
    let batch = t.elapsed();
    let mut one = Vec::new();
    for c in &convs {
        for q in &c.questions {
            let t = Instant::now();
            std::hint::black_box(embedder.embed(&q.text));
            one.push(t.elapsed());
        }
    }
    one.sort();
    println!(
        "embedding (built-in model2vec, 256-d): {:?} a turn in a batch of {}; one question p50 {:?}, p99 {:?}",
        batch / texts.len().max(1) as u32,
        texts.len(),
        percentile(&one, 0.5),
        percentile(&one, 0.99)
    );

    dense_at_scale(100_000);
    hybrid_at_scale(&convs, 100_000);
}

/// The whole recall (embed, BM25, dense, fuse, load) on one workspace of `n` memories made
/// from the LoCoMo turns (repeated under different day stamps), asked every question.
fn hybrid_at_scale(convs: &[Conversation], n: usize) {
    let turns: Vec<&String> = convs
        .iter()
        .flat_map(|c| c.turns.iter().map(|t| &t.1))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store.redb")).unwrap();
    let index = Index::open(&dir.path().join("index")).unwrap();
    let bank = MemoryBank::open(store, index, StaticEmbedder::builtin()).unwrap();
    let t = Instant::now();
    let base = jiff::Timestamp::from_second(1_600_000_000).unwrap();
    for start in (0..n).step_by(5000) {
        let batch = (start..n.min(start + 5000))
            .map(|i| NewMemory {
                ts: Some(base + jiff::SignedDuration::from_secs(i as i64)),
                ..NewMemory::new(
                    MemoryKind::ALL[i % 5],
                    format!("[day {}] {}", i / turns.len(), turns[i % turns.len()]),
                    Author::Human {
                        name: "bench".into(),
                    },
                )
            })
            .collect();
        bank.add_unflushed(batch).unwrap();
    }
    bank.flush_index().unwrap();
    let built = t.elapsed();
    println!(
        "\nrecall at {n} memories (ingest with embedding {built:?}), p50 / p99 over the questions:"
    );
    let bm25 = Legs {
        dense: false,
        ..Legs::default()
    };
    let dense = Legs {
        bm25: false,
        ..Legs::default()
    };
    for (name, legs) in [
        ("hybrid", Legs::default()),
        ("  BM25 leg alone", bm25),
        ("  dense leg alone", dense),
    ] {
        let mut plain = Vec::new();
        let mut filtered = Vec::new();
        for q in convs.iter().flat_map(|c| &c.questions) {
            let query = RecallQuery {
                text: q.text.clone(),
                limit: 10,
                ..Default::default()
            };
            let t = Instant::now();
            std::hint::black_box(bank.search_legs(&query, legs).unwrap());
            plain.push(t.elapsed());
            let query = RecallQuery {
                kinds: vec![MemoryKind::Lesson],
                since: Some(base + jiff::SignedDuration::from_secs(n as i64 / 2)),
                ..query
            };
            let t = Instant::now();
            std::hint::black_box(bank.search_legs(&query, legs).unwrap());
            filtered.push(t.elapsed());
        }
        plain.sort();
        filtered.sort();
        println!(
            "  {name:<18} no filter {:>10?} / {:>10?}   kind+since filter (10% pass) {:>10?} / {:>10?}",
            percentile(&plain, 0.5),
            percentile(&plain, 0.99),
            percentile(&filtered, 0.5),
            percentile(&filtered, 0.99),
        );
    }
}

/// The dense leg at 100k memories: two-stage sign-code + int8 re-rank vs the exact float
/// scan (the peer it replaces), latency and agreement.
fn dense_at_scale(n: usize) {
    let dim = 256;
    let mut rng = XorShift(2024);
    let centers: Vec<Vec<f32>> = (0..1000).map(|_| rng.unit_vector(dim)).collect();
    let data: Vec<Vec<f32>> = (0..n)
        .map(|i| perturb(&mut rng, &centers[i % 1000], 0.9))
        .collect();
    let t = Instant::now();
    let mut idx = VectorIndex::new(dim);
    for (i, v) in data.iter().enumerate() {
        idx.insert(i as u64, &Quantized::from_f32(v));
    }
    let built = t.elapsed();
    let flat: Vec<f32> = data.iter().flatten().copied().collect();
    let (mut two, mut exact, mut filtered) = (Vec::new(), Vec::new(), Vec::new());
    let (mut agree, mut total) = (0, 0);
    let queries: Vec<Vec<f32>> = (0..300)
        .map(|qi| perturb(&mut rng, &data[(qi * 331) % n], 0.6))
        .collect();
    // Each kind of search in its own loop, so one does not evict the other's data.
    let mut tops = Vec::new();
    for q in &queries {
        let t = Instant::now();
        let got = idx.search(q, 50, None);
        two.push(t.elapsed());
        tops.push(got.iter().take(10).map(|h| h.0).collect::<Vec<u64>>());
    }
    let keep = |id: u64| id % 100 == 7;
    for q in &queries {
        let t = Instant::now();
        std::hint::black_box(idx.search(q, 50, Some(&keep)));
        filtered.push(t.elapsed());
    }
    for (q, top) in queries.iter().zip(&tops) {
        // Peer: exact float scan of every vector, then top 50.
        let t = Instant::now();
        let mut scores: Vec<(f32, usize)> = flat
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, v)| (v.iter().zip(q).map(|(a, b)| a * b).sum(), i))
            .collect();
        scores.select_nth_unstable_by(49, |a, b| b.0.total_cmp(&a.0));
        exact.push(t.elapsed());
        let mut truth = scores[..50].to_vec();
        truth.sort_by(|a, b| b.0.total_cmp(&a.0));
        agree += truth[..10]
            .iter()
            .filter(|s| top.contains(&(s.1 as u64)))
            .count();
        total += 10;
    }
    for v in [&mut two, &mut exact, &mut filtered] {
        v.sort();
    }
    println!(
        "\ndense leg at {n} memories (256-d, built in {built:?}):\n  sign-code + int8 re-rank: p50 {:?}, p99 {:?}; with a 1% filter: p50 {:?}, p99 {:?}; recall@10 vs exact {:.3}\n  peer: exact f32 scan:      p50 {:?}, p99 {:?}",
        percentile(&two, 0.5),
        percentile(&two, 0.99),
        percentile(&filtered, 0.5),
        percentile(&filtered, 0.99),
        agree as f64 / total as f64,
        percentile(&exact, 0.5),
        percentile(&exact, 0.99),
    );
}

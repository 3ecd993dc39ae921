//! The shared memory of the factory: what agents and people decided, learned and agreed,
//! written once and recalled by any later run. `MemoryBank` ties the store (durable
//! records and their vectors), the full-text index and the dense vector index together;
//! recall fuses BM25, embedding similarity, path overlap and recency with reciprocal rank
//! fusion.

mod catalog;
pub mod embed;
mod import;
pub mod recall;
pub mod vectors;

use std::sync::{Arc, RwLock};

use jiff::Timestamp;

pub use embed::{EmbedError, Embedder, StaticEmbedder};
pub use import::{ImportSummary, LineError};
pub use recall::{Leg, RRF_K, RecallHit, RecallQuery};

use crate::index::{Index, IndexError, MemoryFilter};
use crate::model::{Author, Memory, MemoryEvent, MemoryEventKind, MemoryId, MemoryKind, StepRef};
use crate::redact::Redactor;
use crate::store::{Store, StoreError};
use catalog::Catalog;
use vectors::{Quantized, VectorIndex};

/// Hits wanted when a query says 0.
pub const DEFAULT_LIMIT: usize = 10;
/// The most hits one search returns. Callers that take a limit from outside (the CLI, the
/// API, MCP) refuse more with a clear error; the bank clamps as well, so no caller can
/// make one search allocate without bound.
pub const MAX_LIMIT: usize = 1000;
/// Candidates each leg hands to the fusion, at least: deep enough that a memory ranked
/// well by one leg and middling by another still surfaces.
const LEG_DEPTH: usize = 50;
/// Memories written to the store and index per batch while importing.
const IMPORT_BATCH: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("a memory needs some text; write what was decided or learned")]
    EmptyText,
    #[error("the embedding model gives {got}-dimensional vectors, expected {want}")]
    Dimension { got: usize, want: usize },
    #[error("cannot read the import: {0}")]
    Read(#[from] std::io::Error),
}

pub type Result<T, E = MemoryError> = std::result::Result<T, E>;

/// A memory to write; the bank assigns its id.
#[derive(Clone, Debug)]
pub struct NewMemory {
    pub kind: MemoryKind,
    pub text: String,
    pub paths: Vec<String>,
    pub tags: Vec<String>,
    pub author: Author,
    pub source: Option<StepRef>,
    /// When it was true; None means now.
    pub ts: Option<Timestamp>,
    /// Opaque, returned unchanged by search.
    pub reference: Option<String>,
}

impl NewMemory {
    pub fn new(kind: MemoryKind, text: impl Into<String>, author: Author) -> NewMemory {
        NewMemory {
            kind,
            text: text.into(),
            paths: Vec::new(),
            tags: Vec::new(),
            author,
            source: None,
            ts: None,
            reference: None,
        }
    }
}

/// Which legs a search may use; all by default. The benchmark switches legs off to
/// measure each alone; the product has no reason to.
#[derive(Clone, Copy, Debug)]
pub struct Legs {
    pub bm25: bool,
    pub dense: bool,
    pub path: bool,
    pub recent: bool,
    pub rrf_k: f32,
}

impl Default for Legs {
    fn default() -> Self {
        Legs {
            bm25: true,
            dense: true,
            path: true,
            recent: true,
            rrf_k: RRF_K,
        }
    }
}

/// What recall reads besides the store and the full-text index: kept under ONE lock, so
/// a search and a write can never each hold one half and wait for the other (two locks
/// taken in opposite orders froze memory for good under concurrent writes and searches).
struct Recall {
    vectors: VectorIndex,
    /// What filters and the path and recency legs read, so they never touch the store.
    catalog: Catalog,
}

pub struct MemoryBank {
    store: Store,
    index: Index,
    embedder: Arc<dyn Embedder>,
    /// Lock order: this is the bank's only lock, and nothing else is locked while it is
    /// held but the full-text index's reader (which takes no lock of ours); a search's
    /// dense leg reads through the guard its caller holds, never taking it again.
    recall: RwLock<Recall>,
    /// Serializes `record_lesson`'s look-then-write. Taken before the recall lock, never
    /// while holding it.
    lessons: std::sync::Mutex<()>,
    /// Applied to every memory before it is embedded, stored or indexed: the one door
    /// memories come in by, so a secret cannot reach the store or the index another way.
    redactor: Redactor,
}

impl MemoryBank {
    /// Open the bank over a workspace's store and index. Vectors come back from the store
    /// (no re-embedding, except memories stored without one or with another model's); the
    /// index is rebuilt from the store when it does not hold every memory (deleted, or a
    /// crash between the store's commit and the index's).
    pub fn open(store: Store, index: Index, embedder: Arc<dyn Embedder>) -> Result<MemoryBank> {
        let dim = embedder.dim();
        let mut catalog = Catalog::default();
        store.for_each_memory(|m| {
            catalog.insert(&m);
            Ok(())
        })?;
        let mut vecs = VectorIndex::new(dim);
        store.for_each_memory_vector(|id, bytes| {
            if let Some(q) = Quantized::decode(bytes) {
                vecs.insert(id, &q);
            }
        })?;
        let missing: Vec<MemoryId> = catalog.ids().filter(|id| !vecs.contains(*id)).collect();
        if !missing.is_empty() {
            tracing::warn!(
                "re-embedding {} memories without a usable vector",
                missing.len()
            );
            for chunk in missing.chunks(IMPORT_BATCH) {
                let mut texts = Vec::with_capacity(chunk.len());
                for id in chunk {
                    texts.push(store.memory(*id)?.map(|m| m.text).unwrap_or_default());
                }
                for (id, v) in chunk.iter().zip(embedder.embed_batch(&texts)) {
                    vecs.insert(*id, &Quantized::from_f32(&v));
                }
            }
        }
        if index.memory_count()? != catalog.len() as u64 {
            tracing::info!("rebuilding the memory index from the store");
            index.clear_memories()?;
            let mut batch = Vec::with_capacity(IMPORT_BATCH);
            let mut index_err = None;
            let walked = store.for_each_memory(|m| {
                batch.push(m);
                if batch.len() == IMPORT_BATCH {
                    if let Err(e) = index.add_memories(&batch) {
                        index_err = Some(e);
                        // Stops the walk; the index error is what gets reported.
                        return Err(StoreError::Invalid("index writer stopped".into()));
                    }
                    batch.clear();
                }
                Ok(())
            });
            if let Some(e) = index_err {
                return Err(e.into());
            }
            walked?;
            index.add_memories(&batch)?;
            index.flush()?;
        }
        Ok(MemoryBank {
            store,
            index,
            embedder,
            recall: RwLock::new(Recall {
                vectors: vecs,
                catalog,
            }),
            lessons: std::sync::Mutex::new(()),
            redactor: Redactor::standard(),
        })
    }

    /// Redact with the workspace's configured rules instead of the built-in ones.
    pub fn with_redactor(mut self, redactor: Redactor) -> MemoryBank {
        self.redactor = redactor;
        self
    }

    /// A poisoned lock means a panic mid-update of the in-memory recall state; the store
    /// is the truth and the state is rebuilt at the next open, so reading on is safe.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Recall> {
        self.recall.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Recall> {
        self.recall.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn len(&self) -> usize {
        self.read().catalog.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Write one memory: durable in the store and searchable when this returns.
    pub fn add(&self, memory: NewMemory) -> Result<Memory> {
        let mut out = self.add_many(vec![memory])?;
        Ok(out.remove(0))
    }

    /// Write many memories in one store transaction and one index commit; all durable
    /// and searchable when this returns.
    pub fn add_many(&self, memories: Vec<NewMemory>) -> Result<Vec<Memory>> {
        let out = self.add_unflushed(memories)?;
        self.index.flush()?;
        Ok(out)
    }

    /// Durable in the store, visible to the dense, path and recency legs, and queued for
    /// the full-text index (searchable by BM25 after the writer's next commit). Bulk
    /// writers call this per batch and `flush_index` once at the end.
    pub fn add_unflushed(&self, mut memories: Vec<NewMemory>) -> Result<Vec<Memory>> {
        for m in &mut memories {
            if let std::borrow::Cow::Owned(clean) = self.redactor.redact(&m.text) {
                m.text = clean;
            }
            for t in m
                .tags
                .iter_mut()
                .chain(m.paths.iter_mut())
                .chain(m.reference.iter_mut())
            {
                if let std::borrow::Cow::Owned(clean) = self.redactor.redact(t) {
                    *t = clean;
                }
            }
        }
        if memories.iter().any(|m| m.text.trim().is_empty()) {
            return Err(MemoryError::EmptyText);
        }
        if memories.is_empty() {
            return Ok(Vec::new());
        }
        let texts: Vec<String> = memories.iter().map(|m| m.text.clone()).collect();
        let embedded = self.embedder.embed_batch(&texts);
        let now = Timestamp::now();
        let mut items = Vec::with_capacity(memories.len());
        let mut quantized = Vec::with_capacity(memories.len());
        for (m, v) in memories.into_iter().zip(embedded) {
            if v.len() != self.embedder.dim() {
                return Err(MemoryError::Dimension {
                    got: v.len(),
                    want: self.embedder.dim(),
                });
            }
            let q = Quantized::from_f32(&v);
            let memory = Memory {
                id: 0,
                kind: m.kind,
                text: m.text,
                paths: m.paths,
                tags: m.tags,
                author: m.author,
                source: m.source,
                ts: m.ts.unwrap_or(now),
                reference: m.reference,
                seen: 1,
                confirmed: None,
            };
            items.push((memory, Some(q.encode())));
            quantized.push(q);
        }
        let stored = self.store.add_memories(items)?;
        self.index.add_memories(&stored)?;
        {
            let mut recall = self.write();
            for (m, q) in stored.iter().zip(&quantized) {
                recall.vectors.insert(m.id, q);
                recall.catalog.insert(m);
            }
        }
        Ok(stored)
    }

    /// Wait until every memory written so far is searchable by BM25.
    /// Write a lesson learned from a failure named `signature` (`trace::digest`): the
    /// same failure again raises the count of the lesson already written (its paths
    /// joined, the run noted in its history) instead of writing another. Returns the
    /// lesson and whether it is new.
    pub fn record_lesson(&self, lesson: NewMemory, signature: &str) -> Result<(Memory, bool)> {
        let tag = format!("failure:{signature}");
        // One lesson writer at a time, so two runs failing alike at once write one lesson.
        // Lock order: this, then the recall lock (taken inside `add` and below).
        let _one = self.lessons.lock().unwrap_or_else(|p| p.into_inner());
        let existing = self.read().catalog.find_tag(&tag);
        if let Some(id) = existing {
            let source = lesson.source;
            let paths = lesson.paths.clone();
            let event = source.map(|source| MemoryEvent {
                ts: Timestamp::now(),
                what: MemoryEventKind::Repeated { source },
            });
            if let Some(m) = self.store.update_memory(id, event, move |m| {
                m.seen = m.seen.saturating_add(1);
                for p in &paths {
                    if !m.paths.contains(p) {
                        m.paths.push(p.clone());
                    }
                }
            })? {
                self.write().catalog.insert(&m);
                return Ok((m, false));
            }
        }
        let mut lesson = lesson;
        lesson.tags.push(tag);
        Ok((self.add(lesson)?, true))
    }

    /// Note that `run` received these memories in its context pack, each with why.
    pub fn note_recalled(
        &self,
        run: crate::model::RunId,
        hits: &[(MemoryId, String)],
    ) -> Result<()> {
        let ts = Timestamp::now();
        self.store.add_memory_events(
            hits.iter()
                .map(|(id, why)| {
                    (
                        *id,
                        MemoryEvent {
                            ts,
                            what: MemoryEventKind::Recalled {
                                run,
                                why: why.clone(),
                            },
                        },
                    )
                })
                .collect(),
        )?;
        Ok(())
    }

    /// Mark lessons confirmed by `run`, which received them and landed.
    pub fn confirm(&self, ids: &[MemoryId], run: crate::model::RunId) -> Result<()> {
        for &id in ids {
            let event = MemoryEvent {
                ts: Timestamp::now(),
                what: MemoryEventKind::Confirmed { run },
            };
            if let Some(m) = self
                .store
                .update_memory(id, Some(event), move |m| m.confirmed = Some(run))?
            {
                self.write().catalog.insert(&m);
            }
        }
        Ok(())
    }

    /// A memory's history, oldest first: its writing (from the record itself, so a
    /// million imported memories cost no extra rows), then what happened to it since.
    pub fn history(&self, id: MemoryId) -> Result<Vec<MemoryEvent>> {
        let Some(m) = self.store.memory(id)? else {
            return Ok(Vec::new());
        };
        let mut events = vec![MemoryEvent {
            ts: m.ts,
            what: MemoryEventKind::Written { source: m.source },
        }];
        events.extend(self.store.memory_events(id)?);
        Ok(events)
    }

    pub fn flush_index(&self) -> Result<()> {
        Ok(self.index.flush()?)
    }

    /// Import memories from JSON Lines: one object a line with `text` (required), and
    /// optional `kind`, `paths`, `tags`, `ts` (RFC 3339) and `ref` (returned unchanged by
    /// search). Bad lines are reported with their line numbers; good lines are imported.
    pub fn import_jsonl(
        &self,
        reader: impl std::io::BufRead,
        author: Author,
    ) -> Result<ImportSummary> {
        import::import(self, reader, author, IMPORT_BATCH)
    }

    /// Recall with every leg.
    pub fn search(&self, q: &RecallQuery) -> Result<Vec<RecallHit>> {
        self.search_legs(q, Legs::default())
    }

    /// Recall with a chosen set of legs (for measuring them).
    pub fn search_legs(&self, q: &RecallQuery, legs: Legs) -> Result<Vec<RecallHit>> {
        let limit = if q.limit == 0 {
            DEFAULT_LIMIT
        } else {
            q.limit.min(MAX_LIMIT)
        };
        let depth = LEG_DEPTH.max(limit * 3);
        let filter = MemoryFilter {
            kinds: q.kinds.clone(),
            agent: q.agent.clone(),
            run: q.run,
            paths: if q.paths_only {
                q.paths.clone()
            } else {
                Vec::new()
            },
            since: q.since,
        };
        let mut query_paths = q.paths.clone();
        query_paths.extend(recall::paths_in(&q.text));
        let has_text = !q.text.trim().is_empty();
        let recent = q.recent || recall::wants_recent(&q.text);

        let recall = self.read();
        let catalog = &recall.catalog;
        let vecs = &recall.vectors;
        let compiled = catalog.compile(&filter);
        let keep = |id: MemoryId| compiled.keep(id);
        let mut ranked: Vec<(Leg, Vec<MemoryId>)> = Vec::new();

        // The text legs are the costly ones and independent: the dense leg runs on a
        // second core while BM25 runs here (recall p50 at 100k memories is their max,
        // not their sum).
        let dense = |_: ()| -> Vec<MemoryId> {
            let qv = self.embedder.embed(&q.text);
            let hits = if compiled.is_empty() {
                vecs.search(&qv, depth, None)
            } else {
                vecs.search(&qv, depth, Some(&keep))
            };
            // A zero query (no known words) scores everything 0: that is no signal.
            hits.into_iter()
                .filter(|h| h.1 > 0.0)
                .map(|h| h.0)
                .collect()
        };
        let (bm25_ids, dense_ids) = std::thread::scope(|scope| {
            let dense_job = (legs.dense && has_text).then(|| scope.spawn(|| dense(())));
            let bm25 = if legs.bm25 && has_text {
                // Globs are only narrowed by the index; `keep` checks them exactly.
                self.index
                    .search_memories(&q.text, &filter, depth * 2)
                    .map(|hits| {
                        Some(
                            hits.into_iter()
                                .map(|h| h.0)
                                .filter(|&id| keep(id))
                                .take(depth)
                                .collect::<Vec<_>>(),
                        )
                    })
            } else {
                Ok(None)
            };
            let dense =
                dense_job.map(|j| j.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            (bm25, dense)
        });
        if let Some(ids) = bm25_ids? {
            ranked.push((Leg::Bm25, ids));
        }
        if let Some(ids) = dense_ids {
            ranked.push((Leg::Dense, ids));
        }
        if legs.path && !query_paths.is_empty() {
            let mut scored: Vec<(u8, Timestamp, MemoryId)> = catalog
                .with_paths(&compiled)
                .filter_map(|m| {
                    let s = recall::path_overlap(&query_paths, &m.paths);
                    (s > 0).then_some((s, m.ts, m.id))
                })
                .collect();
            scored.sort_by(|a, b| b.cmp(a));
            ranked.push((
                Leg::Path,
                scored.into_iter().take(depth).map(|s| s.2).collect(),
            ));
        }
        // With nothing else to rank by (an empty query with filters), newest first.
        let nothing_else = ranked.iter().all(|(_, ids)| ids.is_empty()) && !has_text;
        if legs.recent && (recent || nothing_else) {
            ranked.push((Leg::Recent, catalog.newest(&compiled, depth)));
        }
        drop(recall);

        let fused = recall::fuse(&ranked, legs.rrf_k, limit);
        let mut out = Vec::with_capacity(fused.len());
        for f in fused {
            // A memory can only be missing if the store was changed behind our back.
            if let Some(memory) = self.store.memory(f.id)? {
                out.push(RecallHit {
                    memory,
                    score: f.score,
                    legs: f.legs,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;

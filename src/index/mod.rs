//! Full-text search over memories and steps: one tantivy index in the workspace's
//! `index/` directory, a code-aware tokenizer, one writer thread that batches commits, and
//! a reader reloaded after each commit (near-real-time). The store stays the source of
//! truth; this index can always be rebuilt from it.

pub mod filter;
pub mod schema;
pub mod tokenizer;
mod writer;

use std::collections::HashSet;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{IndexReader, ReloadPolicy, Searcher, Term};

pub use filter::{MemoryFilter, StepFilter, path_matches};
pub use schema::step_text;
use schema::{DOC_MEMORY, Fields};
use tokenizer::{CODE_TOKENIZER, CodeTokenizer};
use writer::{Op, WriterHandle};

use crate::model::{Memory, MemoryId, RunId, Step};

/// Heap given to tantivy's writer: enough to batch thousands of small documents, small
/// enough for a laptop running many agents.
const WRITER_HEAP_BYTES: usize = 50_000_000;

/// Most terms a query keeps: a pasted stack trace should not become a 5,000-clause query.
const MAX_QUERY_TERMS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(
        "the search index at {path} is in use by another process (a running factory?); \
         stop it or go through `shopfloor` commands, which use its socket"
    )]
    Locked { path: PathBuf },
    #[error(
        "the search index at {path} cannot be opened ({detail}); it is rebuilt from the \
         store, so delete that directory and run the command again"
    )]
    Unreadable { path: PathBuf, detail: String },
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("search failed: {0}")]
    Search(#[from] tantivy::TantivyError),
    #[error("indexing failed at commit: {0}; check free disk space and the log")]
    Commit(String),
    #[error("the index writer thread has stopped; restart shopfloor")]
    WriterGone,
}

/// A step found by search.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepHit {
    pub run: RunId,
    pub seq: u64,
    pub score: f32,
}

pub struct Index {
    fields: Fields,
    reader: IndexReader,
    writer: WriterHandle,
    dir: PathBuf,
    fresh: bool,
}

/// Remove an outdated index's files. Refuses a directory holding anything but files (not
/// an index directory, so not ours to empty), and one another process is writing to.
fn wipe_index_dir(dir: &Path) -> Result<(), IndexError> {
    let io = |source| IndexError::Io {
        path: dir.to_path_buf(),
        source,
    };
    // tantivy holds a lock on this file while a writer lives: probe it before deleting.
    let probe = tantivy::Index::open_in_dir(dir)
        .and_then(|i| i.writer::<tantivy::TantivyDocument>(WRITER_HEAP_BYTES));
    if let Err(tantivy::TantivyError::LockFailure(..)) = probe {
        return Err(IndexError::Locked {
            path: dir.to_path_buf(),
        });
    }
    drop(probe);
    let entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)?;
    if entries.iter().any(|e| e.path().is_dir()) {
        return Err(IndexError::Unreadable {
            path: dir.to_path_buf(),
            detail: "it was made by another version of shopfloor, and it holds \
                     subdirectories, so it is not removed automatically"
                .into(),
        });
    }
    for e in entries {
        std::fs::remove_file(e.path()).map_err(io)?;
    }
    Ok(())
}

impl Index {
    /// Open (creating if needed) the index in `dir`, taking its single-writer lock.
    pub fn open(dir: &Path) -> Result<Index, IndexError> {
        std::fs::create_dir_all(dir).map_err(|source| IndexError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let (schema, fields) = schema::build();
        let unreadable = |e: tantivy::TantivyError| IndexError::Unreadable {
            path: dir.to_path_buf(),
            detail: e.to_string(),
        };
        let mut fresh = false;
        let index = if dir.join("meta.json").exists() {
            let index = tantivy::Index::open_in_dir(dir).map_err(unreadable)?;
            if index.schema() == schema {
                index
            } else {
                // Made by another version of shopfloor. The index is derived data (the
                // store is the truth), so replace it rather than make the user do it.
                drop(index);
                tracing::warn!(dir = %dir.display(), "search index schema changed; rebuilding");
                wipe_index_dir(dir)?;
                fresh = true;
                tantivy::Index::create_in_dir(dir, schema).map_err(unreadable)?
            }
        } else {
            fresh = true;
            tantivy::Index::create_in_dir(dir, schema).map_err(unreadable)?
        };
        index.tokenizers().register(
            CODE_TOKENIZER,
            tantivy::tokenizer::TextAnalyzer::from(CodeTokenizer),
        );
        let writer = match index.writer(WRITER_HEAP_BYTES) {
            Ok(w) => w,
            Err(tantivy::TantivyError::LockFailure(..)) => {
                return Err(IndexError::Locked {
                    path: dir.to_path_buf(),
                });
            }
            Err(e) => return Err(unreadable(e)),
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(unreadable)?;
        Ok(Index {
            fields,
            writer: WriterHandle::start(writer, reader.clone()),
            reader,
            dir: dir.to_path_buf(),
            fresh,
        })
    }

    /// Whether this open created the index (new workspace, or replaced after a schema
    /// change): the owner of steps should then re-add them from the store. Memories are
    /// re-added by `MemoryBank::open` on its own.
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queue memories for indexing (replacing any older document of the same id).
    /// Searchable after the next commit; call `flush` to wait for it.
    pub fn add_memories(&self, memories: &[Memory]) -> Result<(), IndexError> {
        let f = &self.fields;
        let ops = memories
            .iter()
            .map(|m| Op::Upsert {
                delete: Term::from_field_text(f.key, &schema::memory_key(m.id)),
                doc: schema::memory_doc(f, m),
            })
            .collect();
        self.writer.send(ops)
    }

    /// Queue steps for indexing (replacing any older document of the same run and seq).
    pub fn add_steps(&self, steps: &[Step]) -> Result<(), IndexError> {
        let f = &self.fields;
        let ops = steps
            .iter()
            .map(|s| Op::Upsert {
                delete: Term::from_field_text(f.key, &schema::step_key(s.run, s.seq)),
                doc: schema::step_doc(f, s),
            })
            .collect();
        self.writer.send(ops)
    }

    pub fn delete_memory(&self, id: MemoryId) -> Result<(), IndexError> {
        let term = Term::from_field_text(self.fields.key, &schema::memory_key(id));
        self.writer.send(vec![Op::Delete(term)])
    }

    /// Remove every memory document (before a rebuild from the store).
    pub fn clear_memories(&self) -> Result<(), IndexError> {
        let term = Term::from_field_text(self.fields.doc_type, DOC_MEMORY);
        self.writer.send(vec![Op::Delete(term)])
    }

    /// Commit everything queued so far; returns once it is searchable.
    pub fn flush(&self) -> Result<(), IndexError> {
        self.writer.flush()
    }

    /// Memory documents currently searchable.
    pub fn memory_count(&self) -> Result<u64, IndexError> {
        let searcher = self.reader.searcher();
        let q = TermQuery::new(
            Term::from_field_text(self.fields.doc_type, DOC_MEMORY),
            IndexRecordOption::Basic,
        );
        Ok(q.count(&searcher)? as u64)
    }

    /// BM25 over memories: any of the query's terms, best first. Never fails on user text
    /// (the query is built from tokens, not parsed). Filters are exact except for globs
    /// (in the filter, or in a memory's paths), which are narrowed to a superset here;
    /// callers recheck hits with `MemoryFilter::matches`, as `MemoryBank` does.
    pub fn search_memories(
        &self,
        query: &str,
        filter: &MemoryFilter,
        limit: usize,
    ) -> Result<Vec<(MemoryId, f32)>, IndexError> {
        let f = &self.fields;
        let Some(text) = text_query(f.body, query) else {
            return Ok(Vec::new());
        };
        let mut must: Vec<Box<dyn Query>> = vec![text];
        if !filter.kinds.is_empty() {
            must.push(any_of(
                filter
                    .kinds
                    .iter()
                    .map(|k| term(f.kind, k.name()))
                    .collect(),
            ));
        }
        if let Some(a) = &filter.agent {
            must.push(term(f.agent, a));
        }
        if let Some(r) = filter.run {
            must.push(Box::new(TermQuery::new(
                Term::from_field_u64(f.run, r),
                IndexRecordOption::Basic,
            )));
        }
        if let Some(since) = filter.since {
            must.push(since_query(f, since));
        }
        if let Some(paths) = path_narrowing(f, &filter.paths) {
            must.push(paths);
        }
        let searcher = self.reader.searcher();
        let hits = run_query(&searcher, must, limit)?;
        let mut out = Vec::with_capacity(hits.len());
        for (score, addr) in hits {
            let col = searcher
                .segment_reader(addr.segment_ord)
                .fast_fields()
                .u64("mem_id")?;
            if let Some(id) = col.first(addr.doc_id) {
                out.push((id, score));
            }
        }
        Ok(out)
    }

    /// BM25 over steps, best first.
    pub fn search_steps(
        &self,
        query: &str,
        filter: &StepFilter,
        limit: usize,
    ) -> Result<Vec<StepHit>, IndexError> {
        let f = &self.fields;
        let Some(text) = text_query(f.step_body, query) else {
            return Ok(Vec::new());
        };
        let mut must: Vec<Box<dyn Query>> = vec![text];
        if let Some(r) = filter.run {
            must.push(Box::new(TermQuery::new(
                Term::from_field_u64(f.run, r),
                IndexRecordOption::Basic,
            )));
        }
        if let Some(a) = &filter.agent {
            must.push(term(f.agent, a));
        }
        if let Some(k) = &filter.kind {
            must.push(term(f.kind, k));
        }
        if let Some(since) = filter.since {
            must.push(since_query(f, since));
        }
        let searcher = self.reader.searcher();
        let hits = run_query(&searcher, must, limit)?;
        let mut out = Vec::with_capacity(hits.len());
        for (score, addr) in hits {
            let ff = searcher.segment_reader(addr.segment_ord).fast_fields();
            let (run, seq) = (ff.u64("run")?, ff.u64("seq")?);
            if let (Some(run), Some(seq)) = (run.first(addr.doc_id), seq.first(addr.doc_id)) {
                out.push(StepHit { run, seq, score });
            }
        }
        Ok(out)
    }
}

/// The most hits one index query returns, whatever the caller asks: callers that take a
/// limit from outside refuse more than they need long before this; this keeps a bad
/// limit from sizing an allocation.
pub const MAX_HITS: usize = 10_000;

/// English function words dropped from queries (documents keep them). They carry almost
/// no BM25 weight, but their posting lists are the longest in the index: at 100k
/// memories they were most of a query's time.
const QUERY_STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "did", "do", "does", "for",
    "had", "has", "have", "how", "if", "in", "into", "is", "it", "of", "on", "or", "that", "the",
    "their", "then", "there", "these", "they", "this", "to", "was", "were", "what", "when",
    "where", "which", "who", "why", "will", "with",
];

/// OR of the query's distinct terms on one text field; None when it has no terms. Stop
/// words are dropped unless the query has nothing else.
fn text_query(field: tantivy::schema::Field, query: &str) -> Option<Box<dyn Query>> {
    let mut seen = HashSet::new();
    let terms = tokenizer::tokenize(query);
    let all_stop = terms.iter().all(|t| QUERY_STOPWORDS.contains(&t.as_str()));
    let clauses: Vec<(Occur, Box<dyn Query>)> = terms
        .into_iter()
        .filter(|t| all_stop || !QUERY_STOPWORDS.contains(&t.as_str()))
        .filter(|t| seen.insert(t.clone()))
        .take(MAX_QUERY_TERMS)
        .map(|t| {
            let q: Box<dyn Query> = Box::new(TermQuery::new(
                Term::from_field_text(field, &t),
                IndexRecordOption::WithFreqs,
            ));
            (Occur::Should, q)
        })
        .collect();
    if clauses.is_empty() {
        None
    } else {
        Some(Box::new(BooleanQuery::new(clauses)))
    }
}

/// The path filter as index terms. A memory overlaps a filter path when its path is under
/// the filter's literal prefix (`path_prefix` holds that prefix), is a directory above it
/// (`path` is one of the prefix's ancestors), or is a glob (`GLOB_MARK`, a superset that
/// `MemoryFilter::matches` settles). None when a pattern has no literal prefix (`*.rs`):
/// nothing can be narrowed.
fn path_narrowing(f: &Fields, patterns: &[String]) -> Option<Box<dyn Query>> {
    if patterns.is_empty() {
        return None;
    }
    let mut qs = vec![term(f.path_prefix, schema::GLOB_MARK)];
    for p in patterns {
        let lit = filter::literal_prefix(p);
        if lit.is_empty() {
            return None;
        }
        for ancestor in schema::path_prefixes(&lit) {
            if ancestor != lit {
                qs.push(term(f.path, &ancestor));
            }
        }
        qs.push(term(f.path_prefix, &lit));
    }
    Some(any_of(qs))
}

fn term(field: tantivy::schema::Field, value: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::Basic,
    ))
}

fn any_of(qs: Vec<Box<dyn Query>>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(
        qs.into_iter().map(|q| (Occur::Should, q)).collect(),
    ))
}

fn since_query(f: &Fields, since: jiff::Timestamp) -> Box<dyn Query> {
    Box::new(RangeQuery::new(
        Bound::Included(Term::from_field_i64(f.ts, since.as_microsecond())),
        Bound::Unbounded,
    ))
}

/// The text query (first), narrowed by the filter clauses after it. Filters score zero,
/// so the order is the text's BM25; without filters the text query runs alone, which
/// keeps tantivy's top-k pruning.
fn run_query(
    searcher: &Searcher,
    must: Vec<Box<dyn Query>>,
    limit: usize,
) -> Result<Vec<(f32, tantivy::DocAddress)>, IndexError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    // TopDocs allocates its heap up front: a limit from outside must never size it.
    let collector = TopDocs::with_limit(limit.min(MAX_HITS)).order_by_score();
    let mut clauses = must.into_iter();
    let text = clauses.next().expect("the text query is always first");
    let filters: Vec<(Occur, Box<dyn Query>)> = clauses
        .map(|q| {
            let c: Box<dyn Query> = Box::new(tantivy::query::ConstScoreQuery::new(q, 0.0));
            (Occur::Must, c)
        })
        .collect();
    if filters.is_empty() {
        return Ok(searcher.search(&*text, &collector)?);
    }
    let mut all = vec![(Occur::Must, text)];
    all.extend(filters);
    Ok(searcher.search(&BooleanQuery::new(all), &collector)?)
}

#[cfg(test)]
mod tests;

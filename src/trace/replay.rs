//! Replay: the state of a run at step N, and navigation between interesting steps. Steps
//! are scanned as stored (large payloads stay blob references); only the payloads needed
//! to answer are loaded.

use std::collections::BTreeMap;

use super::{TraceError, patch};
use crate::model::{Payload, RunId, Step, StepKind};
use crate::store::Store;

/// Steps read per store call while scanning.
const CHUNK: u64 = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileContent {
    Known(String),
    Deleted,
    /// The trace does not say (an edit known only by a patch, with no earlier content to
    /// apply it to).
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileState {
    /// The last edit of the file at or before the asked step.
    pub seq: u64,
    pub content: FileContent,
}

struct Edit {
    seq: u64,
    before: Option<Payload>,
    after: Option<Payload>,
    patch: Payload,
}

/// Every file edited at or before step `seq` of `run`, with its content after its last
/// edit there.
pub fn files_at(
    store: &Store,
    run: RunId,
    seq: u64,
) -> Result<BTreeMap<String, FileState>, TraceError> {
    if store.run(run)?.is_none() {
        return Err(TraceError::RunNotFound(run));
    }
    // Pass 1: the edits of each file, as stored (payloads are small refs).
    let mut edits: BTreeMap<String, Vec<Edit>> = BTreeMap::new();
    let end = seq.saturating_add(1);
    let mut from = 0;
    while from < end {
        let to = end.min(from + CHUNK);
        let steps = store.steps(run, from, to)?;
        if steps.is_empty() {
            break;
        }
        for s in steps {
            if let StepKind::FileEdit {
                path,
                before,
                after,
                patch,
            } = s.kind
            {
                edits.entry(path).or_default().push(Edit {
                    seq: s.seq,
                    before,
                    after,
                    patch,
                });
            }
        }
        from = to;
    }
    // Pass 2: per file, start from the latest edit that states the content and apply the
    // later patches on top.
    let mut out = BTreeMap::new();
    for (path, list) in edits {
        let Some(last) = list.last() else { continue };
        let last_seq = last.seq;
        let anchor = list.iter().rposition(|e| {
            e.after.is_some() || patch::is_deletion(e.patch.preview()) || e.before.is_some()
        });
        let mut content = FileContent::Unknown;
        if let Some(i) = anchor {
            let e = &list[i];
            content = match (&e.after, &e.before) {
                (Some(a), _) => FileContent::Known(store.payload_text(a)?),
                (None, _) if patch::is_deletion(&store.payload_text(&e.patch)?) => {
                    FileContent::Deleted
                }
                (None, Some(b)) => {
                    let base = store.payload_text(b)?;
                    match patch::apply(&base, &store.payload_text(&e.patch)?) {
                        Some(t) => FileContent::Known(t),
                        None => FileContent::Unknown,
                    }
                }
                (None, None) => FileContent::Unknown,
            };
            for e in &list[i + 1..] {
                let p = store.payload_text(&e.patch)?;
                content = match content {
                    _ if patch::is_deletion(&p) => FileContent::Deleted,
                    FileContent::Known(t) => {
                        patch::apply(&t, &p).map_or(FileContent::Unknown, FileContent::Known)
                    }
                    FileContent::Deleted => {
                        patch::apply("", &p).map_or(FileContent::Unknown, FileContent::Known)
                    }
                    FileContent::Unknown => FileContent::Unknown,
                };
            }
        }
        out.insert(
            path,
            FileState {
                seq: last_seq,
                content,
            },
        );
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

/// The nearest step after (Forward) or before (Backward) `from` that satisfies `pred`.
/// Steps are given as stored: large payloads are blob references with a preview.
pub fn next_matching(
    store: &Store,
    run: RunId,
    from: u64,
    dir: Direction,
    pred: impl Fn(&Step) -> bool,
) -> Result<Option<u64>, TraceError> {
    let Some(r) = store.run(run)? else {
        return Err(TraceError::RunNotFound(run));
    };
    match dir {
        Direction::Forward => {
            let mut lo = from.saturating_add(1);
            while lo < r.steps {
                let hi = r.steps.min(lo + CHUNK);
                if let Some(s) = store.steps(run, lo, hi)?.iter().find(|s| pred(s)) {
                    return Ok(Some(s.seq));
                }
                lo = hi;
            }
        }
        Direction::Backward => {
            let mut hi = from.min(r.steps);
            while hi > 0 {
                let lo = hi.saturating_sub(CHUNK);
                if let Some(s) = store.steps(run, lo, hi)?.iter().rev().find(|s| pred(s)) {
                    return Ok(Some(s.seq));
                }
                hi = lo;
            }
        }
    }
    Ok(None)
}

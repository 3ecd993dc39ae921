//! The thread that owns tantivy's only `IndexWriter`. Commits are expensive (they write
//! segment files and fsync), so documents are batched: a commit happens when
//! `COMMIT_DOCS` are pending, when `COMMIT_INTERVAL` passes with anything pending, or on
//! an explicit flush. After each commit the shared reader is reloaded, so searches see the
//! new documents (near-real-time) without polling the directory.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tantivy::{IndexReader, IndexWriter, TantivyDocument, Term};

use super::IndexError;

/// Pending documents that force a commit. Each commit writes and fsyncs a segment that
/// later merges cost CPU to fold, so under a fleet's load (16 agents, 16,000 steps/s)
/// commits come from the interval, not from every thousand documents.
pub const COMMIT_DOCS: usize = 50_000;
/// Longest a document waits to become searchable when nobody flushes. Live views read
/// the factory's event stream, not the index, so a second costs them nothing.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(1000);

pub enum Op {
    /// Delete every document holding `delete`, then add `doc` (upsert by key).
    Upsert {
        delete: Term,
        doc: TantivyDocument,
    },
    Delete(Term),
    /// Commit what is pending and reload the reader; answer when searchable.
    Flush(Sender<Result<(), String>>),
}

pub struct WriterHandle {
    tx: Option<Sender<Vec<Op>>>,
    thread: Option<JoinHandle<()>>,
}

impl WriterHandle {
    pub fn start(writer: IndexWriter, reader: IndexReader) -> WriterHandle {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("index-writer".into())
            .spawn(move || run(writer, reader, rx))
            .expect("spawning a thread only fails when the OS is out of resources");
        WriterHandle {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn send(&self, ops: Vec<Op>) -> Result<(), IndexError> {
        self.tx
            .as_ref()
            .ok_or(IndexError::WriterGone)?
            .send(ops)
            .map_err(|_| IndexError::WriterGone)
    }

    pub fn flush(&self) -> Result<(), IndexError> {
        let (tx, rx) = mpsc::channel();
        self.send(vec![Op::Flush(tx)])?;
        rx.recv()
            .map_err(|_| IndexError::WriterGone)?
            .map_err(IndexError::Commit)
    }
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        // Closing the channel makes the thread commit what is pending and exit; joining
        // means a dropped Index leaves its documents durable and the lock released.
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(mut writer: IndexWriter, reader: IndexReader, rx: Receiver<Vec<Op>>) {
    let mut pending = 0usize;
    let mut oldest: Option<Instant> = None;
    // A commit failure is kept and given to the next flush, so a caller that needs the
    // documents searchable learns they are not.
    let mut last_error: Option<String> = None;
    let commit = |writer: &mut IndexWriter, pending: &mut usize| -> Result<(), String> {
        *pending = 0;
        writer
            .commit()
            .map_err(|e| e.to_string())
            .and_then(|_| reader.reload().map_err(|e| e.to_string()))
            .inspect_err(|e| tracing::error!("index commit failed: {e}"))
    };
    loop {
        let wait = match oldest {
            Some(t) => COMMIT_INTERVAL.saturating_sub(t.elapsed()),
            None => Duration::from_secs(3600),
        };
        match rx.recv_timeout(wait) {
            Ok(first) => {
                // Group commit: everything already queued behind this batch goes into the
                // same commit, and every flush among it is answered by that one commit.
                // Fifty writers flushing at once cost one commit, not fifty in a row.
                let mut flushes = Vec::new();
                let mut batch = Some(first);
                while let Some(ops) = batch.take().or_else(|| rx.try_recv().ok()) {
                    for op in ops {
                        match op {
                            Op::Upsert { delete, doc } => {
                                writer.delete_term(delete);
                                if let Err(e) = writer.add_document(doc) {
                                    last_error = Some(e.to_string());
                                }
                                pending += 1;
                            }
                            Op::Delete(term) => {
                                writer.delete_term(term);
                                pending += 1;
                            }
                            Op::Flush(reply) => flushes.push(reply),
                        }
                    }
                    if pending >= COMMIT_DOCS {
                        break;
                    }
                }
                if !flushes.is_empty() || pending >= COMMIT_DOCS {
                    let res = commit(&mut writer, &mut pending);
                    oldest = None;
                    if flushes.is_empty() {
                        // Nobody waits on this commit: the next flush hears of a failure.
                        if let Err(e) = res {
                            last_error = Some(e);
                        }
                    } else {
                        let res = match last_error.take() {
                            Some(e) => res.and(Err(e)),
                            None => res,
                        };
                        for reply in flushes {
                            let _ = reply.send(res.clone());
                        }
                    }
                } else if pending > 0 && oldest.is_none() {
                    oldest = Some(Instant::now());
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if pending > 0
                    && let Err(e) = commit(&mut writer, &mut pending)
                {
                    last_error = Some(e);
                }
                oldest = None;
            }
            Err(RecvTimeoutError::Disconnected) => {
                if pending > 0 {
                    let _ = commit(&mut writer, &mut pending);
                }
                let _ = writer.wait_merging_threads();
                return;
            }
        }
    }
}

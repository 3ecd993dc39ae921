//! The workspace's durable state in one redb file: tickets, runs, steps keyed by (run, seq),
//! memories and their vectors, content-addressed blobs, the merge queue, approvals and the
//! audit log. Every write goes through one writer thread that groups concurrent writes into
//! one transaction and acknowledges them only after an `Immediate` (fsynced) commit.

mod memories;
mod migrate;
mod queue;
mod tables;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::{BlobHash, BlobRef, ImportMark, Payload, Run, RunId, Step, Ticket, TicketId};
pub use migrate::SCHEMA_VERSION;
use tables::*;
use writer::Writer;

/// Payloads longer than this go to the blob table, so step records stay small and a seek
/// into a long run never loads tool output it does not show.
pub const INLINE_PAYLOAD_MAX: usize = 1024;
/// The store's in-process page cache.
const CACHE_BYTES: usize = 128 << 20;
/// Characters of a blob kept inline as its preview.
pub const PREVIEW_CHARS: usize = 240;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the store at {path} is in use by another process (a running factory?); \
         stop it or talk to it through `shopfloor` commands, which use its socket"
    )]
    Locked { path: PathBuf },
    #[error(
        "the store at {path} has schema version {found}, newer than this shopfloor ({supported}); upgrade shopfloor"
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("storage error: {0}")]
    Db(#[from] redb::Error),
    #[error("corrupt record in table `{table}`: {detail}")]
    Corrupt { table: &'static str, detail: String },
    #[error("{0}")]
    Invalid(String),
    /// The state machine refused a transition (see `model::transitions`).
    #[error("{0}")]
    Refused(crate::model::transitions::Refusal),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("the store's writer has stopped")]
    WriterGone,
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

macro_rules! db_err_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Db(e.into()) }
        }
    )*};
}
db_err_from!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::DatabaseError
);

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What an entry transition needs besides the store's own records.
#[derive(Clone)]
pub struct EntryContext {
    pub max_attempts: u32,
    /// Whether the queue is paused, asked inside the transaction.
    pub paused: Arc<dyn Fn() -> bool + Send + Sync>,
}

impl EntryContext {
    pub fn new(max_attempts: u32) -> EntryContext {
        EntryContext {
            max_attempts,
            paused: Arc::new(|| false),
        }
    }
}

/// A handle on one workspace's store. Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    writer: Arc<Writer>,
    path: PathBuf,
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("model types always serialize")
}

fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table,
        detail: e.to_string(),
    })
}

/// Allocate the next id of a counter kept in the meta table.
fn next_id(tx: &WriteTransaction, counter: &str) -> Result<u64> {
    let mut meta = tx.open_table(META)?;
    let next = match meta.get(counter)? {
        Some(v) => u64::from_le_bytes(v.value().try_into().map_err(|_| StoreError::Corrupt {
            table: "meta",
            detail: format!("counter {counter}"),
        })?),
        None => 1,
    };
    meta.insert(counter, (next + 1).to_le_bytes().as_slice())?;
    Ok(next)
}

/// Keep a large payload in the blob table and leave a reference in its place.
fn externalize(tx: &WriteTransaction, payload: &mut Payload) -> Result<()> {
    if let Payload::Text(text) = payload
        && text.len() > INLINE_PAYLOAD_MAX
    {
        let blob = put_blob_tx(tx, text.as_bytes())?;
        *payload = Payload::Blob(blob);
    }
    Ok(())
}

fn preview_of(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(PREVIEW_CHARS * 4)]);
    text.chars().take(PREVIEW_CHARS).collect()
}

fn put_blob_tx(tx: &WriteTransaction, bytes: &[u8]) -> Result<BlobRef> {
    let hash = BlobHash::of(bytes);
    let mut blobs = tx.open_table(BLOBS)?;
    if blobs.get(&hash.0)?.is_none() {
        blobs.insert(&hash.0, bytes)?;
    }
    Ok(BlobRef {
        blob: hash,
        len: bytes.len() as u64,
        preview: preview_of(bytes),
    })
}

fn run_in(runs: &impl ReadableTable<u64, &'static [u8]>, id: RunId) -> Result<Run> {
    match runs.get(id)? {
        Some(v) => decode("runs", v.value()),
        None => Err(StoreError::NotFound {
            what: "run",
            id: id.to_string(),
        }),
    }
}

fn update_run_tx(tx: &WriteTransaction, id: RunId, f: &mut dyn FnMut(&mut Run)) -> Result<Run> {
    let mut t = tx.open_table(RUNS)?;
    let mut run = run_in(&t, id)?;
    f(&mut run);
    t.insert(id, encode(&run).as_slice())?;
    Ok(run)
}

/// See [`Store::append_steps`]; returns the run's step count after the append.
fn append_steps_tx(tx: &WriteTransaction, run: RunId, steps: &[Step]) -> Result<u64> {
    let mut runs = tx.open_table(RUNS)?;
    let mut r = run_in(&runs, run)?;
    let mut table = tx.open_table(STEPS)?;
    for (i, step) in steps.iter().enumerate() {
        let expected = r.steps + i as u64;
        if step.run != run || step.seq != expected {
            return Err(StoreError::Invalid(format!(
                "step out of order for run {run}: got run {} seq {}, expected seq {expected}",
                step.run, step.seq
            )));
        }
        let mut step = step.clone();
        for p in step.kind.payloads_mut() {
            externalize(tx, p)?;
        }
        table.insert((run, step.seq), encode(&step).as_slice())?;
    }
    r.steps += steps.len() as u64;
    runs.insert(run, encode(&r).as_slice())?;
    Ok(r.steps)
}

impl Store {
    /// Open (creating if needed) the store at `path`, migrating an older schema in place.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        // redb caches up to 1 GiB by default, so a factory's memory would grow with every
        // step it writes; the OS page cache already keeps hot pages, so a bounded cache
        // keeps the factory's memory flat at no visible cost to seeks.
        let db = match Database::builder().set_cache_size(CACHE_BYTES).create(path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::Locked {
                    path: path.to_path_buf(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        migrate::migrate(&db, path)?;
        let db = Arc::new(db);
        let writer = Arc::new(Writer::start(db.clone()));
        Ok(Store {
            db,
            writer,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` inside the shared write transaction; returns once its batch is durable.
    /// `f` may be called more than once if another write in its batch fails, so it must
    /// not move out of what it captures.
    pub fn write<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<R> + Send + 'static,
    {
        self.writer.submit(f)
    }

    fn read(&self) -> Result<ReadTransaction> {
        Ok(self.db.begin_read()?)
    }

    pub fn schema_version(&self) -> Result<u32> {
        let tx = self.read()?;
        migrate::read_version(&tx)
    }

    // ---- blobs ----

    pub fn put_blob(&self, bytes: Vec<u8>) -> Result<BlobRef> {
        self.write(move |tx| put_blob_tx(tx, &bytes))
    }

    pub fn blob(&self, hash: &BlobHash) -> Result<Option<Vec<u8>>> {
        let tx = self.read()?;
        let table = tx.open_table(BLOBS)?;
        Ok(table.get(&hash.0)?.map(|v| v.value().to_vec()))
    }

    /// The whole text of a payload, loading its blob if it has one.
    pub fn payload_text(&self, payload: &Payload) -> Result<String> {
        match payload {
            Payload::Text(s) => Ok(s.clone()),
            Payload::Blob(b) => {
                let bytes = self.blob(&b.blob)?.ok_or_else(|| StoreError::NotFound {
                    what: "blob",
                    id: b.blob.to_hex(),
                })?;
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            }
        }
    }

    /// Bring every blob of a step back inline (for export and full views).
    pub fn inline_step(&self, step: &mut Step) -> Result<()> {
        for p in step.kind.payloads_mut() {
            if p.is_blob() {
                *p = Payload::Text(self.payload_text(p)?);
            }
        }
        Ok(())
    }

    // ---- runs and steps ----

    /// Create a run; `id` and `steps` of the given value are ignored.
    pub fn create_run(&self, run: Run) -> Result<Run> {
        self.write(move |tx| {
            let mut run = run.clone();
            run.id = next_id(tx, "next_run")?;
            run.steps = 0;
            tx.open_table(RUNS)?
                .insert(run.id, encode(&run).as_slice())?;
            Ok(run)
        })
    }

    pub fn run(&self, id: RunId) -> Result<Option<Run>> {
        let tx = self.read()?;
        let t = tx.open_table(RUNS)?;
        t.get(id)?.map(|v| decode("runs", v.value())).transpose()
    }

    /// Runs started at or after `since`, newest last: what a day has cost, without reading
    /// every run the workspace ever had (the scheduler asks on each pass). The factory's
    /// runs take ids in the order they are stamped, so the scan goes newest first and
    /// stops at the first of them stamped over an hour before `since`; the hour covers runs
    /// stamped and stored in a different order, and clock steps. Imported runs keep their
    /// own times in any order: they count when in range and never end the scan.
    pub fn runs_started_since(&self, since: Timestamp) -> Result<Vec<Run>> {
        let stop = since
            .checked_sub(jiff::SignedDuration::from_hours(1))
            .unwrap_or(Timestamp::MIN);
        let tx = self.read()?;
        let t = tx.open_table(RUNS)?;
        let mut out = Vec::new();
        for row in t.iter()?.rev() {
            let (_, v) = row?;
            let run: Run = decode("runs", v.value())?;
            if run.started >= since {
                out.push(run);
            } else if run.sandbox.is_some() && run.started < stop {
                break;
            }
        }
        out.reverse();
        Ok(out)
    }

    /// The newest run `pred` accepts, scanning from the newest: a live session's run is
    /// found among the last few, not after reading every run ever stored.
    pub fn newest_run_where(&self, pred: impl Fn(&Run) -> bool) -> Result<Option<Run>> {
        let tx = self.read()?;
        let t = tx.open_table(RUNS)?;
        for row in t.iter()?.rev() {
            let (_, v) = row?;
            let run: Run = decode("runs", v.value())?;
            if pred(&run) {
                return Ok(Some(run));
            }
        }
        Ok(None)
    }

    /// The runs with these ids that exist, read in one transaction.
    pub fn runs_by_id(&self, ids: &[RunId]) -> Result<Vec<Run>> {
        let tx = self.read()?;
        let t = tx.open_table(RUNS)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(v) = t.get(*id)? {
                out.push(decode("runs", v.value())?);
            }
        }
        Ok(out)
    }

    /// How `ticket`'s finished runs count against its limits (see [`Attempts`]), read in one
    /// transaction.
    pub fn attempts(&self, ticket: &Ticket) -> Result<crate::model::Attempts> {
        let runs = self.runs_by_id(&ticket.runs)?;
        Ok(crate::model::Attempts::of(
            runs.into_iter().map(|r| r.state),
        ))
    }

    pub fn runs(&self) -> Result<Vec<Run>> {
        let tx = self.read()?;
        let t = tx.open_table(RUNS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (_, v) = row?;
            out.push(decode("runs", v.value())?);
        }
        Ok(out)
    }

    /// Change a run in place; returns the updated run.
    pub fn update_run<F>(&self, id: RunId, f: F) -> Result<Run>
    where
        F: FnMut(&mut Run) + Send + 'static,
    {
        let f = std::sync::Mutex::new(f);
        self.write(move |tx| {
            update_run_tx(tx, id, &mut *f.lock().expect("update closure panicked"))
        })
    }

    /// Append steps to a run. Their `seq` must continue the run's sequence exactly (the
    /// first is the run's current step count), which catches a producer that lost or
    /// repeated steps. Large payloads move to the blob table. Durable on return.
    pub fn append_steps(&self, run: RunId, steps: Vec<Step>) -> Result<u64> {
        if steps.is_empty() {
            return self.run(run)?.map(|r| r.steps).ok_or(StoreError::NotFound {
                what: "run",
                id: run.to_string(),
            });
        }
        self.write(move |tx| append_steps_tx(tx, run, &steps))
    }

    // ---- imports in progress ----

    /// Create the run of an import and mark it in progress, in one transaction.
    pub fn begin_import(&self, run: Run, mark: ImportMark) -> Result<Run> {
        self.write(move |tx| {
            let mut run = run.clone();
            run.id = next_id(tx, "next_run")?;
            run.steps = 0;
            tx.open_table(RUNS)?
                .insert(run.id, encode(&run).as_slice())?;
            tx.open_table(IMPORTS)?
                .insert(run.id, encode(&mark).as_slice())?;
            Ok(run)
        })
    }

    /// Append a batch of an import's steps and move its mark to where they end, in one
    /// transaction: what the mark says was read is exactly what is stored.
    pub fn append_import_steps(
        &self,
        run: RunId,
        steps: Vec<Step>,
        mark: ImportMark,
    ) -> Result<u64> {
        self.write(move |tx| {
            let steps = append_steps_tx(tx, run, &steps)?;
            tx.open_table(IMPORTS)?
                .insert(run, encode(&mark).as_slice())?;
            Ok(steps)
        })
    }

    /// Store an import's last steps, change its run (state, usage, ...) and drop its mark,
    /// in one transaction: a run is never complete without all its steps, nor the reverse.
    pub fn finish_import<F>(&self, run: RunId, steps: Vec<Step>, f: F) -> Result<Run>
    where
        F: FnMut(&mut Run) + Send + 'static,
    {
        let f = std::sync::Mutex::new(f);
        self.write(move |tx| {
            append_steps_tx(tx, run, &steps)?;
            tx.open_table(IMPORTS)?.remove(run)?;
            update_run_tx(tx, run, &mut *f.lock().expect("update closure panicked"))
        })
    }

    /// Every import in progress (or cut short), oldest run first.
    pub fn import_marks(&self) -> Result<Vec<(RunId, ImportMark)>> {
        let tx = self.read()?;
        let t = tx.open_table(IMPORTS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push((k.value(), decode("imports", v.value())?));
        }
        Ok(out)
    }

    /// One step, as stored (large payloads are blob references).
    pub fn step(&self, run: RunId, seq: u64) -> Result<Option<Step>> {
        let tx = self.read()?;
        let t = tx.open_table(STEPS)?;
        t.get((run, seq))?
            .map(|v| decode("steps", v.value()))
            .transpose()
    }

    /// Steps `from..to` of a run (clamped to what exists), in order.
    pub fn steps(&self, run: RunId, from: u64, to: u64) -> Result<Vec<Step>> {
        let tx = self.read()?;
        let t = tx.open_table(STEPS)?;
        let mut out = Vec::new();
        for row in t.range((run, from)..(run, to))? {
            let (_, v) = row?;
            out.push(decode("steps", v.value())?);
        }
        Ok(out)
    }

    /// Visit every step of a run in order without holding them all in memory.
    pub fn for_each_step(&self, run: RunId, f: impl FnMut(Step) -> Result<()>) -> Result<()> {
        self.for_each_step_in(run, 0, u64::MAX, f)
    }

    /// Visit steps `from..to` of a run (clamped to what exists) in order, one at a time.
    pub fn for_each_step_in(
        &self,
        run: RunId,
        from: u64,
        to: u64,
        mut f: impl FnMut(Step) -> Result<()>,
    ) -> Result<()> {
        let tx = self.read()?;
        let t = tx.open_table(STEPS)?;
        for row in t.range((run, from)..(run, to.max(from)))? {
            let (_, v) = row?;
            f(decode("steps", v.value())?)?;
        }
        Ok(())
    }

    // ---- tickets ----

    /// Add a ticket; its `id` is assigned here.
    pub fn add_ticket(&self, ticket: Ticket) -> Result<Ticket> {
        self.write(move |tx| {
            let mut t = ticket.clone();
            t.id = next_id(tx, "next_ticket")?;
            tx.open_table(TICKETS)?
                .insert(t.id, encode(&t).as_slice())?;
            Ok(t)
        })
    }

    pub fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        let tx = self.read()?;
        let t = tx.open_table(TICKETS)?;
        t.get(id)?.map(|v| decode("tickets", v.value())).transpose()
    }

    pub fn tickets(&self) -> Result<Vec<Ticket>> {
        let tx = self.read()?;
        let t = tx.open_table(TICKETS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (_, v) = row?;
            out.push(decode("tickets", v.value())?);
        }
        Ok(out)
    }

    /// Change a ticket in place. `f` returns an error to refuse the change (e.g. cancelling
    /// a merged ticket); nothing is written then.
    pub fn update_ticket<F>(&self, id: TicketId, f: F) -> Result<Ticket>
    where
        F: FnMut(&mut Ticket) -> Result<()> + Send + 'static,
    {
        let f = std::sync::Mutex::new(f);
        self.write(move |tx| {
            let mut t = tx.open_table(TICKETS)?;
            let mut ticket: Ticket = match t.get(id)? {
                Some(v) => decode("tickets", v.value())?,
                None => {
                    return Err(StoreError::NotFound {
                        what: "ticket",
                        id: id.to_string(),
                    });
                }
            };
            (f.lock().expect("update closure panicked"))(&mut ticket)?;
            ticket.updated = jiff::Timestamp::now();
            t.insert(id, encode(&ticket).as_slice())?;
            Ok(ticket)
        })
    }
}

#[cfg(test)]
mod tests;

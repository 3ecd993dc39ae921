//! Agent traces: importers (one streaming parser per format), the builder that turns their
//! drafts into a run's steps, import into the store, export as JSONL or OpenTelemetry spans,
//! and replay.

pub mod builder;
pub mod decode;
pub mod detail;
pub mod digest;
pub mod export;
pub mod import;
pub mod ingest;
pub mod otel;
pub mod patch;
pub mod replay;
pub mod tally;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};

use std::path::Path;

use jiff::Timestamp;

pub use builder::TraceBuilder;
pub use export::{ExportFormat, export_jsonl};
pub use import::{Draft, Format, MAX_LINE_BYTES, TraceParser, parser};
pub use ingest::{Ingest, LineRead, LineReader, MAX_RAW_LINE_BYTES};
pub use replay::{Direction, FileContent, FileState, files_at, next_matching};
pub use tally::Tally;

use crate::model::{BlobHash, ImportMark, Payload, Run, RunId, RunState, Step, StepKind};
use crate::redact::Redactor;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error(
        "no trace file at {path}: check the path (Claude Code keeps transcripts under ~/.claude/projects/<dir>/<session>.jsonl, Codex under ~/.codex/sessions/)"
    )]
    NotFound { path: String },
    #[error("{path} is a directory: pass one trace file inside it (a .jsonl file)")]
    IsDirectory { path: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "could not write the export: {0}; check that the destination is writable and has space"
    )]
    Write(#[source] std::io::Error),
    #[error("run {0} not found; `shopfloor trace list` shows the runs")]
    RunNotFound(RunId),
    #[error(
        "{path} is {kind}, not a file: reading it could wait forever for a writer; save the log to a file first and import that file"
    )]
    NotAFile { path: String, kind: &'static str },
    #[error(
        "{path} is being imported right now; wait for that import to end (`shopfloor run list` shows its run as partial-import)"
    )]
    Busy { path: String },
    #[error(
        "cannot resume run {run} from {path}: {why}; nothing was added to it. Import a copy of the file under another name to make a new run"
    )]
    CannotResume {
        path: String,
        run: RunId,
        why: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct ImportOptions {
    pub format: Format,
    /// The run's agent; None takes the format's (e.g. `claude-code`).
    pub agent: Option<String>,
    pub redactor: Redactor,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportReport {
    pub run: RunId,
    /// Lines read, blank ones included.
    pub lines: u64,
    /// Blank lines (nothing to record).
    pub blank: u64,
    /// Lines that produced at least one step. Every line is accounted for:
    /// `lines == lines_with_steps + blank`.
    pub lines_with_steps: u64,
    pub steps: u64,
    pub raw: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    /// Problems (malformed or oversized lines, invalid UTF-8...), each naming its line.
    pub warnings: Vec<String>,
    /// When this import resumed a partial import of the same file: the steps its run
    /// already held (the counts above are the whole run's).
    pub resumed: Option<u64>,
}

/// Steps are appended in batches of this many (or fewer when their payloads are large).
pub const BATCH_STEPS: usize = 4096;
const BATCH_BYTES: u64 = 32 << 20;
/// Payloads larger than this go to the blob table as soon as their step is built, so a huge
/// line is moved, never copied, on its way to disk.
const EAGER_BLOB_BYTES: usize = 1 << 20;
const MAX_WARNINGS: usize = 1000;
/// Lines read to guess a file's format, and the bytes of each kept for it.
const DETECT_LINES: usize = 20;
const DETECT_LINE_BYTES: usize = 64 << 10;

/// The outcome a run shows while its import has not stored its last step.
fn partial_outcome(resumable: bool) -> String {
    let how = if resumable {
        "importing the same file again resumes it"
    } else {
        "it was read from a stream, so import the whole log again"
    };
    format!(
        "partial import: its source was not read to the end (the import is still going, or it stopped); {how}"
    )
}

/// Open `path` for an import: a regular file, or a clear error. Never blocks: a FIFO, a
/// socket or a device is refused before it is opened, and the open itself is
/// non-blocking, so a path swapped for a FIFO after the check cannot hang it either.
/// Returns the file and its length at open.
fn open_regular(path: &Path) -> Result<(std::fs::File, u64), TraceError> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let name = path.display().to_string();
    let read_err = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => TraceError::NotFound { path: name.clone() },
        _ => TraceError::Read {
            path: name.clone(),
            source,
        },
    };
    let refuse = |meta: &std::fs::Metadata| {
        let t = meta.file_type();
        let kind = if t.is_dir() {
            return Err(TraceError::IsDirectory { path: name.clone() });
        } else if t.is_fifo() {
            "a FIFO (named pipe)"
        } else if t.is_socket() {
            "a socket"
        } else if t.is_char_device() {
            "a character device"
        } else if t.is_block_device() {
            "a block device"
        } else {
            return Ok(());
        };
        Err(TraceError::NotAFile {
            path: name.clone(),
            kind,
        })
    };
    refuse(&std::fs::metadata(path).map_err(read_err)?)?;
    // O_NONBLOCK changes nothing for reading a regular file.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    refuse(&meta)?;
    Ok((file, meta.len()))
}

/// Guess the format of a trace file from its first lines (None when no line tells). Reads
/// a bounded amount whatever the file holds.
pub fn detect_file(path: &Path) -> Result<Option<Format>, TraceError> {
    let (file, _) = open_regular(path)?;
    let mut reader = LineReader::new(BufReader::new(file));
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    while lines.len() < DETECT_LINES {
        match reader.read_line(&mut buf, DETECT_LINE_BYTES) {
            Ok(Some(_)) => lines.push(std::mem::take(&mut buf)),
            Ok(None) => break,
            Err(source) => {
                return Err(TraceError::Read {
                    path: path.display().to_string(),
                    source,
                });
            }
        }
    }
    Ok(Format::detect(lines.iter().map(Vec::as_slice)))
}

/// Files being imported in this process right now, each with the store it goes to: a
/// second import of the same file into the same store is refused while the first runs,
/// rather than resuming a run that is still being written. (Another process cannot hold
/// the same store: its file is locked.)
static IMPORTING: std::sync::Mutex<std::collections::BTreeSet<String>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

struct Claim(String);

impl Claim {
    fn take(key: &str, name: &str) -> Result<Claim, TraceError> {
        let mut set = IMPORTING.lock().unwrap_or_else(|p| p.into_inner());
        if !set.insert(key.to_string()) {
            return Err(TraceError::Busy {
                path: name.to_string(),
            });
        }
        Ok(Claim(key.to_string()))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        IMPORTING
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.0);
    }
}

/// Import a trace file as a new run of `store`; `after_append` sees each batch of steps
/// once it is durable (the caller indexes them).
///
/// A partial import of the same file (same path, format and agent; a run that was killed
/// before its last step was stored) is resumed instead, when the file still starts with
/// the bytes its stored steps were made from: the file is parsed again from the start (a
/// parser pairs results with calls made anywhere before), the steps already stored are
/// passed over, the rest appended, and the run ends complete. Only the bytes the file held
/// when the import began are read, so a log that keeps growing cannot keep it going.
pub fn import_file(
    store: &Store,
    path: &Path,
    opts: &ImportOptions,
    after_append: &mut dyn FnMut(&[Step]),
) -> Result<ImportReport, TraceError> {
    use std::io::{Read, Seek};
    let name = path.display().to_string();
    let (mut file, len) = open_regular(path)?;
    let read_err = |source| TraceError::Read {
        path: name.clone(),
        source,
    };
    let key = std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .to_string_lossy()
        .into_owned();
    let _claim = Claim::take(&format!("{}\0{key}", store.path().display()), &name)?;
    let mut notes = Vec::new();
    let mut resume = None;
    let format = opts.format.name();
    let partial = store.import_marks()?.into_iter().rev().find(|(_, m)| {
        m.path.as_deref() == Some(key.as_str()) && m.format == format && m.agent == opts.agent
    });
    if let Some((id, mark)) = partial
        && let Some(run) = store.run(id)?
    {
        let mut hasher = blake3::Hasher::new();
        let n = std::io::copy(&mut (&mut file).take(mark.read), &mut hasher).map_err(read_err)?;
        if n == mark.read && BlobHash(*hasher.finalize().as_bytes()) == mark.hash {
            notes.push(format!(
                "run {id} was a partial import of this file ({} steps stored before it stopped); resumed it rather than starting a new run",
                run.steps
            ));
            resume = Some((run, mark));
        } else {
            notes.push(format!(
                "run {id} is a partial import of this path, but the file no longer starts with the {} bytes that run was made from; imported it as a new run",
                mark.read
            ));
        }
        file.rewind().map_err(read_err)?;
    }
    let source = Source {
        name: &name,
        path: Some(key.clone()),
    };
    import_stream(
        store,
        BufReader::with_capacity(1 << 20, file.take(len)),
        &source,
        opts,
        resume,
        notes,
        after_append,
    )
}

/// Import a trace read from `reader` as a new run; `source_name` names it in the run and in
/// errors. A stream cannot be read again, so a killed import of one is not resumable.
pub fn import_reader(
    store: &Store,
    reader: impl BufRead,
    source_name: &str,
    opts: &ImportOptions,
    after_append: &mut dyn FnMut(&[Step]),
) -> Result<ImportReport, TraceError> {
    let source = Source {
        name: source_name,
        path: None,
    };
    import_stream(store, reader, &source, opts, None, Vec::new(), after_append)
}

struct Source<'a> {
    /// How the run and errors name it.
    name: &'a str,
    /// The canonical path of a file (what a resumed import is matched by).
    path: Option<String>,
}

/// An import's report beside the run's tally.
struct ImportTally {
    report: ImportReport,
    run: Tally,
    first_agent: Option<String>,
}

impl ImportTally {
    fn line(&mut self, read: LineRead) {
        let r = &mut self.report;
        match read {
            LineRead::Blank => {
                r.lines += 1;
                r.blank += 1;
            }
            LineRead::Line { .. } => {
                r.lines += 1;
                r.lines_with_steps += 1;
            }
            LineRead::End => {}
        }
    }

    fn count(&mut self, step: &Step) {
        let r = &mut self.report;
        r.steps += 1;
        *r.by_kind.entry(step.kind.name()).or_default() += 1;
        if self.first_agent.is_none() {
            self.first_agent = Some(step.agent.clone());
        }
        self.run.add(step);
        if let StepKind::Raw { reason, .. } = &step.kind {
            r.raw += 1;
            if import::is_problem(reason) {
                if r.warnings.len() < MAX_WARNINGS {
                    r.warnings.push(reason.clone());
                } else if r.warnings.len() == MAX_WARNINGS {
                    r.warnings
                        .push("more problems not listed; see the run's raw steps".into());
                }
            }
        }
    }
}

/// The import loop: `resume` is a partial run of the same source and its mark, whose
/// stored steps are passed over; `notes` head the report's warnings.
fn import_stream(
    store: &Store,
    reader: impl BufRead,
    source: &Source,
    opts: &ImportOptions,
    resume: Option<(Run, ImportMark)>,
    notes: Vec<String>,
    after_append: &mut dyn FnMut(&[Step]),
) -> Result<ImportReport, TraceError> {
    let agent = opts
        .agent
        .clone()
        .unwrap_or_else(|| opts.format.default_agent().to_string());
    let now = Timestamp::now();
    let mark_at = |read: u64, hash: BlobHash| ImportMark {
        path: source.path.clone(),
        format: opts.format.name().to_string(),
        agent: opts.agent.clone(),
        read,
        hash,
    };
    let (run, stored, mut unverified) = match resume {
        Some((run, mark)) => {
            let stored = run.steps;
            (run, stored, Some(mark))
        }
        None => {
            let run = store.begin_import(
                Run {
                    source: format!("{} ({})", source.name, opts.format),
                    outcome: Some(partial_outcome(source.path.is_some())),
                    ..Run::new(agent.clone(), RunState::PartialImport, now)
                },
                mark_at(0, BlobHash::of(b"")),
            )?;
            (run, 0, None)
        }
    };
    let cannot_resume = |why: String| TraceError::CannotResume {
        path: source.name.to_string(),
        run: run.id,
        why,
    };
    // The stored steps of a resumed run go to `after_append` again: the index may have
    // lost the last of them with the process that was killed (indexing replaces a step's
    // document, so the others are unchanged).
    let mut from = 0;
    while from < stored {
        let to = (from + BATCH_STEPS as u64).min(stored);
        after_append(&store.steps(run.id, from, to)?);
        from = to;
    }

    let builder = TraceBuilder::new(run.id, 0, agent, opts.redactor.clone());
    let mut ingest = Ingest::new(LineReader::hashed(reader), opts.format, builder);
    let mut tally = ImportTally {
        report: ImportReport {
            run: run.id,
            warnings: notes,
            resumed: unverified.as_ref().map(|_| stored),
            ..ImportReport::default()
        },
        run: Tally::default(),
        first_agent: None,
    };
    let mut batch: Vec<Step> = Vec::new();
    let mut batch_bytes: u64 = 0;
    let mut line_steps: Vec<Step> = Vec::new();
    loop {
        // A resumed import goes on only from exactly where the stored steps end, and only
        // if the file up to there is the one they were made from.
        if let Some(m) = &unverified
            && ingest.read() >= m.read
        {
            if ingest.read() != m.read || ingest.hash() != m.hash {
                return Err(cannot_resume(
                    "the file changed while it was read: it no longer starts with what the run holds".into(),
                ));
            }
            if ingest.next_seq() != stored {
                return Err(cannot_resume(format!(
                    "the run holds {stored} steps for the first {} bytes, but this shopfloor makes {} of them (its importer changed)",
                    m.read,
                    ingest.next_seq()
                )));
            }
            unverified = None;
        }
        let read = ingest.next(&mut line_steps).map_err(|e| TraceError::Read {
            path: source.name.to_string(),
            source: e,
        })?;
        let Some(read) = read else { break };
        tally.line(read);
        for mut step in line_steps.drain(..) {
            tally.count(&step);
            if step.seq < stored {
                continue;
            }
            if unverified.is_some() {
                return Err(cannot_resume(
                    "the file makes more steps before the point the run stopped at than the run holds".into(),
                ));
            }
            for p in step.kind.payloads_mut() {
                if let Payload::Text(t) = p
                    && t.len() > EAGER_BLOB_BYTES
                {
                    *p = Payload::Blob(store.put_blob(std::mem::take(t).into_bytes())?);
                }
            }
            batch_bytes += step_bytes(&step);
            batch.push(step);
        }
        if read != LineRead::End && (batch.len() >= BATCH_STEPS || batch_bytes >= BATCH_BYTES) {
            let steps = std::mem::take(&mut batch);
            batch_bytes = 0;
            store.append_import_steps(
                run.id,
                steps.clone(),
                mark_at(ingest.read(), ingest.hash()),
            )?;
            after_append(&steps);
        }
    }
    if unverified.is_some() {
        return Err(cannot_resume(
            "the file ended before the point the run stopped at".into(),
        ));
    }

    let ImportTally {
        report,
        run:
            Tally {
                usage,
                files,
                first_ts,
                last_ts,
                ..
            },
        first_agent,
    } = tally;
    // A generic JSONL trace names its agent on its steps; a format's default name is a
    // poorer label than that.
    let run_agent = match (&opts.agent, opts.format, first_agent) {
        (None, Format::Jsonl, Some(a)) => Some(a),
        _ => None,
    };
    let started = first_ts.unwrap_or(now);
    let ended = last_ts.unwrap_or(now);
    store.finish_import(run.id, batch.clone(), move |r| {
        r.state = RunState::Imported;
        r.outcome = None;
        r.started = started;
        r.ended = Some(ended);
        r.usage = usage.clone();
        r.files_changed = files.clone();
        if let Some(a) = &run_agent {
            r.agent = a.clone();
        }
    })?;
    after_append(&batch);
    Ok(report)
}

/// Payload bytes of a step (without cloning it: payloads can be tens of megabytes).
fn step_bytes(step: &Step) -> u64 {
    let opt = |p: &Option<Payload>| p.as_ref().map_or(0, Payload::len);
    match &step.kind {
        StepKind::UserMessage { text }
        | StepKind::AgentMessage { text }
        | StepKind::Thinking { text }
        | StepKind::Decision { text } => text.len(),
        StepKind::ToolCall { input, .. } => input.len(),
        StepKind::ToolResult { output, .. } | StepKind::Command { output, .. } => output.len(),
        StepKind::FileEdit {
            before,
            after,
            patch,
            ..
        } => patch.len() + opt(before) + opt(after),
        StepKind::Error { message } => message.len(),
        StepKind::Raw { data, .. } => data.len(),
        StepKind::Lifecycle { .. } => 0,
    }
}

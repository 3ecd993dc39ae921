//! Agent traces: importers (one streaming parser per format), the builder that turns their
//! drafts into a run's steps, import into the store, export as JSONL, and replay.

pub mod builder;
pub mod export;
pub mod import;
pub mod patch;
pub mod replay;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

use jiff::Timestamp;

pub use builder::TraceBuilder;
pub use export::export_jsonl;
pub use import::{Draft, Format, MAX_LINE_BYTES, TraceParser, parser};
pub use replay::{Direction, FileContent, FileState, files_at, next_matching};

use crate::model::{Lifecycle, Payload, Run, RunId, RunState, Step, StepKind, Usage};
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
}

/// Steps are appended in batches of this many (or fewer when their payloads are large).
pub const BATCH_STEPS: usize = 4096;
const BATCH_BYTES: u64 = 32 << 20;
/// Payloads larger than this go to the blob table as soon as their step is built, so a huge
/// line is moved, never copied, on its way to disk.
const EAGER_BLOB_BYTES: usize = 1 << 20;
/// A line longer than this is cut here: beyond it even a blob is not worth the memory.
pub const MAX_RAW_LINE_BYTES: usize = 256 << 20;
const MAX_WARNINGS: usize = 1000;

/// Import a trace file into a new run of `store`; `after_append` sees each batch of steps
/// once it is durable (the caller indexes them).
pub fn import_file(
    store: &Store,
    path: &Path,
    opts: &ImportOptions,
    after_append: &mut dyn FnMut(&[Step]),
) -> Result<ImportReport, TraceError> {
    let name = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => TraceError::NotFound { path: name.clone() },
        _ => TraceError::Read {
            path: name.clone(),
            source: e,
        },
    })?;
    if meta.is_dir() {
        return Err(TraceError::IsDirectory { path: name });
    }
    let file = std::fs::File::open(path).map_err(|source| TraceError::Read {
        path: name.clone(),
        source,
    })?;
    import_reader(
        store,
        BufReader::with_capacity(1 << 20, file),
        &name,
        opts,
        after_append,
    )
}

/// Read one line into `buf` (without its `\n`), keeping at most `MAX_RAW_LINE_BYTES`.
/// Returns None at the end of input, else the line's full length.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<u64>> {
    buf.clear();
    let mut total: u64 = 0;
    let mut any = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(any.then_some(total));
        }
        any = true;
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], true),
            None => (chunk, false),
        };
        let room = MAX_RAW_LINE_BYTES.saturating_sub(buf.len());
        buf.extend_from_slice(&part[..part.len().min(room)]);
        total += part.len() as u64;
        let used = part.len() + usize::from(done);
        reader.consume(used);
        if done {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Some(total));
        }
    }
}

struct Tally {
    report: ImportReport,
    usage: Usage,
    files: Vec<String>,
    first_ts: Option<Timestamp>,
    last_ts: Option<Timestamp>,
    first_agent: Option<String>,
}

impl Tally {
    fn count(&mut self, step: &Step) {
        let r = &mut self.report;
        r.steps += 1;
        *r.by_kind.entry(step.kind.name()).or_default() += 1;
        self.first_ts.get_or_insert(step.ts);
        if self.first_agent.is_none() {
            self.first_agent = Some(step.agent.clone());
        }
        self.last_ts = Some(step.ts);
        match &step.kind {
            StepKind::Raw { reason, .. } => {
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
            StepKind::Lifecycle {
                event: Lifecycle::Usage(u),
            } => {
                let t = &mut self.usage;
                t.add_spend(u);
                if let Some(n) = u.turns {
                    t.turns = Some(t.turns.unwrap_or(0) + n);
                }
            }
            StepKind::FileEdit { path, .. } if !self.files.contains(path) => {
                self.files.push(path.clone())
            }
            _ => {}
        }
    }
}

/// Import a trace read from `reader`; `source_name` names it in the run and in errors.
pub fn import_reader(
    store: &Store,
    mut reader: impl BufRead,
    source_name: &str,
    opts: &ImportOptions,
    after_append: &mut dyn FnMut(&[Step]),
) -> Result<ImportReport, TraceError> {
    let agent = opts
        .agent
        .clone()
        .unwrap_or_else(|| opts.format.default_agent().to_string());
    let now = Timestamp::now();
    let run = store.create_run(Run {
        id: 0,
        ticket: None,
        agent: agent.clone(),
        state: RunState::Imported,
        started: now,
        ended: None,
        steps: 0,
        source: format!("{source_name} ({})", opts.format),
        attempt: 0,
        branch: None,
        usage: Usage::default(),
        files_changed: Vec::new(),
        sandbox: None,
        outcome: None,
    })?;
    let mut parser = import::parser(opts.format);
    let mut builder = TraceBuilder::new(run.id, 0, agent, opts.redactor.clone());
    let mut tally = Tally {
        report: ImportReport {
            run: run.id,
            ..ImportReport::default()
        },
        usage: Usage::default(),
        files: Vec::new(),
        first_ts: None,
        last_ts: None,
        first_agent: None,
    };
    let mut batch: Vec<Step> = Vec::new();
    let mut batch_bytes: u64 = 0;
    let mut drafts: Vec<Draft> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();

    let mut flush = |batch: &mut Vec<Step>, batch_bytes: &mut u64| -> Result<(), TraceError> {
        if batch.is_empty() {
            return Ok(());
        }
        let steps = std::mem::take(batch);
        *batch_bytes = 0;
        store.append_steps(run.id, steps.clone())?;
        after_append(&steps);
        Ok(())
    };

    let mut line_no: u64 = 0;
    loop {
        let full_len = read_line(&mut reader, &mut buf).map_err(|source| TraceError::Read {
            path: source_name.to_string(),
            source,
        })?;
        let Some(full_len) = full_len else { break };
        line_no += 1;
        tally.report.lines += 1;
        if buf.iter().all(u8::is_ascii_whitespace) {
            tally.report.blank += 1;
            continue;
        }
        drafts.clear();
        if buf.len() > MAX_LINE_BYTES {
            // Not parsed: the bytes move into the step as they are (no second copy when
            // they are valid UTF-8) and the store keeps them as a blob.
            let bytes = std::mem::take(&mut buf);
            let kept = bytes.len() as u64;
            let data = String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            let cut = if kept < full_len {
                format!("; only its first {kept} bytes were kept")
            } else {
                String::new()
            };
            drafts.push(Draft::new(StepKind::Raw {
                line: Some(line_no),
                reason: import::problem(
                    line_no,
                    format!("line of {full_len} bytes is over the {} MiB parse limit; kept unparsed{cut}", MAX_LINE_BYTES >> 20),
                ),
                data: Payload::Text(data),
            }));
        } else {
            parser.feed(line_no, &buf, &mut drafts);
        }
        if drafts.is_empty() {
            // Parsers promise a step per line; if one breaks that promise the line is
            // still kept rather than silently lost.
            drafts.push(Draft::new(StepKind::Raw {
                line: Some(line_no),
                reason: import::problem(line_no, "the importer produced no step for this line"),
                data: Payload::Text(String::from_utf8_lossy(&buf).into_owned()),
            }));
        }
        tally.report.lines_with_steps += 1;
        for d in drafts.drain(..) {
            let mut step = builder.push(d);
            for p in step.kind.payloads_mut() {
                if let Payload::Text(t) = p
                    && t.len() > EAGER_BLOB_BYTES
                {
                    *p = Payload::Blob(store.put_blob(std::mem::take(t).into_bytes())?);
                }
            }
            tally.count(&step);
            batch_bytes += step_bytes(&step);
            batch.push(step);
        }
        if batch.len() >= BATCH_STEPS || batch_bytes >= BATCH_BYTES {
            flush(&mut batch, &mut batch_bytes)?;
        }
    }
    parser.finish(&mut drafts);
    for d in drafts.drain(..) {
        let step = builder.push(d);
        tally.count(&step);
        batch.push(step);
    }
    flush(&mut batch, &mut batch_bytes)?;

    let Tally {
        report,
        usage,
        files,
        first_ts,
        last_ts,
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
    store.update_run(run.id, move |r| {
        r.started = started;
        r.ended = Some(ended);
        r.usage = usage.clone();
        r.files_changed = files.clone();
        if let Some(a) = &run_agent {
            r.agent = a.clone();
        }
    })?;
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

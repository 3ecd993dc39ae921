//! The control operations, on an open workspace: what each route of the API does and what
//! the CLI does when no factory runs. Both call these, so the two paths cannot drift apart:
//! same validation, same order, same messages. Everything here blocks (redb, tantivy).

use std::io::Write;

use jiff::Timestamp;

use super::wire::{
    Counts, ErrorKind, ImportTrace, ImportedMemories, ImportedTrace, MemoryHit, MemorySearch,
    NewMemory, NewTicket, OpError, QueueAction, QueueDetail, QueueView, StepFound, StepSearch,
    SyncSession, SyncedSession,
};
use crate::model::transitions::TicketEvent;
use crate::model::{Author, Memory, Run, RunId, Step, Ticket, TicketId, TicketState};
use crate::store::StoreError;
use crate::trace::{ExportFormat, Format, TraceError};
use crate::workspace::Workspace;

pub type Result<T, E = OpError> = std::result::Result<T, E>;

/// Step kind names `trace search --kind` accepts (see `StepKind::name`).
pub const STEP_KINDS: [&str; 11] = [
    "user",
    "agent",
    "thinking",
    "tool_call",
    "tool_result",
    "command",
    "file_edit",
    "decision",
    "error",
    "lifecycle",
    "raw",
];

/// Steps one request returns at most; a longer range is cut here and the caller pages on
/// from the last step it got (every client does).
pub const MAX_STEPS_PER_REQUEST: u64 = 10_000;
/// Outline rows one request returns at most (rows are small: no payloads).
pub const MAX_OUTLINE_PER_REQUEST: u64 = 50_000;
/// Hits one step search returns at most.
pub const MAX_STEP_HITS: usize = 1000;
/// The longest search text accepted: queries are words, not documents.
pub const MAX_QUERY_CHARS: usize = 10_000;

/// A caller's `limit`, checked: 0 means the default; more than `max` is refused with a
/// message that says what to do, never allocated.
fn check_limit(what: &str, limit: usize, max: usize) -> Result<()> {
    if limit > max {
        return Err(OpError::bad_request(format!(
            "{what} limit {limit} is too large: at most {max} hits a search; narrow the query instead"
        )));
    }
    Ok(())
}

fn check_query(what: &str, text: &str) -> Result<()> {
    let n = text.chars().count();
    if n > MAX_QUERY_CHARS {
        return Err(OpError::bad_request(format!(
            "{what} is {n} characters long; at most {MAX_QUERY_CHARS}: search for the telling words"
        )));
    }
    Ok(())
}

/// `from..to`, cut to at most `page` items.
fn page(from: u64, to: u64, page: u64) -> (u64, u64) {
    (from, to.min(from.saturating_add(page)))
}

fn internal(e: impl std::error::Error + 'static) -> OpError {
    OpError::from_error(ErrorKind::Internal, &e)
}

fn store_err(e: StoreError) -> OpError {
    let kind = match &e {
        StoreError::NotFound { .. } => ErrorKind::NotFound,
        StoreError::Invalid(_) => ErrorKind::BadRequest,
        _ => ErrorKind::Internal,
    };
    OpError::from_error(kind, &e)
}

fn trace_err(e: TraceError) -> OpError {
    let kind = match &e {
        TraceError::NotFound { .. } | TraceError::RunNotFound(_) => ErrorKind::NotFound,
        TraceError::IsDirectory { .. } | TraceError::NotAFile { .. } => ErrorKind::BadRequest,
        TraceError::Busy { .. } | TraceError::CannotResume { .. } => ErrorKind::Conflict,
        _ => ErrorKind::Internal,
    };
    OpError::from_error(kind, &e)
}

fn ticket_not_found(id: TicketId) -> OpError {
    OpError::not_found(format!(
        "ticket {id} not found; `shopfloor ticket list` shows the tickets"
    ))
}

// ---- workspace ----

pub fn counts(ws: &Workspace) -> Result<Counts> {
    let tickets = ws.store.tickets().map_err(store_err)?.len();
    let runs = ws.store.runs().map_err(store_err)?;
    let memories = ws.store.memory_count().map_err(store_err)?;
    Ok(Counts {
        tickets,
        runs: runs.len(),
        steps: runs.iter().map(|r| r.steps).sum(),
        memories,
    })
}

// ---- tickets ----

/// A ticket's title and body go into every prompt of its runs: bounded.
pub const MAX_TITLE_CHARS: usize = 500;
pub const MAX_BODY_CHARS: usize = 64 << 10;

pub fn add_ticket(ws: &Workspace, t: NewTicket) -> Result<Ticket> {
    if t.title.trim().is_empty() {
        return Err(OpError::bad_request(
            "a ticket needs a title: `shopfloor ticket add \"what to do\"`",
        ));
    }
    for (what, text, max) in [
        ("title", &t.title, MAX_TITLE_CHARS),
        ("body", &t.body, MAX_BODY_CHARS),
    ] {
        let n = text.chars().count();
        if n > max {
            return Err(OpError::bad_request(format!(
                "the ticket's {what} is {n} characters, at most {max}; put the detail in a file the agent can read"
            )));
        }
    }
    let paths = crate::model::repo_paths(t.paths)
        .map_err(|e| OpError::bad_request(format!("ticket --paths: {e}")))?;
    let labels = crate::model::host_labels(t.labels)
        .map_err(|e| OpError::bad_request(format!("ticket --labels: {e}")))?;
    if let Some(agent) = &t.agent {
        let profiles = ws.config.agent_profiles();
        if !profiles.contains_key(agent) {
            return Err(OpError::bad_request(format!(
                "no agent profile `{agent}`; define [agents.{agent}] in shopfloor.toml or pick one of: {}",
                profiles.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let now = Timestamp::now();
    ws.store
        .add_ticket(Ticket {
            id: 0,
            // A ticket's title and body go into an agent's prompt and onto every screen.
            title: ws.redactor.redact(&t.title).into_owned(),
            body: ws.redactor.redact(&t.body).into_owned(),
            priority: t.priority,
            agent: t.agent,
            paths,
            labels,
            state: TicketState::Queued,
            created: now,
            updated: now,
            runs: vec![],
        })
        .map_err(store_err)
}

/// Tickets in the order the scheduler takes them: priority, then age.
pub fn tickets(ws: &Workspace, state: Option<TicketState>) -> Result<Vec<Ticket>> {
    let mut tickets: Vec<Ticket> = ws
        .store
        .tickets()
        .map_err(store_err)?
        .into_iter()
        .filter(|t| state.is_none_or(|s| t.state == s))
        .collect();
    tickets.sort_by_key(Ticket::take_order);
    Ok(tickets)
}

pub fn ticket(ws: &Workspace, id: TicketId) -> Result<Ticket> {
    ws.store
        .ticket(id)
        .map_err(store_err)?
        .ok_or_else(|| ticket_not_found(id))
}

/// Cancel a ticket: its queue entries are withdrawn in the same transaction, so a branch
/// waiting in a paused queue, or being tested, never lands.
pub fn cancel_ticket(ws: &Workspace, id: TicketId) -> Result<Ticket> {
    ticket_event(ws, id, TicketEvent::Cancel)
}

/// Apply a person's event to a ticket through the state machine.
fn ticket_event(ws: &Workspace, id: TicketId, ev: TicketEvent) -> Result<Ticket> {
    ws.store
        .apply_ticket(id, ev)
        .map(|o| o.ticket)
        .map_err(|e| ticket_update_err(id, e))
}

/// The factory at a glance. Without a factory (the CLI on an idle workspace), nothing runs
/// and main's head is read from the workspace's clone, if it has one yet.
pub fn status(
    ws: &Workspace,
    factory: Option<&crate::scheduler::factory::Factory>,
) -> Result<super::wire::FactoryStatus> {
    use crate::model::QueueState;
    let entries = ws.store.queue_entries().map_err(store_err)?;
    let queue_len = entries.iter().filter(|e| !e.state.is_finished()).count();
    let waiting = entries
        .iter()
        .filter(|e| e.state == QueueState::AwaitingApproval)
        .count();
    let head = git2::Repository::open(ws.info.clone_dir())
        .ok()
        .and_then(|repo| {
            let h = repo.head().ok()?;
            Some((h.shorthand().ok().map(String::from), h.target()))
        });
    // A factory knows its main; without one, the clone's checked-out branch is it.
    let main_branch = match factory {
        Some(f) => f.main_branch().to_string(),
        None => head
            .as_ref()
            .and_then(|(b, _)| b.clone())
            .unwrap_or_default(),
    };
    let main_head = head.and_then(|(_, t)| t).map(|o| o.to_string());
    let mut address = ws.info.socket_path().display().to_string();
    if let Ok(Some(tcp)) = ws.config.api.listen_addr() {
        address.push_str(&format!(" + http://{tcp}"));
    }
    Ok(super::wire::FactoryStatus {
        workspace: ws.info.name.clone(),
        main_branch,
        main_head,
        running: factory.map_or(0, |f| f.live_runs().len()),
        limit: ws.config.factory.concurrency,
        queue_len,
        waiting,
        paused: factory.is_some_and(|f| f.is_paused()),
        queue_paused: crate::mergeq::is_paused(&ws.info),
        address,
        sandbox: factory.map(|f| f.sandbox_kind().to_string()),
        held: match ws.config.factory.budget_usd_per_day {
            Some(_) => crate::spend::day_budget_spent(
                &ws.store.runs().map_err(store_err)?,
                ws.config.factory.budget_usd_per_day,
                Timestamp::now(),
            ),
            None => None,
        },
    })
}

/// Give a ticket a new priority (higher runs first); a finished ticket keeps its own.
pub fn set_priority(ws: &Workspace, id: TicketId, priority: i32) -> Result<Ticket> {
    ticket_event(ws, id, TicketEvent::Prioritize(priority))
}

/// Queue a failed or cancelled ticket again: the next run gets the lessons its earlier
/// attempts left. A ticket still queued, running or in review is not retried twice.
pub fn retry_ticket(ws: &Workspace, id: TicketId) -> Result<Ticket> {
    ticket_event(ws, id, TicketEvent::Retry)
}

fn ticket_update_err(id: TicketId, e: StoreError) -> OpError {
    match e {
        StoreError::NotFound { .. } => ticket_not_found(id),
        StoreError::Invalid(m) => OpError::new(ErrorKind::Conflict, m),
        StoreError::Refused(r) => OpError::new(ErrorKind::Conflict, r.why),
        e => store_err(e),
    }
}

// ---- runs and steps ----

pub fn runs(ws: &Workspace) -> Result<Vec<Run>> {
    ws.store.runs().map_err(store_err)
}

pub fn run(ws: &Workspace, id: RunId) -> Result<Run> {
    ws.store
        .run(id)
        .map_err(store_err)?
        .ok_or_else(|| trace_err(TraceError::RunNotFound(id)))
}

/// Steps `from..to` of a run, as stored (large payloads stay blob references).
/// Steps `from..to` of a run, at most [`MAX_STEPS_PER_REQUEST`] of them.
pub fn steps(ws: &Workspace, run_id: RunId, from: u64, to: u64) -> Result<Vec<Step>> {
    run(ws, run_id)?;
    let (from, to) = page(from, to, MAX_STEPS_PER_REQUEST);
    ws.store.steps(run_id, from, to).map_err(store_err)
}

/// The outline of steps `from..to`: kind, error flag and a clipped summary, no payloads;
/// at most [`MAX_OUTLINE_PER_REQUEST`] rows.
pub fn outline(
    ws: &Workspace,
    run_id: RunId,
    from: u64,
    to: u64,
) -> Result<Vec<super::wire::OutlineRow>> {
    run(ws, run_id)?;
    let (from, to) = page(from, to, MAX_OUTLINE_PER_REQUEST);
    let mut rows = Vec::new();
    ws.store
        .for_each_step_in(run_id, from, to, |s| {
            let mut summary = s.kind.summary();
            if summary.len() > 160 {
                let mut cut = 157;
                while !summary.is_char_boundary(cut) {
                    cut -= 1;
                }
                summary.truncate(cut);
                summary.push_str("...");
            }
            rows.push(super::wire::OutlineRow {
                seq: s.seq,
                kind: s.kind.name().to_string(),
                error: s.kind.is_error(),
                parent: s.parent,
                summary,
                ts: s.ts,
            });
            Ok(())
        })
        .map_err(store_err)?;
    Ok(rows)
}

/// `path` as it was after step `seq` of a run.
pub fn file_at(
    ws: &Workspace,
    run_id: RunId,
    seq: u64,
    path: &str,
) -> Result<super::wire::FileAtStep> {
    use crate::trace::FileContent;
    let files = crate::trace::files_at(&ws.store, run_id, seq).map_err(trace_err)?;
    let f = files.get(path).ok_or_else(|| {
        OpError::not_found(format!(
            "run {run_id} has not edited {path} at or before step {seq}; `shopfloor trace show {run_id}` lists its edits"
        ))
    })?;
    let (state, content) = match &f.content {
        FileContent::Known(t) => ("known", Some(t.clone())),
        FileContent::Deleted => ("deleted", None),
        FileContent::Unknown => ("unknown", None),
    };
    Ok(super::wire::FileAtStep {
        path: path.to_string(),
        edited_at: f.seq,
        state: state.into(),
        content,
    })
}

/// One step, whole: its blob payloads brought inline.
pub fn step(ws: &Workspace, run_id: RunId, seq: u64) -> Result<Step> {
    let r = run(ws, run_id)?;
    let mut s = ws
        .store
        .step(run_id, seq)
        .map_err(store_err)?
        .ok_or_else(|| {
            OpError::not_found(format!(
                "run {run_id} has no step {seq}; it has steps 0..{}",
                r.steps
            ))
        })?;
    ws.store.inline_step(&mut s).map_err(store_err)?;
    Ok(s)
}

/// A run as JSONL, one inlined step a line (returns the steps written), or as OTLP/JSON
/// spans made with the workspace's `[telemetry]` settings, one export request a line
/// (returns the lines written).
pub fn export(
    ws: &Workspace,
    run_id: RunId,
    format: ExportFormat,
    out: &mut dyn Write,
) -> Result<u64> {
    match format {
        ExportFormat::Jsonl => crate::trace::export_jsonl(&ws.store, run_id, out),
        ExportFormat::Otlp => {
            let (opts, service) = crate::telemetry::span_options(ws);
            crate::trace::otel::export_otlp_json(&ws.store, run_id, &opts, &service, out)
        }
    }
    .map_err(trace_err)
}

fn detect_format(file: &std::path::Path) -> Result<Format> {
    // The trace room reads a bounded amount, whatever the file holds (a 2 GB line).
    crate::trace::detect_file(file)
        .map_err(trace_err)?
        .ok_or_else(|| {
            OpError::bad_request(format!(
                "cannot tell the format of {}; pass --format claude-code|claude-stream|codex|codex-exec|gemini|jsonl",
                file.display()
            ))
        })
}

/// Import a trace file as a new run.
pub fn import_trace(ws: &Workspace, req: ImportTrace) -> Result<ImportedTrace> {
    let format = match req.format {
        Some(f) => f.parse::<Format>().map_err(OpError::bad_request)?,
        None if req.path.is_file() => detect_format(&req.path)?,
        // Let the importer say what is wrong with the path.
        None => Format::Jsonl,
    };
    let report = ws
        .import_trace(&req.path, format, req.agent)
        .map_err(trace_err)?;
    Ok(ImportedTrace {
        run: report.run,
        lines: report.lines,
        steps: report.steps,
        raw: report.raw,
        by_kind: report
            .by_kind
            .iter()
            .map(|(k, n)| (k.to_string(), *n))
            .collect(),
        warnings: report.warnings,
        format: format.name().to_string(),
    })
}

/// Full-text search over every step, best first; each hit's step as stored.
pub fn search_steps(ws: &Workspace, q: StepSearch) -> Result<Vec<StepFound>> {
    check_limit("trace search", q.limit, MAX_STEP_HITS)?;
    check_query("the trace search query", &q.query)?;
    if let Some(k) = &q.kind
        && !STEP_KINDS.contains(&k.as_str())
    {
        return Err(OpError::bad_request(format!(
            "unknown step kind `{k}`; use one of: {}",
            STEP_KINDS.join(", ")
        )));
    }
    let filter = crate::index::StepFilter {
        run: q.run,
        agent: q.agent,
        kind: q.kind,
        since: None,
    };
    let hits = ws
        .index()
        .search_steps(&q.query, &filter, q.limit)
        .map_err(internal)?;
    // Equal scores come back in index-segment order, which depends on how the index was
    // committed (one long-lived writer in a factory, a commit per command without one);
    // order ties by run and step so the same question gets the same answer either way.
    let mut hits = hits;
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.run.cmp(&b.run))
            .then(a.seq.cmp(&b.seq))
    });
    let mut found = Vec::with_capacity(hits.len());
    for h in hits {
        // The index may hold a step the store lost only if the store was replaced by hand.
        if let Some(step) = ws.store.step(h.run, h.seq).map_err(store_err)? {
            found.push(StepFound {
                score: h.score,
                step,
            });
        }
    }
    Ok(found)
}

// ---- memory ----

fn memory_err(e: crate::memory::MemoryError) -> OpError {
    let kind = match &e {
        crate::memory::MemoryError::EmptyText => ErrorKind::BadRequest,
        _ => ErrorKind::Internal,
    };
    OpError::from_error(kind, &e)
}

/// A memory with its history.
pub fn memory(ws: &Workspace, id: crate::model::MemoryId) -> Result<super::wire::MemoryDetail> {
    let memory = ws.store.memory(id).map_err(store_err)?.ok_or_else(|| {
        OpError::not_found(format!(
            "no memory {id}; `shopfloor memory search TEXT` finds memories and their ids"
        ))
    })?;
    let history = ws.memory.history(id).map_err(memory_err)?;
    Ok(super::wire::MemoryDetail { memory, history })
}

pub fn add_memory(ws: &Workspace, m: NewMemory) -> Result<Memory> {
    let mut new = crate::memory::NewMemory::new(m.kind, m.text, m.author);
    new.paths = m.paths;
    new.tags = m.tags;
    ws.memory.add(new).map_err(memory_err)
}

pub fn search_memory(ws: &Workspace, q: MemorySearch) -> Result<Vec<MemoryHit>> {
    check_limit("memory search", q.limit, crate::memory::MAX_LIMIT)?;
    check_query("the memory search text", &q.text)?;
    ws.memory.search(&q.into()).map_err(memory_err)
}

/// Import memories from JSON Lines; bad lines are reported, good ones imported.
pub fn import_memory(
    ws: &Workspace,
    reader: impl std::io::BufRead,
    author: Author,
) -> Result<ImportedMemories> {
    ws.memory.import_jsonl(reader, author).map_err(memory_err)
}

// ---- interactive sessions ----

/// Session syncs are serialized: two hooks of one session firing together must not both
/// append the same steps (the store would refuse the second, but as an error).
static SESSION_SYNC: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The `source` of the run recording Claude Code session `id`, which is how the session's
/// later events find it again.
fn session_source_prefix(id: &str) -> String {
    format!("claude-code session {id}: ")
}

/// Bring the run that records a Claude Code session up to date with its transcript. The
/// first event creates the run; later ones append the steps not stored yet; `Stop` and
/// `SessionEnd` mark it finished, any later event (the user went on) live again.
///
/// The transcript is append-only and its parser is deterministic and line by line, so the
/// steps of a longer transcript extend those of a shorter one: the whole file is parsed
/// again (tool results need their calls, wherever they are) and only the steps beyond the
/// run's count are appended. Only complete lines are read, so a line Claude Code is still
/// writing waits for the next event.
pub fn sync_session(ws: &Workspace, req: SyncSession) -> Result<SyncedSession> {
    use crate::model::RunState;
    use crate::trace::{Format, TraceBuilder};

    let id = req.session_id.trim();
    if id.is_empty() || id.len() > 200 || id.chars().any(char::is_control) {
        return Err(OpError::bad_request(format!(
            "`{}` is not a session id",
            req.session_id.escape_debug()
        )));
    }
    if !req.transcript.is_absolute() {
        return Err(OpError::bad_request(format!(
            "transcript path {} is relative; pass an absolute path",
            req.transcript.display()
        )));
    }
    let file = std::fs::File::open(&req.transcript).map_err(|e| {
        OpError::from_error(ErrorKind::BadRequest, &e).with_context(format!(
            "cannot read the transcript of session {id} at {}",
            req.transcript.display()
        ))
    })?;
    let finished = matches!(req.event.as_str(), "Stop" | "SessionEnd");
    let _one_at_a_time = SESSION_SYNC.lock().unwrap_or_else(|p| p.into_inner());

    let prefix = session_source_prefix(id);
    let existing = ws
        .store
        .runs()
        .map_err(store_err)?
        .into_iter()
        .find(|r| r.source.starts_with(&prefix));
    let created = existing.is_none();
    let run = match existing {
        Some(r) => r,
        None => ws
            .store
            .create_run(Run {
                source: format!("{prefix}{}", req.transcript.display()),
                ..Run::new(
                    Format::ClaudeCode.default_agent(),
                    RunState::Imported,
                    Timestamp::now(),
                )
            })
            .map_err(store_err)?,
    };
    let stored = run.steps;

    let builder = TraceBuilder::new(
        run.id,
        0,
        Format::ClaudeCode.default_agent(),
        ws.redactor.clone(),
    );
    // Only whole lines: Claude Code may be writing the last one as we read.
    let mut file = file;
    let whole = crate::trace::ingest::whole_lines_len(&mut file).map_err(|e| {
        OpError::from_error(ErrorKind::Internal, &e)
            .with_context(format!("reading {}", req.transcript.display()))
    })?;
    let reader = std::io::BufReader::with_capacity(1 << 20, std::io::Read::take(file, whole));
    let mut ingest = crate::trace::Ingest::new(
        crate::trace::LineReader::new(reader),
        Format::ClaudeCode,
        builder,
    )
    .growing();
    let mut total = 0u64;
    let mut tally = crate::trace::Tally::default();
    let mut batch: Vec<Step> = Vec::new();
    let mut appended = 0u64;
    let mut warnings = Vec::new();
    let mut steps: Vec<Step> = Vec::new();
    let index = ws.index();
    let store_batch = |batch: &mut Vec<Step>, appended: &mut u64| -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let steps = std::mem::take(batch);
        ws.store
            .append_steps(run.id, steps.clone())
            .map_err(store_err)?;
        *appended += steps.len() as u64;
        if let Err(e) = index.add_steps(&steps) {
            tracing::error!(run = run.id, error = %e, "indexing session steps failed");
        }
        Ok(())
    };
    while ingest
        .next(&mut steps)
        .map_err(|e| {
            OpError::from_error(ErrorKind::Internal, &e)
                .with_context(format!("reading {}", req.transcript.display()))
        })?
        .is_some()
    {
        for step in steps.drain(..) {
            total += 1;
            tally.add(&step);
            if step.seq >= stored {
                batch.push(step);
                if batch.len() >= crate::trace::BATCH_STEPS {
                    store_batch(&mut batch, &mut appended)?;
                }
            }
        }
    }
    let lines = ingest.lines();
    store_batch(&mut batch, &mut appended)?;
    if let Err(e) = index.flush() {
        warnings.push(format!(
            "the steps are stored but not searchable: {e}; remove {} to rebuild the index on the next open",
            ws.info.index_dir().display()
        ));
    }
    if total < stored {
        warnings.push(format!(
            "the transcript now yields {total} steps but run {} already holds {stored}: it was rewritten or truncated; nothing appended",
            run.id
        ));
    }
    let state = if finished {
        RunState::Succeeded
    } else {
        RunState::Imported
    };
    let event = req.event.clone();
    let crate::trace::Tally {
        usage,
        files,
        first_ts,
        last_ts,
        ..
    } = tally;
    let updated = ws
        .store
        .update_run(run.id, move |r| {
            if let Some(t) = first_ts {
                r.started = t;
            }
            r.ended = if finished { last_ts } else { None };
            r.state = state;
            r.usage = usage.clone();
            r.files_changed = files.clone();
            r.outcome = Some(if finished {
                format!("an interactive Claude Code session; its last turn ended ({event})")
            } else {
                format!("an interactive Claude Code session, recorded as it goes ({event})")
            });
        })
        .map_err(store_err)?;
    tracing::info!(
        run = updated.id, session = id, created, appended, steps = updated.steps,
        event = %req.event, "synced a Claude Code session"
    );
    Ok(SyncedSession {
        run: updated.id,
        created,
        appended,
        steps: updated.steps,
        lines,
        state: updated.state,
        warnings,
    })
}

/// The audit log, oldest first: refused API calls now, queue actions later.
pub fn audit(ws: &Workspace) -> Result<Vec<crate::model::AuditEvent>> {
    ws.store.audit_log().map_err(store_err)
}

fn queue_err(e: crate::mergeq::QueueError) -> OpError {
    let kind = match &e {
        crate::mergeq::QueueError::NoEntry(_) => ErrorKind::NotFound,
        crate::mergeq::QueueError::Invalid(_) | crate::mergeq::QueueError::Refused(_) => {
            ErrorKind::Conflict
        }
        _ => ErrorKind::Internal,
    };
    OpError::from_error(kind, &e)
}

/// The queue, in landing order (waiting and finished entries after the queued ones).
pub fn queue(ws: &Workspace) -> Result<QueueView> {
    let entries = crate::mergeq::ordered(ws.store.queue_entries().map_err(store_err)?);
    Ok(QueueView {
        paused: crate::mergeq::is_paused(&ws.info),
        entries,
    })
}

/// One entry with its diff stat.
pub fn queue_entry(ws: &Workspace, id: crate::model::QueueEntryId) -> Result<QueueDetail> {
    let entry = ws
        .store
        .queue_entry(id)
        .map_err(store_err)?
        .ok_or_else(|| {
            OpError::not_found(format!(
                "queue entry {id} does not exist; `shopfloor queue list` shows the queue"
            ))
        })?;
    // A branch gone from the clone leaves the stat empty and the patch saying why.
    let (files, changed_lines, patch) =
        crate::mergeq::entry_diff(ws, &entry, super::wire::PATCH_LIMIT)
            .unwrap_or_else(|e| (vec![], 0, format!("(no diff: {e})\n")));
    let title = entry
        .ticket
        .and_then(|t| ws.store.ticket(t).ok().flatten())
        .map(|t| t.title);
    Ok(QueueDetail {
        entry,
        files,
        changed_lines,
        title,
        patch,
    })
}

/// A queue action by its verb (`approve`, `reject`, `bump`, `comment`, `send-back`), as
/// the route names it.
pub fn queue_act(
    ws: &Workspace,
    id: crate::model::QueueEntryId,
    verb: &str,
    a: QueueAction,
) -> Result<crate::model::QueueEntry> {
    match verb {
        "approve" => queue_approve(ws, id, a),
        "reject" => queue_reject(ws, id, a),
        "bump" => queue_bump(ws, id, a),
        "comment" => {
            let (Some(path), Some(line), Some(text)) = (a.path, a.line, a.note) else {
                return Err(OpError::bad_request(
                    "a comment needs a path, a line and its text (--path P --line L TEXT)",
                ));
            };
            crate::mergeq::comment(ws, id, &a.by, &path, line, &text).map_err(queue_err)
        }
        "send-back" => crate::mergeq::send_back(ws, id, &a.by).map_err(queue_err),
        other => Err(OpError::not_found(format!(
            "no queue action `{other}`; use approve, reject, bump, comment or send-back"
        ))),
    }
}

pub fn queue_approve(
    ws: &Workspace,
    id: crate::model::QueueEntryId,
    a: QueueAction,
) -> Result<crate::model::QueueEntry> {
    crate::mergeq::approve(ws, id, &a.by, a.note).map_err(queue_err)
}

pub fn queue_reject(
    ws: &Workspace,
    id: crate::model::QueueEntryId,
    a: QueueAction,
) -> Result<crate::model::QueueEntry> {
    let reason = a
        .note
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| OpError::bad_request("a rejection needs a reason (--reason)"))?;
    crate::mergeq::reject(ws, id, &a.by, &reason).map_err(queue_err)
}

pub fn queue_bump(
    ws: &Workspace,
    id: crate::model::QueueEntryId,
    a: QueueAction,
) -> Result<crate::model::QueueEntry> {
    crate::mergeq::bump(ws, id, &a.by).map_err(queue_err)
}

pub fn queue_pause(ws: &Workspace, paused: bool, a: QueueAction) -> Result<QueueView> {
    crate::mergeq::set_paused(ws, paused, &a.by).map_err(queue_err)?;
    queue(ws)
}

//! The control operations, on an open workspace: what each route of the API does and what
//! the CLI does when no factory runs. Both call these, so the two paths cannot drift apart:
//! same validation, same order, same messages. Everything here blocks (redb, tantivy).

use std::io::Write;

use jiff::Timestamp;

use crate::model::transitions::TicketEvent;
use crate::model::{Author, Memory, Run, RunId, Step, Ticket, TicketId, TicketState};
use crate::store::StoreError;
use crate::trace::{ExportFormat, Format, TraceError};
use crate::wire::{
    Counts, ErrorKind, ImportTrace, ImportedMemories, ImportedTrace, MemoryHit, MemorySearch,
    MemoryWrite, NewTicket, OpError, QueueAction, QueueDetail, QueueView, StepFound, StepSearch,
    SyncSession, SyncedSession,
};
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

mod queue;
mod sessions;

pub use queue::{
    queue, queue_act, queue_approve, queue_bump, queue_entry, queue_pause, queue_reject,
};
pub use sessions::sync_session;

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
) -> Result<crate::wire::FactoryStatus> {
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
    Ok(crate::wire::FactoryStatus {
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
            Some(_) => {
                let now = Timestamp::now();
                crate::spend::day_budget_spent(
                    &ws.store
                        .runs_started_since(crate::spend::day_start(now))
                        .map_err(store_err)?,
                    ws.config.factory.budget_usd_per_day,
                    now,
                )
            }
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
) -> Result<Vec<crate::wire::OutlineRow>> {
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
            rows.push(crate::wire::OutlineRow {
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
) -> Result<crate::wire::FileAtStep> {
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
    Ok(crate::wire::FileAtStep {
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
pub fn memory(ws: &Workspace, id: crate::model::MemoryId) -> Result<crate::wire::MemoryDetail> {
    let memory = ws.store.memory(id).map_err(store_err)?.ok_or_else(|| {
        OpError::not_found(format!(
            "no memory {id}; `shopfloor memory search TEXT` finds memories and their ids"
        ))
    })?;
    let history = ws.memory.history(id).map_err(memory_err)?;
    Ok(crate::wire::MemoryDetail { memory, history })
}

pub fn add_memory(ws: &Workspace, m: MemoryWrite) -> Result<Memory> {
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

/// The audit log, oldest first: refused API calls now, queue actions later.
pub fn audit(ws: &Workspace) -> Result<Vec<crate::model::AuditEvent>> {
    ws.store.audit_log().map_err(store_err)
}

//! What crosses the socket: request and response bodies, and the error every route answers
//! with. Core types that already round-trip through serde (tickets, runs, steps, memories)
//! go as they are; the rest get a copy here whose JSON is field for field what the CLI's
//! `--json` prints, so a command prints the same bytes whichever side did the work.

use std::collections::BTreeMap;
use std::fmt;

use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{
    Author, MemoryKind, QueueEntryId, RunId, RunState, Step, TicketId, TicketState,
};

/// What a failed operation was, so the server can pick a status code and the client can
/// tell "you asked for something that is not there" from "the factory broke".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is malformed or asks for something invalid.
    BadRequest,
    NotFound,
    /// The thing exists but is in a state that forbids the operation.
    Conflict,
    /// Anything else: storage, index, I/O.
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// For a response whose body is not ours (a proxy, a panic): judge by the status.
    pub fn from_status(status: StatusCode) -> ErrorKind {
        match status {
            StatusCode::NOT_FOUND => ErrorKind::NotFound,
            StatusCode::CONFLICT => ErrorKind::Conflict,
            s if s.is_client_error() => ErrorKind::BadRequest,
            _ => ErrorKind::Internal,
        }
    }
}

/// The body of every error response: `{"error": "...", "kind": "...", "causes": [...]}`.
/// `causes` carries the error's source chain so the CLI prints the same "caused by" lines
/// it would have printed had it done the work itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub kind: ErrorKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<String>,
}

/// An operation's failure, with its message and the messages of its causes. The same type
/// comes out of a direct call and out of the client, which is what keeps the CLI's error
/// output identical on both paths.
#[derive(Clone, Debug, PartialEq)]
pub struct OpError {
    pub kind: ErrorKind,
    pub message: String,
    cause: Option<Box<Cause>>,
}

/// One link of a source chain, kept as text (it crossed a socket, or may).
#[derive(Clone, Debug, PartialEq)]
struct Cause {
    message: String,
    next: Option<Box<Cause>>,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.next.as_deref().map(|c| c as _)
    }
}

fn chain(causes: impl DoubleEndedIterator<Item = String>) -> Option<Box<Cause>> {
    causes.rev().fold(None, |next, message| {
        Some(Box::new(Cause { message, next }))
    })
}

impl OpError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> OpError {
        OpError {
            kind,
            message: message.into(),
            cause: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> OpError {
        OpError::new(ErrorKind::BadRequest, message)
    }
    pub fn not_found(message: impl Into<String>) -> OpError {
        OpError::new(ErrorKind::NotFound, message)
    }
    pub fn internal(message: impl Into<String>) -> OpError {
        OpError::new(ErrorKind::Internal, message)
    }

    /// Keep an error's message and its whole source chain.
    pub fn from_error(kind: ErrorKind, e: &(dyn std::error::Error + 'static)) -> OpError {
        let mut causes = Vec::new();
        let mut cur = e.source();
        while let Some(c) = cur {
            causes.push(c.to_string());
            cur = c.source();
        }
        OpError {
            kind,
            message: e.to_string(),
            cause: chain(causes.into_iter()),
        }
    }

    /// Put `message` in front, this error becoming its first cause (as anyhow's context).
    pub fn with_context(self, message: impl Into<String>) -> OpError {
        OpError {
            kind: self.kind,
            message: message.into(),
            cause: Some(Box::new(Cause {
                message: self.message,
                next: self.cause,
            })),
        }
    }

    pub fn causes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = self.cause.as_deref();
        while let Some(c) = cur {
            out.push(c.message.clone());
            cur = c.next.as_deref();
        }
        out
    }

    pub fn to_body(&self) -> ErrorBody {
        ErrorBody {
            error: self.message.clone(),
            kind: self.kind,
            causes: self.causes(),
        }
    }

    pub fn from_body(body: ErrorBody) -> OpError {
        OpError {
            kind: body.kind,
            message: body.error,
            cause: chain(body.causes.into_iter()),
        }
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_deref().map(|c| c as _)
    }
}

/// `GET /v1/health`: who answers on this socket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub workspace: String,
    pub version: String,
    /// Who holds the workspace and answers: a factory, or a `shopfloor mcp` serving its
    /// store while no factory runs (which lets it go when asked, see `POST /v1/release`).
    #[serde(default)]
    pub holder: Holder,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Holder {
    #[default]
    Factory,
    Mcp,
}

/// `GET /v1/workspace`: what the workspace holds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub tickets: usize,
    pub runs: usize,
    pub steps: u64,
    pub memories: u64,
}

/// `POST /v1/tickets`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewTicket {
    pub title: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub paths: Vec<String>,
    /// What its host must offer (`[[hosts]] labels`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

/// `GET /v1/tickets?state=`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TicketQuery {
    #[serde(default)]
    pub state: Option<crate::model::TicketState>,
}

/// `GET /v1/runs/{id}/steps?from=&to=`: steps `from..to`, clamped to what exists.
/// `?format=` of a run's export: `jsonl` (the default) or `otlp`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    pub format: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRange {
    #[serde(default)]
    pub from: u64,
    #[serde(default = "max_seq")]
    pub to: u64,
}

fn max_seq() -> u64 {
    u64::MAX
}

/// `POST /v1/runs/import`: a trace file on the factory's machine (the same machine: the
/// socket is local), so the factory reads it itself instead of having it uploaded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportTrace {
    /// Absolute: the factory's working directory is not the caller's.
    pub path: std::path::PathBuf,
    /// A format name (`codex`, `jsonl`, ...); None detects it from the first lines.
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub agent: Option<String>,
}

/// What a trace import did; the JSON is what `trace import --json` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportedTrace {
    pub run: RunId,
    pub lines: u64,
    pub steps: u64,
    pub raw: u64,
    pub by_kind: BTreeMap<String, u64>,
    pub warnings: Vec<String>,
    pub format: String,
}

/// `POST /v1/steps/search`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepSearch {
    pub query: String,
    #[serde(default)]
    pub run: Option<RunId>,
    #[serde(default)]
    pub agent: Option<String>,
    /// A step kind name: `tool_call`, `command`, ...
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default = "default_step_limit")]
    pub limit: usize,
}

fn default_step_limit() -> usize {
    20
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepFound {
    pub score: f32,
    /// As stored.
    pub step: Step,
}

/// `POST /v1/memory`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryWrite {
    pub text: String,
    pub kind: MemoryKind,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Who writes it: the caller's user, not the factory's.
    pub author: Author,
}

/// `POST /v1/memory/search`: every field of `memory::RecallQuery`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MemorySearch {
    pub text: String,
    #[serde(default)]
    pub limit: usize,
    #[serde(default)]
    pub kinds: Vec<MemoryKind>,
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub run: Option<RunId>,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub paths_only: bool,
    #[serde(default)]
    pub since: Option<Timestamp>,
    #[serde(default)]
    pub recent: bool,
}

impl From<MemorySearch> for crate::memory::RecallQuery {
    fn from(q: MemorySearch) -> Self {
        crate::memory::RecallQuery {
            text: q.text,
            limit: q.limit,
            kinds: q.kinds,
            agent: q.agent,
            run: q.run,
            paths: q.paths,
            paths_only: q.paths_only,
            since: q.since,
            recent: q.recent,
        }
    }
}

/// A recalled memory, as the memory bank returns it.
pub type MemoryHit = crate::memory::RecallHit;

/// `GET /v1/memory/{id}`: a memory whole, with its history (written, recalled by which
/// runs and why, repeated, confirmed).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemoryDetail {
    pub memory: crate::model::Memory,
    pub history: Vec<crate::model::MemoryEvent>,
}

/// `POST /v1/memory/import?author=`: the import's summary.
pub type ImportedMemories = crate::memory::ImportSummary;

/// `?author=` of a memory import: the caller's user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportAuthor {
    pub author: String,
}

/// `POST /v1/sessions/sync`: bring the run recording an interactive agent session up to
/// date with its transcript (sent by `shopfloor hook claude-code`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncSession {
    /// The agent's own session id: one run per session.
    pub session_id: String,
    /// The session's transcript (Claude Code's JSONL); absolute, read by whoever serves.
    pub transcript: std::path::PathBuf,
    /// The hook event that fired (`PostToolUse`, `Stop`, ...); `Stop` and `SessionEnd`
    /// mark the run finished.
    pub event: String,
}

/// What a session sync did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncedSession {
    pub run: RunId,
    /// This sync created the run (the session's first event).
    pub created: bool,
    /// Steps this sync appended.
    pub appended: u64,
    /// The run's steps now.
    pub steps: u64,
    /// Complete transcript lines read (a line still being written waits for the next sync).
    pub lines: u64,
    pub state: crate::model::RunState,
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// `POST /v1/queue/{id}/approve`, `/reject`, `/bump`, `/comment`, `/send-back`: who
/// acts, and why (a comment's text is its `note`, on `path` at `line`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueAction {
    pub by: String,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

/// `GET /v1/queue/{id}`: an entry with what a reviewer needs beside it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueDetail {
    pub entry: crate::model::QueueEntry,
    /// Files the candidate changes against the main it was (or would be) merged onto.
    pub files: Vec<String>,
    pub changed_lines: u64,
    /// The ticket's title, when there is a ticket.
    #[serde(default)]
    pub title: Option<String>,
    /// The unified diff of the same span as `files`, cut at `PATCH_LIMIT` bytes.
    #[serde(default)]
    pub patch: String,
}

/// The most diff text a queue entry's detail carries.
pub const PATCH_LIMIT: usize = 1 << 20;

/// `GET /v1/status`: the factory at a glance, what the control room's status bar shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FactoryStatus {
    pub workspace: String,
    /// The factory's main branch and its head in the factory's clone.
    pub main_branch: String,
    #[serde(default)]
    pub main_head: Option<String>,
    /// Runs in flight, and how many may be.
    pub running: usize,
    pub limit: usize,
    /// Merge queue entries not yet landed, bounced or rejected.
    pub queue_len: usize,
    /// ... of which waiting for a human's approval.
    pub waiting: usize,
    /// No new runs start (`serve --paused`).
    pub paused: bool,
    pub queue_paused: bool,
    /// Where the factory answers: its socket, and its TCP address when it has one.
    pub address: String,
    /// `worktree` or `docker`, when a factory runs.
    #[serde(default)]
    pub sandbox: Option<String>,
    /// Why no new run starts though tickets wait: the day's budget is spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
}

/// One row of `GET /v1/runs/{id}/outline`: what a timeline needs of a step, without its
/// payloads, so a 100,000-step run's outline is a few megabytes and one request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutlineRow {
    pub seq: u64,
    /// `StepKind::name`.
    pub kind: String,
    /// `StepKind::is_error`.
    #[serde(default)]
    pub error: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<u64>,
    /// The step's one-line summary, clipped.
    pub summary: String,
    pub ts: Timestamp,
}

/// `GET /v1/runs/{id}/files/{seq}?path=`: a file as it was after step `seq` of a run,
/// rebuilt from the run's edits up to there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileAtStep {
    pub path: String,
    /// The step of the file's last edit at or before the asked one.
    pub edited_at: u64,
    /// `known` (with `content`), `deleted`, or `unknown` (the trace has only a patch with
    /// nothing to apply it to).
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// `?path=` of `GET /v1/runs/{id}/files/{seq}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PathQuery {
    pub path: String,
}

/// `POST /v1/tickets/{id}/priority`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewPriority {
    pub priority: i32,
}

/// `GET /v1/queue`: the entries in queue order, and whether the queue is paused.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueView {
    pub paused: bool,
    pub entries: Vec<crate::model::QueueEntry>,
}

/// What the factory tells its watchers (the TUI, `serve`'s log lines, `run logs -f`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum FactoryEvent {
    RunState {
        run: RunId,
        ticket: Option<TicketId>,
        agent: String,
        state: RunState,
        sandbox: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    Steps {
        run: RunId,
        /// The run's step count after this batch.
        total: u64,
        count: usize,
    },
    TicketState {
        ticket: TicketId,
        state: TicketState,
    },
    /// A merge queue turn that did something.
    Queue {
        landed: Vec<QueueEntryId>,
        bounced: Vec<QueueEntryId>,
        rejected: Vec<QueueEntryId>,
        waiting: Vec<QueueEntryId>,
    },
    /// A live run has printed nothing for a while: it may be waiting for input.
    Quiet {
        run: RunId,
        ticket: Option<TicketId>,
        agent: String,
        seconds: u64,
    },
    /// A host stopped answering or could not be reached: no run goes there until
    /// `shopfloor host check` passes; its live runs are tried again elsewhere.
    HostDown { host: String, why: String },
    /// Not from the factory: an event stream that fell behind says so, and how far; its
    /// reader reloads what it shows.
    Resync { missed: u64 },
}

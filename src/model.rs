//! Plain data types shared by every room: tickets, runs, the typed trajectory, memories,
//! queue entries. Serde only; no I/O lives here.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub mod transitions;

pub type TicketId = u64;
pub type RunId = u64;
pub type MemoryId = u64;
pub type QueueEntryId = u64;

/// A blake3 content hash, shown and serialized as 64 hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobHash(pub [u8; 32]);

impl BlobHash {
    pub fn of(bytes: &[u8]) -> Self {
        BlobHash(*blake3::hash(bytes).as_bytes())
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobHash({})", self.short())
    }
}

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::str::FromStr for BlobHash {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s).map_err(|e| format!("blob hash `{s}` is not hex: {e}"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("blob hash `{s}` must be 64 hex characters"))?;
        Ok(BlobHash(arr))
    }
}

impl Serialize for BlobHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for BlobHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A reference to content kept in the store's blob table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    pub blob: BlobHash,
    /// Length of the content in bytes.
    pub len: u64,
    /// The first characters of the content (lossy UTF-8), so lists never load the blob.
    pub preview: String,
}

/// Text a step carries: inline when small, a blob reference when large. Importers and
/// agent adapters always produce `Text`; the store moves large text into blobs on write
/// and `trace export` brings it back inline, so the interchange format is always whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Payload {
    Text(String),
    Blob(BlobRef),
}

impl Default for Payload {
    fn default() -> Self {
        Payload::Text(String::new())
    }
}

impl From<String> for Payload {
    fn from(s: String) -> Self {
        Payload::Text(s)
    }
}

impl From<&str> for Payload {
    fn from(s: &str) -> Self {
        Payload::Text(s.to_string())
    }
}

impl Payload {
    /// The inline text, or the blob's preview.
    pub fn preview(&self) -> &str {
        match self {
            Payload::Text(s) => s,
            Payload::Blob(b) => &b.preview,
        }
    }
    pub fn len(&self) -> u64 {
        match self {
            Payload::Text(s) => s.len() as u64,
            Payload::Blob(b) => b.len,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn is_blob(&self) -> bool {
        matches!(self, Payload::Blob(_))
    }
}

/// One event of an agent run: the unit of the typed trajectory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub run: RunId,
    /// Position in the run, from 0, dense.
    pub seq: u64,
    pub ts: Timestamp,
    pub agent: String,
    /// The step this one answers: a tool result points at its tool call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<u64>,
    #[serde(flatten)]
    pub kind: StepKind,
}

/// What happened at a step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StepKind {
    UserMessage {
        text: Payload,
    },
    AgentMessage {
        text: Payload,
    },
    Thinking {
        text: Payload,
    },
    ToolCall {
        /// The agent's own id for the call, used to pair it with its result.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<String>,
        name: String,
        /// The call's arguments as JSON text.
        input: Payload,
    },
    ToolResult {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<String>,
        output: Payload,
        #[serde(default)]
        is_error: bool,
    },
    Command {
        argv: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        output: Payload,
    },
    FileEdit {
        path: String,
        /// The whole file before the edit (None: created, or unknown).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<Payload>,
        /// The whole file after the edit (None: deleted, or unknown).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<Payload>,
        /// Unified diff of the change.
        patch: Payload,
    },
    Decision {
        text: Payload,
    },
    Error {
        message: Payload,
    },
    Lifecycle {
        event: Lifecycle,
    },
    /// Anything an importer did not understand, kept verbatim so nothing is lost.
    Raw {
        /// Line number in the source, from 1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line: Option<u64>,
        /// Why it is raw: an unknown event type, malformed JSON, invalid UTF-8, ...
        reason: String,
        data: Payload,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Lifecycle {
    Started {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cwd: Option<String>,
    },
    Exited {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
    },
    Usage(Usage),
    /// Bookkeeping the agent's CLI records beside the conversation (a transcript's
    /// attachments and request records, Codex's item starts, a line on stderr): typed, so it
    /// is searchable and shown for what it is, not left raw.
    Note {
        /// What kind of line it was: `attachment/date`, `item.started`, `stderr`, ...
        what: String,
        /// What it said, in short, or whole (a large one is kept as a blob like any text).
        #[serde(default, skip_serializing_if = "Payload::is_empty")]
        text: Payload,
    },
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Tokens and money spent, as reported by the agent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_tokens: u64,
    /// Input written to a prompt cache (Anthropic's cache creation), priced apart.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// The cost was priced from token counts (`[prices]`), not reported by the agent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cost_priced: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turns: Option<u64>,
}

impl Usage {
    /// Add another report's tokens and cost. Turns are left to the caller: some reports
    /// carry a running total, others a count to add.
    pub fn add_spend(&mut self, u: &Usage) {
        // Saturating: the numbers come from agent logs, and a hostile one must not
        // overflow (a panic in debug builds, a wrapped total in release).
        self.input_tokens = self.input_tokens.saturating_add(u.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(u.output_tokens);
        self.cache_read_tokens = self.cache_read_tokens.saturating_add(u.cache_read_tokens);
        self.cache_write_tokens = self.cache_write_tokens.saturating_add(u.cache_write_tokens);
        self.cost_priced |= u.cost_priced;
        if let Some(c) = u.cost_usd {
            self.cost_usd = Some(self.cost_usd.unwrap_or(0.0) + c);
        }
    }
}

impl StepKind {
    /// A short stable name for the kind, used in tables, filters and the index.
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::UserMessage { .. } => "user",
            StepKind::AgentMessage { .. } => "agent",
            StepKind::Thinking { .. } => "thinking",
            StepKind::ToolCall { .. } => "tool_call",
            StepKind::ToolResult { .. } => "tool_result",
            StepKind::Command { .. } => "command",
            StepKind::FileEdit { .. } => "file_edit",
            StepKind::Decision { .. } => "decision",
            StepKind::Error { .. } => "error",
            StepKind::Lifecycle { .. } => "lifecycle",
            StepKind::Raw { .. } => "raw",
        }
    }

    /// Whether the step is a failure a reviewer would want to jump to.
    pub fn is_error(&self) -> bool {
        match self {
            StepKind::Error { .. } => true,
            StepKind::ToolResult { is_error, .. } => *is_error,
            StepKind::Command { exit_code, .. } => exit_code.is_some_and(|c| c != 0),
            _ => false,
        }
    }

    /// Every payload of the step, for the store to externalize and export to inline.
    pub fn payloads_mut(&mut self) -> Vec<&mut Payload> {
        match self {
            StepKind::UserMessage { text }
            | StepKind::AgentMessage { text }
            | StepKind::Thinking { text }
            | StepKind::Decision { text } => vec![text],
            StepKind::ToolCall { input, .. } => vec![input],
            StepKind::ToolResult { output, .. } => vec![output],
            StepKind::Command { output, .. } => vec![output],
            StepKind::FileEdit {
                before,
                after,
                patch,
                ..
            } => {
                let mut v = vec![patch];
                v.extend(before.as_mut());
                v.extend(after.as_mut());
                v
            }
            StepKind::Error { message } => vec![message],
            StepKind::Raw { data, .. } => vec![data],
            StepKind::Lifecycle {
                event: Lifecycle::Note { text, .. },
            } => vec![text],
            StepKind::Lifecycle { .. } => vec![],
        }
    }

    /// A one-line summary for lists and timelines.
    pub fn summary(&self) -> String {
        fn first_line(s: &str) -> &str {
            s.lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
        }
        match self {
            StepKind::UserMessage { text }
            | StepKind::AgentMessage { text }
            | StepKind::Thinking { text }
            | StepKind::Decision { text } => first_line(text.preview()).to_string(),
            StepKind::ToolCall { name, input, .. } => {
                format!("{name} {}", first_line(input.preview()))
            }
            StepKind::ToolResult {
                output, is_error, ..
            } => {
                let mark = if *is_error { "error: " } else { "" };
                format!("{mark}{}", first_line(output.preview()))
            }
            StepKind::Command {
                argv, exit_code, ..
            } => match exit_code {
                Some(c) => format!("$ {} -> {c}", argv.join(" ")),
                None => format!("$ {}", argv.join(" ")),
            },
            StepKind::FileEdit { path, .. } => format!("edit {path}"),
            StepKind::Error { message } => first_line(message.preview()).to_string(),
            StepKind::Lifecycle { event } => match event {
                Lifecycle::Started { model, .. } => match model {
                    Some(m) => format!("started ({m})"),
                    None => "started".to_string(),
                },
                Lifecycle::Exited { code, signal } => match (code, signal) {
                    (Some(c), _) => format!("exited {c}"),
                    (None, Some(s)) => format!("killed by signal {s}"),
                    _ => "exited".to_string(),
                },
                Lifecycle::Note { what, text } if text.is_empty() => what.clone(),
                Lifecycle::Note { what, text } => {
                    format!("{what}: {}", first_line(text.preview()))
                }
                Lifecycle::Usage(u) => {
                    let cost = u.cost_usd.map(|c| format!(" ${c:.4}")).unwrap_or_default();
                    format!(
                        "usage {} in / {} out{cost}",
                        u.input_tokens, u.output_tokens
                    )
                }
            },
            StepKind::Raw { reason, data, .. } => {
                format!("[{reason}] {}", first_line(data.preview()))
            }
        }
    }
}

/// Paths (or globs) a ticket, memory or lease may name: at most this many, each at most
/// [`MAX_PATH_CHARS`] characters.
pub const MAX_PATHS: usize = 64;
pub const MAX_PATH_CHARS: usize = 512;

/// Check paths named from outside (a ticket's, a memory's, a lease's): repository-relative
/// globs only, no `..`, no control characters, bounded; returned trimmed. The error says
/// what is wrong with which path.
/// Labels a ticket asks of its host: words (letters, digits, `-`, `_`, `.`), at most 16,
/// deduplicated. The error says which label is wrong.
pub fn host_labels(labels: Vec<String>) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = vec![];
    for l in labels {
        let l = l.trim().to_string();
        if !crate::hosts::is_label(&l) {
            return Err(format!(
                "label \"{}\" is not a word (1 to 64 letters, digits, `-`, `_`, `.`), e.g. gpu",
                crate::safe_text::clip_bytes(&l, 64)
            ));
        }
        if !out.contains(&l) {
            out.push(l);
        }
    }
    if out.len() > 16 {
        return Err(format!("{} labels, at most 16", out.len()));
    }
    Ok(out)
}

pub fn repo_paths(paths: Vec<String>) -> Result<Vec<String>, String> {
    if paths.len() > MAX_PATHS {
        return Err(format!(
            "{} paths, at most {MAX_PATHS}; use a glob",
            paths.len()
        ));
    }
    paths
        .into_iter()
        .map(|p| {
            let p = p.trim().trim_start_matches("./").to_string();
            if p.is_empty() {
                return Err("an empty path".to_string());
            }
            let n = p.chars().count();
            if n > MAX_PATH_CHARS {
                return Err(format!(
                    "a path is {n} characters, at most {MAX_PATH_CHARS}; shorten it"
                ));
            }
            if p.chars().any(|c| c.is_control()) {
                return Err("a path holds control characters".to_string());
            }
            if p.starts_with('/') || p.starts_with('~') || p.contains('\\') {
                return Err(format!(
                    "`{p}` is not a repository-relative path; name it from the repository root, like `src/main.rs`"
                ));
            }
            if p.split('/').any(|c| c == "..") {
                return Err(format!(
                    "`{p}` climbs out with `..` and leaves the repository; name it from the repository root"
                ));
            }
            Ok(p)
        })
        .collect()
}

/// Ticket lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    Queued,
    Running,
    Review,
    Merged,
    Failed,
    Cancelled,
}

impl TicketState {
    pub fn name(self) -> &'static str {
        match self {
            TicketState::Queued => "queued",
            TicketState::Running => "running",
            TicketState::Review => "review",
            TicketState::Merged => "merged",
            TicketState::Failed => "failed",
            TicketState::Cancelled => "cancelled",
        }
    }
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TicketState::Merged | TicketState::Failed | TicketState::Cancelled
        )
    }
}

impl fmt::Display for TicketState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: TicketId,
    pub title: String,
    #[serde(default)]
    pub body: String,
    /// Higher runs first.
    #[serde(default)]
    pub priority: i32,
    /// The agent profile to run it with; None lets the scheduler choose.
    #[serde(default)]
    pub agent: Option<String>,
    /// Paths (globs) the ticket is expected to touch.
    #[serde(default)]
    pub paths: Vec<String>,
    /// What a host must offer to run it (`gpu`, `linux`): every label, on `[[hosts]]
    /// labels` (or `[factory] local_labels` for this machine).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    pub state: TicketState,
    pub created: Timestamp,
    pub updated: Timestamp,
    /// Runs made for this ticket, oldest first.
    #[serde(default)]
    pub runs: Vec<RunId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Preparing,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// Stopped by no one's choice: the factory stopped or died while the run was live, or
    /// its sandbox could not be prepared. Not an attempt of the agent's; bounded apart.
    Interrupted,
    /// A person stopped it for a fresh attempt: neither an attempt nor an interruption.
    Restarted,
    /// Made by `trace import`, not by the factory.
    Imported,
    /// A `trace import` that has not stored its last step: still going, or killed before
    /// the end of its file. Importing the same file again resumes it.
    PartialImport,
}

impl RunState {
    pub fn name(self) -> &'static str {
        match self {
            RunState::Preparing => "preparing",
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
            RunState::Interrupted => "interrupted",
            RunState::Restarted => "restarted",
            RunState::Imported => "imported",
            RunState::PartialImport => "partial-import",
        }
    }
    pub fn is_live(self) -> bool {
        matches!(self, RunState::Preparing | RunState::Running)
    }
}

/// How a ticket's finished runs count. Attempts, held to `max_attempts`, are the runs that
/// ended by the agent's doing (succeeded, failed, timed out, cancelled); interruptions (the
/// factory stopped or died, a sandbox could not be prepared) are no attempt of the agent's
/// and are bounded apart, so a ticket can neither be failed by the machine's trouble nor
/// retried without end because of it; a person's restart is neither.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attempts {
    pub counted: u32,
    pub interrupted: u32,
}

impl Attempts {
    /// The tally of runs in these states; live runs are not counted yet.
    pub fn of(states: impl IntoIterator<Item = RunState>) -> Attempts {
        let mut a = Attempts::default();
        for s in states {
            match s {
                RunState::Succeeded | RunState::Failed | RunState::Cancelled => a.counted += 1,
                RunState::Interrupted => a.interrupted += 1,
                RunState::Preparing
                | RunState::Running
                | RunState::Restarted
                | RunState::Imported
                | RunState::PartialImport => {}
            }
        }
        a
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: RunId,
    #[serde(default)]
    pub ticket: Option<TicketId>,
    pub agent: String,
    pub state: RunState,
    pub started: Timestamp,
    #[serde(default)]
    pub ended: Option<Timestamp>,
    /// Number of steps appended so far.
    #[serde(default)]
    pub steps: u64,
    /// Where the run came from: an imported file's path and format, or the sandbox kind.
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub attempt: u32,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub usage: Usage,
    #[serde(default)]
    pub files_changed: Vec<String>,
    /// Which sandbox backend ran it (`worktree`, `docker`); None for imports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// Why it ended as it did, in words for the next prompt and for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The memories its context pack handed it: lessons it lands with are confirmed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recalled: Vec<MemoryId>,
    /// A review run: the queue entry whose change it reviews (it has no ticket of its own
    /// and no branch; nothing it writes lands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_of: Option<QueueEntryId>,
    /// The host it ran on, when not this machine (`[[hosts]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl Run {
    /// A run of `agent` in `state` from `started`, with nothing else known yet (the store
    /// gives it its id): the fields a caller knows go over it with `..`.
    pub fn new(agent: impl Into<String>, state: RunState, started: Timestamp) -> Run {
        Run {
            id: 0,
            ticket: None,
            agent: agent.into(),
            state,
            started,
            ended: None,
            steps: 0,
            source: String::new(),
            attempt: 0,
            branch: None,
            usage: Usage::default(),
            files_changed: Vec::new(),
            sandbox: None,
            outcome: None,
            recalled: Vec::new(),
            review_of: None,
            host: None,
        }
    }

    /// Where it ran: its host, or `local`.
    pub fn host_name(&self) -> &str {
        self.host.as_deref().unwrap_or(crate::hosts::LOCAL)
    }
}

/// How far a `trace import` in progress has read its source, kept beside its run (state
/// `PartialImport`) and moved on in the transaction that stores each batch of its steps, so
/// an import that was killed resumes exactly where its stored steps end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportMark {
    /// The file, canonical; None for a stream, which cannot be read again to resume.
    #[serde(default)]
    pub path: Option<String>,
    /// The trace format's name.
    pub format: String,
    /// The agent the import was asked to name (None: the format's).
    #[serde(default)]
    pub agent: Option<String>,
    /// Bytes of the source, whole lines, whose steps are all stored.
    pub read: u64,
    /// The blake3 hash of those bytes: the same path resumes only with the same content.
    pub hash: BlobHash,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryKind {
    Decision,
    Lesson,
    Convention,
    Note,
    FileContext,
}

impl MemoryKind {
    pub const ALL: [MemoryKind; 5] = [
        MemoryKind::Decision,
        MemoryKind::Lesson,
        MemoryKind::Convention,
        MemoryKind::Note,
        MemoryKind::FileContext,
    ];
    pub fn name(self) -> &'static str {
        match self {
            MemoryKind::Decision => "decision",
            MemoryKind::Lesson => "lesson",
            MemoryKind::Convention => "convention",
            MemoryKind::Note => "note",
            MemoryKind::FileContext => "file-context",
        }
    }
}

impl fmt::Display for MemoryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl std::str::FromStr for MemoryKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MemoryKind::ALL
            .into_iter()
            .find(|k| k.name() == s || (s == "file_context" && *k == MemoryKind::FileContext))
            .ok_or_else(|| {
                format!(
                    "unknown memory kind `{s}`; use one of: decision, lesson, convention, note, file-context"
                )
            })
    }
}

/// Who wrote a memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Author {
    Human { name: String },
    Agent { name: String },
}

impl Author {
    pub fn name(&self) -> &str {
        match self {
            Author::Human { name } | Author::Agent { name } => name,
        }
    }
}

impl fmt::Display for Author {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Author::Human { name } => write!(f, "human:{name}"),
            Author::Agent { name } => write!(f, "agent:{name}"),
        }
    }
}

/// Where a memory came from in the traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRef {
    pub run: RunId,
    pub step: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub id: MemoryId,
    pub kind: MemoryKind,
    pub text: String,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub author: Author,
    #[serde(default)]
    pub source: Option<StepRef>,
    pub ts: Timestamp,
    /// An opaque reference given at import, returned unchanged by search.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// How many times what it records happened: a failure that recurs raises the count of
    /// its lesson rather than writing the lesson again.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub seen: u32,
    /// A run on its paths that landed after receiving it: the lesson held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<RunId>,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// Something that happened to a memory, kept in its history (`memory show`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryEvent {
    pub ts: Timestamp,
    #[serde(flatten)]
    pub what: MemoryEventKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum MemoryEventKind {
    /// Written, by a run's step or by hand.
    Written {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<StepRef>,
    },
    /// The same failure happened again, in this run.
    Repeated { source: StepRef },
    /// Handed to a run in its context pack, and why.
    Recalled { run: RunId, why: String },
    /// A run that received it landed on its paths.
    Confirmed { run: RunId },
}

impl MemoryEventKind {
    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            MemoryEventKind::Written { source: Some(s) } => {
                format!("written from run {} step {}", s.run, s.step)
            }
            MemoryEventKind::Written { source: None } => "written".into(),
            MemoryEventKind::Repeated { source } => format!(
                "the same failure again in run {} step {}",
                source.run, source.step
            ),
            MemoryEventKind::Recalled { run, why } => format!("recalled for run {run} ({why})"),
            MemoryEventKind::Confirmed { run } => {
                format!("confirmed: run {run} received it and landed")
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueState {
    Queued,
    Testing,
    AwaitingApproval,
    /// Tested and gated; main is being moved to it (see `transitions`).
    Landing,
    Merged,
    Bounced,
    Rejected,
}

impl QueueState {
    /// Landed, bounced or rejected: nothing more happens to the entry.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            QueueState::Merged | QueueState::Bounced | QueueState::Rejected
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            QueueState::Queued => "queued",
            QueueState::Testing => "testing",
            QueueState::AwaitingApproval => "awaiting-approval",
            QueueState::Landing => "landing",
            QueueState::Merged => "merged",
            QueueState::Bounced => "bounced",
            QueueState::Rejected => "rejected",
        }
    }
}

/// A branch waiting to land on main.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub id: QueueEntryId,
    pub ticket: Option<TicketId>,
    pub run: Option<RunId>,
    pub branch: String,
    /// The branch head the entry was queued with.
    pub head: String,
    pub priority: i32,
    pub state: QueueState,
    pub enqueued: Timestamp,
    #[serde(default)]
    pub verdict: Option<Verdict>,
    /// Why it is where it is, in words (a conflict's paths, a failed test, a denial).
    #[serde(default)]
    pub reason: Option<String>,
    /// The commit that was tested and would land (a merge of the branch onto `base`).
    #[serde(default)]
    pub candidate: Option<String>,
    /// The main it was merged onto and tested on.
    #[serde(default)]
    pub base: Option<String>,
    /// Every test run of it, oldest first (flaky retries and batches included).
    #[serde(default)]
    pub tests: Vec<TestRecord>,
    /// A human's sign-off, pinned to the branch head it approved.
    #[serde(default)]
    pub approval: Option<Approval>,
    /// The commit main moved to when it landed.
    #[serde(default)]
    pub landed: Option<String>,
    #[serde(default)]
    pub updated: Option<Timestamp>,
    /// Agent reviews of it, oldest first; each is of the head it names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reviews: Vec<Review>,
    /// People's comments on lines of its diff, waiting to be sent back with it (`R`,
    /// `queue send-back`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<LineComment>,
}

impl QueueEntry {
    /// Every comment on its change as it is now: people's, and those of reviews of its
    /// current head.
    pub fn line_comments(&self) -> Vec<&LineComment> {
        self.comments
            .iter()
            .chain(
                self.reviews
                    .iter()
                    .filter(|r| r.head == self.head)
                    .flat_map(|r| r.comments.iter()),
            )
            .collect()
    }
}

/// What an agent reviewer answers about a queue entry's change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReviewVerdict {
    Approve,
    RequestChanges,
}

impl ReviewVerdict {
    pub fn name(self) -> &'static str {
        match self {
            ReviewVerdict::Approve => "approve",
            ReviewVerdict::RequestChanges => "request-changes",
        }
    }
}

/// A comment on one line of a change: by a reviewer run or a person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineComment {
    /// Repository-relative path.
    pub path: String,
    /// 1-based line in the new version of the file.
    pub line: u32,
    pub text: String,
    /// Who wrote it: a person's login, or `review run N (agent)`.
    pub by: String,
    pub ts: Timestamp,
}

impl LineComment {
    /// `path:line: text (by)`, one line per line of the text.
    pub fn render(&self) -> String {
        format!(
            "{}:{}: {} ({})",
            self.path,
            self.line,
            self.text.trim(),
            self.by
        )
    }
}

/// An agent reviewer's answer on an entry, pinned to the branch head it reviewed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Review {
    /// The review run.
    pub run: RunId,
    pub agent: String,
    /// The branch head it reviewed: a new commit needs a new review.
    pub head: String,
    pub verdict: ReviewVerdict,
    pub summary: String,
    #[serde(default)]
    pub comments: Vec<LineComment>,
    pub ts: Timestamp,
}

/// One run of the test command on a candidate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestRecord {
    pub commit: String,
    pub ok: bool,
    #[serde(default)]
    pub exit_code: Option<i32>,
    pub seconds: f64,
    /// The output's tail.
    #[serde(default)]
    pub log: String,
    /// The entries tested together in this run (one for serial).
    #[serde(default)]
    pub batch: Vec<QueueEntryId>,
    /// 0 for the first try; flaky retries count up.
    #[serde(default)]
    pub retry: u32,
}

/// The policy's judgement of a diff.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// False when a denied path is touched: the change never lands, approved or not.
    pub allowed: bool,
    /// An allowed change that a human must approve first (gated paths or too many lines).
    pub needs_human: bool,
    /// One sentence per finding, naming the rule that decided it.
    pub reasons: Vec<String>,
    /// The changed paths a `deny` line decided.
    #[serde(default)]
    pub denied: Vec<String>,
    /// The changed paths an `approve` line decided.
    #[serde(default)]
    pub gated: Vec<String>,
    /// Added plus deleted lines over the whole diff (binary files count none).
    #[serde(default)]
    pub changed_lines: u64,
    /// Changed files (a rename is one).
    #[serde(default)]
    pub files: u64,
}

impl Verdict {
    /// The verdict in a word: `rejected`, `needs_approval` or `allowed`.
    pub fn outcome(&self) -> &'static str {
        if !self.allowed {
            "rejected"
        } else if self.needs_human {
            "needs_approval"
        } else {
            "allowed"
        }
    }
}

/// A human's sign-off, pinned to the exact commit it approves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub entry: QueueEntryId,
    pub commit: String,
    pub by: String,
    pub note: Option<String>,
    pub ts: Timestamp,
}

/// One line of the audit log: who did what, when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub ts: Timestamp,
    pub actor: String,
    pub action: String,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_round_trips_through_json_with_flat_kind() {
        let step = Step {
            run: 3,
            seq: 7,
            ts: Timestamp::UNIX_EPOCH,
            agent: "claude".into(),
            parent: Some(6),
            kind: StepKind::ToolResult {
                call_id: Some("toolu_1".into()),
                output: "ok".into(),
                is_error: false,
            },
        };
        let json = serde_json::to_string(&step).unwrap();
        assert!(json.contains(r#""type":"tool_result""#), "{json}");
        let back: Step = serde_json::from_str(&json).unwrap();
        assert_eq!(back, step);
    }

    #[test]
    fn blob_payload_serializes_as_object_and_text_as_string() {
        let text = serde_json::to_string(&Payload::Text("hi".into())).unwrap();
        assert_eq!(text, r#""hi""#);
        let blob = Payload::Blob(BlobRef {
            blob: BlobHash::of(b"x"),
            len: 1,
            preview: "x".into(),
        });
        let json = serde_json::to_string(&blob).unwrap();
        let back: Payload = serde_json::from_str(&json).unwrap();
        assert_eq!(back, blob);
    }

    #[test]
    fn memory_kind_parses_its_names() {
        for k in MemoryKind::ALL {
            assert_eq!(k.name().parse::<MemoryKind>().unwrap(), k);
        }
        assert!(
            "bogus"
                .parse::<MemoryKind>()
                .unwrap_err()
                .contains("use one of")
        );
    }

    #[test]
    fn failed_command_counts_as_error() {
        let k = StepKind::Command {
            argv: vec!["cargo".into(), "test".into()],
            exit_code: Some(101),
            output: "".into(),
        };
        assert!(k.is_error());
        assert_eq!(k.summary(), "$ cargo test -> 101");
    }
}

//! Runs: one agent's attempt at a ticket, its states, attempts and import progress.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{BlobHash, MemoryId, QueueEntryId, RunId, TicketId, Usage};

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
        self.host.as_deref().unwrap_or(super::LOCAL)
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

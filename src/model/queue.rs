//! The merge queue's records: entries, reviews, tests, verdicts, approvals and the audit log.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{QueueEntryId, RunId, TicketId};

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

/// A commit hash as the queue prints it: its first ten characters.
pub fn short_commit(h: &str) -> &str {
    &h[..h.len().min(10)]
}

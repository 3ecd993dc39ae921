//! The merge queue: the only writer of main.
//!
//! Agents finish on branches in the workspace's clone; each finished run becomes a queue
//! entry. A turn takes the head entry (serial), a batch, or the next `depth` entries
//! (speculative), merges each onto main and the entries ahead of it in memory (git2, no
//! working tree), bounces a conflict back to its ticket with the paths, judges the diff
//! with the policy, tests the candidates in the workspace's sandbox (a hardened container
//! or a scrubbed process group), and only then moves `refs/heads/<main>` with a
//! compare-and-swap on the main it tested against. A lost race (another factory, a
//! hand-run `git`) leaves main as the winner left it and the entries are rebuilt on the new
//! main. An entry whose diff needs a human waits, tested, for an approval pinned to its
//! branch head; a new commit on the branch voids it.
//!
//! `mode = "batch"` tests up to `batch_size` entries merged together and bisects a red
//! batch for the entry that breaks it; `mode = "speculative"` tests main+A, main+A+B, ...
//! (`depth` of them) at once in parallel sandboxes, lands the green prefix in order,
//! bounces the first red entry and rebuilds only the candidates behind it.
//!
//! What to do is decided by [`decide`]; [`driver`] carries it out through small traits
//! (git, tests, store) implemented here on the real things; every state change is a
//! transition of [`crate::model::transitions`], applied in one store transaction, so a
//! person's reject, cancel or pause holds whatever the queue is doing at that moment.
//!
//! Invariants (each has a test): main never points at a commit whose tests failed or
//! whose gate was not satisfied; two writers racing cannot both win; an approval of X does
//! not land Y; a denied, rejected or cancelled entry never lands; nothing lands twice; a
//! kill at any moment leaves main at the old or the new commit, and `recover` makes the
//! queue consistent again.

pub mod clone;
pub mod decide;
pub mod driver;
pub mod git;
mod people;
pub mod runner;
mod store_queue;
mod test_run;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use git2::{Oid, Repository};
use jiff::Timestamp;

pub use crate::config::merge::{MergeConfig, Mode};
use crate::memory::NewMemory;
use crate::model::short_commit;
use crate::model::transitions::{EntryEvent, EntryOutcome, Refusal};
use crate::model::{
    Approval, AuditEvent, Author, MemoryKind, QueueEntry, QueueEntryId, QueueState, Run, Verdict,
};
use crate::store::{EntryContext, StoreError};
use crate::trace::digest::End;
use crate::workspace::Workspace;
use driver::{Driver, Merge, QueueGit, QueueStore};
use git::Merged;
pub use people::{
    MAX_COMMENT_CHARS, approve, bump, check_comment, comment, is_paused, reject, send_back,
    set_paused,
};
use store_queue::StoreQueue;
pub use test_run::TestBackend;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("queue entry {0} does not exist; `shopfloor queue list` shows the queue")]
    NoEntry(QueueEntryId),
    /// A person's decision or the queue's state refused the change (see
    /// `model::transitions`).
    #[error("{0}")]
    Refused(Refusal),
    #[error("{0}")]
    Invalid(String),
    #[error("the policy could not judge the change: {0}")]
    Policy(String),
}

type Result<T> = std::result::Result<T, QueueError>;

/// Judges a change from main to a candidate: the policy gate.
pub trait Judge: Send + Sync {
    fn judge(
        &self,
        repo: &Repository,
        base: Oid,
        candidate: Oid,
    ) -> std::result::Result<Verdict, String>;
    /// Whether the `[test]` command must be green before anything lands.
    fn requires_tests(&self) -> bool {
        true
    }
}

/// What one turn of the queue did, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Turn {
    pub landed: Vec<QueueEntryId>,
    pub bounced: Vec<QueueEntryId>,
    pub rejected: Vec<QueueEntryId>,
    pub waiting: Vec<QueueEntryId>,
    pub test_runs: usize,
}

impl Turn {
    pub fn is_idle(&self) -> bool {
        *self == Turn::default()
    }
}

pub struct MergeQueue<'a> {
    ws: &'a Workspace,
    repo_path: PathBuf,
    main: String,
    cfg: MergeConfig,
    test_command: Option<String>,
    judge: &'a dyn Judge,
    backend: TestBackend,
    /// Where candidates are checked out to be tested.
    scratch: PathBuf,
    /// Agent review after green tests (`[review]`); none by default.
    reviewer: &'a dyn driver::Reviewer,
}

fn hex(o: Oid) -> String {
    o.to_string()
}

fn oid(s: &str) -> Result<Oid> {
    Oid::from_str(s).map_err(QueueError::from)
}

/// Queue order: priority (higher first), then arrival.
/// Entries still to land come first, in that order; finished ones (merged, bounced,
/// rejected) after them, newest first.
pub fn ordered(mut entries: Vec<QueueEntry>) -> Vec<QueueEntry> {
    entries.sort_by(
        |a, b| match (a.state.is_finished(), b.state.is_finished()) {
            (false, false) => b.priority.cmp(&a.priority).then(a.id.cmp(&b.id)),
            (true, true) => b.id.cmp(&a.id),
            (fa, fb) => fa.cmp(&fb),
        },
    );
    entries
}

pub fn audit(ws: &Workspace, actor: &str, action: &str, detail: String) {
    let e = AuditEvent {
        ts: Timestamp::now(),
        actor: actor.to_string(),
        action: action.to_string(),
        detail,
    };
    if let Err(err) = ws.store.append_audit(e) {
        tracing::error!(error = %err, "could not write the audit log");
    }
}

/// Add a finished run's branch to the queue (once per run).
pub fn enqueue_run(ws: &Workspace, repo: &Repository, run: &Run) -> Result<Option<QueueEntry>> {
    let Some(branch) = &run.branch else {
        return Ok(None);
    };
    if ws
        .store
        .queue_entries()?
        .iter()
        .any(|e| e.run == Some(run.id))
    {
        return Ok(None);
    }
    let head = repo.refname_to_id(&format!("refs/heads/{branch}"))?;
    let priority = match run.ticket {
        Some(t) => ws.store.ticket(t)?.map_or(0, |t| t.priority),
        None => 0,
    };
    let e = ws.store.put_queue_entry(QueueEntry {
        id: 0,
        ticket: run.ticket,
        run: Some(run.id),
        branch: branch.clone(),
        head: hex(head),
        priority,
        state: QueueState::Queued,
        enqueued: Timestamp::now(),
        verdict: None,
        reason: None,
        candidate: None,
        base: None,
        tests: Vec::new(),
        approval: None,
        landed: None,
        updated: Some(Timestamp::now()),
        reviews: Vec::new(),
        comments: Vec::new(),
    })?;
    audit(
        ws,
        "factory",
        "queue.enqueued",
        format!("entry {} branch {} run {}", e.id, e.branch, run.id),
    );
    Ok(Some(e))
}

/// Apply one entry transition in one store transaction; a refusal is the error.
fn transition(ws: &Workspace, id: QueueEntryId, ev: EntryEvent) -> Result<EntryOutcome> {
    ws.store
        .apply_entry(id, EntryContext::new(ws.config.factory.max_attempts), ev)
        .map_err(|e| match e {
            StoreError::Refused(r) => QueueError::Refused(r),
            StoreError::NotFound { .. } => QueueError::NoEntry(id),
            e => QueueError::Store(e),
        })
}

pub use crate::model::transitions::MAX_COMMENTS;

/// Whether an entry's tests were flaky: a run that failed and then passed on its retry,
/// for the same commit. Returns (commit, failed tries before the pass) of each.
pub fn flaky(e: &QueueEntry) -> Vec<(String, u32)> {
    e.tests
        .iter()
        .filter(|t| t.ok && t.retry > 0)
        .map(|t| (t.commit.clone(), t.retry))
        .collect()
}

impl<'a> MergeQueue<'a> {
    pub fn new(
        ws: &'a Workspace,
        repo_path: PathBuf,
        main: String,
        cfg: MergeConfig,
        test_command: Option<String>,
        judge: &'a dyn Judge,
    ) -> MergeQueue<'a> {
        let scratch = ws.info.queue_scratch_dir();
        MergeQueue {
            ws,
            repo_path,
            main,
            cfg,
            test_command,
            judge,
            backend: TestBackend::Host,
            scratch,
            reviewer: &driver::NoReviewer,
        }
    }

    /// Test candidates in `backend` (the factory's sandbox) instead of a scrubbed process
    /// group on the host.
    pub fn with_backend(mut self, backend: TestBackend) -> Self {
        self.backend = backend;
        self
    }

    /// Ask `reviewer` for agent reviews of green entries before they land.
    pub fn with_reviewer(mut self, reviewer: &'a dyn driver::Reviewer) -> Self {
        self.reviewer = reviewer;
        self
    }

    fn repo(&self) -> Result<Repository> {
        Ok(Repository::open(&self.repo_path)?)
    }

    /// Run `f` with the driver over the real repository, sandbox and store.
    fn drive<T>(&self, f: impl FnOnce(&Driver<'_>) -> Result<T>) -> Result<T> {
        let git = RepoGit {
            repo: self.repo()?,
            main: self.main.clone(),
            judge: self.judge,
            push: self.cfg.push.clone(),
            ws: self.ws,
        };
        let store = StoreQueue {
            ws: self.ws,
            repo_path: self.repo_path.clone(),
        };
        let tester = test_run::SandboxTester {
            repo_path: self.repo_path.clone(),
            scratch: self.scratch.clone(),
            command: self.test_command.clone(),
            timeout: Duration::from_secs(self.cfg.test_timeout_s),
            flaky_retries: self.cfg.flaky_retries,
            backend: self.backend.clone(),
            label: self.ws.info.sandbox_label(),
            allowed_env: self.ws.config.sandbox.allowed_env_names(),
        };
        let d = Driver {
            git: &git,
            tester: &tester,
            store: &store,
            reviewer: self.reviewer,
            cfg: &self.cfg,
            requires_tests: self.judge.requires_tests(),
        };
        f(&d)
    }

    /// After a crash: an entry caught mid-test is queued again; one caught landing is
    /// recorded as landed if main holds it, else queued again.
    pub fn recover(&self) -> Result<()> {
        self.drive(|d| d.recover())?;
        let _ = std::fs::remove_dir_all(&self.scratch);
        Ok(())
    }

    /// One turn: the head entry (serial), a batch, or the next `depth` entries
    /// (speculative). Idle when nothing is queued.
    pub fn turn(&self) -> Result<Turn> {
        self.drive(|d| d.turn())
    }
}

/// The factory's clone, its main and the policy, for the driver.
struct RepoGit<'a> {
    repo: Repository,
    main: String,
    judge: &'a dyn Judge,
    push: Option<String>,
    ws: &'a Workspace,
}

impl QueueGit for RepoGit<'_> {
    fn main(&self) -> Result<String> {
        Ok(hex(self
            .repo
            .refname_to_id(&format!("refs/heads/{}", self.main))?))
    }

    fn branch_head(&self, branch: &str) -> Result<Option<String>> {
        Ok(self
            .repo
            .refname_to_id(&format!("refs/heads/{branch}"))
            .ok()
            .map(hex))
    }

    fn merge(&self, base: &str, head: &str, message: &str) -> Result<Merge> {
        Ok(
            match git::merge(&self.repo, oid(base)?, oid(head)?, message)? {
                Merged::Clean { commit } => Merge::Clean(hex(commit)),
                Merged::AlreadyIn => Merge::AlreadyIn,
                Merged::Conflict { paths } => Merge::Conflict(paths),
            },
        )
    }

    fn contains(&self, main: &str, commit: &str) -> Result<bool> {
        let (m, c) = (oid(main)?, oid(commit)?);
        Ok(m == c || self.repo.graph_descendant_of(m, c).unwrap_or(false))
    }

    fn compare_and_swap(&self, old: &str, new: &str, message: &str) -> Result<bool> {
        let moved = clone::compare_and_swap(&self.repo, &self.main, oid(old)?, oid(new)?, message)?;
        if !moved {
            audit(
                self.ws,
                "merge-queue",
                "queue.raced",
                format!("main moved from {} before landing", short_commit(old)),
            );
        }
        Ok(moved)
    }

    fn judge(&self, base: &str, candidate: &str) -> Result<Verdict> {
        self.judge
            .judge(&self.repo, oid(base)?, oid(candidate)?)
            .map_err(QueueError::Policy)
    }

    fn published(&self, main: &str) -> Result<()> {
        clone::publish_to_user(self.ws, &self.repo, &self.main, main);
        if let Some(remote) = &self.push {
            clone::push_main(self.ws, &self.repo, &self.main, remote)?;
        }
        Ok(())
    }
}

/// Files and changed lines of an entry: its candidate against the main it was tested on,
/// or, before that, its branch against the clone's main.
/// An entry's diff: the files it changes, its added plus deleted lines, and the unified
/// diff cut at `limit` bytes, all over one span (see `entry_span`).
pub fn entry_diff(
    ws: &Workspace,
    e: &QueueEntry,
    limit: usize,
) -> Result<(Vec<String>, u64, String)> {
    let repo = Repository::open(ws.info.clone_dir())?;
    let (from, to) = entry_span(&repo, e)?;
    let stat = crate::diffstat::between(&repo, from, to)?;
    let patch = git::diff_patch(&repo, from, to, limit)?;
    let lines = stat.lines();
    Ok((stat.files, lines, patch))
}

/// What an entry changes: its candidate against the base it was merged onto, or, before
/// it was merged, its head against where it forked from main.
fn entry_span(repo: &Repository, e: &QueueEntry) -> Result<(Oid, Oid)> {
    if let (Some(b), Some(c)) = (e.base.as_deref(), e.candidate.as_deref()) {
        return Ok((oid(b)?, oid(c)?));
    }
    let head = oid(&e.head)?;
    let main = repo
        .head()
        .ok()
        .and_then(|h| h.target())
        .ok_or_else(|| QueueError::Invalid("the clone has no main".into()))?;
    let base = repo.merge_base(main, head)?;
    Ok((base, head))
}

impl Judge for crate::policy::Policy {
    fn judge(
        &self,
        repo: &Repository,
        base: Oid,
        candidate: Oid,
    ) -> std::result::Result<Verdict, String> {
        self.evaluate(repo, base, candidate)
            .map_err(|e| e.to_string())
    }

    fn requires_tests(&self) -> bool {
        self.required_checks().iter().any(|c| c == "test")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(id: QueueEntryId, priority: i32, state: QueueState) -> QueueEntry {
        QueueEntry {
            id,
            ticket: None,
            run: None,
            branch: format!("b{id}"),
            head: String::new(),
            priority,
            state,
            enqueued: Timestamp::UNIX_EPOCH,
            verdict: None,
            reason: None,
            candidate: None,
            base: None,
            tests: vec![],
            approval: None,
            landed: None,
            updated: None,
            reviews: Vec::new(),
            comments: Vec::new(),
        }
    }

    #[test]
    fn the_queue_lists_what_is_left_to_land_first_by_priority_then_arrival() {
        let order: Vec<QueueEntryId> = ordered(vec![
            e(1, 0, QueueState::Merged),
            e(2, 0, QueueState::Queued),
            e(3, 5, QueueState::AwaitingApproval),
            e(4, 0, QueueState::Bounced),
            e(5, 0, QueueState::Testing),
            e(6, 5, QueueState::Queued),
        ])
        .iter()
        .map(|e| e.id)
        .collect();
        assert_eq!(order, vec![3, 6, 2, 5, 4, 1]);
    }
}

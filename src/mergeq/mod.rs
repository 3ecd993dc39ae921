//! The merge queue: the only writer of main.
//!
//! Agents finish on branches in the workspace's clone; each finished run becomes a queue
//! entry. For the entry at the head (priority, then arrival), the queue merges main and
//! the branch in memory (git2, no working tree), bounces a conflict back to its ticket
//! with the paths, judges the diff with the policy, checks the merged commit out into a
//! directory of its own and runs the test command there, and only then moves
//! `refs/heads/<main>` with a compare-and-swap on the main it tested against. A lost race
//! (another factory, a hand-run `git`) leaves main as the winner left it and the entry is
//! rebuilt on the new main. An entry whose diff needs a human waits, tested, for an
//! approval pinned to its branch head; a new commit on the branch voids it.
//!
//! `mode = "batch"` tests up to `batch_size` entries merged together; green lands them
//! all, red bisects over prefixes of the batch to find the first entry that breaks it,
//! lands the green prefix, bounces the culprit and queues the rest again.
//!
//! Invariants (each has a test): main never points at a commit whose tests failed or
//! whose gate was not satisfied; two writers racing cannot both win; an approval of X does
//! not land Y; a denied path never lands; a kill at any moment leaves main at the old or
//! the new commit, and `recover` makes the queue consistent again.

pub mod git;
mod test_run;

use std::path::PathBuf;
use std::time::Duration;

use git2::{Oid, Repository};
use jiff::Timestamp;
use serde::Deserialize;

use crate::memory::NewMemory;
use crate::model::{
    Approval, AuditEvent, Author, MemoryKind, QueueEntry, QueueEntryId, QueueState, Run,
    TestRecord, TicketState, Verdict,
};
use crate::workspace::Workspace;
use git::Merged;

/// `[merge]` in shopfloor.toml.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MergeConfig {
    /// `serial` (one entry at a time) or `batch`.
    pub mode: Mode,
    /// Entries tested together in batch mode.
    pub batch_size: usize,
    /// Times a red test run is tried again before it counts (flaky tests); each is recorded.
    pub flaky_retries: u32,
    /// Seconds a test run may take.
    pub test_timeout_s: u64,
    /// A remote of the factory's clone to push main to after each landing.
    pub push: Option<String>,
}

impl Default for MergeConfig {
    fn default() -> Self {
        MergeConfig {
            mode: Mode::Serial,
            batch_size: 8,
            flaky_retries: 0,
            test_timeout_s: 1800,
            push: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Serial,
    Batch,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("queue entry {0} does not exist; `shopfloor queue list` shows the queue")]
    NoEntry(QueueEntryId),
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
    /// Where candidates are checked out to be tested.
    scratch: PathBuf,
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
    })?;
    audit(
        ws,
        "factory",
        "queue.enqueued",
        format!("entry {} branch {} run {}", e.id, e.branch, run.id),
    );
    Ok(Some(e))
}

/// A human approves `id`, pinned to the branch head the entry holds now.
pub fn approve(
    ws: &Workspace,
    id: QueueEntryId,
    by: &str,
    note: Option<String>,
) -> Result<QueueEntry> {
    let e = ws.store.queue_entry(id)?.ok_or(QueueError::NoEntry(id))?;
    if e.state.is_finished() {
        return Err(QueueError::Invalid(format!(
            "entry {id} is {}; only a queued or waiting entry can be approved",
            e.state.name()
        )));
    }
    let approval = Approval {
        entry: id,
        commit: e.head.clone(),
        by: by.to_string(),
        note: note.clone(),
        ts: Timestamp::now(),
    };
    let e = update(ws, id, |e| {
        e.approval = Some(approval.clone());
        if e.state == QueueState::AwaitingApproval {
            e.state = QueueState::Queued;
        }
        Ok(())
    })?;
    audit(
        ws,
        &format!("human:{by}"),
        "queue.approved",
        format!(
            "entry {id} at {}{}",
            short(&e.head),
            note.as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        ),
    );
    if let Some(n) = note {
        remember(
            ws,
            &e,
            MemoryKind::Decision,
            format!("{by} approved `{}` for landing: {n}", e.branch),
            Vec::new(),
            Author::Human {
                name: by.to_string(),
            },
        );
    }
    Ok(e)
}

/// A human rejects `id` with a reason: it never lands.
pub fn reject(ws: &Workspace, id: QueueEntryId, by: &str, reason: &str) -> Result<QueueEntry> {
    let e = ws.store.queue_entry(id)?.ok_or(QueueError::NoEntry(id))?;
    if e.state == QueueState::Merged {
        return Err(QueueError::Invalid(format!(
            "entry {id} has already landed"
        )));
    }
    let e = update(ws, id, |e| {
        e.state = QueueState::Rejected;
        e.reason = Some(format!("rejected by {by}: {reason}"));
        Ok(())
    })?;
    set_ticket_state(ws, e.ticket, TicketState::Failed)?;
    audit(
        ws,
        &format!("human:{by}"),
        "queue.rejected",
        format!("entry {id}: {reason}"),
    );
    remember(
        ws,
        &e,
        MemoryKind::Lesson,
        format!("{by} rejected `{}`: {reason}", e.branch),
        Vec::new(),
        Author::Human {
            name: by.to_string(),
        },
    );
    Ok(e)
}

/// Move `id` ahead of every other entry.
pub fn bump(ws: &Workspace, id: QueueEntryId, by: &str) -> Result<QueueEntry> {
    let e = ws.store.queue_entry(id)?.ok_or(QueueError::NoEntry(id))?;
    if e.state.is_finished() {
        return Err(QueueError::Invalid(format!(
            "entry {id} is {}; only an entry still to land can be bumped",
            e.state.name()
        )));
    }
    let top = ws
        .store
        .queue_entries()?
        .iter()
        .map(|e| e.priority)
        .max()
        .unwrap_or(0);
    let e = update(ws, id, |e| {
        e.priority = top + 1;
        Ok(())
    })?;
    audit(
        ws,
        &format!("human:{by}"),
        "queue.bumped",
        format!("entry {id} to priority {}", e.priority),
    );
    Ok(e)
}

fn update(
    ws: &Workspace,
    id: QueueEntryId,
    f: impl FnOnce(&mut QueueEntry) -> Result<()>,
) -> Result<QueueEntry> {
    let mut e = ws.store.queue_entry(id)?.ok_or(QueueError::NoEntry(id))?;
    f(&mut e)?;
    e.updated = Some(Timestamp::now());
    Ok(ws.store.put_queue_entry(e)?)
}

/// Move an entry's ticket, if it has one, to `state`.
fn set_ticket_state(
    ws: &Workspace,
    ticket: Option<crate::model::TicketId>,
    state: TicketState,
) -> Result<()> {
    if let Some(t) = ticket {
        ws.store.update_ticket(t, move |t| {
            t.state = state;
            Ok(())
        })?;
    }
    Ok(())
}

/// A commit hash as the queue prints it: its first ten characters.
pub fn short(h: &str) -> &str {
    &h[..h.len().min(10)]
}

/// Landings, bounces and rejections become memories on the paths involved, so the next
/// agent on those paths finds them in its context pack.
fn remember(
    ws: &Workspace,
    e: &QueueEntry,
    kind: MemoryKind,
    text: String,
    paths: Vec<String>,
    author: Author,
) {
    let mut m = NewMemory::new(kind, text, author);
    m.paths = paths;
    m.tags = vec!["merge-queue".into()];
    if let Some(r) = e.run {
        m.source = Some(crate::model::StepRef { run: r, step: 0 });
    }
    if let Err(err) = ws.memory.add(m) {
        tracing::error!(entry = e.id, error = %err, "could not write the queue's memory");
    }
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
        let scratch = ws.info.dir.join("queue");
        MergeQueue {
            ws,
            repo_path,
            main,
            cfg,
            test_command,
            judge,
            scratch,
        }
    }

    fn repo(&self) -> Result<Repository> {
        Ok(Repository::open(&self.repo_path)?)
    }

    fn main_oid(&self, repo: &Repository) -> Result<Oid> {
        Ok(repo.refname_to_id(&format!("refs/heads/{}", self.main))?)
    }

    /// After a crash: an entry caught mid-test is queued again, unless its candidate is
    /// already in main (the crash fell between moving main and recording it).
    pub fn recover(&self) -> Result<()> {
        let repo = self.repo()?;
        let main = self.main_oid(&repo)?;
        for e in self.ws.store.queue_entries()? {
            if e.state != QueueState::Testing {
                continue;
            }
            let landed = match e.candidate.as_deref().map(oid).transpose()? {
                Some(c) => c == main || repo.graph_descendant_of(main, c).unwrap_or(false),
                None => false,
            };
            if landed {
                self.finish_landed(&repo, e.id, main)?;
            } else {
                update(self.ws, e.id, |e| {
                    e.state = QueueState::Queued;
                    e.reason = Some("the factory stopped while it was tested; queued again".into());
                    Ok(())
                })?;
            }
        }
        let _ = std::fs::remove_dir_all(&self.scratch);
        Ok(())
    }

    /// One turn: the head entry (serial) or a batch. Idle when nothing is queued.
    pub fn turn(&self) -> Result<Turn> {
        let repo = self.repo()?;
        let mut turn = Turn::default();
        let queued: Vec<QueueEntry> = ordered(self.ws.store.queue_entries()?)
            .into_iter()
            // Turns never overlap, so an entry still `testing` when one starts was left by
            // a factory that died mid-turn: take it again (a landing that did reach main
            // is found as already in it), whether or not `recover` ran.
            .filter(|e| matches!(e.state, QueueState::Queued | QueueState::Testing))
            .collect();
        if queued.is_empty() {
            return Ok(turn);
        }
        // Refresh each entry's branch head: a new commit voids an approval.
        let mut ready = Vec::new();
        for e in queued {
            let e = self.refresh_head(&repo, e)?;
            ready.push(e);
        }
        match self.cfg.mode {
            Mode::Serial => self.serial(&repo, &ready[0], &mut turn)?,
            Mode::Batch => {
                let batch: Vec<QueueEntry> =
                    ready.into_iter().take(self.cfg.batch_size.max(1)).collect();
                self.batch(&repo, batch, &mut turn)?;
            }
        }
        Ok(turn)
    }

    fn refresh_head(&self, repo: &Repository, e: QueueEntry) -> Result<QueueEntry> {
        let head = match repo.refname_to_id(&format!("refs/heads/{}", e.branch)) {
            Ok(h) => hex(h),
            Err(_) => return Ok(e),
        };
        if head == e.head {
            return Ok(e);
        }
        let id = e.id;
        update(self.ws, id, |e| {
            e.head = head.clone();
            if e.approval.as_ref().is_some_and(|a| a.commit != head) {
                e.reason =
                    Some("the branch changed after it was approved: the approval is void".into());
            }
            Ok(())
        })
    }

    /// The policy requires tests, and there is no command to run them.
    fn untestable(&self) -> bool {
        self.judge.requires_tests()
            && self
                .test_command
                .as_deref()
                .is_none_or(|c| c.trim().is_empty())
    }

    /// Whether `e` holds a human approval for exactly its current head.
    fn approved(e: &QueueEntry) -> bool {
        e.approval.as_ref().is_some_and(|a| a.commit == e.head)
    }

    /// Whether the entry is approved as the store has it now: an approval may arrive
    /// while its tests run.
    fn approved_now(&self, id: QueueEntryId) -> Result<bool> {
        let e = self
            .ws
            .store
            .queue_entry(id)?
            .ok_or(QueueError::NoEntry(id))?;
        Ok(Self::approved(&e))
    }

    fn serial(&self, repo: &Repository, e: &QueueEntry, turn: &mut Turn) -> Result<()> {
        let base = self.main_oid(repo)?;
        let Some(candidate) = self.merge_or_bounce(repo, e, base, turn)? else {
            return Ok(());
        };
        let verdict = self
            .judge
            .judge(repo, base, candidate)
            .map_err(QueueError::Policy)?;
        if !self.gate_allows(e, &verdict, turn)? {
            return Ok(());
        }
        if self.untestable() && !self.approved_now(e.id)? {
            // The gate requires green tests that cannot run: a human decides.
            let v = verdict.clone();
            update(self.ws, e.id, |x| {
                x.state = QueueState::AwaitingApproval;
                x.verdict = Some(v);
                x.reason = Some("the policy requires the `test` check, but no [test] command is configured: configure one, or approve to land it untested".into());
                Ok(())
            })?;
            turn.waiting.push(e.id);
            return Ok(());
        }
        self.set_testing(e.id, base, candidate, &verdict)?;
        let record = self.test(repo, candidate, &[e.id], turn)?;
        let ok = record.ok;
        update(self.ws, e.id, |x| {
            x.tests.push(record.clone());
            Ok(())
        })?;
        if !ok {
            self.bounce(
                e.id,
                format!(
                    "the tests failed on {} (merged onto main {}):\n{}",
                    short(&hex(candidate)),
                    short(&hex(base)),
                    tail(&record.log, 2000)
                ),
                Vec::new(),
                turn,
            )?;
            return Ok(());
        }
        if verdict.needs_human && !self.approved_now(e.id)? {
            update(self.ws, e.id, |x| {
                x.state = QueueState::AwaitingApproval;
                x.reason = Some(format!(
                    "tested green; waiting for a human: {}",
                    verdict.reasons.join("; ")
                ));
                Ok(())
            })?;
            turn.waiting.push(e.id);
            return Ok(());
        }
        self.land(repo, &[e.id], base, candidate, turn)
    }

    /// Merge the entry onto `base`; a conflict bounces it. Returns the candidate.
    fn merge_or_bounce(
        &self,
        repo: &Repository,
        e: &QueueEntry,
        base: Oid,
        turn: &mut Turn,
    ) -> Result<Option<Oid>> {
        let message = format!(
            "Merge {}{}",
            e.branch,
            e.ticket
                .map(|t| format!(" (ticket {t})"))
                .unwrap_or_default()
        );
        match git::merge(repo, base, oid(&e.head)?, &message)? {
            Merged::Clean { commit } => Ok(Some(commit)),
            Merged::AlreadyIn => {
                self.finish_landed(repo, e.id, base)?;
                turn.landed.push(e.id);
                Ok(None)
            }
            Merged::Conflict { paths } => {
                self.bounce(
                    e.id,
                    format!(
                        "merge conflict with main {} in {}; rebuild the change on the new main",
                        short(&hex(base)),
                        paths.join(", ")
                    ),
                    paths,
                    turn,
                )?;
                Ok(None)
            }
        }
    }

    /// Apply the policy's verdict: a denial rejects; otherwise go on (a needed approval
    /// is checked after the tests, so the human approves a green candidate).
    fn gate_allows(&self, e: &QueueEntry, verdict: &Verdict, turn: &mut Turn) -> Result<bool> {
        if verdict.allowed {
            return Ok(true);
        }
        let reason = format!("the policy rejects it: {}", verdict.reasons.join("; "));
        let v = verdict.clone();
        let r = reason.clone();
        let entry = update(self.ws, e.id, |x| {
            x.state = QueueState::Rejected;
            x.verdict = Some(v);
            x.reason = Some(r);
            Ok(())
        })?;
        set_ticket_state(self.ws, entry.ticket, TicketState::Failed)?;
        audit(
            self.ws,
            "merge-queue",
            "queue.rejected",
            format!("entry {}: {reason}", e.id),
        );
        remember(
            self.ws,
            &entry,
            MemoryKind::Lesson,
            format!(
                "`{}` was rejected by the merge queue: {reason}",
                entry.branch
            ),
            verdict.denied.clone(),
            Author::Agent {
                name: "merge-queue".into(),
            },
        );
        turn.rejected.push(e.id);
        Ok(false)
    }

    fn set_testing(
        &self,
        id: QueueEntryId,
        base: Oid,
        candidate: Oid,
        verdict: &Verdict,
    ) -> Result<()> {
        let v = verdict.clone();
        update(self.ws, id, |x| {
            x.state = QueueState::Testing;
            x.base = Some(hex(base));
            x.candidate = Some(hex(candidate));
            x.verdict = Some(v);
            x.reason = None;
            Ok(())
        })?;
        Ok(())
    }

    /// Run the test command on `candidate`, with the configured flaky retries.
    fn test(
        &self,
        repo: &Repository,
        candidate: Oid,
        batch: &[QueueEntryId],
        turn: &mut Turn,
    ) -> Result<TestRecord> {
        let dir = self.scratch.join(hex(candidate));
        let _ = std::fs::remove_dir_all(&dir);
        git::checkout(repo, candidate, &dir)?;
        let mut retry = 0;
        let record = loop {
            turn.test_runs += 1;
            let out = test_run::run(
                self.test_command.as_deref(),
                &dir,
                Duration::from_secs(self.cfg.test_timeout_s),
            );
            let record = TestRecord {
                commit: hex(candidate),
                ok: out.ok,
                exit_code: out.exit_code,
                seconds: out.seconds,
                log: out.log,
                batch: batch.to_vec(),
                retry,
            };
            if record.ok || retry >= self.cfg.flaky_retries {
                break record;
            }
            // Recorded, then tried again: a flaky test is visible in the entry's history.
            for id in batch {
                let r = record.clone();
                update(self.ws, *id, |x| {
                    x.tests.push(r);
                    Ok(())
                })?;
            }
            retry += 1;
        };
        let _ = std::fs::remove_dir_all(&dir);
        Ok(record)
    }

    fn bounce(
        &self,
        id: QueueEntryId,
        reason: String,
        paths: Vec<String>,
        turn: &mut Turn,
    ) -> Result<()> {
        let r = reason.clone();
        let e = update(self.ws, id, |x| {
            x.state = QueueState::Bounced;
            x.reason = Some(r);
            Ok(())
        })?;
        if let Some(t) = e.ticket {
            // Back to its ticket: the scheduler runs it again on the new main, with this
            // reason in the prompt, until its attempts are spent.
            // Attempts as the scheduler counts them: interruptions are none of the agent's.
            let max = self.ws.config.factory.max_attempts;
            let spent = match self.ws.store.ticket(t)? {
                Some(ticket) => self.ws.store.attempts(&ticket)?.counted >= max,
                None => false,
            };
            self.ws.store.update_ticket(t, move |t| {
                if t.state == TicketState::Review {
                    t.state = if spent {
                        TicketState::Failed
                    } else {
                        TicketState::Queued
                    };
                }
                Ok(())
            })?;
        }
        audit(
            self.ws,
            "merge-queue",
            "queue.bounced",
            format!("entry {id}: {}", first_line(&reason)),
        );
        remember(
            self.ws,
            &e,
            MemoryKind::Lesson,
            format!("`{}` bounced from the merge queue: {reason}", e.branch),
            paths,
            Author::Agent {
                name: "merge-queue".into(),
            },
        );
        turn.bounced.push(id);
        Ok(())
    }

    /// Move main to `candidate` if it is still at `base`; record the landing.
    fn land(
        &self,
        repo: &Repository,
        ids: &[QueueEntryId],
        base: Oid,
        candidate: Oid,
        turn: &mut Turn,
    ) -> Result<()> {
        let moved = git::compare_and_swap(
            repo,
            &self.main,
            base,
            candidate,
            &format!("merge queue: land entries {ids:?}"),
        )?;
        if !moved {
            // Someone else moved main: rebuild on the new main next turn.
            for id in ids {
                update(self.ws, *id, |x| {
                    x.state = QueueState::Queued;
                    x.reason =
                        Some("main moved while it was tested; rebuilt on the new main".into());
                    Ok(())
                })?;
            }
            audit(
                self.ws,
                "merge-queue",
                "queue.raced",
                format!(
                    "entries {ids:?}: main moved from {} before landing",
                    short(&hex(base))
                ),
            );
            return Ok(());
        }
        for id in ids {
            self.finish_landed(repo, *id, candidate)?;
            turn.landed.push(*id);
        }
        if let Some(remote) = &self.cfg.push {
            self.push(repo, remote)?;
        }
        Ok(())
    }

    fn finish_landed(&self, repo: &Repository, id: QueueEntryId, main: Oid) -> Result<()> {
        let e = update(self.ws, id, |x| {
            x.state = QueueState::Merged;
            x.landed = Some(hex(main));
            x.reason = None;
            Ok(())
        })?;
        set_ticket_state(self.ws, e.ticket, TicketState::Merged)?;
        let (paths, lines) = match (e.base.as_deref(), e.candidate.as_deref()) {
            (Some(b), Some(c)) => git::diff_stat(repo, oid(b)?, oid(c)?).unwrap_or_default(),
            _ => (Vec::new(), 0),
        };
        // The lessons its run received held: it landed on their paths.
        if let Some(run) = e.run.and_then(|r| self.ws.store.run(r).ok().flatten()) {
            crate::learn::confirm_landed(self.ws, run.id, &run.recalled, &paths);
        }
        audit(
            self.ws,
            "merge-queue",
            "queue.merged",
            format!("entry {id} {} -> main {}", e.branch, short(&hex(main))),
        );
        let title = e
            .ticket
            .and_then(|t| self.ws.store.ticket(t).ok().flatten())
            .map(|t| t.title)
            .unwrap_or_else(|| e.branch.clone());
        let approved = e
            .approval
            .as_ref()
            .map(|a| {
                format!(
                    "; approved by {}{}",
                    a.by,
                    a.note
                        .as_deref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                )
            })
            .unwrap_or_default();
        remember(
            self.ws,
            &e,
            MemoryKind::Decision,
            format!(
                "Landed on main: {title} (`{}`, {} files, {lines} lines){approved}",
                e.branch,
                paths.len()
            ),
            paths,
            Author::Agent {
                name: "merge-queue".into(),
            },
        );
        Ok(())
    }

    fn push(&self, repo: &Repository, remote: &str) -> Result<()> {
        let mut r = repo.find_remote(remote).map_err(|e| {
            QueueError::Invalid(format!(
                "[merge] push = \"{remote}\": no such remote in the factory's clone: {e}"
            ))
        })?;
        let spec = format!("refs/heads/{0}:refs/heads/{0}", self.main);
        let mut refused = None;
        let mut cbs = git2::RemoteCallbacks::new();
        cbs.push_update_reference(|name, status| {
            if let Some(s) = status {
                refused = Some(format!("{name}: {s}"));
            }
            Ok(())
        });
        let mut opts = git2::PushOptions::new();
        opts.remote_callbacks(cbs);
        let pushed = r.push(&[&spec], Some(&mut opts));
        drop(opts);
        if let Err(e) = pushed {
            audit(self.ws, "merge-queue", "queue.push_failed", e.to_string());
            return Err(QueueError::Invalid(format!(
                "pushing main to `{remote}` failed: {e}; main landed in the factory's clone and will be pushed after the next landing"
            )));
        }
        if let Some(why) = refused {
            audit(self.ws, "merge-queue", "queue.push_refused", why.clone());
            return Err(QueueError::Invalid(format!(
                "`{remote}` refused the push of main ({why}); main landed in the factory's clone; pull and resolve, then the next landing pushes again"
            )));
        }
        Ok(())
    }

    /// Batch mode: merge the entries in order onto main, test the whole; on red, bisect
    /// over prefixes for the first entry that breaks it.
    fn batch(&self, repo: &Repository, entries: Vec<QueueEntry>, turn: &mut Turn) -> Result<()> {
        if self.untestable() {
            // Nothing to batch: each entry waits for a human, one at a time.
            return self.serial(repo, &entries[0], turn);
        }
        let base = self.main_oid(repo)?;
        // Merge in order; a conflict bounces that entry and the rest go on without it.
        let mut ids: Vec<QueueEntryId> = Vec::new();
        let mut candidates: Vec<Oid> = Vec::new();
        let mut tip = base;
        for e in entries {
            let Some(candidate) = self.merge_or_bounce(repo, &e, tip, turn)? else {
                continue;
            };
            // Each entry is judged on its own diff from the main it builds on.
            let own_base = tip;
            let verdict = self
                .judge
                .judge(repo, own_base, candidate)
                .map_err(QueueError::Policy)?;
            if !self.gate_allows(&e, &verdict, turn)? {
                continue;
            }
            if verdict.needs_human && !Self::approved(&e) {
                // Tested alone, later, in serial: a human waits on it, not the batch.
                if turn.landed.is_empty() && ids.is_empty() {
                    return self.serial(repo, &e, turn);
                }
                continue;
            }
            self.set_testing(e.id, own_base, candidate, &verdict)?;
            ids.push(e.id);
            candidates.push(candidate);
            tip = candidate;
        }
        if ids.is_empty() {
            return Ok(());
        }
        // Find the longest green prefix: the whole batch first, then bisect.
        let mut results: Vec<Option<bool>> = vec![None; ids.len()];
        let mut record_for = |k: usize, this: &Self, turn: &mut Turn| -> Result<bool> {
            if let Some(r) = results[k] {
                return Ok(r);
            }
            let record = this.test(repo, candidates[k], &ids[..=k], turn)?;
            for id in &ids[..=k] {
                let r = record.clone();
                update(this.ws, *id, |x| {
                    x.tests.push(r);
                    Ok(())
                })?;
            }
            results[k] = Some(record.ok);
            Ok(record.ok)
        };
        let last = ids.len() - 1;
        let (green, culprit) = if record_for(last, self, turn)? {
            (Some(last), None)
        } else {
            // Invariant: prefix `lo` (exclusive) is green or empty, prefix `hi` is red.
            let (mut lo, mut hi) = (0usize, last);
            let mut green = None;
            while lo < hi {
                let mid = (lo + hi) / 2;
                if record_for(mid, self, turn)? {
                    green = Some(mid);
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            (green, Some(lo))
        };
        if let Some(g) = green {
            let landing: Vec<QueueEntryId> = ids[..=g].to_vec();
            self.land(repo, &landing, base, candidates[g], turn)?;
        }
        if let Some(c) = culprit {
            let log = self
                .ws
                .store
                .queue_entry(ids[c])?
                .and_then(|e| e.tests.last().map(|t| t.log.clone()))
                .unwrap_or_default();
            self.bounce(
                ids[c],
                format!(
                    "it breaks the tests (found by bisecting a batch of {}):\n{}",
                    ids.len(),
                    tail(&log, 2000)
                ),
                Vec::new(),
                turn,
            )?;
            // The rest were tested only with the culprit in: queue them again.
            for id in &ids[c + 1..] {
                update(self.ws, *id, |x| {
                    x.state = QueueState::Queued;
                    Ok(())
                })?;
            }
        }
        Ok(())
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn tail(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    s.chars().skip(n - max).collect()
}

/// The factory's clone and its main, for queue commands run without a factory.
pub fn clone_of(info: &crate::workspace::WorkspaceInfo) -> PathBuf {
    info.dir.join("repo")
}

/// The marker file that pauses the queue: it outlives the factory, and a command works on
/// it with or without one running.
fn pause_file(info: &crate::workspace::WorkspaceInfo) -> PathBuf {
    info.dir.join("queue.paused")
}

pub fn is_paused(info: &crate::workspace::WorkspaceInfo) -> bool {
    pause_file(info).exists()
}

pub fn set_paused(ws: &Workspace, paused: bool, by: &str) -> Result<()> {
    let f = pause_file(&ws.info);
    let done = if paused {
        std::fs::write(&f, format!("paused by {by} at {}\n", Timestamp::now()))
    } else {
        match std::fs::remove_file(&f) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    };
    done.map_err(|e| QueueError::Invalid(format!("cannot write {}: {e}", f.display())))?;
    audit(
        ws,
        &format!("human:{by}"),
        if paused {
            "queue.paused"
        } else {
            "queue.resumed"
        },
        String::new(),
    );
    Ok(())
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
    let repo = Repository::open(clone_of(&ws.info))?;
    let (from, to) = entry_span(&repo, e)?;
    let (files, lines) = git::diff_stat(&repo, from, to)?;
    let patch = git::diff_patch(&repo, from, to, limit)?;
    Ok((files, lines, patch))
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

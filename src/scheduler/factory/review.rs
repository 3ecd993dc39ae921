//! Agent review (`[review]`): after a queue entry's tests pass, a reviewer agent reads its
//! change in a read-only checkout of the candidate, with the ticket, the diff and the
//! context pack, and answers through the MCP tool `review_submit`. The merge queue's turn
//! asks ([`crate::mergeq::driver::Reviewer`]) and waits; the review runs are runs like any
//! other (a trace, a token, a live pane), with no ticket and no branch: nothing they write
//! lands. Only the run asked to review an entry can answer for it, so no agent reviews its
//! own change, and a coding agent cannot approve anything.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;

use super::ingest::Pumped;
use super::supervise::describe_exit;
use super::{Factory, FactoryError, Live, Site, Stop, blocking, now};
use crate::agent::OutputDecoder;
use crate::mergeq::QueueError;
use crate::mergeq::driver::{ReviewAnswer, ReviewJob, Reviewer};
use crate::model::{
    LineComment, QueueEntryId, QueueState, Review, ReviewVerdict, Run, RunId, RunState, Step, Usage,
};
use crate::sandbox;
use crate::scheduler::context;
use crate::scheduler::decide::{RunOutcome, Timeouts};

/// The most of a change's diff a reviewer's prompt carries; the rest it reads in its checkout.
const REVIEW_DIFF_CHARS: usize = 48_000;
/// How often a live review looks whether a person decided its entry meanwhile.
const DECIDED_CHECK: std::time::Duration = std::time::Duration::from_millis(500);

/// A review run waiting for its verdict.
pub(super) struct Reviewing {
    entry: QueueEntryId,
    head: String,
    agent: String,
    submitted: Option<Review>,
}

/// The factory as the merge queue's reviewer: each job a review run, all at once.
pub(super) struct FactoryReviewer {
    pub(super) factory: Arc<Factory>,
    pub(super) runtime: tokio::runtime::Handle,
}

impl Reviewer for FactoryReviewer {
    fn review(&self, jobs: &[ReviewJob]) -> Result<Vec<ReviewAnswer>, QueueError> {
        let runs = jobs.iter().map(|j| self.factory.clone().review(j.clone()));
        // The queue's turn runs on a blocking thread: it waits here for its reviews.
        Ok(self.runtime.block_on(futures_util::future::join_all(runs)))
    }

    fn required(&self) -> bool {
        self.factory
            .ws
            .config
            .policy
            .required_checks
            .iter()
            .any(|c| c == "review")
    }
}

impl Factory {
    /// `review_submit` from run `run`: recorded for the entry it reviews, or refused (and
    /// audited) when the run reviews nothing.
    pub fn submit_review(
        &self,
        run: RunId,
        verdict: ReviewVerdict,
        summary: String,
        comments: Vec<(String, u32, String)>,
    ) -> Result<String, String> {
        let mut reviewing = self.reviewing.lock().expect("reviewing lock");
        let Some(r) = reviewing.get_mut(&run) else {
            drop(reviewing);
            crate::mergeq::audit(
                &self.ws,
                &format!("run:{run}"),
                "review.refused",
                "review_submit from a run that reviews nothing".into(),
            );
            return Err(format!(
                "review_submit: run {run} is not a review run, so it has nothing to review; an agent never reviews its own change (the merge queue asks a reviewer once your branch's tests pass)"
            ));
        };
        let by = format!("review run {run} ({})", r.agent);
        let ts = Timestamp::now();
        let n = comments.len();
        r.submitted = Some(Review {
            run,
            agent: r.agent.clone(),
            head: r.head.clone(),
            verdict,
            summary,
            comments: comments
                .into_iter()
                .map(|(path, line, text)| LineComment {
                    path,
                    line,
                    text,
                    by: by.clone(),
                    ts,
                })
                .collect(),
            ts,
        });
        Ok(format!(
            "Review of queue entry {} recorded: {} with {n} comment{}. You are done: end your turn.\n",
            r.entry,
            verdict.name(),
            if n == 1 { "" } else { "s" }
        ))
    }

    /// One review run for `job`, start to end; never an error: a run that could not
    /// review says why.
    async fn review(self: Arc<Self>, job: ReviewJob) -> ReviewAnswer {
        let ws = self.ws.clone();
        let clone = self.clone.clone();
        let j = job.clone();
        // What the change touches decides whether `[review]` wants it, and its author who
        // may not review it.
        let looked = blocking(move || {
            let repo = git2::Repository::open(&clone)?;
            let (from, to) = change_of(&j)?;
            let paths = crate::diffstat::between(&repo, from, to)?.files;
            let author = match j.entry.run {
                Some(r) => ws.store.run(r)?.map(|r| r.agent),
                None => None,
            };
            Ok((paths, author))
        })
        .await;
        let (paths, author) = match looked {
            Ok(x) => x,
            Err(e) => return ReviewAnswer::NoVerdict(format!("could not read the change: {e}")),
        };
        let review = &self.ws.config.review;
        if !review.wants(&paths) {
            return ReviewAnswer::NotWanted;
        }
        let Some(agent) = review.reviewer_for(author.as_deref().unwrap_or_default()) else {
            return ReviewAnswer::NotWanted;
        };
        let agent = agent.to_string();
        let ws = self.ws.clone();
        let (kind, entry, a2) = (self.sandbox.kind().to_string(), job.entry.id, agent.clone());
        let created = blocking(move || {
            Ok(ws.store.create_run(Run {
                source: format!("review of queue entry {entry}"),
                sandbox: Some(kind),
                review_of: Some(entry),
                ..Run::new(a2, RunState::Preparing, now())
            })?)
        })
        .await;
        let run = match created {
            Ok(r) => r,
            Err(e) => return ReviewAnswer::NoVerdict(format!("could not start a review run: {e}")),
        };
        let id = run.id;
        self.reviewing.lock().expect("reviewing lock").insert(
            id,
            Reviewing {
                entry: job.entry.id,
                head: job.entry.head.clone(),
                agent: agent.clone(),
                submitted: None,
            },
        );
        let (stop, stop_rx) = watch::channel(Stop::No);
        self.live.lock().expect("live lock").insert(
            id,
            Live {
                ticket: None,
                host: crate::model::LOCAL.to_string(),
                agent: agent.clone(),
                title: format!("review of queue entry {}", job.entry.id),
                stop,
                files: Arc::new(Mutex::new(vec![])),
            },
        );
        self.emit_run(
            &run,
            Some(format!("reviewing queue entry {}", job.entry.id)),
        );
        // A person who decides the entry meanwhile (a reject, a cancel) stops its review:
        // nothing it could say would change the entry, and it costs.
        let watcher = {
            let me = self.clone();
            let entry = job.entry.id;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(DECIDED_CHECK).await;
                    let ws = me.ws.clone();
                    let now = blocking(move || Ok(ws.store.queue_entry(entry)?)).await;
                    if let Ok(Some(e)) = now
                        && e.state != QueueState::Testing
                    {
                        me.stop_run(id, Stop::Cancel);
                        return;
                    }
                }
            })
        };
        let result = self.clone().review_run(&run, &agent, &job, stop_rx).await;
        watcher.abort();
        self.tokens.revoke(id);
        self.live.lock().expect("live lock").remove(&id);
        let submitted = self
            .reviewing
            .lock()
            .expect("reviewing lock")
            .remove(&id)
            .and_then(|r| r.submitted);
        let (state, outcome, usage) = match (result, &submitted) {
            (Ok((why, usage, true)), _) => (
                RunState::Cancelled,
                format!("review run {id} was stopped: {why}"),
                usage,
            ),
            (Ok((_, usage, _)), Some(r)) => (
                RunState::Succeeded,
                format!(
                    "reviewed queue entry {}: {}",
                    job.entry.id,
                    r.verdict.name()
                ),
                usage,
            ),
            (Ok((why, usage, _)), None) => (
                RunState::Failed,
                format!("review run {id} ended without calling review_submit ({why})"),
                usage,
            ),
            (Err(e), _) => (
                RunState::Failed,
                format!("review run {id} could not run: {e}"),
                Usage::default(),
            ),
        };
        let answer = match submitted {
            Some(r) if state == RunState::Succeeded => ReviewAnswer::Given(r),
            _ => ReviewAnswer::NoVerdict(outcome.clone()),
        };
        let ws = self.ws.clone();
        let o2 = outcome.clone();
        match blocking(move || {
            Ok(ws.store.update_run(id, move |r| {
                r.state = state;
                r.ended = Some(now());
                r.usage = usage.clone();
                r.outcome = Some(o2.clone());
            })?)
        })
        .await
        {
            Ok(r) => self.emit_run(&r, Some(outcome)),
            Err(e) => {
                tracing::error!(run = id, error = %e, "could not record the review run's end")
            }
        }
        self.wake();
        answer
    }

    /// Prepare the read-only checkout, launch the reviewer, pump its output; how it ended
    /// in words, what it spent, and whether a person (or the factory) stopped it.
    async fn review_run(
        self: Arc<Self>,
        run: &Run,
        agent: &str,
        job: &ReviewJob,
        mut stop: watch::Receiver<Stop>,
    ) -> Result<(String, Usage, bool), FactoryError> {
        let profile = self
            .cfg
            .agents
            .get(agent)
            .cloned()
            .ok_or_else(|| FactoryError::Other(format!("no agent profile `{agent}`")))?;
        let (root, clone, entry, rid, candidate) = (
            self.ws.info.worktrees_dir(),
            self.clone.clone(),
            job.entry.id,
            run.id,
            job.candidate.clone(),
        );
        let prepared = blocking(move || {
            Ok(sandbox::prepare_review(
                &root, &clone, entry, rid, &candidate,
            )?)
        })
        .await?;
        let result = self
            .review_in(run, agent, &profile, job, &prepared, &mut stop)
            .await;
        if let Err(e) = sandbox::remove(&prepared) {
            tracing::warn!(run = run.id, error = %e, "could not remove the review's checkout");
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn review_in(
        &self,
        run: &Run,
        agent: &str,
        profile: &crate::agent::AgentProfile,
        job: &ReviewJob,
        prepared: &sandbox::Prepared,
        stop: &mut watch::Receiver<Stop>,
    ) -> Result<(String, Usage, bool), FactoryError> {
        let (ws, clone, j) = (self.ws.clone(), self.clone.clone(), job.clone());
        let prompt = blocking(move || {
            let repo = git2::Repository::open(&clone)?;
            let (from, to) = change_of(&j)?;
            let diff = crate::mergeq::git::diff_patch(&repo, from, to, REVIEW_DIFF_CHARS)?;
            let e = j.entry;
            let ticket = match e.ticket {
                Some(t) => ws.store.ticket(t)?,
                None => None,
            };
            let pack = match &ticket {
                Some(t) => Some(
                    context::build(&ws.memory, t, Vec::new(), Vec::new(), &|_| false).map_err(
                        |e| FactoryError::Other(format!("building the context pack: {e}")),
                    )?,
                ),
                None => None,
            };
            Ok(review_prompt(&e, ticket.as_ref(), pack.as_ref(), &diff))
        })
        .await?;
        let plan = self
            .plan_launch(run, agent, profile, &prompt, prepared, &Site::Local)
            .await?;
        // Its own files written, the checkout is sealed: a review reads.
        let dir = prepared.dir.clone();
        blocking(move || Ok(sandbox::seal(&dir)?)).await?;
        let mut process = self
            .launch_agent(
                run,
                &Site::Local,
                &plan,
                plan.env.clone(),
                prepared,
                true,
                |_| format!("reviewing queue entry {}", job.entry.id),
            )
            .await?;
        let mut builder = self.trace_builder(run, agent, prepared, &Site::Local);
        let mut decoder = OutputDecoder::new(plan.decoder);
        let mut pending: Vec<Step> = Vec::new();
        let mut tally = crate::trace::Tally::default();
        let files = Arc::new(Mutex::new(Vec::new()));
        let wall = SignedDuration::from_secs(self.ws.config.review.timeout_s as i64);
        let (exit, stopped) = self
            .pump(
                Pumped {
                    run,
                    agent,
                    profile,
                    budget_left: None,
                    timeouts: Timeouts {
                        wall,
                        quiet: self.cfg.timeouts.quiet.min(wall),
                    },
                },
                &mut process,
                &mut decoder,
                &mut builder,
                &mut pending,
                &mut tally,
                &files,
                stop,
            )
            .await?;
        self.flush(run.id, &mut pending).await?;
        let usage = self.run_cost(&tally, profile);
        let stopped_by_someone = matches!(
            stopped,
            Some(RunOutcome::Cancelled | RunOutcome::Interrupted | RunOutcome::Restarted)
        );
        let why = match stopped {
            Some(RunOutcome::TimedOut { why }) => why,
            Some(RunOutcome::Cancelled) => "stopped by a person".into(),
            Some(_) => "the factory stopped it".into(),
            None if exit.success() => "the reviewer finished".into(),
            None => format!("the reviewer ended: {}", describe_exit(exit)),
        };
        Ok((why, usage, stopped_by_someone))
    }
}

/// The entry's own change: from what it was merged onto to its candidate.
fn change_of(job: &ReviewJob) -> Result<(git2::Oid, git2::Oid), git2::Error> {
    Ok((
        git2::Oid::from_str(&job.base)?,
        git2::Oid::from_str(&job.candidate)?,
    ))
}

/// What a reviewer is asked: the ticket, what the fleet knows, the change, and how to answer.
fn review_prompt(
    e: &crate::model::QueueEntry,
    ticket: Option<&crate::model::Ticket>,
    pack: Option<&context::ContextPack>,
    diff: &str,
) -> String {
    let mut out = match ticket {
        Some(t) => format!(
            "# Review queue entry {}: ticket {}: {}\n\n",
            e.id, t.id, t.title
        ),
        None => format!("# Review queue entry {} (`{}`)\n\n", e.id, e.branch),
    };
    out.push_str(
        "Another agent made the change below for this ticket; its tests pass. You review it \
         before it lands on main. Your working directory is a read-only checkout of the change \
         merged onto main: read the code, run read-only commands; do not edit anything.\n\n",
    );
    if let Some(t) = ticket
        && !t.body.trim().is_empty()
    {
        let _ = write!(out, "## The ticket\n{}\n\n", t.body.trim());
    }
    if let Some(p) = pack {
        out.push_str(&p.render());
    }
    let _ = write!(
        out,
        "## The change (`{}`)\n```diff\n{diff}\n```\n\n",
        e.branch
    );
    out.push_str(
        "## How to answer\nCall the MCP tool `review_submit` once, at the end: `verdict` \
         \"approve\" when the change does what the ticket asks without defects, else \
         \"request_changes\"; a `summary`; and `comments`, each with `path`, `line` (in the new \
         file) and `text` saying what is wrong there and what to do instead. Request changes \
         only for real defects (wrong behaviour, a missing case the ticket names, broken \
         conventions the fleet recorded), not for taste. Your comments go back to the agent \
         that wrote the change.\n",
    );
    out
}

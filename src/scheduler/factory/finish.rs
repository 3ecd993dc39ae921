//! A run's end: its leftovers committed on its branch, its sandbox removed, the scheduler's
//! decision for its ticket carried out, and a failure's lesson recorded.

use super::*;

impl Factory {
    /// Finish a run whose agent has ended (or never started, when setup failed): its
    /// leftovers go on its branch, the run and its ticket are recorded as `outcome` says,
    /// and what happened comes back as a [`RunEnded`] for the schedule side to announce.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn finish(
        &self,
        run: Run,
        ticket: Ticket,
        agent: String,
        site: &Site,
        prepared: sandbox::Prepared,
        outcome: RunOutcome,
        usage: Usage,
    ) -> Result<RunEnded, FactoryError> {
        // Whatever the agent left uncommitted goes on its branch, success or not: a
        // reviewer may want to see what a failed attempt did. The sandbox goes before
        // anyone is told the run ended: its work is on the branch now.
        let message = format!("shopfloor: leftovers of run {} ({agent})", run.id);
        let left = match site {
            Site::Local => {
                let (p, a) = (prepared.clone(), agent.clone());
                blocking(move || {
                    let left = sandbox::commit_leftovers(&p, &message, &a)?;
                    if let Err(e) = sandbox::remove(&p) {
                        tracing::warn!(error = %e, "could not remove the worktree");
                    }
                    Ok(left)
                })
                .await?
            }
            Site::Remote(r) => {
                let left = r.leftovers(&prepared, &message, &agent).await?;
                if let Err(e) = r.remove(&prepared).await {
                    tracing::warn!(run = run.id, error = %e, "could not remove the checkout");
                }
                left
            }
        };
        // How it ended, for the failure digest: the agent's own failure or a timeout.
        let end = match &outcome {
            RunOutcome::Failed { exit, .. } => Some(End::Exit {
                code: exit.0,
                signal: exit.1,
            }),
            RunOutcome::TimedOut { why } | RunOutcome::OverBudget { why } => {
                Some(End::TimedOut { why: why.clone() })
            }
            _ => None,
        };
        let ws = self.ws.clone();
        let outcome2 = outcome.clone();
        let agent2 = agent.clone();
        let max_attempts = self.cfg.max_attempts;
        let end = end.filter(|_| self.cfg.learning);
        let (r, t, next) = blocking(move || {
            // How the ticket's earlier runs count (this one is still live in the store).
            let before = ws
                .store
                .ticket(ticket.id)?
                .map(|t| ws.store.attempts(&t))
                .transpose()?
                .unwrap_or_default();
            let next = decide::after_exit(&outcome2, before, max_attempts);
            let files = left.files_changed.clone();
            let (state, why) = match &outcome2 {
                RunOutcome::Succeeded => (RunState::Succeeded, "the agent finished".to_string()),
                RunOutcome::Failed { why, .. }
                | RunOutcome::TimedOut { why }
                | RunOutcome::OverBudget { why } => {
                    (RunState::Failed, why.clone())
                }
                RunOutcome::Cancelled => (RunState::Cancelled, "stopped by a person".into()),
                RunOutcome::Interrupted => (
                    RunState::Interrupted,
                    "the factory shut down while it ran".into(),
                ),
                RunOutcome::Restarted => (
                    RunState::Restarted,
                    "stopped by a person for a fresh attempt".into(),
                ),
            };
            let r = ws.store.update_run(run.id, move |r| {
                r.state = state;
                r.ended = Some(now());
                r.usage = usage.clone();
                r.files_changed = files.clone();
                r.outcome = Some(why.clone());
            })?;
            // A cancel that raced the run's end wins: the state machine keeps it.
            let after = match &next {
                Next::Requeue | Next::Retry { .. } => AfterRun::Queue,
                Next::Review => AfterRun::Review,
                Next::Fail { .. } => AfterRun::Fail,
                Next::Cancel => AfterRun::Cancel,
            };
            let t = ticket_event(&ws, ticket.id, TicketEvent::RunEnded { next: after })?;
            // A lesson is what the agent's own failure teaches; an interruption teaches none.
            // Its digest goes into the run's trace (the retry's prompt reads it there) and
            // into memory, where the same failure again counts instead of repeating.
            if let (Next::Retry { .. } | Next::Fail { .. }, Some(end)) = (&next, end) {
                let diff = git2::Repository::open(&prepared.clone)
                    .ok()
                    .and_then(|repo| {
                        crate::learn::diff_size(&repo, &prepared.base_commit, &prepared.branch)
                    });
                if let Err(e) = crate::learn::record_failure(
                    &ws,
                    run.id,
                    &ticket,
                    &agent2,
                    end,
                    &r.files_changed,
                    diff,
                ) {
                    tracing::error!(run = run.id, error = %e, "could not record the failure digest");
                }
            }
            Ok((r, t, next))
        })
        .await?;
        Ok(RunEnded {
            run: r,
            ticket: t,
            next,
        })
    }

    /// Carry a supervised run's end out into the factory: a branch for review joins the
    /// merge queue, and the watchers hear how the run and its ticket stand.
    pub(super) async fn announce(&self, ended: RunEnded) {
        let RunEnded {
            run: r,
            ticket: t,
            next,
        } = ended;
        if matches!(next, Next::Review) {
            // The merge queue takes the branch from here; the ticket waits in review.
            let (ws, clone, run) = (self.ws.clone(), self.clone.clone(), r.clone());
            let queued = blocking(move || {
                let repo = git2::Repository::open(&clone)?;
                crate::mergeq::enqueue_run(&ws, &repo, &run)
                    .map_err(|e| FactoryError::Other(e.to_string()))
            })
            .await;
            match queued {
                Ok(Some(e)) => {
                    tracing::info!(run = r.id, entry = e.id, branch = %e.branch, "queued to land");
                    self.wake_queue();
                }
                Ok(None) => {}
                Err(e) => tracing::error!(run = r.id, error = %e, "could not queue the branch"),
            }
        }
        self.emit_run(&r, r.outcome.clone());
        self.emit(FactoryEvent::TicketState {
            ticket: t.id,
            state: t.state,
        });
    }
}

/// How a run ended, as its supervisor hands it back: the run and its ticket as the store
/// now holds them, and what the scheduler decided for the ticket.
#[derive(Clone, Debug)]
pub(crate) struct RunEnded {
    pub run: Run,
    pub ticket: Ticket,
    pub next: Next,
}

//! A live run's output becoming steps: each line decoded, stamped, redacted, appended in
//! batches and indexed, while the run's timeouts, budget and a person's stop are watched.

use super::*;

impl Factory {
    /// Pump a live process's output into steps until it ends or must stop (a person, a
    /// timeout, the budget); then wait for it, revoke its token and record how it exited.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn pump(
        &self,
        what: Pumped<'_>,
        process: &mut sandbox::Process,
        decoder: &mut OutputDecoder,
        builder: &mut TraceBuilder,
        pending: &mut Vec<Step>,
        tally: &mut crate::trace::Tally,
        files: &Arc<Mutex<Vec<String>>>,
        stop: &mut watch::Receiver<Stop>,
    ) -> Result<(sandbox::Exit, Option<RunOutcome>), FactoryError> {
        let Pumped {
            run,
            agent,
            profile,
            budget_left,
            timeouts,
        } = what;
        let started = now();
        let mut last_output = started;
        let mut quiet_told = false;
        let mut flush_tick = tokio::time::interval(FLUSH_EVERY);
        let mut timeout_tick = tokio::time::interval(TIMEOUT_CHECK);
        let mut stopped: Option<RunOutcome> = None;
        let mut out_open = true;
        while out_open {
            tokio::select! {
                line = process.output.recv() => match line {
                    Some(line) => {
                        last_output = now();
                        quiet_told = false;
                        // The sandbox hands over whole lines; the decoder takes a byte
                        // stream, so each line gets its newline back.
                        let drafts = match line {
                            Output::Stdout(mut b) => {
                                b.push(b'\n');
                                decoder.feed_stdout(&b)
                            }
                            Output::Stderr(mut b) => {
                                b.push(b'\n');
                                decoder.feed_stderr(&b)
                            }
                        };
                        // Each step carries the time its line arrived, unless the line
                        // says when it was produced.
                        let arrived = now();
                        let mut spent_more = false;
                        for d in drafts {
                            let step = builder.push_at(d, Some(arrived));
                            note_step(&step, tally, files);
                            spent_more |= matches!(
                                step.kind,
                                StepKind::Lifecycle { event: Lifecycle::Usage(_) }
                            );
                            pending.push(step);
                        }
                        // Priced only when the agent reported spend, not on every line.
                        if let (Some((max, before)), None, true) = (budget_left, &stopped, spent_more) {
                            let spent = self.run_cost(tally, profile).cost_usd.unwrap_or(0.0);
                            if before + spent > max {
                                let why = format!(
                                    "the ticket's budget of ${max:.2} is spent (${:.2} over its runs); raise [factory] max_cost_usd or split the ticket",
                                    before + spent
                                );
                                tracing::warn!(run = run.id, "{why}; stopping it");
                                process.control.kill().await?;
                                stopped = Some(RunOutcome::OverBudget { why });
                            }
                        }
                        if pending.len() >= FLUSH_STEPS {
                            self.flush(run.id, pending).await?;
                        }
                    }
                    None => out_open = false,
                },
                _ = flush_tick.tick() => {
                    if !pending.is_empty() {
                        self.flush(run.id, pending).await?;
                    }
                }
                _ = timeout_tick.tick(), if stopped.is_none() => {
                    // Half the quiet limit (at most a minute) without a line: say so once,
                    // a person may be able to help before the run is killed.
                    let quiet = now().duration_since(last_output);
                    let notice_after = (timeouts.quiet / 2).min(SignedDuration::from_secs(60));
                    if quiet >= notice_after && !quiet_told {
                        quiet_told = true;
                        self.emit(FactoryEvent::Quiet {
                            run: run.id,
                            ticket: run.ticket,
                            agent: agent.to_string(),
                            seconds: quiet.as_secs().max(0) as u64,
                        });
                    }
                    if let Some(why) = decide::timed_out(now(), started, last_output, &timeouts) {
                        tracing::warn!(run = run.id, "{why}; killing it");
                        process.control.kill().await?;
                        stopped = Some(RunOutcome::TimedOut { why });
                    }
                }
                _ = stop.changed(), if stopped.is_none() => {
                    let why = *stop.borrow();
                    if why != Stop::No {
                        process.control.kill().await?;
                        stopped = Some(match why {
                            Stop::Cancel => RunOutcome::Cancelled,
                            Stop::Retry => RunOutcome::Restarted,
                            _ => RunOutcome::Interrupted,
                        });
                    }
                }
            }
        }
        let exit = process.control.wait().await?;
        // The agent is gone: its token goes now, before anyone can see the run ended.
        self.tokens.revoke(run.id);
        let arrived = now();
        for d in decoder.finish() {
            let step = builder.push_at(d, Some(arrived));
            note_step(&step, tally, files);
            pending.push(step);
        }
        let exited = builder.push_at(
            crate::trace::Draft::new(StepKind::Lifecycle {
                event: Lifecycle::Exited {
                    code: exit.code,
                    signal: exit.signal,
                },
            }),
            Some(now()),
        );
        pending.push(exited);
        Ok((exit, stopped))
    }

    pub(super) async fn flush(
        &self,
        run: RunId,
        pending: &mut Vec<Step>,
    ) -> Result<(), FactoryError> {
        if pending.is_empty() {
            return Ok(());
        }
        let steps = std::mem::take(pending);
        let count = steps.len();
        let ws = self.ws.clone();
        let total = blocking(move || {
            let total = ws.store.append_steps(run, steps.clone())?;
            // The steps are durable; the index catching up later is not a lost step.
            if let Err(e) = ws.index().add_steps(&steps) {
                tracing::error!(run, error = %e, "indexing steps failed");
            }
            Ok(total)
        })
        .await?;
        self.emit(FactoryEvent::Steps { run, total, count });
        Ok(())
    }
}

/// Steps are written to the store at least this often while an agent prints.
pub(super) const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// ... or when this many are waiting.
pub(super) const FLUSH_STEPS: usize = 512;

/// How often live runs are checked against their timeouts.
pub(super) const TIMEOUT_CHECK: Duration = Duration::from_millis(250);

/// What [`Factory::pump`] pumps for: the run, its agent and what it may still spend.
pub(super) struct Pumped<'a> {
    pub(super) run: &'a Run,
    pub(super) agent: &'a str,
    pub(super) profile: &'a AgentProfile,
    /// The ticket's budget and what its earlier runs spent.
    pub(super) budget_left: Option<(f64, f64)>,
    pub(super) timeouts: Timeouts,
}

/// Count a live step; a file it edits for the first time joins the run's live file list
/// (what leases and the control room read while the run goes on).
pub(super) fn note_step(
    step: &Step,
    tally: &mut crate::trace::Tally,
    files: &Arc<Mutex<Vec<String>>>,
) {
    if tally.add(step)
        && let StepKind::FileEdit { path, .. } = &step.kind
    {
        let mut f = files.lock().expect("files lock");
        if !f.contains(path) {
            f.push(path.clone());
        }
    }
}

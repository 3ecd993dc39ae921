//! The schedule loop's work: pick what may start now, place each on a host, claim the
//! ticket and hand the run to its supervisor; when it ends, record and announce how.

use super::*;

impl Factory {
    /// Start whatever the scheduler says may start now.
    pub(super) async fn schedule(self: &Arc<Self>) -> Result<(), FactoryError> {
        let ws = self.ws.clone();
        let tickets = blocking(move || Ok(ws.store.tickets()?)).await?;
        let waiting: Vec<Waiting> = tickets
            .iter()
            .filter(|t| t.state == TicketState::Queued)
            .map(|t| Waiting {
                ticket: t.id,
                priority: t.priority,
                created: t.created,
                agent: t.agent.clone(),
                attempt: t.runs.len() as u32 + 1,
            })
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        // The day's budget spent: nothing new starts (live runs go on).
        if let Some(budget) = self.cfg.budget_usd_per_day {
            let (ws, now) = (self.ws.clone(), now());
            let today = crate::spend::day_start(now);
            let runs = blocking(move || Ok(ws.store.runs_started_since(today)?)).await?;
            let held = crate::spend::day_budget_spent(&runs, Some(budget), now);
            let changed = {
                let mut h = self.held.lock().expect("held lock");
                let changed = *h != held;
                *h = held.clone();
                changed
            };
            if let Some(why) = held {
                if changed {
                    tracing::warn!("{why}");
                    if let Some(say) = self.notices.get() {
                        say(&why);
                    }
                }
                return Ok(());
            }
        }
        let busy = {
            let live = self.live.lock().expect("live lock");
            let mut b = Busy::default();
            for l in live.values() {
                *b.by_profile.entry(l.agent.clone()).or_default() += 1;
            }
            b
        };
        let limits = Limits {
            global: self.cfg.concurrency,
            per_profile: self
                .cfg
                .agents
                .iter()
                .filter_map(|(k, p)| p.concurrency.map(|c| (k.clone(), c)))
                .collect(),
        };
        let agents = &self.cfg.agents;
        let picks = decide::pick(&waiting, &busy, &limits, &self.cfg.default_agent, &|a| {
            agents.contains_key(a)
        });
        for u in picks.unrunnable {
            let ws = self.ws.clone();
            let reason = u.reason.clone();
            let t =
                blocking(move || ticket_event(&ws, u.ticket, TicketEvent::Unrunnable { reason }))
                    .await?;
            tracing::warn!(ticket = t.id, "ticket cannot run: {}", u.reason);
            self.emit(FactoryEvent::TicketState {
                ticket: t.id,
                state: t.state,
            });
        }
        // Each start goes to a host with a free slot offering its labels; one none can
        // take now waits in the queue, one none ever could is unrunnable.
        let mut busy = self.busy_hosts();
        for s in picks.start {
            let Some(ticket) = tickets.iter().find(|t| t.id == s.ticket).cloned() else {
                continue;
            };
            let host = match self.place(&ticket.labels, &busy) {
                placement::Placed::On(h) => h,
                placement::Placed::Wait => continue,
                placement::Placed::Never(reason) => {
                    let ws = self.ws.clone();
                    let r2 = reason.clone();
                    let t = blocking(move || {
                        ticket_event(&ws, s.ticket, TicketEvent::Unrunnable { reason: r2 })
                    })
                    .await?;
                    tracing::warn!(ticket = t.id, "ticket cannot run: {reason}");
                    self.emit(FactoryEvent::TicketState {
                        ticket: t.id,
                        state: t.state,
                    });
                    continue;
                }
            };
            *busy.entry(host.clone()).or_default() += 1;
            self.clone().launch(ticket, s.agent, s.attempt, host).await;
        }
        Ok(())
    }

    /// Claim the ticket and start its run; the run's life goes on in its own task.
    pub(super) async fn launch(
        self: Arc<Self>,
        ticket: Ticket,
        agent: String,
        attempt: u32,
        host: String,
    ) {
        let ws = self.ws.clone();
        let kind = match self.hosts.iter().find(|h| h.cfg.name == host) {
            Some(h) => h.cfg.backend.name().to_string(),
            None => self.sandbox.kind().to_string(),
        };
        let on = (host != crate::model::LOCAL).then(|| host.clone());
        let branch = format!("shopfloor/{}-{attempt}", ticket.id);
        let t_id = ticket.id;
        let agent2 = agent.clone();
        let claimed = blocking(move || {
            let run = ws.store.create_run(Run {
                ticket: Some(t_id),
                source: kind.clone(),
                attempt,
                branch: Some(branch),
                sandbox: Some(kind),
                host: on,
                ..Run::new(agent2, RunState::Preparing, now())
            })?;
            ws.store
                .apply_ticket(t_id, TicketEvent::Claim { run: run.id })?;
            Ok(run)
        })
        .await;
        let run = match claimed {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(ticket = t_id, error = %e, "ticket not started");
                return;
            }
        };
        let (stop, stop_rx) = watch::channel(Stop::No);
        self.live.lock().expect("live lock").insert(
            run.id,
            Live {
                ticket: Some(ticket.id),
                host,
                agent: agent.clone(),
                title: ticket.title.clone(),
                stop,
                files: Arc::new(Mutex::new(vec![])),
            },
        );
        self.emit(FactoryEvent::TicketState {
            ticket: ticket.id,
            state: TicketState::Running,
        });
        self.emit_run(&run, None);
        let me = self.clone();
        tokio::spawn(async move {
            let id = run.id;
            let result = me.clone().drive(run, ticket, agent, stop_rx).await;
            // Whatever ended the run, its token opens nothing from here on.
            me.tokens.revoke(id);
            match result {
                Ok(ended) => me.announce(ended).await,
                Err(e) => me.record_factory_failure(id, e).await,
            }
            me.leases.lock().expect("lease lock").release_run(id);
            me.live.lock().expect("live lock").remove(&id);
            me.wake();
        });
    }

    /// A run the factory itself could not carry on with (not the agent's failure): recorded
    /// as ended, its ticket queued again when the trouble is the machine's.
    async fn record_factory_failure(&self, id: RunId, e: FactoryError) {
        // The factory's trouble, not the agent's: a transient one (git, the disk,
        // the engine) interrupts the run and it is tried again, as no attempt.
        let transient = e.is_transient();
        tracing::error!(run = id, transient, error = %e, "the factory could not run it");
        let ws = self.ws.clone();
        let msg = e.to_string();
        let ended = blocking(move || {
            let r = ws.store.update_run(id, move |r| {
                r.state = if transient {
                    RunState::Interrupted
                } else {
                    RunState::Failed
                };
                r.ended = Some(now());
                r.outcome = Some(format!("the factory could not run it: {msg}"));
            })?;
            let t = match r.ticket {
                Some(t) if transient => Some(after_interruption(&ws, t)?),
                Some(t) => Some(ticket_event(
                    &ws,
                    t,
                    TicketEvent::RunEnded {
                        next: AfterRun::Fail,
                    },
                )?),
                None => None,
            };
            Ok((r, t))
        })
        .await;
        match ended {
            Ok((r, t)) => {
                self.emit_run(&r, r.outcome.clone());
                if let Some(t) = t {
                    self.emit(FactoryEvent::TicketState {
                        ticket: t.id,
                        state: t.state,
                    });
                }
            }
            Err(e) => {
                tracing::error!(run = id, error = %e, "could not record the run's end")
            }
        }
    }

    pub(super) fn emit_run(&self, run: &Run, detail: Option<String>) {
        self.emit(FactoryEvent::RunState {
            run: run.id,
            ticket: run.ticket,
            agent: run.agent.clone(),
            state: run.state,
            sandbox: run.sandbox.clone().unwrap_or_default(),
            detail,
        });
    }

    /// What other live runs are doing, for a new run's context pack.
    pub(super) fn activity_except(&self, run: RunId) -> Vec<Activity> {
        let leases = self.leases.lock().expect("lease lock").live(now());
        self.live
            .lock()
            .expect("live lock")
            .iter()
            .filter(|(id, _)| **id != run)
            .map(|(id, l)| Activity {
                run: *id,
                agent: l.agent.clone(),
                ticket: l.title.clone(),
                files: l.files.lock().expect("files lock").clone(),
                leases: leases
                    .iter()
                    .filter(|x| x.run == *id)
                    .map(|x| x.path.clone())
                    .collect(),
            })
            .collect()
    }
}

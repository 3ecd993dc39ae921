//! The run supervisor: one run from its sandbox to its end. It prepares the sandbox on a
//! fresh branch, builds the prompt from what the fleet knows, launches the agent, ingests
//! its output (`ingest`) and finishes the run (`finish`), whose `RunEnded` value says
//! what happened; the schedule loop that started it records and announces that.

use super::finish::RunEnded;
use super::ingest::Pumped;
use super::*;

impl Factory {
    /// One run, from sandbox to verdict.
    pub(super) async fn drive(
        self: Arc<Self>,
        run: Run,
        ticket: Ticket,
        agent: String,
        mut stop: watch::Receiver<Stop>,
    ) -> Result<RunEnded, FactoryError> {
        let profile = self
            .cfg
            .agents
            .get(&agent)
            .cloned()
            .ok_or_else(|| FactoryError::Other(format!("no agent profile `{agent}`")))?;
        // Sandbox on a fresh branch from main.
        let spec = PrepareSpec {
            workspace: self.ws.info.name.clone(),
            run: run.id,
            ticket: ticket.id,
            attempt: run.attempt,
            repo: self.clone.clone(),
            base: self.main_branch.clone(),
            user_checkout: self.ws.info.repo.clone(),
            root: self.ws.info.worktrees_dir(),
        };
        let include = self.cfg.sandbox.include.clone();
        let site = self.site_on(run.host_name()).await?;
        let prepared = match &site {
            Site::Local => blocking(move || Ok(sandbox::prepare(&spec, &include)?)).await?,
            Site::Remote(r) => r.prepare(&spec, &include).await?,
        };

        // Lease what the ticket says it will touch, so other runs see it; a collision is
        // told to the agent (and recorded) rather than silently ignored.
        let lease_conflict = if ticket.paths.is_empty() {
            None
        } else {
            let ttl = self.cfg.timeouts.wall;
            let held = self.leases.lock().expect("lease lock").acquire(
                run.id,
                &agent,
                &ticket.paths,
                ttl,
                now(),
            );
            held.err().map(|c| format!("lease not granted: {c}"))
        };

        // The prompt: the ticket plus what the fleet knows and is doing.
        let others = self.activity_except(run.id);
        let ws = self.ws.clone();
        let t2 = ticket.clone();
        let (clone, rid) = (self.clone.clone(), run.id);
        let prompt = blocking(move || {
            let attempts = crate::learn::earlier_attempts(&ws, &t2);
            // A memory whose paths were rewritten since is stale: left out, unless a
            // landing confirmed it.
            let repo = git2::Repository::open(&clone).ok();
            let head = repo
                .as_ref()
                .and_then(|r| r.head().ok()?.peel_to_commit().ok())
                .map(|c| c.id());
            let stale = |m: &crate::model::Memory| match (&repo, head) {
                (Some(r), Some(h)) => crate::learn::is_stale(r, h, m),
                _ => false,
            };
            let pack = context::build(&ws.memory, &t2, others, attempts, &stale)
                .map_err(|e| FactoryError::Other(format!("building the context pack: {e}")))?;
            // What it was handed, and why: the memories' histories, and the run (its
            // landing confirms the lessons among them).
            let recalled = pack.recalled();
            if let Err(e) = ws.memory.note_recalled(rid, &recalled) {
                tracing::warn!(run = rid, error = %e, "could not note the recalled memories");
            }
            let ids: Vec<_> = recalled.iter().map(|r| r.0).collect();
            ws.store
                .update_run(rid, move |r| r.recalled = ids.clone())?;
            Ok(context::prompt(&t2, &pack))
        })
        .await?;
        let prompt = match &lease_conflict {
            Some(c) => format!(
                "{prompt}\nAnother run holds paths this ticket names ({c}). Do not edit them; work around them or stop and say so.\n"
            ),
            None => prompt,
        };

        let plan = self
            .plan_launch(&run, &agent, &profile, &prompt, &prepared, &site)
            .await?;
        // Its own ports, held until this function returns (the process has ended by then).
        let ports = match self.cfg.sandbox.ports {
            0 => None,
            _ => Some(self.ports.take(run.id).ok_or_else(|| {
                FactoryError::Other(format!(
                    "every block of {} ports from {} is held by a live run; lower [factory] concurrency or [sandbox] ports",
                    self.cfg.sandbox.ports, self.cfg.sandbox.port_base
                ))
            })?),
        };
        let port_env: Vec<(String, String)> = ports.iter().flat_map(|p| p.env()).collect();
        let mut builder = self.trace_builder(&run, &agent, &prepared, &site);
        let mut pending: Vec<Step> = vec![];
        // `[sandbox] setup`, in the sandbox, before the agent: a failure ends the run.
        for cmd in &self.cfg.sandbox.setup {
            let (step, exit) = self
                .sandbox_command(
                    &run,
                    &site,
                    &prepared,
                    cmd,
                    port_env.clone(),
                    "setup",
                    &mut builder,
                )
                .await?;
            pending.push(step);
            if !exit.success() {
                self.flush(run.id, &mut pending).await?;
                let why = format!(
                    "the sandbox's setup `{cmd}` failed ({}); the agent did not start",
                    describe_exit(exit)
                );
                tracing::warn!(run = run.id, "{why}");
                return self
                    .finish(
                        run,
                        ticket,
                        agent,
                        &site,
                        prepared,
                        RunOutcome::Failed {
                            why,
                            exit: (exit.code, exit.signal),
                        },
                        Usage::default(),
                    )
                    .await;
            }
        }
        let mut env = plan.env.clone();
        env.extend(port_env.iter().cloned());
        let mut process = self
            .launch_agent(&run, &site, &plan, env, &prepared, false, |p| {
                format!("{} in {}", p.control.id(), prepared.dir.display())
            })
            .await?;

        // Pump output into steps until the process is done or must stop.
        let mut decoder = OutputDecoder::new(plan.decoder);
        if let Some(c) = lease_conflict {
            tracing::info!(run = run.id, "{c}");
            pending.push(
                builder.push_at(
                    crate::trace::Draft::new(StepKind::Decision { text: c.into() })
                        .by(Some("shopfloor".into())),
                    Some(now()),
                ),
            );
        }
        let mut tally = crate::trace::Tally::default();
        let files = self
            .live
            .lock()
            .expect("live lock")
            .get(&run.id)
            .map(|l| l.files.clone())
            .unwrap_or_default();
        // What the ticket's earlier runs cost: this run may spend the rest of its budget.
        let budget_left = match self.cfg.max_cost_usd {
            Some(max) => {
                let (ws, tid, rid) = (self.ws.clone(), ticket.id, run.id);
                let before: f64 = blocking(move || {
                    let ids = ws.store.ticket(tid)?.map(|t| t.runs).unwrap_or_default();
                    Ok(ws
                        .store
                        .runs_by_id(&ids)?
                        .iter()
                        .filter(|r| r.ticket == Some(tid) && r.id != rid)
                        .filter_map(|r| r.usage.cost_usd)
                        .sum())
                })
                .await?;
                Some((max, before))
            }
            None => None,
        };
        let pumped = self
            .pump(
                Pumped {
                    run: &run,
                    agent: &agent,
                    profile: &profile,
                    budget_left,
                    timeouts: self.cfg.timeouts,
                },
                &mut process,
                &mut decoder,
                &mut builder,
                &mut pending,
                &mut tally,
                &files,
                &mut stop,
            )
            .await;
        let (exit, stopped) = match pumped {
            Ok(p) => p,
            Err(e) => {
                // What was streamed before the host was lost stays: it was acknowledged.
                let _ = self.flush(run.id, &mut pending).await;
                return Err(e);
            }
        };
        // `[sandbox] teardown`: recorded, never changing how the run ended.
        for cmd in &self.cfg.sandbox.teardown {
            match self
                .sandbox_command(
                    &run,
                    &site,
                    &prepared,
                    cmd,
                    port_env.clone(),
                    "teardown",
                    &mut builder,
                )
                .await
            {
                Ok((step, _)) => pending.push(step),
                Err(e) => {
                    tracing::warn!(run = run.id, error = %e, "teardown `{cmd}` could not run")
                }
            }
        }
        self.flush(run.id, &mut pending).await?;

        let usage = self.run_cost(&tally, &profile);
        let outcome = match stopped {
            Some(o) => o,
            None if exit.success() => RunOutcome::Succeeded,
            None => RunOutcome::Failed {
                exit: (exit.code, exit.signal),
                why: match (exit.code, exit.signal) {
                    (Some(c), _) => format!("the agent exited with code {c}"),
                    (None, Some(s)) => format!("the agent was killed by signal {s}"),
                    _ => "the agent ended abnormally".into(),
                },
            },
        };
        self.finish(run, ticket, agent, &site, prepared, outcome, usage)
            .await
    }

    /// Plan the agent's launch in `prepared` (a token for `run` when MCP is served) and
    /// write the files the plan names into the sandbox, owner-only.
    pub(super) async fn plan_launch(
        &self,
        run: &Run,
        agent: &str,
        profile: &AgentProfile,
        prompt: &str,
        prepared: &sandbox::Prepared,
        site: &Site,
    ) -> Result<agent::LaunchPlan, FactoryError> {
        let backend = self.sandbox_at(site).kind();
        let in_docker = backend == BackendKind::Docker;
        let api_socket = self.sandbox_socket.lock().expect("socket lock").clone();
        let (workdir, mcp_socket, shopfloor_exe) = match site {
            Site::Local if in_docker => (
                PathBuf::from(crate::sandbox::docker::WORKSPACE_MOUNT),
                api_socket
                    .as_ref()
                    .map(|_| PathBuf::from(crate::sandbox::docker::SOCKET_MOUNT)),
                PathBuf::from(crate::sandbox::docker::BINARY_MOUNT),
            ),
            Site::Local => (prepared.dir.clone(), api_socket.clone(), self.exe.clone()),
            // The host's own paths: the socket forwarded there, the binary sent there.
            Site::Remote(r) => r.agent_paths(&prepared.dir),
        };
        let ctx = LaunchContext {
            workdir,
            token: mcp_socket
                .as_ref()
                .map(|_| self.tokens.issue(run.id, agent)),
            mcp_socket,
            shopfloor_exe,
            run: run.id,
            backend,
            test_command: self.cfg.test_command.clone(),
        };
        let plan = agent::plan(agent, profile, prompt, &ctx)
            .map_err(|e| FactoryError::Other(e.to_string()))?;
        if let Site::Remote(r) = site {
            r.write_files(prepared, &plan.files).await?;
            return Ok(plan);
        }
        for (path, bytes) in &plan.files {
            let p = if path.is_absolute() {
                path.clone()
            } else {
                prepared.dir.join(path)
            };
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir).map_err(|e| FactoryError::Other(e.to_string()))?;
            }
            // Owner-only: the MCP config and the token are the run's credentials.
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&p)
                .and_then(|mut f| f.write_all(bytes))
                .map_err(|e| FactoryError::Other(format!("writing {}: {e}", p.display())))?;
        }
        Ok(plan)
    }

    /// The sandbox that runs processes at `site`.
    pub(super) fn sandbox_at<'a>(&'a self, site: &'a Site) -> &'a dyn Sandbox {
        match site {
            Site::Local => self.sandbox.as_ref(),
            Site::Remote(r) => r.as_ref(),
        }
    }

    /// The factory's sandboxes' socket as the sandbox at `site` mounts or reaches it.
    pub(super) fn socket_at(&self, site: &Site) -> Option<PathBuf> {
        let local = self.sandbox_socket.lock().expect("socket lock").clone();
        match site {
            Site::Local => local,
            Site::Remote(r) => local.and(r.link().socket.as_ref().map(PathBuf::from)),
        }
    }

    /// A run's trace builder: paths stored repo-relative whatever the sandbox, the checkout
    /// as the host names it and `/workspace` as a container's agent does.
    pub(super) fn trace_builder(
        &self,
        run: &Run,
        agent: &str,
        prepared: &sandbox::Prepared,
        site: &Site,
    ) -> TraceBuilder {
        let builder = TraceBuilder::new(run.id, 0, agent.to_string(), self.ws.redactor.clone())
            .relative_to(prepared.dir.to_string_lossy());
        match self.sandbox_at(site).kind() {
            BackendKind::Docker => builder.relative_to(crate::sandbox::docker::WORKSPACE_MOUNT),
            BackendKind::Worktree => builder,
        }
    }

    /// Launch a planned agent in its sandbox (`env` beside the plan's) and mark its run
    /// running, with `detail` for the watchers.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn launch_agent(
        &self,
        run: &Run,
        site: &Site,
        plan: &agent::LaunchPlan,
        env: Vec<(String, String)>,
        prepared: &sandbox::Prepared,
        workdir_read_only: bool,
        detail: impl FnOnce(&sandbox::Process) -> String,
    ) -> Result<sandbox::Process, FactoryError> {
        let process = self
            .sandbox_at(site)
            .launch(LaunchSpec {
                argv: plan.argv.clone(),
                env,
                workdir: prepared.dir.clone(),
                labels: Labels {
                    workspace: self.ws.info.sandbox_label(),
                    run: run.id,
                },
                socket: self.socket_at(site),
                read_only: vec![prepared.clone_objects()],
                workdir_read_only,
            })
            .await?;
        let ws = self.ws.clone();
        let rid = run.id;
        let running =
            blocking(move || Ok(ws.store.update_run(rid, |r| r.state = RunState::Running)?))
                .await?;
        self.emit_run(&running, Some(detail(&process)));
        Ok(process)
    }

    /// What a run has spent so far: agents that report no cost (Codex, Gemini) get their
    /// tokens priced; the model is the one the agent said it ran, else the profile's.
    pub(super) fn run_cost(&self, tally: &crate::trace::Tally, profile: &AgentProfile) -> Usage {
        self.cfg.prices.priced(
            tally.usage.clone(),
            tally.model.as_deref().or(profile.model.as_deref()),
        )
    }

    /// Run a `[sandbox] setup` or `teardown` command in the run's sandbox (a container
    /// runs it with the agent's hardening), bounded by the run's wall time: the step it
    /// makes (a command, by `shopfloor/<what>`) and how it ended.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn sandbox_command(
        &self,
        run: &Run,
        site: &Site,
        prepared: &sandbox::Prepared,
        cmd: &str,
        env: Vec<(String, String)>,
        what: &str,
        builder: &mut TraceBuilder,
    ) -> Result<(Step, sandbox::Exit), FactoryError> {
        /// Output kept of a setup command: its end is what says why it failed.
        const KEEP: usize = 64 << 10;
        let mut process = self
            .sandbox_at(site)
            .launch(LaunchSpec {
                argv: vec!["sh".into(), "-c".into(), cmd.to_string()],
                env,
                workdir: prepared.dir.clone(),
                labels: Labels {
                    workspace: self.ws.info.sandbox_label(),
                    run: run.id,
                },
                socket: None,
                read_only: vec![prepared.clone_objects()],
                workdir_read_only: false,
            })
            .await?;
        let mut out: Vec<u8> = Vec::new();
        let wall = std::time::Duration::from_secs(self.cfg.timeouts.wall.as_secs().max(1) as u64);
        let read = async {
            while let Some(line) = process.output.recv().await {
                let (Output::Stdout(b) | Output::Stderr(b)) = line;
                out.extend_from_slice(&b);
                out.push(b'\n');
                if out.len() > 2 * KEEP {
                    out.drain(..out.len() - KEEP);
                }
            }
        };
        if tokio::time::timeout(wall, read).await.is_err() {
            process.control.kill().await?;
        }
        let exit = process.control.wait().await?;
        let output = String::from_utf8_lossy(&out[out.len().saturating_sub(KEEP)..]).into_owned();
        let step = builder.push_at(
            crate::trace::Draft::new(StepKind::Command {
                argv: vec!["sh".into(), "-c".into(), cmd.to_string()],
                exit_code: exit.code.or(if exit.success() { Some(0) } else { None }),
                output: output.into(),
            })
            .by(Some(format!("shopfloor/{what}"))),
            Some(now()),
        );
        Ok((step, exit))
    }
}

/// Keep a run's running totals from its own steps: tokens and cost, the model the agent
/// says it runs, files touched.
/// How a process ended, in words.
pub(super) fn describe_exit(exit: sandbox::Exit) -> String {
    match (exit.code, exit.signal) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "ended abnormally".into(),
    }
}

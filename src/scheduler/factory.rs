//! The factory: the one process that owns a workspace. It keeps the workspace's own clone
//! of the user's repository, turns queued tickets into agent runs in sandboxes, streams
//! every line an agent prints into durable, indexed steps, enforces timeouts, commits what
//! an agent leaves behind on its branch, and retries failures with the lesson in the next
//! prompt. Decisions come from `decide`; this module only carries them out.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{Notify, broadcast, watch};

use super::context::{self, Activity};
use super::decide::{self, Busy, Limits, Next, Outcome, Timeouts, Waiting};
use super::leases::{Conflict, Lease, LeaseTable};
use super::placement;
use crate::agent::{self, AgentProfile, LaunchContext, OutputDecoder};
use crate::model::transitions::{AfterRun, TicketEvent};
use crate::model::{
    Lifecycle, QueueState, Run, RunId, RunState, Step, StepKind, Ticket, TicketId, TicketState,
    Usage,
};
use crate::sandbox::{self, BackendKind, Labels, LaunchSpec, Output, PrepareSpec, Sandbox};
use crate::tokens::Tokens;
use crate::trace::TraceBuilder;
use crate::trace::digest::End;
use crate::workspace::Workspace;

/// Steps are written to the store at least this often while an agent prints.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// ... or when this many are waiting.
const FLUSH_STEPS: usize = 512;
/// How often live runs are checked against their timeouts.
const TIMEOUT_CHECK: Duration = Duration::from_millis(250);

/// How the factory runs, from `shopfloor.toml`.
#[derive(Clone, Debug)]
pub struct FactorySettings {
    pub concurrency: usize,
    pub max_attempts: u32,
    /// `[factory] learning`: failures write digests and lessons.
    pub learning: bool,
    /// `[factory] max_cost_usd`: what one ticket may cost over all its attempts.
    pub max_cost_usd: Option<f64>,
    /// `[factory] budget_usd_per_day`: what the workspace may spend a UTC day.
    pub budget_usd_per_day: Option<f64>,
    pub timeouts: Timeouts,
    pub default_agent: String,
    pub agents: BTreeMap<String, AgentProfile>,
    pub sandbox: sandbox::SandboxConfig,
    /// How often the queue is looked at when nothing wakes the factory.
    pub poll: Duration,
    /// The `[test]` command, which an agent with `allowlist` permissions may always run.
    pub test_command: Option<String>,
    /// What tokens cost, for agents that report none (`[prices]` over the built-in list).
    pub prices: crate::cost::Prices,
    /// Runs at once on this machine (`[factory] local_slots`).
    pub local_slots: usize,
    /// What this machine offers tickets' labels (`[factory] local_labels`).
    pub local_labels: Vec<String>,
    /// `[[hosts]]`: the other machines runs may go to.
    pub hosts: Vec<crate::hosts::HostConfig>,
}

impl FactorySettings {
    /// The factory's settings from a workspace's `shopfloor.toml`. Relative paths in
    /// profiles (a fixture scenario) stay relative: they resolve in the run's sandbox,
    /// which holds the repository's files, on the host and in a container alike.
    pub fn from_config(c: &crate::config::Config) -> FactorySettings {
        let agents = c.agent_profiles();
        FactorySettings {
            concurrency: c.factory.concurrency,
            max_attempts: c.factory.max_attempts,
            learning: c.factory.learning,
            max_cost_usd: c.factory.max_cost_usd,
            budget_usd_per_day: c.factory.budget_usd_per_day,
            timeouts: Timeouts {
                wall: SignedDuration::from_secs(c.factory.timeout_s as i64),
                quiet: SignedDuration::from_secs(c.factory.quiet_timeout_s as i64),
            },
            default_agent: c.factory.default_agent.clone(),
            agents,
            sandbox: c.sandbox.clone(),
            poll: Duration::from_secs(1),
            prices: crate::cost::Prices::new(&c.prices),
            test_command: c.test.command.clone(),
            local_slots: c.factory.local_slots(),
            local_labels: c.factory.local_labels.clone(),
            hosts: c.hosts.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FactoryError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Sandbox(#[from] sandbox::SandboxError),
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error(transparent)]
    Tokens(#[from] crate::tokens::TokenError),
    #[error("{0}")]
    Other(String),
}

pub use crate::wire::FactoryEvent;

/// Why a live run is asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    No,
    /// A person cancelled the ticket or killed the run.
    Cancel,
    /// A person asked for a fresh attempt: the run is interrupted and its ticket queued
    /// again at once.
    Retry,
    /// The factory is shutting down: the run is interrupted and its ticket requeued, the
    /// same state a crash leaves, so the next start treats both alike.
    Shutdown,
}

/// What [`Factory::pump`] pumps for: the run, its agent and what it may still spend.
struct Pumped<'a> {
    run: &'a Run,
    agent: &'a str,
    profile: &'a AgentProfile,
    /// The ticket's budget and what its earlier runs spent.
    budget_left: Option<(f64, f64)>,
    timeouts: Timeouts,
}

/// A run in flight.
struct Live {
    /// None for a review run.
    ticket: Option<TicketId>,
    /// Where it runs: `local` or a `[[hosts]]` name.
    host: String,
    agent: String,
    title: String,
    stop: watch::Sender<Stop>,
    files: Arc<Mutex<Vec<String>>>,
}

/// A run in flight, as others see it (the `wip` MCP tool).
#[derive(Clone, Debug, PartialEq)]
pub struct Wip {
    pub run: RunId,
    pub ticket: TicketId,
    pub agent: String,
    pub title: String,
    pub files: Vec<String>,
}

mod hosts;
mod review;

use hosts::Site;

/// The factory's state. Lock order (the factory never blocks for good: invariant 10):
/// `queue_turn` is held for a whole merge-queue turn, inside which the store's writer and
/// the memory bank's one lock are taken; `live` may be held while a run's `files` is read;
/// every other lock here (`leases`, `sandbox_socket`, `reviewing`, the token table, the refusal log, and
/// `sandbox::checkout`'s clone-writes lock) is taken alone and let go before another is
/// taken. No std lock is held across an `.await`. The async locks of hosts nest one way
/// only: a host's `site` (held while its connection opens) before that new connection's
/// own session permits; a remote sandbox's `mirrored` (held for a push) before its link's
/// short-session permit, which is taken alone otherwise; clone writes come last, inside a
/// fetch's permit.
pub struct Factory {
    ws: Arc<Workspace>,
    cfg: FactorySettings,
    sandbox: Arc<dyn Sandbox>,
    events: broadcast::Sender<FactoryEvent>,
    live: Mutex<HashMap<RunId, Live>>,
    leases: Mutex<LeaseTable>,
    wake: Notify,
    /// While set, no new run starts; live runs go on.
    paused: std::sync::atomic::AtomicBool,
    /// Why the scheduler holds back (the day's budget is spent), as last said: a change is
    /// logged once, not every tick.
    held: Mutex<Option<String>>,
    /// The workspace's own clone: the factory's source of truth.
    clone: PathBuf,
    main_branch: String,
    exe: PathBuf,
    /// Issues each run its token.
    tokens: Tokens,
    /// The sandboxes' socket (run tokens only), once `serve` listens on it: runs then get
    /// MCP. The person's socket is never handed to a run.
    sandbox_socket: Mutex<Option<PathBuf>>,
    /// The policy gate the merge queue judges candidates with.
    judge: Arc<dyn crate::mergeq::Judge>,
    queue_wake: Notify,
    /// One merge queue turn at a time.
    queue_turn: Mutex<()>,
    /// Each live run's own block of ports (`[sandbox] ports`).
    ports: sandbox::ports::PortBlocks,
    /// Live review runs and the verdicts they submitted (`review_submit`).
    reviewing: Mutex<HashMap<RunId, review::Reviewing>>,
    /// `[[hosts]]`, each with its connection once opened.
    hosts: Vec<hosts::Host>,
}

fn now() -> Timestamp {
    Timestamp::now()
}

/// Run blocking store/git work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FactoryError> + Send + 'static,
) -> Result<T, FactoryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| FactoryError::Other(format!("a background task failed: {e}")))?
}

impl Factory {
    /// Take charge of a workspace: make or refresh its clone, mark the runs a dead factory
    /// left behind as interrupted (requeueing their tickets), clean their sandboxes and
    /// reap their processes or containers.
    pub async fn start(
        ws: Arc<Workspace>,
        cfg: FactorySettings,
    ) -> Result<Arc<Factory>, FactoryError> {
        let sandbox = sandbox::choose(&cfg.sandbox).await?;
        let reaped = sandbox.reap_orphans(&ws.info.sandbox_label()).await?;
        if reaped > 0 {
            tracing::warn!(reaped, "reaped processes an earlier factory left running");
        }
        let (clone, main_branch) = {
            let ws = ws.clone();
            blocking(move || ensure_clone(&ws)).await?
        };
        let (events, _) = broadcast::channel(4096);
        let exe = std::env::current_exe().map_err(|e| FactoryError::Other(e.to_string()))?;
        let tokens = Tokens::open(&ws.info)?;
        let judge: Arc<dyn crate::mergeq::Judge> = Arc::new(
            crate::policy::Policy::from_config(&ws.config.policy)
                .map_err(|e| FactoryError::Other(format!("[policy]: {e}")))?,
        );
        let ports = sandbox::ports::PortBlocks::new(cfg.sandbox.port_base, cfg.sandbox.ports);
        let hosts = cfg.hosts.iter().cloned().map(hosts::Host::new).collect();
        let f = Arc::new(Factory {
            hosts,
            ws,
            cfg,
            sandbox,
            events,
            live: Mutex::new(HashMap::new()),
            leases: Mutex::new(LeaseTable::default()),
            wake: Notify::new(),
            paused: std::sync::atomic::AtomicBool::new(false),
            held: Mutex::new(None),
            ports,
            clone,
            main_branch,
            exe,
            tokens,
            sandbox_socket: Mutex::new(None),
            judge,
            queue_wake: Notify::new(),
            queue_turn: Mutex::new(()),
            reviewing: Mutex::new(HashMap::new()),
        });
        f.recover().await?;
        Ok(f)
    }

    /// Look at the merge queue now (an approval, a resume, a new entry).
    pub fn wake_queue(&self) {
        self.queue_wake.notify_one();
    }

    /// The merge queue's loop: one turn at a time on a blocking thread, until shutdown.
    async fn queue_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        {
            let f = self.clone();
            let recovered = blocking(move || {
                f.merge_queue(|q| q.recover().map_err(|e| FactoryError::Other(e.to_string())))
            })
            .await;
            if let Err(e) = recovered {
                tracing::error!(error = %e, "the merge queue could not recover");
            }
        }
        loop {
            if *shutdown.borrow() {
                return;
            }
            let mut busy = false;
            if !crate::mergeq::is_paused(&self.ws.info) {
                let f = self.clone();
                match blocking(move || {
                    // New commits on the user's main reach ours first, so candidates are
                    // built on the main people see.
                    let waiting = f
                        .ws
                        .store
                        .queue_entries()?
                        .iter()
                        .any(|e| matches!(e.state, QueueState::Queued | QueueState::Testing));
                    if waiting && let Err(e) = ensure_clone_of(&f.ws.info) {
                        tracing::warn!(error = %e, "could not refresh the clone from the user's repository");
                    }
                    f.merge_queue(|q| q.turn().map_err(|e| FactoryError::Other(e.to_string())))
                })
                .await
                {
                    Ok(turn) => {
                        busy = !turn.is_idle();
                        if busy {
                            tracing::info!(?turn, "merge queue turn");
                            self.emit(FactoryEvent::Queue {
                                landed: turn.landed.clone(),
                                bounced: turn.bounced.clone(),
                                rejected: turn.rejected.clone(),
                                waiting: turn.waiting.clone(),
                            });
                        }
                        if !turn.bounced.is_empty() {
                            // A bounced ticket is queued again: schedule it.
                            self.wake();
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "merge queue turn failed"),
                }
            }
            if busy {
                continue;
            }
            tokio::select! {
                _ = self.queue_wake.notified() => {}
                _ = tokio::time::sleep(self.cfg.poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Run `f` with the merge queue over the factory's clone (blocking).
    fn merge_queue<T>(
        self: &Arc<Self>,
        f: impl FnOnce(&crate::mergeq::MergeQueue<'_>) -> Result<T, FactoryError>,
    ) -> Result<T, FactoryError> {
        let _one = self.queue_turn.lock().expect("queue lock");
        // Merge tests run in the agents' sandbox: code an agent wrote never runs outside one.
        let backend = crate::mergeq::TestBackend::for_sandbox(
            self.sandbox.kind(),
            &self.cfg.sandbox,
            self.ws.config.test.network,
        );
        let q = crate::mergeq::MergeQueue::new(
            &self.ws,
            self.clone.clone(),
            self.main_branch.clone(),
            self.ws.config.merge.clone(),
            self.ws.config.test.command.clone(),
            &*self.judge,
        )
        .with_backend(backend);
        // Agent review after green tests, when `[review]` names a reviewer: review runs
        // are started on the runtime and waited for on this (blocking) thread.
        let reviewer = review::FactoryReviewer {
            factory: self.clone(),
            runtime: tokio::runtime::Handle::current(),
        };
        let q = if self.ws.config.review.agents.is_empty() {
            q
        } else {
            q.with_reviewer(&reviewer)
        };
        f(&q)
    }

    /// The sandboxes' socket now answers on `socket`: runs started from here on get an MCP
    /// server and a token.
    pub fn serve_mcp_on(&self, socket: PathBuf) {
        *self.sandbox_socket.lock().expect("socket lock") = Some(socket);
    }

    /// The run tokens this factory issues: live while their run is, revoked when it ends.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    pub fn subscribe(&self) -> broadcast::Receiver<FactoryEvent> {
        self.events.subscribe()
    }

    pub fn sandbox_kind(&self) -> BackendKind {
        self.sandbox.kind()
    }

    pub fn workspace(&self) -> &Arc<Workspace> {
        &self.ws
    }

    pub fn main_branch(&self) -> &str {
        &self.main_branch
    }

    pub fn clone_path(&self) -> &Path {
        &self.clone
    }

    /// Stop or resume starting new runs (live runs are not touched).
    pub fn set_paused(&self, paused: bool) {
        self.paused
            .store(paused, std::sync::atomic::Ordering::SeqCst);
        self.wake();
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Look at the queue now (a ticket was added).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Tell watchers a ticket changed outside a run (added, cancelled, reprioritised).
    pub fn ticket_changed(&self, t: &Ticket) {
        self.emit(FactoryEvent::TicketState {
            ticket: t.id,
            state: t.state,
        });
    }

    /// Tell watchers the merge queue changed outside a turn (an approval, a bump).
    pub fn queue_changed(&self) {
        self.emit(FactoryEvent::Queue {
            landed: vec![],
            bounced: vec![],
            rejected: vec![],
            waiting: vec![],
        });
    }

    fn emit(&self, e: FactoryEvent) {
        let _ = self.events.send(e);
    }

    async fn recover(&self) -> Result<(), FactoryError> {
        let ws = self.ws.clone();
        let root = self.worktree_root();
        let clone = self.clone.clone();
        let recovered = blocking(move || {
            let mut out = vec![];
            for run in ws.store.runs()? {
                if !run.state.is_live() {
                    continue;
                }
                let r = ws.store.update_run(run.id, |r| {
                    r.state = RunState::Interrupted;
                    r.ended = Some(now());
                    r.outcome = Some("the factory stopped while the run was live".into());
                })?;
                let t = match r.ticket {
                    Some(t) => Some(after_interruption(&ws, t)?),
                    None => None,
                };
                out.push((r, t));
            }
            // Nothing is live yet, so every worktree left on disk is a dead run's: it
            // goes; its branch stays for people and the merge queue to look at.
            clean_worktrees(&clone, &root)?;
            Ok(out)
        })
        .await?;
        for (r, t) in recovered {
            tracing::warn!(
                run = r.id,
                "marked interrupted: the factory died while it ran"
            );
            if let Some(t) = t {
                self.emit(FactoryEvent::TicketState {
                    ticket: t.id,
                    state: t.state,
                });
            }
            self.emit(FactoryEvent::RunState {
                run: r.id,
                ticket: r.ticket,
                agent: r.agent.clone(),
                state: RunState::Interrupted,
                sandbox: r.sandbox.clone().unwrap_or_default(),
                detail: r.outcome.clone(),
            });
        }
        Ok(())
    }

    fn worktree_root(&self) -> PathBuf {
        self.ws.info.worktrees_dir()
    }

    /// Run the queue until `shutdown` turns true; live runs are then stopped and recorded
    /// as interrupted with their tickets requeued: a clean stop leaves the same state as a
    /// crash, which the next start knows how to resume.
    pub async fn run(
        self: &Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), FactoryError> {
        let queue = tokio::spawn(self.clone().queue_loop(shutdown.clone()));
        self.connect_hosts();
        // `[notify] command`: every notice the factory's events carry, handed over as JSON.
        let notifier = self.ws.config.notify.command.clone().map(|command| {
            let mut events = self.subscribe();
            let workspace = self.ws.info.name.clone();
            tokio::spawn(async move {
                loop {
                    match events.recv().await {
                        Ok(e) => {
                            for n in crate::notify::of_event(&workspace, &e) {
                                crate::notify::run_command(&command, &n);
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => break,
                    }
                }
            })
        });
        loop {
            if *shutdown.borrow() {
                break;
            }
            if !self.is_paused()
                && let Err(e) = self.schedule().await
            {
                tracing::error!(error = %e, "scheduling failed; retrying");
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.cfg.poll) => {}
                _ = shutdown.changed() => {}
            }
        }
        // A turn in progress finishes on its own thread; the next start recovers what a
        // stop in the middle of it leaves.
        queue.abort();
        if let Some(n) = notifier {
            n.abort();
        }
        let stops: Vec<watch::Sender<Stop>> = self
            .live
            .lock()
            .expect("live lock")
            .values()
            .map(|l| l.stop.clone())
            .collect();
        for s in stops {
            let _ = s.send(Stop::Shutdown);
        }
        for _ in 0..100 {
            if self.live.lock().expect("live lock").is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.close_hosts().await;
        Ok(())
    }

    /// Start whatever the scheduler says may start now.
    async fn schedule(self: &Arc<Self>) -> Result<(), FactoryError> {
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
            let ws = self.ws.clone();
            let runs = blocking(move || Ok(ws.store.runs()?)).await?;
            let held = crate::spend::day_budget_spent(&runs, Some(budget), now());
            let changed = {
                let mut h = self.held.lock().expect("held lock");
                let changed = *h != held;
                *h = held.clone();
                changed
            };
            if let Some(why) = held {
                if changed {
                    tracing::warn!("{why}");
                    println!("{why}");
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
    async fn launch(self: Arc<Self>, ticket: Ticket, agent: String, attempt: u32, host: String) {
        let ws = self.ws.clone();
        let kind = match self.hosts.iter().find(|h| h.cfg.name == host) {
            Some(h) => h.cfg.backend.name().to_string(),
            None => self.sandbox.kind().to_string(),
        };
        let on = (host != crate::hosts::LOCAL).then(|| host.clone());
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
            if let Err(e) = result {
                // The factory's trouble, not the agent's: a transient one (git, the disk,
                // the engine) interrupts the run and it is tried again, as no attempt.
                let transient = e.is_transient();
                tracing::error!(run = id, transient, error = %e, "the factory could not run it");
                let ws = me.ws.clone();
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
                        me.emit_run(&r, r.outcome.clone());
                        if let Some(t) = t {
                            me.emit(FactoryEvent::TicketState {
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
            me.leases.lock().expect("lease lock").release_run(id);
            me.live.lock().expect("live lock").remove(&id);
            me.wake();
        });
    }

    fn emit_run(&self, run: &Run, detail: Option<String>) {
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
    fn activity_except(&self, run: RunId) -> Vec<Activity> {
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

    /// One run, from sandbox to verdict.
    async fn drive(
        self: Arc<Self>,
        run: Run,
        ticket: Ticket,
        agent: String,
        mut stop: watch::Receiver<Stop>,
    ) -> Result<(), FactoryError> {
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
            root: self.worktree_root(),
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
                        Outcome::Failed {
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
                    Ok(ws
                        .store
                        .runs()?
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
            None if exit.success() => Outcome::Succeeded,
            None => Outcome::Failed {
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
    async fn plan_launch(
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
    fn sandbox_at<'a>(&'a self, site: &'a Site) -> &'a dyn Sandbox {
        match site {
            Site::Local => self.sandbox.as_ref(),
            Site::Remote(r) => r.as_ref(),
        }
    }

    /// The factory's sandboxes' socket as the sandbox at `site` mounts or reaches it.
    fn socket_at(&self, site: &Site) -> Option<PathBuf> {
        let local = self.sandbox_socket.lock().expect("socket lock").clone();
        match site {
            Site::Local => local,
            Site::Remote(r) => local.and(r.link().socket.as_ref().map(PathBuf::from)),
        }
    }

    /// A run's trace builder: paths stored repo-relative whatever the sandbox, the checkout
    /// as the host names it and `/workspace` as a container's agent does.
    fn trace_builder(
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
    async fn launch_agent(
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

    /// Pump a live process's output into steps until it ends or must stop (a person, a
    /// timeout, the budget); then wait for it, revoke its token and record how it exited.
    #[allow(clippy::too_many_arguments)]
    async fn pump(
        &self,
        what: Pumped<'_>,
        process: &mut sandbox::Process,
        decoder: &mut OutputDecoder,
        builder: &mut TraceBuilder,
        pending: &mut Vec<Step>,
        tally: &mut crate::trace::Tally,
        files: &Arc<Mutex<Vec<String>>>,
        stop: &mut watch::Receiver<Stop>,
    ) -> Result<(sandbox::Exit, Option<Outcome>), FactoryError> {
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
        let mut stopped: Option<Outcome> = None;
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
                                stopped = Some(Outcome::OverBudget { why });
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
                        stopped = Some(Outcome::TimedOut { why });
                    }
                }
                _ = stop.changed(), if stopped.is_none() => {
                    let why = *stop.borrow();
                    if why != Stop::No {
                        process.control.kill().await?;
                        stopped = Some(match why {
                            Stop::Cancel => Outcome::Cancelled,
                            Stop::Retry => Outcome::Restarted,
                            _ => Outcome::Interrupted,
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

    /// What a run has spent so far: agents that report no cost (Codex, Gemini) get their
    /// tokens priced; the model is the one the agent said it ran, else the profile's.
    fn run_cost(&self, tally: &crate::trace::Tally, profile: &AgentProfile) -> Usage {
        self.cfg.prices.priced(
            tally.usage.clone(),
            tally.model.as_deref().or(profile.model.as_deref()),
        )
    }

    /// Run a `[sandbox] setup` or `teardown` command in the run's sandbox (a container
    /// runs it with the agent's hardening), bounded by the run's wall time: the step it
    /// makes (a command, by `shopfloor/<what>`) and how it ended.
    #[allow(clippy::too_many_arguments)]
    async fn sandbox_command(
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

    async fn flush(&self, run: RunId, pending: &mut Vec<Step>) -> Result<(), FactoryError> {
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

    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        run: Run,
        ticket: Ticket,
        agent: String,
        site: &Site,
        prepared: sandbox::Prepared,
        outcome: Outcome,
        usage: Usage,
    ) -> Result<(), FactoryError> {
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
            Outcome::Failed { exit, .. } => Some(End::Exit {
                code: exit.0,
                signal: exit.1,
            }),
            Outcome::TimedOut { why } | Outcome::OverBudget { why } => {
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
                Outcome::Succeeded => (RunState::Succeeded, "the agent finished".to_string()),
                Outcome::Failed { why, .. }
                | Outcome::TimedOut { why }
                | Outcome::OverBudget { why } => {
                    (RunState::Failed, why.clone())
                }
                Outcome::Cancelled => (RunState::Cancelled, "stopped by a person".into()),
                Outcome::Interrupted => (
                    RunState::Interrupted,
                    "the factory shut down while it ran".into(),
                ),
                Outcome::Restarted => (
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
        Ok(())
    }

    /// Stop the live runs of a ticket (it was cancelled) within a second.
    pub fn stop_ticket(&self, id: TicketId) {
        let live = self.live.lock().expect("live lock");
        for l in live.values().filter(|l| l.ticket == Some(id)) {
            let _ = l.stop.send(Stop::Cancel);
        }
    }

    /// Stop a live run within a second.
    pub fn kill_run(&self, id: RunId) -> Result<(), FactoryError> {
        if self.stop_run(id, Stop::Cancel) {
            Ok(())
        } else {
            Err(FactoryError::Other(format!(
                "run {id} is not running; `shopfloor run list` shows the live runs"
            )))
        }
    }

    /// Ask a live run to stop for `why`; false if it is not live.
    fn stop_run(&self, id: RunId, why: Stop) -> bool {
        let live = self.live.lock().expect("live lock");
        match live.get(&id) {
            Some(l) => {
                let _ = l.stop.send(why);
                true
            }
            None => false,
        }
    }

    /// Stop a live run for a retry: its ticket is queued again. False if it is not live.
    pub fn retry_run(&self, id: RunId) -> bool {
        self.stop_run(id, Stop::Retry)
    }

    pub fn lease(
        &self,
        run: RunId,
        paths: &[String],
        ttl: SignedDuration,
    ) -> Result<Vec<Lease>, Conflict> {
        let agent = self
            .live
            .lock()
            .expect("live lock")
            .get(&run)
            .map(|l| l.agent.clone())
            .unwrap_or_default();
        self.leases
            .lock()
            .expect("lease lock")
            .acquire(run, &agent, paths, ttl, now())
    }

    pub fn release(&self, run: RunId, paths: &[String]) -> usize {
        self.leases.lock().expect("lease lock").release(run, paths)
    }

    pub fn leases(&self) -> Vec<Lease> {
        self.leases.lock().expect("lease lock").live(now())
    }

    /// Runs in flight with their tickets and the files they have touched so far, by id.
    pub fn wip(&self) -> Vec<Wip> {
        let mut v: Vec<Wip> = self
            .live
            .lock()
            .expect("live lock")
            .iter()
            // Review runs change nothing: not work in progress.
            .filter_map(|(id, l)| {
                Some(Wip {
                    run: *id,
                    ticket: l.ticket?,
                    agent: l.agent.clone(),
                    title: l.title.clone(),
                    files: l.files.lock().expect("files lock").clone(),
                })
            })
            .collect();
        v.sort_by_key(|w| w.run);
        v
    }

    /// Runs in flight, by id.
    pub fn live_runs(&self) -> Vec<RunId> {
        let mut v: Vec<RunId> = self
            .live
            .lock()
            .expect("live lock")
            .keys()
            .copied()
            .collect();
        v.sort();
        v
    }
}

/// Carry out what the scheduler decided for an interrupted run's ticket: back to the queue,
/// or failed once its interruptions are spent. A ticket no longer running (a person
/// cancelled it meanwhile) is left as it is.
fn after_interruption(ws: &Workspace, ticket: TicketId) -> Result<Ticket, FactoryError> {
    let attempts = match ws.store.ticket(ticket)? {
        Some(t) => ws.store.attempts(&t)?,
        None => Default::default(),
    };
    let next = match decide::after_interruption(attempts.interrupted) {
        Next::Fail { why } => {
            tracing::warn!(ticket, "{why}");
            AfterRun::Fail
        }
        _ => AfterRun::Queue,
    };
    ticket_event(ws, ticket, TicketEvent::RunEnded { next })
}

/// Apply a machine's event to a ticket through the state machine. A refusal (a person
/// moved the ticket first) leaves the ticket as the person left it, and is logged.
fn ticket_event(ws: &Workspace, id: TicketId, ev: TicketEvent) -> Result<Ticket, FactoryError> {
    match ws.store.apply_ticket(id, ev) {
        Ok(o) => Ok(o.ticket),
        Err(crate::store::StoreError::Refused(r)) => {
            tracing::info!(ticket = id, "{r}");
            ws.store
                .ticket(id)?
                .ok_or_else(|| FactoryError::Other(format!("ticket {id} is gone from the store")))
        }
        Err(e) => Err(e.into()),
    }
}

impl FactoryError {
    /// Trouble of the machine's (git, the disk, the Docker engine, the store) rather than
    /// of the ticket or its profile: the run is interrupted and tried again, counted as no
    /// attempt of the agent's.
    fn is_transient(&self) -> bool {
        use sandbox::SandboxError as S;
        matches!(
            self,
            FactoryError::Sandbox(
                S::Git { .. }
                    | S::Io { .. }
                    | S::Docker { .. }
                    | S::NoDocker { .. }
                    | S::Host { .. }
                    | S::HostLost { .. },
            ) | FactoryError::Store(_)
                | FactoryError::Git(_)
        )
    }
}

/// Keep a run's running totals from its own steps: tokens and cost, the model the agent
/// says it runs, files touched.
/// How a process ended, in words.
fn describe_exit(exit: sandbox::Exit) -> String {
    match (exit.code, exit.signal) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "ended abnormally".into(),
    }
}

/// Count a live step; a file it edits for the first time joins the run's live file list
/// (what leases and the control room read while the run goes on).
fn note_step(step: &Step, tally: &mut crate::trace::Tally, files: &Arc<Mutex<Vec<String>>>) {
    if tally.add(step)
        && let StepKind::FileEdit { path, .. } = &step.kind
    {
        let mut f = files.lock().expect("files lock");
        if !f.contains(path) {
            f.push(path.clone());
        }
    }
}

/// The workspace's own clone of the user's repository (made on first use), refreshed from
/// the user's repository: new commits on their main fast-forward ours, never the reverse,
/// and the user's checkout is only read. Returns the clone's path and its main branch.
pub fn ensure_clone(ws: &Workspace) -> Result<(PathBuf, String), FactoryError> {
    ensure_clone_of(&ws.info)
}

/// [`ensure_clone`] without opening the workspace's store, for readers such as
/// `shopfloor policy check` that must work while the factory holds it.
pub fn ensure_clone_of(
    info: &crate::layout::WorkspaceInfo,
) -> Result<(PathBuf, String), FactoryError> {
    let dest = info.clone_dir();
    let user = git2::Repository::open(&info.repo)?;
    let main = match user.head() {
        Ok(h) if h.is_branch() => h.shorthand().unwrap_or("main").to_string(),
        _ => "main".to_string(),
    };
    let repo = if dest.join(".git").exists() || dest.join("HEAD").exists() {
        git2::Repository::open(&dest)?
    } else {
        let url = info.repo.to_string_lossy().to_string();
        git2::build::RepoBuilder::new().clone(&url, &dest)?
    };
    // Fetch the user's branches into origin/*.
    let mut remote = repo.find_remote("origin")?;
    remote.fetch(&["+refs/heads/*:refs/remotes/origin/*"], None, None)?;
    let theirs = repo.refname_to_id(&format!("refs/remotes/origin/{main}"));
    let ours_ref = format!("refs/heads/{main}");
    match (repo.refname_to_id(&ours_ref), theirs) {
        (Err(_), Ok(t)) => {
            repo.reference(
                &ours_ref,
                t,
                false,
                "shopfloor: main from the user's repository",
            )?;
        }
        (Ok(o), Ok(t)) if o != t && repo.graph_descendant_of(t, o)? => {
            // Compare-and-swap: only if main is still where we read it.
            repo.reference_matching(
                &ours_ref,
                t,
                true,
                o,
                "shopfloor: fast-forward from the user's repository",
            )?;
        }
        _ => {}
    }
    Ok((dest, main))
}

/// Remove every worktree directory under `root` and prune git's records of them.
fn clean_worktrees(clone: &Path, root: &Path) -> Result<(), FactoryError> {
    if let Ok(entries) = std::fs::read_dir(root) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                tracing::info!(path = %p.display(), "removing a dead run's worktree");
                let _ = std::fs::remove_dir_all(&p);
            }
        }
    }
    let repo = git2::Repository::open(clone)?;
    let names = repo.worktrees()?;
    for name in (0..names.len()).filter_map(|i| names.get(i).ok().flatten()) {
        if let Ok(wt) = repo.find_worktree(name)
            && wt.validate().is_err()
        {
            let mut opts = git2::WorktreePruneOptions::new();
            opts.working_tree(true);
            let _ = wt.prune(Some(&mut opts));
        }
    }
    Ok(())
}

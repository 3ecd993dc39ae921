//! The factory: the one process that owns a workspace. It keeps the workspace's own clone
//! of the user's repository, turns queued tickets into agent runs in sandboxes, streams
//! every line an agent prints into durable, indexed steps, enforces timeouts, commits what
//! an agent leaves behind on its branch, and retries failures with the lesson in the next
//! prompt. Decisions come from `decide`; this module only carries them out.
//!
//! By job:
//! - this file: the factory's state, its start and recovery, the top loop, events;
//! - `schedule`: what starts now, where, and recording how each run ended;
//! - `supervise`, `ingest`, `finish`: the run supervisor, one run from its sandbox to a
//!   `RunEnded` value;
//! - `control`: stop, kill, retry, leases and work in progress, as people and agents ask;
//! - `hosts`, `review`: the connections to `[[hosts]]`; review runs for the merge queue.
//!
//! The merge queue's loop (`mergeq::runner`) runs beside the schedule loop; the factory is
//! its `QueueOwner`.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{Notify, broadcast, watch};

use super::context::{self, Activity};
use super::decide::{self, Busy, Limits, Next, RunOutcome, Timeouts, Waiting};
use super::leases::{Conflict, Lease, LeaseTable};
use super::placement;
use crate::agent::{self, AgentProfile, LaunchContext, OutputDecoder};
use crate::model::transitions::{AfterRun, TicketEvent};
use crate::model::{
    Lifecycle, Run, RunId, RunState, Step, StepKind, Ticket, TicketId, TicketState, Usage,
};
use crate::sandbox::{self, BackendKind, Labels, LaunchSpec, Output, PrepareSpec, Sandbox};
use crate::tokens::Tokens;
use crate::trace::TraceBuilder;
use crate::trace::digest::End;
use crate::workspace::Workspace;

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

use crate::wire::FactoryEvent;

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

mod control;
mod finish;
mod hosts;
mod ingest;
mod review;
mod schedule;
mod supervise;

use hosts::Site;

/// Where a line for a person goes.
type Say = dyn Fn(&str) + Send + Sync;

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
    /// Where what a person watching should read goes (`serve`'s output); unset, only the
    /// log has it. Never stdout: the control room may be drawing there.
    notices: std::sync::OnceLock<Box<Say>>,
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
        Factory::start_with(ws, cfg, sandbox).await
    }

    /// [`Factory::start`] with the sandbox given rather than chosen from the config.
    pub async fn start_with(
        ws: Arc<Workspace>,
        cfg: FactorySettings,
        sandbox: Arc<dyn Sandbox>,
    ) -> Result<Arc<Factory>, FactoryError> {
        let reaped = sandbox.reap_orphans(&ws.info.sandbox_label()).await?;
        if reaped > 0 {
            tracing::warn!(reaped, "reaped processes an earlier factory left running");
        }
        let (clone, main_branch) = {
            let ws = ws.clone();
            blocking(move || Ok(crate::mergeq::clone::ensure(&ws.info)?)).await?
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
            notices: std::sync::OnceLock::new(),
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

    /// Send what a person watching should read (why nothing starts) to `say`, besides
    /// the log. The first call wins.
    pub fn say_notices_to(&self, say: impl Fn(&str) + Send + Sync + 'static) {
        let _ = self.notices.set(Box::new(say));
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
        let root = self.ws.info.worktrees_dir();
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
            crate::mergeq::clone::clean_worktrees(&clone, &root)?;
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

    /// Run the queue until `shutdown` turns true; live runs are then stopped and recorded
    /// as interrupted with their tickets requeued: a clean stop leaves the same state as a
    /// crash, which the next start knows how to resume.
    pub async fn run(
        self: &Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), FactoryError> {
        let owner: Arc<dyn crate::mergeq::runner::QueueOwner> = self.clone();
        let queue = tokio::spawn(crate::mergeq::runner::run(owner, shutdown.clone()));
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

/// The factory runs the merge queue: it builds the queue for each turn (its sandbox for
/// the tests, its policy, its reviewer) and tells its watchers what a turn did.
impl crate::mergeq::runner::QueueOwner for Factory {
    fn workspace(&self) -> &Workspace {
        &self.ws
    }

    fn recover_queue(self: Arc<Self>) -> Result<(), String> {
        self.merge_queue(|q| q.recover().map_err(|e| FactoryError::Other(e.to_string())))
            .map_err(|e| e.to_string())
    }

    fn queue_turn(self: Arc<Self>) -> Result<crate::mergeq::Turn, String> {
        self.merge_queue(|q| q.turn().map_err(|e| FactoryError::Other(e.to_string())))
            .map_err(|e| e.to_string())
    }

    fn turned(&self, turn: &crate::mergeq::Turn) {
        self.emit(FactoryEvent::Queue {
            landed: turn.landed.clone(),
            bounced: turn.bounced.clone(),
            rejected: turn.rejected.clone(),
            waiting: turn.waiting.clone(),
        });
        if !turn.bounced.is_empty() {
            // A bounced ticket is queued again: schedule it.
            self.wake();
        }
    }

    fn queue_wake(&self) -> &Notify {
        &self.queue_wake
    }

    fn poll(&self) -> Duration {
        self.cfg.poll
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

#[cfg(test)]
mod tests;

//! Where a command's work happens: on the workspace's store directly when no one holds it,
//! or through the factory that does. The lock decides: opening the workspace either takes
//! the store's lock (direct) or finds it taken, and then the factory's socket must answer
//! (remote). Every operation is a method here, so commands never ask which case holds.

use std::io::Write;

use super::client::Client;
use super::ops;
use super::{ApiError, OpError};
use crate::index::IndexError;
use crate::memory::MemoryError;
use crate::model::{Author, Memory, Run, RunId, Step, Ticket, TicketId, TicketState};
use crate::store::StoreError;
use crate::trace::ExportFormat;
use crate::wire::{
    Counts, ImportTrace, ImportedMemories, ImportedTrace, MemoryHit, MemorySearch, MemoryWrite,
    NewTicket, StepFound, StepSearch, SyncSession, SyncedSession,
};
use crate::workspace::{OpenError, Workspace, WorkspaceInfo};

/// Steps fetched per request when walking a run through the factory.
const STEP_PAGE: u64 = 1000;
/// How long a command waits for a store another command holds, when no factory answers.
pub const STORE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// For synchronous callers (the CLI, a stdio MCP server): the remote side blocks on its own
/// runtime, so do not call it from inside an async task; use `Client` there.
pub enum Backend {
    /// This process holds the workspace.
    Direct(Box<Workspace>),
    /// A factory holds it; we ask it.
    Remote(Remote),
}

/// A client with the runtime it needs, so callers stay synchronous.
pub struct Remote {
    client: Client,
    rt: tokio::runtime::Runtime,
    holder: crate::wire::Holder,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Open(#[from] Box<OpenError>),
    /// Someone holds the workspace but no factory answers: most likely another command
    /// in the middle of its work, or a factory that is starting or stopping.
    #[error("{api}")]
    Held {
        api: Box<ApiError>,
        #[source]
        open: Box<OpenError>,
    },
}

/// Whether opening failed only because another process holds the store or the index.
pub fn is_locked(e: &OpenError) -> bool {
    matches!(
        e,
        OpenError::Store(StoreError::Locked { .. })
            | OpenError::Index(IndexError::Locked { .. })
            | OpenError::Memory(MemoryError::Store(StoreError::Locked { .. }))
            | OpenError::Memory(MemoryError::Index(IndexError::Locked { .. }))
    )
}

fn runtime() -> Result<tokio::runtime::Runtime, ApiError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ApiError::Runtime)
}

impl Remote {
    /// Reach the factory on `info`'s socket, checking it answers for that workspace.
    pub fn connect(info: &WorkspaceInfo) -> Result<Remote, ApiError> {
        let client = Client::new(info.socket_path());
        let rt = runtime()?;
        let health = rt.block_on(client.health())?;
        if health.workspace != info.name {
            return Err(ApiError::Protocol {
                detail: format!(
                    "the factory on {} serves workspace `{}`, not `{}`",
                    client.socket().display(),
                    health.workspace,
                    info.name
                ),
            });
        }
        Ok(Remote {
            client,
            rt,
            holder: health.holder,
        })
    }

    /// Who answers: a factory, or a `shopfloor mcp` serving its store.
    pub fn holder(&self) -> crate::wire::Holder {
        self.holder
    }

    /// Ask a `shopfloor mcp` holding the store to let it go.
    pub fn release(&self) -> Result<(), ApiError> {
        self.rt.block_on(self.client.release()).map(|_| ())
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Backend {
    /// Open the workspace directly, or, if a factory holds it, connect to the factory.
    /// Another command holding the store for a moment (twenty searches started at once,
    /// hooks firing together) is waited for, up to [`STORE_WAIT`]: each takes its turn.
    pub fn open(info: WorkspaceInfo) -> Result<Backend, BackendError> {
        Backend::open_waiting(info, STORE_WAIT)
    }

    /// [`Backend::open`], waiting at most `wait` for a store another command holds.
    pub fn open_waiting(
        info: WorkspaceInfo,
        wait: std::time::Duration,
    ) -> Result<Backend, BackendError> {
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(10);
        loop {
            match Workspace::open(info.clone()) {
                Ok(ws) => return Ok(Backend::Direct(Box::new(ws))),
                Err(open) if is_locked(&open) => match Remote::connect(&info) {
                    Ok(r) => {
                        tracing::debug!(workspace = %info.name, "a factory holds the workspace; going through its socket");
                        return Ok(Backend::Remote(r));
                    }
                    Err(api) if started.elapsed() >= wait => {
                        return Err(BackendError::Held {
                            api: Box::new(api),
                            open: Box::new(open),
                        });
                    }
                    Err(_) => {
                        // Jittered, so commands that started together do not retry together.
                        let jitter = std::time::Duration::from_micros(
                            u64::from(std::process::id() % 97) * 137 % 20_000,
                        );
                        std::thread::sleep(pause + jitter);
                        pause = (pause * 2).min(std::time::Duration::from_millis(100));
                    }
                },
                Err(e) => return Err(Box::new(e).into()),
            }
        }
    }

    /// Run `direct` on the workspace, or `remote` against the factory.
    fn with<T>(
        &self,
        direct: impl FnOnce(&Workspace) -> Result<T, OpError>,
        remote: impl AsyncFnOnce(&Client) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        match self {
            Backend::Direct(ws) => Ok(direct(ws)?),
            Backend::Remote(r) => r.rt.block_on(remote(&r.client)),
        }
    }

    pub fn counts(&self) -> Result<Counts, ApiError> {
        self.with(ops::counts, async |c| c.counts().await)
    }

    pub fn add_ticket(&self, t: NewTicket) -> Result<Ticket, ApiError> {
        self.with(
            |ws| ops::add_ticket(ws, t.clone()),
            async |c| c.add_ticket(&t).await,
        )
    }

    pub fn tickets(&self, state: Option<TicketState>) -> Result<Vec<Ticket>, ApiError> {
        self.with(
            |ws| ops::tickets(ws, state),
            async |c| c.tickets(state).await,
        )
    }

    pub fn ticket(&self, id: TicketId) -> Result<Ticket, ApiError> {
        self.with(|ws| ops::ticket(ws, id), async |c| c.ticket(id).await)
    }

    pub fn cancel_ticket(&self, id: TicketId) -> Result<Ticket, ApiError> {
        self.with(
            |ws| ops::cancel_ticket(ws, id),
            async |c| c.cancel_ticket(id).await,
        )
    }

    /// The factory at a glance (without a factory: nothing runs, the clone's main).
    pub fn status(&self) -> Result<crate::wire::FactoryStatus, ApiError> {
        self.with(|ws| ops::status(ws, None), async |c| c.status().await)
    }

    pub fn runs(&self) -> Result<Vec<Run>, ApiError> {
        self.with(ops::runs, async |c| c.runs().await)
    }

    pub fn run(&self, id: RunId) -> Result<Run, ApiError> {
        self.with(|ws| ops::run(ws, id), async |c| c.run(id).await)
    }

    /// Visit every step of a run in order, as stored, never holding the run whole: the
    /// store's own scan directly, pages of steps through the factory.
    pub fn for_each_step(
        &self,
        run: RunId,
        mut f: impl FnMut(Step) -> std::io::Result<()>,
    ) -> Result<(), ApiError> {
        match self {
            Backend::Direct(ws) => {
                ops::run(ws, run)?;
                let mut io_err = None;
                let res = ws.store.for_each_step(run, |s| {
                    f(s).map_err(|e| {
                        io_err = Some(e);
                        StoreError::Invalid("stopped".into())
                    })
                });
                if let Some(e) = io_err {
                    return Err(write_err(e));
                }
                res.map_err(|e| OpError::from_error(super::ErrorKind::Internal, &e))?;
                Ok(())
            }
            Backend::Remote(r) => {
                let mut from = 0;
                loop {
                    let page = r.rt.block_on(r.client.steps(run, from, from + STEP_PAGE))?;
                    let Some(last) = page.last().map(|s| s.seq) else {
                        return Ok(());
                    };
                    for s in page {
                        f(s).map_err(write_err)?;
                    }
                    from = last + 1;
                }
            }
        }
    }

    /// Steps `from..to` of a run, as stored.
    pub fn steps(&self, run: RunId, from: u64, to: u64) -> Result<Vec<Step>, ApiError> {
        self.with(
            |ws| ops::steps(ws, run, from, to),
            async |c| c.steps(run, from, to).await,
        )
    }

    pub fn queue(&self) -> Result<crate::wire::QueueView, ApiError> {
        self.with(ops::queue, async |c| c.queue().await)
    }

    pub fn queue_entry(&self, id: u64) -> Result<crate::wire::QueueDetail, ApiError> {
        self.with(
            |ws| ops::queue_entry(ws, id),
            async |c| c.queue_entry(id).await,
        )
    }

    /// `verb`: approve, reject or bump.
    pub fn queue_act(
        &self,
        id: u64,
        verb: &str,
        a: crate::wire::QueueAction,
    ) -> Result<crate::model::QueueEntry, ApiError> {
        self.with(
            |ws| ops::queue_act(ws, id, verb, a.clone()),
            async |c| c.queue_act(id, verb, &a).await,
        )
    }

    pub fn queue_pause(
        &self,
        paused: bool,
        a: crate::wire::QueueAction,
    ) -> Result<crate::wire::QueueView, ApiError> {
        self.with(
            |ws| ops::queue_pause(ws, paused, a.clone()),
            async |c| c.queue_pause(paused, &a).await,
        )
    }

    /// The audit log, oldest first.
    pub fn audit(&self) -> Result<Vec<crate::model::AuditEvent>, ApiError> {
        self.with(ops::audit, async |c| c.audit().await)
    }

    /// Live path leases; only a running factory holds any.
    pub fn leases(&self) -> Result<Vec<crate::scheduler::leases::Lease>, ApiError> {
        self.with(|_| Ok(Vec::new()), async |c| c.leases().await)
    }

    /// Stop a live run; only a running factory has any.
    pub fn kill_run(&self, run: RunId) -> Result<Run, ApiError> {
        self.with(
            |ws| {
                let r = ops::run(ws, run)?;
                Err(OpError::new(
                    super::ErrorKind::Conflict,
                    format!(
                        "run {run} is {}, and no factory runs workspace `{}`: only a running factory has live runs (`shopfloor serve`)",
                        r.state, ws.info.name
                    ),
                ))
            },
            async |c| c.kill_run(run).await,
        )
    }

    pub fn step(&self, run: RunId, seq: u64) -> Result<Step, ApiError> {
        self.with(
            |ws| ops::step(ws, run, seq),
            async |c| c.step(run, seq).await,
        )
    }

    /// Write a run to `out` in `format`; returns the number of lines (for JSONL, steps).
    pub fn export(
        &self,
        run: RunId,
        format: ExportFormat,
        out: &mut dyn Write,
    ) -> Result<u64, ApiError> {
        match self {
            Backend::Direct(ws) => Ok(ops::export(ws, run, format, out)?),
            Backend::Remote(r) => r.rt.block_on(r.client.export(run, format, out)),
        }
    }

    pub fn import_trace(&self, req: ImportTrace) -> Result<ImportedTrace, ApiError> {
        self.with(
            |ws| ops::import_trace(ws, req.clone()),
            async |c| c.import_trace(&req).await,
        )
    }

    pub fn search_steps(&self, q: StepSearch) -> Result<Vec<StepFound>, ApiError> {
        self.with(
            |ws| ops::search_steps(ws, q.clone()),
            async |c| c.search_steps(&q).await,
        )
    }

    pub fn add_memory(&self, m: MemoryWrite) -> Result<Memory, ApiError> {
        self.with(
            |ws| ops::add_memory(ws, m.clone()),
            async |c| c.add_memory(&m).await,
        )
    }

    pub fn memory(
        &self,
        id: crate::model::MemoryId,
    ) -> Result<crate::wire::MemoryDetail, ApiError> {
        self.with(|ws| ops::memory(ws, id), async |c| c.memory(id).await)
    }

    pub fn search_memory(&self, q: MemorySearch) -> Result<Vec<MemoryHit>, ApiError> {
        self.with(
            |ws| ops::search_memory(ws, q.clone()),
            async |c| c.search_memory(&q).await,
        )
    }

    /// Import memories from JSON Lines bytes, written by the human `author`.
    pub fn import_memory(
        &self,
        jsonl: Vec<u8>,
        author: &str,
    ) -> Result<ImportedMemories, ApiError> {
        match self {
            Backend::Direct(ws) => Ok(ops::import_memory(
                ws,
                std::io::Cursor::new(jsonl),
                Author::Human {
                    name: author.to_string(),
                },
            )?),
            Backend::Remote(r) => r.rt.block_on(r.client.import_memory(jsonl, author)),
        }
    }

    /// Bring the run recording an interactive session up to date with its transcript.
    pub fn sync_session(&self, req: SyncSession) -> Result<SyncedSession, ApiError> {
        self.with(
            |ws| ops::sync_session(ws, req.clone()),
            async |c| c.sync_session(&req).await,
        )
    }
}

fn write_err(e: std::io::Error) -> ApiError {
    OpError::from_error(super::ErrorKind::Internal, &e).into()
}

//! The factory's control API: JSON over HTTP on the workspace's Unix socket. Handlers are
//! thin: they decode, run the operation from `ops` on a blocking thread (redb and tantivy
//! block), and encode. The factory adds its own routes (run control, MCP at `/mcp`) by
//! merging them into `router`'s result before `serve_on`.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::ApiError;
use super::auth::{Gate, Tokens, authorize};
use super::ops;
use crate::model::Author;
use crate::scheduler::factory::Factory;
use crate::trace::ExportFormat;
use crate::wire::{
    ExportQuery, Health, ImportAuthor, ImportTrace, MemorySearch, MemoryWrite, NewTicket, OpError,
    StepRange, StepSearch, TicketQuery,
};
use crate::workspace::Workspace;

/// Largest memory import body accepted: JSON Lines of memories are text, and a million of
/// them fit well under this; anything bigger is more likely a mistake than an import.
const MAX_IMPORT_BYTES: usize = 512 << 20;

/// What every handler shares: the workspace, and the factory when one runs it (it is
/// what stops live runs and starts queued tickets).
#[derive(Clone)]
pub struct AppState {
    pub ws: Arc<Workspace>,
    pub factory: Option<Arc<Factory>>,
    /// Turns true when the server shuts down: it ends the event streams, which a graceful
    /// shutdown would otherwise wait on forever.
    pub closing: tokio::sync::watch::Receiver<bool>,
    /// Set when a `shopfloor mcp` serves its store here: notified to let the store go, so
    /// a factory can start (`POST /v1/release`).
    pub release: Option<Arc<tokio::sync::Notify>>,
}

impl AppState {
    pub fn new(ws: Arc<Workspace>) -> AppState {
        AppState {
            ws,
            factory: None,
            closing: tokio::sync::watch::channel(false).1,
            release: None,
        }
    }

    pub fn with_factory(factory: Arc<Factory>) -> AppState {
        AppState {
            ws: factory.workspace().clone(),
            factory: Some(factory),
            closing: tokio::sync::watch::channel(false).1,
            release: None,
        }
    }

    /// Served by a `shopfloor mcp` holding the store: `POST /v1/release` notifies `release`.
    pub fn releasing_on(mut self, release: Arc<tokio::sync::Notify>) -> AppState {
        self.release = Some(release);
        self
    }

    /// End event streams when `closing` turns true.
    pub fn closing_on(mut self, closing: tokio::sync::watch::Receiver<bool>) -> AppState {
        self.closing = closing;
        self
    }

    /// The auth layer's view: the workspace and its run tokens. The factory's tokens when
    /// one runs here (it issues and revokes them); otherwise a table with no live run, so
    /// no token opens anything.
    pub fn gate(&self) -> Result<Gate, ApiError> {
        let tokens = match &self.factory {
            Some(f) => f.tokens().clone(),
            None => Tokens::open(&self.ws.info)?,
        };
        Ok(Gate::new(self.ws.clone(), tokens))
    }
}

impl IntoResponse for OpError {
    fn into_response(self) -> Response {
        (self.kind.status(), Json(self.to_body())).into_response()
    }
}

/// Run an operation with the workspace on a blocking thread (the store and index block).
async fn with_workspace<T, F>(state: &AppState, f: F) -> Result<T, OpError>
where
    T: Send + 'static,
    F: FnOnce(&Workspace) -> Result<T, OpError> + Send + 'static,
{
    let ws = state.ws.clone();
    tokio::task::spawn_blocking(move || f(&ws))
        .await
        .map_err(|e| OpError::internal(format!("the request's worker failed: {e}; see the log")))?
}

// Extractor rejections become our JSON errors, so a malformed request gets the same
// `{error}` shape as any other failure rather than axum's plain text.
fn bad_json(r: JsonRejection) -> OpError {
    OpError::new(
        crate::wire::ErrorKind::from_status(r.status()),
        format!("malformed request body: {}", r.body_text()),
    )
}
fn bad_path(r: PathRejection) -> OpError {
    OpError::bad_request(format!("malformed path: {}", r.body_text()))
}
fn bad_query(r: QueryRejection) -> OpError {
    OpError::bad_request(format!("malformed query: {}", r.body_text()))
}

type Reply<T> = Result<Json<T>, OpError>;

/// The factory's two doors, behind one auth layer.
pub struct Api {
    /// For the person's socket: the control API and MCP.
    pub person: Router,
    /// For the sandboxes' socket and the loopback TCP port: MCP and the health check
    /// only, and only with a live run's token.
    pub sandbox: Router,
    /// The auth layer's state: flush its refusal log now and then, and at shutdown.
    pub gate: Gate,
}

/// Both routers over `state`. Serve `person` with `serve_on(.., Transport::Unix, ..)` on
/// `factory.sock`, `sandbox` on `sandbox.sock` and TCP: the transport tag is what the
/// auth layer trusts, so a listener is always tagged by the code that binds it.
pub fn api(state: AppState) -> Result<Api, ApiError> {
    let gate = state.gate()?;
    let guard = |r: Router<AppState>| {
        r.layer(middleware::from_fn_with_state(gate.clone(), authorize))
            .layer(middleware::from_fn(log_request))
            .with_state(state.clone())
    };
    let person = guard(person_routes(&state));
    let sandbox = guard(
        Router::new()
            .route("/v1/health", get(health))
            .route_service("/mcp", super::mcp::http_service(state.clone()))
            .fallback(|req: Request| async move {
                OpError::not_found(format!(
                    "no route {} {} for sandboxes: a run reaches MCP at /mcp only",
                    req.method(),
                    req.uri().path()
                ))
            }),
    );
    Ok(Api {
        person,
        sandbox,
        gate,
    })
}

/// The control API's routes and MCP at `/mcp`, for the person's socket.
fn person_routes(state: &AppState) -> Router<AppState> {
    let mcp = super::mcp::http_service(state.clone());
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/release", post(release))
        .route("/v1/workspace", get(workspace))
        .route("/v1/tickets", get(list_tickets).post(add_ticket))
        .route("/v1/tickets/{id}", get(show_ticket))
        .route("/v1/tickets/{id}/cancel", post(cancel_ticket))
        .route("/v1/tickets/{id}/priority", post(set_priority))
        .route("/v1/status", get(status))
        .route("/v1/events", get(events))
        .route("/v1/runs", get(list_runs))
        .route("/v1/runs/import", post(import_trace))
        .route("/v1/runs/{id}", get(show_run))
        .route("/v1/runs/{id}/kill", post(kill_run))
        .route("/v1/runs/{id}/retry", post(retry_run))
        .route("/v1/runs/{id}/outline", get(run_outline))
        .route("/v1/runs/{id}/files/{seq}", get(run_file_at))
        .route("/v1/leases", get(list_leases))
        .route("/v1/audit", get(audit_log))
        .route("/v1/queue", get(queue_list))
        .route("/v1/queue/pause", post(queue_pause))
        .route("/v1/queue/resume", post(queue_resume))
        .route("/v1/queue/{id}", get(queue_show))
        .route("/v1/queue/{id}/{verb}", post(queue_act))
        .route("/v1/runs/{id}/steps", get(run_steps))
        .route("/v1/runs/{id}/steps/{seq}", get(run_step))
        .route("/v1/runs/{id}/export", get(export_run))
        .route("/v1/steps/search", post(search_steps))
        .route("/v1/sessions/sync", post(sync_session))
        .route("/v1/memory", post(add_memory))
        .route("/v1/memory/search", post(search_memory))
        .route("/v1/memory/{id}", get(show_memory))
        .route(
            "/v1/memory/import",
            post(import_memory).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        )
        .fallback(|req: Request| async move {
            OpError::not_found(format!(
                "no route {} {}; this factory serves /v1/... (is the CLI the same version as the factory?)",
                req.method(),
                req.uri().path()
            ))
        })
        .method_not_allowed_fallback(|req: Request| async move {
            OpError::new(
                crate::wire::ErrorKind::BadRequest,
                format!("{} is not allowed on {}", req.method(), req.uri().path()),
            )
        })
        .route_service("/mcp", mcp)
}

/// One debug line a request, to the log file.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let start = Instant::now();
    let resp = next.run(req).await;
    tracing::debug!(
        %method, %uri, status = resp.status().as_u16(),
        ms = start.elapsed().as_secs_f64() * 1e3, "api request"
    );
    resp
}

async fn health(State(s): State<AppState>) -> Json<Health> {
    Json(Health {
        workspace: s.ws.info.name.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        holder: if s.release.is_some() {
            crate::wire::Holder::Mcp
        } else {
            crate::wire::Holder::Factory
        },
    })
}

/// Ask whoever holds the store here to let it go. Only a `shopfloor mcp` does (it reopens
/// the store, or talks to the factory, on its next call); a factory is stopped with
/// SIGTERM, not by a request.
async fn release(State(s): State<AppState>) -> Reply<serde_json::Value> {
    match &s.release {
        Some(r) => {
            r.notify_one();
            Ok(Json(
                serde_json::json!({"releasing": true, "workspace": s.ws.info.name}),
            ))
        }
        None => Err(OpError::new(
            crate::wire::ErrorKind::Conflict,
            "a factory holds this workspace; stop it with Ctrl-C in its terminal, or SIGTERM",
        )),
    }
}

async fn workspace(State(s): State<AppState>) -> Reply<crate::wire::Counts> {
    Ok(Json(with_workspace(&s, ops::counts).await?))
}

async fn list_tickets(
    State(s): State<AppState>,
    q: Result<Query<TicketQuery>, QueryRejection>,
) -> Reply<Vec<crate::model::Ticket>> {
    let Query(q) = q.map_err(bad_query)?;
    Ok(Json(
        with_workspace(&s, move |ws| ops::tickets(ws, q.state)).await?,
    ))
}

async fn add_ticket(
    State(s): State<AppState>,
    body: Result<Json<NewTicket>, JsonRejection>,
) -> Reply<crate::model::Ticket> {
    let Json(t) = body.map_err(bad_json)?;
    let added = with_workspace(&s, move |ws| ops::add_ticket(ws, t)).await?;
    if let Some(f) = &s.factory {
        f.ticket_changed(&added);
        f.wake();
    }
    Ok(Json(added))
}

async fn show_ticket(
    State(s): State<AppState>,
    id: Result<UrlPath<u64>, PathRejection>,
) -> Reply<crate::model::Ticket> {
    let UrlPath(id) = id.map_err(bad_path)?;
    Ok(Json(
        with_workspace(&s, move |ws| ops::ticket(ws, id)).await?,
    ))
}

async fn cancel_ticket(
    State(s): State<AppState>,
    id: Result<UrlPath<u64>, PathRejection>,
) -> Reply<crate::model::Ticket> {
    let UrlPath(id) = id.map_err(bad_path)?;
    let t = with_workspace(&s, move |ws| ops::cancel_ticket(ws, id)).await?;
    // A live run of the ticket stops within a second.
    if let Some(f) = &s.factory {
        f.stop_ticket(id);
        f.ticket_changed(&t);
    }
    Ok(Json(t))
}

async fn set_priority(
    State(s): State<AppState>,
    id: Result<UrlPath<u64>, PathRejection>,
    body: Result<Json<crate::wire::NewPriority>, JsonRejection>,
) -> Reply<crate::model::Ticket> {
    let UrlPath(id) = id.map_err(bad_path)?;
    let Json(p) = body.map_err(bad_json)?;
    let t = with_workspace(&s, move |ws| ops::set_priority(ws, id, p.priority)).await?;
    if let Some(f) = &s.factory {
        f.ticket_changed(&t);
        f.wake();
    }
    Ok(Json(t))
}

/// Retry a run's ticket: a live run is stopped and its ticket queued again at once; a
/// failed or cancelled one is queued again.
async fn retry_run(
    State(s): State<AppState>,
    id: Result<UrlPath<u64>, PathRejection>,
) -> Reply<crate::model::Ticket> {
    let UrlPath(id) = id.map_err(bad_path)?;
    let run = with_workspace(&s, move |ws| ops::run(ws, id)).await?;
    let Some(ticket) = run.ticket else {
        return Err(OpError::new(
            crate::wire::ErrorKind::Conflict,
            format!("run {id} was imported, not started for a ticket: there is nothing to retry"),
        ));
    };
    if let Some(f) = &s.factory
        && f.retry_run(id)
    {
        return Ok(Json(
            with_workspace(&s, move |ws| ops::ticket(ws, ticket)).await?,
        ));
    }
    let t = with_workspace(&s, move |ws| ops::retry_ticket(ws, ticket)).await?;
    if let Some(f) = &s.factory {
        f.ticket_changed(&t);
        f.wake();
    }
    Ok(Json(t))
}

async fn status(State(s): State<AppState>) -> Reply<crate::wire::FactoryStatus> {
    let factory = s.factory.clone();
    Ok(Json(
        with_workspace(&s, move |ws| ops::status(ws, factory.as_deref())).await?,
    ))
}

/// The factory's events as JSON Lines, one event a line, for as long as the client
/// listens. A client that falls behind gets a `resync` line: reload, some were missed.
async fn events(State(s): State<AppState>) -> Result<Response, OpError> {
    let Some(f) = &s.factory else {
        return Err(OpError::new(
            crate::wire::ErrorKind::Conflict,
            "no factory runs here, so there are no events; start one with `shopfloor serve`",
        ));
    };
    let rx = f.subscribe();
    let closing = s.closing.clone();
    let stream = futures_util::stream::unfold((rx, closing), |(mut rx, mut closing)| async move {
        use tokio::sync::broadcast::error::RecvError;
        let event = tokio::select! {
            e = rx.recv() => match e {
                Ok(e) => e,
                Err(RecvError::Lagged(n)) => crate::wire::FactoryEvent::Resync { missed: n },
                Err(RecvError::Closed) => return None,
            },
            _ = closing.wait_for(|c| *c) => return None,
        };
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        Some((Ok::<_, std::io::Error>(Bytes::from(line)), (rx, closing)))
    });
    let mut resp = Body::from_stream(stream).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(resp)
}

async fn run_file_at(
    State(s): State<AppState>,
    ids: Result<UrlPath<(u64, u64)>, PathRejection>,
    q: Result<Query<crate::wire::PathQuery>, QueryRejection>,
) -> Reply<crate::wire::FileAtStep> {
    let UrlPath((id, seq)) = ids.map_err(bad_path)?;
    let Query(q) = q.map_err(bad_query)?;
    Ok(Json(
        with_workspace(&s, move |ws| ops::file_at(ws, id, seq, &q.path)).await?,
    ))
}

async fn run_outline(
    State(s): State<AppState>,
    id: Result<UrlPath<u64>, PathRejection>,
    range: Result<Query<StepRange>, QueryRejection>,
) -> Reply<Vec<crate::wire::OutlineRow>> {
    let UrlPath(id) = id.map_err(bad_path)?;
    let Query(r) = range.map_err(bad_query)?;
    Ok(Json(
        with_workspace(&s, move |ws| ops::outline(ws, id, r.from, r.to)).await?,
    ))
}

async fn kill_run(
    State(s): State<AppState>,
    id: Result<UrlPath<u64>, PathRejection>,
) -> Reply<crate::model::Run> {
    let UrlPath(id) = id.map_err(bad_path)?;
    let Some(f) = &s.factory else {
        return Err(OpError::new(
            crate::wire::ErrorKind::Conflict,
            format!("run {id} is not running: this server runs no factory"),
        ));
    };
    f.kill_run(id)
        .map_err(|e| OpError::new(crate::wire::ErrorKind::Conflict, e.to_string()))?;
    Ok(Json(with_workspace(&s, move |ws| ops::run(ws, id)).await?))
}

async fn queue_list(State(s): State<AppState>) -> Reply<crate::wire::QueueView> {
    Ok(Json(with_workspace(&s, ops::queue).await?))
}

async fn queue_show(
    State(s): State<AppState>,
    id: Result<UrlPath<u64>, PathRejection>,
) -> Reply<crate::wire::QueueDetail> {
    let UrlPath(id) = id.map_err(bad_path)?;
    Ok(Json(
        with_workspace(&s, move |ws| ops::queue_entry(ws, id)).await?,
    ))
}

async fn queue_act(
    State(s): State<AppState>,
    path: Result<UrlPath<(u64, String)>, PathRejection>,
    body: Result<Json<crate::wire::QueueAction>, JsonRejection>,
) -> Reply<crate::model::QueueEntry> {
    let UrlPath((id, verb)) = path.map_err(bad_path)?;
    let Json(a) = body.map_err(bad_json)?;
    let e = with_workspace(&s, move |ws| ops::queue_act(ws, id, &verb, a)).await?;
    if let Some(f) = &s.factory {
        f.queue_changed();
        f.wake_queue();
        // Sent back: its ticket is queued again.
        f.wake();
    }
    Ok(Json(e))
}

async fn queue_pause(
    State(s): State<AppState>,
    body: Result<Json<crate::wire::QueueAction>, JsonRejection>,
) -> Reply<crate::wire::QueueView> {
    let Json(a) = body.map_err(bad_json)?;
    let v = with_workspace(&s, move |ws| ops::queue_pause(ws, true, a)).await?;
    if let Some(f) = &s.factory {
        f.queue_changed();
    }
    Ok(Json(v))
}

async fn queue_resume(
    State(s): State<AppState>,
    body: Result<Json<crate::wire::QueueAction>, JsonRejection>,
) -> Reply<crate::wire::QueueView> {
    let Json(a) = body.map_err(bad_json)?;
    let v = with_workspace(&s, move |ws| ops::queue_pause(ws, false, a)).await?;
    if let Some(f) = &s.factory {
        f.queue_changed();
        f.wake_queue();
    }
    Ok(Json(v))
}

async fn audit_log(State(s): State<AppState>) -> Reply<Vec<crate::model::AuditEvent>> {
    Ok(Json(with_workspace(&s, ops::audit).await?))
}

async fn list_leases(State(s): State<AppState>) -> Json<Vec<crate::scheduler::leases::Lease>> {
    Json(s.factory.as_ref().map(|f| f.leases()).unwrap_or_default())
}

async fn list_runs(State(s): State<AppState>) -> Reply<Vec<crate::model::Run>> {
    Ok(Json(with_workspace(&s, ops::runs).await?))
}

async fn show_run(
    State(s): State<AppState>,
    id: Result<UrlPath<u64>, PathRejection>,
) -> Reply<crate::model::Run> {
    let UrlPath(id) = id.map_err(bad_path)?;
    Ok(Json(with_workspace(&s, move |ws| ops::run(ws, id)).await?))
}

async fn run_steps(
    State(s): State<AppState>,
    id: Result<UrlPath<u64>, PathRejection>,
    range: Result<Query<StepRange>, QueryRejection>,
) -> Reply<Vec<crate::model::Step>> {
    let UrlPath(id) = id.map_err(bad_path)?;
    let Query(r) = range.map_err(bad_query)?;
    Ok(Json(
        with_workspace(&s, move |ws| ops::steps(ws, id, r.from, r.to)).await?,
    ))
}

async fn run_step(
    State(s): State<AppState>,
    ids: Result<UrlPath<(u64, u64)>, PathRejection>,
) -> Reply<crate::model::Step> {
    let UrlPath((id, seq)) = ids.map_err(bad_path)?;
    Ok(Json(
        with_workspace(&s, move |ws| ops::step(ws, id, seq)).await?,
    ))
}

/// A `Write` that hands its bytes to the response body in chunks, so an export streams
/// from the store to the socket without the run ever being held whole.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 64 << 10;

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

async fn export_run(
    State(s): State<AppState>,
    id: Result<UrlPath<u64>, PathRejection>,
    q: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, OpError> {
    let UrlPath(id) = id.map_err(bad_path)?;
    let Query(q) = q.map_err(bad_query)?;
    let format = match q.format.as_deref() {
        None => ExportFormat::default(),
        Some(f) => f.parse::<ExportFormat>().map_err(OpError::bad_request)?,
    };
    // Answer "not found" with a status while we still can: once the body streams, the
    // status is sent.
    with_workspace(&s, move |ws| ops::run(ws, id)).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let ws = s.ws.clone();
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::new(),
        };
        if let Err(e) = ops::export(&ws, id, format, &mut w) {
            tracing::error!(run = id, error = %e, "export failed mid-stream");
            // Breaks the body off, so the client sees an incomplete export, never a short
            // one that looks whole.
            let _ = tx.blocking_send(Err(std::io::Error::other(e.message)));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut resp = Body::from_stream(stream).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(resp)
}

async fn import_trace(
    State(s): State<AppState>,
    body: Result<Json<ImportTrace>, JsonRejection>,
) -> Reply<crate::wire::ImportedTrace> {
    let Json(req) = body.map_err(bad_json)?;
    if !req.path.is_absolute() {
        return Err(OpError::bad_request(format!(
            "trace path {} is relative; the factory needs an absolute path",
            req.path.display()
        )));
    }
    Ok(Json(
        with_workspace(&s, move |ws| ops::import_trace(ws, req)).await?,
    ))
}

async fn search_steps(
    State(s): State<AppState>,
    body: Result<Json<StepSearch>, JsonRejection>,
) -> Reply<Vec<crate::wire::StepFound>> {
    let Json(q) = body.map_err(bad_json)?;
    Ok(Json(
        with_workspace(&s, move |ws| ops::search_steps(ws, q)).await?,
    ))
}

async fn add_memory(
    State(s): State<AppState>,
    body: Result<Json<MemoryWrite>, JsonRejection>,
) -> Reply<crate::model::Memory> {
    let Json(m) = body.map_err(bad_json)?;
    Ok(Json(
        with_workspace(&s, move |ws| ops::add_memory(ws, m)).await?,
    ))
}

async fn show_memory(
    State(s): State<AppState>,
    id: Result<UrlPath<u64>, PathRejection>,
) -> Reply<crate::wire::MemoryDetail> {
    let UrlPath(id) = id.map_err(bad_path)?;
    Ok(Json(
        with_workspace(&s, move |ws| ops::memory(ws, id)).await?,
    ))
}

async fn search_memory(
    State(s): State<AppState>,
    body: Result<Json<MemorySearch>, JsonRejection>,
) -> Reply<Vec<crate::wire::MemoryHit>> {
    let Json(q) = body.map_err(bad_json)?;
    Ok(Json(
        with_workspace(&s, move |ws| ops::search_memory(ws, q)).await?,
    ))
}

async fn import_memory(
    State(s): State<AppState>,
    author: Result<Query<ImportAuthor>, QueryRejection>,
    body: Bytes,
) -> Reply<crate::wire::ImportedMemories> {
    let Query(a) = author.map_err(bad_query)?;
    let author = Author::Human { name: a.author };
    Ok(Json(
        with_workspace(&s, move |ws| {
            ops::import_memory(ws, std::io::Cursor::new(body), author)
        })
        .await?,
    ))
}

async fn sync_session(
    State(s): State<AppState>,
    body: Result<Json<crate::wire::SyncSession>, JsonRejection>,
) -> Reply<crate::wire::SyncedSession> {
    let Json(req) = body.map_err(bad_json)?;
    Ok(Json(
        with_workspace(&s, move |ws| ops::sync_session(ws, req)).await?,
    ))
}

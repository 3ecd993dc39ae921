//! A client of the factory's control API over its Unix socket: one typed method a route.
//! Each request opens its own connection: over a local socket that costs microseconds, and
//! it leaves no pool to go stale when the factory restarts.

use std::io::Write;
use std::path::{Path, PathBuf};

use axum::http::{Method, Request, StatusCode, header};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ApiError;
use crate::model::{Memory, Run, RunId, Step, Ticket, TicketId, TicketState};
use crate::trace::ExportFormat;
use crate::wire::{
    Counts, ErrorBody, ErrorKind, Health, ImportTrace, ImportedMemories, ImportedTrace, MemoryHit,
    MemorySearch, MemoryWrite, NewTicket, OpError, StepFound, StepSearch, SyncSession,
    SyncedSession,
};

#[derive(Clone, Debug)]
pub struct Client {
    socket: PathBuf,
}

/// Percent-encode a query value (everything but RFC 3986's unreserved characters).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// A client for the factory on `socket`; nothing is dialled until a request.
    pub fn new(socket: impl Into<PathBuf>) -> Client {
        Client {
            socket: socket.into(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn transport(&self, e: impl std::fmt::Display) -> ApiError {
        ApiError::Transport {
            socket: self.socket.clone(),
            detail: e.to_string(),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(Bytes, &'static str)>,
    ) -> Result<hyper::Response<Incoming>, ApiError> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| ApiError::NotAnswering {
                socket: self.socket.clone(),
                detail: e.to_string(),
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.transport(e))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "api connection ended with an error");
            }
        });
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            // HTTP/1.1 wants a Host; a Unix socket has none, so name the local host.
            .header(header::HOST, "localhost");
        let body = match body {
            Some((bytes, content_type)) => {
                req = req.header(header::CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let req = req.body(Full::new(body)).map_err(|e| self.transport(e))?;
        sender
            .send_request(req)
            .await
            .map_err(|e| self.transport(e))
    }

    /// A non-success response as the operation error it carries.
    async fn failure(&self, resp: hyper::Response<Incoming>) -> ApiError {
        let status = resp.status();
        let bytes = match resp.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return self.transport(e),
        };
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => ApiError::Op(OpError::from_body(body)),
            // Not ours (a panic page, another server on the socket): say what came back.
            Err(_) => ApiError::Op(OpError::new(
                ErrorKind::from_status(status),
                format!(
                    "the factory answered {status}: {}",
                    String::from_utf8_lossy(&bytes).trim()
                ),
            )),
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<(Bytes, &'static str)>,
    ) -> Result<T, ApiError> {
        let resp = self.send(method, path, body).await?;
        if resp.status() != StatusCode::OK {
            return Err(self.failure(resp).await);
        }
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| self.transport(e))?
            .to_bytes();
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Protocol {
            detail: format!("{path}: {e}"),
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.call(Method::GET, path, None).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ApiError::Protocol {
            detail: e.to_string(),
        })?;
        self.call(
            Method::POST,
            path,
            Some((Bytes::from(bytes), "application/json")),
        )
        .await
    }

    // ---- the routes ----

    pub async fn health(&self) -> Result<Health, ApiError> {
        self.get("/v1/health").await
    }

    /// Ask a `shopfloor mcp` holding the store to let it go (a factory is starting).
    pub async fn release(&self) -> Result<serde_json::Value, ApiError> {
        self.post("/v1/release", &serde_json::json!({})).await
    }

    pub async fn counts(&self) -> Result<Counts, ApiError> {
        self.get("/v1/workspace").await
    }

    pub async fn add_ticket(&self, t: &NewTicket) -> Result<Ticket, ApiError> {
        self.post("/v1/tickets", t).await
    }

    pub async fn tickets(&self, state: Option<TicketState>) -> Result<Vec<Ticket>, ApiError> {
        match state {
            Some(s) => {
                self.get(&format!("/v1/tickets?state={}", encode(&s.to_string())))
                    .await
            }
            None => self.get("/v1/tickets").await,
        }
    }

    pub async fn ticket(&self, id: TicketId) -> Result<Ticket, ApiError> {
        self.get(&format!("/v1/tickets/{id}")).await
    }

    pub async fn cancel_ticket(&self, id: TicketId) -> Result<Ticket, ApiError> {
        self.post(&format!("/v1/tickets/{id}/cancel"), &()).await
    }

    pub async fn set_priority(&self, id: TicketId, priority: i32) -> Result<Ticket, ApiError> {
        self.post(
            &format!("/v1/tickets/{id}/priority"),
            &crate::wire::NewPriority { priority },
        )
        .await
    }

    /// Retry a run's ticket (a live run is stopped first); returns the ticket.
    pub async fn retry_run(&self, id: RunId) -> Result<Ticket, ApiError> {
        self.post(&format!("/v1/runs/{id}/retry"), &()).await
    }

    pub async fn status(&self) -> Result<crate::wire::FactoryStatus, ApiError> {
        self.get("/v1/status").await
    }

    /// `path` as it was after step `seq` of a run.
    pub async fn file_at(
        &self,
        run: RunId,
        seq: u64,
        path: &str,
    ) -> Result<crate::wire::FileAtStep, ApiError> {
        self.get(&format!("/v1/runs/{run}/files/{seq}?path={}", encode(path)))
            .await
    }

    /// The outline of steps `from..to` of a run.
    pub async fn outline(
        &self,
        run: RunId,
        from: u64,
        to: u64,
    ) -> Result<Vec<crate::wire::OutlineRow>, ApiError> {
        self.get(&format!("/v1/runs/{run}/outline?from={from}&to={to}"))
            .await
    }

    /// Follow the factory's events, handing each to `on_event` until it returns false or
    /// the factory ends the stream (it stopped). A line this version cannot read is
    /// skipped: a newer factory may know events this client does not.
    pub async fn follow_events(
        &self,
        mut on_event: impl FnMut(crate::wire::FactoryEvent) -> bool,
    ) -> Result<(), ApiError> {
        let mut resp = self.send(Method::GET, "/v1/events", None).await?;
        if resp.status() != StatusCode::OK {
            return Err(self.failure(resp).await);
        }
        let mut lines = crate::sandbox::lines::LineSplitter::default();
        let mut listening = true;
        while listening && let Some(frame) = resp.body_mut().frame().await {
            let frame = frame.map_err(|e| self.transport(e))?;
            let Some(data) = frame.data_ref() else {
                continue;
            };
            lines.push(data, |line| {
                if !listening {
                    return;
                }
                match serde_json::from_slice(&line) {
                    Ok(event) => listening = on_event(event),
                    Err(e) => tracing::debug!(error = %e, "skipped an event line"),
                }
            });
        }
        Ok(())
    }

    pub async fn kill_run(&self, id: RunId) -> Result<Run, ApiError> {
        self.post(&format!("/v1/runs/{id}/kill"), &()).await
    }

    pub async fn queue(&self) -> Result<crate::wire::QueueView, ApiError> {
        self.get("/v1/queue").await
    }

    pub async fn queue_entry(&self, id: u64) -> Result<crate::wire::QueueDetail, ApiError> {
        self.get(&format!("/v1/queue/{id}")).await
    }

    /// `verb`: approve, reject or bump.
    pub async fn queue_act(
        &self,
        id: u64,
        verb: &str,
        a: &crate::wire::QueueAction,
    ) -> Result<crate::model::QueueEntry, ApiError> {
        self.post(&format!("/v1/queue/{id}/{verb}"), a).await
    }

    pub async fn queue_pause(
        &self,
        paused: bool,
        a: &crate::wire::QueueAction,
    ) -> Result<crate::wire::QueueView, ApiError> {
        let verb = if paused { "pause" } else { "resume" };
        self.post(&format!("/v1/queue/{verb}"), a).await
    }

    pub async fn audit(&self) -> Result<Vec<crate::model::AuditEvent>, ApiError> {
        self.get("/v1/audit").await
    }

    pub async fn leases(&self) -> Result<Vec<crate::scheduler::leases::Lease>, ApiError> {
        self.get("/v1/leases").await
    }

    pub async fn runs(&self) -> Result<Vec<Run>, ApiError> {
        self.get("/v1/runs").await
    }

    pub async fn run(&self, id: RunId) -> Result<Run, ApiError> {
        self.get(&format!("/v1/runs/{id}")).await
    }

    /// Steps `from..to` of a run, as stored.
    pub async fn steps(&self, run: RunId, from: u64, to: u64) -> Result<Vec<Step>, ApiError> {
        self.get(&format!("/v1/runs/{run}/steps?from={from}&to={to}"))
            .await
    }

    /// One step, whole (payloads inline).
    pub async fn step(&self, run: RunId, seq: u64) -> Result<Step, ApiError> {
        self.get(&format!("/v1/runs/{run}/steps/{seq}")).await
    }

    /// Stream a run's export in `format` into `out`; returns the number of lines (for
    /// JSONL, steps).
    pub async fn export(
        &self,
        run: RunId,
        format: ExportFormat,
        out: &mut dyn Write,
    ) -> Result<u64, ApiError> {
        let path = format!("/v1/runs/{run}/export?format={}", format.name());
        let mut resp = self.send(Method::GET, &path, None).await?;
        if resp.status() != StatusCode::OK {
            return Err(self.failure(resp).await);
        }
        let mut lines = 0u64;
        while let Some(frame) = resp.body_mut().frame().await {
            let frame = frame.map_err(|e| {
                self.transport(format!("the export broke off ({e}); see the factory's log"))
            })?;
            if let Some(data) = frame.data_ref() {
                lines += data.iter().filter(|&&b| b == b'\n').count() as u64;
                out.write_all(data).map_err(|e| {
                    ApiError::Op(OpError::from_error(
                        ErrorKind::Internal,
                        &crate::trace::TraceError::Write(e),
                    ))
                })?;
            }
        }
        Ok(lines)
    }

    pub async fn import_trace(&self, req: &ImportTrace) -> Result<ImportedTrace, ApiError> {
        self.post("/v1/runs/import", req).await
    }

    pub async fn search_steps(&self, q: &StepSearch) -> Result<Vec<StepFound>, ApiError> {
        self.post("/v1/steps/search", q).await
    }

    pub async fn add_memory(&self, m: &MemoryWrite) -> Result<Memory, ApiError> {
        self.post("/v1/memory", m).await
    }

    pub async fn memory(
        &self,
        id: crate::model::MemoryId,
    ) -> Result<crate::wire::MemoryDetail, ApiError> {
        self.get(&format!("/v1/memory/{id}")).await
    }

    pub async fn search_memory(&self, q: &MemorySearch) -> Result<Vec<MemoryHit>, ApiError> {
        self.post("/v1/memory/search", q).await
    }

    /// Import memories from a JSON Lines body, written by `author`.
    pub async fn import_memory(
        &self,
        jsonl: Vec<u8>,
        author: &str,
    ) -> Result<ImportedMemories, ApiError> {
        self.call(
            Method::POST,
            &format!("/v1/memory/import?author={}", encode(author)),
            Some((Bytes::from(jsonl), "application/x-ndjson")),
        )
        .await
    }

    pub async fn sync_session(&self, req: &SyncSession) -> Result<SyncedSession, ApiError> {
        self.post("/v1/sessions/sync", req).await
    }
}

//! Who is calling the factory, and what they may reach.
//!
//! Two kinds of caller exist. A person uses the person's socket (`factory.sock`), whose
//! file mode (0600) already says who may connect, so it needs no token from them. A run's
//! agent presents the bearer token the factory gave that run; it opens MCP (`/mcp`) and the
//! health check, nothing else, and everything it writes is attributed to its run and
//! agent. Sandboxes get the sandboxes' socket (`sandbox.sock`), never the person's: there,
//! and on the optional loopback TCP port, a request without a valid token is refused.
//!
//! Tokens themselves (their form, their key, their life) are `crate::tokens`'. B's factory
//! cannot verify A's token and answers it exactly as it answers garbage, and a valid MAC
//! is not enough: the run must be live in the factory that answers.
//!
//! Every refused call is audited, throttled: the first refusal of a kind (who, and why) in
//! a window is written at once, the rest of that window as one row with their count, so a
//! flood of refused requests cannot grow the store.

use std::collections::HashMap;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::model::{AuditEvent, RunId};
pub use crate::tokens::{TokenError, Tokens};
use crate::workspace::Workspace;

/// Who a request (or an MCP session) acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A person on the socket (the factory's own user), by login name.
    Human { name: String },
    /// A run's agent, proven by the run's token.
    Run { run: RunId, agent: String },
}

/// The name of the person running this process ($USER, else "human"): who a memory,
/// an approval or an API call is recorded as.
pub fn local_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "human".into())
}

impl Caller {
    /// The person running this process: the socket's owner.
    pub fn local_human() -> Caller {
        Caller::Human { name: local_user() }
    }

    /// How the audit log names the caller.
    pub fn actor(&self) -> String {
        match self {
            Caller::Human { name } => format!("human:{name}"),
            Caller::Run { run, agent } => format!("run:{run}:{agent}"),
        }
    }

    pub fn run(&self) -> Option<RunId> {
        match self {
            Caller::Run { run, .. } => Some(*run),
            Caller::Human { .. } => None,
        }
    }
}

/// Which listener a request came in on; the server tags each one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The person's socket, `factory.sock`: no token means the socket's owner.
    Unix,
    /// The sandboxes' socket, `sandbox.sock`: run tokens only.
    Sandbox,
    /// The optional loopback TCP port: run tokens only.
    Tcp,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Unix => "unix socket",
            Transport::Sandbox => "sandbox socket",
            Transport::Tcp => "tcp",
        }
    }
}

/// What the auth layer needs: the workspace (to write the audit log), its tokens, and
/// the refusal throttle. Clones share the throttle.
#[derive(Clone)]
pub struct Gate {
    pub ws: Arc<Workspace>,
    pub tokens: Tokens,
    refusals: Arc<Mutex<RefusalLog>>,
}

/// A refusal, as the caller sees it: one message for every bad token, so a token from
/// another workspace is told exactly what garbage is told.
const BAD_TOKEN: &str = "invalid or missing token: present the SHOPFLOOR_TOKEN your run was given as `Authorization: Bearer <token>`";

/// How long one kind of refusal is summed into one audit row after its first is written.
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(10);
/// Kinds of refusal tracked at once; past this, the oldest windows are closed early, so
/// the table itself is bounded whatever callers make up.
const REFUSAL_KINDS: usize = 256;

/// Refusals seen, by kind (actor and reason), and not written yet.
#[derive(Default)]
struct RefusalLog {
    open: HashMap<(String, String), Window>,
}

struct Window {
    opened: Instant,
    /// Refusals since the first one, which was written when the window opened.
    more: u64,
    /// The last request refused, for the summary row.
    last_what: String,
}

impl RefusalLog {
    /// Note a refusal; returns the audit rows to write now: the first of its kind in a
    /// window, plus summaries of windows that have closed.
    fn note(&mut self, actor: &str, what: &str, why: &str, now: Instant) -> Vec<AuditEvent> {
        let mut rows = self.close_expired(now);
        let key = (actor.to_string(), why.to_string());
        if let Some(w) = self.open.get_mut(&key) {
            w.more += 1;
            w.last_what = what.to_string();
            return rows;
        }
        if self.open.len() >= REFUSAL_KINDS
            && let Some(oldest) = self
                .open
                .iter()
                .min_by_key(|(_, w)| w.opened)
                .map(|(k, _)| k.clone())
            && let Some(w) = self.open.remove(&oldest)
        {
            rows.extend(summary(&oldest, w));
        }
        self.open.insert(
            key,
            Window {
                opened: now,
                more: 0,
                last_what: what.to_string(),
            },
        );
        rows.push(refusal_row(actor, &format!("{what}: {why}")));
        rows
    }

    /// Summaries of the windows older than [`REFUSAL_WINDOW`], which close.
    fn close_expired(&mut self, now: Instant) -> Vec<AuditEvent> {
        let expired: Vec<(String, String)> = self
            .open
            .iter()
            .filter(|(_, w)| now.duration_since(w.opened) >= REFUSAL_WINDOW)
            .map(|(k, _)| k.clone())
            .collect();
        let mut rows = Vec::new();
        for k in expired {
            if let Some(w) = self.open.remove(&k) {
                rows.extend(summary(&k, w));
            }
        }
        rows
    }

    /// Every open window's summary: at shutdown, nothing counted is lost.
    fn close_all(&mut self) -> Vec<AuditEvent> {
        self.open
            .drain()
            .filter_map(|(k, w)| summary(&k, w))
            .collect()
    }
}

fn refusal_row(actor: &str, detail: &str) -> AuditEvent {
    AuditEvent {
        ts: jiff::Timestamp::now(),
        actor: actor.to_string(),
        action: "api.refused".into(),
        detail: detail.to_string(),
    }
}

/// One row for the refusals of a window after its first; none when there were none.
fn summary((actor, why): &(String, String), w: Window) -> Option<AuditEvent> {
    (w.more > 0).then(|| {
        refusal_row(
            actor,
            &format!(
                "{} more refused in {} s, the last {}: {why}",
                w.more,
                REFUSAL_WINDOW.as_secs(),
                w.last_what
            ),
        )
    })
}

impl Gate {
    pub fn new(ws: Arc<Workspace>, tokens: Tokens) -> Gate {
        Gate {
            ws,
            tokens,
            refusals: Arc::default(),
        }
    }

    /// Who presents `token`, if anyone valid: a live run of this workspace.
    pub fn caller_for_token(&self, token: &str) -> Option<Caller> {
        let (run, agent) = self.tokens.verify(token)?;
        Some(Caller::Run { run, agent })
    }

    /// Record a refused call in the audit log, throttled (see the module's doc). Blocks
    /// on the store when a row is due: call it off the async threads. A failure to record
    /// is logged, not returned: the caller is refused either way.
    pub fn audit_refusal(&self, actor: &str, what: &str, why: &str) {
        tracing::warn!(actor, what, why, "refused an API call");
        let rows = self
            .refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .note(actor, what, why, Instant::now());
        self.write_rows(rows);
    }

    /// Write the summaries of refusal windows that have closed (call now and then), or of
    /// every window with `all` (at shutdown).
    pub fn flush_refusals(&self, all: bool) {
        let rows = {
            let mut log = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
            if all {
                log.close_all()
            } else {
                log.close_expired(Instant::now())
            }
        };
        self.write_rows(rows);
    }

    fn write_rows(&self, rows: Vec<AuditEvent>) {
        for row in rows {
            if let Err(e) = self.ws.store.append_audit(row) {
                tracing::error!(error = %e, "could not write a refused call to the audit log");
            }
        }
    }

    /// [`Gate::audit_refusal`] on a blocking thread, for the async auth layer.
    async fn audit_refusal_async(&self, actor: &str, what: &str, why: &str) {
        let (g, actor, what, why) = (
            self.clone(),
            actor.to_string(),
            what.to_string(),
            why.to_string(),
        );
        let _ = tokio::task::spawn_blocking(move || g.audit_refusal(&actor, &what, &why)).await;
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Paths a run's token opens.
fn open_to_runs(path: &str) -> bool {
    path == "/mcp" || path.starts_with("/mcp/") || path == "/v1/health"
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({
        "error": message,
        "kind": if status == StatusCode::FORBIDDEN { "forbidden" } else { "unauthorized" },
        "causes": [],
    });
    let mut resp = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"shopfloor\""),
        );
    }
    resp
}

/// The auth layer: decide the caller, refuse (and audit) what it may not do, and hand the
/// caller to the handlers as a request extension.
pub async fn authorize(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    let transport = req.extensions().get::<Transport>().copied();
    let what = format!("{} {}", req.method(), req.uri().path());
    let caller = match (bearer(req.headers()), transport) {
        (Some(token), Some(t)) => match gate.caller_for_token(token) {
            Some(c) => c,
            None => {
                gate.audit_refusal_async("unknown", &what, &format!("bad token on {}", t.name()))
                    .await;
                return refuse(StatusCode::UNAUTHORIZED, BAD_TOKEN);
            }
        },
        (None, Some(Transport::Unix)) => Caller::local_human(),
        (None, Some(t)) => {
            gate.audit_refusal_async("unknown", &what, &format!("no token on {}", t.name()))
                .await;
            return refuse(StatusCode::UNAUTHORIZED, BAD_TOKEN);
        }
        // A listener that did not say what it is: fail closed.
        (_, None) => {
            gate.audit_refusal_async("unknown", &what, "request from an untagged listener")
                .await;
            return refuse(StatusCode::UNAUTHORIZED, BAD_TOKEN);
        }
    };
    if let Caller::Run { .. } = &caller
        && !open_to_runs(req.uri().path())
    {
        let actor = caller.actor();
        gate.audit_refusal_async(&actor, &what, "a run's token opens only /mcp")
            .await;
        return refuse(
            StatusCode::FORBIDDEN,
            "a run's token opens only MCP at /mcp; the control API is for people on the socket",
        );
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_summed_per_kind_and_window() {
        let mut log = RefusalLog::default();
        let t0 = Instant::now();
        let first = log.note("unknown", "POST /mcp", "no token on tcp", t0);
        assert_eq!(first.len(), 1, "the first of a kind is written at once");
        for i in 0..4999 {
            let rows = log.note(
                "unknown",
                "POST /mcp",
                "no token on tcp",
                t0 + Duration::from_micros(i),
            );
            assert!(
                rows.is_empty(),
                "the rest of the window is counted, not written"
            );
        }
        // Another kind opens its own window.
        assert_eq!(
            log.note("run:3:x", "GET /v1/tickets", "only mcp", t0).len(),
            1
        );
        // After the window: the summary, then the new first.
        let later = log.note("unknown", "GET /", "no token on tcp", t0 + REFUSAL_WINDOW);
        assert_eq!(later.len(), 2, "{later:?}");
        assert!(
            later[0].detail.starts_with("4999 more refused"),
            "{:?}",
            later[0]
        );
        assert!(log.close_all().is_empty(), "nothing more was refused");
        // The table stays bounded whatever kinds callers make up.
        for i in 0..10_000 {
            log.note(&format!("actor{i}"), "x", "y", t0);
        }
        assert!(log.open.len() <= REFUSAL_KINDS);
    }
}

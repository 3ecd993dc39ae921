//! `[telemetry]`: finished runs exported as OpenTelemetry spans (see `trace::otel` for the
//! span tree) to an OTLP/HTTP receiver, live, while the factory runs.
//!
//! How it is sent: the request is built from the official OTLP message types
//! (`opentelemetry-proto`), encoded with prost and posted as `application/x-protobuf` with
//! the hyper HTTP/1.1 client the API client already uses. Not the SDK's `opentelemetry-otlp`
//! exporter: its span processor wants live spans made through the tracing API, while ours
//! are rebuilt from a stored run with ids and times of their own; and its HTTP client is
//! reqwest, a second HTTP stack in a binary that must stay under its 50 MB budget. For the
//! same reason TLS is not built in: `https://` endpoints are refused with what to do (an
//! OpenTelemetry Collector on loopback forwards wherever TLS is needed).
//!
//! The exporter never holds the factory up: it reads the factory's event stream, only
//! queues the ids of runs that ended, and a task of its own reads each run's spans on a
//! blocking thread and posts them, retrying a refused or failed post a few times with
//! backoff, then logging what it dropped. An event stream that fell behind is made good by
//! rescanning the store for runs that ended since the exporter started.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use jiff::Timestamp;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

pub use crate::config::telemetry::TelemetryConfig;
use crate::model::RunId;
use crate::trace::otel::{Service, SpanOptions};
use crate::wire::FactoryEvent;
use crate::workspace::Workspace;

/// Headers the exporter sets itself: a configured one would contradict the request.
const OWN_HEADERS: [&str; 4] = [
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
];

impl TelemetryConfig {
    /// Check every value; an error names its key (`endpoint`, `headers`, `service_name`)
    /// and says what to write instead.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(e) = &self.endpoint {
            Endpoint::parse(e).map_err(|m| ("endpoint", m))?;
        }
        self.header_map().map_err(|m| ("headers", m))?;
        if self.service_name.trim().is_empty() {
            return Err((
                "service_name",
                "[telemetry] service_name is empty; name the service (e.g. \"shopfloor\") or leave it out".into(),
            ));
        }
        Ok(())
    }

    /// The configured headers, checked.
    pub fn header_map(&self) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
        self.headers
            .iter()
            .map(|(k, v)| {
                let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                    format!("[telemetry] headers: `{k}` is not an HTTP header name (letters, digits and -)")
                })?;
                if OWN_HEADERS.contains(&name.as_str()) {
                    return Err(format!(
                        "[telemetry] headers: `{k}` is set by the exporter itself; leave it out"
                    ));
                }
                let value = HeaderValue::from_str(v).map_err(|_| {
                    format!("[telemetry] headers: the value of `{k}` holds a line break or control character; HTTP header values are one line of text")
                })?;
                Ok((name, value))
            })
            .collect()
    }
}

/// Where spans are posted: a parsed `[telemetry] endpoint`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address to dial (an IPv6 address without its brackets).
    pub host: String,
    pub port: u16,
    /// `host[:port]` as written, for the Host header.
    pub authority: String,
    /// The path requests go to, ending in `/v1/traces`.
    pub path: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let bad = |why: &str| {
            format!(
                "[telemetry] endpoint = \"{url}\" {why}; write an OTLP/HTTP receiver's address like \"http://127.0.0.1:4318\""
            )
        };
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("holds spaces or control characters"));
        }
        if url.starts_with("https://") {
            return Err(format!(
                "[telemetry] endpoint = \"{url}\": shopfloor sends OTLP over plain HTTP only (TLS is not built in); run an OpenTelemetry Collector on this machine, point endpoint at it (\"http://127.0.0.1:4318\") and let it forward over TLS"
            ));
        }
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(bad("is not an http:// URL"));
        };
        if rest.contains(['?', '#']) {
            return Err(bad("has a query or fragment"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(bad(
                "carries credentials; put them in [telemetry] headers (e.g. authorization)",
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some((host, after)) = v6.split_once(']') else {
                return Err(bad("has an unclosed [ in its address"));
            };
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("has text after its ]"))?,
                ),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("names no host"));
        }
        let port = match port {
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad(&format!("has port `{p}`, not a number from 1 to 65535")))?,
        };
        let base = path.trim_end_matches('/');
        let path = if base.ends_with("/v1/traces") {
            base.to_string()
        } else {
            format!("{base}/v1/traces")
        };
        Ok(Endpoint {
            host: host.to_string(),
            port,
            authority: authority.to_string(),
            path,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}{}", self.authority, self.path)
    }
}

/// The span options and service of a workspace's exports (live and `trace export`).
pub fn span_options(ws: &Workspace) -> (SpanOptions, Service) {
    let t = &ws.config.telemetry;
    (
        SpanOptions {
            content: t.content,
            workspace: ws.info.name.clone(),
            id_key: format!("{}@{}", ws.info.name, ws.info.created),
        },
        Service {
            name: t.service_name.clone(),
            workspace: ws.info.name.clone(),
        },
    )
}

/// How long one post may take, connecting included.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// Tries of one request before its spans are dropped, and the wait before the second.
const TRIES: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// A receiver's answer is read up to this much (an error message, a partial success).
const MAX_ANSWER_BYTES: usize = 64 << 10;

/// Why a post failed, and whether trying again may help.
#[derive(Debug)]
struct PostError {
    message: String,
    retry: bool,
}

/// Post one encoded `ExportTraceServiceRequest`. Returns the spans the receiver said it
/// rejected (a partial success), if any.
async fn post(
    ep: &Endpoint,
    headers: &[(HeaderName, HeaderValue)],
    body: Bytes,
) -> Result<Option<(i64, String)>, PostError> {
    let transient = |what: &str, e: &dyn std::fmt::Display| PostError {
        message: format!("{what} {}: {e}", ep.url()),
        retry: true,
    };
    let stream = tokio::net::TcpStream::connect((ep.host.as_str(), ep.port))
        .await
        .map_err(|e| transient("cannot connect to", &e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| transient("no HTTP from", &e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "OTLP connection ended with an error");
        }
    });
    let mut req = Request::post(ep.path.as_str())
        .header(header::HOST, ep.authority.as_str())
        .header(header::CONTENT_TYPE, "application/x-protobuf");
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let req = req.body(Full::new(body)).map_err(|e| PostError {
        message: format!("cannot make the request to {}: {e}", ep.url()),
        retry: false,
    })?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| transient("the request broke off at", &e))?;
    let status = resp.status();
    let answer = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if status.is_success() {
        let rejected = ExportTraceServiceResponse::decode(answer)
            .ok()
            .and_then(|r| r.partial_success)
            .filter(|p| p.rejected_spans > 0)
            .map(|p| (p.rejected_spans, p.error_message));
        return Ok(rejected);
    }
    // OTLP/HTTP: these say "later"; any other refusal will not change on a retry.
    let retry = matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
    );
    let text = String::from_utf8_lossy(&answer);
    let text = crate::safe_text::clip_bytes(text.trim(), 300);
    Err(PostError {
        message: format!("{} answered {status}: {text}", ep.url()),
        retry,
    })
}

/// What the sender is asked to do.
enum Job {
    /// Export this run, which has ended.
    Run(RunId),
    /// Events were missed: export every run that ended since the exporter started and has
    /// not been exported.
    Rescan,
}

/// The live exporter, while the factory runs.
pub struct Exporter {
    stop: watch::Sender<bool>,
    forwarder: JoinHandle<()>,
    sender: JoinHandle<()>,
}

/// Start exporting the runs that end from now on, when `[telemetry] endpoint` is set:
/// `events` is the factory's event stream. None when there is no endpoint (or, though
/// config validation catches it first, a bad one, which is logged).
pub fn start(ws: Arc<Workspace>, events: broadcast::Receiver<FactoryEvent>) -> Option<Exporter> {
    let t = &ws.config.telemetry;
    let url = t.endpoint.as_deref()?;
    let (ep, headers) = match Endpoint::parse(url).and_then(|ep| Ok((ep, t.header_map()?))) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!("telemetry export is off: {e}");
            return None;
        }
    };
    tracing::info!(endpoint = %ep.url(), content = t.content, "exporting finished runs as OpenTelemetry spans");
    let (stop, stop_rx) = watch::channel(false);
    // Unbounded, so forwarding never waits on a slow receiver; it holds run ids only.
    let (jobs, jobs_rx) = mpsc::unbounded_channel();
    let forwarder = tokio::spawn(forward(events, jobs, stop_rx));
    let sender = tokio::spawn(send(ws, ep, headers, jobs_rx, Timestamp::now()));
    Some(Exporter {
        stop,
        forwarder,
        sender,
    })
}

impl Exporter {
    /// Stop taking events, and give the runs already queued (those the factory's own
    /// shutdown ended included) up to `grace` to be sent.
    pub async fn finish(self, grace: Duration) {
        let _ = self.stop.send(true);
        let _ = self.forwarder.await;
        let abort = self.sender.abort_handle();
        if tokio::time::timeout(grace, self.sender).await.is_err() {
            abort.abort();
            tracing::warn!(
                "telemetry: stopped before every finished run was exported; `shopfloor trace export RUN --format otlp` writes one to a file"
            );
        }
    }
}

/// The sender's job an event makes, if any: a run's end, or a rescan after missed events.
fn job_of(ev: Result<FactoryEvent, broadcast::error::RecvError>) -> Option<Job> {
    match ev {
        Ok(FactoryEvent::RunState { run, state, .. }) if !state.is_live() => Some(Job::Run(run)),
        Ok(_) | Err(broadcast::error::RecvError::Closed) => None,
        Err(broadcast::error::RecvError::Lagged(n)) => {
            tracing::warn!(
                missed = n,
                "telemetry: fell behind the factory's events; rescanning the runs"
            );
            Some(Job::Rescan)
        }
    }
}

/// Pass the ids of runs that ended from the event stream to the sender; nothing else.
async fn forward(
    mut events: broadcast::Receiver<FactoryEvent>,
    jobs: mpsc::UnboundedSender<Job>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let ev = tokio::select! {
            ev = events.recv() => ev,
            _ = stop.wait_for(|s| *s) => break,
        };
        if matches!(ev, Err(broadcast::error::RecvError::Closed)) {
            return;
        }
        if let Some(job) = job_of(ev) {
            let _ = jobs.send(job);
        }
    }
    // Stopping: what the factory said while it stopped is still in the channel.
    loop {
        let ev = match events.try_recv() {
            Ok(ev) => Ok(ev),
            Err(broadcast::error::TryRecvError::Lagged(n)) => {
                Err(broadcast::error::RecvError::Lagged(n))
            }
            Err(_) => return,
        };
        if let Some(job) = job_of(ev) {
            let _ = jobs.send(job);
        }
    }
}

/// Export each queued run, one at a time, until the queue closes; a rescan looks at the
/// runs that ended `since` (when the exporter started).
async fn send(
    ws: Arc<Workspace>,
    ep: Endpoint,
    headers: Vec<(HeaderName, HeaderValue)>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    since: Timestamp,
) {
    // Runs exported (or given up on) since the start: a rescan skips them. Eight bytes a
    // run for the life of the factory.
    let mut done: HashSet<RunId> = HashSet::new();
    while let Some(job) = jobs.recv().await {
        let runs = match job {
            Job::Run(id) => vec![id],
            Job::Rescan => {
                let ws = ws.clone();
                let ended = tokio::task::spawn_blocking(move || ws.store.runs()).await;
                match ended {
                    Ok(Ok(runs)) => runs
                        .into_iter()
                        .filter(|r| !r.state.is_live() && r.ended.is_some_and(|e| e >= since))
                        .map(|r| r.id)
                        .collect(),
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "telemetry: cannot list the runs to rescan");
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "telemetry: the rescan failed");
                        continue;
                    }
                }
            }
        };
        for id in runs {
            if done.insert(id) {
                export_run(&ws, &ep, &headers, id).await;
            }
        }
    }
}

/// Read one run's spans and post them; failures are logged, never raised.
async fn export_run(
    ws: &Arc<Workspace>,
    ep: &Endpoint,
    headers: &[(HeaderName, HeaderValue)],
    run: RunId,
) {
    let started = std::time::Instant::now();
    let w = ws.clone();
    let read = tokio::task::spawn_blocking(move || {
        let (opts, service) = span_options(&w);
        let spans = crate::trace::otel::read_run_spans(&w.store, run, &opts)?;
        let n = spans.len();
        let bodies: Vec<Bytes> = crate::trace::otel::export_requests(spans, &service)
            .into_iter()
            .map(|r| Bytes::from(r.encode_to_vec()))
            .collect();
        Ok::<_, crate::trace::TraceError>((n, bodies))
    })
    .await;
    let (spans, bodies) = match read {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            tracing::error!(run, error = %e, "telemetry: cannot read the run's spans; not exported");
            return;
        }
        Err(e) => {
            tracing::error!(run, error = %e, "telemetry: reading the run's spans failed");
            return;
        }
    };
    for (i, body) in bodies.into_iter().enumerate() {
        let mut wait = FIRST_BACKOFF;
        for attempt in 1..=TRIES {
            match tokio::time::timeout(POST_TIMEOUT, post(ep, headers, body.clone())).await {
                Ok(Ok(rejected)) => {
                    if let Some((n, why)) = rejected {
                        tracing::warn!(
                            run,
                            rejected = n,
                            "telemetry: the receiver rejected some spans: {why}"
                        );
                    }
                    break;
                }
                Ok(Err(e)) if e.retry && attempt < TRIES => {
                    tracing::warn!(
                        run,
                        attempt,
                        "telemetry: {}; trying again in {wait:?}",
                        e.message
                    );
                }
                Ok(Err(e)) => {
                    tracing::error!(
                        run,
                        attempt,
                        "telemetry: {}; run {run}'s spans (request {}) are dropped: check [telemetry] endpoint, or write them to a file with `shopfloor trace export {run} --format otlp`",
                        e.message,
                        i + 1
                    );
                    return;
                }
                Err(_) if attempt < TRIES => {
                    tracing::warn!(
                        run,
                        attempt,
                        "telemetry: {} did not answer in {POST_TIMEOUT:?}; trying again in {wait:?}",
                        ep.url()
                    );
                }
                Err(_) => {
                    tracing::error!(
                        run,
                        "telemetry: {} did not answer after {TRIES} tries; run {run}'s spans are dropped (`shopfloor trace export {run} --format otlp` writes them to a file)",
                        ep.url()
                    );
                    return;
                }
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    tracing::info!(run, spans, elapsed = ?started.elapsed(), endpoint = %ep.url(), "telemetry: run exported");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_or_say_what_to_write() {
        let ep = Endpoint::parse("http://127.0.0.1:4318").unwrap();
        assert_eq!(
            (ep.host.as_str(), ep.port, ep.path.as_str()),
            ("127.0.0.1", 4318, "/v1/traces")
        );
        let ep = Endpoint::parse("http://collector/otlp/").unwrap();
        assert_eq!((ep.port, ep.path.as_str()), (80, "/otlp/v1/traces"));
        let ep = Endpoint::parse("http://[::1]:4318/v1/traces").unwrap();
        assert_eq!(
            (ep.host.as_str(), ep.authority.as_str(), ep.path.as_str()),
            ("::1", "[::1]:4318", "/v1/traces")
        );
        for (bad, says) in [
            ("127.0.0.1:4318", "not an http:// URL"),
            ("https://otel.example.com", "TLS is not built in"),
            ("http://:4318", "names no host"),
            ("http://h:99999", "not a number from 1 to 65535"),
            ("http://h:x", "not a number"),
            ("http://u:p@h", "carries credentials"),
            ("http://h/v1?x=1", "query"),
            ("http://h /x", "spaces"),
        ] {
            let e = Endpoint::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(e.contains("[telemetry] endpoint"), "{e}");
        }
    }

    #[test]
    fn headers_are_checked() {
        let mut t = TelemetryConfig::default();
        t.headers.insert("authorization".into(), "Bearer x".into());
        assert!(t.validate().is_ok());
        t.headers.insert("content-type".into(), "text/plain".into());
        assert_eq!(t.validate().unwrap_err().0, "headers");
        let mut t = TelemetryConfig::default();
        t.headers.insert("x-a".into(), "a\r\nInjected: 1".into());
        assert!(t.validate().unwrap_err().1.contains("line break"));
        let mut t = TelemetryConfig::default();
        t.headers.insert("bad name".into(), "v".into());
        assert!(
            t.validate()
                .unwrap_err()
                .1
                .contains("not an HTTP header name")
        );
    }

    #[test]
    fn parses_from_toml_and_refuses_unknown_keys() {
        let t: TelemetryConfig =
            toml::from_str("endpoint = \"http://127.0.0.1:4318\"\ncontent = true\n").unwrap();
        assert!(t.content);
        assert_eq!(t.service_name, "shopfloor");
        assert!(toml::from_str::<TelemetryConfig>("endpiont = \"x\"").is_err());
    }
}

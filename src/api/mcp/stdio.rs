//! `shopfloor mcp`: an MCP server on stdin/stdout for clients that spawn one (Claude Code,
//! Codex, Cursor, Gemini CLI, and the fixture agent).
//!
//! Each tool call goes where the workspace is: to the running factory over its Unix
//! socket (as MCP, to `/mcp`, with the run's token if there is one), or, when no factory
//! runs, to the store opened right here. While it holds the store, this process also
//! serves the person's socket (the control API and MCP, no factory behind it), so a hook,
//! a CLI command or another MCP session goes through it instead of waiting for the store:
//! a hook firing after every tool call once made each MCP call wait out the hold. The
//! store is let go after a minute idle, or at once when `shopfloor serve` asks
//! (`POST /v1/release`), so an editor session never keeps a factory from starting; once
//! a factory answers, calls go to it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::ErrorData as McpError;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RequestContext, RoleClient, RoleServer, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, UnixSocketHttpClient};
use tokio::sync::Mutex;

use super::service::{self, ToolCalls, ToolServer};
use super::tools;
use crate::api::auth::{Caller, Tokens};
use crate::api::backend::is_locked;
use crate::api::server::AppState;
use crate::workspace::{Workspace, WorkspaceInfo};

/// How long the store stays open with no call before it is let go. Long enough that a
/// session's calls and hooks rarely reopen it; a factory that starts asks for it anyway.
const IDLE_RELEASE: Duration = Duration::from_secs(60);
/// How long a call waits for a store another process holds (another `shopfloor mcp`,
/// a CLI command) before it says so.
const LOCK_WAIT: Duration = Duration::from_secs(15);

/// Where the tools are served from.
#[derive(Clone, Debug)]
pub enum Target {
    /// Only a factory, on this socket (inside a sandbox, where no workspace is known).
    Socket(PathBuf),
    /// A workspace: its factory if one runs, else its store.
    Workspace(WorkspaceInfo),
}

impl Target {
    fn socket(&self) -> PathBuf {
        match self {
            Target::Socket(p) => p.clone(),
            Target::Workspace(info) => info.socket_path(),
        }
    }
}

type Forward = RunningService<RoleClient, ()>;

/// Why calls cannot go to a factory.
enum Unavailable {
    /// None runs: serve the store here.
    Absent(String),
    /// One runs and said no (a bad token): say so, never fall back to the store.
    Refused(String),
}

impl Unavailable {
    fn message(self) -> String {
        match self {
            Unavailable::Absent(m) | Unavailable::Refused(m) => m,
        }
    }
}

struct Direct {
    state: AppState,
    caller: Caller,
    last_used: Instant,
    /// The person's socket, served from here while the store is held.
    socket: Option<SocketServer>,
    /// Notified by `POST /v1/release`.
    release: Arc<tokio::sync::Notify>,
}

/// The control API served on the workspace's socket by this process.
struct SocketServer {
    stop: tokio::sync::watch::Sender<bool>,
    served: tokio::task::JoinHandle<()>,
}

impl Direct {
    /// Stop serving the socket (requests in flight finish), then let the store go.
    async fn close(self) {
        if let Some(s) = self.socket {
            let _ = s.stop.send(true);
            let _ = s.served.await;
        }
    }
}

/// The stdio server's handler.
pub struct StdioServer {
    target: Target,
    token: Option<String>,
    forward: Mutex<Option<Arc<Forward>>>,
    direct: Arc<Mutex<Option<Direct>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the MCP session on stdin/stdout failed: {0}")]
    Serve(String),
}

fn failed(message: String) -> McpError {
    McpError::internal_error(message, None)
}

impl StdioServer {
    pub fn new(target: Target, token: Option<String>) -> StdioServer {
        StdioServer {
            target,
            token: token
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty()),
            forward: Mutex::new(None),
            direct: Arc::new(Mutex::new(None)),
        }
    }

    /// A client session with the factory, made on first use and kept.
    async fn factory(&self) -> Result<Arc<Forward>, Unavailable> {
        let mut slot = self.forward.lock().await;
        if let Some(f) = slot.as_ref()
            && !f.is_closed()
        {
            return Ok(f.clone());
        }
        let socket = self.target.socket();
        // A cheap probe first: no socket, no factory.
        tokio::net::UnixStream::connect(&socket)
            .await
            .map_err(|e| {
                Unavailable::Absent(format!("no factory answers on {}: {e}", socket.display()))
            })?;
        let uri = "http://localhost/mcp";
        let client = UnixSocketHttpClient::new(&socket.to_string_lossy(), uri);
        let mut config = StreamableHttpClientTransportConfig::with_uri(uri);
        if let Some(t) = &self.token {
            config = config.auth_header(t.clone());
        }
        let transport = StreamableHttpClientTransport::with_client(client, config);
        let running = ().serve(transport).await.map_err(|e| {
            let hint = if self.token.is_some() {
                " (is the token one the factory gave a run of this workspace?)"
            } else {
                ""
            };
            Unavailable::Refused(format!(
                "the factory on {} refused the MCP session: {e}{hint}",
                socket.display()
            ))
        })?;
        let running = Arc::new(running);
        *slot = Some(running.clone());
        Ok(running)
    }

    /// Run a call on the store, opening it if needed.
    async fn call_direct(
        &self,
        info: &WorkspaceInfo,
        request: CallToolRequestParams,
    ) -> Result<CallToolResult, McpError> {
        let (state, caller) = {
            let mut slot = self.direct.lock().await;
            if slot.is_none() {
                let direct = open_direct(info.clone(), self.token.clone()).await?;
                self.spawn_idle_release(direct.release.clone());
                *slot = Some(direct);
            }
            let d = slot.as_mut().expect("just opened");
            d.last_used = Instant::now();
            (d.state.clone(), d.caller.clone())
        };
        let out = service::call(state, caller, request).await;
        if let Some(d) = self.direct.lock().await.as_mut() {
            d.last_used = Instant::now();
        }
        out
    }

    fn spawn_idle_release(&self, release: Arc<tokio::sync::Notify>) {
        let direct = Arc::downgrade(&self.direct);
        tokio::spawn(async move {
            loop {
                let asked = tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => false,
                    _ = release.notified() => true,
                };
                let Some(direct) = direct.upgrade() else {
                    return;
                };
                let mut slot = direct.lock().await;
                let idle = match slot.as_ref() {
                    None => return,
                    Some(d) => d.last_used.elapsed() >= IDLE_RELEASE,
                };
                if asked || idle {
                    tracing::debug!(asked, "letting the workspace go");
                    // Only this handle, the socket's server and calls in flight hold the
                    // workspace: once the server stops, dropping ours closes the store.
                    if let Some(d) = slot.take() {
                        d.close().await;
                    }
                    return;
                }
            }
        });
    }
}

/// Open the workspace here, waiting a while for another process to let it go; a factory
/// that starts meanwhile is the caller's to use instead.
async fn open_direct(info: WorkspaceInfo, token: Option<String>) -> Result<Direct, McpError> {
    let started = Instant::now();
    loop {
        let i = info.clone();
        let opened = tokio::task::spawn_blocking(move || Workspace::open(i))
            .await
            .map_err(|e| failed(format!("opening the workspace failed: {e}")))?;
        match opened {
            Ok(ws) => {
                let state = AppState::new(Arc::new(ws));
                let caller = match &token {
                    None => Caller::local_human(),
                    Some(t) => {
                        let tokens = Tokens::open(&info).map_err(|e| failed(e.to_string()))?;
                        // No factory runs, so no run is live: every token is refused.
                        let gate = crate::api::auth::Gate::new(state.ws.clone(), tokens);
                        match gate.caller_for_token(t) {
                            Some(c) => c,
                            None => {
                                gate.audit_refusal("unknown", "mcp over stdio", "bad token");
                                return Err(McpError::invalid_request(
                                    "invalid token: SHOPFLOOR_TOKEN was not issued for a run of this workspace",
                                    None,
                                ));
                            }
                        }
                    }
                };
                let release = Arc::new(tokio::sync::Notify::new());
                let socket = serve_socket(state.clone().releasing_on(release.clone())).await;
                return Ok(Direct {
                    state,
                    caller,
                    last_used: Instant::now(),
                    socket,
                    release,
                });
            }
            Err(e) if is_locked(&e) && started.elapsed() < LOCK_WAIT => {
                if tokio::net::UnixStream::connect(info.socket_path())
                    .await
                    .is_ok()
                {
                    return Err(failed(
                        "a factory started while this call waited; call again".into(),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                return Err(failed(format!(
                    "cannot open workspace `{}`: {e}",
                    info.name
                )));
            }
        }
    }
}

/// Serve the person's socket for the workspace this process holds. Nobody else can be
/// serving it (the store's lock is ours), so a failure is only logged: calls here work
/// without it, and others wait for the store as before.
async fn serve_socket(state: AppState) -> Option<SocketServer> {
    let listener = match crate::api::listen::bind(&state.ws.info).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot serve the workspace's socket while holding its store");
            return None;
        }
    };
    let router = match crate::api::server::api(state) {
        Ok(api) => api.person,
        Err(e) => {
            tracing::warn!(error = %e, "cannot build the API for the workspace's socket");
            return None;
        }
    };
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let served = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = crate::api::listen::serve_on(
            listener,
            router,
            crate::api::auth::Transport::Unix,
            shutdown,
        )
        .await
        {
            tracing::warn!(error = %e, "the workspace's socket stopped");
        }
    });
    Some(SocketServer { stop, served })
}

impl ToolCalls for StdioServer {
    async fn call(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        // Refuse bad arguments here, before any connection is made.
        if let Err(invalid) = tools::parse(&request.name, request.arguments.clone()) {
            return invalid.into_result();
        }
        let result = match &self.target {
            Target::Socket(_) => {
                let f = self.factory().await.map_err(|u| failed(u.message()))?;
                forward(&f, request).await?
            }
            Target::Workspace(info) => {
                // A store this process holds means no factory can be running.
                let holding = self.direct.lock().await.is_some();
                let factory = if holding {
                    None
                } else {
                    match self.factory().await {
                        Ok(f) => Some(f),
                        Err(Unavailable::Absent(_)) => None,
                        Err(Unavailable::Refused(m)) => return Err(failed(m)),
                    }
                };
                match factory {
                    Some(f) => forward(&f, request).await?,
                    None => self.call_direct(info, request).await?,
                }
            }
        };
        Ok(result)
    }
}

async fn forward(
    factory: &Forward,
    request: CallToolRequestParams,
) -> Result<CallToolResult, McpError> {
    factory.call_tool(request).await.map_err(|e| match e {
        rmcp::ServiceError::McpError(e) => e,
        other => failed(format!("the factory did not answer the call: {other}")),
    })
}

/// Serve MCP on stdin/stdout until the client closes it.
pub fn serve(target: Target, token: Option<String>) -> Result<(), StdioError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(StdioError::Runtime)?;
    rt.block_on(async move {
        let server = ToolServer(StdioServer::new(target, token));
        let running = server
            .serve(rmcp::transport::io::stdio())
            .await
            .map_err(|e| StdioError::Serve(e.to_string()))?;
        running
            .waiting()
            .await
            .map_err(|e| StdioError::Serve(e.to_string()))?;
        Ok(())
    })
}

//! The MCP server proper: `tools/list` and `tools/call` over a workspace (and its factory
//! when one runs). The factory serves it at `/mcp` (streamable HTTP, stateless: every
//! request stands alone, so hundreds of sessions cost nothing between calls), and
//! `shopfloor mcp` serves it over stdio when no factory runs.

use std::sync::Arc;

use rmcp::ErrorData as McpError;
use rmcp::handler::server::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use super::{exec, tools};
use crate::api::auth::Caller;
use crate::api::server::AppState;

/// What the server tells a client about itself at `initialize`.
pub const INSTRUCTIONS: &str = "shopfloor's shared memory and traces for this repository. \
Before changing code, memory_search for decisions, lessons and conventions about it, and wip \
to see what other agents are changing; lease paths before editing shared ones and release them \
when done. When you learn something the next agent should know, memory_write it. trace_search \
finds what past runs did; trace_step shows one step whole.";

pub fn server_info() -> ServerConfig {
    ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
        .with_server_info(
            Implementation::new("shopfloor", env!("CARGO_PKG_VERSION")).with_title("shopfloor"),
        )
        .with_instructions(INSTRUCTIONS)
}

/// Serves the tools on a workspace over HTTP: the caller comes with each request (the
/// auth layer puts it there). The stdio server forwards to it.
#[derive(Clone)]
pub struct McpService {
    state: AppState,
}

impl McpService {
    pub fn new(state: AppState) -> McpService {
        McpService { state }
    }

    fn caller(&self, ctx: &RequestContext<RoleServer>) -> Result<Caller, McpError> {
        ctx.extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<Caller>().cloned())
            .ok_or_else(|| {
                // The auth layer always sets it; reaching here means a route bypassed it.
                McpError::invalid_request("this request carries no caller; refused", None)
            })
    }
}

/// Check and run one call for `caller` on a blocking thread; a tool's own failure and
/// bad arguments are error results the model reads, an unknown tool an MCP error.
pub async fn call(
    state: AppState,
    caller: Caller,
    request: CallToolRequestParams,
) -> Result<CallToolResult, McpError> {
    tracing::debug!(
        tool = %request.name,
        arguments = %logged_arguments(&state, request.arguments.as_ref()),
        "mcp tool call"
    );
    let call = match tools::parse(&request.name, request.arguments) {
        Ok(call) => call,
        Err(invalid) => return invalid.into_result(),
    };
    let name = request.name.to_string();
    let done = tokio::task::spawn_blocking(move || exec::run(&state, &caller, call))
        .await
        .map_err(|e| {
            McpError::internal_error(format!("{name} failed: {e}; see the factory's log"), None)
        })?;
    Ok(match done {
        Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
        Err(exec::Failure(message)) => CallToolResult::error(vec![ContentBlock::text(message)]),
    })
}

/// Longest piece of a call's arguments that goes into the log.
const LOGGED_ARGUMENT_CHARS: usize = 300;

/// A call's arguments as the log may hold them: redacted like a stored step, and cut
/// short (a memory_write's text is the store's business, not the log's).
fn logged_arguments(state: &AppState, arguments: Option<&rmcp::model::JsonObject>) -> String {
    let json = arguments
        .and_then(|a| serde_json::to_string(a).ok())
        .unwrap_or_default();
    let redacted = state.ws.redactor.redact(&json);
    let mut chars = redacted.chars();
    let mut out: String = chars.by_ref().take(LOGGED_ARGUMENT_CHARS).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// Where a `tools/call` is carried out: all that differs between the factory's `/mcp`
/// (here, over the workspace) and `shopfloor mcp` (here, or forwarded to a factory).
pub trait ToolCalls: Send + Sync + 'static {
    fn call(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl std::future::Future<Output = Result<CallToolResult, McpError>> + Send;
}

/// The MCP server over some [`ToolCalls`]: one `initialize`, one tool list, for both.
#[derive(Clone)]
pub struct ToolServer<C>(pub C);

impl<C: ToolCalls> ServerHandler for ToolServer<C> {
    fn get_info(&self) -> ServerConfig {
        server_info()
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tools::definitions()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.0
            .call(request, context)
            .await
            .map(CallToolResponse::Complete)
    }
}

impl ToolCalls for McpService {
    async fn call(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = self.caller(&context)?;
        call(self.state.clone(), caller, request).await
    }
}

/// The `/mcp` endpoint: stateless streamable HTTP answering plain JSON, behind the
/// API's auth layer (which puts the caller on each request).
pub fn http_service(
    state: AppState,
) -> StreamableHttpService<ToolServer<McpService>, NeverSessionManager> {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true);
    let service = ToolServer(McpService::new(state));
    StreamableHttpService::new(
        move || Ok(service.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

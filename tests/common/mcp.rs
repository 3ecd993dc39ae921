//! MCP clients for tests: rmcp's own, over the factory's sockets.

use std::path::Path;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, UnixSocketHttpClient};
use serde_json::Value;

pub type Client = RunningService<RoleClient, ()>;

/// Streamable HTTP to `/mcp` on a Unix socket, with a run's token or as the socket's owner.
pub fn unix_transport(
    sock: &Path,
    token: Option<&str>,
) -> StreamableHttpClientTransport<UnixSocketHttpClient> {
    let uri = "http://localhost/mcp";
    let mut config = StreamableHttpClientTransportConfig::with_uri(uri);
    if let Some(t) = token {
        config = config.auth_header(t.to_string());
    }
    StreamableHttpClientTransport::with_client(
        UnixSocketHttpClient::new(&sock.to_string_lossy(), uri),
        config,
    )
}

/// Call a tool; the transport's error, or the tool's result (which may be an error result).
pub async fn try_call(c: &Client, tool: &str, args: Value) -> Result<CallToolResult, String> {
    let Value::Object(args) = args else {
        panic!("arguments are an object")
    };
    c.call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args))
        .await
        .map_err(|e| e.to_string())
}

/// The text of a result.
pub fn result_text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

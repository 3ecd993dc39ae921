//! The fixture agent's MCP client: what Claude Code does with `--mcp-config`, in small.
//! It reads the config file, spawns the `shopfloor` stdio server it names on first use,
//! and calls tools on it, so the fixture agent's memory writes and searches really go
//! through `shopfloor mcp` to the factory.

use std::path::{Path, PathBuf};

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(rename = "mcpServers", default)]
    mcp_servers: std::collections::BTreeMap<String, ServerEntry>,
}

#[derive(Deserialize)]
struct ServerEntry {
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: std::collections::BTreeMap<String, String>,
}

struct Session {
    rt: tokio::runtime::Runtime,
    client: RunningService<RoleClient, ()>,
}

/// A lazily started session with the `shopfloor` server of an MCP config file.
pub struct McpClient {
    config: Option<PathBuf>,
    session: Option<Session>,
}

impl McpClient {
    pub fn new(config: Option<PathBuf>) -> McpClient {
        McpClient {
            config,
            session: None,
        }
    }

    /// Whether a server is configured at all (Claude lists it in its `init` line).
    pub fn configured(&self) -> bool {
        self.config.is_some()
    }

    fn connect(config: &Path) -> Result<Session, String> {
        let text = std::fs::read_to_string(config)
            .map_err(|e| format!("cannot read the MCP config {}: {e}", config.display()))?;
        let file: ConfigFile = serde_json::from_str(&text)
            .map_err(|e| format!("the MCP config {} is not valid: {e}", config.display()))?;
        let entry = file.mcp_servers.get("shopfloor").ok_or_else(|| {
            format!(
                "the MCP config {} names no `shopfloor` server",
                config.display()
            )
        })?;
        let command = entry.command.as_deref().ok_or_else(|| {
            "the `shopfloor` MCP server has no `command` (only stdio servers are supported)"
                .to_string()
        })?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let mut cmd = tokio::process::Command::new(command);
        cmd.args(&entry.args).envs(&entry.env);
        let client = rt.block_on(async {
            let transport = TokioChildProcess::new(cmd)
                .map_err(|e| format!("cannot start the MCP server `{command}`: {e}"))?;
            ().serve(transport)
                .await
                .map_err(|e| format!("the MCP server `{command}` did not initialize: {e}"))
        })?;
        Ok(Session { rt, client })
    }

    /// Call `tool`; returns the result's text and whether it is an error. `Err` is a call
    /// that could not be made (no server, a protocol error), in words for the agent.
    pub fn call(&mut self, tool: &str, args: Value) -> Result<(String, bool), String> {
        let Some(config) = &self.config else {
            return Err(
                "No MCP server `shopfloor` is configured (no --mcp-config); the call was not made."
                    .into(),
            );
        };
        if self.session.is_none() {
            self.session = Some(McpClient::connect(config)?);
        }
        let Some(s) = &self.session else {
            return Err("no MCP session".into());
        };
        let mut params = CallToolRequestParams::new(tool.to_string());
        if let Value::Object(o) = args {
            params = params.with_arguments(o);
        }
        let result =
            s.rt.block_on(s.client.call_tool(params))
                .map_err(|e| format!("MCP error: {e}"))?;
        let text = result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
            .collect::<Vec<_>>()
            .join("\n");
        Ok((text, result.is_error.unwrap_or(false)))
    }
}

impl Drop for McpClient {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            // Close the session so the server process exits with us.
            let Session { rt, client } = s;
            let _ = rt.block_on(client.cancel());
        }
    }
}

//! `[agents.NAME]`: one table per way of running an agent (see `agent::profile`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentProfile {
    pub adapter: Adapter,
    /// The executable to run instead of the adapter's (`claude`, `codex`, `gemini`, or the
    /// shopfloor binary for `fixture`). Required for `plain`.
    #[serde(default)]
    pub command: Option<String>,
    /// Extra arguments, placed after the adapter's own and before the prompt.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment for the agent process.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// At most this many runs of this profile at once (None: the scheduler's default).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// The scenario a `fixture` agent plays (only for `fixture`).
    #[serde(default)]
    pub scenario: Option<PathBuf>,
    /// The model to ask the CLI for (`--model`); None keeps the CLI's own default.
    #[serde(default)]
    pub model: Option<String>,
    /// What the agent may do in its sandbox without asking (see [`Permissions`]).
    #[serde(default)]
    pub permissions: Permissions,
    /// Commands (prefixes) an `allowlist` run may run besides the `[test]` command, e.g.
    /// `"cargo check"` allows `cargo check` and `cargo check --all`.
    #[serde(default)]
    pub allow_commands: Vec<String>,
}

/// What an agent CLI may do in its sandbox without a person allowing it. Whatever the
/// setting, a run may always call shopfloor's own MCP tools (its memory, leases, traces)
/// and edit files in its checkout: a headless run has nobody to ask, and a refusal there
/// only leaves the agent unable to work while the run "succeeds".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Permissions {
    /// `full` in a Docker sandbox, `allowlist` in a worktree.
    #[default]
    Auto,
    /// Anything, no questions: the sandbox is the boundary. Meant for Docker, where the
    /// container (no capabilities, read-only root, the configured network) holds the agent.
    Full,
    /// File edits in the checkout, shopfloor's MCP tools, and commands from an allowlist:
    /// the `[test]` command and the profile's `allow_commands`. For a worktree, where the
    /// agent runs as the user on the user's machine.
    Allowlist,
}

impl Permissions {
    /// What `auto` means for a run in `docker` (true) or a worktree (false).
    pub fn resolve(self, in_docker: bool) -> Permissions {
        match self {
            Permissions::Auto if in_docker => Permissions::Full,
            Permissions::Auto => Permissions::Allowlist,
            p => p,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Adapter {
    ClaudeCode,
    Codex,
    Gemini,
    Plain,
    Fixture,
}

impl Adapter {
    pub const ALL: [Adapter; 5] = [
        Adapter::ClaudeCode,
        Adapter::Codex,
        Adapter::Gemini,
        Adapter::Plain,
        Adapter::Fixture,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Adapter::ClaudeCode => "claude-code",
            Adapter::Codex => "codex",
            Adapter::Gemini => "gemini",
            Adapter::Plain => "plain",
            Adapter::Fixture => "fixture",
        }
    }
}

impl fmt::Display for Adapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

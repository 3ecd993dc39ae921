//! How each agent CLI is launched and how its output becomes Steps.
//!
//! - [`profile`]: `[agents.NAME]` profiles (adapter, command, args, env, model...).
//! - [`plan`]: a profile + a prompt + where the run happens → a [`LaunchPlan`]: the argv,
//!   the environment, the files to write first, and which [`DecoderKind`] reads the output.
//!   Planning is pure (no I/O), so every adapter's command line is unit-tested.
//! - [`decode`]: an [`OutputDecoder`] turns the bytes an agent prints into step drafts, through
//!   the same line-fed parsers `trace import` uses.
//! - [`fixture`]: a built-in deterministic agent (`shopfloor fixture-agent SCENARIO`) that
//!   prints real Claude Code stream-json while really editing files and running commands, so
//!   the whole factory can be tested without an API key.
//!
//! Launch plans, per adapter (`[..]` only when set; `ARGS` is the profile's `args`; `PERMS`
//! below):
//!
//! | adapter | argv |
//! |---|---|
//! | `claude-code` | `claude -p --output-format stream-json --verbose [--model M] [--mcp-config .shopfloor/mcp.json] PERMS ARGS -- PROMPT` |
//! | `codex` | `codex exec --json [--model M] [-c mcp_servers.shopfloor.command="EXE" -c mcp_servers.shopfloor.args=[...] -c mcp_servers.shopfloor.default_tools_approval_mode="approve"] PERMS ARGS -- PROMPT` |
//! | `gemini` | `gemini --output-format stream-json [--model M] ARGS -p PROMPT` |
//! | `plain` | `COMMAND ARGS` (prompt in `$SHOPFLOOR_PROMPT` and the file `$SHOPFLOOR_PROMPT_FILE`) |
//! | `fixture` | `SHOPFLOOR_EXE fixture-agent SCENARIO [--mcp-config .shopfloor/mcp.json] ARGS` (prompt read from `$SHOPFLOOR_PROMPT_FILE`) |
//!
//! Every plan writes the prompt to `.shopfloor/prompt.md` (`$SHOPFLOOR_PROMPT_FILE`). A
//! prompt over [`INLINE_PROMPT_MAX`] is not passed inline: PROMPT and `$SHOPFLOOR_PROMPT`
//! are then its first line and the file's path, with word to read it (an exec refuses any
//! one argument over 128 KiB).
//!
//! Permissions (the profile's `permissions`, `auto` by default: `full` in Docker, where the
//! container is the boundary; `allowlist` in a worktree, where the agent runs as the user).
//! Either way shopfloor's own MCP tools and edits in the checkout need nobody's leave —
//! every flag here is checked against the real CLIs by `tests/real_cli.rs`:
//!
//! | adapter | `full` | `allowlist` |
//! |---|---|---|
//! | `claude-code` | `--dangerously-skip-permissions`, env `IS_SANDBOX=1` (it refuses that flag as root otherwise, and a container often runs as root) | `--permission-mode acceptEdits --allowedTools mcp__shopfloor Bash(TEST:*) Bash(CMD:*)...`: edits, our MCP tools, the `[test]` command and `allow_commands`; any other command is refused |
//! | `codex` | `--dangerously-bypass-approvals-and-sandbox` (its bubblewrap sandbox cannot start in a container without capabilities anyway) | `--sandbox workspace-write`: Codex has no per-command allowlist in `exec`; every command runs in its own bubblewrap sandbox, writing only the checkout, with no network |
//!
//! Our MCP server: Claude gets `--allowedTools mcp__shopfloor`; Codex gets
//! `default_tools_approval_mode = "approve"` on the server. Claude Code also gets
//! `DISABLE_AUTOUPDATER=1`: a fleet runs the version it was set up with (a profile's `env`
//! may say otherwise).
//!
//! Why `-- PROMPT` last for Claude and Codex: a prompt starting with `-` would otherwise be
//! read as a flag, and Claude's `--mcp-config` takes several values, so a prompt right after
//! it would be swallowed as a second config. Gemini's `-p` takes the prompt as its value.
//!
//! Every plan sets `SHOPFLOOR_RUN`, `SHOPFLOOR_PROMPT`, `SHOPFLOOR_PROMPT_FILE`, and `SHOPFLOOR_SOCKET` /
//! `SHOPFLOOR_TOKEN` when the factory serves MCP to the run; the profile's `env` comes
//! first so the factory's own variables win over a profile that sets the same names.
//!
//! MCP: an agent reaches the factory through a stdio server its CLI spawns,
//! `shopfloor mcp --socket SOCKET --token-file .shopfloor/token`, which forwards to the
//! factory's socket with the run's token. Stdio works in both sandboxes with no network
//! (a container gets the socket and the binary mounted) and with every CLI. Claude Code
//! (and the fixture agent) read it from `--mcp-config .shopfloor/mcp.json`; Codex from
//! `-c mcp_servers.shopfloor.command/args` overrides (values are TOML). Gemini reads MCP
//! servers only from `settings.json`, which would shadow the project's own, so a Gemini
//! agent gets the socket and token in its environment only; `shopfloor connect gemini`
//! configures a project for it.
//!
//! Files: per-run files (the prompt, the MCP config, the token) are written under
//! `.shopfloor/` in the working directory, beside a `.shopfloor/.gitignore` of `*`, so git
//! ignores them and the token never lands in the branch when leftovers are committed.

pub mod decode;
pub mod fixture;
pub mod mcp_client;
pub mod profile;

use std::path::{Path, PathBuf};

pub use decode::{DecoderKind, OutputDecoder};
pub use fixture::run_fixture_agent;
pub use profile::{Adapter, AgentProfile, Permissions};

use crate::sandbox::BackendKind;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent profile `{name}` ([agents.{name}] in shopfloor.toml): {message}")]
    Profile { name: String, message: String },
    #[error(
        "no scenario file at {path}: check the path (the built-in ones are in assets/scenarios/)"
    )]
    ScenarioMissing { path: PathBuf },
    #[error("cannot read scenario {path}: {source}")]
    ScenarioRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Scenario {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "the fixture agent could not write its output: {0}; the process reading it has gone away"
    )]
    Output(#[source] std::io::Error),
}

/// Where and for whom a run happens.
#[derive(Clone, Debug, PartialEq)]
pub struct LaunchContext {
    /// The sandbox's working directory, as the agent sees it.
    pub workdir: PathBuf,
    /// The factory's API socket as the agent sees it, when a factory serves MCP to this
    /// run: the agent's MCP client spawns `shopfloor mcp --socket SOCKET`.
    pub mcp_socket: Option<PathBuf>,
    /// The bearer token scoped to this run's workspace and run.
    pub token: Option<String>,
    /// This shopfloor binary, for the fixture agent.
    pub shopfloor_exe: PathBuf,
    pub run: u64,
    /// Where the run happens: what `permissions = "auto"` means depends on it.
    pub backend: BackendKind,
    /// The workspace's `[test]` command: an `allowlist` run may always run it.
    pub test_command: Option<String>,
}

/// What to start: ready for `std::process::Command` or a container's exec.
#[derive(Clone, Debug, PartialEq)]
pub struct LaunchPlan {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Files to write before starting: a relative path is under `workdir`.
    pub files: Vec<(PathBuf, Vec<u8>)>,
    pub decoder: DecoderKind,
}

impl LaunchPlan {
    /// The value of an environment variable the plan sets (the last one wins, as in exec).
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Where per-run files go, relative to the working directory (git-ignored, see above).
pub const RUN_FILES_DIR: &str = ".shopfloor";

/// The longest prompt (in bytes) given inline, as an argument and in `SHOPFLOOR_PROMPT`.
/// Linux refuses to start a program with any one argument or environment string over
/// 128 KiB (`MAX_ARG_STRLEN`, "Argument list too long"), and a ticket's body alone may be
/// 64K characters, up to 256 KiB of UTF-8, before memories and lessons are added. A
/// longer prompt stays in `.shopfloor/prompt.md` and the agent is told to read it there.
pub const INLINE_PROMPT_MAX: usize = 32 << 10;

/// What an agent is given in place of a prompt too long to pass inline: where to read it,
/// and its first line (the ticket's number and title) so the task is named either way.
fn read_the_file_prompt(prompt: &str, file: &Path) -> String {
    let first: String = prompt
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(600)
        .collect();
    format!(
        "{first}\n\nThis ticket's full prompt is {} KiB, too long to pass on a command line, so \
         it is in the file {} (`.shopfloor/prompt.md` in your working directory). Read that \
         whole file first: it is your task, with what the fleet knows about it.\n",
        prompt.len().div_ceil(1024),
        file.display()
    )
}

/// Plan the launch of profile `name` on `prompt`.
pub fn plan(
    name: &str,
    profile: &AgentProfile,
    prompt: &str,
    ctx: &LaunchContext,
) -> Result<LaunchPlan, AgentError> {
    profile.validate(name)?;
    let dir = Path::new(RUN_FILES_DIR);
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    // The adapter's own defaults first, so the profile's `env` can override them; the
    // factory's variables last, so nothing can.
    let mut env: Vec<(String, String)> = adapter_env(profile.adapter, permissions(profile, ctx));
    env.extend(profile.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.push(("SHOPFLOOR_RUN".into(), ctx.run.to_string()));
    env.push(("SHOPFLOOR_AGENT".into(), name.to_string()));
    // The prompt is always in a file; inline (argv and `SHOPFLOOR_PROMPT`) only when it
    // fits a command line, else the agent is told where to read it (see INLINE_PROMPT_MAX).
    let prompt_path = dir.join("prompt.md");
    files.push((prompt_path.clone(), prompt.as_bytes().to_vec()));
    let prompt_file = ctx.workdir.join(&prompt_path);
    env.push((
        "SHOPFLOOR_PROMPT_FILE".into(),
        prompt_file.display().to_string(),
    ));
    let long;
    let prompt = if prompt.len() <= INLINE_PROMPT_MAX {
        prompt
    } else {
        long = read_the_file_prompt(prompt, &prompt_file);
        long.as_str()
    };
    env.push(("SHOPFLOOR_PROMPT".into(), prompt.to_string()));
    if let Some(socket) = &ctx.mcp_socket {
        env.push(("SHOPFLOOR_SOCKET".into(), socket.display().to_string()));
    }
    if let Some(token) = &ctx.token {
        env.push(("SHOPFLOOR_TOKEN".into(), token.clone()));
    }
    // The stdio MCP server an agent CLI spawns, and the config file naming it.
    let mcp_server = ctx.mcp_socket.as_ref().map(|socket| {
        let mut argv = vec![
            ctx.shopfloor_exe.display().to_string(),
            "mcp".to_string(),
            "--socket".to_string(),
            socket.display().to_string(),
        ];
        if ctx.token.is_some() {
            // A file, not the environment: an agent CLI may start its MCP servers with a
            // scrubbed environment (Codex does).
            argv.push("--token-file".into());
            argv.push(ctx.workdir.join(dir).join("token").display().to_string());
        }
        argv
    });
    if let (Some(_), Some(token)) = (&mcp_server, &ctx.token) {
        files.push((dir.join("token"), format!("{token}\n").into_bytes()));
    }
    let mcp_config = |files: &mut Vec<(PathBuf, Vec<u8>)>, argv: &[String]| {
        let path = dir.join("mcp.json");
        files.push((path.clone(), claude_mcp_config(argv)));
        path.display().to_string()
    };
    let exe = |default: &str| profile.command.clone().unwrap_or_else(|| default.into());
    let model_args = || {
        profile
            .model
            .iter()
            .flat_map(|m| ["--model".to_string(), m.clone()])
            .collect::<Vec<_>>()
    };
    let (argv, decoder) = match profile.adapter {
        Adapter::ClaudeCode => {
            let mut argv = vec![
                exe("claude"),
                "-p".into(),
                "--output-format".into(),
                "stream-json".into(),
                "--verbose".into(),
            ];
            argv.extend(model_args());
            if let Some(server) = &mcp_server {
                argv.push("--mcp-config".into());
                argv.push(mcp_config(&mut files, server));
            }
            argv.extend(claude_permission_args(profile, ctx));
            argv.extend(profile.args.iter().cloned());
            argv.push("--".into());
            argv.push(prompt.into());
            (argv, DecoderKind::ClaudeStream)
        }
        Adapter::Codex => {
            let mut argv = vec![exe("codex"), "exec".into(), "--json".into()];
            argv.extend(model_args());
            if let Some(server) = &mcp_server {
                argv.push("-c".into());
                argv.push(format!(
                    "mcp_servers.shopfloor.command={}",
                    toml_string(&server[0])
                ));
                argv.push("-c".into());
                argv.push(format!(
                    "mcp_servers.shopfloor.args={}",
                    toml::Value::Array(
                        server[1..]
                            .iter()
                            .map(|a| toml::Value::String(a.clone()))
                            .collect()
                    )
                ));
                // Our tools run without an approval prompt nobody could answer.
                argv.push("-c".into());
                argv.push("mcp_servers.shopfloor.default_tools_approval_mode=\"approve\"".into());
            }
            argv.extend(codex_permission_args(profile, ctx));
            argv.extend(profile.args.iter().cloned());
            argv.push("--".into());
            argv.push(prompt.into());
            (argv, DecoderKind::CodexExec)
        }
        Adapter::Gemini => {
            let mut argv = vec![
                exe("gemini"),
                "--output-format".into(),
                "stream-json".into(),
            ];
            argv.extend(model_args());
            argv.extend(profile.args.iter().cloned());
            // `-p` takes the prompt as its value, so a prompt starting with `-` is safe
            // only in the `--prompt=VALUE` form.
            if prompt.starts_with('-') {
                argv.push(format!("--prompt={prompt}"));
            } else {
                argv.push("-p".into());
                argv.push(prompt.into());
            }
            (argv, DecoderKind::Gemini)
        }
        Adapter::Plain => {
            if let Some(m) = &profile.model {
                env.push(("SHOPFLOOR_MODEL".into(), m.clone()));
            }
            let mut argv = vec![exe("")];
            argv.extend(profile.args.iter().cloned());
            (argv, DecoderKind::Plain)
        }
        Adapter::Fixture => {
            // validate() refuses a fixture without a scenario; this keeps plan() panic-free
            // even if that check moves.
            let Some(scenario) = profile.scenario.as_ref() else {
                return Err(AgentError::Profile {
                    name: name.to_string(),
                    message: "adapter `fixture` needs `scenario = \"...\"`".into(),
                });
            };
            if let Some(m) = &profile.model {
                env.push(("SHOPFLOOR_MODEL".into(), m.clone()));
            }
            let mut argv = vec![
                profile
                    .command
                    .clone()
                    .unwrap_or_else(|| ctx.shopfloor_exe.display().to_string()),
                "fixture-agent".into(),
                scenario.display().to_string(),
            ];
            // Like Claude Code, it reaches MCP servers through a config file.
            if let Some(server) = &mcp_server {
                argv.push("--mcp-config".into());
                argv.push(mcp_config(&mut files, server));
            }
            argv.extend(profile.args.iter().cloned());
            (argv, DecoderKind::ClaudeStream)
        }
    };
    files.insert(0, (dir.join(".gitignore"), b"*\n".to_vec()));
    Ok(LaunchPlan {
        argv,
        env,
        files,
        decoder,
    })
}

/// The profile's permissions with `auto` resolved for where the run happens.
pub fn permissions(profile: &AgentProfile, ctx: &LaunchContext) -> Permissions {
    profile
        .permissions
        .resolve(ctx.backend == BackendKind::Docker)
}

/// The environment an adapter sets before the profile's (see the module comment).
fn adapter_env(adapter: Adapter, perms: Permissions) -> Vec<(String, String)> {
    let mut env = Vec::new();
    if adapter == Adapter::ClaudeCode {
        env.push(("DISABLE_AUTOUPDATER".into(), "1".into()));
        if perms == Permissions::Full {
            env.push(("IS_SANDBOX".into(), "1".into()));
        }
    }
    env
}

/// The commands an `allowlist` run may run: the `[test]` command, then the profile's.
fn allowed_commands<'a>(profile: &'a AgentProfile, ctx: &'a LaunchContext) -> Vec<&'a str> {
    let mut cmds: Vec<&str> = Vec::new();
    for c in ctx.test_command.iter().chain(&profile.allow_commands) {
        let c = c.trim();
        if !c.is_empty() && !cmds.contains(&c) {
            cmds.push(c);
        }
    }
    cmds
}

/// Claude Code's permission flags (see the module comment's table).
fn claude_permission_args(profile: &AgentProfile, ctx: &LaunchContext) -> Vec<String> {
    match permissions(profile, ctx) {
        Permissions::Full => vec!["--dangerously-skip-permissions".into()],
        _ => {
            let mut args = vec![
                "--permission-mode".to_string(),
                "acceptEdits".to_string(),
                "--allowedTools".to_string(),
                // The server's name in the MCP config: every tool it offers.
                "mcp__shopfloor".to_string(),
            ];
            // `Bash(PREFIX:*)`: the command itself, or with more arguments.
            args.extend(
                allowed_commands(profile, ctx)
                    .into_iter()
                    .map(|c| format!("Bash({c}:*)")),
            );
            args
        }
    }
}

/// Codex's permission flags (see the module comment's table).
fn codex_permission_args(profile: &AgentProfile, ctx: &LaunchContext) -> Vec<String> {
    match permissions(profile, ctx) {
        Permissions::Full => vec!["--dangerously-bypass-approvals-and-sandbox".into()],
        _ => vec!["--sandbox".into(), "workspace-write".into()],
    }
}

/// Claude Code's `--mcp-config` file naming the stdio server to spawn (the fixture agent
/// reads the same file).
fn claude_mcp_config(argv: &[String]) -> Vec<u8> {
    let config = serde_json::json!({ "mcpServers": { "shopfloor": {
        "type": "stdio",
        "command": argv[0],
        "args": argv[1..],
    } } });
    let mut bytes = serde_json::to_vec_pretty(&config).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// A TOML basic string, for Codex's `-c key=value` overrides (values are parsed as TOML).
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests;

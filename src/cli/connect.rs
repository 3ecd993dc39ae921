//! `shopfloor connect CLIENT`: put the entry that launches `shopfloor mcp` for this
//! workspace into an agent client's config (and, for Claude Code, the hooks that record
//! sessions run by hand).

use anyhow::{Context, Result};
use clap::ValueEnum;

use shopfloor::connect::{self, Client, Edit, Launch, Places, Scope};

use super::Ctx;
use super::output::{say, say_err};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ClientArg {
    /// `.mcp.json` at the repository root (user: `~/.claude.json`)
    ClaudeCode,
    /// `$CODEX_HOME/config.toml` (default `~/.codex/config.toml`); Codex has only a user config
    Codex,
    /// `.cursor/mcp.json` in the repository (user: `~/.cursor/mcp.json`)
    Cursor,
    /// `.gemini/settings.json` in the repository (user: `~/.gemini/settings.json`)
    Gemini,
}

impl From<ClientArg> for Client {
    fn from(c: ClientArg) -> Client {
        match c {
            ClientArg::ClaudeCode => Client::ClaudeCode,
            ClientArg::Codex => Client::Codex,
            ClientArg::Cursor => Client::Cursor,
            ClientArg::Gemini => Client::Gemini,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum ScopeArg {
    /// The repository's config, shared with the team through git
    #[default]
    Project,
    /// Your own config under $HOME, for every project
    User,
}

#[derive(clap::Args, Debug)]
pub struct ConnectArgs {
    /// The agent client to configure
    #[arg(value_enum)]
    client: ClientArg,
    /// Whose config to edit
    #[arg(long, value_enum, default_value_t)]
    scope: ScopeArg,
    /// Print the change as a unified diff; write nothing
    #[arg(long)]
    dry_run: bool,
    /// Also install Claude Code hooks (`PostToolUse`, `Stop`) that record sessions you run
    /// by hand into the workspace's traces (claude-code only)
    #[arg(long)]
    hooks: bool,
}

/// The running binary, by a path that stays valid from any directory.
fn current_exe() -> Result<std::path::PathBuf> {
    let exe = std::env::current_exe().context("cannot tell where this shopfloor binary is")?;
    if let Ok(real) = exe.canonicalize() {
        return Ok(real);
    }
    // Linux names a binary replaced while it runs (an upgrade) `<path> (deleted)`; the
    // path itself is what the client should start.
    let text = exe.display().to_string();
    Ok(text
        .strip_suffix(" (deleted)")
        .map_or(exe, std::path::PathBuf::from))
}

pub fn run(ctx: &Ctx, args: ConnectArgs) -> Result<()> {
    let client = Client::from(args.client);
    let scope = match args.scope {
        ScopeArg::Project => Scope::Project,
        ScopeArg::User => Scope::User,
    };
    if args.hooks && client != Client::ClaudeCode {
        anyhow::bail!(
            "--hooks is for claude-code only: `shopfloor connect claude-code --hooks`; {client} has no hooks shopfloor uses"
        );
    }
    let info = ctx.info()?;
    let exe = current_exe()?;
    let places = Places::from_env(info.repo.clone())?;
    if client == Client::Codex && scope == Scope::Project {
        say_err!("note: Codex reads MCP servers only from its user config; writing that");
    }
    // Every file is planned before any is written, so a file that cannot be parsed leaves
    // all of them as they were.
    let mut edits: Vec<Edit> = vec![connect::plan_server(
        client,
        scope,
        &places,
        &Launch::mcp(&exe, &info.name),
    )?];
    if args.hooks {
        edits.push(connect::plan_hooks(scope, &places, &exe, &info.name)?);
    }
    for edit in &edits {
        if args.dry_run && edit.outcome != connect::EditOutcome::Unchanged {
            say!("{}", edit.diff().trim_end_matches('\n'));
        } else {
            if !args.dry_run {
                edit.apply()?;
            }
            say!("{}", edit.summary());
        }
    }
    if args.dry_run {
        say!("dry run: nothing written");
    } else if edits
        .iter()
        .any(|e| e.outcome != connect::EditOutcome::Unchanged)
    {
        say!(
            "{client} now starts `shopfloor mcp --workspace {}`; restart it to pick the change up",
            info.name
        );
    }
    Ok(())
}

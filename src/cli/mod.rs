//! The command line: a thin view over the core. Errors become one clear line on stderr and
//! exit code 1; usage errors are clap's (exit code 2).

mod connect;
mod cost;
mod demo;
mod hook;
mod host;
mod memory;
mod output;
mod policy;
mod queue;
mod run;
mod serve;
mod ticket;
mod trace;
mod up;
mod workspace;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};

use shopfloor::api::Backend;
use shopfloor::workspace::{Home, WorkspaceInfo};

#[derive(Parser, Debug)]
#[command(
    name = "shopfloor",
    version,
    about = "A terminal control room for a local software factory of coding agents",
    propagate_version = true
)]
pub struct Cli {
    /// The workspace to act on [default: the one whose repository holds the current directory]
    #[arg(
        short = 'w',
        long,
        global = true,
        env = "SHOPFLOOR_WORKSPACE",
        value_name = "NAME"
    )]
    workspace: Option<String>,

    #[command(subcommand)]
    command: Command,
}

fn parse_since(s: &str) -> Result<jiff::Timestamp, String> {
    shopfloor::since::parse_since(s, jiff::Timestamp::now()).map_err(|e| e.to_string())
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create, list, show and remove workspaces (one per repository)
    #[command(subcommand)]
    Workspace(workspace::WorkspaceCmd),
    /// Add, list, show and cancel tickets
    #[command(subcommand)]
    Ticket(ticket::TicketCmd),
    /// Import agent logs as runs; list, show, export and search their steps
    #[command(subcommand)]
    Trace(trace::TraceCmd),
    /// The factory's runs: list, show, kill, follow their steps
    #[command(subcommand)]
    Run(run::RunCmd),
    /// Write and recall the fleet's shared memory
    #[command(subcommand)]
    Memory(memory::MemoryCmd),
    /// The merge queue: list, show, approve, reject, bump, pause, resume
    #[command(subcommand)]
    Queue(queue::QueueCmd),
    /// The machines runs may go to over SSH: list, check, drain, undrain
    #[command(subcommand)]
    Host(host::HostCmd),
    /// What the factory spent, per ticket, agent and day
    Cost {
        /// Only runs started since then: `7d`, `24h`, or an RFC 3339 time
        #[arg(long, value_parser = parse_since)]
        since: Option<jiff::Timestamp>,
        #[arg(long)]
        json: bool,
    },
    /// Run the factory headless: run queued tickets, serve the local API on the socket,
    /// print a line per run state change
    Serve {
        /// Hold the workspace and serve the API, but start no runs
        #[arg(long)]
        paused: bool,
    },
    /// The control room: the factory and its TUI in one process, or the TUI on the
    /// factory `serve` already runs
    Up {
        /// Only open the control room on a running `serve`; never start a factory
        #[arg(long)]
        attach: bool,
        /// Start the factory paused: no runs start until it is resumed
        #[arg(long, conflicts_with = "attach")]
        paused: bool,
        /// A theme: dark, light, high-contrast, or one of yours [env: SHOPFLOOR_THEME]
        #[arg(long)]
        theme: Option<String>,
    },
    /// A guided tour on a throwaway workspace: no setup, no Docker, no API key
    Demo {
        /// Keep the demo's workspace and repository to explore afterwards
        #[arg(long)]
        keep: bool,
        /// Run it to the end without the control room (approving the gated entry as the
        /// demo's reviewer) and print a summary
        #[arg(long)]
        headless: bool,
        /// Make the demo in this new or empty directory, and keep it
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Play a fixture agent scenario: a fake agent that prints Claude Code stream-json
    /// while really editing files and running commands in the current directory
    FixtureAgent {
        /// A scenario file (see assets/scenarios/), or a built-in's name such as `success`
        scenario: PathBuf,
        /// An MCP config file naming the `shopfloor` server to call (Claude Code's format)
        #[arg(long, value_name = "FILE")]
        mcp_config: Option<PathBuf>,
    },
    /// Serve the fleet's memory and traces as MCP tools on stdin/stdout, for agent CLIs
    /// that spawn their MCP servers (forwards to the running factory, or opens the store)
    Mcp {
        /// Only talk to the factory on this socket (inside a sandbox, where no workspace
        /// is set up)
        #[arg(long, value_name = "PATH", env = "SHOPFLOOR_SOCKET")]
        socket: Option<PathBuf>,
        /// Read the run's token from this file [default: $SHOPFLOOR_TOKEN]
        #[arg(long, value_name = "PATH")]
        token_file: Option<PathBuf>,
    },
    /// Write a commented starter shopfloor.toml at the repository root
    Init {
        /// The repository [default: the one around the current directory]
        #[arg(long, value_name = "PATH")]
        repo: Option<PathBuf>,
        /// Overwrite an existing shopfloor.toml
        #[arg(long)]
        force: bool,
    },
    /// The audit log: refused API calls (and, with the merge queue, its actions), oldest first
    Audit {
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Point an agent client (Claude Code, Codex, Cursor, Gemini CLI) at this workspace's
    /// MCP server by merging an entry into its config
    Connect(connect::ConnectArgs),
    /// What Claude Code's hooks run (`connect claude-code --hooks` installs them): record
    /// the session from the hook's JSON on stdin into the workspace's traces. Always exits 0
    Hook {
        /// The agent whose hook payload is on stdin
        #[arg(value_enum)]
        agent: hook::HookAgent,
    },
    /// What the `[policy]` of shopfloor.toml says of a branch before it lands
    #[command(subcommand)]
    Policy(policy::PolicyCmd),
}

/// What every command gets: where workspaces live and which one was asked for.
pub struct Ctx {
    pub home: Home,
    pub workspace: Option<String>,
    pub cwd: PathBuf,
}

impl Ctx {
    /// The workspace the command acts on.
    pub fn info(&self) -> Result<WorkspaceInfo> {
        Ok(self.home.resolve(self.workspace.as_deref(), &self.cwd)?)
    }

    /// The workspace's backend: opened directly, or the factory that holds it.
    pub fn backend(&self) -> Result<Backend> {
        backend(self.info()?)
    }
}

/// Where a command's work happens for `info`: directly, or through the factory that
/// holds the workspace. Commands call this and never ask which.
pub fn backend(info: WorkspaceInfo) -> Result<Backend> {
    let name = info.name.clone();
    Backend::open(info)
        .map_err(|e| anyhow::Error::new(e).context(format!("opening workspace `{name}`")))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::print_error(&e);
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    // An agent process, not a user command: no workspace, no logging, its own exit code.
    if let Command::FixtureAgent {
        scenario,
        mcp_config,
    } = &cli.command
    {
        let code = shopfloor::agent::run_fixture_agent(
            scenario,
            mcp_config.as_deref(),
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )?;
        std::process::exit(code);
    }
    // Inside a sandbox: only the socket is known, and stdout is the protocol.
    if let Command::Mcp {
        socket: Some(socket),
        token_file,
    } = &cli.command
    {
        let token = mcp_token(token_file.as_deref())?;
        shopfloor::api::mcp::stdio::serve(
            shopfloor::api::mcp::stdio::Target::Socket(socket.clone()),
            token,
        )?;
        return Ok(());
    }
    // A hook must not fail the session it observes: it handles its own errors and logging.
    if let Command::Hook { agent } = cli.command {
        hook::run(cli.workspace, agent);
        return Ok(());
    }
    let home = Home::from_env()?;
    let cwd = std::env::current_dir()?;
    let _log = output::init_logging(&home);
    let ctx = Ctx {
        home,
        workspace: cli.workspace,
        cwd,
    };
    match cli.command {
        Command::Workspace(cmd) => workspace::run(&ctx, cmd),
        Command::Ticket(cmd) => ticket::run(&ctx, cmd),
        Command::Trace(cmd) => trace::run(&ctx, cmd),
        Command::Memory(cmd) => memory::run(&ctx, cmd),
        Command::Queue(cmd) => queue::run(&ctx, cmd),
        Command::Cost { since, json } => cost::run(&ctx, since, json),
        Command::Host(cmd) => host::run(&ctx, cmd),
        Command::Run(cmd) => run::run(&ctx, cmd),
        Command::Serve { paused } => serve::run(&ctx, paused),
        Command::Up {
            attach,
            paused,
            theme,
        } => up::run(&ctx, attach, paused, theme),
        Command::Demo {
            keep,
            headless,
            dir,
        } => demo::run(keep, headless, dir),
        Command::FixtureAgent { .. } => unreachable!("handled before the workspace is resolved"),
        Command::Mcp { token_file, .. } => {
            let token = mcp_token(token_file.as_deref())?;
            let target = shopfloor::api::mcp::stdio::Target::Workspace(ctx.info()?);
            shopfloor::api::mcp::stdio::serve(target, token)?;
            Ok(())
        }
        Command::Init { repo, force } => init(&ctx, repo, force),
        Command::Connect(args) => connect::run(&ctx, args),
        Command::Hook { .. } => unreachable!("handled before the workspace is resolved"),
        Command::Audit { json } => {
            let events = ctx.backend()?.audit()?;
            output::print_list(
                json,
                &events,
                &["WHEN (UTC)", "WHO", "ACTION", "DETAIL"],
                |e| {
                    vec![
                        e.ts.strftime("%Y-%m-%d %H:%M:%S").to_string(),
                        e.actor.clone(),
                        e.action.clone(),
                        e.detail.clone(),
                    ]
                },
                "the audit log is empty",
            )
        }
        Command::Policy(cmd) => policy::run(&ctx, cmd),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "shopfloor",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

/// A run's token for `shopfloor mcp`: from `--token-file`, else `$SHOPFLOOR_TOKEN`.
fn mcp_token(file: Option<&std::path::Path>) -> Result<Option<String>> {
    match file {
        Some(f) => {
            let t = std::fs::read_to_string(f)
                .map_err(|e| anyhow::anyhow!("cannot read the token file {}: {e}", f.display()))?;
            Ok(Some(t.trim().to_string()))
        }
        None => Ok(std::env::var("SHOPFLOOR_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())),
    }
}

/// The starter config, with every default written out and explained.
const STARTER_CONFIG: &str = include_str!("../../assets/shopfloor.toml");

fn init(ctx: &Ctx, repo: Option<PathBuf>, force: bool) -> Result<()> {
    let root = shopfloor::workspace::repo_root(repo.as_deref().unwrap_or(&ctx.cwd))?;
    let path = root.join("shopfloor.toml");
    if path.exists() && !force {
        anyhow::bail!(
            "{} already exists; edit it, or pass --force to replace it with the starter file",
            path.display()
        );
    }
    std::fs::write(&path, STARTER_CONFIG)?;
    // The team's file, to be committed: the user's usual mode, not the data dir's.
    shopfloor::private::as_user_file(&path)?;
    output::say!("wrote {}", path.display());
    output::say!("commit it so the team shares one factory configuration");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}

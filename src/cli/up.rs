//! `shopfloor up`: the control room. With no factory running it starts one in this
//! process and opens the control room on it; when `serve` already runs the workspace (or
//! with `--attach`) it opens the control room on that one. Either way the control room
//! talks to the factory through its API socket, as the CLI does.

use anyhow::{Result, bail};
use shopfloor::api::Client;
use shopfloor::api::backend::Remote;
use shopfloor::tui::runtime::{self, Options};

use super::Ctx;
use super::serve;

pub fn run(ctx: &Ctx, attach: bool, paused: bool, theme: Option<String>) -> Result<()> {
    let info = ctx.info()?;
    let socket = info.socket_path();
    // A factory already runs it; a `shopfloor mcp` holding the store is no factory (it
    // lets the store go when ours asks).
    let running_elsewhere =
        Remote::connect(&info).is_ok_and(|r| r.holder() == shopfloor::wire::Holder::Factory);
    if attach && !running_elsewhere {
        bail!(
            "no factory answers on {} for workspace `{}`; start one with `shopfloor serve`, or run `shopfloor up` without --attach to start one here",
            socket.display(),
            info.name
        );
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        bail!(
            "the control room needs a terminal, and stdout is not one; `shopfloor serve` runs the factory without it"
        );
    }
    let mut opts = Options::from_env();
    if let Some(t) = theme {
        opts.theme = t;
    }
    // `[notify] terminal = false` turns the bell and desktop notifications off.
    if let Ok(c) = shopfloor::workspace::load_config(&info.config_path()) {
        opts.notify = c.notify.terminal;
    }
    let rt = serve::runtime()?;
    let done = rt.block_on(async move {
        if running_elsewhere {
            return runtime::run(Client::new(socket), opts, std::future::pending()).await;
        }
        let ws = serve::open(ctx)?;
        // The control room owns the screen: the factory's lines go to the log only.
        let running = serve::start(ws, paused, &|line| tracing::info!("{line}")).await?;
        let client = Client::new(running.socket.clone());
        let shown = runtime::run(client, opts, serve::shutdown_signal()).await;
        let stopped = running.stop().await;
        shown?;
        stopped
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    done
}

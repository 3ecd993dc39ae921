//! `shopfloor serve`: run the factory headless. It opens the workspace, taking the store's
//! and the index's locks for as long as it runs, and serves the local API on the
//! workspace's socket until SIGINT or SIGTERM. Other `shopfloor` commands find the store
//! locked and go through the socket instead.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};
use shopfloor::api::backend::{Remote, is_locked};
use shopfloor::api::{AppState, server};
use shopfloor::workspace::Workspace;

use super::Ctx;

pub fn run(ctx: &Ctx) -> Result<()> {
    let info = ctx.info()?;
    let name = info.name.clone();
    let ws = match Workspace::open(info.clone()) {
        Ok(ws) => ws,
        // Say "a factory runs" when one answers, rather than "the store is locked".
        Err(e) if is_locked(&e) && Remote::connect(&info).is_ok() => {
            return Err(shopfloor::api::ApiError::AlreadyRunning {
                workspace: name,
                socket: info.socket_path(),
            }
            .into());
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("opening workspace `{name}`")));
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let listener = server::bind(&ws.info).await?;
        println!(
            "factory for workspace `{name}` listening on {}",
            listener.path().display()
        );
        // Whoever started us may be waiting for this line.
        std::io::stdout().flush()?;
        tracing::info!(workspace = %name, socket = %listener.path().display(), "factory listening");
        let router = server::router(AppState::new(Arc::new(ws)));
        server::serve_on(listener, router, shutdown_signal()).await?;
        tracing::info!(workspace = %name, "factory stopped");
        Ok(())
    })
}

/// Resolves on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        // Without handlers the default disposition still ends the process on a signal.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = int.recv() => {},
        _ = term.recv() => {},
    }
}

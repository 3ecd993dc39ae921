//! `shopfloor serve`: run the factory headless. It opens the workspace, taking the store's
//! and the index's locks for as long as it runs, and serves the local API on the
//! workspace's socket until SIGINT or SIGTERM. Other `shopfloor` commands find the store
//! locked and go through the socket instead.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};
use shopfloor::api::backend::{Remote, is_locked};
use shopfloor::api::{AppState, server};
use shopfloor::scheduler::factory::{Factory, FactoryConfig, FactoryEvent};
use shopfloor::workspace::Workspace;

use super::Ctx;

pub fn run(ctx: &Ctx, paused: bool) -> Result<()> {
    // A factory outlives whoever reads its log lines: a closed stdout must not kill it.
    // SAFETY: restoring a standard disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
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
    let done = rt.block_on(async move {
        let listener = server::bind(&ws.info).await?;
        // Whoever started us may be waiting for this line.
        let _ = writeln!(
            std::io::stdout(),
            "factory for workspace `{name}` listening on {}",
            listener.path().display()
        );
        let _ = std::io::stdout().flush();
        tracing::info!(workspace = %name, socket = %listener.path().display(), "factory listening");
        let tcp_addr = ws
            .config
            .api
            .listen_addr()
            .map_err(|m| anyhow::anyhow!("{}: {m}", ws.info.config_path().display()))?;
        let tcp = match tcp_addr {
            Some(addr) => {
                let l = server::bind_tcp(addr).await?;
                let _ = writeln!(
                    std::io::stdout(),
                    "also listening on http://{} (a run's token required)",
                    l.local_addr().map_or(addr, |a| a)
                );
                Some(l)
            }
            None => None,
        };
        let cfg = FactoryConfig::from_config(&ws.config);
        let factory = Factory::start(Arc::new(ws), cfg).await?;
        factory.set_paused(paused);
        factory.serve_mcp_on(listener.path().to_path_buf());
        let _ = writeln!(
            std::io::stdout(),
            "sandbox: {}; main: {} in {}{}",
            factory.sandbox_kind(),
            factory.main_branch(),
            factory.clone_path().display(),
            if paused {
                " (paused: no runs start)"
            } else {
                ""
            }
        );
        let _ = std::io::stdout().flush();
        // One line per run state change, for whoever watches the terminal.
        let mut events = factory.subscribe();
        let printer = tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(FactoryEvent::RunState {
                        run,
                        ticket,
                        agent,
                        state,
                        sandbox,
                        detail,
                    }) => {
                        let ticket = ticket.map_or("-".into(), |t| t.to_string());
                        let detail = detail.map(|d| format!(": {d}")).unwrap_or_default();
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(
                            out,
                            "run {run} ticket {ticket} {agent} [{sandbox}] {state}{detail}"
                        );
                        let _ = out.flush();
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "the event printer fell behind");
                    }
                    Err(_) => break,
                }
            }
        });
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let runner = {
            let f = factory.clone();
            tokio::spawn(async move { f.run(stop_rx).await })
        };
        let router = server::router(AppState::with_factory(factory.clone()))?;
        // One signal stops both listeners.
        let (down_tx, down_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = down_tx.send(true);
        });
        let down = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|d| *d).await;
        };
        let tcp_served = tcp.map(|l| {
            tokio::spawn(server::serve_tcp_on(
                l,
                router.clone(),
                down(down_rx.clone()),
            ))
        });
        let served = server::serve_on(listener, router, down(down_rx)).await;
        if let Some(t) = tcp_served
            && let Ok(Err(e)) = t.await
        {
            tracing::error!(error = %e, "the TCP listener failed");
        }
        // Stop scheduling, then stop live runs (they are recorded as interrupted and their
        // tickets requeued), then report.
        let _ = stop_tx.send(true);
        if let Ok(Err(e)) = runner.await {
            tracing::error!(error = %e, "the factory loop ended with an error");
        }
        printer.abort();
        served?;
        tracing::info!(workspace = %name, "factory stopped");
        Ok(())
    });
    // Work on blocking threads (a merge queue test run) is not waited for: what it leaves
    // half done, the next start recovers.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    done
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

//! `shopfloor serve`: run the factory headless. It opens the workspace, taking the store's
//! and the index's locks for as long as it runs, and serves the local API on the
//! workspace's socket until SIGINT or SIGTERM. Other `shopfloor` commands find the store
//! locked and go through the socket instead.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use shopfloor::api::auth::{REFUSAL_WINDOW, Transport};
use shopfloor::api::backend::{Remote, STORE_WAIT, is_locked};
use shopfloor::api::{AppState, listen, server};
use shopfloor::scheduler::factory::{Factory, FactorySettings};
use shopfloor::wire::FactoryEvent;
use shopfloor::wire::Holder;
use shopfloor::workspace::Workspace;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Ctx;

/// Open the workspace for a factory: its store and index locks are ours from here on.
/// A workspace a running factory holds is an `AlreadyRunning` error; one a `shopfloor mcp`
/// holds (an editor session with no factory) is asked to let go, and taken.
pub fn open(ctx: &Ctx) -> Result<Workspace> {
    let info = ctx.info()?;
    let name = info.name.clone();
    let started = std::time::Instant::now();
    let mut asked = false;
    loop {
        let err = match Workspace::open(info.clone()) {
            Ok(ws) => return Ok(ws),
            Err(e) => e,
        };
        if !is_locked(&err) {
            return Err(anyhow::Error::new(err).context(format!("opening workspace `{name}`")));
        }
        if let Ok(remote) = Remote::connect(&info) {
            if remote.holder() == Holder::Factory {
                // Say "a factory runs" when one answers, rather than "the store is locked".
                return Err(shopfloor::api::ApiError::AlreadyRunning {
                    workspace: name,
                    socket: info.socket_path(),
                }
                .into());
            }
            if !asked {
                tracing::info!("asking the shopfloor mcp holding the workspace to let it go");
                remote.release()?;
                asked = true;
            }
        }
        if started.elapsed() >= STORE_WAIT {
            return Err(anyhow::Error::new(err).context(format!(
                "opening workspace `{name}`: another shopfloor command held it for {} s",
                STORE_WAIT.as_secs()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A factory serving its API: what `serve` and `up` run.
pub struct Running {
    pub factory: Arc<Factory>,
    pub socket: PathBuf,
    down_tx: watch::Sender<bool>,
    stop_tx: watch::Sender<bool>,
    served: JoinHandle<Result<(), shopfloor::api::ApiError>>,
    sandbox_served: JoinHandle<Result<(), shopfloor::api::ApiError>>,
    tcp_served: Option<JoinHandle<Result<(), shopfloor::api::ApiError>>>,
    gate: shopfloor::api::auth::Gate,
    runner: JoinHandle<Result<(), shopfloor::scheduler::factory::FactoryError>>,
    /// `[telemetry] endpoint`'s exporter of finished runs, when set.
    telemetry: Option<shopfloor::telemetry::Exporter>,
}

/// Start the factory on `ws` and serve its API on the socket (and TCP when configured);
/// `say` gets the lines a person starting it wants to read.
pub async fn start(ws: Workspace, paused: bool, say: &dyn Fn(&str)) -> Result<Running> {
    let name = ws.info.name.clone();
    let listener = listen::bind(&ws.info).await?;
    let socket = listener.path().to_path_buf();
    // Sandboxes get this one, never the person's socket: it serves run tokens only.
    let sandbox_listener = listen::bind_sandbox(&ws.info).await?;
    let sandbox_socket = sandbox_listener.path().to_path_buf();
    say(&format!(
        "factory for workspace `{name}` listening on {}",
        socket.display()
    ));
    tracing::info!(workspace = %name, socket = %socket.display(), "factory listening");
    let tcp_addr = ws
        .config
        .api
        .listen_addr()
        .map_err(|m| anyhow::anyhow!("{}: {m}", ws.info.config_path().display()))?;
    let tcp = match tcp_addr {
        Some(addr) => {
            let l = listen::bind_tcp(addr).await?;
            say(&format!(
                "also listening on http://{} (a run's token required)",
                l.local_addr().map_or(addr, |a| a)
            ));
            Some(l)
        }
        None => None,
    };
    let cfg = FactorySettings::from_config(&ws.config);
    let factory = Factory::start(Arc::new(ws), cfg).await?;
    factory.set_paused(paused);
    factory.serve_mcp_on(sandbox_socket);
    say(&format!(
        "sandbox: {}; main: {} in {}{}",
        factory.sandbox_kind(),
        factory.main_branch(),
        factory.clone_path().display(),
        if paused {
            " (paused: no runs start)"
        } else {
            ""
        }
    ));
    // Subscribed before the factory runs, so no run's end is missed.
    let telemetry = shopfloor::telemetry::start(factory.workspace().clone(), factory.subscribe());
    let (stop_tx, stop_rx) = watch::channel(false);
    let runner = {
        let f = factory.clone();
        tokio::spawn(async move { f.run(stop_rx).await })
    };
    // One signal stops both listeners and ends the event streams.
    let (down_tx, down_rx) = watch::channel(false);
    let api = server::api(AppState::with_factory(factory.clone()).closing_on(down_rx.clone()))?;
    let down = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|d| *d).await;
    };
    let tcp_served = tcp.map(|l| {
        tokio::spawn(listen::serve_tcp_on(
            l,
            api.sandbox.clone(),
            down(down_rx.clone()),
        ))
    });
    let sandbox_served = tokio::spawn(listen::serve_on(
        sandbox_listener,
        api.sandbox,
        Transport::Sandbox,
        down(down_rx.clone()),
    ));
    let served = tokio::spawn(listen::serve_on(
        listener,
        api.person,
        Transport::Unix,
        down(down_rx),
    ));
    // Refusals are summed per window; the summaries of closed windows are written here.
    {
        let gate = api.gate.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFUSAL_WINDOW);
            loop {
                tick.tick().await;
                let g = gate.clone();
                let _ = tokio::task::spawn_blocking(move || g.flush_refusals(false)).await;
            }
        });
    }
    Ok(Running {
        factory,
        socket,
        down_tx,
        stop_tx,
        served,
        sandbox_served,
        tcp_served,
        gate: api.gate,
        runner,
        telemetry,
    })
}

impl Running {
    /// Stop listening, then stop scheduling and live runs (recorded as interrupted, their
    /// tickets requeued), then report.
    pub async fn stop(self) -> Result<()> {
        let _ = self.down_tx.send(true);
        let served = self.served.await;
        if let Ok(Err(e)) = self.sandbox_served.await {
            tracing::error!(error = %e, "the sandboxes' socket failed");
        }
        let gate = self.gate.clone();
        let _ = tokio::task::spawn_blocking(move || gate.flush_refusals(true)).await;
        if let Some(t) = self.tcp_served
            && let Ok(Err(e)) = t.await
        {
            tracing::error!(error = %e, "the TCP listener failed");
        }
        let _ = self.stop_tx.send(true);
        if let Ok(Err(e)) = self.runner.await {
            tracing::error!(error = %e, "the factory loop ended with an error");
        }
        // The runs the stop ended are exported too, if the receiver answers in time.
        if let Some(t) = self.telemetry {
            t.finish(std::time::Duration::from_secs(5)).await;
        }
        match served {
            Ok(r) => r?,
            Err(e) => tracing::error!(error = %e, "the API server task failed"),
        }
        Ok(())
    }
}

fn print_line(line: &str) {
    // Whoever started us may be waiting for these lines.
    let mut out = std::io::stdout().lock();
    // Run details carry agents' words: made safe for the terminal like every output.
    let _ = super::output::write_line(&mut out, format_args!("{line}"));
    let _ = out.flush();
}

/// A multi-threaded runtime for a factory.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn run(ctx: &Ctx, paused: bool) -> Result<()> {
    // A factory outlives whoever reads its log lines: a closed stdout must not kill it.
    // SAFETY: restoring a standard disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let ws = open(ctx)?;
    let name = ws.info.name.clone();
    let rt = runtime()?;
    let done = rt.block_on(async move {
        let running = start(ws, paused, &print_line).await?;
        running.factory.say_notices_to(print_line);
        // One line per run state change, for whoever watches the terminal.
        let mut events = running.factory.subscribe();
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
                        print_line(&format!(
                            "run {run} ticket {ticket} {agent} [{sandbox}] {state}{detail}"
                        ));
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "the event printer fell behind");
                    }
                    Err(_) => break,
                }
            }
        });
        shutdown_signal().await;
        let stopped = running.stop().await;
        printer.abort();
        stopped?;
        tracing::info!(workspace = %name, "factory stopped");
        Ok(())
    });
    // Work on blocking threads (a merge queue test run) is not waited for: what it leaves
    // half done, the next start recovers.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    done
}

/// Resolves on the first SIGINT or SIGTERM.
pub async fn shutdown_signal() {
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

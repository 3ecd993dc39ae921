//! The control room's loop: the terminal (raw mode, alternate screen, mouse, bracketed
//! paste, restored on exit, on panic and around Ctrl-Z), one `select!` over input, the
//! factory's event stream, API answers and the clock, and a redraw only when something
//! changed, at most once a frame. Effects the app asks for are carried out through the
//! API client on their own tasks; their answers come back as messages.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event,
    KeyCode, KeyModifiers,
};
use crossterm::terminal::{
    BeginSynchronizedUpdate, EndSynchronizedUpdate, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc;

use super::app::{App, Effect, Load, LoadArgs, Msg, OUTLINE_CHUNK};
use super::keymap::Keymap;
use super::theme::{self, Theme};
use crate::api::Client;
use crate::wire::{QueueAction, StepSearch};

/// The shortest time between two frames: bursts of events become one redraw.
const FRAME: Duration = Duration::from_millis(33);

/// How the control room looks and who sits at it.
#[derive(Clone, Debug)]
pub struct Options {
    /// A theme name: a built-in (`dark`, `light`, `high-contrast`) or a user theme.
    pub theme: String,
    /// Who approves and rejects: the person at the terminal.
    pub user: String,
    /// Bell and desktop notifications (`[notify] terminal`).
    pub notify: bool,
}

impl Options {
    pub fn from_env() -> Options {
        Options {
            theme: std::env::var("SHOPFLOOR_THEME")
                .ok()
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "dark".into()),
            user: crate::api::auth::local_user(),
            notify: true,
        }
    }
}

/// The user's config directory for the control room (`themes/`, `keymap.toml`).
pub fn config_dir() -> Option<PathBuf> {
    theme::user_dir().and_then(|d| d.parent().map(|p| p.to_path_buf()))
}

/// The app as the options and the user's files make it, with what was wrong with them.
pub fn build_app(opts: &Options) -> (App, Vec<String>) {
    let dir = config_dir();
    let (theme, mut warnings) = Theme::load(
        &opts.theme,
        theme::user_dir().as_deref(),
        theme::no_color_from_env(),
    );
    let (keymap, kw) = Keymap::load(dir.map(|d| d.join("keymap.toml")).as_deref());
    warnings.extend(kw);
    let app = App::new(keymap, theme, opts.user.clone(), jiff::Timestamp::now());
    (app, warnings)
}

fn restore_terminal() {
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = crossterm::execute!(
        std::io::stdout(),
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

fn enter_terminal() -> std::io::Result<()> {
    crossterm::terminal::enable_raw_mode()?;
    crossterm::execute!(
        std::io::stdout(),
        EnterAlternateScreen,
        EnableMouseCapture,
        EnableBracketedPaste
    )
}

/// Owns the terminal while the control room runs; gives it back on drop, and on panic
/// through the hook it installs (so a panic message lands on a usable screen).
struct Tui {
    terminal: Terminal<CrosstermBackend<std::io::Stdout>>,
}

impl Tui {
    fn enter() -> std::io::Result<Tui> {
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore_terminal();
                previous(info);
            }));
        });
        enter_terminal()?;
        let terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
        Ok(Tui { terminal })
    }

    /// Ctrl-Z: give the terminal back, stop until `fg`, take it again.
    fn suspend(&mut self) -> std::io::Result<()> {
        restore_terminal();
        // SAFETY: raising a signal at ourselves; the default SIGTSTP action stops the
        // process, and SIGCONT (fg) resumes it here.
        unsafe {
            libc::raise(libc::SIGTSTP);
        }
        enter_terminal()?;
        self.terminal.clear()
    }

    fn draw(&mut self, app: &App) -> std::io::Result<()> {
        let mut out = std::io::stdout();
        crossterm::queue!(out, BeginSynchronizedUpdate)?;
        self.terminal.draw(|f| super::view::draw(f, app))?;
        crossterm::execute!(out, EndSynchronizedUpdate)?;
        out.flush()
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Read terminal input on a thread of its own (crossterm's read blocks), until `stop`.
/// While `paused` (suspended) it leaves the terminal alone.
fn spawn_input(tx: mpsc::UnboundedSender<Msg>, stop: Arc<AtomicBool>, paused: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("tui-input".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if paused.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                match crossterm::event::poll(Duration::from_millis(100)) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(_) => break,
                }
                let msg = match crossterm::event::read() {
                    Ok(Event::Key(k)) => Msg::Key(k),
                    Ok(Event::Mouse(m)) => Msg::Mouse(m),
                    Ok(Event::Paste(p)) => Msg::Paste(p),
                    Ok(Event::Resize(..)) => Msg::Tick(jiff::Timestamp::now()),
                    Ok(_) => continue,
                    Err(_) => break,
                };
                if tx.send(msg).is_err() {
                    break;
                }
            }
        })
        .expect("the input thread starts");
}

/// Follow the factory's events for as long as the control room runs, reconnecting when
/// the stream breaks (a factory restart).
fn spawn_events(client: Client, tx: mpsc::UnboundedSender<Msg>) {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(250);
        loop {
            let tx2 = tx.clone();
            let r = client
                .follow_events(|e| tx2.send(Msg::Event(e)).is_ok())
                .await;
            if tx.is_closed() {
                return;
            }
            let why = match r {
                Ok(()) => "the factory ended its event stream".to_string(),
                Err(e) => e.to_string(),
            };
            let _ = tx.send(Msg::Disconnected(why));
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            if client.health().await.is_ok() {
                backoff = Duration::from_millis(250);
                let _ = tx.send(Msg::Connected);
            }
        }
    });
}

/// Carry out one effect; its answer comes back as a message.
pub async fn perform(client: &Client, user: &str, effect: Effect) -> Option<Msg> {
    let fail = |load: Option<Load>, e: crate::api::ApiError| Msg::Failed {
        load,
        message: e.to_string(),
    };
    let msg = match effect {
        // The loop writes notifications to the terminal itself, between frames.
        Effect::Quit | Effect::Notify(_) => return None,
        Effect::Load(load, LoadArgs { from }) => {
            let r = match load {
                Load::Status => client.status().await.map(Msg::Status),
                Load::Runs => client.runs().await.map(Msg::Runs),
                Load::Tickets => client.tickets(None).await.map(Msg::Tickets),
                Load::Queue => client.queue().await.map(Msg::Queue),
                Load::QueueDetail(id) => client
                    .queue_entry(id)
                    .await
                    .map(|d| Msg::QueueDetail(Box::new(d))),
                Load::PaneSteps(run) => client
                    .steps(run, from, from + 500)
                    .await
                    .map(|steps| Msg::PaneSteps { run, steps }),
                Load::Outline(run) => client
                    .outline(run, from, from + OUTLINE_CHUNK)
                    .await
                    .map(|rows| Msg::Outline { run, from, rows }),
                Load::Step(run, seq) => client.step(run, seq).await.map(|s| Msg::Step(Box::new(s))),
            };
            r.unwrap_or_else(|e| fail(Some(load), e))
        }
        Effect::FileAt { run, seq, path } => Msg::FileAt {
            run,
            seq,
            file: client
                .file_at(run, seq, &path)
                .await
                .map_err(|e| e.to_string()),
        },
        Effect::SearchRun { run, query } => {
            let q = StepSearch {
                query: query.clone(),
                run: Some(run),
                agent: None,
                kind: None,
                limit: 1000,
            };
            match client.search_steps(&q).await {
                Ok(found) => {
                    let mut seqs: Vec<u64> = found.into_iter().map(|f| f.step.seq).collect();
                    seqs.sort_unstable();
                    seqs.dedup();
                    Msg::RunHits { run, query, seqs }
                }
                Err(e) => fail(None, e),
            }
        }
        Effect::SearchMemory { generation, query } => match client.search_memory(&query).await {
            Ok(hits) => Msg::Memories { generation, hits },
            Err(e) => fail(None, e),
        },
        Effect::KillRun(id) => match client.kill_run(id).await {
            Ok(_) => Msg::Done(format!("run {id} killed")),
            Err(e) => fail(None, e),
        },
        Effect::RetryRun(id) => match client.retry_run(id).await {
            Ok(t) => Msg::Done(format!("ticket {} queued again", t.id)),
            Err(e) => fail(None, e),
        },
        Effect::AddTicket(t) => match client.add_ticket(&t).await {
            Ok(t) => Msg::Done(format!("ticket {} added: {}", t.id, t.title)),
            Err(e) => fail(None, e),
        },
        Effect::CancelTicket(id) => match client.cancel_ticket(id).await {
            Ok(_) => Msg::Done(format!("ticket {id} cancelled")),
            Err(e) => fail(None, e),
        },
        Effect::SetPriority(id, p) => match client.set_priority(id, p).await {
            Ok(_) => Msg::Done(format!("ticket {id} now has priority {p}")),
            Err(e) => fail(None, e),
        },
        Effect::QueueAct { id, verb, note } => {
            let a = QueueAction {
                by: user.to_string(),
                note,
                ..QueueAction::default()
            };
            match client.queue_act(id, verb, &a).await {
                Ok(e) => Msg::Done(format!(
                    "entry {id} {}: now {}",
                    match verb {
                        "approve" => "approved",
                        "reject" => "rejected",
                        "send-back" => "sent back to its agent",
                        _ => "moved to the front",
                    },
                    e.state.name()
                )),
                Err(e) => fail(None, e),
            }
        }
        Effect::QueueComment {
            id,
            path,
            line,
            text,
        } => {
            let a = QueueAction {
                by: user.to_string(),
                note: Some(text),
                path: Some(path.clone()),
                line: Some(line),
            };
            match client.queue_act(id, "comment", &a).await {
                Ok(e) => Msg::Done(format!(
                    "comment on {path}:{line} added to entry {id} ({} in all; R sends them back)",
                    e.comments.len()
                )),
                Err(e) => fail(None, e),
            }
        }
        Effect::AddMemory(m) => match client.add_memory(&m).await {
            Ok(m) => Msg::Done(format!("memory {} added", m.id)),
            Err(e) => fail(None, e),
        },
    };
    Some(msg)
}

/// Run the control room on the factory `client` talks to, until the user quits (or
/// `shutdown` resolves: the factory of `up` stopping on a signal).
pub async fn run(
    client: Client,
    opts: Options,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let (mut app, warnings) = build_app(&opts);
    if let Some(w) = warnings.first() {
        app.update(Msg::Failed {
            load: None,
            message: w.clone(),
        });
    }
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let stop = Arc::new(AtomicBool::new(false));
    let paused = Arc::new(AtomicBool::new(false));
    let mut tui = Tui::enter()?;
    spawn_input(tx.clone(), stop.clone(), paused.clone());
    spawn_events(client.clone(), tx.clone());
    // The first message loads everything, as after any reconnection.
    let _ = tx.send(Msg::Connected);
    let run_effect = |fx: Effect, tx: &mpsc::UnboundedSender<Msg>| {
        let c = client.clone();
        let tx = tx.clone();
        let user = opts.user.clone();
        tokio::spawn(async move {
            if let Some(m) = perform(&c, &user, fx).await {
                let _ = tx.send(m);
            }
        });
    };
    tokio::pin!(shutdown);
    let mut dirty = true;
    let mut last_draw = Instant::now() - FRAME;
    let result: anyhow::Result<()> = loop {
        if dirty && last_draw.elapsed() >= FRAME {
            tui.draw(&app)?;
            dirty = false;
            last_draw = Instant::now();
        }
        let redraw_in = FRAME.saturating_sub(last_draw.elapsed());
        let tick = app.tick_every();
        let mut msgs = vec![];
        tokio::select! {
            m = rx.recv() => match m {
                Some(m) => msgs.push(m),
                None => break Ok(()),
            },
            _ = tokio::time::sleep(tick.unwrap_or(Duration::from_secs(3600))), if tick.is_some() => {
                msgs.push(Msg::Tick(jiff::Timestamp::now()));
            }
            _ = tokio::time::sleep(redraw_in), if dirty => continue,
            _ = &mut shutdown => break Ok(()),
        }
        // Take whatever else is waiting: a burst of events is one update, one frame.
        while msgs.len() < 4096 {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        let mut quit = false;
        // Elapsed times and ages are read against the time the batch is handled.
        app.now = jiff::Timestamp::now();
        for m in msgs {
            if let Msg::Key(k) = &m
                && k.code == KeyCode::Char('z')
                && k.modifiers.contains(KeyModifiers::CONTROL)
            {
                paused.store(true, Ordering::Relaxed);
                tui.suspend()?;
                paused.store(false, Ordering::Relaxed);
                continue;
            }
            for fx in app.update(m) {
                if fx == Effect::Quit {
                    quit = true;
                } else if let Effect::Notify(n) = &fx {
                    // Written between frames, straight to the terminal: escape sequences
                    // the screen does not show, which the terminal turns into a bell and a
                    // desktop notification.
                    if opts.notify {
                        use std::io::Write;
                        let mut out = std::io::stdout();
                        let _ = out.write_all(crate::notify::terminal_sequence(n).as_bytes());
                        let _ = out.flush();
                    }
                } else {
                    run_effect(fx, &tx);
                }
            }
        }
        dirty = true;
        if quit || app.quit {
            break Ok(());
        }
    };
    stop.store(true, Ordering::Relaxed);
    drop(tui);
    result
}

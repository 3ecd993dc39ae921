//! The control room's state and how it changes: `App::update` takes a message (a key, a
//! mouse event, a tick, a factory event, an API answer) and returns effects as data (load
//! this, approve that). It performs no I/O and holds no store handle, so every screen and
//! key sequence is tested without a terminal or a factory; `runtime` carries the effects
//! out through the API client and feeds the answers back in. Here is what is common to
//! every screen (loads, layers, keys, the mouse); each screen in `screens` adds to `App`
//! what is its own, and `update` and `action` hand over to it.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use jiff::Timestamp;
use ratatui::layout::{Position, Rect};

pub use super::effect::{Effect, Load, LoadArgs};
use super::forms::{Confirm, FormOutcome, MemoryForm, Prompt, PromptFor, TicketForm};
use super::keymap::{Action, Key, Keymap, Lookup};
use super::screens::fleet::state::{FleetState, PANE_EVERY};
use super::screens::memory::state::MemoryScreen;
use super::screens::queue::state::QueueScreen;
pub use super::screens::queue::state::split_patch;
pub use super::screens::replay::state::OUTLINE_CHUNK;
use super::screens::replay::state::{ReplayState, SPEEDS};
use super::screens::tickets::state::TicketsState;
use super::theme::Theme;
use crate::model::{Run, RunId, Step, Ticket, TicketId};
use crate::wire::FactoryEvent;
use crate::wire::{FactoryStatus, MemoryHit, OutlineRow, QueueDetail, QueueView};

/// The five screens, in tab order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Screen {
    Fleet,
    Tickets,
    Replay,
    Queue,
    Memory,
}

impl Screen {
    pub const ALL: [Screen; 5] = [
        Screen::Fleet,
        Screen::Tickets,
        Screen::Replay,
        Screen::Queue,
        Screen::Memory,
    ];

    /// The keymap mode of the screen.
    pub fn mode(self) -> &'static str {
        match self {
            Screen::Fleet => "fleet",
            Screen::Tickets => "tickets",
            Screen::Replay => "replay",
            Screen::Queue => "queue",
            Screen::Memory => "memory",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Screen::Fleet => "Fleet",
            Screen::Tickets => "Tickets",
            Screen::Replay => "Replay",
            Screen::Queue => "Merge queue",
            Screen::Memory => "Memory",
        }
    }

    pub(in crate::tui) fn index(self) -> usize {
        Screen::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
}

/// What comes in: input, time, and what the factory and its API said.
#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Paste(String),
    /// The clock moved on (the fleet's elapsed times, replay's playback).
    Tick(Timestamp),
    Event(FactoryEvent),
    /// The event stream is up (again): reload everything.
    Connected,
    Disconnected(String),
    Status(FactoryStatus),
    Runs(Vec<Run>),
    Tickets(Vec<Ticket>),
    Queue(QueueView),
    QueueDetail(Box<QueueDetail>),
    /// Steps of a run for its pane, from `from`.
    PaneSteps {
        run: RunId,
        steps: Vec<Step>,
    },
    Outline {
        run: RunId,
        from: u64,
        rows: Vec<OutlineRow>,
    },
    /// A whole step, for replay's detail.
    Step(Box<Step>),
    /// A file as it was after a step, for replay's file view.
    FileAt {
        run: RunId,
        seq: u64,
        file: Result<crate::wire::FileAtStep, String>,
    },
    RunHits {
        run: RunId,
        query: String,
        seqs: Vec<u64>,
    },
    Memories {
        generation: u64,
        hits: Vec<MemoryHit>,
    },
    /// An action went through; say so.
    Done(String),
    /// A load or an action failed; `load` names what to try again later.
    Failed {
        load: Option<Load>,
        message: String,
    },
}

/// A clickable region, recorded while drawing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hit {
    Tab(Screen),
    Pane(usize),
    Row(usize),
}

/// An overlay over the screen; the top one takes the keys.
pub enum Layer {
    Help,
    Confirm(Confirm),
    Prompt(Box<Prompt>),
    TicketForm(Box<TicketForm>),
    MemoryForm(Box<MemoryForm>),
    MemoryFilter,
}

/// A message shown in the header until the next key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flash {
    pub text: String,
    pub error: bool,
}

pub struct App {
    pub screen: Screen,
    pub keymap: Keymap,
    pub theme: Theme,
    /// Who acts on the queue: the person at the terminal.
    pub user: String,
    pub now: Timestamp,
    pub status: FactoryStatus,
    pub connected: bool,
    pub runs: Vec<Run>,
    pub tickets: Vec<Ticket>,
    pub titles: HashMap<TicketId, String>,
    pub fleet: FleetState,
    pub board: TicketsState,
    pub replay: ReplayState,
    pub queue: QueueScreen,
    pub memory: MemoryScreen,
    pub layers: Vec<Layer>,
    pub flash: Option<Flash>,
    pub quit: bool,
    /// Keys typed so far of a sequence (`g g`).
    pub(in crate::tui) pending_keys: Vec<Key>,
    pub(in crate::tui) inflight: HashSet<Load>,
    pub(in crate::tui) stale: HashSet<Load>,
    /// Clickable regions of the last frame.
    pub hits: RefCell<Vec<(Rect, Hit)>>,
    /// Body rows of the last frame, for page moves.
    pub page: std::cell::Cell<u16>,
}

impl App {
    pub fn new(keymap: Keymap, theme: Theme, user: String, now: Timestamp) -> App {
        let mut memory = MemoryScreen {
            typing: true,
            ..Default::default()
        };
        memory
            .query
            .set_placeholder_text("type to search the fleet's memory");
        App {
            screen: Screen::Fleet,
            keymap,
            theme,
            user,
            now,
            status: FactoryStatus::default(),
            connected: false,
            runs: vec![],
            tickets: vec![],
            titles: HashMap::new(),
            fleet: FleetState::default(),
            board: TicketsState::default(),
            replay: ReplayState::new(),
            queue: QueueScreen::default(),
            memory,
            layers: vec![],
            flash: None,
            quit: false,
            pending_keys: vec![],
            inflight: HashSet::new(),
            stale: HashSet::new(),
            hits: RefCell::new(vec![]),
            page: std::cell::Cell::new(20),
        }
    }

    /// What to load first.
    pub fn start(&mut self) -> Vec<Effect> {
        let mut fx = vec![];
        self.reload_all(&mut fx);
        fx
    }

    pub(in crate::tui) fn reload_all(&mut self, fx: &mut Vec<Effect>) {
        for l in [Load::Status, Load::Runs, Load::Tickets, Load::Queue] {
            self.load(l, LoadArgs::default(), fx);
        }
        if let Some(e) = self.queue.selected_entry() {
            let id = e.id;
            self.load(Load::QueueDetail(id), LoadArgs::default(), fx);
        }
    }

    /// Ask for `what` unless it is already on its way; then ask again when it lands.
    pub(in crate::tui) fn load(&mut self, what: Load, args: LoadArgs, fx: &mut Vec<Effect>) {
        if self.inflight.contains(&what) {
            self.stale.insert(what);
            return;
        }
        self.inflight.insert(what);
        fx.push(Effect::Load(what, args));
    }

    /// An answer for `what` arrived: true if it must be asked again.
    pub(in crate::tui) fn landed(&mut self, what: Load) -> bool {
        self.inflight.remove(&what);
        self.stale.remove(&what)
    }

    /// How soon the app wants a tick: playback's pace, else once a second while anything
    /// on screen counts time; None when nothing changes with time alone.
    pub fn tick_every(&self) -> Option<std::time::Duration> {
        if self.screen == Screen::Replay && self.replay.playing {
            return Some(std::time::Duration::from_millis(
                1000 / SPEEDS[self.replay.speed.min(SPEEDS.len() - 1)] as u64,
            ));
        }
        if self.fleet.by_run.values().any(|p| p.due) {
            return Some(PANE_EVERY.unsigned_abs());
        }
        let live = self.fleet.by_run.values().any(|p| p.run.state.is_live());
        (self.screen == Screen::Fleet && live).then(|| std::time::Duration::from_secs(1))
    }

    pub fn mode(&self) -> &'static str {
        self.screen.mode()
    }

    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        let mut fx = vec![];
        match msg {
            Msg::Key(k) => {
                if k.kind != crossterm::event::KeyEventKind::Release {
                    self.flash = None;
                    self.key(k, &mut fx);
                }
            }
            Msg::Mouse(m) => self.mouse(m, &mut fx),
            Msg::Paste(text) => self.paste(&text, &mut fx),
            Msg::Tick(now) => {
                self.now = now;
                let due: Vec<RunId> = self
                    .fleet
                    .by_run
                    .iter()
                    .filter(|(_, p)| p.due)
                    .map(|(id, _)| *id)
                    .collect();
                for run in due {
                    self.pane_fetch(run, &mut fx);
                }
                self.play_tick(&mut fx);
            }
            Msg::Connected => {
                if !self.connected && self.flash.as_ref().is_some_and(|f| f.error) {
                    self.say("the factory answers again");
                }
                self.connected = true;
                self.reload_all(&mut fx);
            }
            Msg::Disconnected(why) => {
                self.connected = false;
                self.flash = Some(Flash {
                    text: format!("the factory does not answer ({why}); retrying"),
                    error: true,
                });
            }
            Msg::Event(e) => self.event(e, &mut fx),
            Msg::Status(s) => {
                self.status = s;
                if self.landed(Load::Status) {
                    self.load(Load::Status, LoadArgs::default(), &mut fx);
                }
            }
            Msg::Runs(runs) => {
                self.runs = runs;
                self.sync_panes(&mut fx);
                if self.landed(Load::Runs) {
                    self.load(Load::Runs, LoadArgs::default(), &mut fx);
                }
            }
            Msg::Tickets(ts) => self.on_tickets(ts, &mut fx),
            Msg::Queue(v) => self.on_queue(v, &mut fx),
            Msg::QueueDetail(d) => self.on_queue_detail(*d, &mut fx),
            Msg::PaneSteps { run, steps } => self.on_pane_steps(run, &steps),
            Msg::Outline { run, from, rows } => self.outline(run, from, rows, &mut fx),
            Msg::Step(s) => self.on_step(*s, &mut fx),
            Msg::FileAt { run, seq, file } => self.on_file_at(run, seq, file, &mut fx),
            Msg::RunHits { run, query, seqs } => self.on_run_hits(run, &query, seqs, &mut fx),
            Msg::Memories { generation, hits } => self.on_memories(generation, hits),
            Msg::Done(text) => {
                self.say(&text);
                // An action changed something: show it now rather than at the next event.
                self.reload_all(&mut fx);
            }
            Msg::Failed { load, message } => {
                if let Some(l) = load {
                    self.inflight.remove(&l);
                    self.stale.remove(&l);
                }
                self.flash = Some(Flash {
                    text: message,
                    error: true,
                });
            }
        }
        fx
    }

    pub(in crate::tui) fn say(&mut self, text: &str) {
        self.flash = Some(Flash {
            text: text.to_string(),
            error: false,
        });
    }

    pub(in crate::tui) fn refuse(&mut self, text: &str) {
        self.flash = Some(Flash {
            text: text.to_string(),
            error: true,
        });
    }

    // ---- factory events ----

    fn event(&mut self, e: FactoryEvent, fx: &mut Vec<Effect>) {
        for n in crate::notify::of_event(&self.status.workspace, &e) {
            fx.push(Effect::Notify(n));
        }
        match e {
            FactoryEvent::Quiet { .. } => {}
            FactoryEvent::RunState { .. } => {
                self.load(Load::Runs, LoadArgs::default(), fx);
                self.load(Load::Status, LoadArgs::default(), fx);
            }
            FactoryEvent::Steps { run, total, .. } => {
                if let Some(p) = self.fleet.by_run.get_mut(&run) {
                    p.known = p.known.max(total);
                    self.pane_fetch(run, fx);
                }
                if self.replay.run == Some(run) && self.replay.outline_done {
                    let from = self.replay.rows.last().map_or(0, |r| r.seq + 1);
                    if total > from {
                        self.load(Load::Outline(run), LoadArgs { from }, fx);
                    }
                }
            }
            FactoryEvent::TicketState { .. } => {
                self.load(Load::Tickets, LoadArgs::default(), fx);
                self.load(Load::Status, LoadArgs::default(), fx);
            }
            FactoryEvent::Queue { .. } => {
                self.load(Load::Queue, LoadArgs::default(), fx);
                self.load(Load::Status, LoadArgs::default(), fx);
                self.load(Load::Tickets, LoadArgs::default(), fx);
                if let Some(e) = self.queue.selected_entry() {
                    let id = e.id;
                    self.load(Load::QueueDetail(id), LoadArgs::default(), fx);
                }
            }
            FactoryEvent::Resync { .. } => self.reload_all(fx),
            FactoryEvent::HostDown { .. } => self.load(Load::Status, LoadArgs::default(), fx),
        }
    }

    // ---- keys ----

    pub(in crate::tui) fn key(&mut self, k: KeyEvent, fx: &mut Vec<Effect>) {
        // Ctrl-C always quits, whatever has the keys.
        if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
            self.quit = true;
            fx.push(Effect::Quit);
            return;
        }
        if let Some(layer) = self.layers.pop() {
            self.layer_key(layer, k, fx);
            return;
        }
        if self.screen == Screen::Memory && self.memory.typing && self.memory_typing_key(k, fx) {
            return;
        }
        let Some(key) = Key::from_event(&k) else {
            return;
        };
        self.pending_keys.push(key);
        let typed = self.pending_keys.clone();
        match self.keymap.lookup(self.mode(), &typed) {
            Lookup::Prefix => {}
            Lookup::Action(a) => {
                self.pending_keys.clear();
                self.action(a, fx);
            }
            Lookup::None => {
                self.pending_keys.clear();
                // A sequence that went nowhere: the last key may still mean something alone.
                if typed.len() > 1
                    && let Lookup::Action(a) = self.keymap.lookup(self.mode(), &[key])
                {
                    self.action(a, fx);
                }
            }
        }
    }

    fn paste(&mut self, text: &str, fx: &mut Vec<Effect>) {
        match self.layers.last_mut() {
            Some(Layer::Prompt(p)) => {
                p.area.insert_str(text);
            }
            Some(Layer::TicketForm(f)) => f.paste(text),
            Some(Layer::MemoryForm(f)) => f.paste(text),
            _ if self.screen == Screen::Memory => {
                let _ = self.memory.query.insert_str(text.replace('\n', " "));
                self.memory.typing = true;
                self.search_memory(fx);
            }
            _ => {}
        }
    }

    fn layer_key(&mut self, layer: Layer, k: KeyEvent, fx: &mut Vec<Effect>) {
        match layer {
            Layer::Help => {
                // Any key closes help; only `?` and Esc are swallowed.
                if !matches!(
                    k.code,
                    KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q')
                ) {
                    self.key(k, fx);
                }
            }
            Layer::Confirm(c) => match k.code {
                KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                    fx.push(c.on_yes);
                }
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q') => {
                    self.say("left as it was");
                }
                _ => self.layers.push(Layer::Confirm(c)),
            },
            Layer::Prompt(mut p) => match k.code {
                KeyCode::Esc => self.say("left as it was"),
                KeyCode::Enter if !k.modifiers.contains(KeyModifiers::ALT) => {
                    let text = p.text();
                    self.prompt_done(p.purpose, text, fx);
                }
                _ => {
                    p.area.input(k);
                    self.layers.push(Layer::Prompt(p));
                }
            },
            Layer::TicketForm(mut f) => match f.key(k) {
                FormOutcome::Open => self.layers.push(Layer::TicketForm(f)),
                FormOutcome::Cancelled => self.say("no ticket added"),
                FormOutcome::Submit => match f.ticket() {
                    Ok(t) => fx.push(Effect::AddTicket(t)),
                    Err(e) => {
                        f.error = Some(e);
                        self.layers.push(Layer::TicketForm(f));
                    }
                },
            },
            Layer::MemoryForm(mut f) => match f.key(k) {
                FormOutcome::Open => self.layers.push(Layer::MemoryForm(f)),
                FormOutcome::Cancelled => self.say("no memory added"),
                FormOutcome::Submit => match f.memory(&self.user) {
                    Ok(m) => fx.push(Effect::AddMemory(m)),
                    Err(e) => {
                        f.error = Some(e);
                        self.layers.push(Layer::MemoryForm(f));
                    }
                },
            },
            Layer::MemoryFilter => self.filter_key(k, fx),
        }
    }

    fn prompt_done(&mut self, purpose: PromptFor, text: String, fx: &mut Vec<Effect>) {
        let text = text.trim().to_string();
        match purpose {
            PromptFor::Comment { entry, path, line } => {
                if text.is_empty() {
                    self.refuse("an empty comment says nothing; c and type one");
                    return;
                }
                fx.push(Effect::QueueComment {
                    id: entry,
                    path,
                    line,
                    text,
                });
            }
            PromptFor::Reject(id) => {
                if text.is_empty() {
                    self.refuse("a rejection needs a reason; press R and type one");
                    return;
                }
                fx.push(Effect::QueueAct {
                    id,
                    verb: "reject",
                    note: Some(text),
                });
            }
            PromptFor::Priority(id) => match text.parse::<i32>() {
                Ok(p) => fx.push(Effect::SetPriority(id, p)),
                Err(_) => self.refuse(&format!(
                    "`{text}` is not a priority; type a whole number (higher runs first)"
                )),
            },
            PromptFor::Search => self.search_run(text, fx),
        }
    }

    pub(in crate::tui) fn action(&mut self, a: Action, fx: &mut Vec<Effect>) {
        match a {
            Action::Quit => {
                self.quit = true;
                fx.push(Effect::Quit);
                return;
            }
            Action::Help => {
                self.layers.push(Layer::Help);
                return;
            }
            Action::NextScreen | Action::PrevScreen => {
                let i = self.screen.index();
                let n = Screen::ALL.len();
                let j = if a == Action::NextScreen {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.switch(Screen::ALL[j], fx);
                return;
            }
            Action::ScreenFleet => return self.switch(Screen::Fleet, fx),
            Action::ScreenTickets => return self.switch(Screen::Tickets, fx),
            Action::ScreenReplay => return self.switch(Screen::Replay, fx),
            Action::ScreenQueue => return self.switch(Screen::Queue, fx),
            Action::ScreenMemory => return self.switch(Screen::Memory, fx),
            _ => {}
        }
        match self.screen {
            Screen::Fleet => self.fleet_action(a, fx),
            Screen::Tickets => self.tickets_action(a, fx),
            Screen::Replay => self.replay_action(a, fx),
            Screen::Queue => self.queue_action(a, fx),
            Screen::Memory => self.memory_action(a, fx),
        }
    }

    pub fn switch(&mut self, to: Screen, fx: &mut Vec<Effect>) {
        self.screen = to;
        match to {
            Screen::Memory => {
                self.memory.typing = true;
                if !self.memory.searched {
                    self.search_memory(fx);
                }
            }
            Screen::Queue => self.queue_detail(fx),
            _ => {}
        }
    }

    // ---- mouse ----

    fn mouse(&mut self, m: MouseEvent, fx: &mut Vec<Effect>) {
        if !self.layers.is_empty() {
            return;
        }
        match m.kind {
            MouseEventKind::ScrollDown => self.action(Action::Down, fx),
            MouseEventKind::ScrollUp => self.action(Action::Up, fx),
            MouseEventKind::Down(MouseButton::Left) => {
                let at = Position::new(m.column, m.row);
                let hit = self
                    .hits
                    .borrow()
                    .iter()
                    .find(|(r, _)| r.contains(at))
                    .map(|(_, h)| *h);
                match hit {
                    Some(Hit::Tab(s)) => self.switch(s, fx),
                    Some(Hit::Pane(i)) => self.fleet.selected = i,
                    Some(Hit::Row(i)) => self.select_row(i, fx),
                    None => {}
                }
            }
            _ => {}
        }
    }

    fn select_row(&mut self, i: usize, fx: &mut Vec<Effect>) {
        match self.screen {
            Screen::Queue => self.queue_click(i, fx),
            Screen::Memory => self.memory_click(i),
            Screen::Replay => self.replay_click(i, fx),
            Screen::Tickets => self.tickets_click(i),
            Screen::Fleet => {}
        }
    }
}

//! The control room's state and how it changes: `App::update` takes a message (a key, a
//! mouse event, a tick, a factory event, an API answer) and returns effects as data (load
//! this, approve that). It performs no I/O and holds no store handle, so every screen and
//! key sequence is tested without a terminal or a factory; `runtime` carries the effects
//! out through the API client and feeds the answers back in.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use jiff::Timestamp;
use ratatui::layout::{Position, Rect};

use super::fleet::{self, Pane};
use super::forms::{Confirm, FormOutcome, MemoryForm, Prompt, PromptFor, TicketForm};
use super::keymap::{Key, Keymap, Lookup};
use super::replay::{Cursor, Mark, Move};
use super::theme::Theme;
use crate::api::wire::{
    FactoryStatus, MemoryHit, MemorySearch, NewMemory, NewTicket, OutlineRow, QueueDetail,
    QueueView,
};
use crate::model::{MemoryKind, QueueEntryId, QueueState, Run, RunId, Step, Ticket, TicketId};
use crate::scheduler::factory::FactoryEvent;

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

    fn index(self) -> usize {
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
        file: Result<crate::api::wire::FileAtStep, String>,
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

/// What can be loaded; the app keeps at most one request of each in flight and asks
/// again when the answer comes back stale, which is what coalesces a burst of events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Load {
    Status,
    Runs,
    Tickets,
    Queue,
    QueueDetail(QueueEntryId),
    PaneSteps(RunId),
    Outline(RunId),
    Step(RunId, u64),
}

/// What the app wants done; `runtime` does it through the API.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    Load(Load, LoadArgs),
    FileAt {
        run: RunId,
        seq: u64,
        path: String,
    },
    SearchRun {
        run: RunId,
        query: String,
    },
    SearchMemory {
        generation: u64,
        query: MemorySearch,
    },
    KillRun(RunId),
    RetryRun(RunId),
    AddTicket(NewTicket),
    CancelTicket(TicketId),
    SetPriority(TicketId, i32),
    QueueAct {
        id: QueueEntryId,
        verb: &'static str,
        note: Option<String>,
    },
    /// A person's comment on a line of an entry's diff.
    QueueComment {
        id: QueueEntryId,
        path: String,
        line: u32,
        text: String,
    },
    AddMemory(NewMemory),
    /// Ring the bell and raise a desktop notification: a person is needed.
    Notify(crate::notify::Notice),
    Quit,
}

/// Where a load starts (steps and outlines are fetched from what is already held).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadArgs {
    pub from: u64,
}

/// Rows of an outline fetched at once: the first screenful arrives fast, the rest follow.
pub const OUTLINE_CHUNK: u64 = 25_000;
/// Whole steps kept for replay's detail pane.
const STEP_CACHE: usize = 256;
/// A pane asks for its new steps at most this often: 16 agents each flushing steps 20
/// times a second become at most 80 small requests a second, not 320.
pub const PANE_EVERY: jiff::SignedDuration = jiff::SignedDuration::from_millis(200);
/// Playback speeds, steps a second.
pub const SPEEDS: [u32; 7] = [1, 2, 5, 10, 25, 50, 100];

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

#[derive(Default)]
pub struct FleetState {
    pub panes: Vec<RunId>,
    pub by_run: HashMap<RunId, Pane>,
    pub selected: usize,
    pub zoomed: bool,
}

#[derive(Default)]
pub struct TicketsState {
    pub column: usize,
    pub row: usize,
}

/// The board's columns, in order.
pub const BOARD: [crate::model::TicketState; 6] = [
    crate::model::TicketState::Queued,
    crate::model::TicketState::Running,
    crate::model::TicketState::Review,
    crate::model::TicketState::Merged,
    crate::model::TicketState::Failed,
    crate::model::TicketState::Cancelled,
];

#[derive(Default)]
pub struct ReplayState {
    /// The run on screen; None shows the run list.
    pub run: Option<RunId>,
    pub pick: usize,
    pub rows: Vec<OutlineRow>,
    pub cursor: Cursor,
    /// The outline is whole (for a live run: up to what the last event said).
    pub outline_done: bool,
    pub steps: HashMap<u64, Step>,
    step_order: Vec<u64>,
    pub playing: bool,
    pub speed: usize,
    pub search: String,
    pub hits: Vec<u64>,
    pub show_file: bool,
    pub scroll: u16,
    /// The step to select once the outline reaches it (a jump from memory).
    pub pending_jump: Option<u64>,
    /// Files as they were after a step (by the step), or why not.
    pub files: HashMap<u64, Result<crate::api::wire::FileAtStep, String>>,
    file_loading: Option<u64>,
}

impl ReplayState {
    fn open(&mut self, run: RunId) {
        *self = ReplayState {
            run: Some(run),
            pick: self.pick,
            speed: 2,
            ..Default::default()
        };
    }

    pub fn at_seq(&self) -> Option<u64> {
        self.rows.get(self.cursor.at).map(|r| r.seq)
    }

    fn remember(&mut self, s: Step) {
        if !self.steps.contains_key(&s.seq) {
            self.step_order.push(s.seq);
        }
        self.steps.insert(s.seq, s);
        while self.step_order.len() > STEP_CACHE {
            let old = self.step_order.remove(0);
            self.steps.remove(&old);
        }
    }

    /// The tool result answering the tool call at `seq`, if the outline has it near.
    pub fn result_of(&self, seq: u64) -> Option<u64> {
        let at = self.rows.binary_search_by_key(&seq, |r| r.seq).ok()?;
        self.rows[at + 1..]
            .iter()
            .take(64)
            .find(|r| r.parent == Some(seq))
            .map(|r| r.seq)
    }
}

#[derive(Default)]
pub struct QueueScreen {
    pub view: QueueView,
    pub selected: usize,
    pub detail: Option<QueueDetail>,
    pub show_log: bool,
    pub file: usize,
    pub scroll: u16,
    /// Keys move a cursor over the diff's lines (`l`), not over the entries.
    pub diff_focus: bool,
    /// The cursor's line in the shown file's part of the diff.
    pub line: usize,
}

impl QueueScreen {
    pub fn selected_entry(&self) -> Option<&crate::model::QueueEntry> {
        self.view.entries.get(self.selected)
    }
}

/// Memory recall's filters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemoryFilters {
    pub kind: Option<MemoryKind>,
    pub agent: String,
    /// Only memories newer than this many hours.
    pub within_hours: Option<u32>,
    /// The filter row being edited.
    pub row: usize,
}

pub const WITHIN: [Option<u32>; 4] = [None, Some(1), Some(24), Some(24 * 7)];

#[derive(Default)]
pub struct MemoryScreen {
    pub query: ratatui_textarea::TextArea<'static>,
    pub typing: bool,
    pub hits: Vec<MemoryHit>,
    pub selected: usize,
    pub generation: u64,
    pub filters: MemoryFilters,
    pub searched: bool,
}

impl MemoryScreen {
    pub fn text(&self) -> String {
        self.query.lines().join(" ")
    }
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
    pending_keys: Vec<Key>,
    inflight: HashSet<Load>,
    stale: HashSet<Load>,
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
            replay: ReplayState {
                speed: 2,
                ..Default::default()
            },
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

    fn reload_all(&mut self, fx: &mut Vec<Effect>) {
        for l in [Load::Status, Load::Runs, Load::Tickets, Load::Queue] {
            self.load(l, LoadArgs::default(), fx);
        }
        if let Some(e) = self.queue.selected_entry() {
            let id = e.id;
            self.load(Load::QueueDetail(id), LoadArgs::default(), fx);
        }
    }

    /// Ask for `what` unless it is already on its way; then ask again when it lands.
    fn load(&mut self, what: Load, args: LoadArgs, fx: &mut Vec<Effect>) {
        if self.inflight.contains(&what) {
            self.stale.insert(what);
            return;
        }
        self.inflight.insert(what);
        fx.push(Effect::Load(what, args));
    }

    /// An answer for `what` arrived: true if it must be asked again.
    fn landed(&mut self, what: Load) -> bool {
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
                if self.screen == Screen::Replay
                    && self.replay.playing
                    && !self.replay_move(Move::NextStep, &mut fx)
                    && self.replay.outline_done
                {
                    self.replay.playing = false;
                    self.say("played to the end");
                }
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
            Msg::Tickets(ts) => {
                self.titles = ts.iter().map(|t| (t.id, t.title.clone())).collect();
                self.tickets = ts;
                self.clamp_board();
                if self.landed(Load::Tickets) {
                    self.load(Load::Tickets, LoadArgs::default(), &mut fx);
                }
            }
            Msg::Queue(v) => {
                let keep = self.queue.selected_entry().map(|e| e.id);
                self.queue.view = v;
                if let Some(id) = keep
                    && let Some(i) = self.queue.view.entries.iter().position(|e| e.id == id)
                {
                    self.queue.selected = i;
                }
                self.queue.selected = self
                    .queue
                    .selected
                    .min(self.queue.view.entries.len().saturating_sub(1));
                if self.landed(Load::Queue) {
                    self.load(Load::Queue, LoadArgs::default(), &mut fx);
                }
                self.queue_detail(&mut fx);
            }
            Msg::QueueDetail(d) => {
                let id = d.entry.id;
                let again = self.landed(Load::QueueDetail(id));
                if self.queue.selected_entry().map(|e| e.id) == Some(id) {
                    if self.queue.detail.as_ref().map(|x| x.entry.id) != Some(id) {
                        self.queue.file = 0;
                        self.queue.scroll = 0;
                    }
                    self.queue.detail = Some(*d);
                }
                if again {
                    self.load(Load::QueueDetail(id), LoadArgs::default(), &mut fx);
                }
            }
            Msg::PaneSteps { run, steps } => {
                let again = self.landed(Load::PaneSteps(run));
                if let Some(p) = self.fleet.by_run.get_mut(&run) {
                    p.take_steps(&steps, &self.theme);
                    // More arrived meanwhile: fetched on the next tick, not at once.
                    p.due = again || p.loaded < p.known;
                }
            }
            Msg::Outline { run, from, rows } => self.outline(run, from, rows, &mut fx),
            Msg::Step(s) => {
                let (run, seq) = (s.run, s.seq);
                self.landed(Load::Step(run, seq));
                if self.replay.run == Some(run) {
                    self.replay.remember(*s);
                    self.want_step(&mut fx);
                }
            }
            Msg::FileAt { run, seq, file } => {
                if self.replay.run == Some(run) {
                    self.replay.file_loading = None;
                    if self.replay.files.len() > STEP_CACHE {
                        self.replay.files.clear();
                    }
                    self.replay.files.insert(seq, file);
                    self.want_step(&mut fx);
                }
            }
            Msg::RunHits { run, query, seqs } => {
                if self.replay.run == Some(run) && self.replay.search == query {
                    self.replay.hits = seqs;
                    self.jump_to_hit(&mut fx);
                }
            }
            Msg::Memories { generation, hits } => {
                if generation == self.memory.generation {
                    self.memory.hits = hits;
                    self.memory.searched = true;
                    self.memory.selected = self
                        .memory
                        .selected
                        .min(self.memory.hits.len().saturating_sub(1));
                }
            }
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

    fn say(&mut self, text: &str) {
        self.flash = Some(Flash {
            text: text.to_string(),
            error: false,
        });
    }

    fn refuse(&mut self, text: &str) {
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

    fn sync_panes(&mut self, fx: &mut Vec<Effect>) {
        let keep = self.fleet.panes.get(self.fleet.selected).copied();
        let ids = fleet::pick_runs(&self.runs, self.now);
        self.fleet.by_run.retain(|id, _| ids.contains(id));
        for id in &ids {
            let run = self.runs.iter().find(|r| r.id == *id).cloned();
            let Some(run) = run else { continue };
            match self.fleet.by_run.get_mut(id) {
                Some(p) => {
                    p.known = p.known.max(run.steps);
                    p.run = run;
                }
                None => {
                    self.fleet.by_run.insert(*id, Pane::new(run));
                }
            }
        }
        self.fleet.panes = ids;
        self.fleet.selected = keep
            .and_then(|k| self.fleet.panes.iter().position(|r| *r == k))
            .unwrap_or(self.fleet.selected)
            .min(self.fleet.panes.len().saturating_sub(1));
        let ids = self.fleet.panes.clone();
        for id in ids {
            self.pane_fetch(id, fx);
        }
    }

    fn pane_fetch(&mut self, run: RunId, fx: &mut Vec<Effect>) {
        let now = self.now;
        let fetching = self.inflight.contains(&Load::PaneSteps(run));
        let Some(p) = self.fleet.by_run.get_mut(&run) else {
            return;
        };
        if p.loaded >= p.known && p.loaded > 0 {
            p.due = false;
            return;
        }
        let recent = p
            .fetched_at
            .is_some_and(|t| now.duration_since(t) < PANE_EVERY);
        if fetching || recent {
            p.due = true;
            return;
        }
        p.due = false;
        p.fetched_at = Some(now);
        // A pane shows the tail: a run joined late starts near its end, not at step 0.
        let from = if p.loaded == 0 {
            p.known.saturating_sub(200)
        } else {
            p.loaded
        };
        if p.loaded == 0 {
            p.loaded = from;
        }
        self.load(Load::PaneSteps(run), LoadArgs { from }, fx);
    }

    // ---- replay ----

    fn outline(&mut self, run: RunId, from: u64, rows: Vec<OutlineRow>, fx: &mut Vec<Effect>) {
        let again = self.landed(Load::Outline(run));
        if self.replay.run != Some(run) {
            return;
        }
        let have = self.replay.rows.last().map_or(0, |r| r.seq + 1);
        let fresh: Vec<OutlineRow> = rows.into_iter().filter(|r| r.seq >= have).collect();
        let n = fresh.len() as u64;
        let first = self.replay.rows.is_empty();
        self.replay
            .cursor
            .extend(fresh.iter().map(|r| Mark::from_outline(&r.kind, r.error)));
        self.replay.rows.extend(fresh);
        let full_chunk = n >= OUTLINE_CHUNK && from + n >= have;
        if full_chunk || again {
            let from = self.replay.rows.last().map_or(0, |r| r.seq + 1);
            self.load(Load::Outline(run), LoadArgs { from }, fx);
        } else {
            self.replay.outline_done = true;
        }
        if let Some(seq) = self.replay.pending_jump
            && let Ok(i) = self.replay.rows.binary_search_by_key(&seq, |r| r.seq)
        {
            self.replay.cursor.at = i;
            self.replay.pending_jump = None;
        }
        if first || self.replay.pending_jump.is_none() {
            self.want_step(fx);
        }
    }

    /// Open `run` in replay, at `seq` when given.
    pub fn open_replay(&mut self, run: RunId, seq: Option<u64>, fx: &mut Vec<Effect>) {
        self.screen = Screen::Replay;
        self.replay.open(run);
        self.replay.pending_jump = seq;
        self.inflight.remove(&Load::Outline(run));
        self.load(Load::Outline(run), LoadArgs { from: 0 }, fx);
    }

    /// Load the step under the cursor (and a tool call's result) unless held.
    fn want_step(&mut self, fx: &mut Vec<Effect>) {
        let (Some(run), Some(seq)) = (self.replay.run, self.replay.at_seq()) else {
            return;
        };
        let mut want = vec![seq];
        if self.replay.rows[self.replay.cursor.at].kind == "tool_call"
            && let Some(r) = self.replay.result_of(seq)
        {
            want.push(r);
        }
        for s in want {
            if !self.replay.steps.contains_key(&s) {
                // One at a time: a held-down `j` skips the steps it passes.
                if self.inflight.iter().any(|l| matches!(l, Load::Step(..))) {
                    return;
                }
                self.load(Load::Step(run, s), LoadArgs::default(), fx);
                return;
            }
        }
        // The file view of an edit: the file rebuilt from the run's edits up to here.
        if self.replay.show_file
            && !self.replay.files.contains_key(&seq)
            && self.replay.file_loading.is_none()
            && let Some(Step {
                kind: crate::model::StepKind::FileEdit { path, .. },
                ..
            }) = self.replay.steps.get(&seq)
        {
            self.replay.file_loading = Some(seq);
            fx.push(Effect::FileAt {
                run,
                seq,
                path: path.clone(),
            });
        }
    }

    fn replay_move(&mut self, m: Move, fx: &mut Vec<Effect>) -> bool {
        let moved = self.replay.cursor.apply(m);
        if moved {
            self.replay.scroll = 0;
            self.want_step(fx);
        }
        moved
    }

    fn jump_to_hit(&mut self, fx: &mut Vec<Effect>) {
        let Some(at) = self.replay.at_seq() else {
            return;
        };
        let next = self
            .replay
            .hits
            .iter()
            .copied()
            .find(|s| *s > at)
            .or_else(|| self.replay.hits.first().copied());
        match next {
            Some(seq) => {
                if let Ok(i) = self.replay.rows.binary_search_by_key(&seq, |r| r.seq) {
                    self.replay.cursor.at = i;
                    self.replay.scroll = 0;
                    let n = self.replay.hits.len();
                    let k = self.replay.hits.iter().position(|s| *s == seq).unwrap_or(0) + 1;
                    self.say(&format!("match {k} of {n} for `{}`", self.replay.search));
                    self.want_step(fx);
                }
            }
            None => {
                let q = self.replay.search.clone();
                self.refuse(&format!("no step of this run matches `{q}`"));
            }
        }
    }

    /// The runs the replay list shows, newest first.
    pub fn run_list(&self) -> Vec<&Run> {
        let mut v: Vec<&Run> = self.runs.iter().collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.id));
        v
    }

    // ---- the queue ----

    fn queue_detail(&mut self, fx: &mut Vec<Effect>) {
        if let Some(e) = self.queue.selected_entry() {
            let id = e.id;
            self.load(Load::QueueDetail(id), LoadArgs::default(), fx);
        }
    }

    /// Where `c` comments: the path and new-file line under the diff's cursor.
    fn comment_target(&self) -> Result<(String, u32), String> {
        if !self.queue.diff_focus {
            return Err(
                "l moves into the diff; then c comments on the line under the cursor".into(),
            );
        }
        let files = self.diff_files();
        let Some((path, part)) = files.get(self.queue.file) else {
            return Err("no diff to comment on (yet)".into());
        };
        match new_line_numbers(part).get(self.queue.line) {
            Some(Some(n)) => Ok((path.clone(), *n)),
            _ => Err("that line is not in the new version of the file (a header or a removed line); comment on an added or kept line".into()),
        }
    }

    /// The files of the selected entry's diff, each with its part of the patch.
    pub fn diff_files(&self) -> Vec<(String, String)> {
        let Some(d) = &self.queue.detail else {
            return vec![];
        };
        split_patch(&d.patch)
    }

    // ---- tickets ----

    pub fn column(&self, i: usize) -> Vec<&Ticket> {
        let mut v: Vec<&Ticket> = self
            .tickets
            .iter()
            .filter(|t| t.state == BOARD[i])
            .collect();
        v.sort_by_key(|t| (std::cmp::Reverse(t.priority), t.id));
        v
    }

    pub fn selected_ticket(&self) -> Option<&Ticket> {
        self.column(self.board.column).get(self.board.row).copied()
    }

    fn clamp_board(&mut self) {
        let n = self.column(self.board.column).len();
        self.board.row = self.board.row.min(n.saturating_sub(1));
    }

    // ---- memory ----

    fn search_memory(&mut self, fx: &mut Vec<Effect>) {
        self.memory.generation += 1;
        let f = &self.memory.filters;
        let q = MemorySearch {
            text: self.memory.text(),
            limit: 50,
            kinds: f.kind.into_iter().collect(),
            agent: (!f.agent.trim().is_empty()).then(|| f.agent.trim().to_string()),
            since: f.within_hours.and_then(|h| {
                self.now
                    .checked_sub(jiff::SignedDuration::from_hours(h as i64))
                    .ok()
            }),
            recent: self.memory.text().trim().is_empty(),
            ..Default::default()
        };
        fx.push(Effect::SearchMemory {
            generation: self.memory.generation,
            query: q,
        });
    }

    // ---- keys ----

    fn key(&mut self, k: KeyEvent, fx: &mut Vec<Effect>) {
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
                self.action(&a, fx);
            }
            Lookup::None => {
                self.pending_keys.clear();
                // A sequence that went nowhere: the last key may still mean something alone.
                if typed.len() > 1
                    && let Lookup::Action(a) = self.keymap.lookup(self.mode(), &[key])
                {
                    self.action(&a, fx);
                }
            }
        }
    }

    /// Keys while the memory search box has focus; false lets the keymap have it.
    fn memory_typing_key(&mut self, k: KeyEvent, fx: &mut Vec<Effect>) -> bool {
        match k.code {
            KeyCode::Esc => {
                self.memory.typing = false;
                true
            }
            KeyCode::Tab | KeyCode::BackTab => false,
            KeyCode::Up => {
                self.memory.selected = self.memory.selected.saturating_sub(1);
                true
            }
            KeyCode::Down => {
                if self.memory.selected + 1 < self.memory.hits.len() {
                    self.memory.selected += 1;
                }
                true
            }
            KeyCode::Enter => {
                self.action("open_source", fx);
                true
            }
            _ => {
                let before = self.memory.text();
                self.memory.query.input(k);
                if self.memory.text() != before {
                    self.memory.selected = 0;
                    self.search_memory(fx);
                }
                true
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

    fn filter_key(&mut self, k: KeyEvent, fx: &mut Vec<Effect>) {
        let f = &mut self.memory.filters;
        let cycle =
            |i: usize, n: usize, back: bool| if back { (i + n - 1) % n } else { (i + 1) % n };
        match k.code {
            KeyCode::Esc | KeyCode::Enter => {
                self.search_memory(fx);
                return;
            }
            KeyCode::Up | KeyCode::BackTab => f.row = cycle(f.row, 3, true),
            KeyCode::Down | KeyCode::Tab => f.row = cycle(f.row, 3, false),
            KeyCode::Left | KeyCode::Right => {
                let back = k.code == KeyCode::Left;
                match f.row {
                    0 => {
                        let kinds: Vec<Option<MemoryKind>> = std::iter::once(None)
                            .chain(MemoryKind::ALL.into_iter().map(Some))
                            .collect();
                        let i = kinds.iter().position(|x| *x == f.kind).unwrap_or(0);
                        f.kind = kinds[cycle(i, kinds.len(), back)];
                    }
                    2 => {
                        let i = WITHIN
                            .iter()
                            .position(|x| *x == f.within_hours)
                            .unwrap_or(0);
                        f.within_hours = WITHIN[cycle(i, WITHIN.len(), back)];
                    }
                    _ => {}
                }
            }
            KeyCode::Backspace if f.row == 1 => {
                f.agent.pop();
            }
            KeyCode::Char(c) if f.row == 1 => f.agent.push(c),
            _ => {}
        }
        self.layers.push(Layer::MemoryFilter);
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
            PromptFor::Search => {
                let Some(run) = self.replay.run else { return };
                if text.is_empty() {
                    return;
                }
                if text == self.replay.search && !self.replay.hits.is_empty() {
                    self.jump_to_hit(fx);
                } else {
                    self.replay.search = text.clone();
                    self.replay.hits.clear();
                    fx.push(Effect::SearchRun { run, query: text });
                }
            }
        }
    }

    fn action(&mut self, a: &str, fx: &mut Vec<Effect>) {
        match a {
            "quit" => {
                self.quit = true;
                fx.push(Effect::Quit);
                return;
            }
            "help" => {
                self.layers.push(Layer::Help);
                return;
            }
            "next_screen" | "prev_screen" => {
                let i = self.screen.index();
                let n = Screen::ALL.len();
                let j = if a == "next_screen" {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.switch(Screen::ALL[j], fx);
                return;
            }
            "screen_fleet" => return self.switch(Screen::Fleet, fx),
            "screen_tickets" => return self.switch(Screen::Tickets, fx),
            "screen_replay" => return self.switch(Screen::Replay, fx),
            "screen_queue" => return self.switch(Screen::Queue, fx),
            "screen_memory" => return self.switch(Screen::Memory, fx),
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

    fn fleet_action(&mut self, a: &str, fx: &mut Vec<Effect>) {
        let n = self.fleet.panes.len();
        let page = self.page.get().max(1) as usize;
        let selected = self.fleet.panes.get(self.fleet.selected).copied();
        match a {
            "down" | "up" | "page_down" | "page_up" if self.fleet.zoomed => {
                if let Some(p) = selected.and_then(|r| self.fleet.by_run.get_mut(&r)) {
                    p.scroll = match a {
                        "up" => p.scroll + 1,
                        "page_up" => p.scroll + page,
                        "down" => p.scroll.saturating_sub(1),
                        _ => p.scroll.saturating_sub(page),
                    }
                    .min(p.lines.len());
                }
            }
            "right" | "down" if n > 0 => self.fleet.selected = (self.fleet.selected + 1) % n,
            "left" | "up" if n > 0 => self.fleet.selected = (self.fleet.selected + n - 1) % n,
            "zoom" if n > 0 => self.fleet.zoomed = !self.fleet.zoomed,
            "back" => self.fleet.zoomed = false,
            "kill" => match selected.and_then(|r| self.fleet.by_run.get(&r)) {
                Some(p) if p.run.state.is_live() => {
                    self.layers.push(Layer::Confirm(Confirm {
                        question: format!(
                            "Kill run {} ({}, ticket {})? Its ticket is cancelled.",
                            p.run.id,
                            p.run.agent,
                            p.run.ticket.map_or("-".into(), |t| t.to_string())
                        ),
                        on_yes: Effect::KillRun(p.run.id),
                    }));
                }
                Some(p) => {
                    let msg = format!("run {} is {}; nothing to kill", p.run.id, p.run.state);
                    self.refuse(&msg)
                }
                None => self.refuse("no run selected"),
            },
            "retry" => match selected.and_then(|r| self.fleet.by_run.get(&r)) {
                Some(p) if p.run.state.is_live() => {
                    self.layers.push(Layer::Confirm(Confirm {
                        question: format!("Stop run {} and start its ticket again?", p.run.id),
                        on_yes: Effect::RetryRun(p.run.id),
                    }));
                }
                Some(p) => fx.push(Effect::RetryRun(p.run.id)),
                None => self.refuse("no run selected"),
            },
            _ => {}
        }
    }

    fn tickets_action(&mut self, a: &str, fx: &mut Vec<Effect>) {
        let rows = self.column(self.board.column).len();
        match a {
            "down" if self.board.row + 1 < rows => self.board.row += 1,
            "up" => self.board.row = self.board.row.saturating_sub(1),
            "right" => {
                self.board.column = (self.board.column + 1) % BOARD.len();
                self.clamp_board();
            }
            "left" => {
                self.board.column = (self.board.column + BOARD.len() - 1) % BOARD.len();
                self.clamp_board();
            }
            "new" => self
                .layers
                .push(Layer::TicketForm(Box::new(TicketForm::new(&self.theme)))),
            "cancel" => match self.selected_ticket() {
                Some(t) if !t.state.is_final() => {
                    let (id, title) = (t.id, t.title.clone());
                    self.layers.push(Layer::Confirm(Confirm {
                        question: format!("Cancel ticket {id} \"{title}\"? A live run stops."),
                        on_yes: Effect::CancelTicket(id),
                    }));
                }
                Some(t) => {
                    let msg = format!("ticket {} is already {}", t.id, t.state);
                    self.refuse(&msg)
                }
                None => self.refuse("no ticket selected"),
            },
            "priority" => match self.selected_ticket() {
                Some(t) => {
                    let (id, p) = (t.id, t.priority);
                    self.layers.push(Layer::Prompt(Box::new(Prompt::new(
                        PromptFor::Priority(id),
                        &format!(" Priority of ticket {id} (higher runs first) "),
                        &p.to_string(),
                        &self.theme,
                    ))));
                }
                None => self.refuse("no ticket selected"),
            },
            "open_replay" => match self.selected_ticket().and_then(|t| t.runs.last().copied()) {
                Some(run) => self.open_replay(run, None, fx),
                None => self.refuse("this ticket has no run yet"),
            },
            _ => {}
        }
    }

    fn replay_action(&mut self, a: &str, fx: &mut Vec<Effect>) {
        if self.replay.run.is_none() {
            let n = self.runs.len();
            match a {
                "down" | "next_step" if self.replay.pick + 1 < n => self.replay.pick += 1,
                "up" | "prev_step" => self.replay.pick = self.replay.pick.saturating_sub(1),
                "first" => self.replay.pick = 0,
                "last" => self.replay.pick = n.saturating_sub(1),
                "open" => match self.run_list().get(self.replay.pick) {
                    Some(r) => {
                        let id = r.id;
                        self.open_replay(id, None, fx);
                    }
                    None => self.refuse("no run to replay yet"),
                },
                _ => {}
            }
            return;
        }
        if let Some(m) = Move::from_action(a) {
            if !self.replay_move(m, fx) {
                match m {
                    Move::SetMark => self.say("mark set; ' comes back here"),
                    Move::NextEdit | Move::PrevEdit => self.refuse("no file edit that way"),
                    Move::NextError => self.refuse("no error after this step"),
                    Move::ToMark if self.replay.cursor.mark.is_none() => {
                        self.refuse("no mark yet; m sets one")
                    }
                    _ => {}
                }
            }
            return;
        }
        let page = self.page.get().max(1);
        match a {
            "down" => {
                self.replay_move(Move::NextStep, fx);
            }
            "up" => {
                self.replay_move(Move::PrevStep, fx);
            }
            "page_down" => self.replay.scroll = self.replay.scroll.saturating_add(page / 2),
            "page_up" => self.replay.scroll = self.replay.scroll.saturating_sub(page / 2),
            "back" => {
                self.replay.run = None;
                self.replay.playing = false;
            }
            "play" => {
                self.replay.playing = !self.replay.playing;
                let s = SPEEDS[self.replay.speed];
                if self.replay.playing {
                    self.say(&format!("playing at {s} steps/s (+ faster, - slower)"));
                } else {
                    self.say("paused");
                }
            }
            "faster" => {
                self.replay.speed = (self.replay.speed + 1).min(SPEEDS.len() - 1);
                self.say(&format!("{} steps/s", SPEEDS[self.replay.speed]));
            }
            "slower" => {
                self.replay.speed = self.replay.speed.saturating_sub(1);
                self.say(&format!("{} steps/s", SPEEDS[self.replay.speed]));
            }
            "search" => {
                let q = self.replay.search.clone();
                self.layers.push(Layer::Prompt(Box::new(Prompt::new(
                    PromptFor::Search,
                    " Search this run (enter again: next match) ",
                    &q,
                    &self.theme,
                ))));
            }
            "toggle_file" => {
                self.replay.show_file = !self.replay.show_file;
                self.replay.scroll = 0;
                self.want_step(fx);
            }
            _ => {}
        }
    }

    fn queue_action(&mut self, a: &str, fx: &mut Vec<Effect>) {
        let n = self.queue.view.entries.len();
        let page = self.page.get().max(1);
        let entry = self.queue.selected_entry().cloned();
        match a {
            "down" | "up" if self.queue.diff_focus => {
                let lines = self
                    .diff_files()
                    .get(self.queue.file)
                    .map_or(0, |(_, part)| part.lines().count());
                self.queue.line = if a == "down" {
                    (self.queue.line + 1).min(lines.saturating_sub(1))
                } else {
                    self.queue.line.saturating_sub(1)
                };
            }
            "down" if self.queue.selected + 1 < n => {
                self.queue.selected += 1;
                self.queue.detail = None;
                self.queue.line = 0;
                self.queue_detail(fx);
            }
            "up" if self.queue.selected > 0 => {
                self.queue.selected -= 1;
                self.queue.detail = None;
                self.queue.line = 0;
                self.queue_detail(fx);
            }
            "focus_diff" => match self.diff_files().get(self.queue.file) {
                None => self.refuse("no diff to move in (yet)"),
                Some((_, part)) => {
                    self.queue.diff_focus = true;
                    self.queue.show_log = false;
                    // Where it was, if a comment can go there; else the first line one can.
                    let numbers = new_line_numbers(part);
                    if numbers.get(self.queue.line).is_none_or(|n| n.is_none()) {
                        self.queue.line = numbers.iter().position(|n| n.is_some()).unwrap_or(0);
                    }
                }
            },
            "focus_list" => self.queue.diff_focus = false,
            "comment" => match (entry, self.comment_target()) {
                (Some(e), _) if e.state.is_finished() || e.state == QueueState::Landing => self
                    .refuse(&format!(
                        "entry {} is {}; a comment only reaches an entry still to land",
                        e.id,
                        e.state.name()
                    )),
                (Some(e), Ok((path, line))) => {
                    self.layers.push(Layer::Prompt(Box::new(Prompt::new(
                        PromptFor::Comment {
                            entry: e.id,
                            path: path.clone(),
                            line,
                        },
                        &format!(" Comment on {path}:{line} (enter adds; R sends them back) "),
                        "",
                        &self.theme,
                    ))));
                }
                (Some(_), Err(why)) => self.refuse(&why),
                (None, _) => self.refuse("the queue is empty"),
            },
            "send_back" => match entry {
                Some(e) if e.state.is_finished() || e.state == QueueState::Landing => {
                    self.refuse(&format!(
                        "entry {} is {}; only an entry still to land is sent back",
                        e.id,
                        e.state.name()
                    ))
                }
                Some(e) if e.comments.is_empty() => self.refuse(&format!(
                    "entry {} has no comments yet: l moves into the diff, c comments on a line",
                    e.id
                )),
                Some(e) => {
                    let n = e.comments.len();
                    self.layers.push(Layer::Confirm(Confirm {
                        question: format!(
                            "Send entry {} `{}` back to its agent with {n} comment{}? Its ticket runs again with them.",
                            e.id,
                            e.branch,
                            if n == 1 { "" } else { "s" }
                        ),
                        on_yes: Effect::QueueAct {
                            id: e.id,
                            verb: "send-back",
                            note: None,
                        },
                    }));
                }
                None => self.refuse("the queue is empty"),
            },
            "page_down" => self.queue.scroll = self.queue.scroll.saturating_add(page / 2),
            "page_up" => self.queue.scroll = self.queue.scroll.saturating_sub(page / 2),
            "toggle_log" => {
                self.queue.show_log = !self.queue.show_log;
                self.queue.scroll = 0;
            }
            "next_file" | "prev_file" => {
                let files = self.diff_files().len();
                if files > 0 {
                    self.queue.file = if a == "next_file" {
                        (self.queue.file + 1) % files
                    } else {
                        (self.queue.file + files - 1) % files
                    };
                    self.queue.scroll = 0;
                    self.queue.line = 0;
                    self.queue.show_log = false;
                }
            }
            "approve" => match entry {
                Some(e) if !e.state.is_finished() => {
                    let waits = if e.state == QueueState::AwaitingApproval {
                        "It waits for you; once approved it lands"
                    } else {
                        "Approved now, it lands without stopping"
                    };
                    self.layers.push(Layer::Confirm(Confirm {
                        question: format!(
                            "Approve entry {} `{}` as {}? {waits} when its tests pass.",
                            e.id, e.branch, self.user
                        ),
                        on_yes: Effect::QueueAct {
                            id: e.id,
                            verb: "approve",
                            note: None,
                        },
                    }));
                }
                Some(e) => self.refuse(&format!(
                    "entry {} is {}; nothing to approve",
                    e.id,
                    e.state.name()
                )),
                None => self.refuse("the queue is empty"),
            },
            "reject" => match entry {
                Some(e) if !e.state.is_finished() => {
                    self.layers.push(Layer::Prompt(Box::new(Prompt::new(
                        PromptFor::Reject(e.id),
                        &format!(" Reject entry {} `{}`: why? (enter sends) ", e.id, e.branch),
                        "",
                        &self.theme,
                    ))));
                }
                Some(e) => self.refuse(&format!(
                    "entry {} is {}; nothing to reject",
                    e.id,
                    e.state.name()
                )),
                None => self.refuse("the queue is empty"),
            },
            "bump" => match entry {
                Some(e) if !e.state.is_finished() => fx.push(Effect::QueueAct {
                    id: e.id,
                    verb: "bump",
                    note: None,
                }),
                Some(e) => self.refuse(&format!(
                    "entry {} is {}; it does not wait",
                    e.id,
                    e.state.name()
                )),
                None => self.refuse("the queue is empty"),
            },
            "open_replay" => match entry.and_then(|e| e.run) {
                Some(run) => self.open_replay(run, None, fx),
                None => self.refuse("this entry came from no run"),
            },
            _ => {}
        }
    }

    fn memory_action(&mut self, a: &str, fx: &mut Vec<Effect>) {
        match a {
            "search" => self.memory.typing = true,
            "down" if self.memory.selected + 1 < self.memory.hits.len() => {
                self.memory.selected += 1
            }
            "up" => self.memory.selected = self.memory.selected.saturating_sub(1),
            "add" => self
                .layers
                .push(Layer::MemoryForm(Box::new(MemoryForm::new(&self.theme)))),
            "filter" => self.layers.push(Layer::MemoryFilter),
            "open_source" => {
                let src = self
                    .memory
                    .hits
                    .get(self.memory.selected)
                    .map(|h| h.memory.source);
                match src {
                    Some(Some(s)) => self.open_replay(s.run, Some(s.step), fx),
                    Some(None) => {
                        self.refuse("this memory was written by hand; it has no source step")
                    }
                    None => self.refuse("no memory selected"),
                }
            }
            _ => {}
        }
    }

    // ---- mouse ----

    fn mouse(&mut self, m: MouseEvent, fx: &mut Vec<Effect>) {
        if !self.layers.is_empty() {
            return;
        }
        match m.kind {
            MouseEventKind::ScrollDown => self.action("down", fx),
            MouseEventKind::ScrollUp => self.action("up", fx),
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
            Screen::Queue => {
                if i < self.queue.view.entries.len() && i != self.queue.selected {
                    self.queue.selected = i;
                    self.queue.detail = None;
                    self.queue_detail(fx);
                }
            }
            Screen::Memory => {
                self.memory.selected = i.min(self.memory.hits.len().saturating_sub(1))
            }
            Screen::Replay if self.replay.run.is_none() => self.replay.pick = i,
            Screen::Replay => {
                if i < self.replay.rows.len() {
                    self.replay.cursor.at = i;
                    self.replay.scroll = 0;
                    self.want_step(fx);
                }
            }
            Screen::Tickets => {
                // Rows of the board are encoded column * 10_000 + row.
                self.board.column = (i / 10_000).min(BOARD.len() - 1);
                self.board.row = i % 10_000;
                self.clamp_board();
            }
            Screen::Fleet => {}
        }
    }
}

/// For each line of one file's part of a unified diff, its line number in the new
/// version of the file: None for headers and removed lines.
pub fn new_line_numbers(part: &str) -> Vec<Option<u32>> {
    let mut next: Option<u32> = None;
    part.lines()
        .map(|l| {
            if let Some(rest) = l.strip_prefix("@@ ") {
                // `@@ -a,b +c,d @@`: the new side starts at line c.
                next = rest
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix('+'))
                    .and_then(|w| w.split(',').next()?.parse().ok());
                return None;
            }
            let n = next?;
            match l.chars().next() {
                Some('+') | Some(' ') | None => {
                    next = Some(n + 1);
                    Some(n)
                }
                _ => None,
            }
        })
        .collect()
}

/// A unified diff cut into its files: (path, that file's part).
pub fn split_patch(patch: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vec![];
    for line in patch.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            let path = rest
                .trim_end()
                .rsplit_once(" b/")
                .map(|(_, b)| b.to_string())
                .unwrap_or_else(|| rest.trim_end().to_string());
            out.push((path, String::new()));
        }
        match out.last_mut() {
            Some((_, body)) => body.push_str(line),
            None if !line.trim().is_empty() => out.push(("(diff)".into(), line.to_string())),
            None => {}
        }
    }
    out
}

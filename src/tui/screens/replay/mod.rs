//! The replay screen: pick a run, then walk its timeline step by step (or play it),
//! with the step under the cursor whole beside it. Its state and what its keys do;
//! `cursor` is where each key takes the reviewer, `draw` is how it looks.

pub mod state;

pub use state::*;

pub mod cursor;
pub mod draw;

use crate::model::{Run, RunId, Step};
use crate::tui::app::{App, Layer, Screen};
use crate::tui::effect::{Effect, Load, LoadArgs};
use crate::tui::forms::{Prompt, PromptFor};
use crate::tui::keymap::Action;
use crate::wire::{FileAtStep, OutlineRow};
use cursor::{Mark, Move};

impl App {
    /// A search typed in replay: the next match of the same words, or a new search.
    pub(in crate::tui) fn search_run(&mut self, text: String, fx: &mut Vec<Effect>) {
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

    /// A click on a row: a run of the list, or a step of the timeline.
    pub(in crate::tui) fn replay_click(&mut self, i: usize, fx: &mut Vec<Effect>) {
        if self.replay.run.is_none() {
            self.replay.pick = i;
        } else if i < self.replay.rows.len() {
            self.replay.cursor.at = i;
            self.replay.scroll = 0;
            self.want_step(fx);
        }
    }

    /// A whole step arrived, for the detail pane.
    pub(in crate::tui) fn on_step(&mut self, s: Step, fx: &mut Vec<Effect>) {
        let (run, seq) = (s.run, s.seq);
        self.landed(Load::Step(run, seq));
        if self.replay.run == Some(run) {
            self.replay.remember(s);
            self.want_step(fx);
        }
    }

    /// A file as it was after a step arrived, for the file view.
    pub(in crate::tui) fn on_file_at(
        &mut self,
        run: RunId,
        seq: u64,
        file: Result<FileAtStep, String>,
        fx: &mut Vec<Effect>,
    ) {
        if self.replay.run == Some(run) {
            self.replay.file_loading = None;
            if self.replay.files.len() > STEP_CACHE {
                self.replay.files.clear();
            }
            self.replay.files.insert(seq, file);
            self.want_step(fx);
        }
    }

    /// The steps matching a search arrived: jump to the next.
    pub(in crate::tui) fn on_run_hits(
        &mut self,
        run: RunId,
        query: &str,
        seqs: Vec<u64>,
        fx: &mut Vec<Effect>,
    ) {
        if self.replay.run == Some(run) && self.replay.search == query {
            self.replay.hits = seqs;
            self.jump_to_hit(fx);
        }
    }

    /// Playback's step forward, at each tick.
    pub(in crate::tui) fn play_tick(&mut self, fx: &mut Vec<Effect>) {
        if self.screen == Screen::Replay
            && self.replay.playing
            && !self.replay_move(Move::NextStep, fx)
            && self.replay.outline_done
        {
            self.replay.playing = false;
            self.say("played to the end");
        }
    }

    pub(in crate::tui) fn outline(
        &mut self,
        run: RunId,
        from: u64,
        rows: Vec<OutlineRow>,
        fx: &mut Vec<Effect>,
    ) {
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
    pub(in crate::tui) fn want_step(&mut self, fx: &mut Vec<Effect>) {
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

    pub(in crate::tui) fn replay_move(&mut self, m: Move, fx: &mut Vec<Effect>) -> bool {
        let moved = self.replay.cursor.apply(m);
        if moved {
            self.replay.scroll = 0;
            self.want_step(fx);
        }
        moved
    }

    pub(in crate::tui) fn jump_to_hit(&mut self, fx: &mut Vec<Effect>) {
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

    pub(in crate::tui) fn replay_action(&mut self, a: Action, fx: &mut Vec<Effect>) {
        if self.replay.run.is_none() {
            let n = self.runs.len();
            match a {
                Action::Down | Action::NextStep if self.replay.pick + 1 < n => {
                    self.replay.pick += 1
                }
                Action::Up | Action::PrevStep => {
                    self.replay.pick = self.replay.pick.saturating_sub(1)
                }
                Action::First => self.replay.pick = 0,
                Action::Last => self.replay.pick = n.saturating_sub(1),
                Action::Open => match self.run_list().get(self.replay.pick) {
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
            Action::Down => {
                self.replay_move(Move::NextStep, fx);
            }
            Action::Up => {
                self.replay_move(Move::PrevStep, fx);
            }
            Action::PageDown => self.replay.scroll = self.replay.scroll.saturating_add(page / 2),
            Action::PageUp => self.replay.scroll = self.replay.scroll.saturating_sub(page / 2),
            Action::Back => {
                self.replay.run = None;
                self.replay.playing = false;
            }
            Action::Play => {
                self.replay.playing = !self.replay.playing;
                let s = SPEEDS[self.replay.speed];
                if self.replay.playing {
                    self.say(&format!("playing at {s} steps/s (+ faster, - slower)"));
                } else {
                    self.say("paused");
                }
            }
            Action::Faster => {
                self.replay.speed = (self.replay.speed + 1).min(SPEEDS.len() - 1);
                self.say(&format!("{} steps/s", SPEEDS[self.replay.speed]));
            }
            Action::Slower => {
                self.replay.speed = self.replay.speed.saturating_sub(1);
                self.say(&format!("{} steps/s", SPEEDS[self.replay.speed]));
            }
            Action::Search => {
                let q = self.replay.search.clone();
                self.layers.push(Layer::Prompt(Box::new(Prompt::new(
                    PromptFor::Search,
                    " Search this run (enter again: next match) ",
                    &q,
                    &self.theme,
                ))));
            }
            Action::ToggleFile => {
                self.replay.show_file = !self.replay.show_file;
                self.replay.scroll = 0;
                self.want_step(fx);
            }
            _ => {}
        }
    }
}

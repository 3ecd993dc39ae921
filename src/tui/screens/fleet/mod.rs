//! The fleet screen: a grid of panes, one per run worth watching (live ones first, then
//! the latest finished), each a bounded scrollback of the run's steps coloured by kind,
//! and the flags that tell a supervisor an agent needs them: waiting for input, or gone
//! quiet. Its state, what its keys do (select, zoom, kill, retry) and how it is drawn.

pub mod state;

pub use state::*;

use std::collections::HashMap;

use jiff::Timestamp;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::model::{Run, RunId, RunState, Step, Usage};
use crate::tui::app::{App, Hit, Layer, Screen};
use crate::tui::effect::{Effect, Load, LoadArgs};
use crate::tui::forms::Confirm;
use crate::tui::keymap::Action;
use crate::tui::theme::{Slot, Theme};

/// Rows and columns for `n` panes in `area`: as square as the cells allow (a terminal
/// cell is about twice as tall as wide).
pub fn grid(n: usize, area: Rect) -> Vec<Rect> {
    if n == 0 {
        return vec![];
    }
    let cols = match n {
        1 => 1,
        2 => 2,
        3..=4 => 2,
        5..=6 => 3,
        7..=9 => 3,
        _ => 4,
    };
    let cols = if area.width < 80 { cols.min(2) } else { cols };
    let rows = n.div_ceil(cols);
    let row_areas = Layout::vertical(vec![Constraint::Ratio(1, rows as u32); rows]).split(area);
    let mut out = Vec::with_capacity(n);
    for (r, row) in row_areas.iter().enumerate() {
        let in_row = (n - r * cols).min(cols);
        let cells = Layout::horizontal(vec![Constraint::Ratio(1, cols as u32); cols]).split(*row);
        out.extend(cells.iter().take(in_row).copied());
    }
    out
}

/// The pane's state word, its slot and symbol.
pub fn state_badge(p: &Pane, now: Timestamp) -> (String, Slot) {
    match p.flag(now) {
        Some(Flag::Waiting) => ("⚑ waiting for input".into(), Slot::AgentWaiting),
        Some(Flag::Quiet(s)) => (format!("⏸ quiet {s}s"), Slot::AgentQuiet),
        None => match p.run.state {
            RunState::Running => ("▶ running".into(), Slot::AgentRunning),
            RunState::Preparing => ("◌ preparing".into(), Slot::AgentRunning),
            RunState::Succeeded => ("✓ done".into(), Slot::AgentDone),
            RunState::Failed => ("✗ failed".into(), Slot::AgentFailed),
            s => (format!("■ {}", s.name()), Slot::AgentDone),
        },
    }
}

pub fn elapsed(run: &Run, now: Timestamp) -> String {
    let end = run.ended.unwrap_or(now);
    let s = end.duration_since(run.started).as_secs().max(0);
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

pub fn spend_text(u: &Usage) -> String {
    let tokens = u.input_tokens + u.output_tokens;
    let tokens = if tokens >= 10_000 {
        format!("{:.1}k tok", tokens as f64 / 1000.0)
    } else {
        format!("{tokens} tok")
    };
    match u.cost_usd {
        Some(c) => format!("{tokens} ${c:.2}"),
        None => tokens,
    }
}

pub struct FleetView<'a> {
    pub panes: &'a [RunId],
    pub by_run: &'a HashMap<RunId, Pane>,
    pub selected: usize,
    pub zoomed: bool,
    pub titles: &'a HashMap<u64, String>,
    pub now: Timestamp,
    pub theme: &'a Theme,
}

impl FleetView<'_> {
    pub fn render(&self, frame: &mut Frame, area: Rect) {
        let t = self.theme;
        if self.panes.is_empty() {
            let p = Paragraph::new(vec![
                Line::from(""),
                Line::from(Span::styled(
                    "  No agent is running.",
                    t.style(Slot::UiTitle),
                )),
                Line::from(Span::styled(
                    "  Add a ticket on the Tickets screen (2, then n) and the factory starts one.",
                    t.style(Slot::UiMuted),
                )),
            ])
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(t.style(Slot::UiBorder))
                    .title(" Fleet "),
            );
            frame.render_widget(p, area);
            return;
        }
        if self.zoomed {
            if let Some(p) = self
                .panes
                .get(self.selected)
                .and_then(|r| self.by_run.get(r))
            {
                self.pane(frame, area, p, true, true);
            }
            return;
        }
        for (i, cell) in grid(self.panes.len(), area).into_iter().enumerate() {
            if let Some(p) = self.by_run.get(&self.panes[i]) {
                self.pane(frame, cell, p, i == self.selected, false);
            }
        }
    }

    pub(in crate::tui) fn pane(
        &self,
        frame: &mut Frame,
        area: Rect,
        p: &Pane,
        focus: bool,
        zoomed: bool,
    ) {
        let t = self.theme;
        let (badge, slot) = state_badge(p, self.now);
        let ticket = p
            .run
            .ticket
            .map(|id| {
                let title = self.titles.get(&id).map(String::as_str).unwrap_or("");
                format!("#{id} {title}")
            })
            .unwrap_or_default();
        let border = if focus {
            t.style(Slot::UiBorderFocus)
        } else {
            t.style(Slot::UiBorder)
        };
        let sel = if focus { "▶ " } else { "" };
        let mut title = vec![
            Span::styled(format!(" {sel}run {} ", p.run.id), t.style(Slot::UiTitle)),
            Span::styled(format!("{} ", p.run.agent), Style::default()),
        ];
        // A run on another machine says where; local runs say nothing, as before hosts.
        if let Some(host) = &p.run.host {
            title.push(Span::styled(format!("on {host} "), t.style(Slot::UiMuted)));
        }
        title.push(Span::styled(format!("{badge} "), t.style(slot)));
        let title = Line::from(title);
        let sub = Line::from(vec![Span::styled(
            format!(
                " {} · {} · {} ",
                elapsed(&p.run, self.now),
                spend_text(p.spend()),
                ticket
            ),
            t.style(Slot::UiMuted),
        )]);
        let mut block = Block::default()
            .borders(Borders::ALL)
            .border_style(border)
            .title(title)
            .title_bottom(sub);
        if zoomed && p.scroll > 0 {
            block = block.title_top(
                Line::from(Span::styled(
                    format!(" {} lines up ", p.scroll),
                    t.style(Slot::UiMuted),
                ))
                .right_aligned(),
            );
        }
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let scroll = if zoomed { p.scroll } else { 0 };
        let lines = p.lines.window(inner.height as usize, scroll);
        frame.render_widget(Paragraph::new(lines), inner);
    }
}

impl App {
    /// A pane's new steps arrived.
    pub(in crate::tui) fn on_pane_steps(&mut self, run: RunId, steps: &[Step]) {
        let again = self.landed(Load::PaneSteps(run));
        if let Some(p) = self.fleet.by_run.get_mut(&run) {
            p.take_steps(steps, &self.theme);
            // More arrived meanwhile: fetched on the next tick, not at once.
            p.due = again || p.loaded < p.known;
        }
    }

    pub(in crate::tui) fn sync_panes(&mut self, fx: &mut Vec<Effect>) {
        let keep = self.fleet.panes.get(self.fleet.selected).copied();
        let ids = pick_runs(&self.runs, self.now);
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

    pub(in crate::tui) fn pane_fetch(&mut self, run: RunId, fx: &mut Vec<Effect>) {
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

    pub(in crate::tui) fn fleet_action(&mut self, a: Action, fx: &mut Vec<Effect>) {
        let n = self.fleet.panes.len();
        let page = self.page.get().max(1) as usize;
        let selected = self.fleet.panes.get(self.fleet.selected).copied();
        match a {
            Action::Down | Action::Up | Action::PageDown | Action::PageUp if self.fleet.zoomed => {
                if let Some(p) = selected.and_then(|r| self.fleet.by_run.get_mut(&r)) {
                    p.scroll = match a {
                        Action::Up => p.scroll + 1,
                        Action::PageUp => p.scroll + page,
                        Action::Down => p.scroll.saturating_sub(1),
                        _ => p.scroll.saturating_sub(page),
                    }
                    .min(p.lines.len());
                }
            }
            Action::Right | Action::Down if n > 0 => {
                self.fleet.selected = (self.fleet.selected + 1) % n
            }
            Action::Left | Action::Up if n > 0 => {
                self.fleet.selected = (self.fleet.selected + n - 1) % n
            }
            Action::Zoom if n > 0 => self.fleet.zoomed = !self.fleet.zoomed,
            Action::Back => self.fleet.zoomed = false,
            Action::Kill => match selected.and_then(|r| self.fleet.by_run.get(&r)) {
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
            Action::Retry => match selected.and_then(|r| self.fleet.by_run.get(&r)) {
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
}

/// The fleet screen: the grid of panes (or the selected one zoomed), each pane a
/// clickable region.
pub fn draw(frame: &mut Frame, body: Rect, app: &App) {
    FleetView {
        panes: &app.fleet.panes,
        by_run: &app.fleet.by_run,
        selected: app.fleet.selected,
        zoomed: app.fleet.zoomed,
        titles: &app.titles,
        now: app.now,
        theme: &app.theme,
    }
    .render(frame, body);
    if app.screen == Screen::Fleet && !app.fleet.zoomed {
        let cells = grid(app.fleet.panes.len(), body);
        let mut hits = app.hits.borrow_mut();
        for (i, c) in cells.into_iter().enumerate() {
            hits.push((c, Hit::Pane(i)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(in crate::tui) fn prompts_for_a_person_are_recognised() {
        for l in [
            "Shall I also update the docs?",
            "Overwrite the file? [y/N]",
            "Press Enter to continue",
            "waiting for input",
        ] {
            assert!(asks_for_input(l), "{l}");
        }
        for l in ["Running the tests.", "exit 0", "what? no: done."] {
            assert!(!asks_for_input(l), "{l}");
        }
    }

    #[test]
    pub(in crate::tui) fn the_grid_holds_every_pane_inside_the_area() {
        let area = Rect::new(0, 0, 200, 58);
        for n in 1..=MAX_PANES {
            let cells = grid(n, area);
            assert_eq!(cells.len(), n);
            for c in cells {
                assert!(c.right() <= area.right() && c.bottom() <= area.bottom());
                assert!(c.width >= 40 && c.height >= 14, "{n}: {c:?}");
            }
        }
    }
}

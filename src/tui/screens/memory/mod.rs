//! The memory screen: a search box over the fleet's memory with recall's filters, the
//! hits and the selected memory whole; enter opens the step it came from in replay.

pub mod state;

pub use state::*;

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use crate::model::MemoryKind;
use crate::tui::app::{App, Hit, Layer};
use crate::tui::effect::Effect;
use crate::tui::forms::MemoryForm;
use crate::tui::keymap::Action;
use crate::tui::theme::Slot;
use crate::tui::widgets::{ago, boxed, row, window_start};
use crate::wire::{MemoryHit, MemorySearch};

impl App {
    /// A click on a hit selects it.
    pub(in crate::tui) fn memory_click(&mut self, i: usize) {
        self.memory.selected = i.min(self.memory.hits.len().saturating_sub(1))
    }

    /// Recall's answer arrived; a stale one (an older search) is dropped.
    pub(in crate::tui) fn on_memories(&mut self, generation: u64, hits: Vec<MemoryHit>) {
        if generation == self.memory.generation {
            self.memory.hits = hits;
            self.memory.searched = true;
            self.memory.selected = self
                .memory
                .selected
                .min(self.memory.hits.len().saturating_sub(1));
        }
    }

    pub(in crate::tui) fn search_memory(&mut self, fx: &mut Vec<Effect>) {
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

    /// Keys while the memory search box has focus; false lets the keymap have it.
    pub(in crate::tui) fn memory_typing_key(&mut self, k: KeyEvent, fx: &mut Vec<Effect>) -> bool {
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
                self.action(Action::OpenSource, fx);
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

    pub(in crate::tui) fn filter_key(&mut self, k: KeyEvent, fx: &mut Vec<Effect>) {
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

    pub(in crate::tui) fn memory_action(&mut self, a: Action, fx: &mut Vec<Effect>) {
        match a {
            Action::Search => self.memory.typing = true,
            Action::Down if self.memory.selected + 1 < self.memory.hits.len() => {
                self.memory.selected += 1
            }
            Action::Up => self.memory.selected = self.memory.selected.saturating_sub(1),
            Action::Add => self
                .layers
                .push(Layer::MemoryForm(Box::new(MemoryForm::new(&self.theme)))),
            Action::Filter => self.layers.push(Layer::MemoryFilter),
            Action::OpenSource => {
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
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let m = &app.memory;
    let [search, filters, rest] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Min(3),
    ])
    .areas(area);
    let mut q = m.query.clone();
    q.set_block(boxed(
        if m.typing {
            " ▶ search (esc: leave the box) "
        } else {
            " search (/ to type) "
        },
        m.typing,
        t,
    ));
    q.set_cursor_line_style(Style::default());
    if !m.typing {
        q.set_cursor_style(Style::default());
    }
    frame.render_widget(&q, search);
    let f = &m.filters;
    frame.render_widget(
        Paragraph::new(Line::styled(
            format!(
                " filters (f): kind {} · agent {} · {}",
                f.kind.map_or("any", |k| k.name()),
                if f.agent.is_empty() { "any" } else { &f.agent },
                within_label(f.within_hours)
            ),
            t.style(Slot::UiMuted),
        )),
        filters,
    );
    let [list, detail] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(rest);
    let block = boxed(
        Span::styled(
            format!(" {} memories ", m.hits.len()),
            t.style(Slot::UiTitle),
        ),
        !m.typing,
        t,
    );
    let inner = block.inner(list);
    frame.render_widget(block, list);
    let h = inner.height as usize;
    let start = window_start(m.selected, m.hits.len(), h);
    let mut lines = vec![];
    for (i, hit) in m.hits.iter().enumerate().skip(start).take(h) {
        let mem = &hit.memory;
        lines.push(row(
            i == m.selected,
            vec![
                Span::styled(
                    format!("{:<10} ", mem.kind.name()),
                    t.style(Slot::MemoryKind),
                ),
                Span::styled(
                    mem.text.lines().next().unwrap_or("").to_string(),
                    t.style(Slot::MemoryHit),
                ),
            ],
            t,
        ));
        app.hits.borrow_mut().push((
            Rect::new(inner.x, inner.y + (i - start) as u16, inner.width, 1),
            Hit::Row(i),
        ));
    }
    if m.hits.is_empty() {
        lines.push(Line::styled(
            if m.searched {
                "  nothing recalled"
            } else {
                "  type to search"
            },
            t.style(Slot::UiMuted),
        ));
    }
    frame.render_widget(Paragraph::new(lines), inner);
    let Some(hit) = m.hits.get(m.selected) else {
        frame.render_widget(boxed(" memory ", false, t), detail);
        return;
    };
    let mem = &hit.memory;
    let mut body: Vec<Line> = mem.text.lines().map(|l| Line::raw(l.to_string())).collect();
    body.push(Line::raw(""));
    body.push(Line::styled(
        format!(
            "{} by {} · {}",
            mem.kind.name(),
            mem.author.name(),
            ago(mem.ts, app.now)
        ),
        t.style(Slot::UiMuted),
    ));
    if !mem.paths.is_empty() {
        body.push(Line::styled(
            format!("paths: {}", mem.paths.join(", ")),
            t.style(Slot::UiMuted),
        ));
    }
    if !mem.tags.is_empty() {
        body.push(Line::styled(
            format!("tags: {}", mem.tags.join(", ")),
            t.style(Slot::UiMuted),
        ));
    }
    let legs: Vec<&str> = hit.legs.iter().map(|l| l.name()).collect();
    body.push(Line::styled(
        format!("recalled by {} ({:.3})", legs.join("+"), hit.score),
        t.style(Slot::UiMuted),
    ));
    match &mem.source {
        Some(s) => body.push(Line::styled(
            format!(
                "from run {} step {} (enter opens it in replay)",
                s.run, s.step
            ),
            t.style(Slot::UiTitle),
        )),
        None => body.push(Line::styled(
            "written by hand: no source step",
            t.style(Slot::UiMuted),
        )),
    }
    frame.render_widget(
        Paragraph::new(body).wrap(Wrap { trim: false }).block(boxed(
            Span::styled(format!(" memory {} ", mem.id), t.style(Slot::UiTitle)),
            false,
            t,
        )),
        detail,
    );
}

fn within_label(h: Option<u32>) -> String {
    match h {
        None => "any time".into(),
        Some(1) => "last hour".into(),
        Some(24) => "last day".into(),
        Some(h) if h % 24 == 0 => format!("last {} days", h / 24),
        Some(h) => format!("last {h} hours"),
    }
}

pub fn draw_filter(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let f = &app.memory.filters;
    let rect = crate::tui::forms::centered(area, 56, 7);
    frame.render_widget(Clear, rect);
    let rows = [
        format!("kind   ◀ {} ▶", f.kind.map_or("any", |k| k.name())),
        format!("agent  {}▏", f.agent),
        format!("when   ◀ {} ▶", within_label(f.within_hours)),
    ];
    let mut lines: Vec<Line> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| row(i == f.row, vec![Span::raw(r.clone())], t))
        .collect();
    lines.push(Line::styled(
        format!(
            "up/down: row · left/right: change · enter: apply ({} windows)",
            WITHIN.len()
        ),
        t.style(Slot::UiMuted),
    ));
    frame.render_widget(
        Paragraph::new(lines).block(boxed(" memory filters ", true, t)),
        rect,
    );
}

//! The tickets screen: a board of columns by state, the selected ticket whole under it,
//! and the keys that add, cancel, reprioritise and replay tickets.

pub mod state;

pub use state::*;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::model::Ticket;
use crate::tui::app::{App, Hit, Layer};
use crate::tui::effect::{Effect, Load, LoadArgs};
use crate::tui::forms::{Confirm, Prompt, PromptFor, TicketForm};
use crate::tui::keymap::Action;
use crate::tui::theme::Slot;
use crate::tui::widgets::{ago, boxed, row, window_start};

impl App {
    /// A click on a ticket of the board selects it.
    pub(in crate::tui) fn tickets_click(&mut self, i: usize) {
        // Rows of the board are encoded column * 10_000 + row.
        self.board.column = (i / 10_000).min(BOARD.len() - 1);
        self.board.row = i % 10_000;
        self.clamp_board();
    }

    /// The tickets arrived: the board and every screen's titles follow them.
    pub(in crate::tui) fn on_tickets(&mut self, ts: Vec<Ticket>, fx: &mut Vec<Effect>) {
        self.titles = ts.iter().map(|t| (t.id, t.title.clone())).collect();
        self.tickets = ts;
        self.clamp_board();
        if self.landed(Load::Tickets) {
            self.load(Load::Tickets, LoadArgs::default(), fx);
        }
    }

    pub fn column(&self, i: usize) -> Vec<&Ticket> {
        let mut v: Vec<&Ticket> = self
            .tickets
            .iter()
            .filter(|t| t.state == BOARD[i])
            .collect();
        v.sort_by_key(|t| t.take_order());
        v
    }

    pub fn selected_ticket(&self) -> Option<&Ticket> {
        self.column(self.board.column).get(self.board.row).copied()
    }

    pub(in crate::tui) fn clamp_board(&mut self) {
        let n = self.column(self.board.column).len();
        self.board.row = self.board.row.min(n.saturating_sub(1));
    }

    pub(in crate::tui) fn tickets_action(&mut self, a: Action, fx: &mut Vec<Effect>) {
        let rows = self.column(self.board.column).len();
        match a {
            Action::Down if self.board.row + 1 < rows => self.board.row += 1,
            Action::Up => self.board.row = self.board.row.saturating_sub(1),
            Action::Right => {
                self.board.column = (self.board.column + 1) % BOARD.len();
                self.clamp_board();
            }
            Action::Left => {
                self.board.column = (self.board.column + BOARD.len() - 1) % BOARD.len();
                self.clamp_board();
            }
            Action::New => self
                .layers
                .push(Layer::TicketForm(Box::new(TicketForm::new(&self.theme)))),
            Action::Cancel => match self.selected_ticket() {
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
            Action::Priority => match self.selected_ticket() {
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
            Action::OpenReplay => match self.selected_ticket().and_then(|t| t.runs.last().copied())
            {
                Some(run) => self.open_replay(run, None, fx),
                None => self.refuse("this ticket has no run yet"),
            },
            _ => {}
        }
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    // The board, and under it the selected ticket whole (titles are cut in the columns).
    let [area, detail] = Layout::vertical([Constraint::Min(6), Constraint::Length(7)]).areas(area);
    draw_ticket_detail(frame, detail, app);
    let cols =
        Layout::horizontal(vec![Constraint::Ratio(1, BOARD.len() as u32); BOARD.len()]).split(area);
    for (c, state) in BOARD.iter().enumerate() {
        let items = app.column(c);
        let focus = c == app.board.column;
        let block = boxed(
            Span::styled(
                format!(" {} ({}) ", state.name(), items.len()),
                t.style(Slot::UiTitle),
            ),
            focus,
            t,
        );
        let inner = block.inner(cols[c]);
        frame.render_widget(block, cols[c]);
        let h = inner.height as usize / 2;
        let start = if focus {
            window_start(app.board.row, items.len(), h)
        } else {
            0
        };
        let mut lines = vec![];
        for (i, tk) in items.iter().enumerate().skip(start).take(h) {
            let sel = focus && i == app.board.row;
            lines.push(row(
                sel,
                vec![
                    Span::styled(format!("#{} ", tk.id), t.style(Slot::UiMuted)),
                    Span::raw(tk.title.clone()),
                ],
                t,
            ));
            let mut meta = format!("    p{}", tk.priority);
            // What it cost first: the column cuts the end of the line.
            let spent = crate::spend::ticket_cost(&app.runs, tk.id);
            if spent > 0.0 {
                meta.push_str(&format!(" · ${spent:.2}"));
            }
            if let Some(a) = &tk.agent {
                meta.push_str(&format!(" · {a}"));
            }
            if !tk.runs.is_empty() {
                meta.push_str(&format!(
                    " · {} run{}",
                    tk.runs.len(),
                    if tk.runs.len() == 1 { "" } else { "s" }
                ));
            }
            lines.push(Line::styled(meta, t.style(Slot::UiMuted)));
            let y = inner.y + ((i - start) * 2) as u16;
            app.hits.borrow_mut().push((
                Rect::new(inner.x, y, inner.width, 2),
                Hit::Row(c * 10_000 + i),
            ));
        }
        if items.is_empty() {
            lines.push(Line::styled("  (none)", t.style(Slot::UiMuted)));
        }
        frame.render_widget(Paragraph::new(lines), inner);
    }
    if app.tickets.is_empty() {
        let hint = Paragraph::new(Line::styled(
            " n adds a ticket: a title, and optionally a body, priority, agent and paths ",
            t.style(Slot::UiMuted),
        ));
        let r = Rect::new(
            area.x + 1,
            area.bottom().saturating_sub(2),
            area.width.saturating_sub(2),
            1,
        );
        frame.render_widget(hint, r);
    }
}

fn draw_ticket_detail(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let Some(tk) = app.selected_ticket() else {
        frame.render_widget(boxed(" ticket ", false, t), area);
        return;
    };
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("{} ", tk.state.name()), t.style(Slot::UiMuted)),
        Span::raw(tk.title.clone()),
    ])];
    lines.extend(
        tk.body
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(2)
            .map(|l| Line::raw(l.to_string())),
    );
    let mut meta = format!(
        "priority {} · agent {} · created {}",
        tk.priority,
        tk.agent.as_deref().unwrap_or("(default)"),
        ago(tk.created, app.now)
    );
    if !tk.paths.is_empty() {
        meta.push_str(&format!(" · paths {}", tk.paths.join(", ")));
    }
    if !tk.runs.is_empty() {
        let runs: Vec<String> = tk.runs.iter().map(|r| r.to_string()).collect();
        meta.push_str(&format!(
            " · runs {} (enter replays the last) · spent ${:.2}",
            runs.join(", "),
            crate::spend::ticket_cost(&app.runs, tk.id)
        ));
    }
    lines.push(Line::styled(meta, t.style(Slot::UiMuted)));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(boxed(
                Span::styled(format!(" ticket #{} ", tk.id), t.style(Slot::UiTitle)),
                false,
                t,
            )),
        area,
    );
}

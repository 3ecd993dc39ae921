//! The overlays that ask something: a yes/no confirmation, a one-line prompt (a reject
//! reason, a priority, a search), and the ticket and memory editors, all built on
//! ratatui-textarea so editing keys work as in any text field (arrows, Home/End, Ctrl-W,
//! Ctrl-U, undo with Ctrl-Z... ).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui_textarea::TextArea;

use super::effect::Effect;
use super::theme::{Slot, Theme};
use crate::model::{Author, MemoryKind};
use crate::wire::{MemoryWrite, NewTicket};

/// A question with a yes that does `on_yes`.
#[derive(Clone, Debug, PartialEq)]
pub struct Confirm {
    pub question: String,
    pub on_yes: Effect,
}

/// What a prompt's answer is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PromptFor {
    Reject(crate::model::QueueEntryId),
    Comment {
        entry: crate::model::QueueEntryId,
        path: String,
        line: u32,
    },
    Priority(crate::model::TicketId),
    Search,
}

pub struct Prompt {
    pub purpose: PromptFor,
    pub title: String,
    pub area: TextArea<'static>,
}

fn field(title: &str, text: &str, theme: &Theme) -> TextArea<'static> {
    let mut a = TextArea::new(text.lines().map(String::from).collect());
    if a.lines().is_empty() {
        a = TextArea::default();
    }
    a.set_block(
        Block::default()
            .borders(Borders::ALL)
            .border_style(theme.style(Slot::UiBorder))
            .title(title.to_string()),
    );
    a.set_cursor_line_style(ratatui::style::Style::default());
    a.move_cursor(ratatui_textarea::CursorMove::End);
    a
}

fn focus(a: &mut TextArea<'static>, on: bool, title: &str, theme: &Theme) {
    let (style, mark) = if on {
        (theme.style(Slot::UiBorderFocus), "▶ ")
    } else {
        (theme.style(Slot::UiBorder), "")
    };
    a.set_block(
        Block::default()
            .borders(Borders::ALL)
            .border_style(style)
            .title(format!("{mark}{title}")),
    );
    // The cursor shows only in the field that has the keys.
    a.set_cursor_style(if on {
        ratatui::style::Style::default().add_modifier(ratatui::style::Modifier::REVERSED)
    } else {
        ratatui::style::Style::default()
    });
}

impl Prompt {
    pub fn new(purpose: PromptFor, title: &str, text: &str, theme: &Theme) -> Prompt {
        let mut area = field(title, text, theme);
        focus(&mut area, true, title, theme);
        Prompt {
            purpose,
            title: title.to_string(),
            area,
        }
    }

    pub fn text(&self) -> String {
        self.area.lines().join("\n")
    }

    pub fn render(&self, frame: &mut Frame, area: Rect) {
        let rect = centered(area, 70, 3);
        frame.render_widget(Clear, rect);
        frame.render_widget(&self.area, rect);
    }
}

impl Confirm {
    pub fn render(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let rect = centered(area, 64, 6);
        frame.render_widget(Clear, rect);
        let body = vec![
            Line::from(self.question.clone()),
            Line::from(""),
            Line::from(vec![
                Span::styled(" y ", theme.style(Slot::UiHelpKey)),
                Span::raw("yes   "),
                Span::styled(" n ", theme.style(Slot::UiHelpKey)),
                Span::raw("no"),
            ]),
        ];
        frame.render_widget(
            Paragraph::new(body).wrap(Wrap { trim: true }).block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(theme.style(Slot::UiBorderFocus))
                    .title(" confirm "),
            ),
            rect,
        );
    }
}

/// What a key did to a form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormOutcome {
    Open,
    Submit,
    Cancelled,
}

/// Fields move with Tab; Ctrl-S (or Enter on the last field) submits; Esc cancels.
fn form_key(
    k: &KeyEvent,
    fields: usize,
    at: &mut usize,
    multiline: &[usize],
) -> Option<FormOutcome> {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    match k.code {
        KeyCode::Esc => Some(FormOutcome::Cancelled),
        KeyCode::Char('s') if ctrl => Some(FormOutcome::Submit),
        KeyCode::Tab | KeyCode::Down if !multiline.contains(at) || k.code == KeyCode::Tab => {
            *at = (*at + 1) % fields;
            Some(FormOutcome::Open)
        }
        KeyCode::BackTab => {
            *at = (*at + fields - 1) % fields;
            Some(FormOutcome::Open)
        }
        KeyCode::Up if !multiline.contains(at) => {
            *at = (*at + fields - 1) % fields;
            Some(FormOutcome::Open)
        }
        KeyCode::Enter if !multiline.contains(at) => {
            if *at + 1 == fields {
                Some(FormOutcome::Submit)
            } else {
                *at += 1;
                Some(FormOutcome::Open)
            }
        }
        _ => None,
    }
}

const TICKET_FIELDS: [&str; 5] = [
    " title ",
    " body (enter: new line) ",
    " priority (higher runs first) ",
    " agent profile (empty: the default) ",
    " paths it may touch (comma-separated globs) ",
];

pub struct TicketForm {
    pub fields: Vec<TextArea<'static>>,
    pub at: usize,
    pub error: Option<String>,
    theme: Theme,
}

impl TicketForm {
    pub fn new(theme: &Theme) -> TicketForm {
        let fields = TICKET_FIELDS
            .iter()
            .enumerate()
            .map(|(i, t)| field(t, if i == 2 { "0" } else { "" }, theme))
            .collect();
        let mut f = TicketForm {
            fields,
            at: 0,
            error: None,
            theme: theme.clone(),
        };
        f.refocus();
        f
    }

    fn refocus(&mut self) {
        for (i, a) in self.fields.iter_mut().enumerate() {
            focus(a, i == self.at, TICKET_FIELDS[i], &self.theme);
        }
    }

    pub fn key(&mut self, k: KeyEvent) -> FormOutcome {
        match form_key(&k, self.fields.len(), &mut self.at, &[1]) {
            Some(o) => {
                self.refocus();
                o
            }
            None => {
                self.fields[self.at].input(k);
                FormOutcome::Open
            }
        }
    }

    pub fn paste(&mut self, text: &str) {
        self.fields[self.at].insert_str(text);
    }

    fn value(&self, i: usize) -> String {
        self.fields[i].lines().join("\n").trim().to_string()
    }

    /// The ticket, or what to fix.
    pub fn ticket(&self) -> Result<NewTicket, String> {
        let title = self.value(0);
        if title.is_empty() {
            return Err("a ticket needs a title".into());
        }
        let p = self.value(2);
        let priority = if p.is_empty() {
            0
        } else {
            p.parse::<i32>()
                .map_err(|_| format!("priority `{p}` is not a whole number"))?
        };
        let agent = Some(self.value(3)).filter(|a| !a.is_empty());
        let paths = self
            .value(4)
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        Ok(NewTicket {
            title,
            body: self.value(1),
            priority,
            agent,
            paths,
            labels: vec![],
        })
    }

    pub fn render(&self, frame: &mut Frame, area: Rect) {
        let rect = centered(area, 80, 21);
        frame.render_widget(Clear, rect);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(self.theme.style(Slot::UiBorderFocus))
            .title(" new ticket — tab: next field · ctrl-s: add · esc: cancel ");
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let rows = Layout::vertical([
            Constraint::Length(3),
            Constraint::Min(4),
            Constraint::Length(3),
            Constraint::Length(3),
            Constraint::Length(3),
            Constraint::Length(1),
        ])
        .split(inner);
        for (i, a) in self.fields.iter().enumerate() {
            frame.render_widget(a, rows[i]);
        }
        if let Some(e) = &self.error {
            frame.render_widget(
                Paragraph::new(Span::styled(
                    format!("✗ {e}"),
                    self.theme.style(Slot::StepError),
                )),
                rows[5],
            );
        }
    }
}

pub struct MemoryForm {
    pub kind: MemoryKind,
    pub text: TextArea<'static>,
    pub paths: TextArea<'static>,
    /// 0: kind, 1: text, 2: paths.
    pub at: usize,
    pub error: Option<String>,
    theme: Theme,
}

const MEMORY_FIELDS: [&str; 3] = [
    " kind (left/right) ",
    " what to remember (enter: new line) ",
    " paths it concerns (comma-separated) ",
];

impl MemoryForm {
    pub fn new(theme: &Theme) -> MemoryForm {
        let mut f = MemoryForm {
            kind: MemoryKind::Lesson,
            text: field(MEMORY_FIELDS[1], "", theme),
            paths: field(MEMORY_FIELDS[2], "", theme),
            at: 1,
            error: None,
            theme: theme.clone(),
        };
        f.refocus();
        f
    }

    fn refocus(&mut self) {
        focus(&mut self.text, self.at == 1, MEMORY_FIELDS[1], &self.theme);
        focus(&mut self.paths, self.at == 2, MEMORY_FIELDS[2], &self.theme);
    }

    pub fn key(&mut self, k: KeyEvent) -> FormOutcome {
        if self.at == 0 && matches!(k.code, KeyCode::Left | KeyCode::Right) {
            let all = MemoryKind::ALL;
            let i = all.iter().position(|x| *x == self.kind).unwrap_or(0);
            let n = all.len();
            self.kind = all[if k.code == KeyCode::Left {
                (i + n - 1) % n
            } else {
                (i + 1) % n
            }];
            return FormOutcome::Open;
        }
        match form_key(&k, 3, &mut self.at, &[1]) {
            Some(o) => {
                self.refocus();
                o
            }
            None => {
                match self.at {
                    1 => {
                        self.text.input(k);
                    }
                    2 => {
                        self.paths.input(k);
                    }
                    _ => {}
                }
                FormOutcome::Open
            }
        }
    }

    pub fn paste(&mut self, text: &str) {
        match self.at {
            2 => self.paths.insert_str(text),
            _ => self.text.insert_str(text),
        };
    }

    pub fn memory(&self, user: &str) -> Result<MemoryWrite, String> {
        let text = self.text.lines().join("\n").trim().to_string();
        if text.is_empty() {
            return Err("write what the fleet should remember".into());
        }
        Ok(MemoryWrite {
            text,
            kind: self.kind,
            paths: self
                .paths
                .lines()
                .join(",")
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            tags: vec![],
            author: Author::Human {
                name: user.to_string(),
            },
        })
    }

    pub fn render(&self, frame: &mut Frame, area: Rect) {
        let rect = centered(area, 76, 16);
        frame.render_widget(Clear, rect);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(self.theme.style(Slot::UiBorderFocus))
            .title(" add a memory — tab: next field · ctrl-s: save · esc: cancel ");
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let rows = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(4),
            Constraint::Length(3),
            Constraint::Length(1),
        ])
        .split(inner);
        let mark = if self.at == 0 { "▶" } else { " " };
        let kinds: Vec<Span> = MemoryKind::ALL
            .iter()
            .flat_map(|k| {
                let style = if *k == self.kind {
                    self.theme.style(Slot::UiSelection)
                } else {
                    self.theme.style(Slot::UiMuted)
                };
                let label = if *k == self.kind {
                    format!("[{}]", k.name())
                } else {
                    format!(" {} ", k.name())
                };
                [Span::styled(label, style), Span::raw(" ")]
            })
            .collect();
        let mut line = vec![Span::raw(format!("{mark} kind: "))];
        line.extend(kinds);
        frame.render_widget(Paragraph::new(Line::from(line)), rows[0]);
        frame.render_widget(&self.text, rows[1]);
        frame.render_widget(&self.paths, rows[2]);
        if let Some(e) = &self.error {
            frame.render_widget(
                Paragraph::new(Span::styled(
                    format!("✗ {e}"),
                    self.theme.style(Slot::StepError),
                )),
                rows[3],
            );
        }
    }
}

/// A `width` x `height` rectangle in the middle of `area`, clipped to it.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

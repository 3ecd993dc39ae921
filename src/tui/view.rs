//! Drawing the app: the tab bar, the screen, the overlays and the status bar, from `App`
//! alone; each screen draws itself (`screens::*::draw`). Long lists (a 100,000-step
//! timeline) draw only the rows in view. Clickable regions are recorded as the frame is
//! drawn, for the mouse.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::app::{App, Hit, Layer, Screen};
use super::screens;
use super::status::{Status, StatusBar};
use crate::tui::theme::Slot;

pub fn draw(frame: &mut Frame, app: &App) {
    app.hits.borrow_mut().clear();
    let area = frame.area();
    let [tabs, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    app.page.set(body.height.saturating_sub(2));
    draw_tabs(frame, tabs, app);
    match app.screen {
        Screen::Fleet => screens::fleet::draw(frame, body, app),
        Screen::Tickets => screens::tickets::draw(frame, body, app),
        Screen::Replay => screens::replay::draw::draw(frame, body, app),
        Screen::Queue => screens::queue::draw::draw(frame, body, app),
        Screen::Memory => screens::memory::draw(frame, body, app),
    }
    let s = &app.status;
    let bar = Status {
        workspace: s.workspace.clone(),
        main_head: s.main_head.clone(),
        running: s.running,
        limit: s.limit,
        queued: s.queue_len,
        waiting: s.waiting,
        held: s.held.clone(),
        address: if app.connected {
            s.address.clone()
        } else {
            format!("✗ disconnected: {}", s.address)
        },
    };
    frame.render_widget(
        StatusBar {
            status: &bar,
            theme: &app.theme,
        },
        status,
    );
    for layer in &app.layers {
        match layer {
            Layer::Help => super::help::render(frame, body, &app.keymap, app.mode(), &app.theme),
            Layer::Confirm(c) => c.render(frame, body, &app.theme),
            Layer::Prompt(p) => p.render(frame, body),
            Layer::TicketForm(f) => f.render(frame, body),
            Layer::MemoryForm(f) => f.render(frame, body),
            Layer::MemoryFilter => screens::memory::draw_filter(frame, body, app),
        }
    }
    keep_only_safe_text(frame.buffer_mut());
}

/// Drop from every cell what a terminal would act on. Tickets, memories, run sources and
/// agent output reach many widgets; ratatui drops control characters but keeps bidi
/// overrides (appended to the cell before), which reorder what the screen shows. One pass
/// over the finished frame covers every widget, present and future.
fn keep_only_safe_text(buf: &mut ratatui::buffer::Buffer) {
    for cell in &mut buf.content {
        if cell.symbol().chars().any(crate::safe_text::is_unsafe) {
            let kept: String = cell
                .symbol()
                .chars()
                .filter(|&c| !crate::safe_text::is_unsafe(c))
                .collect();
            cell.set_symbol(if kept.is_empty() { " " } else { &kept });
        }
    }
}

fn draw_tabs(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let mut spans = vec![];
    let mut x = area.x;
    for (i, s) in Screen::ALL.iter().enumerate() {
        let mut label = format!(" {} {} ", i + 1, s.title());
        if *s == Screen::Queue && app.status.waiting > 0 {
            label = format!(" {} {} ⚑{} ", i + 1, s.title(), app.status.waiting);
        }
        let style = if *s == app.screen {
            t.style(Slot::UiSelection)
                .add_modifier(ratatui::style::Modifier::UNDERLINED)
        } else {
            t.style(Slot::UiMuted)
        };
        let w = label.chars().count() as u16;
        app.hits
            .borrow_mut()
            .push((Rect::new(x, area.y, w, 1), Hit::Tab(*s)));
        x += w + 1;
        spans.push(Span::styled(label, style));
        spans.push(Span::raw(" "));
    }
    if let Some(f) = &app.flash {
        let (style, mark) = if f.error {
            (t.style(Slot::StepError), "✗ ")
        } else {
            (t.style(Slot::UiTitle), "")
        };
        spans.push(Span::styled(format!(" {mark}{}", f.text), style));
    } else {
        spans.push(Span::styled("  ? keys", t.style(Slot::UiMuted)));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

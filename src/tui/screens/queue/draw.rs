//! Drawing the merge queue: the entries, and the selected one's head, verdict and
//! reviews over its diff (with comments under their lines) or its test log.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::new_line_numbers;
use crate::model::{QueueEntry, QueueState};
use crate::tui::app::{App, Hit};
use crate::tui::keymap::Action;
use crate::tui::scrollback::styled_lines;
use crate::tui::theme::{Slot, Theme};
use crate::tui::widgets::{ago, boxed, diff_lines, row, window_start};

pub fn queue_symbol(s: QueueState) -> (&'static str, Slot) {
    match s {
        QueueState::Queued => ("·", Slot::Ui),
        QueueState::Testing => ("⟳", Slot::QueueTesting),
        QueueState::AwaitingApproval => ("⚑", Slot::QueueWaiting),
        QueueState::Landing => ("⇡", Slot::QueueTesting),
        QueueState::Merged => ("✓", Slot::QueueMerged),
        QueueState::Bounced => ("↩", Slot::QueueBounced),
        QueueState::Rejected => ("✗", Slot::QueueRejected),
    }
}

fn test_summary(e: &QueueEntry) -> String {
    match e.tests.last() {
        // A pass on a retry is a flaky suite: said, not hidden behind the tick.
        Some(r) if r.ok && r.retry > 0 => format!(
            "tests ✓ flaky (failed {} time(s) first) {:.1}s",
            r.retry, r.seconds
        ),
        Some(r) if r.ok => format!("tests ✓ {:.1}s", r.seconds),
        Some(r) => format!(
            "tests ✗ exit {} {:.1}s",
            r.exit_code.map_or("?".into(), |c| c.to_string()),
            r.seconds
        ),
        None => "tests —".into(),
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let q = &app.queue;
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(area);
    let paused = if q.view.paused { " (paused)" } else { "" };
    let block = boxed(
        Span::styled(
            format!(" merge queue{paused}: {} entries ", q.view.entries.len()),
            t.style(Slot::UiTitle),
        ),
        true,
        t,
    );
    let inner = block.inner(left);
    frame.render_widget(block, left);
    let h = inner.height as usize;
    let start = window_start(q.selected, q.view.entries.len(), h);
    let mut lines = vec![];
    for (i, e) in q.view.entries.iter().enumerate().skip(start).take(h) {
        let (sym, slot) = queue_symbol(e.state);
        let title = e
            .ticket
            .and_then(|id| app.titles.get(&id))
            .cloned()
            .unwrap_or_else(|| e.branch.clone());
        let flags = match &e.verdict {
            Some(v) if !v.denied.is_empty() => " deny",
            Some(v) if v.needs_human => " gated",
            _ => "",
        };
        let spans = vec![
            Span::styled(format!("{sym} {:<17}", e.state.name()), t.style(slot)),
            Span::styled(format!(" #{:<3}", e.id), t.style(Slot::UiMuted)),
            Span::styled(format!("{flags} "), t.style(Slot::AgentWaiting)),
            Span::raw(title),
        ];
        lines.push(row(i == q.selected, spans, t));
        app.hits.borrow_mut().push((
            Rect::new(inner.x, inner.y + (i - start) as u16, inner.width, 1),
            Hit::Row(i),
        ));
    }
    if q.view.entries.is_empty() {
        lines.push(Line::styled(
            "  nothing waits to land",
            t.style(Slot::UiMuted),
        ));
    }
    frame.render_widget(Paragraph::new(lines), inner);

    let Some(e) = q.selected_entry() else {
        frame.render_widget(boxed(" entry ", false, t), right);
        return;
    };
    let detail = q.detail.as_ref().filter(|d| d.entry.id == e.id);
    // The list is reloaded on every queue event; a detail loaded before is as fresh only
    // if nothing happened to the entry since.
    let e = match detail {
        Some(d) if d.entry.updated > e.updated => &d.entry,
        _ => e,
    };
    let (sym, slot) = queue_symbol(e.state);
    let mut lines: Vec<Line> = vec![Line::from(vec![
        Span::styled(format!("{sym} {} ", e.state.name()), t.style(slot)),
        Span::raw(format!(
            "`{}` at {} · priority {}",
            e.branch,
            crate::model::short_commit(&e.head),
            e.priority
        )),
    ])];
    if let Some(d) = detail
        && let Some(title) = &d.title
    {
        lines.push(Line::raw(format!(
            "ticket {}: {title}",
            e.ticket.map_or("-".into(), |t| t.to_string())
        )));
    }
    lines.push(Line::styled(
        format!(
            "{} · run {} · queued {}",
            test_summary(e),
            e.run.map_or("-".into(), |r| r.to_string()),
            ago(e.enqueued, app.now)
        ),
        if e.tests.last().is_some_and(|r| !r.ok) {
            t.style(Slot::StepError)
        } else {
            t.style(Slot::UiMuted)
        },
    ));
    if let Some(v) = &e.verdict {
        if v.needs_human {
            lines.push(Line::styled(
                format!("⚑ needs a human: {}", v.reasons.join("; ")),
                t.style(Slot::AgentWaiting),
            ));
        }
        if !v.gated.is_empty() {
            lines.push(Line::raw(format!("  gated paths: {}", v.gated.join(", "))));
        }
        if !v.denied.is_empty() {
            lines.push(Line::styled(
                format!("✗ denied paths: {}", v.denied.join(", ")),
                t.style(Slot::StepError),
            ));
        }
        if !v.needs_human && v.denied.is_empty() {
            lines.push(Line::styled(
                format!("policy ✓ {} files, {} lines", v.files, v.changed_lines),
                t.style(Slot::UiMuted),
            ));
        }
    }
    if let Some(a) = &e.approval {
        lines.push(Line::styled(
            format!("✓ approved by {} {}", a.by, ago(a.ts, app.now)),
            t.style(Slot::AgentDone),
        ));
    }
    for r in e.reviews.iter().filter(|r| r.head == e.head) {
        let (mark, slot) = match r.verdict {
            crate::model::ReviewVerdict::Approve => ("✓", Slot::AgentDone),
            crate::model::ReviewVerdict::RequestChanges => ("✗", Slot::StepError),
        };
        lines.push(Line::styled(
            format!(
                "{mark} review by {} (run {}): {}: {}",
                r.agent,
                r.run,
                r.verdict.name(),
                r.summary.lines().next().unwrap_or("")
            ),
            t.style(slot),
        ));
    }
    if !e.comments.is_empty() {
        lines.push(Line::styled(
            format!(
                "┃ {} comment{} to send back ({})",
                e.comments.len(),
                if e.comments.len() == 1 { "" } else { "s" },
                app.keymap
                    .keys_for("queue", Action::SendBack)
                    .first()
                    .cloned()
                    .unwrap_or_default()
            ),
            t.style(Slot::AgentWaiting),
        ));
    }
    if let Some(r) = &e.reason {
        lines.push(Line::styled(format!("why: {r}"), t.style(Slot::StepError)));
    }
    if let Some(l) = &e.landed {
        lines.push(Line::styled(
            format!("landed as {}", crate::model::short_commit(l)),
            t.style(Slot::QueueMerged),
        ));
    }
    let keys = |a: Action| {
        app.keymap
            .keys_for("queue", a)
            .first()
            .cloned()
            .unwrap_or_default()
    };
    lines.push(Line::styled(
        format!(
            "{} approve · {} reject · {} bump · {} replay · {} test log · {}/{} files · {} diff · {} comment · {} send back",
            keys(Action::Approve),
            keys(Action::Reject),
            keys(Action::Bump),
            keys(Action::OpenReplay),
            keys(Action::ToggleLog),
            keys(Action::PrevFile),
            keys(Action::NextFile),
            keys(Action::FocusDiff),
            keys(Action::Comment),
            keys(Action::SendBack)
        ),
        t.style(Slot::UiMuted),
    ));
    let head_h = lines.len() as u16 + 2;
    let [top, bottom] =
        Layout::vertical([Constraint::Length(head_h), Constraint::Min(3)]).areas(right);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(boxed(
                Span::styled(format!(" entry #{} ", e.id), t.style(Slot::UiTitle)),
                false,
                t,
            )),
        top,
    );
    // The rendered row of the diff's line cursor, when it shows.
    let mut cursor_row: Option<usize> = None;
    let (title, body): (String, Vec<Line>) = if q.show_log {
        match e.tests.last() {
            Some(r) => (
                format!(
                    " test log ({}, {:.1}s) ",
                    if r.ok { "passed" } else { "failed" },
                    r.seconds
                ),
                styled_lines(&r.log, Style::default()),
            ),
            None => (
                " test log ".into(),
                vec![Line::styled("not tested yet", t.style(Slot::UiMuted))],
            ),
        }
    } else {
        let files = app.diff_files();
        match files.get(q.file) {
            Some((path, part)) => (
                format!(
                    " diff {}/{}: {path}{} ",
                    q.file + 1,
                    files.len(),
                    if q.diff_focus {
                        " · j/k line · c comment · h back"
                    } else {
                        ""
                    }
                ),
                {
                    let (lines, row) = commented_diff_lines(
                        part,
                        path,
                        &e.line_comments(),
                        q.diff_focus.then_some(q.line),
                        t,
                    );
                    cursor_row = row;
                    lines
                },
            ),
            None if detail.is_none() => (
                " diff ".into(),
                vec![Line::styled("loading…", t.style(Slot::UiMuted))],
            ),
            None => (
                " diff ".into(),
                vec![Line::styled("no changes", t.style(Slot::UiMuted))],
            ),
        }
    };
    // With a line cursor the diff follows it; else it scrolls by pages.
    let scroll = match cursor_row {
        Some(at) => (at as u16).saturating_sub(bottom.height.saturating_sub(2) / 2),
        None => q.scroll,
    };
    frame.render_widget(
        Paragraph::new(body)
            .block(boxed(
                Span::styled(title, t.style(Slot::UiTitle)),
                q.diff_focus,
                t,
            ))
            .scroll((scroll, 0)),
        bottom,
    );
}

/// One file's part of a diff with each comment under the line it is on, and the line
/// cursor (an index into the part's lines) marked; with the row the cursor is drawn on.
fn commented_diff_lines(
    part: &str,
    path: &str,
    comments: &[&crate::model::LineComment],
    cursor: Option<usize>,
    t: &Theme,
) -> (Vec<Line<'static>>, Option<usize>) {
    let numbers = new_line_numbers(part);
    let mut out = Vec::new();
    let mut row = None;
    for (i, line) in diff_lines(part, t).into_iter().enumerate() {
        out.push(if cursor == Some(i) {
            row = Some(out.len());
            line.style(t.style(Slot::UiSelection))
        } else {
            line
        });
        let Some(Some(n)) = numbers.get(i) else {
            continue;
        };
        for c in comments.iter().filter(|c| c.path == path && c.line == *n) {
            for (k, text) in c.text.lines().enumerate() {
                let lead = if k == 0 {
                    format!("    ┃ {}: ", c.by)
                } else {
                    "    ┃   ".to_string()
                };
                out.push(Line::styled(
                    format!("{lead}{text}"),
                    t.style(Slot::AgentWaiting),
                ));
            }
        }
    }
    (out, row)
}

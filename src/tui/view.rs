//! Drawing the app: the tab bar, the screen, the overlays and the status bar, from `App`
//! alone. Long lists (a 100,000-step timeline) draw only the rows in view. Clickable
//! regions are recorded as the frame is drawn, for the mouse.

use jiff::Timestamp;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::app::{App, BOARD, Hit, Layer, SPEEDS, Screen, WITHIN};
use super::fleet::{self, FleetView, kind_symbol, slot_of_name};
use super::scrollback::styled_lines;
use super::status::{Status, StatusBar};
use super::theme::Theme;
use crate::model::{Lifecycle, QueueEntry, QueueState, Step, StepKind};

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
        Screen::Fleet => FleetView {
            panes: &app.fleet.panes,
            by_run: &app.fleet.by_run,
            selected: app.fleet.selected,
            zoomed: app.fleet.zoomed,
            titles: &app.titles,
            now: app.now,
            theme: &app.theme,
        }
        .render(frame, body),
        Screen::Tickets => draw_tickets(frame, body, app),
        Screen::Replay => draw_replay(frame, body, app),
        Screen::Queue => draw_queue(frame, body, app),
        Screen::Memory => draw_memory(frame, body, app),
    }
    if app.screen == Screen::Fleet && !app.fleet.zoomed {
        let cells = fleet::grid(app.fleet.panes.len(), body);
        let mut hits = app.hits.borrow_mut();
        for (i, c) in cells.into_iter().enumerate() {
            hits.push((c, Hit::Pane(i)));
        }
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
            Layer::MemoryFilter => draw_filter(frame, body, app),
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
            t.style("ui.selection")
                .add_modifier(ratatui::style::Modifier::UNDERLINED)
        } else {
            t.style("ui.muted")
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
            (t.style("step.error"), "✗ ")
        } else {
            (t.style("ui.title"), "")
        };
        spans.push(Span::styled(format!(" {mark}{}", f.text), style));
    } else {
        spans.push(Span::styled("  ? keys", t.style("ui.muted")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn boxed<'a>(title: impl Into<Line<'a>>, focus: bool, t: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(if focus {
            t.style("ui.border.focus")
        } else {
            t.style("ui.border")
        })
        .title(title)
}

/// A selectable row: marked with a symbol and the selection style, so it shows without
/// colour too.
fn row<'a>(selected: bool, mut spans: Vec<Span<'a>>, t: &Theme) -> Line<'a> {
    spans.insert(0, Span::raw(if selected { "▶ " } else { "  " }));
    let line = Line::from(spans);
    if selected {
        line.style(t.style("ui.selection"))
    } else {
        line
    }
}

/// The first visible index so `at` shows in `height` rows.
fn window_start(at: usize, len: usize, height: usize) -> usize {
    if height == 0 || len <= height {
        return 0;
    }
    at.saturating_sub(height / 2).min(len - height)
}

pub fn ago(then: Timestamp, now: Timestamp) -> String {
    let s = now.duration_since(then).as_secs().max(0);
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

// ---- tickets ----

fn draw_tickets(frame: &mut Frame, area: Rect, app: &App) {
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
                t.style("ui.title"),
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
                    Span::styled(format!("#{} ", tk.id), t.style("ui.muted")),
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
            lines.push(Line::styled(meta, t.style("ui.muted")));
            let y = inner.y + ((i - start) * 2) as u16;
            app.hits.borrow_mut().push((
                Rect::new(inner.x, y, inner.width, 2),
                Hit::Row(c * 10_000 + i),
            ));
        }
        if items.is_empty() {
            lines.push(Line::styled("  (none)", t.style("ui.muted")));
        }
        frame.render_widget(Paragraph::new(lines), inner);
    }
    if app.tickets.is_empty() {
        let hint = Paragraph::new(Line::styled(
            " n adds a ticket: a title, and optionally a body, priority, agent and paths ",
            t.style("ui.muted"),
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
        Span::styled(format!("{} ", tk.state.name()), t.style("ui.muted")),
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
    lines.push(Line::styled(meta, t.style("ui.muted")));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(boxed(
                Span::styled(format!(" ticket #{} ", tk.id), t.style("ui.title")),
                false,
                t,
            )),
        area,
    );
}

// ---- replay ----

fn draw_replay(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let Some(run_id) = app.replay.run else {
        let runs = app.run_list();
        let block = boxed(" Replay: pick a run (enter opens) ", true, t);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let h = inner.height as usize;
        let start = window_start(app.replay.pick, runs.len(), h);
        let mut lines = vec![];
        for (i, r) in runs.iter().enumerate().skip(start).take(h) {
            let title = r
                .ticket
                .and_then(|id| app.titles.get(&id))
                .map(String::as_str)
                .unwrap_or(&r.source);
            let slot = match r.state {
                crate::model::RunState::Failed => "agent.failed",
                s if s.is_live() => "agent.running",
                _ => "ui.muted",
            };
            lines.push(row(
                i == app.replay.pick,
                vec![
                    Span::raw(format!("run {:<5} ", r.id)),
                    Span::styled(format!("{:<11} ", r.state.name()), t.style(slot)),
                    Span::raw(format!("{:<10} {:>7} steps  ", r.agent, r.steps)),
                    Span::styled(
                        format!("{:<9} ", ago(r.started, app.now)),
                        t.style("ui.muted"),
                    ),
                    Span::raw(title.to_string()),
                ],
                t,
            ));
            app.hits.borrow_mut().push((
                Rect::new(inner.x, inner.y + (i - start) as u16, inner.width, 1),
                Hit::Row(i),
            ));
        }
        if runs.is_empty() {
            lines.push(Line::styled("  no runs yet", t.style("ui.muted")));
        }
        frame.render_widget(Paragraph::new(lines), inner);
        return;
    };
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(42), Constraint::Percentage(58)]).areas(area);
    let r = &app.replay;
    let run = app.runs.iter().find(|x| x.id == run_id);
    let total = r.rows.len();
    let mut title = vec![Span::styled(format!(" run {run_id} "), t.style("ui.title"))];
    if let Some(run) = run {
        title.push(Span::raw(format!("{} · {} ", run.agent, run.state.name())));
    }
    title.push(Span::raw(format!(
        "· step {}/{}{} ",
        if total == 0 { 0 } else { r.cursor.at + 1 },
        total,
        if r.outline_done { "" } else { "…" }
    )));
    if r.playing {
        title.push(Span::styled(
            format!("▶ {}/s ", SPEEDS[r.speed]),
            t.style("agent.running"),
        ));
    }
    let block = boxed(Line::from(title), true, t);
    let inner = block.inner(left);
    frame.render_widget(block, left);
    let h = inner.height as usize;
    let start = window_start(r.cursor.at, total, h);
    let mut lines = Vec::with_capacity(h);
    for (i, o) in r.rows.iter().enumerate().skip(start).take(h) {
        let mark = if r.cursor.mark == Some(i) { "'" } else { " " };
        let hit = if r.hits.binary_search(&o.seq).is_ok() {
            "*"
        } else {
            " "
        };
        lines.push(row(
            i == r.cursor.at,
            vec![
                Span::styled(format!("{:>6}{mark}{hit}", o.seq), t.style("ui.muted")),
                Span::styled(
                    fleet::labelled(&o.kind, o.error, &o.summary),
                    t.style(slot_of_name(&o.kind, o.error)),
                ),
            ],
            t,
        ));
        app.hits.borrow_mut().push((
            Rect::new(inner.x, inner.y + (i - start) as u16, inner.width, 1),
            Hit::Row(i),
        ));
    }
    if total == 0 {
        lines.push(Line::styled(
            if r.outline_done {
                "  this run has no steps"
            } else {
                "  loading the run…"
            },
            t.style("ui.muted"),
        ));
    }
    frame.render_widget(Paragraph::new(lines), inner);
    draw_step(frame, right, app);
}

fn draw_step(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let r = &app.replay;
    let Some(o) = r.rows.get(r.cursor.at) else {
        frame.render_widget(boxed(" step ", false, t), area);
        return;
    };
    let header = Line::from(vec![
        Span::styled(format!(" step {} ", o.seq), t.style("ui.title")),
        Span::styled(
            format!("{} {} ", kind_symbol(&o.kind, o.error), o.kind),
            t.style(slot_of_name(&o.kind, o.error)),
        ),
        Span::styled(
            format!("· {} ", o.ts.strftime("%H:%M:%S")),
            t.style("ui.muted"),
        ),
    ]);
    let block = boxed(header, false, t);
    let text: Text = match r.steps.get(&o.seq) {
        Some(step) => step_text(step, app),
        None => Text::from(vec![
            Line::raw(o.summary.clone()),
            Line::styled("loading…", t.style("ui.muted")),
        ]),
    };
    frame.render_widget(
        Paragraph::new(text)
            .block(block)
            .wrap(Wrap { trim: false })
            .scroll((r.scroll, 0)),
        area,
    );
}

fn label(s: &str, t: &Theme) -> Line<'static> {
    Line::styled(s.to_string(), t.style("ui.title"))
}

fn diff_lines(patch: &str, t: &Theme) -> Vec<Line<'static>> {
    patch
        .lines()
        .map(|l| {
            let slot = if l.starts_with("@@") {
                "diff.hunk"
            } else if l.starts_with('+') && !l.starts_with("+++") {
                "diff.add"
            } else if l.starts_with('-') && !l.starts_with("---") {
                "diff.remove"
            } else if l.starts_with("diff --git") {
                "ui.title"
            } else {
                "diff"
            };
            Line::styled(l.replace('\t', "    "), t.style(slot))
        })
        .collect()
}

fn pretty_json(s: &str) -> String {
    serde_json::from_str::<serde_json::Value>(s)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| s.to_string())
}

fn step_text(step: &Step, app: &App) -> Text<'static> {
    let t = &app.theme;
    let base = t.style(fleet::step_slot(&step.kind));
    let mut out: Vec<Line<'static>> = vec![];
    match &step.kind {
        StepKind::UserMessage { text }
        | StepKind::AgentMessage { text }
        | StepKind::Thinking { text }
        | StepKind::Decision { text } => out.extend(styled_lines(text.preview(), base)),
        StepKind::Error { message } => out.extend(styled_lines(message.preview(), base)),
        StepKind::ToolCall {
            name,
            input,
            call_id,
        } => {
            out.push(label(&format!("tool call: {name}"), t));
            if let Some(id) = call_id {
                out.push(Line::styled(format!("id {id}"), t.style("ui.muted")));
            }
            out.push(label("input", t));
            out.extend(
                pretty_json(input.preview())
                    .lines()
                    .map(|l| Line::raw(l.to_string())),
            );
            out.push(Line::raw(""));
            match app.replay.result_of(step.seq) {
                Some(seq) => match app.replay.steps.get(&seq) {
                    Some(Step {
                        kind:
                            StepKind::ToolResult {
                                output, is_error, ..
                            },
                        ..
                    }) => {
                        out.push(label(
                            &format!(
                                "output (step {seq}){}",
                                if *is_error { " ✗ error" } else { "" }
                            ),
                            t,
                        ));
                        let style = if *is_error {
                            t.style("step.error")
                        } else {
                            Style::default()
                        };
                        out.extend(styled_lines(output.preview(), style));
                    }
                    _ => out.push(Line::styled(
                        format!("output: step {seq}, loading…"),
                        t.style("ui.muted"),
                    )),
                },
                None => out.push(Line::styled(
                    "no result recorded for this call",
                    t.style("ui.muted"),
                )),
            }
        }
        StepKind::ToolResult {
            output, is_error, ..
        } => {
            if let Some(p) = step.parent {
                out.push(Line::styled(
                    format!("answers the call at step {p}"),
                    t.style("ui.muted"),
                ));
            }
            if *is_error {
                out.push(Line::styled("✗ the tool failed", t.style("step.error")));
            }
            out.extend(styled_lines(output.preview(), Style::default()));
        }
        StepKind::Command {
            argv,
            exit_code,
            output,
        } => {
            out.push(Line::styled(format!("$ {}", argv.join(" ")), base));
            out.push(match exit_code {
                Some(0) => Line::styled("exit code 0 ✓", t.style("agent.done")),
                Some(c) => Line::styled(format!("exit code {c} ✗"), t.style("step.error")),
                None => Line::styled("exit code unknown", t.style("ui.muted")),
            });
            out.push(Line::raw(""));
            out.extend(styled_lines(output.preview(), Style::default()));
        }
        StepKind::FileEdit {
            path,
            before,
            after,
            patch,
        } => {
            if app.replay.show_file {
                out.push(label(
                    &format!("{path}, as it was after this step (f: the diff)"),
                    t,
                ));
                // The file rebuilt from the run's edits; the step's own copy while that loads.
                let rebuilt = app.replay.files.get(&step.seq);
                let text = match rebuilt {
                    Some(Ok(f)) if f.state == "known" => f.content.clone(),
                    Some(Ok(f)) if f.state == "deleted" => {
                        out.push(Line::styled("deleted at this step", t.style("ui.muted")));
                        None
                    }
                    _ => after.as_ref().map(|a| a.preview().to_string()),
                };
                match text {
                    Some(text) => {
                        for (i, l) in text.lines().enumerate() {
                            out.push(Line::from(vec![
                                Span::styled(format!("{:>5} ", i + 1), t.style("ui.muted")),
                                Span::raw(l.replace('\t', "    ")),
                            ]));
                        }
                    }
                    None if rebuilt.is_none() => {
                        out.push(Line::styled("loading…", t.style("ui.muted")))
                    }
                    None => out.push(Line::styled(
                        match rebuilt {
                            Some(Err(e)) => format!("cannot rebuild the file: {e}"),
                            _ => "the trace has only a patch for this file, with nothing before it to apply it to".into(),
                        },
                        t.style("ui.muted"),
                    )),
                }
            } else {
                let what = match (before, after) {
                    (None, Some(_)) => "created",
                    (Some(_), None) => "deleted",
                    _ => "edited",
                };
                out.push(label(
                    &format!("{path} {what} (f: the file as it was here)"),
                    t,
                ));
                out.extend(diff_lines(patch.preview(), t));
            }
            // What reviewers (agents and people) said about this file of the run's change.
            let said: Vec<&crate::model::LineComment> = app
                .queue
                .view
                .entries
                .iter()
                .filter(|e| e.run == Some(step.run))
                .flat_map(|e| {
                    e.comments
                        .iter()
                        .chain(e.reviews.iter().flat_map(|r| r.comments.iter()))
                })
                .filter(|c| c.path == *path)
                .collect();
            if !said.is_empty() {
                out.push(Line::raw(""));
                out.push(label(&format!("comments on {path} in review"), t));
                for c in said {
                    out.push(Line::styled(
                        format!("  line {}: {} ({})", c.line, c.text.trim(), c.by),
                        t.style("agent.waiting"),
                    ));
                }
            }
        }
        StepKind::Lifecycle { event } => {
            out.push(Line::raw(step.kind.summary()));
            if let Lifecycle::Started {
                cwd: Some(c),
                session,
                ..
            } = event
            {
                out.push(Line::styled(format!("in {c}"), t.style("ui.muted")));
                if let Some(s) = session {
                    out.push(Line::styled(format!("session {s}"), t.style("ui.muted")));
                }
            }
        }
        StepKind::Raw { line, reason, data } => {
            out.push(Line::styled(
                format!(
                    "not understood ({reason}){}",
                    line.map(|l| format!(", source line {l}"))
                        .unwrap_or_default()
                ),
                t.style("ui.muted"),
            ));
            out.extend(data.preview().lines().map(|l| Line::raw(l.to_string())));
        }
    }
    Text::from(out)
}

// ---- merge queue ----

pub fn queue_symbol(s: QueueState) -> (&'static str, &'static str) {
    match s {
        QueueState::Queued => ("·", "ui"),
        QueueState::Testing => ("⟳", "queue.testing"),
        QueueState::AwaitingApproval => ("⚑", "queue.waiting"),
        QueueState::Landing => ("⇡", "queue.testing"),
        QueueState::Merged => ("✓", "queue.merged"),
        QueueState::Bounced => ("↩", "queue.bounced"),
        QueueState::Rejected => ("✗", "queue.rejected"),
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

fn draw_queue(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let q = &app.queue;
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(area);
    let paused = if q.view.paused { " (paused)" } else { "" };
    let block = boxed(
        Span::styled(
            format!(" merge queue{paused}: {} entries ", q.view.entries.len()),
            t.style("ui.title"),
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
            Span::styled(format!(" #{:<3}", e.id), t.style("ui.muted")),
            Span::styled(format!("{flags} "), t.style("agent.waiting")),
            Span::raw(title),
        ];
        lines.push(row(i == q.selected, spans, t));
        app.hits.borrow_mut().push((
            Rect::new(inner.x, inner.y + (i - start) as u16, inner.width, 1),
            Hit::Row(i),
        ));
    }
    if q.view.entries.is_empty() {
        lines.push(Line::styled("  nothing waits to land", t.style("ui.muted")));
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
            crate::mergeq::short(&e.head),
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
            t.style("step.error")
        } else {
            t.style("ui.muted")
        },
    ));
    if let Some(v) = &e.verdict {
        if v.needs_human {
            lines.push(Line::styled(
                format!("⚑ needs a human: {}", v.reasons.join("; ")),
                t.style("agent.waiting"),
            ));
        }
        if !v.gated.is_empty() {
            lines.push(Line::raw(format!("  gated paths: {}", v.gated.join(", "))));
        }
        if !v.denied.is_empty() {
            lines.push(Line::styled(
                format!("✗ denied paths: {}", v.denied.join(", ")),
                t.style("step.error"),
            ));
        }
        if !v.needs_human && v.denied.is_empty() {
            lines.push(Line::styled(
                format!("policy ✓ {} files, {} lines", v.files, v.changed_lines),
                t.style("ui.muted"),
            ));
        }
    }
    if let Some(a) = &e.approval {
        lines.push(Line::styled(
            format!("✓ approved by {} {}", a.by, ago(a.ts, app.now)),
            t.style("agent.done"),
        ));
    }
    for r in e.reviews.iter().filter(|r| r.head == e.head) {
        let (mark, slot) = match r.verdict {
            crate::model::ReviewVerdict::Approve => ("✓", "agent.done"),
            crate::model::ReviewVerdict::RequestChanges => ("✗", "step.error"),
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
                    .keys_for("queue", "send_back")
                    .first()
                    .cloned()
                    .unwrap_or_default()
            ),
            t.style("agent.waiting"),
        ));
    }
    if let Some(r) = &e.reason {
        lines.push(Line::styled(format!("why: {r}"), t.style("step.error")));
    }
    if let Some(l) = &e.landed {
        lines.push(Line::styled(
            format!("landed as {}", crate::mergeq::short(l)),
            t.style("queue.merged"),
        ));
    }
    let keys = |a: &str| {
        app.keymap
            .keys_for("queue", a)
            .first()
            .cloned()
            .unwrap_or_default()
    };
    lines.push(Line::styled(
        format!(
            "{} approve · {} reject · {} bump · {} replay · {} test log · {}/{} files · {} diff · {} comment · {} send back",
            keys("approve"),
            keys("reject"),
            keys("bump"),
            keys("open_replay"),
            keys("toggle_log"),
            keys("prev_file"),
            keys("next_file"),
            keys("focus_diff"),
            keys("comment"),
            keys("send_back")
        ),
        t.style("ui.muted"),
    ));
    let head_h = lines.len() as u16 + 2;
    let [top, bottom] =
        Layout::vertical([Constraint::Length(head_h), Constraint::Min(3)]).areas(right);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(boxed(
                Span::styled(format!(" entry #{} ", e.id), t.style("ui.title")),
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
                vec![Line::styled("not tested yet", t.style("ui.muted"))],
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
                vec![Line::styled("loading…", t.style("ui.muted"))],
            ),
            None => (
                " diff ".into(),
                vec![Line::styled("no changes", t.style("ui.muted"))],
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
                Span::styled(title, t.style("ui.title")),
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
    let numbers = crate::tui::app::new_line_numbers(part);
    let mut out = Vec::new();
    let mut row = None;
    for (i, line) in diff_lines(part, t).into_iter().enumerate() {
        out.push(if cursor == Some(i) {
            row = Some(out.len());
            line.style(t.style("ui.selection"))
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
                    t.style("agent.waiting"),
                ));
            }
        }
    }
    (out, row)
}

// ---- memory ----

fn draw_memory(frame: &mut Frame, area: Rect, app: &App) {
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
            t.style("ui.muted"),
        )),
        filters,
    );
    let [list, detail] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(rest);
    let block = boxed(
        Span::styled(format!(" {} memories ", m.hits.len()), t.style("ui.title")),
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
                Span::styled(format!("{:<10} ", mem.kind.name()), t.style("memory.kind")),
                Span::styled(
                    mem.text.lines().next().unwrap_or("").to_string(),
                    t.style("memory.hit"),
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
            t.style("ui.muted"),
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
        t.style("ui.muted"),
    ));
    if !mem.paths.is_empty() {
        body.push(Line::styled(
            format!("paths: {}", mem.paths.join(", ")),
            t.style("ui.muted"),
        ));
    }
    if !mem.tags.is_empty() {
        body.push(Line::styled(
            format!("tags: {}", mem.tags.join(", ")),
            t.style("ui.muted"),
        ));
    }
    let legs: Vec<&str> = hit.legs.iter().map(|l| l.name()).collect();
    body.push(Line::styled(
        format!("recalled by {} ({:.3})", legs.join("+"), hit.score),
        t.style("ui.muted"),
    ));
    match &mem.source {
        Some(s) => body.push(Line::styled(
            format!(
                "from run {} step {} (enter opens it in replay)",
                s.run, s.step
            ),
            t.style("ui.title"),
        )),
        None => body.push(Line::styled(
            "written by hand: no source step",
            t.style("ui.muted"),
        )),
    }
    frame.render_widget(
        Paragraph::new(body).wrap(Wrap { trim: false }).block(boxed(
            Span::styled(format!(" memory {} ", mem.id), t.style("ui.title")),
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

fn draw_filter(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let f = &app.memory.filters;
    let rect = super::forms::centered(area, 56, 7);
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
        t.style("ui.muted"),
    ));
    frame.render_widget(
        Paragraph::new(lines).block(boxed(" memory filters ", true, t)),
        rect,
    );
}

//! Drawing replay: the run list, the timeline (only the rows in view) and the step
//! under the cursor, whole.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Paragraph, Wrap};

use super::SPEEDS;
use crate::model::{Payload, RunId, Step, StepKind};
use crate::trace::detail::{self, Body, Part, Role, Voice};
use crate::tui::app::{App, Hit};
use crate::tui::scrollback::styled_lines;
use crate::tui::theme::{Slot, Theme};
use crate::tui::widgets::{
    ago, boxed, diff_lines, kind_symbol, label, labelled, row, slot_of_name, step_slot,
    window_start,
};

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
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
                crate::model::RunState::Failed => Slot::AgentFailed,
                s if s.is_live() => Slot::AgentRunning,
                _ => Slot::UiMuted,
            };
            lines.push(row(
                i == app.replay.pick,
                vec![
                    Span::raw(format!("run {:<5} ", r.id)),
                    Span::styled(format!("{:<11} ", r.state.name()), t.style(slot)),
                    Span::raw(format!("{:<10} {:>7} steps  ", r.agent, r.steps)),
                    Span::styled(
                        format!("{:<9} ", ago(r.started, app.now)),
                        t.style(Slot::UiMuted),
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
            lines.push(Line::styled("  no runs yet", t.style(Slot::UiMuted)));
        }
        frame.render_widget(Paragraph::new(lines), inner);
        return;
    };
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(42), Constraint::Percentage(58)]).areas(area);
    let r = &app.replay;
    let run = app.runs.iter().find(|x| x.id == run_id);
    let total = r.rows.len();
    let mut title = vec![Span::styled(
        format!(" run {run_id} "),
        t.style(Slot::UiTitle),
    )];
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
            t.style(Slot::AgentRunning),
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
                Span::styled(format!("{:>6}{mark}{hit}", o.seq), t.style(Slot::UiMuted)),
                Span::styled(
                    labelled(&o.kind, o.error, &o.summary),
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
            t.style(Slot::UiMuted),
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
        Span::styled(format!(" step {} ", o.seq), t.style(Slot::UiTitle)),
        Span::styled(
            format!("{} {} ", kind_symbol(&o.kind, o.error), o.kind),
            t.style(slot_of_name(&o.kind, o.error)),
        ),
        Span::styled(
            format!("· {} ", o.ts.strftime("%H:%M:%S")),
            t.style(Slot::UiMuted),
        ),
    ]);
    let block = boxed(header, false, t);
    let text: Text = match r.steps.get(&o.seq) {
        Some(step) => step_text(step, app),
        None => Text::from(vec![
            Line::raw(o.summary.clone()),
            Line::styled("loading…", t.style(Slot::UiMuted)),
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

/// The step whole: its parts as every view words them for the pane, with what only the
/// pane holds: a tool call's result, an edited file as it was, what review said of it.
fn step_text(step: &Step, app: &App) -> Text<'static> {
    let t = &app.theme;
    let mut out: Vec<Line<'static>> = vec![];
    match &step.kind {
        StepKind::FileEdit { path, after, .. } if app.replay.show_file => {
            file_as_it_was(step.seq, path, after.as_ref(), app, &mut out)
        }
        _ => {
            let base = t.style(step_slot(&step.kind));
            for part in detail::parts(step, Voice::Tui) {
                push_part(&mut out, part, base, t);
            }
        }
    }
    match &step.kind {
        StepKind::ToolCall { .. } => {
            out.push(Line::raw(""));
            tool_result(step.seq, app, &mut out);
        }
        StepKind::FileEdit { path, .. } => review_comments(step.run, path, app, &mut out),
        _ => {}
    }
    Text::from(out)
}

/// One part of a step's detail as pane lines, styled by what it is.
fn push_part(out: &mut Vec<Line<'static>>, part: Part, base: Style, t: &Theme) {
    if let Some(l) = part.label {
        out.push(label(l, t));
    }
    let text = part.text;
    match part.role {
        Role::Head => out.push(label(&text, t)),
        Role::Command => out.push(Line::styled(text.into_owned(), base)),
        Role::Plain => out.push(Line::raw(text.into_owned())),
        Role::Note => out.push(Line::styled(text.into_owned(), t.style(Slot::UiMuted))),
        Role::Success => out.push(Line::styled(text.into_owned(), t.style(Slot::AgentDone))),
        Role::Failure => out.push(Line::styled(text.into_owned(), t.style(Slot::StepError))),
        Role::Body(Body::Text) => out.extend(styled_lines(&text, base)),
        Role::Body(Body::Output) => out.extend(styled_lines(&text, Style::default())),
        Role::Body(Body::Verbatim) => out.extend(text.lines().map(|l| Line::raw(l.to_string()))),
        Role::Body(Body::Diff) => out.extend(diff_lines(&text, t)),
    }
}

/// The result answering the tool call at `seq`, when the outline has it.
fn tool_result(seq: u64, app: &App, out: &mut Vec<Line<'static>>) {
    let t = &app.theme;
    match app.replay.result_of(seq) {
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
                    t.style(Slot::StepError)
                } else {
                    Style::default()
                };
                out.extend(styled_lines(output.preview(), style));
            }
            _ => out.push(Line::styled(
                format!("output: step {seq}, loading…"),
                t.style(Slot::UiMuted),
            )),
        },
        None => out.push(Line::styled(
            "no result recorded for this call",
            t.style(Slot::UiMuted),
        )),
    }
}

/// The edited file as it was after step `seq`: rebuilt from the run's edits, the step's
/// own copy while that loads.
fn file_as_it_was(
    seq: u64,
    path: &str,
    after: Option<&Payload>,
    app: &App,
    out: &mut Vec<Line<'static>>,
) {
    let t = &app.theme;
    out.push(label(
        &format!("{path}, as it was after this step (f: the diff)"),
        t,
    ));
    let rebuilt = app.replay.files.get(&seq);
    let text = match rebuilt {
        Some(Ok(f)) if f.state == "known" => f.content.clone(),
        Some(Ok(f)) if f.state == "deleted" => {
            out.push(Line::styled("deleted at this step", t.style(Slot::UiMuted)));
            None
        }
        _ => after.map(|a| a.preview().to_string()),
    };
    match text {
        Some(text) => {
            for (i, l) in text.lines().enumerate() {
                out.push(Line::from(vec![
                    Span::styled(format!("{:>5} ", i + 1), t.style(Slot::UiMuted)),
                    Span::raw(l.replace('\t', "    ")),
                ]));
            }
        }
        None if rebuilt.is_none() => out.push(Line::styled("loading…", t.style(Slot::UiMuted))),
        None => out.push(Line::styled(
            match rebuilt {
                Some(Err(e)) => format!("cannot rebuild the file: {e}"),
                _ => "the trace has only a patch for this file, with nothing before it to apply it to".into(),
            },
            t.style(Slot::UiMuted),
        )),
    }
}

/// What reviewers (agents and people) said about this file of the run's change.
fn review_comments(run: RunId, path: &str, app: &App, out: &mut Vec<Line<'static>>) {
    let t = &app.theme;
    let said: Vec<&crate::model::LineComment> = app
        .queue
        .view
        .entries
        .iter()
        .filter(|e| e.run == Some(run))
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
                t.style(Slot::AgentWaiting),
            ));
        }
    }
}

//! Drawing replay: the run list, the timeline (only the rows in view) and the step
//! under the cursor, whole.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Paragraph, Wrap};

use super::SPEEDS;
use crate::model::{Lifecycle, Step, StepKind};
use crate::tui::app::{App, Hit};
use crate::tui::scrollback::styled_lines;
use crate::tui::theme::Slot;
use crate::tui::widgets::{
    ago, boxed, diff_lines, kind_symbol, label, labelled, pretty_json, row, slot_of_name,
    step_slot, window_start,
};

// ---- replay ----

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

fn step_text(step: &Step, app: &App) -> Text<'static> {
    let t = &app.theme;
    let base = t.style(step_slot(&step.kind));
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
                out.push(Line::styled(format!("id {id}"), t.style(Slot::UiMuted)));
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
        StepKind::ToolResult {
            output, is_error, ..
        } => {
            if let Some(p) = step.parent {
                out.push(Line::styled(
                    format!("answers the call at step {p}"),
                    t.style(Slot::UiMuted),
                ));
            }
            if *is_error {
                out.push(Line::styled("✗ the tool failed", t.style(Slot::StepError)));
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
                Some(0) => Line::styled("exit code 0 ✓", t.style(Slot::AgentDone)),
                Some(c) => Line::styled(format!("exit code {c} ✗"), t.style(Slot::StepError)),
                None => Line::styled("exit code unknown", t.style(Slot::UiMuted)),
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
                        out.push(Line::styled("deleted at this step", t.style(Slot::UiMuted)));
                        None
                    }
                    _ => after.as_ref().map(|a| a.preview().to_string()),
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
                    None if rebuilt.is_none() => {
                        out.push(Line::styled("loading…", t.style(Slot::UiMuted)))
                    }
                    None => out.push(Line::styled(
                        match rebuilt {
                            Some(Err(e)) => format!("cannot rebuild the file: {e}"),
                            _ => "the trace has only a patch for this file, with nothing before it to apply it to".into(),
                        },
                        t.style(Slot::UiMuted),
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
                        t.style(Slot::AgentWaiting),
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
                out.push(Line::styled(format!("in {c}"), t.style(Slot::UiMuted)));
                if let Some(s) = session {
                    out.push(Line::styled(format!("session {s}"), t.style(Slot::UiMuted)));
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
                t.style(Slot::UiMuted),
            ));
            out.extend(data.preview().lines().map(|l| Line::raw(l.to_string())));
        }
    }
    Text::from(out)
}

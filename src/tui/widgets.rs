//! Small pieces every screen draws with: a boxed block, a selectable row, the window of a
//! long list that shows, "3m ago", a diff coloured by line, and a step kind's symbol and
//! theme slot.

use jiff::Timestamp;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders};

use super::theme::{Slot, Theme};
use crate::model::StepKind;

/// The theme slot of a step kind.
pub fn step_slot(kind: &StepKind) -> Slot {
    slot_of_name(kind.name(), kind.is_error())
}

/// The slot for a kind name as the outline carries it.
pub fn slot_of_name(kind: &str, error: bool) -> Slot {
    if error {
        return Slot::StepError;
    }
    match kind {
        "user" => Slot::StepUser,
        "agent" => Slot::StepAgent,
        "thinking" => Slot::StepThinking,
        "tool_call" | "tool_result" => Slot::StepTool,
        "command" => Slot::StepCommand,
        "file_edit" => Slot::StepEdit,
        "decision" => Slot::StepDecision,
        "error" => Slot::StepError,
        _ => Slot::StepLifecycle,
    }
}

/// A symbol per kind, so the kinds stay apart without colour.
pub fn kind_symbol(kind: &str, error: bool) -> &'static str {
    if error {
        return "✗";
    }
    match kind {
        "user" => "»",
        "agent" => "•",
        "thinking" => "…",
        "tool_call" => "⚙",
        "tool_result" => "←",
        "command" => "$",
        "file_edit" => "✎",
        "decision" => "◆",
        "error" => "✗",
        "lifecycle" => "○",
        _ => "?",
    }
}

/// A step's symbol and summary as one label; a command's summary starts with its own `$`.
pub fn labelled(kind: &str, error: bool, summary: &str) -> String {
    let sym = kind_symbol(kind, error);
    if summary.starts_with(sym) {
        summary.to_string()
    } else {
        format!("{sym} {summary}")
    }
}

/// A bordered block, its border brighter when it has the keys.
pub fn boxed<'a>(title: impl Into<Line<'a>>, focus: bool, t: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(if focus {
            t.style(Slot::UiBorderFocus)
        } else {
            t.style(Slot::UiBorder)
        })
        .title(title)
}

/// A selectable row: marked with a symbol and the selection style, so it shows without
/// colour too.
pub fn row<'a>(selected: bool, mut spans: Vec<Span<'a>>, t: &Theme) -> Line<'a> {
    spans.insert(0, Span::raw(if selected { "▶ " } else { "  " }));
    let line = Line::from(spans);
    if selected {
        line.style(t.style(Slot::UiSelection))
    } else {
        line
    }
}

/// The first visible index so `at` shows in `height` rows.
pub fn window_start(at: usize, len: usize, height: usize) -> usize {
    if height == 0 || len <= height {
        return 0;
    }
    at.saturating_sub(height / 2).min(len - height)
}

/// How long ago `then` was, in the largest whole unit: `42s ago`, `3m ago`, `2d ago`.
pub fn ago(then: Timestamp, now: Timestamp) -> String {
    let s = now.duration_since(then).as_secs().max(0);
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

/// A heading line inside a detail pane.
pub fn label(s: &str, t: &Theme) -> Line<'static> {
    Line::styled(s.to_string(), t.style(Slot::UiTitle))
}

/// A unified diff as lines, each coloured by what it is (hunk, added, removed, header).
pub fn diff_lines(patch: &str, t: &Theme) -> Vec<Line<'static>> {
    patch
        .lines()
        .map(|l| {
            let slot = if l.starts_with("@@") {
                Slot::DiffHunk
            } else if l.starts_with('+') && !l.starts_with("+++") {
                Slot::DiffAdd
            } else if l.starts_with('-') && !l.starts_with("---") {
                Slot::DiffRemove
            } else if l.starts_with("diff --git") {
                Slot::UiTitle
            } else {
                Slot::Diff
            };
            Line::styled(l.replace('\t', "    "), t.style(slot))
        })
        .collect()
}

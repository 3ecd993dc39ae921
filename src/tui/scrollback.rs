//! A pane's scrollback: agent output kept as styled lines, bounded, drawn a window at a
//! time. Agent output is untrusted and unbounded, so ANSI colour codes are parsed once
//! when a line arrives (into style runs, never printed raw), other control characters are
//! dropped, very long lines are cut, and the oldest lines go once the cap is reached.

use std::collections::VecDeque;

use ansi_to_tui::IntoText;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};

/// Longest line kept, in characters: a minified file dumped by a tool stays one screen.
pub const MAX_LINE_CHARS: usize = 2_000;

#[derive(Clone, Debug)]
pub struct Scrollback {
    lines: VecDeque<Line<'static>>,
    cap: usize,
    /// Lines dropped off the top since the pane began.
    dropped: u64,
}

/// Keep only what a terminal cell can show: printable characters and tabs (as spaces).
/// ANSI SGR sequences were already turned into styles; anything left (cursor moves, OSC
/// titles, bells, bidi overrides) must not reach the terminal.
fn printable(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            c if crate::safe_text::is_unsafe(c) => None,
            c => Some(c),
        })
        .collect()
}

/// Agent text as lines to draw: ANSI colour codes become styles over `base` (a reset
/// returns to `base`, not to the terminal's colour), other control characters go, and a
/// line stops at `MAX_LINE_CHARS`. Every view of agent output draws it through here.
pub fn styled_lines(text: &str, base: Style) -> Vec<Line<'static>> {
    let parsed = match text.as_bytes().into_text() {
        Ok(t) => t.lines,
        // Not parseable as ANSI: keep the characters, lose the codes.
        Err(_) => text.lines().map(|l| Line::raw(l.to_string())).collect(),
    };
    parsed
        .into_iter()
        .map(|line| {
            let mut kept = 0usize;
            let spans: Vec<Span<'static>> = line
                .spans
                .into_iter()
                .filter_map(|sp| {
                    if kept >= MAX_LINE_CHARS {
                        return None;
                    }
                    let mut content = printable(&sp.content);
                    let room = MAX_LINE_CHARS - kept;
                    if content.chars().count() > room {
                        content = content.chars().take(room).collect::<String>() + "…";
                    }
                    kept += content.chars().count();
                    let mut own = sp.style;
                    if own.fg == Some(Color::Reset) {
                        own.fg = None;
                    }
                    if own.bg == Some(Color::Reset) {
                        own.bg = None;
                    }
                    Some(Span::styled(content, base.patch(own)))
                })
                .collect();
            Line::from(spans)
        })
        .collect()
}

impl Scrollback {
    /// A scrollback of at most `cap` lines (at least 1).
    pub fn new(cap: usize) -> Scrollback {
        Scrollback {
            lines: VecDeque::new(),
            cap: cap.max(1),
            dropped: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Add `text` (one or more lines, possibly with ANSI codes), styled with `base` where
    /// the text sets no style of its own (the step kind's colour).
    pub fn push(&mut self, text: &str, base: Style) {
        for line in styled_lines(text, base) {
            self.lines.push_back(line);
            if self.lines.len() > self.cap {
                self.lines.pop_front();
                self.dropped += 1;
            }
        }
    }

    /// The lines to draw in `height` rows, `from_bottom` lines up from the newest (0: the
    /// tail). The offset is clamped, so scrolling past the top shows the top.
    pub fn window(&self, height: usize, from_bottom: usize) -> Vec<Line<'static>> {
        let len = self.lines.len();
        let end = len.saturating_sub(from_bottom.min(len.saturating_sub(height.min(len))));
        let start = end.saturating_sub(height);
        self.lines.range(start..end).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::style::Modifier;

    fn text(l: &Line) -> String {
        l.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn ansi_becomes_style_and_the_base_fills_in() {
        let mut sb = Scrollback::new(10);
        sb.push(
            "\x1b[31mred\x1b[0m plain \x1b[1mbold\x1b[0m",
            Style::default().fg(Color::Yellow),
        );
        let l = &sb.window(5, 0)[0];
        assert_eq!(text(l), "red plain bold");
        assert_eq!(l.spans[0].style.fg, Some(Color::Red));
        assert_eq!(
            l.spans[1].style.fg,
            Some(Color::Yellow),
            "the step kind's colour"
        );
        assert!(l.spans[2].style.add_modifier.contains(Modifier::BOLD));
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        let mut sb = Scrollback::new(10);
        sb.push("a\x07b\x1b]0;title\x07c\x1b[2Jd\tz", Style::default());
        let shown = text(&sb.window(1, 0)[0]);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
        assert!(shown.starts_with('a') && shown.ends_with('z'), "{shown:?}");
    }

    #[test]
    fn it_is_bounded_and_long_lines_are_cut() {
        let mut sb = Scrollback::new(3);
        for i in 0..10 {
            sb.push(&format!("line {i}"), Style::default());
        }
        assert_eq!(sb.len(), 3);
        assert_eq!(sb.dropped(), 7);
        assert_eq!(text(&sb.window(3, 0)[0]), "line 7");
        sb.push(&"x".repeat(10_000), Style::default());
        assert_eq!(
            text(&sb.window(1, 0)[0]).chars().count(),
            MAX_LINE_CHARS + 1
        );
    }

    #[test]
    fn the_window_scrolls_and_clamps() {
        let mut sb = Scrollback::new(100);
        for i in 0..10 {
            sb.push(&format!("{i}"), Style::default());
        }
        let w = |h, up| -> Vec<String> { sb.window(h, up).iter().map(text).collect() };
        assert_eq!(w(3, 0), ["7", "8", "9"]);
        assert_eq!(w(3, 2), ["5", "6", "7"]);
        assert_eq!(w(3, 50), ["0", "1", "2"], "past the top shows the top");
        assert_eq!(w(20, 5), (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
        assert!(Scrollback::new(5).window(3, 0).is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut sb = Scrollback::new(50);
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..2_000 {
            let mut bytes = Vec::new();
            for _ in 0..(x % 40) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                bytes.push(match x % 5 {
                    0 => 0x1b,
                    1 => b'[',
                    2 => b';',
                    _ => (x >> 8) as u8,
                });
            }
            sb.push(&String::from_utf8_lossy(&bytes), Style::default());
        }
        assert!(sb.len() <= 50);
    }
}

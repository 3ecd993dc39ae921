//! The status bar every screen shows: workspace, main's head, agents running against the
//! limit, queue length, approvals waiting (marked with a symbol too, so it stands out
//! without colour), and where the factory answers.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::theme::{Slot, Theme};

/// What the bar shows; filled from the API.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub workspace: String,
    /// Main's head, abbreviated by the bar.
    pub main_head: Option<String>,
    pub running: usize,
    pub limit: usize,
    pub queued: usize,
    pub waiting: usize,
    /// The socket (or TCP address) the factory answers on.
    pub address: String,
    /// Why nothing new starts: the day's budget is spent.
    pub held: Option<String>,
}

pub struct StatusBar<'a> {
    pub status: &'a Status,
    pub theme: &'a Theme,
}

impl StatusBar<'_> {
    pub fn line(&self) -> Line<'static> {
        let s = self.status;
        let t = self.theme;
        let base = t.style(Slot::UiStatus);
        let head = s
            .main_head
            .as_deref()
            .map(|h| h[..h.len().min(8)].to_string())
            .unwrap_or_else(|| "-".into());
        let mut spans = vec![
            Span::styled(
                format!(" {} ", s.workspace),
                t.style(Slot::UiTitle).patch(base),
            ),
            Span::styled(format!("│ main {head} "), base),
            Span::styled(
                format!("│ agents {}/{} ", s.running, s.limit),
                if s.running > 0 {
                    t.style(Slot::AgentRunning).patch(base)
                } else {
                    base
                },
            ),
            Span::styled(format!("│ queue {} ", s.queued), base),
        ];
        if s.waiting > 0 {
            spans.push(Span::styled(
                format!("│ ⚑ {} waiting for approval ", s.waiting),
                t.style(Slot::QueueWaiting),
            ));
        }
        if s.held.is_some() {
            spans.push(Span::styled(
                "│ $ day's budget spent: nothing new starts ",
                t.style(Slot::QueueWaiting),
            ));
        }
        spans.push(Span::styled(
            format!("│ {} ", s.address),
            t.style(Slot::UiMuted).patch(base),
        ));
        Line::from(spans)
    }
}

impl Widget for StatusBar<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let base = self.theme.style(Slot::UiStatus);
        Paragraph::new(self.line()).style(base).render(area, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::style::Modifier;

    fn status(waiting: usize) -> Status {
        Status {
            workspace: "shop".into(),
            main_head: Some("9e0d3114abcdef".into()),
            running: 3,
            limit: 4,
            held: None,
            queued: 5,
            waiting,
            address: "~/.local/share/shopfloor/shop/factory.sock".into(),
        }
    }

    #[test]
    fn the_bar_snapshot() {
        let (theme, _) = Theme::load("dark", None, false);
        let mut term = Terminal::new(TestBackend::new(110, 1)).unwrap();
        let s = status(2);
        term.draw(|f| {
            f.render_widget(
                StatusBar {
                    status: &s,
                    theme: &theme,
                },
                f.area(),
            )
        })
        .unwrap();
        insta::assert_snapshot!(term.backend());
    }

    #[test]
    fn waiting_approvals_stand_out_without_colour() {
        let (theme, _) = Theme::load("dark", None, true);
        let s = status(2);
        let line = StatusBar {
            status: &s,
            theme: &theme,
        }
        .line();
        let waiting = line
            .spans
            .iter()
            .find(|sp| sp.content.contains("waiting"))
            .unwrap();
        assert!(waiting.content.contains('⚑'), "a symbol, not only a colour");
        assert!(waiting.style.add_modifier.contains(Modifier::BOLD));
        assert_eq!(waiting.style.fg, None, "NO_COLOR");
        let quiet = status(0);
        let line = StatusBar {
            status: &quiet,
            theme: &theme,
        }
        .line();
        assert!(!line.to_string().contains("waiting"));
    }
}

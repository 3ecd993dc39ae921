//! The `?` overlay: every binding of the current screen, then the global ones, read from
//! the live keymap, so what it says is what the keys do (a user's rebinding included).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::keymap::{Binding, Keymap};
use super::theme::{Slot, Theme};

/// One row per action: its keys joined ("j / n / down") and what it does.
fn rows(bindings: &[Binding]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for b in bindings {
        let keys = b
            .keys
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        match out.iter_mut().find(|(_, desc)| *desc == b.desc) {
            Some((k, _)) => {
                k.push_str(" / ");
                k.push_str(&keys);
            }
            None => out.push((keys, b.desc.clone())),
        }
    }
    out
}

/// The overlay's lines for `mode`: its own section, then the global one.
pub fn lines(keymap: &Keymap, mode: &str, theme: &Theme) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    for (title, section) in [(mode, mode), ("everywhere", "global")] {
        let rows = rows(keymap.bindings(section));
        if rows.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(Line::raw(""));
        }
        out.push(Line::styled(title.to_string(), theme.style(Slot::UiTitle)));
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        for (keys, desc) in rows {
            out.push(Line::from(vec![
                Span::styled(format!("  {keys:<width$}  "), theme.style(Slot::UiHelpKey)),
                Span::raw(desc),
            ]));
        }
    }
    out
}

/// Draw the overlay centred over `area`.
pub fn render(frame: &mut Frame, area: Rect, keymap: &Keymap, mode: &str, theme: &Theme) {
    let body = lines(keymap, mode, theme);
    let height = (body.len() as u16 + 2).min(area.height);
    let width = 64.min(area.width);
    let [_, mid, _] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(height),
        Constraint::Fill(1),
    ])
    .areas(area);
    let [_, rect, _] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(width),
        Constraint::Fill(1),
    ])
    .areas(mid);
    frame.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.style(Slot::UiBorderFocus))
        .title(" keys (esc closes) ");
    frame.render_widget(
        Paragraph::new(body).block(block).wrap(Wrap { trim: false }),
        rect,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    #[test]
    fn the_replay_help_snapshot() {
        let (theme, _) = Theme::load("dark", None, true);
        let km = Keymap::builtin();
        let mut term = Terminal::new(TestBackend::new(70, 44)).unwrap();
        term.draw(|f| render(f, f.area(), &km, "replay", &theme))
            .unwrap();
        insta::assert_snapshot!(term.backend());
    }

    #[test]
    fn keys_for_one_action_share_a_row_and_a_rebinding_shows() {
        let (theme, _) = Theme::load("dark", None, true);
        let text: Vec<String> = lines(&Keymap::builtin(), "replay", &theme)
            .iter()
            .map(|l| l.to_string())
            .collect();
        assert!(
            text.iter()
                .any(|l| l.contains("j / n / down") && l.ends_with("next step")),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|l| l.contains("g g") && l.ends_with("first step"))
        );

        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("keymap.toml");
        std::fs::write(&f, "queue = [ { on = [\"y\"], run = \"approve\" } ]\n").unwrap();
        let (km, _) = Keymap::load(Some(&f));
        let text: Vec<String> = lines(&km, "queue", &theme)
            .iter()
            .map(|l| l.to_string())
            .collect();
        assert!(
            text.iter()
                .any(|l| l.trim_start().starts_with('y') && l.contains("approve")),
            "{text:#?}"
        );
    }
}

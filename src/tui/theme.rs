//! Themes: TOML files of semantic slots (`agent.running`, `step.error`, `diff.add`...)
//! mapped to styles. The screens ask for a slot, never a colour. Built-in themes live in
//! `themes/` (compiled in); a theme may `inherits` another; a user file of the same name
//! in the config dir (`$XDG_CONFIG_HOME/shopfloor/themes/NAME.toml`) overrides single
//! slots. A missing slot falls back to its parent (`step.error` → `step`). A broken file
//! never stops the control room: it is skipped with a warning, and the built-in theme
//! stands. Under `NO_COLOR` every colour is dropped and only modifiers (bold, underline,
//! reverse) remain, which is why states also carry a symbol on screen.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use toml::Spanned;

use super::names::{Known, line_of, named_enum};

/// The built-in themes, by name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
];

named_enum! {
    /// Every slot a screen may ask for, by meaning; a theme naming another is warned about
    /// (a typo would otherwise silently do nothing).
    pub enum Slot {
        Ui = "ui",
        UiTitle = "ui.title",
        UiMuted = "ui.muted",
        UiBorder = "ui.border",
        UiBorderFocus = "ui.border.focus",
        UiSelection = "ui.selection",
        UiStatus = "ui.status",
        UiHelpKey = "ui.help.key",
        Agent = "agent",
        AgentRunning = "agent.running",
        AgentQuiet = "agent.quiet",
        AgentWaiting = "agent.waiting",
        AgentFailed = "agent.failed",
        AgentDone = "agent.done",
        Step = "step",
        StepUser = "step.user",
        StepAgent = "step.agent",
        StepThinking = "step.thinking",
        StepTool = "step.tool",
        StepCommand = "step.command",
        StepEdit = "step.edit",
        StepError = "step.error",
        StepDecision = "step.decision",
        StepLifecycle = "step.lifecycle",
        Diff = "diff",
        DiffAdd = "diff.add",
        DiffRemove = "diff.remove",
        DiffHunk = "diff.hunk",
        Queue = "queue",
        QueueWaiting = "queue.waiting",
        QueueTesting = "queue.testing",
        QueueMerged = "queue.merged",
        QueueBounced = "queue.bounced",
        QueueRejected = "queue.rejected",
        Memory = "memory",
        MemoryHit = "memory.hit",
        MemoryKind = "memory.kind",
    }
}

impl Slot {
    /// The slot this one falls back to when a theme leaves it out: `step.error` → `step`.
    pub fn parent(self) -> Option<Slot> {
        let (up, _) = self.name().rsplit_once('.')?;
        up.parse().ok()
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct SlotSpec {
    fg: Option<String>,
    bg: Option<String>,
    #[serde(default)]
    bold: bool,
    #[serde(default)]
    italic: bool,
    #[serde(default)]
    underlined: bool,
    #[serde(default)]
    reversed: bool,
    #[serde(default)]
    dim: bool,
    #[serde(default)]
    crossed_out: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThemeFile {
    name: Option<String>,
    inherits: Option<String>,
    #[serde(default)]
    slots: BTreeMap<Spanned<Known<Slot>>, SlotSpec>,
}

/// A theme file read: its slots each with the line it is on, for warnings.
#[derive(Debug)]
struct ThemeFile {
    name: Option<String>,
    inherits: Option<String>,
    slots: Vec<(Known<Slot>, usize, SlotSpec)>,
}

/// A loaded theme: a style per slot, already resolved through inheritance.
#[derive(Clone, Debug, PartialEq)]
pub struct Theme {
    pub name: String,
    styles: BTreeMap<Slot, Style>,
    no_color: bool,
}

/// Whether `NO_COLOR` asks for no colour (any non-empty value, per no-color.org).
pub fn no_color_from_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Where a user's themes live.
pub fn user_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "shopfloor").map(|d| d.config_dir().join("themes"))
}

fn color(s: &str) -> Result<Color, String> {
    s.parse::<Color>()
        .map_err(|_| format!("`{s}` is not a colour (a name like `red`, `#rrggbb`, or 0-255)"))
}

fn style(spec: &SlotSpec) -> Result<Style, String> {
    let mut st = Style::default();
    if let Some(fg) = &spec.fg {
        st = st.fg(color(fg)?);
    }
    if let Some(bg) = &spec.bg {
        st = st.bg(color(bg)?);
    }
    for (on, m) in [
        (spec.bold, Modifier::BOLD),
        (spec.italic, Modifier::ITALIC),
        (spec.underlined, Modifier::UNDERLINED),
        (spec.reversed, Modifier::REVERSED),
        (spec.dim, Modifier::DIM),
        (spec.crossed_out, Modifier::CROSSED_OUT),
    ] {
        if on {
            st = st.add_modifier(m);
        }
    }
    Ok(st)
}

fn parse(text: &str, origin: &str, warnings: &mut Vec<String>) -> Option<ThemeFile> {
    match toml::from_str::<RawThemeFile>(text) {
        Ok(f) => {
            let mut slots: Vec<(Known<Slot>, usize, SlotSpec)> = f
                .slots
                .into_iter()
                .map(|(k, spec)| {
                    let line = line_of(text, k.span().start);
                    (k.into_inner(), line, spec)
                })
                .collect();
            // Warnings in the order a person reads the file.
            slots.sort_by_key(|(_, line, _)| *line);
            Some(ThemeFile {
                name: f.name,
                inherits: f.inherits,
                slots,
            })
        }
        Err(e) => {
            warnings.push(format!(
                "theme {origin} is not valid ({}); it is ignored",
                e.message().trim()
            ));
            None
        }
    }
}

/// Apply `file`'s slots over `into`, warning about unknown slots and bad values (those
/// slots keep what they had).
fn apply(
    file: &ThemeFile,
    origin: &str,
    into: &mut BTreeMap<Slot, Style>,
    warnings: &mut Vec<String>,
) {
    for (slot, line, spec) in &file.slots {
        let slot = match slot {
            Known::Yes(slot) => *slot,
            Known::No(name) => {
                warnings.push(format!(
                    "theme {origin} line {line}: no slot `{name}`; it is ignored"
                ));
                continue;
            }
        };
        match style(spec) {
            Ok(st) => {
                into.insert(slot, st);
            }
            Err(e) => warnings.push(format!(
                "theme {origin} line {line}: slot `{}`: {e}; it is ignored",
                slot.name()
            )),
        }
    }
}

/// The built-in theme `name`, resolved through `inherits` (at most a few levels; a cycle
/// stops where it repeats).
fn builtin(name: &str, warnings: &mut Vec<String>) -> Option<BTreeMap<Slot, Style>> {
    let mut chain = Vec::new();
    let mut next = Some(name.to_string());
    while let Some(n) = next.take() {
        if chain.iter().any(|(c, _): &(String, ThemeFile)| *c == n) || chain.len() > 8 {
            warnings.push(format!("theme `{name}`: `inherits` loops at `{n}`"));
            break;
        }
        let text = BUILTIN.iter().find(|(b, _)| *b == n)?.1;
        let file = parse(text, &format!("`{n}` (built in)"), warnings)?;
        next = file.inherits.clone();
        chain.push((n, file));
    }
    let mut styles = BTreeMap::new();
    for (n, file) in chain.iter().rev() {
        apply(file, &format!("`{n}`"), &mut styles, warnings);
    }
    Some(styles)
}

impl Theme {
    /// Load theme `name`: the built-in one (or `dark` when there is none of that name and
    /// no user file), then the user's file of that name from `user_dir` over it. Warnings
    /// say what was ignored; nothing here fails.
    pub fn load(name: &str, user_dir: Option<&Path>, no_color: bool) -> (Theme, Vec<String>) {
        let mut warnings = Vec::new();
        let user_text = user_dir
            .map(|d| d.join(format!("{name}.toml")))
            .and_then(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)));
        let user = user_text
            .as_ref()
            .and_then(|(p, t)| parse(t, &p.display().to_string(), &mut warnings).map(|f| (p, f)));
        // A user theme may stand alone (inheriting a built-in), or patch a built-in of the
        // same name.
        let base_name = match (&user, BUILTIN.iter().any(|(b, _)| *b == name)) {
            (_, true) => name.to_string(),
            (Some((_, f)), false) => f.inherits.clone().unwrap_or_else(|| "dark".into()),
            (None, false) => {
                warnings.push(format!(
                    "no theme `{name}`; using `dark` (built in: dark, light, high-contrast)"
                ));
                "dark".into()
            }
        };
        let mut styles = builtin(&base_name, &mut warnings).unwrap_or_default();
        if let Some((p, f)) = &user {
            apply(f, &p.display().to_string(), &mut styles, &mut warnings);
        }
        let theme = Theme {
            name: user
                .as_ref()
                .and_then(|(_, f)| f.name.clone())
                .unwrap_or_else(|| name.to_string()),
            styles,
            no_color,
        };
        (theme, warnings)
    }

    /// The style of `slot`, falling back through its parents (`a.b.c` → `a.b` → `a`).
    pub fn style(&self, slot: Slot) -> Style {
        let mut key = Some(slot);
        let st = loop {
            match key {
                Some(k) => match self.styles.get(&k) {
                    Some(st) => break *st,
                    None => key = k.parent(),
                },
                None => break Style::default(),
            }
        };
        if self.no_color {
            // Colour is never the only signal; under NO_COLOR only modifiers remain.
            Style::default().add_modifier(st.add_modifier)
        } else {
            st
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_load_without_warnings_and_light_inherits_dark() {
        for (name, _) in BUILTIN {
            let (t, w) = Theme::load(name, None, false);
            assert!(w.is_empty(), "{name}: {w:?}");
            assert_eq!(t.name, *name);
        }
        let (light, _) = Theme::load("light", None, false);
        let (dark, _) = Theme::load("dark", None, false);
        // Not overridden in light: inherited from dark.
        assert_eq!(
            light.style(Slot::QueueBounced),
            dark.style(Slot::QueueBounced)
        );
        assert_ne!(light.style(Slot::DiffAdd), dark.style(Slot::DiffAdd));
    }

    #[test]
    fn slots_fall_back_to_their_parents() {
        let (t, _) = Theme::load("dark", None, false);
        assert_eq!(t.style(Slot::StepError).fg, Some(Color::Red));
        assert_eq!(Slot::StepError.parent(), Some(Slot::Step));
        assert_eq!(Slot::UiBorderFocus.parent(), Some(Slot::UiBorder));
        assert_eq!(Slot::Ui.parent(), None);
        // Only `step` set: every step slot falls back to it; others to the terminal's own.
        let only_step = Theme {
            name: "t".into(),
            styles: BTreeMap::from([(Slot::Step, Style::default().fg(Color::Red))]),
            no_color: false,
        };
        assert_eq!(only_step.style(Slot::StepError).fg, Some(Color::Red));
        assert_eq!(only_step.style(Slot::UiTitle), Style::default());
    }

    #[test]
    fn an_unknown_slot_and_a_bad_colour_are_reported_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dark.toml");
        std::fs::write(
            &path,
            "name = \"mine\"\n\n[slots]\n\"ui.title\" = { fg = \"red\" }\n\"ui.titel\" = { fg = \"red\" }\n\"diff.add\" = { fg = \"greenish\" }\n",
        )
        .unwrap();
        let (t, w) = Theme::load("dark", Some(dir.path()), false);
        let at = format!("theme {} line", path.display());
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].starts_with(&format!("{at} 5: no slot `ui.titel`")),
            "{w:?}"
        );
        assert!(
            w[1].starts_with(&format!("{at} 6: slot `diff.add`")),
            "{w:?}"
        );
        assert_eq!(
            t.style(Slot::UiTitle).fg,
            Some(Color::Red),
            "the good slot applies"
        );
    }

    #[test]
    fn every_shipped_theme_names_only_known_slots() {
        for (name, text) in BUILTIN {
            let mut w = Vec::new();
            let file = parse(text, name, &mut w).unwrap();
            assert!(w.is_empty(), "{name}: {w:?}");
            for (slot, line, _) in &file.slots {
                assert!(
                    matches!(slot, Known::Yes(_)),
                    "{name} line {line}: {slot:?}"
                );
            }
        }
    }

    #[test]
    fn no_color_keeps_only_modifiers() {
        let (t, _) = Theme::load("dark", None, true);
        let st = t.style(Slot::StepError);
        assert_eq!((st.fg, st.bg), (None, None));
        assert!(st.add_modifier.contains(Modifier::BOLD));
    }

    #[test]
    fn a_user_file_overrides_single_slots_and_a_broken_one_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("dark.toml"),
            "[slots]\n\"step.error\" = { fg = \"#ff00ff\" }\n\"no.such\" = { fg = \"red\" }\n\"diff.add\" = { fg = \"notacolour\" }\n",
        )
        .unwrap();
        let (t, w) = Theme::load("dark", Some(dir.path()), false);
        assert_eq!(t.style(Slot::StepError).fg, Some(Color::Rgb(255, 0, 255)));
        assert_eq!(
            t.style(Slot::DiffAdd).fg,
            Some(Color::Green),
            "a bad value keeps the built-in"
        );
        assert!(w.iter().any(|w| w.contains("no slot `no.such`")), "{w:?}");
        assert!(w.iter().any(|w| w.contains("notacolour")), "{w:?}");

        std::fs::write(dir.path().join("dark.toml"), "this is [not toml").unwrap();
        let (t, w) = Theme::load("dark", Some(dir.path()), false);
        assert_eq!(t.style(Slot::StepError).fg, Some(Color::Red));
        assert!(w[0].contains("not valid"), "{w:?}");

        std::fs::write(
            dir.path().join("mine.toml"),
            "inherits = \"high-contrast\"\n[slots]\n\"ui.title\" = { fg = \"magenta\" }\n",
        )
        .unwrap();
        let (t, w) = Theme::load("mine", Some(dir.path()), false);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(t.style(Slot::UiTitle).fg, Some(Color::Magenta));
        assert!(
            t.style(Slot::UiSelection)
                .add_modifier
                .contains(Modifier::REVERSED)
        );

        let (t, w) = Theme::load("nope", Some(dir.path()), false);
        assert_eq!(t.style(Slot::StepError).fg, Some(Color::Red));
        assert!(w[0].contains("no theme `nope`"), "{w:?}");
    }
}

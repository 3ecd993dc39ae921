//! The keymap as data: `assets/keymap.toml` (compiled in) binds keys and key sequences to
//! actions per screen, with the text the help overlay shows; a user file of the same shape
//! replaces the keys of the actions it names. Vim-style keys and arrows by default. The
//! help overlay, the status hints and the dispatcher all read this one table.

use std::collections::BTreeMap;
use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;
use toml::Spanned;

use super::names::{Known, line_of, named_enum};

const DEFAULT: &str = include_str!("../../assets/keymap.toml");

/// The screens (and `global`) a binding belongs to.
pub const MODES: &[&str] = &["global", "fleet", "tickets", "replay", "queue", "memory"];

named_enum! {
    /// What a binding does. A screen acts on its own actions and the global ones; which
    /// belong to which screen is what `assets/keymap.toml` binds there.
    pub enum Action {
        Add = "add",
        Approve = "approve",
        Back = "back",
        Bump = "bump",
        Cancel = "cancel",
        Comment = "comment",
        Down = "down",
        Faster = "faster",
        Filter = "filter",
        First = "first",
        FocusDiff = "focus_diff",
        FocusList = "focus_list",
        Help = "help",
        Kill = "kill",
        Last = "last",
        Left = "left",
        Mark = "mark",
        New = "new",
        NextEdit = "next_edit",
        NextError = "next_error",
        NextFile = "next_file",
        NextScreen = "next_screen",
        NextStep = "next_step",
        Open = "open",
        OpenReplay = "open_replay",
        OpenSource = "open_source",
        PageDown = "page_down",
        PageUp = "page_up",
        Play = "play",
        PrevEdit = "prev_edit",
        PrevFile = "prev_file",
        PrevScreen = "prev_screen",
        PrevStep = "prev_step",
        Priority = "priority",
        Quit = "quit",
        Reject = "reject",
        Retry = "retry",
        Right = "right",
        ScreenFleet = "screen_fleet",
        ScreenMemory = "screen_memory",
        ScreenQueue = "screen_queue",
        ScreenReplay = "screen_replay",
        ScreenTickets = "screen_tickets",
        Search = "search",
        SendBack = "send_back",
        Slower = "slower",
        ToMark = "to_mark",
        ToggleFile = "toggle_file",
        ToggleLog = "toggle_log",
        Up = "up",
        Zoom = "zoom",
    }
}

/// One key: a code and its modifiers, as crossterm reports them (a capital letter carries
/// no SHIFT here: `J` is `J`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub code: KeyCodeKey,
    pub ctrl: bool,
    pub alt: bool,
    pub shift: bool,
}

/// The part of `KeyCode` bindings use, orderable for display.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyCodeKey {
    Char(char),
    F(u8),
    Enter,
    Esc,
    Tab,
    BackTab,
    Backspace,
    Delete,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
}

impl Key {
    /// From a terminal event; None for keys no binding can name.
    pub fn from_event(e: &KeyEvent) -> Option<Key> {
        let code = match e.code {
            KeyCode::Char(c) => KeyCodeKey::Char(c),
            KeyCode::F(n) => KeyCodeKey::F(n),
            KeyCode::Enter => KeyCodeKey::Enter,
            KeyCode::Esc => KeyCodeKey::Esc,
            KeyCode::Tab => KeyCodeKey::Tab,
            KeyCode::BackTab => KeyCodeKey::BackTab,
            KeyCode::Backspace => KeyCodeKey::Backspace,
            KeyCode::Delete => KeyCodeKey::Delete,
            KeyCode::Up => KeyCodeKey::Up,
            KeyCode::Down => KeyCodeKey::Down,
            KeyCode::Left => KeyCodeKey::Left,
            KeyCode::Right => KeyCodeKey::Right,
            KeyCode::PageUp => KeyCodeKey::PageUp,
            KeyCode::PageDown => KeyCodeKey::PageDown,
            KeyCode::Home => KeyCodeKey::Home,
            KeyCode::End => KeyCodeKey::End,
            _ => return None,
        };
        let m = e.modifiers;
        let is_char = matches!(code, KeyCodeKey::Char(_));
        Some(Key {
            code,
            ctrl: m.contains(KeyModifiers::CONTROL),
            alt: m.contains(KeyModifiers::ALT),
            // A character already says whether it is shifted (`J`, `?`).
            shift: !is_char && m.contains(KeyModifiers::SHIFT),
        })
    }

    /// Parse `j`, `J`, `?`, `space`, `ctrl-c`, `shift-tab`, `f5`...
    pub fn parse(s: &str) -> Result<Key, String> {
        let mut rest = s;
        let (mut ctrl, mut alt, mut shift) = (false, false, false);
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-") {
                ctrl = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-") {
                alt = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("shift-") {
                shift = true;
                rest = r;
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCodeKey::Char(c),
            _ => match rest {
                "space" => KeyCodeKey::Char(' '),
                "enter" => KeyCodeKey::Enter,
                "esc" => KeyCodeKey::Esc,
                "tab" => KeyCodeKey::Tab,
                "backtab" => KeyCodeKey::BackTab,
                "backspace" => KeyCodeKey::Backspace,
                "delete" => KeyCodeKey::Delete,
                "up" => KeyCodeKey::Up,
                "down" => KeyCodeKey::Down,
                "left" => KeyCodeKey::Left,
                "right" => KeyCodeKey::Right,
                "pageup" => KeyCodeKey::PageUp,
                "pagedown" => KeyCodeKey::PageDown,
                "home" => KeyCodeKey::Home,
                "end" => KeyCodeKey::End,
                f if f.starts_with('f')
                    && f[1..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n)) =>
                {
                    KeyCodeKey::F(f[1..].parse().unwrap_or(1))
                }
                _ => {
                    return Err(format!(
                        "`{s}` is not a key (try `j`, `enter`, `ctrl-c`, `f5`)"
                    ));
                }
            },
        };
        if let KeyCodeKey::Char(c) = code {
            if shift && c.is_ascii_lowercase() {
                // `shift-j` is how some people write `J`.
                return Ok(Key {
                    code: KeyCodeKey::Char(c.to_ascii_uppercase()),
                    ctrl,
                    alt,
                    shift: false,
                });
            }
            shift = false;
        }
        Ok(Key {
            code,
            ctrl,
            alt,
            shift,
        })
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        if self.shift {
            f.write_str("shift-")?;
        }
        match self.code {
            KeyCodeKey::Char(' ') => f.write_str("space"),
            KeyCodeKey::Char(c) => write!(f, "{c}"),
            KeyCodeKey::F(n) => write!(f, "f{n}"),
            other => f.write_str(&format!("{other:?}").to_lowercase()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    on: Vec<String>,
    run: Spanned<Known<Action>>,
    #[serde(default)]
    desc: String,
}

/// One binding: a key sequence, its action and what it does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub keys: Vec<Key>,
    pub action: Action,
    pub desc: String,
}

/// What a key sequence typed so far means on a screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    Action(Action),
    /// The start of a longer binding (`g` of `g g`): wait for the next key.
    Prefix,
    None,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Keymap {
    modes: BTreeMap<String, Vec<Binding>>,
}

/// A binding as a file wrote it: its action maybe unknown, and the line it is on.
struct Written {
    keys: Vec<Key>,
    action: Known<Action>,
    desc: String,
    line: usize,
}

/// The bindings of a keymap file by screen. What cannot be bound (a bad key, no keys, a
/// screen that does not exist) is warned about with its line and left out; an unknown
/// action is kept for the caller to judge.
fn parse_file(
    text: &str,
    origin: &str,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, Vec<Written>> {
    let raw: BTreeMap<Spanned<String>, Vec<Entry>> = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            warnings.push(format!(
                "keymap {origin} is not valid ({}); it is ignored",
                e.message().trim()
            ));
            return BTreeMap::new();
        }
    };
    let mut out = BTreeMap::new();
    for (mode, entries) in raw {
        let line = line_of(text, mode.span().start);
        let mode = mode.into_inner();
        if !MODES.contains(&mode.as_str()) {
            warnings.push(format!(
                "keymap {origin} line {line}: no screen `{mode}` (screens: {}); ignored",
                MODES.join(", ")
            ));
            continue;
        }
        let mut bindings = Vec::new();
        for e in entries {
            let line = line_of(text, e.run.span().start);
            let action = e.run.into_inner();
            let run = action.name();
            let keys: Result<Vec<Key>, String> = e.on.iter().map(|k| Key::parse(k)).collect();
            match keys {
                Ok(keys) if !keys.is_empty() => bindings.push(Written {
                    keys,
                    action,
                    desc: e.desc,
                    line,
                }),
                Ok(_) => warnings.push(format!(
                    "keymap {origin} line {line}: `{run}` has no keys; ignored"
                )),
                Err(m) => warnings.push(format!(
                    "keymap {origin} line {line}: `{run}`: {m}; ignored"
                )),
            }
        }
        out.insert(mode, bindings);
    }
    out
}

/// The built-in keymap's bindings; an action it names that does not exist is warned about.
fn parse_builtin(warnings: &mut Vec<String>) -> BTreeMap<String, Vec<Binding>> {
    parse_file(DEFAULT, "(built in)", warnings)
        .into_iter()
        .map(|(mode, written)| {
            let bindings = written
                .into_iter()
                .filter_map(|w| match w.action {
                    Known::Yes(action) => Some(Binding {
                        keys: w.keys,
                        action,
                        desc: w.desc,
                    }),
                    Known::No(name) => {
                        warnings.push(format!(
                            "keymap (built in) line {}: no action `{name}`; ignored",
                            w.line
                        ));
                        None
                    }
                })
                .collect();
            (mode, bindings)
        })
        .collect()
}

impl Keymap {
    /// The built-in keymap.
    pub fn builtin() -> Keymap {
        let mut w = Vec::new();
        Keymap {
            modes: parse_builtin(&mut w),
        }
    }

    /// The built-in keymap patched by the user's file, if any: every action the user names
    /// on a screen takes the user's keys instead of the built-in ones. Warnings say what
    /// was ignored; nothing here fails.
    pub fn load(user_file: Option<&Path>) -> (Keymap, Vec<String>) {
        let mut km = Keymap::builtin();
        let mut warnings = Vec::new();
        let Some(path) = user_file else {
            return (km, warnings);
        };
        let Ok(text) = std::fs::read_to_string(path) else {
            return (km, warnings);
        };
        let user = parse_file(&text, &path.display().to_string(), &mut warnings);
        for (mode, written) in user {
            // What a screen can do: its own actions and the global ones.
            let known: Vec<Action> = ["global", mode.as_str()]
                .iter()
                .filter_map(|m| km.modes.get(*m))
                .flatten()
                .map(|b| b.action)
                .collect();
            let mut bindings = Vec::new();
            for w in written {
                match w.action {
                    Known::Yes(action) if known.contains(&action) => bindings.push(Binding {
                        keys: w.keys,
                        action,
                        desc: w.desc,
                    }),
                    // Ignored means not bound: a key the user meant for nothing does nothing.
                    other => warnings.push(format!(
                        "keymap {} line {}: no action `{}` on the {mode} screen; ignored",
                        path.display(),
                        w.line,
                        other.name()
                    )),
                }
            }
            let list = km.modes.entry(mode.clone()).or_default();
            // A user entry without `desc` keeps the built-in words for its action.
            let descs: BTreeMap<Action, String> =
                list.iter().map(|b| (b.action, b.desc.clone())).collect();
            let named: Vec<Action> = bindings.iter().map(|b| b.action).collect();
            list.retain(|b| !named.contains(&b.action));
            for mut b in bindings {
                if b.desc.is_empty() {
                    b.desc = descs.get(&b.action).cloned().unwrap_or_default();
                }
                list.push(b);
            }
        }
        (km, warnings)
    }

    /// What `typed` means on `mode`: its own bindings first, then `global`.
    pub fn lookup(&self, mode: &str, typed: &[Key]) -> Lookup {
        for m in [mode, "global"] {
            let Some(list) = self.modes.get(m) else {
                continue;
            };
            if let Some(b) = list.iter().find(|b| b.keys == typed) {
                return Lookup::Action(b.action);
            }
            if list
                .iter()
                .any(|b| b.keys.len() > typed.len() && b.keys.starts_with(typed))
            {
                return Lookup::Prefix;
            }
        }
        Lookup::None
    }

    /// The bindings of `mode` (without `global`), for the help overlay.
    pub fn bindings(&self, mode: &str) -> &[Binding] {
        self.modes.get(mode).map_or(&[], Vec::as_slice)
    }

    /// The keys bound to `action` on `mode` (or globally), for hints: "a approve".
    pub fn keys_for(&self, mode: &str, action: Action) -> Vec<String> {
        [mode, "global"]
            .iter()
            .filter_map(|m| self.modes.get(*m))
            .flatten()
            .filter(|b| b.action == action)
            .map(|b| {
                b.keys
                    .iter()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Key {
        Key::parse(s).unwrap()
    }

    #[test]
    fn the_builtin_keymap_parses_whole() {
        let mut w = Vec::new();
        let modes = parse_builtin(&mut w);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(modes.len(), MODES.len());
        assert!(modes.values().flatten().all(|b| !b.desc.is_empty()));
    }

    #[test]
    fn an_unknown_action_is_reported_with_its_line_and_left_unbound() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("keymap.toml");
        std::fs::write(
            &f,
            "# mine\nqueue = [\n  { on = [\"y\"], run = \"approve\" },\n  { on = [\"f9\"], run = \"aprove\" },\n  { on = [\"k\"], run = \"zoom\" },\n]\n",
        )
        .unwrap();
        let (km, w) = Keymap::load(Some(&f));
        let at = format!("keymap {} line", f.display());
        assert_eq!(
            w,
            vec![
                format!("{at} 4: no action `aprove` on the queue screen; ignored"),
                format!("{at} 5: no action `zoom` on the queue screen; ignored"),
            ]
        );
        assert_eq!(km.lookup("queue", &[k("f9")]), Lookup::None);
        assert_eq!(
            km.lookup("queue", &[k("y")]),
            Lookup::Action(Action::Approve)
        );
    }

    #[test]
    fn every_action_parses_from_its_name() {
        for a in Action::ALL {
            assert_eq!(a.name().parse::<Action>(), Ok(*a));
        }
        assert!("launch_missiles".parse::<Action>().is_err());
    }

    #[test]
    fn keys_parse_and_print() {
        assert_eq!(k("J"), k("shift-j"));
        assert_eq!(k("ctrl-c").to_string(), "ctrl-c");
        assert_eq!(k("space").to_string(), "space");
        assert_eq!(k("f5").code, KeyCodeKey::F(5));
        assert!(Key::parse("hyper-x").is_err());
        assert!(Key::parse("f13").is_err());
        let ev = KeyEvent::new(KeyCode::Char('J'), KeyModifiers::SHIFT);
        assert_eq!(
            Key::from_event(&ev),
            Some(k("J")),
            "a shifted letter is just the letter"
        );
        let ev = KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT);
        assert_eq!(Key::from_event(&ev).unwrap().code, KeyCodeKey::BackTab);
    }

    #[test]
    fn lookup_prefers_the_screen_then_global_and_waits_on_prefixes() {
        let km = Keymap::builtin();
        assert_eq!(
            km.lookup("replay", &[k("j")]),
            Lookup::Action(Action::NextStep)
        );
        assert_eq!(km.lookup("queue", &[k("j")]), Lookup::Action(Action::Down));
        assert_eq!(km.lookup("replay", &[k("g")]), Lookup::Prefix);
        assert_eq!(
            km.lookup("replay", &[k("g"), k("g")]),
            Lookup::Action(Action::First)
        );
        assert_eq!(km.lookup("fleet", &[k("z")]), Lookup::None);
        assert_eq!(
            km.lookup("fleet", &[k("ctrl-c")]),
            Lookup::Action(Action::Quit)
        );
        assert_eq!(km.keys_for("queue", Action::Approve), vec!["a".to_string()]);
    }

    #[test]
    fn a_user_file_rebinds_named_actions_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("keymap.toml");
        std::fs::write(
            &f,
            "queue = [ { on = [\"y\"], run = \"approve\" }, { on = [\"hyper-q\"], run = \"bump\" }, { on = [\"z\"], run = \"launch_missiles\" } ]\nnowhere = []\n",
        )
        .unwrap();
        let (km, w) = Keymap::load(Some(&f));
        assert_eq!(
            km.lookup("queue", &[k("y")]),
            Lookup::Action(Action::Approve)
        );
        assert_eq!(
            km.lookup("queue", &[k("a")]),
            Lookup::None,
            "the old key is gone"
        );
        assert_eq!(
            km.lookup("queue", &[k("b")]),
            Lookup::Action(Action::Bump),
            "a bad key leaves the built-in"
        );
        assert!(w.iter().any(|w| w.contains("hyper-q")), "{w:?}");
        assert!(w.iter().any(|w| w.contains("launch_missiles")), "{w:?}");
        assert_eq!(
            km.lookup("queue", &[k("z")]),
            Lookup::None,
            "an action that does not exist is not bound"
        );
        assert!(w.iter().any(|w| w.contains("nowhere")), "{w:?}");
        assert_eq!(
            km.bindings("queue")
                .iter()
                .find(|b| b.action == Action::Approve)
                .unwrap()
                .desc,
            "approve (asks first)"
        );

        let at = format!("keymap {} line 1: ", f.display());
        assert!(
            w.contains(&format!(
                "{at}no action `launch_missiles` on the queue screen; ignored"
            )),
            "{w:?}"
        );
        assert!(
            w.iter()
                .any(|w| w.starts_with(&at) && w.contains("hyper-q")),
            "{w:?}"
        );
        assert!(
            w.iter().any(|w| w.contains("line 2: no screen `nowhere`")),
            "{w:?}"
        );

        std::fs::write(&f, "not [toml").unwrap();
        let (km, w) = Keymap::load(Some(&f));
        assert_eq!(km, Keymap::builtin());
        assert!(w[0].contains("not valid"));
    }
}

//! The keymap as data: `assets/keymap.toml` (compiled in) binds keys and key sequences to
//! actions per screen, with the text the help overlay shows; a user file of the same shape
//! replaces the keys of the actions it names. Vim-style keys and arrows by default. The
//! help overlay, the status hints and the dispatcher all read this one table.

use std::collections::BTreeMap;
use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;

const DEFAULT: &str = include_str!("../../assets/keymap.toml");

/// The screens (and `global`) a binding belongs to.
pub const MODES: &[&str] = &["global", "fleet", "tickets", "replay", "queue", "memory"];

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
    run: String,
    #[serde(default)]
    desc: String,
}

/// One binding: a key sequence, its action and what it does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub keys: Vec<Key>,
    pub action: String,
    pub desc: String,
}

/// What a key sequence typed so far means on a screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    Action(String),
    /// The start of a longer binding (`g` of `g g`): wait for the next key.
    Prefix,
    None,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Keymap {
    modes: BTreeMap<String, Vec<Binding>>,
}

fn parse_file(
    text: &str,
    origin: &str,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, Vec<Binding>> {
    let raw: BTreeMap<String, Vec<Entry>> = match toml::from_str(text) {
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
        if !MODES.contains(&mode.as_str()) {
            warnings.push(format!(
                "keymap {origin}: no screen `{mode}` (screens: {}); ignored",
                MODES.join(", ")
            ));
            continue;
        }
        let mut bindings = Vec::new();
        for e in entries {
            let keys: Result<Vec<Key>, String> = e.on.iter().map(|k| Key::parse(k)).collect();
            match keys {
                Ok(keys) if !keys.is_empty() => bindings.push(Binding {
                    keys,
                    action: e.run,
                    desc: e.desc,
                }),
                Ok(_) => {
                    warnings.push(format!("keymap {origin}: `{}` has no keys; ignored", e.run))
                }
                Err(m) => warnings.push(format!("keymap {origin}: `{}`: {m}; ignored", e.run)),
            }
        }
        out.insert(mode, bindings);
    }
    out
}

impl Keymap {
    /// The built-in keymap.
    pub fn builtin() -> Keymap {
        let mut w = Vec::new();
        Keymap {
            modes: parse_file(DEFAULT, "(built in)", &mut w),
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
        for (mode, bindings) in user {
            // What a screen can do: its own actions and the global ones.
            let known: Vec<String> = ["global", mode.as_str()]
                .iter()
                .filter_map(|m| km.modes.get(*m))
                .flatten()
                .map(|b| b.action.clone())
                .collect();
            let (bindings, unknown): (Vec<Binding>, Vec<Binding>) = bindings
                .into_iter()
                .partition(|b| known.contains(&b.action));
            // Ignored means not bound: a key the user meant for nothing does nothing.
            for b in &unknown {
                warnings.push(format!(
                    "keymap {}: no action `{}` on the {mode} screen; ignored",
                    path.display(),
                    b.action
                ));
            }
            let list = km.modes.entry(mode.clone()).or_default();
            // A user entry without `desc` keeps the built-in words for its action.
            let descs: BTreeMap<String, String> = list
                .iter()
                .map(|b| (b.action.clone(), b.desc.clone()))
                .collect();
            let named: Vec<String> = bindings.iter().map(|b| b.action.clone()).collect();
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
                return Lookup::Action(b.action.clone());
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
    pub fn keys_for(&self, mode: &str, action: &str) -> Vec<String> {
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
        let modes = parse_file(DEFAULT, "(built in)", &mut w);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(modes.len(), MODES.len());
        assert!(modes.values().flatten().all(|b| !b.desc.is_empty()));
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
            Lookup::Action("next_step".into())
        );
        assert_eq!(km.lookup("queue", &[k("j")]), Lookup::Action("down".into()));
        assert_eq!(km.lookup("replay", &[k("g")]), Lookup::Prefix);
        assert_eq!(
            km.lookup("replay", &[k("g"), k("g")]),
            Lookup::Action("first".into())
        );
        assert_eq!(km.lookup("fleet", &[k("z")]), Lookup::None);
        assert_eq!(
            km.lookup("fleet", &[k("ctrl-c")]),
            Lookup::Action("quit".into())
        );
        assert_eq!(km.keys_for("queue", "approve"), vec!["a".to_string()]);
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
            Lookup::Action("approve".into())
        );
        assert_eq!(
            km.lookup("queue", &[k("a")]),
            Lookup::None,
            "the old key is gone"
        );
        assert_eq!(
            km.lookup("queue", &[k("b")]),
            Lookup::Action("bump".into()),
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
                .find(|b| b.action == "approve")
                .unwrap()
                .desc,
            "approve (asks first)"
        );

        std::fs::write(&f, "not [toml").unwrap();
        let (km, w) = Keymap::load(Some(&f));
        assert_eq!(km, Keymap::builtin());
        assert!(w[0].contains("not valid"));
    }
}

//! Secret redaction: every step passes through a [`Redactor`] before it reaches the store,
//! so API keys, tokens and private keys an agent printed never land on disk.
//!
//! All patterns are compiled into ONE regex of named alternatives: the common case (no
//! secret in the text) is a single linear scan that returns the input borrowed.

use std::borrow::Cow;
use std::sync::Arc;

use regex::{Captures, Regex};

pub use crate::config::redact::RedactConfig;
use crate::model::{Payload, StepKind};

mod check;
mod patterns;
mod stream;
#[cfg(test)]
mod tests;

pub use check::RedactError;
use patterns::{builtin_rules, quoted_assignment};
pub use stream::{MAX_KEY_BLOCK_LINES, StreamRedactor};

/// Environment values shorter than this are not redacted literally: a short value such as
/// `true` or `1234` would blank out ordinary text everywhere.
pub const MIN_ENV_VALUE_LEN: usize = 8;

/// One alternative of the combined regex.
struct Rule {
    kind: String,
    /// The index of the capture group the whole alternative is.
    group: usize,
    /// The groups of the secret part (keeps `NAME=` visible; the first that took part),
    /// else the whole match goes.
    secret_groups: Vec<usize>,
    /// Reject matches that contain no digit (keeps `sk-some-long-kebab-name` in prose).
    needs_digit: bool,
}

/// Replaces secrets in text with `[REDACTED:<kind>]`. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct Redactor {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    re: Regex,
    rules: Vec<Rule>,
    /// Whether the built-in shapes (private keys among them) are on.
    builtin: bool,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.inner.as_ref().map_or(0, |i| i.rules.len());
        write!(f, "Redactor({n} rules)")
    }
}

impl Redactor {
    /// A redactor with the default config (built-ins and the default env suffixes), without
    /// environment values.
    pub fn standard() -> Redactor {
        match Redactor::new(&RedactConfig::default()) {
            Ok(r) => r,
            // The built-in patterns are constants covered by tests; failing here is a bug in
            // patterns.rs, and redacting nothing would silently leak, so refuse loudly.
            Err(e) => panic!("built-in redaction patterns must compile: {e}"),
        }
    }

    /// A redactor that changes nothing (for tests and `--no-redact`).
    pub fn disabled() -> Redactor {
        Redactor { inner: None }
    }

    pub fn new(cfg: &RedactConfig) -> Result<Redactor, RedactError> {
        Redactor::build(cfg, &[])
    }

    /// Like [`Redactor::new`], and also hide the literal values of the given environment
    /// variables whose names end in one of the suffixes (values of at least 8 characters).
    pub fn with_env<I, K, V>(cfg: &RedactConfig, env: I) -> Result<Redactor, RedactError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut values: Vec<String> = env
            .into_iter()
            .filter(|(k, v)| {
                let k = k.as_ref();
                v.as_ref().len() >= MIN_ENV_VALUE_LEN
                    && cfg.env_suffixes.iter().any(|s| k.ends_with(s.as_str()))
            })
            .map(|(_, v)| v.as_ref().to_string())
            .collect();
        // Longest first, so a value that contains another is hidden whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Redactor::build(cfg, &values)
    }

    fn build(cfg: &RedactConfig, env_values: &[String]) -> Result<Redactor, RedactError> {
        cfg.validate()?;
        // (kind, regex, needs a digit)
        let mut specs: Vec<(String, String, bool)> = Vec::new();
        // Literal environment values first: they are exact and the most certain.
        if !env_values.is_empty() {
            let alts: Vec<String> = env_values.iter().map(|v| regex::escape(v)).collect();
            specs.push(("env_value".into(), alts.join("|"), false));
        }
        if cfg.builtin {
            for (k, re, d) in builtin_rules() {
                specs.push((k.into(), re, d));
            }
        }
        if !cfg.env_suffixes.is_empty() {
            let suffixes: Vec<String> = cfg.env_suffixes.iter().map(|s| regex::escape(s)).collect();
            let suf = suffixes.join("|");
            // `"NAME": "value"` (JSON, YAML-ish) — keep the name, hide the value.
            specs.push((
                "secret_value".into(),
                quoted_assignment(&format!("[A-Za-z0-9_]*(?:{suf})")),
                false,
            ));
            // `NAME=value` (shell, .env) with an upper-case, env-style name: lower-case code
            // such as `api_key = get_key()` is ordinary code, not a leaked value.
            specs.push((
                "secret_value".into(),
                format!(
                    r#"(?-u:\b)[A-Z][A-Z0-9_]*(?:{suf})\s*=\s*(?P<secret>"[^"\n]{{4,}}"|'[^'\n]{{4,}}'|[^\s"'\\$]{{4,}})"#
                ),
                false,
            ));
        }
        for p in &cfg.patterns {
            specs.push(("custom".into(), format!("(?:{p})"), false));
        }
        if specs.is_empty() {
            return Ok(Redactor::disabled());
        }
        // Name each alternative `k<i>` and its secret parts `s<i>_<j>`, then find their
        // group numbers once, so a match is told apart without formatting names.
        let alts: Vec<String> = specs
            .iter()
            .enumerate()
            .map(|(i, (_, re, _))| {
                let mut named = String::with_capacity(re.len() + 16);
                for (j, part) in re.split("(?P<secret>").enumerate() {
                    if j > 0 {
                        named.push_str(&format!("(?P<s{i}_{j}>"));
                    }
                    named.push_str(part);
                }
                format!("(?P<k{i}>{named})")
            })
            .collect();
        let re = regex::RegexBuilder::new(&alts.join("|"))
            .size_limit(64 << 20)
            .build()
            .map_err(|e| RedactError::TooLarge {
                source: Box::new(e),
            })?;
        let group_of = |name: &str| re.capture_names().position(|n| n == Some(name));
        let rules = specs
            .into_iter()
            .enumerate()
            .map(|(i, (kind, _, needs_digit))| Rule {
                kind,
                group: group_of(&format!("k{i}")).unwrap_or(0),
                secret_groups: (1..)
                    .map_while(|j| group_of(&format!("s{i}_{j}")))
                    .collect(),
                needs_digit,
            })
            .collect();
        Ok(Redactor {
            inner: Some(Arc::new(Inner {
                re,
                rules,
                builtin: cfg.builtin,
            })),
        })
    }

    /// The text with every secret replaced; borrowed when nothing matched.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let Some(inner) = &self.inner else {
            return Cow::Borrowed(text);
        };
        // Fast path: one scan without capture bookkeeping.
        if !inner.re.is_match(text) {
            return Cow::Borrowed(text);
        }
        let mut changed = false;
        let out = inner.re.replace_all(text, |caps: &Captures| {
            let whole = caps.get(0).map_or("", |m| m.as_str());
            let rule = inner.rules.iter().find(|r| caps.get(r.group).is_some());
            let Some(rule) = rule else {
                return whole.to_string();
            };
            // An empty match hides nothing; marking it would only inflate the text.
            if whole.is_empty() || (rule.needs_digit && !whole.bytes().any(|b| b.is_ascii_digit()))
            {
                return whole.to_string();
            }
            changed = true;
            let mark = format!("[REDACTED:{}]", rule.kind);
            let secret = rule.secret_groups.iter().find_map(|&g| caps.get(g));
            match (secret, caps.get(0)) {
                (Some(s), Some(m)) => {
                    let start = s.start() - m.start();
                    let end = start + s.len();
                    format!("{}{mark}{}", &whole[..start], &whole[end..])
                }
                _ => mark,
            }
        });
        if changed {
            Cow::Owned(out.into_owned())
        } else {
            Cow::Borrowed(text)
        }
    }

    /// Redact a payload in place (blob references are already stored and left alone).
    pub fn redact_payload(&self, p: &mut Payload) {
        if let Payload::Text(t) = p
            && let Cow::Owned(new) = self.redact(t)
        {
            *t = new;
        }
    }

    /// Redact every text a step carries: payloads and command arguments. Tool names,
    /// paths and ids are left as they are (they are structure, not content).
    pub fn redact_step(&self, kind: &mut StepKind) {
        if self.inner.is_none() {
            return;
        }
        match kind {
            StepKind::Command { argv, .. } => {
                for a in argv.iter_mut() {
                    if let Cow::Owned(new) = self.redact(a) {
                        *a = new;
                    }
                }
            }
            // A reason may quote a piece of the bad input (a parser's error message).
            StepKind::Raw { reason, .. } => {
                if let Cow::Owned(new) = self.redact(reason) {
                    *reason = new;
                }
            }
            _ => {}
        }
        for p in kind.payloads_mut() {
            self.redact_payload(p);
        }
    }

    /// Whether private key blocks are hidden (the built-in shapes are on).
    fn hides_private_keys(&self) -> bool {
        self.inner.as_ref().is_some_and(|i| i.builtin)
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::standard()
    }
}

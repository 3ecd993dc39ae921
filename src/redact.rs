//! Secret redaction: every step passes through a [`Redactor`] before it reaches the store,
//! so API keys, tokens and private keys an agent printed never land on disk.
//!
//! All patterns are compiled into ONE regex of named alternatives: the common case (no
//! secret in the text) is a single linear scan that returns the input borrowed.

use std::borrow::Cow;
use std::sync::Arc;

use regex::{Captures, Regex};
use serde::Deserialize;

use crate::model::{Payload, StepKind};

/// The `[redact]` section of the config.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedactConfig {
    /// Extra regexes; a match is replaced with `[REDACTED:custom]`.
    pub patterns: Vec<String>,
    /// Variable names ending in one of these are secrets: their assignments in text, and the
    /// values of such variables in the environment.
    pub env_suffixes: Vec<String>,
    /// Use the built-in patterns for well-known key and token shapes.
    pub builtin: bool,
}

impl Default for RedactConfig {
    fn default() -> Self {
        RedactConfig {
            patterns: Vec::new(),
            env_suffixes: ["_KEY", "_TOKEN", "_SECRET", "_PASSWORD"]
                .map(String::from)
                .to_vec(),
            builtin: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    #[error(
        "redaction pattern `{pattern}` is not a valid regex: {source}; fix or remove it in the [redact] patterns of shopfloor.toml"
    )]
    BadPattern {
        pattern: String,
        #[source]
        source: Box<regex::Error>,
    },
}

/// Environment values shorter than this are not redacted literally: a short value such as
/// `true` or `1234` would blank out ordinary text everywhere.
pub const MIN_ENV_VALUE_LEN: usize = 8;

/// One alternative of the combined regex.
struct Rule {
    kind: String,
    /// Replace only the `s<i>` group (keeps `NAME=` visible), else the whole match.
    has_secret_group: bool,
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
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.inner.as_ref().map_or(0, |i| i.rules.len());
        write!(f, "Redactor({n} rules)")
    }
}

/// Built-in shapes: (kind, regex, has a `secret` group, needs a digit).
fn builtin_rules() -> Vec<(&'static str, String, bool, bool)> {
    vec![
        // Multi-line PEM blocks first: they may contain anything.
        (
            "private_key",
            r"(?s:-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----)"
                .into(),
            false,
            false,
        ),
        // A truncated block (no END line in this text) still hides its body.
        (
            "private_key",
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:[A-Za-z0-9+/=\s]|\\n|\\r)*".into(),
            false,
            false,
        ),
        (
            "aws_access_key",
            r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b".into(),
            false,
            false,
        ),
        (
            "aws_secret",
            r#"(?i:aws_secret_access_key)["']?\s*[:=]\s*["']?(?P<secret>[A-Za-z0-9/+=]{40})\b"#
                .into(),
            true,
            false,
        ),
        (
            "gcp_api_key",
            r"\bAIza[0-9A-Za-z_\-]{35}".into(),
            false,
            false,
        ),
        (
            "github_token",
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b".into(),
            false,
            false,
        ),
        // Anthropic before OpenAI: at the same position the earlier alternative wins.
        (
            "anthropic_key",
            r"\bsk-ant-[A-Za-z0-9_\-]{20,}".into(),
            false,
            true,
        ),
        (
            "openai_key",
            r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}".into(),
            false,
            true,
        ),
        (
            "slack_token",
            r"\bxox[baprs]-[A-Za-z0-9\-]{10,}".into(),
            false,
            false,
        ),
    ]
}

impl Redactor {
    /// A redactor with the default config (built-ins and the default env suffixes), without
    /// environment values.
    pub fn standard() -> Redactor {
        match Redactor::new(&RedactConfig::default()) {
            Ok(r) => r,
            // The built-in patterns are constants covered by tests; failing here is a bug in
            // this file, and redacting nothing would silently leak, so refuse loudly.
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
        let mut specs: Vec<(String, String, bool, bool)> = Vec::new();
        // Literal environment values first: they are exact and the most certain.
        if !env_values.is_empty() {
            let alts: Vec<String> = env_values.iter().map(|v| regex::escape(v)).collect();
            specs.push(("env_value".into(), alts.join("|"), false, false));
        }
        if cfg.builtin {
            for (k, re, s, d) in builtin_rules() {
                specs.push((k.into(), re, s, d));
            }
        }
        if !cfg.env_suffixes.is_empty() {
            let suffixes: Vec<String> = cfg.env_suffixes.iter().map(|s| regex::escape(s)).collect();
            let suf = suffixes.join("|");
            // `"NAME": "value"` (JSON, YAML-ish) — keep the name, hide the value.
            specs.push((
                "secret_value".into(),
                format!(r#""[A-Za-z0-9_]*(?:{suf})"\s*:\s*"(?P<secret>(?:[^"\\\n]|\\.){{4,}})""#),
                true,
                false,
            ));
            // `NAME=value` (shell, .env) with an upper-case, env-style name: lower-case code
            // such as `api_key = get_key()` is ordinary code, not a leaked value.
            specs.push((
                "secret_value".into(),
                format!(
                    r#"\b[A-Z][A-Z0-9_]*(?:{suf})\s*=\s*(?P<secret>"[^"\n]{{4,}}"|'[^'\n]{{4,}}'|[^\s"'\\$]{{4,}})"#
                ),
                true,
                false,
            ));
        }
        for p in &cfg.patterns {
            // Compile alone first so the error names the user's pattern, not the combination.
            Regex::new(p).map_err(|e| RedactError::BadPattern {
                pattern: p.clone(),
                source: Box::new(e),
            })?;
            specs.push(("custom".into(), format!("(?:{p})"), false, false));
        }
        if specs.is_empty() {
            return Ok(Redactor::disabled());
        }
        let mut alts = Vec::with_capacity(specs.len());
        let mut rules = Vec::with_capacity(specs.len());
        for (i, (kind, re, has_secret, needs_digit)) in specs.into_iter().enumerate() {
            let re = re.replace("(?P<secret>", &format!("(?P<s{i}>"));
            alts.push(format!("(?P<k{i}>{re})"));
            rules.push(Rule {
                kind,
                has_secret_group: has_secret,
                needs_digit,
            });
        }
        let combined = alts.join("|");
        let re = regex::RegexBuilder::new(&combined)
            .size_limit(64 << 20)
            .build()
            .map_err(|e| RedactError::BadPattern {
                pattern: combined.chars().take(200).collect(),
                source: Box::new(e),
            })?;
        Ok(Redactor {
            inner: Some(Arc::new(Inner { re, rules })),
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
            let Some((i, rule)) = inner
                .rules
                .iter()
                .enumerate()
                .find(|(i, _)| caps.name(&format!("k{i}")).is_some())
            else {
                return whole.to_string();
            };
            if rule.needs_digit && !whole.bytes().any(|b| b.is_ascii_digit()) {
                return whole.to_string();
            }
            changed = true;
            let mark = format!("[REDACTED:{}]", rule.kind);
            match (rule.has_secret_group, caps.name(&format!("s{i}"))) {
                (true, Some(s)) => {
                    let start = s.start() - caps.get(0).map_or(0, |m| m.start());
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
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::standard()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> Redactor {
        Redactor::standard()
    }

    fn assert_redacted(input: &str, secret: &str, kind: &str) {
        let out = r().redact(input).into_owned();
        assert!(!out.contains(secret), "{secret} survived in {out}");
        assert!(
            out.contains(&format!("[REDACTED:{kind}]")),
            "expected kind {kind} in {out}"
        );
    }

    #[test]
    fn aws_keys() {
        assert_redacted(
            "key AKIAIOSFODNN7EXAMPLE here",
            "AKIAIOSFODNN7EXAMPLE",
            "aws_access_key",
        );
        assert_redacted(
            "ASIAY34FZKBOKMUTVV7A",
            "ASIAY34FZKBOKMUTVV7A",
            "aws_access_key",
        );
        let s = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        assert_redacted(&format!("aws_secret_access_key = {s}"), s, "aws_secret");
    }

    #[test]
    fn gcp_github_slack() {
        let g = "AIzaSyA1234567890abcdefghijklmnopqrstuv";
        assert_redacted(&format!("k={g}"), g, "gcp_api_key");
        for t in [
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "gho_abcdefghijklmnopqrstuvwxyz0123456789",
            "ghu_abcdefghijklmnopqrstuvwxyz0123456789",
            "ghs_abcdefghijklmnopqrstuvwxyz0123456789",
            "ghr_abcdefghijklmnopqrstuvwxyz0123456789",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        ] {
            assert_redacted(&format!("token: {t}."), t, "github_token");
        }
        assert_redacted(
            "xoxb-1234567890-abcdefghij",
            "xoxb-1234567890-abcdefghij",
            "slack_token",
        );
    }

    #[test]
    fn anthropic_and_openai() {
        let a = "sk-ant-api03-AbCdEf0123456789_xyzXYZ-abc";
        assert_redacted(&format!("export X={a}"), a, "anthropic_key");
        let o = "sk-proj-Ab12Cd34Ef56Gh78Ij90KlMnOpQr";
        assert_redacted(&format!("\"{o}\""), o, "openai_key");
        let o2 = "sk-0123456789abcdefghijABCDEFGHIJ";
        assert_redacted(o2, o2, "openai_key");
    }

    #[test]
    fn private_key_block_multiline_and_escaped() {
        let block = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc+/=\n-----END RSA PRIVATE KEY-----";
        let out = r().redact(&format!("before\n{block}\nafter")).into_owned();
        assert_eq!(out, "before\n[REDACTED:private_key]\nafter");
        // Inside raw JSON text the newlines are `\n` escapes.
        let json = r#"{"x":"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNz\n-----END OPENSSH PRIVATE KEY-----\n"}"#;
        let out = r().redact(json).into_owned();
        assert!(!out.contains("b3BlbnNz"), "{out}");
    }

    #[test]
    fn env_style_assignments_keep_the_name() {
        let out = r().redact("MY_SERVICE_TOKEN=abc123secret ok").into_owned();
        assert_eq!(out, "MY_SERVICE_TOKEN=[REDACTED:secret_value] ok");
        let out = r()
            .redact(r#"{"DB_PASSWORD": "hunter2hunter2"}"#)
            .into_owned();
        assert_eq!(out, r#"{"DB_PASSWORD": "[REDACTED:secret_value]"}"#);
        let out = r()
            .redact("export STRIPE_SECRET='s3cr3t value'")
            .into_owned();
        assert_eq!(out, "export STRIPE_SECRET=[REDACTED:secret_value]");
    }

    #[test]
    fn environment_values_are_hidden_literally() {
        let env = [
            ("MY_API_KEY", "verysecretvalue42"),
            ("SHORT_TOKEN", "abc"),
            ("HOME", "/home/someone-long"),
        ];
        let red = Redactor::with_env(&RedactConfig::default(), env).unwrap();
        let out = red
            .redact("x verysecretvalue42 y abc /home/someone-long")
            .into_owned();
        assert_eq!(out, "x [REDACTED:env_value] y abc /home/someone-long");
    }

    #[test]
    fn no_false_positives_on_code_and_prose() {
        let text = r#"
fn main() {
    let api_key = get_key();
    const MAX_KEY: usize = 5;
    let task = "sk-learn-is-a-library-name-for-ml";
    println!("The GitHub flow: open a PR, ask for review, merge.");
    // AKIA is a prefix; AKIAshort is not a key
    let x = map.get("token").unwrap_or_default();
}
The secret to good tests is small examples. Use $MY_TOKEN in scripts: MY_TOKEN=$TOKEN.
"#;
        let red = r();
        assert!(
            matches!(red.redact(text), Cow::Borrowed(_)),
            "{}",
            red.redact(text)
        );
    }

    #[test]
    fn custom_patterns_and_bad_pattern_error() {
        let cfg = RedactConfig {
            patterns: vec![r"internal-[0-9]{6}".into()],
            ..RedactConfig::default()
        };
        let red = Redactor::new(&cfg).unwrap();
        assert_eq!(
            red.redact("id internal-123456").as_ref(),
            "id [REDACTED:custom]"
        );
        let bad = RedactConfig {
            patterns: vec!["(unclosed".into()],
            ..RedactConfig::default()
        };
        let err = Redactor::new(&bad).unwrap_err().to_string();
        assert!(
            err.contains("(unclosed") && err.contains("not a valid regex"),
            "{err}"
        );
    }

    #[test]
    fn config_rejects_unknown_keys_and_defaults() {
        let cfg: RedactConfig = toml::from_str("patterns = [\"x\"]").unwrap();
        assert!(cfg.builtin);
        assert_eq!(cfg.env_suffixes.len(), 4);
        assert!(toml::from_str::<RedactConfig>("bogus = 1").is_err());
    }

    #[test]
    fn redact_step_covers_payloads_and_argv_not_names() {
        let mut k = StepKind::Command {
            argv: vec![
                "curl".into(),
                "-H".into(),
                "ghp_abcdefghijklmnopqrstuvwxyz0123456789".into(),
            ],
            exit_code: Some(0),
            output: "AKIAIOSFODNN7EXAMPLE".into(),
        };
        r().redact_step(&mut k);
        let json = serde_json::to_string(&k).unwrap();
        assert!(
            !json.contains("ghp_abc") && !json.contains("AKIAIOSF"),
            "{json}"
        );
        let mut k = StepKind::ToolCall {
            call_id: Some("c".into()),
            name: "Bash".into(),
            input: r#"{"command":"echo sk-ant-api03-AbCdEf0123456789_xyz"}"#.into(),
        };
        r().redact_step(&mut k);
        let StepKind::ToolCall { name, input, .. } = &k else {
            unreachable!()
        };
        assert_eq!(name, "Bash");
        assert!(input.preview().contains("[REDACTED:anthropic_key]"));
    }
}

//! Secret redaction: every step passes through a [`Redactor`] before it reaches the store,
//! so API keys, tokens and private keys an agent printed never land on disk.
//!
//! All patterns are compiled into ONE regex of named alternatives: the common case (no
//! secret in the text) is a single linear scan that returns the input borrowed.

use std::borrow::Cow;
use std::sync::Arc;

use regex::{Captures, Regex};

pub use crate::config::redact::{MAX_PATTERN_LEN, MAX_PATTERNS, RedactConfig};
use crate::model::{Payload, StepKind};

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
    #[error(
        "redaction pattern {pattern:?} can match empty text, so it would mark every position of every step; make it match at least one character (`x+`, not `x*`), or remove it from the [redact] patterns of shopfloor.toml"
    )]
    MatchesEmpty { pattern: String },
    #[error(
        "redaction pattern `{prefix}...` is {len} bytes long; keep each of the [redact] patterns under {MAX_PATTERN_LEN} bytes"
    )]
    PatternTooLong { prefix: String, len: usize },
    #[error(
        "[redact] has {count} patterns; at most {MAX_PATTERNS} are allowed, so combine similar ones into one alternation"
    )]
    TooManyPatterns { count: usize },
    #[error(
        "[redact] env_suffixes holds an empty suffix, which makes every variable a secret; remove it"
    )]
    EmptySuffix,
    #[error(
        "the [redact] patterns together compile to a regex that is too large ({source}); use fewer or simpler patterns"
    )]
    TooLarge {
        #[source]
        source: Box<regex::Error>,
    },
}

impl RedactConfig {
    /// Check each pattern on its own, so an error names the one to fix: a valid regex,
    /// not too long, not too many, and never matching empty text (an empty match is
    /// replaced by a mark at every position: `patterns = [""]` made stored text 17 times
    /// larger).
    pub fn validate(&self) -> Result<(), RedactError> {
        if self.patterns.len() > MAX_PATTERNS {
            return Err(RedactError::TooManyPatterns {
                count: self.patterns.len(),
            });
        }
        if self.env_suffixes.iter().any(|s| s.is_empty()) {
            return Err(RedactError::EmptySuffix);
        }
        for p in &self.patterns {
            if p.len() > MAX_PATTERN_LEN {
                return Err(RedactError::PatternTooLong {
                    prefix: p.chars().take(40).collect(),
                    len: p.len(),
                });
            }
            if can_match_empty(p).map_err(|source| RedactError::BadPattern {
                pattern: p.clone(),
                source,
            })? {
                return Err(RedactError::MatchesEmpty { pattern: p.clone() });
            }
        }
        Ok(())
    }
}

/// Whether `pattern` (a valid regex, else its error) matches the empty string anywhere:
/// `a*`, `x?`, `\b`, `^`, `a|`.
fn can_match_empty(pattern: &str) -> Result<bool, Box<regex::Error>> {
    Regex::new(pattern).map_err(Box::new)?;
    // A regex that compiles also parses; its minimum match length says it exactly.
    let hir =
        regex_syntax::parse(pattern).map_err(|e| Box::new(regex::Error::Syntax(e.to_string())))?;
    Ok(hir.properties().minimum_len() == Some(0))
}

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

/// The body of a PEM block after its BEGIN line: base64 lines, blank lines, the headers of
/// an encrypted key, and the same with `\n` escapes when the text is raw JSON.
/// (The headers come first: of alternatives the regex prefers the earlier one.)
const PEM_BODY: &str = r"(?:(?:Proc-Type|DEK-Info):[^\n\\]*|[A-Za-z0-9+/=\s]|\\[nr])*";
/// A BEGIN or END line of a private key block.
const PEM_MARKER: &str = r"-----(BEGIN|END) [A-Z0-9 ]*PRIVATE KEY-----";

/// Key names whose values are secrets wherever they are assigned: `password`,
/// `client_secret`, `access_token`, `apiKey`, `x-api-key`...; the name may have a prefix.
const SECRET_KEY_NAMES: &str = r"[A-Za-z0-9_.\-]*(?i:pass(?:word|wd|phrase)|secret|token|api[_\-]?key|access[_\-]?key|secret[_\-]?key|private[_\-]?key|credentials?)";

/// `NAME: "value"`, `"NAME": "value"`, `NAME = 'value'`, `NAME := "value"`, also inside
/// JSON-escaped text (`\"NAME\": \"value\"`), for names matching `name`; the value is the
/// `secret` group. Placeholders (`"<token>"`, `"${TOKEN}"`, `"%s"`, `"***"`), empty
/// strings, unquoted values (`password=None`, `password: str`) and comparisons
/// (`password == "x"`) are left alone.
fn quoted_assignment(name: &str) -> String {
    // The first character rules out placeholders, empty strings and code like `", x)`.
    const FIRST: &str = r#"[^"'\\\s<$%{*,;)]"#;
    format!(
        r#"\\?"?{name}\\?"?\s*(?::=|[:=])\s*(?:\\?"(?P<secret>{FIRST}(?:[^"\\\n]|\\[^"\n])*)\\?"|'(?P<secret>{FIRST}(?:[^'\\\n]|\\[^'\n])*)')"#
    )
}

/// Built-in shapes: (kind, regex, needs a digit). A `secret` group, where there is one,
/// is the part replaced. Word boundaries are ASCII (`(?-u:\b)`): a Unicode `\b` makes the
/// regex's lazy DFA give up at the first non-ASCII byte and fall back to an engine a
/// hundred times slower (`cargo bench --bench redact`), and secrets are ASCII anyway.
fn builtin_rules() -> Vec<(&'static str, String, bool)> {
    vec![
        // Multi-line PEM blocks first: they may contain anything.
        (
            "private_key",
            r"(?s:-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----)"
                .into(),
            false,
        ),
        // A truncated block (no END line in this text) still hides its body.
        (
            "private_key",
            format!("-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----{PEM_BODY}"),
            false,
        ),
        (
            "aws_access_key",
            r"(?-u:\b)(?:AKIA|ASIA)[0-9A-Z]{16}(?-u:\b)".into(),
            false,
        ),
        (
            "aws_secret",
            r#"(?i:aws_secret_access_key)["']?\s*[:=]\s*["']?(?P<secret>[A-Za-z0-9/+=]{40})(?-u:\b)"#
                .into(),
            false,
        ),
        ("gcp_api_key", r"(?-u:\b)AIza[0-9A-Za-z_\-]{35}".into(), false),
        (
            "github_token",
            r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})(?-u:\b)".into(),
            false,
        ),
        ("gitlab_token", r"(?-u:\b)glpat-[A-Za-z0-9_\-]{20,}".into(), false),
        // Anthropic before OpenAI: at the same position the earlier alternative wins.
        ("anthropic_key", r"(?-u:\b)sk-ant-[A-Za-z0-9_\-]{20,}".into(), true),
        (
            "openai_key",
            r"(?-u:\b)sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}".into(),
            true,
        ),
        // Secret and restricted keys, live and test, and webhook signing secrets; the
        // publishable `pk_` keys are meant to be public.
        (
            "stripe_key",
            r"(?-u:\b)(?:[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{24,})".into(),
            false,
        ),
        ("slack_token", r"(?-u:\b)xox[baprs]-[A-Za-z0-9\-]{10,}".into(), false),
        (
            "slack_webhook",
            r"(?-u:\b)https://hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>[A-Za-z0-9_/\-]{8,})"
                .into(),
            false,
        ),
        ("huggingface_token", r"(?-u:\b)hf_[A-Za-z0-9]{30,}".into(), false),
        ("npm_token", r"(?-u:\b)npm_[A-Za-z0-9]{30,}".into(), false),
        // A JSON Web Token: base64url of `{"` starts both the header and the claims.
        (
            "jwt",
            r"(?-u:\b)eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*".into(),
            false,
        ),
        // `scheme://user:password@host`: scheme, user and host stay visible. The password
        // runs to the last `@` of the authority, as URL parsers read it.
        (
            "password",
            r#"(?-u:\b)[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@"'<>]*:(?P<secret>[^\s/?#@"'<>$%{*][^\s/?#"'<>]*)@"#
                .into(),
            false,
        ),
        // `curl -u user:password`.
        (
            "password",
            r#"(?-u:\b)curl(?-u:\b)[^\n]*?\s(?:-u|--user)\s*["']?[^\s:"']+:(?P<secret>[^\s"'<$%{*][^\s"']*)"#
                .into(),
            false,
        ),
        // `Authorization: Bearer ...` / `Basic ...` / `token ...`: a header, a curl
        // `-H 'Authorization: ...'`, or a JSON field named so.
        (
            "authorization",
            r#"(?i:authorization)\\?["']?\s*[:=]\s*\\?["']?(?i:bearer|basic|token)\s+(?P<secret>[A-Za-z0-9._~+/\-]{8,}=*)"#
                .into(),
            false,
        ),
        (
            "authorization",
            r#"(?i:x-api-key|x-auth-token|private-token)\\?["']?\s*:\s*\\?["']?(?P<secret>[A-Za-z0-9._~+/\-]{8,})"#
                .into(),
            false,
        ),
        (
            "authorization",
            r"(?-u:\b)Bearer\s+(?P<secret>[A-Za-z0-9._~+/\-]{16,}=*)".into(),
            true,
        ),
        // `--password=...`, `--api-key ...`, `--client-secret ...` on a command line.
        (
            "secret_value",
            r#"--(?:(?:[a-z0-9]+-)*(?:password|passwd|token|api-?key)|(?:[a-z0-9]+-)+secret)(?:=|\s+)["']?(?P<secret>[^\s"'<$%{*\-][^\s"']*)"#
                .into(),
            false,
        ),
        ("secret_value", quoted_assignment(SECRET_KEY_NAMES), false),
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

/// Lines a private key block may span across steps before it is taken to have ended: a
/// 4096-bit RSA key is about 50; a BEGIN line with no END must not hide a run's output.
pub const MAX_KEY_BLOCK_LINES: usize = 200;

/// A [`Redactor`] for one stream of steps, as a run's output arrives a line a step. A
/// private key block printed line by line would otherwise lose only its BEGIN line (the
/// body lines look like any base64); this one remembers an open block and hides every
/// following line up to and including its END line, or [`MAX_KEY_BLOCK_LINES`] lines.
#[derive(Clone, Debug)]
pub struct StreamRedactor {
    redactor: Redactor,
    /// Lines still hidden before an open block is taken to have ended; None: no block open.
    key_block_left: Option<usize>,
}

impl StreamRedactor {
    pub fn new(redactor: Redactor) -> StreamRedactor {
        StreamRedactor {
            redactor,
            key_block_left: None,
        }
    }

    /// Redact a step's texts, in the order they were printed, and carry an open private
    /// key block over to the next step.
    pub fn redact_step(&mut self, kind: &mut StepKind) {
        if self.redactor.hides_private_keys() {
            for p in kind.payloads_mut() {
                if let Payload::Text(t) = p
                    && let Cow::Owned(new) = self.hide_key_block_lines(t)
                {
                    *t = new;
                }
            }
        }
        self.redactor.redact_step(kind);
    }

    /// `text` with the lines that continue an open key block replaced by one mark.
    fn hide_key_block_lines<'a>(&mut self, text: &'a str) -> Cow<'a, str> {
        let hidden = self.continue_key_block(text);
        let rest = &text[hidden..];
        self.note_key_block_start(rest);
        if hidden == 0 {
            return Cow::Borrowed(text);
        }
        let newline = if text[..hidden].ends_with('\n') {
            "\n"
        } else {
            ""
        };
        Cow::Owned(format!("[REDACTED:private_key]{newline}{rest}"))
    }

    /// How many bytes at the start of `text` belong to an open key block (its lines up to
    /// and including the END line, within the block's budget); closes the block at its end.
    fn continue_key_block(&mut self, text: &str) -> usize {
        let Some(mut left) = self.key_block_left else {
            return 0;
        };
        let mut hidden = 0;
        for line in text.split_inclusive('\n') {
            if left == 0 {
                break;
            }
            left -= 1;
            hidden += line.len();
            if pem_marker().captures(line).is_some_and(|c| &c[1] == "END") {
                left = 0;
            }
        }
        self.key_block_left = (left > 0).then_some(left);
        hidden
    }

    /// Open a block when `text`'s last key marker is a BEGIN line followed by key body
    /// only, up to the end of the text: the rest of the key comes in the next steps. A
    /// BEGIN line quoted in prose (text after it on its line) opens nothing.
    fn note_key_block_start(&mut self, text: &str) {
        if !text.contains("PRIVATE KEY-----") {
            return;
        }
        let last = pem_marker().captures_iter(text).last();
        let Some(begin) = last.filter(|c| &c[1] == "BEGIN").and_then(|c| c.get(0)) else {
            return;
        };
        let body = &text[begin.end()..];
        if pem_body_only().is_match(body) {
            let used = body.lines().count();
            self.key_block_left = Some(MAX_KEY_BLOCK_LINES.saturating_sub(used).max(1));
        }
    }
}

fn pem_marker() -> &'static Regex {
    static RE: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new(PEM_MARKER).expect("a constant regex"));
    &RE
}

fn pem_body_only() -> &'static Regex {
    static RE: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        Regex::new(&format!("^{PEM_BODY}$")).expect("a constant regex")
    });
    &RE
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
        // The quotes stay: only the value goes.
        assert_eq!(out, "export STRIPE_SECRET='[REDACTED:secret_value]'");
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

    #[test]
    fn patterns_that_match_empty_text_are_refused_by_name() {
        for p in ["", "a*", "x?", r"\b", "^", "a|", "(?:)"] {
            let cfg = RedactConfig {
                patterns: vec!["internal-[0-9]+".into(), p.into()],
                ..RedactConfig::default()
            };
            let err = Redactor::new(&cfg).unwrap_err();
            assert!(
                matches!(err, RedactError::MatchesEmpty { .. }),
                "{p:?}: {err}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("{p:?}")) && msg.contains("at least one character"),
                "{msg}"
            );
        }
        // Non-empty patterns with anchors or optional parts are fine.
        let ok = RedactConfig {
            patterns: vec![r"\bid-[0-9]+\b".into(), "ab?".into()],
            ..RedactConfig::default()
        };
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn pattern_count_length_and_empty_suffixes_are_capped() {
        let many = RedactConfig {
            patterns: (0..=MAX_PATTERNS).map(|i| format!("p{i}x")).collect(),
            ..RedactConfig::default()
        };
        let err = many.validate().unwrap_err().to_string();
        assert!(
            err.contains("65 patterns") && err.contains("at most 64"),
            "{err}"
        );
        let long = RedactConfig {
            patterns: vec!["x".repeat(MAX_PATTERN_LEN + 1)],
            ..RedactConfig::default()
        };
        let err = long.validate().unwrap_err().to_string();
        assert!(
            err.contains("513 bytes") && err.contains("under 512"),
            "{err}"
        );
        let suffix = RedactConfig {
            env_suffixes: vec!["_KEY".into(), "".into()],
            ..RedactConfig::default()
        };
        assert!(matches!(suffix.validate(), Err(RedactError::EmptySuffix)));
    }

    #[test]
    fn no_built_in_rule_can_match_empty_text() {
        for (kind, re, _) in builtin_rules() {
            let named = re.replace("(?P<secret>", "(");
            assert!(!can_match_empty(&named).unwrap(), "{kind}: {re}");
        }
    }

    fn agent_says(text: &str) -> StepKind {
        StepKind::AgentMessage { text: text.into() }
    }

    fn text_of(k: &StepKind) -> &str {
        match k {
            StepKind::AgentMessage { text } => text.preview(),
            _ => unreachable!(),
        }
    }

    /// Feed `lines` a step each; what each step keeps.
    fn stream(red: Redactor, lines: &[&str]) -> Vec<String> {
        let mut s = StreamRedactor::new(red);
        lines
            .iter()
            .map(|l| {
                let mut k = agent_says(l);
                s.redact_step(&mut k);
                text_of(&k).to_string()
            })
            .collect()
    }

    #[test]
    fn a_key_printed_a_line_a_step_is_hidden_to_its_end() {
        let out = stream(
            r(),
            &[
                "here it is:",
                "-----BEGIN OPENSSH PRIVATE KEY-----",
                "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ",
                "AAAAC3NzaC1lZDI1NTE5AAAAIB7",
                "-----END OPENSSH PRIVATE KEY-----",
                "after the key",
            ],
        );
        assert_eq!(out[0], "here it is:");
        assert!(
            out[1..5].iter().all(|t| t == "[REDACTED:private_key]"),
            "{out:?}"
        );
        assert_eq!(out[5], "after the key");
    }

    #[test]
    fn a_step_holding_the_rest_of_a_key_keeps_what_follows_the_end() {
        let out = stream(
            r(),
            &[
                "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
                "BKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\nkey written to id_rsa\n",
                "next",
            ],
        );
        assert_eq!(out[0], "[REDACTED:private_key]");
        assert_eq!(out[1], "[REDACTED:private_key]\nkey written to id_rsa\n");
        assert_eq!(out[2], "next");
    }

    #[test]
    fn a_key_block_that_never_ends_stops_hiding_after_its_budget() {
        let mut lines = vec!["-----BEGIN EC PRIVATE KEY-----".to_string()];
        lines.extend((0..MAX_KEY_BLOCK_LINES + 5).map(|i| format!("line{i}")));
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let out = stream(r(), &refs);
        let hidden = out
            .iter()
            .filter(|t| *t == "[REDACTED:private_key]")
            .count();
        assert_eq!(
            hidden,
            1 + MAX_KEY_BLOCK_LINES,
            "the BEGIN line and the budget"
        );
        assert_eq!(
            out.last().unwrap(),
            &format!("line{}", MAX_KEY_BLOCK_LINES + 4)
        );
    }

    #[test]
    fn a_key_marker_quoted_in_prose_or_a_finished_block_opens_nothing() {
        let out = stream(
            r(),
            &[
                "the file starts with `-----BEGIN RSA PRIVATE KEY-----` and a newline",
                "so this line is ordinary",
                "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
                "and so is this one",
            ],
        );
        assert_eq!(out[1], "so this line is ordinary");
        assert_eq!(out[2], "[REDACTED:private_key]");
        assert_eq!(out[3], "and so is this one");
    }

    #[test]
    fn without_built_in_rules_or_redaction_no_key_block_is_tracked() {
        let lines = [
            "-----BEGIN PRIVATE KEY-----",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
        ];
        assert_eq!(stream(Redactor::disabled(), &lines), lines);
        let custom_only = Redactor::new(&RedactConfig {
            builtin: false,
            ..RedactConfig::default()
        })
        .unwrap();
        assert_eq!(stream(custom_only, &lines), lines);
    }
}

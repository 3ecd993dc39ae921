//! The built-in secret shapes: well-known keys and tokens, secret assignments, private keys.

use regex::Regex;

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
pub(super) fn quoted_assignment(name: &str) -> String {
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
pub(super) fn builtin_rules() -> Vec<(&'static str, String, bool)> {
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
pub(super) fn pem_marker() -> &'static Regex {
    static RE: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new(PEM_MARKER).expect("a constant regex"));
    &RE
}

pub(super) fn pem_body_only() -> &'static Regex {
    static RE: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        Regex::new(&format!("^{PEM_BODY}$")).expect("a constant regex")
    });
    &RE
}

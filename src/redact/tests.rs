//! Unit tests of redaction: the built-in shapes, custom patterns, environment values and streams.

use super::check::can_match_empty;
use super::*;
use crate::config::redact::{MAX_PATTERN_LEN, MAX_PATTERNS};

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
    let block =
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc+/=\n-----END RSA PRIVATE KEY-----";
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

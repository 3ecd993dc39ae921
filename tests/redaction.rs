//! Secrets never reach the store: the redaction corpus (`tests/data/redaction/`) through
//! the standard `Redactor`, and a config that would break redaction refused.

mod common;

use std::borrow::Cow;
use std::path::Path;

use serde::Deserialize;
use shopfloor::redact::Redactor;

#[derive(Deserialize)]
struct Corpus {
    case: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    text: String,
    #[serde(default)]
    secrets: Vec<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    keep: Vec<String>,
}

fn corpus(file: &str) -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/redaction")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    toml::from_str::<Corpus>(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .case
}

#[test]
fn every_secret_in_the_corpus_is_hidden() {
    let red = Redactor::standard();
    let cases = corpus("secrets.toml");
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for c in &cases {
        assert!(!c.secrets.is_empty(), "{}: list its secrets", c.name);
        let out = red.redact(&c.text);
        for s in &c.secrets {
            assert!(
                c.text.contains(s.as_str()),
                "{}: `{s}` is not in its text",
                c.name
            );
            if out.contains(s.as_str()) {
                failures.push(format!("{}: `{s}` survived in\n{out}", c.name));
            }
        }
        if let Some(k) = &c.kind
            && !out.contains(&format!("[REDACTED:{k}]"))
        {
            failures.push(format!("{}: no [REDACTED:{k}] in\n{out}", c.name));
        }
        for k in &c.keep {
            if !out.contains(k.as_str()) {
                failures.push(format!("{}: `{k}` should stay visible in\n{out}", c.name));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn clean_text_in_the_corpus_comes_back_byte_for_byte() {
    let red = Redactor::standard();
    let cases = corpus("clean.toml");
    assert!(cases.len() >= 8);
    let mut failures = Vec::new();
    for c in &cases {
        match red.redact(&c.text) {
            Cow::Borrowed(b) => assert_eq!(b.as_bytes(), c.text.as_bytes()),
            Cow::Owned(changed) => failures.push(format!("{}: changed to\n{changed}", c.name)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_pattern_matching_empty_text_is_refused_when_the_config_loads() {
    let env = common::Env::new();
    env.ok(&["workspace", "create", "w"]);
    std::fs::write(
        env.repo.path().join("shopfloor.toml"),
        "[redact]\npatterns = [\"a*\"]\n",
    )
    .unwrap();
    let (_, err) = env.fails(&["ticket", "list"]);
    assert!(
        err.contains("shopfloor.toml:2: ")
            && err.contains("\"a*\" can match empty text")
            && err.contains("`x+`, not `x*`"),
        "{err}"
    );
}

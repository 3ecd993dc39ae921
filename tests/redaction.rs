//! Secrets never reach the store: the redaction corpus (`tests/data/redaction/`) through
//! the standard `Redactor`, and the real binary fed secrets through every way text comes
//! in (ticket titles and bodies, `memory import` refs, a private key printed a line a step),
//! with what it then shows and exports checked for any trace of them.

use crate::common;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

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

// The real binary: secrets coming in by every door, and none coming out.

const TOKEN: &str = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
const DB_PASSWORD: &str = "pg-p4ss-w0rd";
const JSON_PASSWORD: &str = "hunter2hunter2";
const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudC03In0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg";
const HF: &str = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567";
/// Lines of a private key's body, each distinctive enough to find anywhere.
const KEY_LINES: [&str; 4] = [
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    "VeNHtkBzT3QnnYBJ4cX2U0a8Y3bWqTQrVeNHtkBzT3QnnYBJ4cX2U0a8Y3bWqTQr",
    "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4",
    "dGhlIGxhc3QgbGluZSBvZiB0aGUga2V5",
];

fn secrets() -> Vec<&'static str> {
    let mut s = vec![TOKEN, DB_PASSWORD, JSON_PASSWORD, JWT, HF];
    s.extend(KEY_LINES);
    s
}

fn assert_clean(what: &str, text: &str) {
    for s in secrets() {
        assert!(!text.contains(s), "{what} holds `{s}`:\n{text}");
    }
}

/// Every file under `dir`, read as bytes, holds none of the secrets: the store, the
/// index, the logs.
fn assert_clean_on_disk(dir: &Path) {
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                for s in secrets() {
                    let found = bytes.windows(s.len()).any(|w| w == s.as_bytes());
                    assert!(!found, "{} holds `{s}`", p.display());
                }
            }
        }
    }
}

#[test]
fn secrets_in_tickets_memory_refs_and_split_keys_never_reach_the_store() {
    let env = common::Env::new();
    env.ok(&["workspace", "create", "w"]);
    // The files fed in hold the secrets: they live outside the home checked at the end.
    let inputs = tempfile::tempdir().unwrap();

    // A ticket, whose title and body go into an agent's prompt.
    let title = format!("Rotate {TOKEN} and log in with {JWT}");
    let body = format!(
        "The DB is postgres://app:{DB_PASSWORD}@db.internal:5432/shop.\nConfig: {{\"password\": \"{JSON_PASSWORD}\"}}"
    );
    let added = env.ok(&["ticket", "add", &title, "--body", &body]);
    assert_clean("ticket add", &added);
    assert!(added.contains("[REDACTED:github_token]"), "{added}");
    let shown = env.ok(&["ticket", "show", "1", "--json"]);
    assert_clean("ticket show --json", &shown);
    let ticket: serde_json::Value = serde_json::from_str(&shown).unwrap();
    let body_out = ticket["body"].as_str().unwrap();
    assert!(
        body_out.contains("postgres://app:[REDACTED:password]@db.internal:5432/shop"),
        "{body_out}"
    );
    assert!(body_out.contains(r#""password": "[REDACTED:secret_value]""#));
    assert_clean("ticket list --json", &env.ok(&["ticket", "list", "--json"]));
    assert_clean("ticket show", &env.ok(&["ticket", "show", "1"]));

    // Memories whose `ref` carries a secret, as a string and as JSON.
    let jsonl = inputs.path().join("memories.jsonl");
    std::fs::write(
        &jsonl,
        format!(
            "{{\"text\":\"the staging database moved\",\"ref\":\"postgres://app:{DB_PASSWORD}@db/x\"}}\n\
             {{\"text\":\"the model cache token\",\"ref\":{{\"token\":\"{HF}\"}}}}\n"
        ),
    )
    .unwrap();
    let imported = env.json(&["memory", "import", jsonl.to_str().unwrap(), "--json"]);
    assert_eq!(imported["imported"], 2, "{imported}");
    let found = env.ok(&["memory", "search", "staging database model cache", "--json"]);
    assert_clean("memory search --json", &found);
    let hits: serde_json::Value = serde_json::from_str(&found).unwrap();
    let refs: Vec<&str> = hits
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["memory"]["ref"].as_str())
        .collect();
    assert!(
        refs.contains(&"postgres://app:[REDACTED:password]@db/x"),
        "{refs:?}"
    );
    assert!(
        refs.contains(&r#"{"token":"[REDACTED:secret_value]"}"#),
        "{refs:?}"
    );

    // A private key printed a line a step (as a plain agent's stdout arrives).
    let trace = inputs.path().join("key.jsonl");
    let mut lines = vec![
        r#"{"type":"agent_message","text":"reading the deploy key"}"#.to_string(),
        r#"{"type":"agent_message","text":"-----BEGIN OPENSSH PRIVATE KEY-----"}"#.to_string(),
    ];
    for l in KEY_LINES {
        lines.push(format!(r#"{{"type":"agent_message","text":"{l}"}}"#));
    }
    lines.push(r#"{"type":"agent_message","text":"-----END OPENSSH PRIVATE KEY-----"}"#.into());
    lines.push(r#"{"type":"agent_message","text":"done; the key is installed"}"#.into());
    std::fs::write(&trace, lines.join("\n") + "\n").unwrap();
    let report = env.json(&["trace", "import", trace.to_str().unwrap(), "--json"]);
    let run = report["run"].as_u64().unwrap().to_string();
    let steps = env.ok(&["trace", "show", &run, "--json"]);
    assert_clean("trace show --json", &steps);
    let texts: Vec<String> = steps
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["text"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    assert_eq!(texts.len(), 8, "{texts:?}");
    assert_eq!(texts[0], "reading the deploy key");
    assert!(
        texts[1..7].iter().all(|t| t == "[REDACTED:private_key]"),
        "{texts:?}"
    );
    // The block ended: what follows it is shown again.
    assert_eq!(texts[7], "done; the key is installed");
    assert_clean("trace export", &env.ok(&["trace", "export", &run]));
    assert_clean("trace show", &env.ok(&["trace", "show", &run]));

    assert_clean_on_disk(env.home.path());
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

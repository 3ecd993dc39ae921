//! Trace import, show, export and search, and memory add, import and search, through the
//! real binary on real store and index files.

use crate::common;
use common::{Env, fixtures};

fn setup() -> Env {
    let env = Env::new();
    env.ok(&["workspace", "create", "w"]);
    env
}

#[test]
fn imports_every_format_and_shows_searches_exports() {
    let env = setup();
    let Some(fx) = fixtures() else {
        return;
    };
    let cases = [
        (
            "claude-code/transcripts/v2.1.29-edit-permission-dialog.jsonl",
            "claude-code",
        ),
        (
            "claude-code/stream-json/v2.1.12-normalized.jsonl",
            "claude-stream",
        ),
        ("codex/rollout-cli-0.77.0.jsonl", "codex"),
    ];
    for (file, format) in cases {
        let path = fx.join(file);
        // Explicit format and detection agree.
        let r = env.json(&[
            "trace",
            "import",
            path.to_str().unwrap(),
            "--format",
            format,
            "--json",
        ]);
        assert_eq!(r["format"], format);
        let detected = env.json(&["trace", "import", path.to_str().unwrap(), "--json"]);
        assert_eq!(detected["format"], format, "{file}");
        assert_eq!(detected["steps"], r["steps"]);
    }
    let demo = env.repo.path().join("codex-exec.jsonl");
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets/demo/traces/codex-oversell.exec.jsonl"),
        &demo,
    )
    .unwrap();
    let r = env.json(&[
        "trace",
        "import",
        demo.to_str().unwrap(),
        "--format",
        "codex-exec",
        "--json",
    ]);
    let exec_run = r["run"].as_u64().unwrap();
    assert_eq!(r["by_kind"]["command"], 2);

    let runs = env.json(&["trace", "list", "--json"]);
    assert_eq!(runs.as_array().unwrap().len(), 7);
    assert_eq!(runs[0]["state"], "imported");

    // The edit-permission transcript: the Write call, its FileEdit, the rejected Edit.
    let timeline = env.ok(&["trace", "show", "1"]);
    assert!(
        timeline.contains("tool_call") && timeline.contains("Write"),
        "{timeline}"
    );
    assert!(
        timeline.contains("file_edit") && timeline.contains("edit /tmp/workspace"),
        "{timeline}"
    );
    let steps: Vec<serde_json::Value> = env
        .ok(&["trace", "show", "1", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let edit = steps.iter().find(|s| s["type"] == "file_edit").unwrap();
    let whole = env.json(&[
        "trace",
        "show",
        "1",
        "--step",
        &edit["seq"].to_string(),
        "--json",
    ]);
    assert_eq!(whole["after"], "Hello World");
    assert_eq!(whole["path"], "/tmp/workspace");

    let (code, err) = env.fails(&["trace", "show", "1", "--step", "9999"]);
    assert_eq!(code, 1);
    assert!(err.contains("has no step 9999"), "{err}");
    let (_, err) = env.fails(&["trace", "show", "42"]);
    assert!(err.contains("run 42 not found"), "{err}");

    // One query over the whole fleet, with filters.
    let hits = env.json(&["trace", "search", "unittest", "--json"]);
    assert!(
        hits.as_array()
            .unwrap()
            .iter()
            .all(|h| h["run"] == exec_run),
        "{hits}"
    );
    assert!(!hits.as_array().unwrap().is_empty());
    let cmds = env.json(&["trace", "search", "unittest", "--kind", "command", "--json"]);
    assert_eq!(cmds.as_array().unwrap().len(), 2);
    let (_, err) = env.fails(&["trace", "search", "x", "--kind", "bogus"]);
    assert!(err.contains("unknown step kind"), "{err}");
    let none = env.json(&["trace", "search", "AND ( \" fn(x) ->", "--json"]);
    assert!(none.is_array(), "query syntax never fails");

    // Export, re-import as jsonl: same kinds in the same order.
    let out = env.repo.path().join("export.jsonl");
    env.ok(&[
        "trace",
        "export",
        "1",
        "--format",
        "jsonl",
        "-o",
        out.to_str().unwrap(),
    ]);
    let back = env.json(&[
        "trace",
        "import",
        out.to_str().unwrap(),
        "--format",
        "jsonl",
        "--json",
    ]);
    let again: Vec<serde_json::Value> = env
        .ok(&["trace", "show", &back["run"].to_string(), "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds =
        |v: &[serde_json::Value]| v.iter().map(|s| s["type"].to_string()).collect::<Vec<_>>();
    assert_eq!(kinds(&steps), kinds(&again));
}

#[test]
fn bad_trace_input_is_recorded_not_fatal() {
    let env = setup();
    let path = env.repo.path().join("bad.jsonl");
    let mut bytes = b"{\"type\":\"agent_message\",\"text\":\"ok\"}\n{not json\n".to_vec();
    bytes.extend_from_slice(b"\xff\xfe broken utf8\n");
    std::fs::write(&path, bytes).unwrap();
    let r = env.json(&[
        "trace",
        "import",
        path.to_str().unwrap(),
        "--format",
        "jsonl",
        "--json",
    ]);
    assert_eq!(r["lines"], 3);
    assert_eq!(r["raw"], 2);
    let warnings = r["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().starts_with("line 2")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().starts_with("line 3")),
        "{warnings:?}"
    );

    let (code, err) = env.fails(&[
        "trace",
        "import",
        "/no/such/file.jsonl",
        "--format",
        "jsonl",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("no trace file"), "{err}");
    let (code, _) = env.fails(&["trace", "import", "x", "--format", "yaml"]);
    assert_eq!(code, 2, "a bad --format is a usage error");
}

/// Every byte under a directory, for scanning store and index files for secrets.
fn all_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(all_bytes(&p));
        } else {
            out.extend(std::fs::read(&p).unwrap());
        }
    }
    out
}

#[test]
fn planted_secrets_never_reach_the_store_or_the_index() {
    let env = setup();
    let anthropic = "sk-ant-api03-Zq8XyVbN3mK7pL2wR9tH4jD6fG1sA5cE0uI-Oo_PlantedKey12345";
    let github = "ghp_R7tY2uI9oP4aS6dF8gH1jK3lZ5xC0vB9nM2q";
    let env_secret = "hunter2-planted-env-value-99";
    let trace = env.repo.path().join("t.jsonl");
    std::fs::write(
        &trace,
        format!(
            "{{\"type\":\"agent_message\",\"text\":\"using {anthropic} now\"}}\n\
             {{\"type\":\"command\",\"argv\":[\"curl\",\"-H\",\"Authorization: token {github}\"],\"output\":\"DEPLOY_TOKEN={env_secret}\"}}\n"
        ),
    )
    .unwrap();
    env.cmd()
        .env("DEPLOY_TOKEN", env_secret)
        .args([
            "trace",
            "import",
            trace.to_str().unwrap(),
            "--format",
            "jsonl",
        ])
        .assert()
        .success();
    env.cmd()
        .env("DEPLOY_TOKEN", env_secret)
        .args([
            "memory",
            "add",
            &format!("the deploy token is {env_secret} and key {anthropic}"),
        ])
        .assert()
        .success();
    // The steps are searchable by their other words, and show the redaction.
    let shown = env.ok(&["trace", "show", "1", "--step", "0"]);
    assert!(shown.contains("[REDACTED:anthropic_key]"), "{shown}");
    let hits = env.json(&["memory", "search", "deploy token", "--json"]);
    assert!(
        hits[0]["memory"]["text"]
            .as_str()
            .unwrap()
            .contains("[REDACTED"),
        "{hits}"
    );

    let data = env.home.path().join("w");
    let bytes = all_bytes(&data);
    assert!(bytes.len() > 10_000, "store and index files were written");
    for secret in [anthropic, github, env_secret] {
        let needle = secret.as_bytes();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "secret {secret} reached the store or index files"
        );
    }
}

#[test]
fn memory_add_import_and_hybrid_search() {
    let env = setup();
    env.ok(&[
        "memory",
        "add",
        "Use retry_with_backoff for flaky HTTP calls in the billing client",
        "--kind",
        "decision",
        "--paths",
        "src/billing/client.rs",
        "--tags",
        "http",
    ]);
    env.ok(&[
        "memory",
        "add",
        "Migrations must be reversible; write the down step first",
        "--kind",
        "convention",
        "--paths",
        "migrations/**",
    ]);
    let file = env.repo.path().join("m.jsonl");
    std::fs::write(
        &file,
        "{\"text\":\"The staging database resets every night\",\"kind\":\"note\",\"ref\":\"wiki:42\"}\n\
         {\"kind\":\"lesson\"}\n\
         {\"text\":\"Never call parseConfig at import time\",\"kind\":\"lesson\",\"paths\":[\"src/config.rs\"],\"ts\":\"2026-01-02T03:04:05Z\"}\n",
    )
    .unwrap();
    let summary = env.json(&["memory", "import", file.to_str().unwrap(), "--json"]);
    assert_eq!(summary["imported"], 2);
    assert_eq!(summary["errors"][0]["line"], 2);

    // Words, the code-aware tokenizer (a part of an identifier), paths, kinds, refs.
    let hits = env.json(&["memory", "search", "backoff retry", "--json"]);
    assert!(
        hits[0]["memory"]["text"]
            .as_str()
            .unwrap()
            .contains("retry_with_backoff"),
        "{hits}"
    );
    let hits = env.json(&["memory", "search", "config parse", "--json"]);
    assert!(
        hits[0]["memory"]["text"]
            .as_str()
            .unwrap()
            .contains("parseConfig"),
        "{hits}"
    );
    let hits = env.json(&["memory", "search", "database", "--json"]);
    assert_eq!(
        hits[0]["memory"]["ref"], "wiki:42",
        "the opaque ref comes back unchanged"
    );
    let hits = env.json(&[
        "memory",
        "search",
        "what do I need to know",
        "--paths",
        "migrations/0001_init.sql",
        "--paths-only",
        "--json",
    ]);
    assert_eq!(hits.as_array().unwrap().len(), 1, "{hits}");
    assert!(
        hits[0]["legs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "path")
    );
    let hits = env.json(&[
        "memory",
        "search",
        "calls",
        "--kind",
        "convention",
        "--json",
    ]);
    assert!(
        hits.as_array()
            .unwrap()
            .iter()
            .all(|h| h["memory"]["kind"] == "convention")
    );
    let hits = env.json(&[
        "memory",
        "search",
        "lesson config",
        "--since",
        "1d",
        "--json",
    ]);
    assert!(
        hits.as_array()
            .unwrap()
            .iter()
            .all(|h| h["memory"]["ts"].as_str().unwrap() > "2026-06"),
        "--since drops the memory dated 2026-01-02: {hits}"
    );
    let (code, err) = env.fails(&["memory", "add", "x", "--kind", "gossip"]);
    assert_eq!(code, 2);
    assert!(err.contains("use one of"), "{err}");
}

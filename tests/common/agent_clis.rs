//! The real agent CLIs, as `scripts/install-agent-clis.sh` lays them out, and how tests
//! point them at a [`ModelServer`](super::model_server::ModelServer) instead of a vendor.
//!
//! One place decides whether they are there: `$SHOPFLOOR_AGENT_CLIS`, else
//! `~/.cache/shopfloor/agent-clis`. Absent, a test skips with one line saying how to install
//! them, and fails instead when `CI=true` (CI installs them).

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The pinned versions (keep in step with scripts/install-agent-clis.sh).
pub const CLAUDE_VERSION: &str = "2.1.332";
pub const CODEX_VERSION: &str = "0.163.0";
/// The Docker image with both CLIs in it, built by scripts/build-agent-image.sh.
pub const AGENT_IMAGE: &str = "shopfloor-test-agents:claude-2.1.332-codex-0.163.0";
/// The model Codex is asked for: it must be a slug Codex knows, or it refuses to start.
pub const CODEX_MODEL: &str = "gpt-5.5";

pub struct AgentClis {
    /// `DIR/bin`: `claude`, `codex` and codex's `rg`.
    pub bin: PathBuf,
}

fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

impl AgentClis {
    /// The installed CLIs, or None after printing why the test skips (a panic under CI).
    pub fn find() -> Option<AgentClis> {
        let dir = std::env::var_os("SHOPFLOOR_AGENT_CLIS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                    .join(".cache/shopfloor/agent-clis")
            });
        let bin = dir.join("bin");
        let present = bin.join("claude").is_file()
            && bin.join("codex").is_file()
            && dir.join(format!("claude-{CLAUDE_VERSION}")).is_dir()
            && dir.join(format!("codex-{CODEX_VERSION}")).is_dir();
        if present {
            return Some(AgentClis { bin });
        }
        let why = format!(
            "real CLIs not installed in {}; run scripts/install-agent-clis.sh",
            dir.display()
        );
        assert!(!required(), "{why}");
        eprintln!("skipping: {why}");
        None
    }

    pub fn claude(&self) -> PathBuf {
        self.bin.join("claude")
    }

    pub fn codex(&self) -> PathBuf {
        self.bin.join("codex")
    }

    /// `shopfloor serve` for `env` with the CLIs on its PATH and `home` as HOME (so the CLIs'
    /// settings and sessions go to the test's own directory, not the user's).
    pub fn serve(&self, env: &super::Env, home: &std::path::Path) -> super::serve::Serve {
        super::serve::Serve::start_with_env(
            env,
            &[],
            &[
                ("PATH", self.path_env()),
                ("HOME", home.display().to_string()),
            ],
        )
    }

    /// PATH with the CLIs first, as a user who installed them has it.
    pub fn path_env(&self) -> String {
        format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }
}

/// Whether the agent image exists; None (after one line) when it or the engine is missing,
/// a panic under CI.
pub fn agent_image() -> Option<&'static str> {
    let have = Command::new("docker")
        .args(["image", "inspect", AGENT_IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if have {
        return Some(AGENT_IMAGE);
    }
    let why =
        format!("no Docker engine or no image {AGENT_IMAGE}; run scripts/build-agent-image.sh");
    assert!(!required(), "{why}");
    eprintln!("skipping: {why}");
    None
}

/// The environment that points Claude Code at a local Messages API and keeps it from
/// probing the network (telemetry, error reports, updates: 13 s a run become under 1 s).
pub fn claude_env(base_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ANTHROPIC_BASE_URL", base_url.to_string()),
        ("ANTHROPIC_API_KEY", "sk-ant-test".to_string()),
        ("DISABLE_TELEMETRY", "1".to_string()),
        ("DISABLE_ERROR_REPORTING", "1".to_string()),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".to_string()),
    ]
}

/// The `-c` overrides that point Codex at a local Responses API: Codex ignores
/// `OPENAI_BASE_URL`, but takes a custom provider. Retries off, so a broken server fails a
/// test at once rather than after minutes of back-off.
pub fn codex_provider_args(base_url: &str) -> Vec<String> {
    [
        "model_provider=\"mock\"".to_string(),
        "model_providers.mock.name=\"mock\"".to_string(),
        format!("model_providers.mock.base_url=\"{base_url}/v1\""),
        "model_providers.mock.wire_api=\"responses\"".to_string(),
        "model_providers.mock.env_key=\"OPENAI_API_KEY\"".to_string(),
        "model_providers.mock.request_max_retries=0".to_string(),
        "model_providers.mock.stream_max_retries=0".to_string(),
    ]
    .into_iter()
    .flat_map(|c| ["-c".to_string(), c])
    .collect()
}

/// Codex's key for the provider above.
pub fn codex_env() -> Vec<(&'static str, String)> {
    vec![("OPENAI_API_KEY", "sk-test".to_string())]
}

/// A TOML array of strings.
pub fn toml_array(items: &[String]) -> String {
    toml::Value::Array(items.iter().cloned().map(toml::Value::String).collect()).to_string()
}

/// A TOML inline table of string values.
pub fn toml_env(vars: &[(&str, String)]) -> String {
    let pairs: Vec<String> = vars
        .iter()
        .map(|(k, v)| format!("{k} = {}", toml::Value::String(v.clone())))
        .collect();
    format!("{{ {} }}", pairs.join(", "))
}

/// The project every real-agent test works on: a bug (`add` subtracts) and its test.
pub const PROJECT: &[(&str, &str)] = &[
    ("calc.py", "def add(a, b):\n    return a - b\n"),
    (
        "test_calc.py",
        "import unittest\n\nfrom calc import add\n\n\nclass AddTest(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n\n\nif __name__ == \"__main__\":\n    unittest.main()\n",
    ),
];
/// The project's `[test]` command.
pub const TEST_COMMAND: &str = "python3 -m unittest -q";
/// What a person wrote to memory before the run, and the words the agent searches with.
pub const HUMAN_MEMORY: &str = "calc.add must return the sum; the subtraction is a known bug";
pub const SEARCH_WORDS: &str = "calc add sum";
/// What the agent writes to memory at the end of its run.
pub const AGENT_MEMORY: &str = "calc.add fixed to return a + b; python3 -m unittest covers it";
/// The fixed line, as the edit leaves it.
pub const FIXED: &str = "return a + b";

use super::model_server::Turn;
use serde_json::json;

/// Claude Code's script: find our MCP tools, search memory, fix the bug, run the tests,
/// write a memory, answer. With `denied_command`, one more command the permissions must
/// refuse comes before the answer.
pub fn claude_script(denied_command: Option<&str>) -> Vec<Turn> {
    let mut turns = vec![
        Turn::tool(
            "ToolSearch",
            json!({ "query": "select:mcp__shopfloor__memory_search,mcp__shopfloor__memory_write", "max_results": 5 }),
        )
        .saying("Let me see what the fleet knows first."),
        Turn::tool(
            "mcp__shopfloor__memory_search",
            json!({ "query": SEARCH_WORDS }),
        )
        .after_result_containing("mcp__shopfloor__memory_search"),
        // Claude Code refuses to edit a file it has not read in the session.
        Turn::tool("Read", json!({ "file_path": "calc.py" })).after_result_containing("known bug"),
        Turn::tool(
            "Edit",
            json!({ "file_path": "calc.py", "old_string": "return a - b", "new_string": FIXED }),
        )
        .after_result_containing("return a - b"),
        Turn::tool(
            "Bash",
            json!({ "command": TEST_COMMAND, "description": "Run the tests" }),
        )
        .after_result_containing("updated successfully"),
        Turn::tool(
            "mcp__shopfloor__memory_write",
            json!({ "kind": "lesson", "text": AGENT_MEMORY, "paths": ["calc.py"] }),
        )
        .after_result_containing("OK"),
    ];
    let last = "Fixed calc.add; the tests pass.";
    match denied_command {
        Some(cmd) => {
            turns.push(
                Turn::tool(
                    "Bash",
                    json!({ "command": cmd, "description": "Not allowed" }),
                )
                .after_result_containing("Saved memory"),
            );
            turns.push(Turn::text(last));
        }
        None => turns.push(Turn::text(last).after_result_containing("Saved memory")),
    }
    turns
}

/// Codex's script: the same steps with Codex's tools (`tool_search`, our MCP tools in the
/// `mcp__shopfloor` namespace, `apply_patch`, `exec_command`).
pub fn codex_script() -> Vec<Turn> {
    vec![
        Turn::tool_search("shopfloor memory search write"),
        Turn::tool(
            "mcp__shopfloor__memory_search",
            json!({ "query": SEARCH_WORDS }),
        )
        .after_result_containing("memory_search"),
        Turn::custom(
            "apply_patch",
            &format!(
                "*** Begin Patch\n*** Update File: calc.py\n@@\n-    return a - b\n+    {FIXED}\n*** End Patch\n"
            ),
        )
        .after_result_containing("known bug"),
        Turn::tool("exec_command", json!({ "cmd": TEST_COMMAND }))
            .saying("Patched; running the tests.")
            .after_result_containing("calc.py"),
        Turn::tool(
            "mcp__shopfloor__memory_write",
            json!({ "kind": "lesson", "text": AGENT_MEMORY, "paths": ["calc.py"] }),
        )
        .after_result_containing("OK"),
        Turn::text("Fixed calc.add; the tests pass.").after_result_containing("Saved memory"),
    ]
}

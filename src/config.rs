//! `shopfloor.toml`, the team-shared configuration at the repository root. A missing file
//! means the defaults; an unknown key or a bad value is an error naming its line, because a
//! typo silently ignored is a policy silently not applied.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use std::collections::BTreeMap;

use crate::agent::{Adapter, AgentProfile};
use crate::redact::RedactConfig;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub factory: FactoryConfig,
    pub sandbox: crate::sandbox::SandboxConfig,
    /// Agent profiles by name: `[agents.NAME]`.
    pub agents: BTreeMap<String, AgentProfile>,
    pub test: TestConfig,
    /// Secret redaction applied to every step and memory before it is stored.
    pub redact: RedactConfig,
    pub memory: MemoryConfig,
    pub api: ApiConfig,
}

/// `[api]`: how agents reach the factory besides its Unix socket.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// A loopback `address:port` to also serve the API and MCP on, for containers that
    /// cannot reach the socket (a run's token is required there). Unset: socket only.
    pub listen: Option<String>,
}

impl ApiConfig {
    /// The TCP address to listen on, if any; only loopback addresses are accepted, since
    /// the port serves a workspace's memory.
    pub fn listen_addr(&self) -> Result<Option<std::net::SocketAddr>, String> {
        let Some(l) = &self.listen else {
            return Ok(None);
        };
        let addr: std::net::SocketAddr = l.parse().map_err(|_| {
            format!("[api] listen = \"{l}\" is not an address:port like \"127.0.0.1:7300\"")
        })?;
        if !addr.ip().is_loopback() {
            return Err(format!(
                "[api] listen = \"{l}\" is not a loopback address; the API serves the workspace's memory, so only 127.0.0.1 or ::1 is allowed"
            ));
        }
        Ok(Some(addr))
    }
}

/// `[factory]`: how many runs, how long, how often to retry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FactoryConfig {
    pub concurrency: usize,
    pub max_attempts: u32,
    pub timeout_s: u64,
    pub quiet_timeout_s: u64,
    pub default_agent: String,
}

impl Default for FactoryConfig {
    fn default() -> Self {
        FactoryConfig {
            concurrency: 4,
            max_attempts: 2,
            timeout_s: 3600,
            quiet_timeout_s: 600,
            default_agent: "claude".into(),
        }
    }
}

/// `[test]`: what the merge queue runs on a candidate.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestConfig {
    pub command: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// A model2vec model directory to embed with instead of the built-in model.
    pub model: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}:{}{message}", line.map(|l| format!("{l}: ")).unwrap_or_else(|| " ".into()))]
    Semantic {
        path: PathBuf,
        /// The line of the offending key, or of its table when the key is not written.
        line: Option<usize>,
        message: String,
    },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Config {
    /// The agent profiles in force: the configured ones, or, when none is configured,
    /// one per real agent CLI (`claude`, `codex`, `gemini`).
    pub fn agent_profiles(&self) -> BTreeMap<String, AgentProfile> {
        if !self.agents.is_empty() {
            return self.agents.clone();
        }
        [
            ("claude", Adapter::ClaudeCode),
            ("codex", Adapter::Codex),
            ("gemini", Adapter::Gemini),
        ]
        .into_iter()
        .map(|(n, a)| (n.to_string(), AgentProfile::new(a)))
        .collect()
    }

    /// Checks that need the whole file: values in range, profiles complete, the default
    /// agent defined. Each error names the key to fix; with the file's `text`, its line.
    pub fn validate(&self, path: &Path, text: Option<&str>) -> Result<(), ConfigError> {
        let bad = |table: &str, key: Option<&str>, message: String| ConfigError::Semantic {
            path: path.to_path_buf(),
            line: text.and_then(|t| key_line(t, table, key)),
            message,
        };
        let f = &self.factory;
        if f.concurrency == 0 {
            return Err(bad(
                "factory",
                Some("concurrency"),
                "[factory] concurrency must be at least 1".into(),
            ));
        }
        if f.max_attempts == 0 {
            return Err(bad(
                "factory",
                Some("max_attempts"),
                "[factory] max_attempts must be at least 1".into(),
            ));
        }
        for (key, v) in [
            ("timeout_s", f.timeout_s),
            ("quiet_timeout_s", f.quiet_timeout_s),
        ] {
            if v == 0 {
                return Err(bad(
                    "factory",
                    Some(key),
                    format!("[factory] {key} must be at least 1 (seconds)"),
                ));
            }
        }
        self.api
            .listen_addr()
            .map_err(|m| bad("api", Some("listen"), m))?;
        self.sandbox
            .validate()
            .map_err(|e| bad("sandbox", None, e.to_string()))?;
        let profiles = self.agent_profiles();
        for (name, p) in &profiles {
            p.validate(name)
                .map_err(|e| bad(&format!("agents.{name}"), None, e.to_string()))?;
        }
        if !profiles.contains_key(&f.default_agent) {
            return Err(bad(
                "factory",
                Some("default_agent"),
                format!(
                    "[factory] default_agent = \"{}\" names no profile; define [agents.{}] or pick one of: {}",
                    f.default_agent,
                    f.default_agent,
                    profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// Load `path`; a file that does not exist gives the defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let c = Config::parse(&text, path)?;
                c.validate(path, Some(&text))?;
                Ok(c)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            // Show the offending line itself: a type error names no key on its own.
            let source = text.lines().nth(line - 1).unwrap_or("").trim_end();
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message: format!("{} (in `{source}`)", e.message().trim()),
            }
        })
    }
}

/// The 1-based line of `key` in `[table]` (or of the table's header when `key` is None or
/// not written there), found by reading the file as lines: enough for the flat tables
/// shopfloor.toml has.
fn key_line(text: &str, table: &str, key: Option<&str>) -> Option<usize> {
    let header = format!("[{table}]");
    let mut in_table = false;
    let mut header_line = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            in_table = line == header;
            if in_table {
                header_line = Some(i + 1);
            }
            continue;
        }
        if in_table
            && let Some(k) = key
            && let Some(rest) = line.strip_prefix(k)
            && rest.trim_start().starts_with('=')
        {
            return Some(i + 1);
        }
    }
    header_line
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_the_defaults() {
        let c = Config::load(Path::new("/nonexistent/shopfloor.toml")).unwrap();
        assert!(c.memory.model.is_none());
    }

    #[test]
    fn unknown_keys_name_their_line() {
        let text = "[memory]\n\n[redact]\npaterns = [\"x\"]\n";
        let err = Config::parse(text, Path::new("shopfloor.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("shopfloor.toml:4:"), "{msg}");
        assert!(msg.contains("paterns"), "{msg}");
    }

    #[test]
    fn the_starter_file_parses_and_validates() {
        let text = include_str!("../assets/shopfloor.toml");
        let c = Config::parse(text, Path::new("shopfloor.toml")).unwrap();
        c.validate(Path::new("shopfloor.toml"), Some(text)).unwrap();
        assert_eq!(c.factory.concurrency, 4);
        assert!(c.agents.contains_key("claude"));
    }

    #[test]
    fn semantic_errors_name_the_key_and_its_line() {
        let text = "[memory]\n\n[factory]\nmax_attempts = 2\nconcurrency = 0\n";
        let c = Config::parse(text, Path::new("s.toml")).unwrap();
        let e = c
            .validate(Path::new("s.toml"), Some(text))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("s.toml:5: [factory] concurrency"), "{e}");

        let c = Config::parse("[factory]\ndefault_agent = \"x\"\n", Path::new("s.toml")).unwrap();
        let e = c
            .validate(Path::new("s.toml"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("[agents.x]"), "{e}");

        let text = "[factory]\ndefault_agent = \"s\"\n\n[agents.s]\nadapter = \"plain\"\n";
        let c = Config::parse(text, Path::new("s.toml")).unwrap();
        let e = c
            .validate(Path::new("s.toml"), Some(text))
            .unwrap_err()
            .to_string();
        assert!(e.contains("command") && e.starts_with("s.toml:4: "), "{e}");

        let text = "[sandbox]\ncpus = -1.0\n";
        let c = Config::parse(text, Path::new("s.toml")).unwrap();
        let e = c
            .validate(Path::new("s.toml"), Some(text))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s.toml:1: ") && e.contains("sandbox.cpus"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_name_their_line() {
        let err = Config::parse("[memory]\nmodel = 3\n", Path::new("s.toml")).unwrap_err();
        assert!(err.to_string().starts_with("s.toml:2:"), "{err}");
    }
}

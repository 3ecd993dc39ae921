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
    #[error("{path}: {message}")]
    Semantic { path: PathBuf, message: String },
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
    /// agent defined. Each error says which key to fix.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |message: String| ConfigError::Semantic {
            path: path.to_path_buf(),
            message,
        };
        let f = &self.factory;
        if f.concurrency == 0 {
            return Err(bad("[factory] concurrency must be at least 1".into()));
        }
        if f.max_attempts == 0 {
            return Err(bad("[factory] max_attempts must be at least 1".into()));
        }
        if f.timeout_s == 0 || f.quiet_timeout_s == 0 {
            return Err(bad(
                "[factory] timeout_s and quiet_timeout_s must be at least 1 (seconds)".into(),
            ));
        }
        let profiles = self.agent_profiles();
        for (name, p) in &profiles {
            p.validate(name).map_err(|e| bad(e.to_string()))?;
        }
        if !profiles.contains_key(&f.default_agent) {
            return Err(bad(format!(
                "[factory] default_agent = \"{}\" names no profile; define [agents.{}] or pick one of: {}",
                f.default_agent,
                f.default_agent,
                profiles.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(())
    }

    /// Load `path`; a file that does not exist gives the defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let c = Config::parse(&text, path)?;
                c.validate(path)?;
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
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })
    }
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
        c.validate(Path::new("shopfloor.toml")).unwrap();
        assert_eq!(c.factory.concurrency, 4);
        assert!(c.agents.contains_key("claude"));
    }

    #[test]
    fn semantic_errors_say_which_key() {
        let c = Config::parse("[factory]\nconcurrency = 0\n", Path::new("s.toml")).unwrap();
        assert!(
            c.validate(Path::new("s.toml"))
                .unwrap_err()
                .to_string()
                .contains("concurrency")
        );
        let c = Config::parse("[factory]\ndefault_agent = \"x\"\n", Path::new("s.toml")).unwrap();
        let e = c.validate(Path::new("s.toml")).unwrap_err().to_string();
        assert!(e.contains("[agents.x]"), "{e}");
        let c = Config::parse(
            "[agents.s]\nadapter = \"plain\"\n[factory]\ndefault_agent = \"s\"\n",
            Path::new("s.toml"),
        )
        .unwrap();
        let e = c.validate(Path::new("s.toml")).unwrap_err().to_string();
        assert!(e.contains("command"), "{e}");
    }

    #[test]
    fn bad_values_name_their_line() {
        let err = Config::parse("[memory]\nmodel = 3\n", Path::new("s.toml")).unwrap_err();
        assert!(err.to_string().starts_with("s.toml:2:"), "{err}");
    }
}

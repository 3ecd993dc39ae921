//! `shopfloor.toml`, the team-shared configuration at the repository root. A missing file
//! means the defaults; an unknown key or a bad value is an error naming its line, because a
//! typo silently ignored is a policy silently not applied.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::redact::RedactConfig;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Secret redaction applied to every step and memory before it is stored.
    pub redact: RedactConfig,
    pub memory: MemoryConfig,
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
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Config {
    /// Load `path`; a file that does not exist gives the defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text, path),
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
    fn bad_values_name_their_line() {
        let err = Config::parse("[memory]\nmodel = 3\n", Path::new("s.toml")).unwrap_err();
        assert!(err.to_string().starts_with("s.toml:2:"), "{err}");
    }
}

//! `[redact]`: the secrets taken out of every step and memory before it is stored.

use serde::Deserialize;

/// The `[redact]` section of the config.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedactConfig {
    /// Extra regexes; a match is replaced with `[REDACTED:custom]` (or only its
    /// `(?P<secret>...)` group, when it has one). Write word boundaries as `(?-u:\b)`: a
    /// Unicode `\b` slows every scan of non-ASCII text a hundredfold.
    pub patterns: Vec<String>,
    /// Variable names ending in one of these are secrets: their assignments in text, and the
    /// values of such variables in the environment.
    pub env_suffixes: Vec<String>,
    /// Use the built-in patterns for well-known key and token shapes.
    pub builtin: bool,
}

impl Default for RedactConfig {
    fn default() -> Self {
        RedactConfig {
            patterns: Vec::new(),
            env_suffixes: ["_KEY", "_TOKEN", "_SECRET", "_PASSWORD"]
                .map(String::from)
                .to_vec(),
            builtin: true,
        }
    }
}

/// At most this many `[redact] patterns`: each is one more alternative every step is
/// scanned for, and the combined regex must stay small enough to be fast.
pub const MAX_PATTERNS: usize = 64;
/// Longest `[redact] patterns` entry, in bytes.
pub const MAX_PATTERN_LEN: usize = 512;

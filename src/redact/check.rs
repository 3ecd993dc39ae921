//! The checks of a `[redact]` section (`config::redact`): patterns that compile, stay small
//! and never match empty text.

use crate::config::redact::{MAX_PATTERN_LEN, MAX_PATTERNS, RedactConfig};
use regex::Regex;

#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    #[error(
        "redaction pattern `{pattern}` is not a valid regex: {source}; fix or remove it in the [redact] patterns of shopfloor.toml"
    )]
    BadPattern {
        pattern: String,
        #[source]
        source: Box<regex::Error>,
    },
    #[error(
        "redaction pattern {pattern:?} can match empty text, so it would mark every position of every step; make it match at least one character (`x+`, not `x*`), or remove it from the [redact] patterns of shopfloor.toml"
    )]
    MatchesEmpty { pattern: String },
    #[error(
        "redaction pattern `{prefix}...` is {len} bytes long; keep each of the [redact] patterns under {MAX_PATTERN_LEN} bytes"
    )]
    PatternTooLong { prefix: String, len: usize },
    #[error(
        "[redact] has {count} patterns; at most {MAX_PATTERNS} are allowed, so combine similar ones into one alternation"
    )]
    TooManyPatterns { count: usize },
    #[error(
        "[redact] env_suffixes holds an empty suffix, which makes every variable a secret; remove it"
    )]
    EmptySuffix,
    #[error(
        "the [redact] patterns together compile to a regex that is too large ({source}); use fewer or simpler patterns"
    )]
    TooLarge {
        #[source]
        source: Box<regex::Error>,
    },
}

impl RedactConfig {
    /// Check each pattern on its own, so an error names the one to fix: a valid regex,
    /// not too long, not too many, and never matching empty text (an empty match is
    /// replaced by a mark at every position: `patterns = [""]` made stored text 17 times
    /// larger).
    pub fn validate(&self) -> Result<(), RedactError> {
        if self.patterns.len() > MAX_PATTERNS {
            return Err(RedactError::TooManyPatterns {
                count: self.patterns.len(),
            });
        }
        if self.env_suffixes.iter().any(|s| s.is_empty()) {
            return Err(RedactError::EmptySuffix);
        }
        for p in &self.patterns {
            if p.len() > MAX_PATTERN_LEN {
                return Err(RedactError::PatternTooLong {
                    prefix: p.chars().take(40).collect(),
                    len: p.len(),
                });
            }
            if can_match_empty(p).map_err(|source| RedactError::BadPattern {
                pattern: p.clone(),
                source,
            })? {
                return Err(RedactError::MatchesEmpty { pattern: p.clone() });
            }
        }
        Ok(())
    }
}

/// Whether `pattern` (a valid regex, else its error) matches the empty string anywhere:
/// `a*`, `x?`, `\b`, `^`, `a|`.
pub(super) fn can_match_empty(pattern: &str) -> Result<bool, Box<regex::Error>> {
    Regex::new(pattern).map_err(Box::new)?;
    // A regex that compiles also parses; its minimum match length says it exactly.
    let hir =
        regex_syntax::parse(pattern).map_err(|e| Box::new(regex::Error::Syntax(e.to_string())))?;
    Ok(hir.properties().minimum_len() == Some(0))
}

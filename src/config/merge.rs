//! `[merge]`: how the merge queue lands branches.

use serde::Deserialize;

/// `[merge]` in shopfloor.toml.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MergeConfig {
    /// `serial` (one entry at a time), `batch` or `speculative`.
    pub mode: Mode,
    /// Entries tested together in batch mode.
    pub batch_size: usize,
    /// Speculative mode: how many entries are tested at once, each on main plus the
    /// entries ahead of it (1 to 32).
    pub depth: usize,
    /// Times a red test run is tried again before it counts (flaky tests); each is recorded.
    pub flaky_retries: u32,
    /// Seconds a test run may take.
    pub test_timeout_s: u64,
    /// A remote of the factory's clone to push main to after each landing.
    pub push: Option<String>,
}

/// The deepest speculation `[merge] depth` accepts: each level is a sandbox running the
/// whole test suite at once.
pub const MAX_DEPTH: usize = 32;

impl Default for MergeConfig {
    fn default() -> Self {
        MergeConfig {
            mode: Mode::Serial,
            batch_size: 8,
            depth: 4,
            flaky_retries: 0,
            test_timeout_s: 1800,
            push: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Serial,
    Batch,
    Speculative,
}

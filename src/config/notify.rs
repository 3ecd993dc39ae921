//! `[notify]`: the bell, desktop notifications, and a command for each notice.

use serde::Deserialize;

/// `[notify]` in shopfloor.toml.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Ring the bell and raise a desktop notification from the control room.
    pub terminal: bool,
    /// Run with `sh -c`, a notice as JSON on stdin, for each notice.
    pub command: Option<String>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            terminal: true,
            command: None,
        }
    }
}

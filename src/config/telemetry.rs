//! `[telemetry]`: runs exported as OpenTelemetry spans (OTLP/HTTP), and what they hold.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `[telemetry]` in shopfloor.toml.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// An OTLP/HTTP receiver's base URL, `http://host[:port][/path]`; spans go to
    /// `{endpoint}/v1/traces` (or to the endpoint itself when it already ends so). Unset:
    /// no live export (`trace export --format otlp` works either way).
    pub endpoint: Option<String>,
    /// Message text in spans: prompts, replies, thinking, tool arguments and results,
    /// memory queries. Off by default, since traces often leave the machine.
    pub content: bool,
    /// Headers sent with every export (say, `authorization` for a hosted collector).
    pub headers: BTreeMap<String, String>,
    /// The resource's `service.name`.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            endpoint: None,
            content: false,
            headers: BTreeMap::new(),
            service_name: "shopfloor".into(),
        }
    }
}

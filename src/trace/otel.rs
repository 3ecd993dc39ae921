//! A stored run as OpenTelemetry spans under the GenAI semantic conventions: the run is an
//! `invoke_agent {agent}` span, each tool call an `execute_tool {tool}` child, each memory
//! recall through shopfloor's MCP server a `search_memory {workspace}` child. The same span
//! tree feeds the live OTLP/HTTP export (`crate::telemetry`) and `trace export --format otlp`.
//!
//! Ids are derived, not random: the trace id from (workspace, run), a span id from
//! (workspace, run, step), both blake3. Exporting a run twice gives the same ids, so a
//! receiver sees the same spans again rather than a second copy of the run.
//!
//! Message text (prompts, replies, thinking, tool arguments and results, memory queries)
//! goes into attributes only when `content` is on (`[telemetry] content = true`): traces
//! often leave the machine, and an agent's conversation holds the repository's code and
//! whatever secrets the redaction missed. With it off, a span says what happened (names,
//! counts, ids, timings, exit codes, error flags), never what was said.

use jiff::Timestamp;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};

use crate::model::RunId;

mod export;
mod spans;
#[cfg(test)]
mod tests;

pub use export::{
    MAX_REQUEST_BYTES, MAX_REQUEST_SPANS, Service, export_otlp_json, export_requests,
};
pub use spans::{RunSpans, read_run_spans, run_spans};

/// What a run's spans are made with.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanOptions {
    /// Message text in attributes (see the module's doc).
    pub content: bool,
    /// The workspace's name: `shopfloor.workspace`, and the memory store's id.
    pub workspace: String,
    /// What trace and span ids are derived from, with the run and the step: the workspace's
    /// name and creation time, so two machines' workspaces of the same name differ.
    pub id_key: String,
}

/// A text attribute longer than this is cut (at a character boundary) and says so: one
/// 10 MB tool result must not make a request every receiver refuses.
pub const MAX_TEXT_BYTES: usize = 16 << 10;
/// All the message parts of a run's `invoke_agent` span together stop at about this much.
pub const MAX_MESSAGES_BYTES: usize = 256 << 10;
/// The run's span carries at most this many error events; `shopfloor.run.errors` counts
/// them all.
pub const MAX_EVENTS: usize = 128;

/// The run's trace id: 16 bytes of blake3 over the id key and the run.
pub fn trace_id(id_key: &str, run: RunId) -> [u8; 16] {
    let h = id_hash(id_key, run, "trace");
    let mut id = [0u8; 16];
    id.copy_from_slice(&h[..16]);
    nonzero(&mut id);
    id
}

/// A span id: the run's root span (`step` None) or the span a step opened.
pub fn span_id(id_key: &str, run: RunId, step: Option<u64>) -> [u8; 8] {
    let what = match step {
        Some(seq) => format!("step {seq}"),
        None => "run".to_string(),
    };
    let h = id_hash(id_key, run, &what);
    let mut id = [0u8; 8];
    id.copy_from_slice(&h[..8]);
    nonzero(&mut id);
    id
}

fn id_hash(id_key: &str, run: RunId, what: &str) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("shopfloor otel ids v1");
    // Lengths first, so no two (key, run, what) triples hash the same bytes.
    h.update(&(id_key.len() as u64).to_le_bytes());
    h.update(id_key.as_bytes());
    h.update(&run.to_le_bytes());
    h.update(what.as_bytes());
    *h.finalize().as_bytes()
}

/// An all-zero id is invalid in OTLP; a hash giving one is astronomically unlikely, but
/// cheap to rule out.
fn nonzero(id: &mut [u8]) {
    if id.iter().all(|&b| b == 0) {
        id[id.len() - 1] = 1;
    }
}

fn nanos(ts: Timestamp) -> u64 {
    u64::try_from(ts.as_nanosecond().max(0)).unwrap_or(u64::MAX)
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(key: &str, v: impl Into<String>) -> KeyValue {
    kv(key, Value::StringValue(v.into()))
}

fn int(key: &str, v: u64) -> KeyValue {
    kv(key, Value::IntValue(i64::try_from(v).unwrap_or(i64::MAX)))
}

/// Whether a tool call is a memory recall: shopfloor's `memory_search` (or a
/// `memory_recall`), by itself or behind an MCP prefix (Claude Code's
/// `mcp__shopfloor__memory_search`, Codex's `shopfloor/memory_search`).
pub fn is_memory_recall(tool: &str) -> bool {
    ["memory_search", "memory_recall"].iter().any(|t| {
        tool.strip_suffix(t)
            .is_some_and(|head| head.is_empty() || head.ends_with(['_', '/', '.', ':']))
    })
}

/// The GenAI provider a model or agent name points at, where it is plain.
fn provider(model: Option<&str>, agent: &str) -> Option<&'static str> {
    let guess = |name: &str| {
        let n = name.to_ascii_lowercase();
        if n.starts_with("claude") || n.contains("anthropic") {
            Some("anthropic")
        } else if n.starts_with("gpt")
            || n.starts_with("codex")
            || n.starts_with("o1")
            || n.starts_with("o3")
            || n.starts_with("o4")
            || n.contains("openai")
        {
            Some("openai")
        } else if n.starts_with("gemini") {
            Some("gcp.gemini")
        } else {
            None
        }
    };
    model.and_then(guess).or_else(|| guess(agent))
}

//! The typed trajectory: one step of an agent run, its kinds, lifecycle events and token usage.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Payload, RunId};

/// One event of an agent run: the unit of the typed trajectory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub run: RunId,
    /// Position in the run, from 0, dense.
    pub seq: u64,
    pub ts: Timestamp,
    pub agent: String,
    /// The step this one answers: a tool result points at its tool call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<u64>,
    #[serde(flatten)]
    pub kind: StepKind,
}

/// What happened at a step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StepKind {
    UserMessage {
        text: Payload,
    },
    AgentMessage {
        text: Payload,
    },
    Thinking {
        text: Payload,
    },
    ToolCall {
        /// The agent's own id for the call, used to pair it with its result.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<String>,
        name: String,
        /// The call's arguments as JSON text.
        input: Payload,
    },
    ToolResult {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<String>,
        output: Payload,
        #[serde(default)]
        is_error: bool,
    },
    Command {
        argv: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        output: Payload,
    },
    FileEdit {
        path: String,
        /// The whole file before the edit (None: created, or unknown).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<Payload>,
        /// The whole file after the edit (None: deleted, or unknown).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<Payload>,
        /// Unified diff of the change.
        patch: Payload,
    },
    Decision {
        text: Payload,
    },
    Error {
        message: Payload,
    },
    Lifecycle {
        event: Lifecycle,
    },
    /// Anything an importer did not understand, kept verbatim so nothing is lost.
    Raw {
        /// Line number in the source, from 1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line: Option<u64>,
        /// Why it is raw: an unknown event type, malformed JSON, invalid UTF-8, ...
        reason: String,
        data: Payload,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Lifecycle {
    Started {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cwd: Option<String>,
    },
    Exited {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
    },
    Usage(Usage),
    /// Bookkeeping the agent's CLI records beside the conversation (a transcript's
    /// attachments and request records, Codex's item starts, a line on stderr): typed, so it
    /// is searchable and shown for what it is, not left raw.
    Note {
        /// What kind of line it was: `attachment/date`, `item.started`, `stderr`, ...
        what: String,
        /// What it said, in short, or whole (a large one is kept as a blob like any text).
        #[serde(default, skip_serializing_if = "Payload::is_empty")]
        text: Payload,
    },
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Tokens and money spent, as reported by the agent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_tokens: u64,
    /// Input written to a prompt cache (Anthropic's cache creation), priced apart.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// The cost was priced from token counts (`[prices]`), not reported by the agent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cost_priced: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turns: Option<u64>,
}

impl Usage {
    /// Add another report's tokens and cost. Turns are left to the caller: some reports
    /// carry a running total, others a count to add.
    pub fn add_spend(&mut self, u: &Usage) {
        // Saturating: the numbers come from agent logs, and a hostile one must not
        // overflow (a panic in debug builds, a wrapped total in release).
        self.input_tokens = self.input_tokens.saturating_add(u.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(u.output_tokens);
        self.cache_read_tokens = self.cache_read_tokens.saturating_add(u.cache_read_tokens);
        self.cache_write_tokens = self.cache_write_tokens.saturating_add(u.cache_write_tokens);
        self.cost_priced |= u.cost_priced;
        if let Some(c) = u.cost_usd {
            self.cost_usd = Some(self.cost_usd.unwrap_or(0.0) + c);
        }
    }
}

impl StepKind {
    /// A short stable name for the kind, used in tables, filters and the index.
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::UserMessage { .. } => "user",
            StepKind::AgentMessage { .. } => "agent",
            StepKind::Thinking { .. } => "thinking",
            StepKind::ToolCall { .. } => "tool_call",
            StepKind::ToolResult { .. } => "tool_result",
            StepKind::Command { .. } => "command",
            StepKind::FileEdit { .. } => "file_edit",
            StepKind::Decision { .. } => "decision",
            StepKind::Error { .. } => "error",
            StepKind::Lifecycle { .. } => "lifecycle",
            StepKind::Raw { .. } => "raw",
        }
    }

    /// Whether the step is a failure a reviewer would want to jump to.
    pub fn is_error(&self) -> bool {
        match self {
            StepKind::Error { .. } => true,
            StepKind::ToolResult { is_error, .. } => *is_error,
            StepKind::Command { exit_code, .. } => exit_code.is_some_and(|c| c != 0),
            _ => false,
        }
    }

    /// Every payload of the step, for the store to externalize and export to inline.
    pub fn payloads_mut(&mut self) -> Vec<&mut Payload> {
        match self {
            StepKind::UserMessage { text }
            | StepKind::AgentMessage { text }
            | StepKind::Thinking { text }
            | StepKind::Decision { text } => vec![text],
            StepKind::ToolCall { input, .. } => vec![input],
            StepKind::ToolResult { output, .. } => vec![output],
            StepKind::Command { output, .. } => vec![output],
            StepKind::FileEdit {
                before,
                after,
                patch,
                ..
            } => {
                let mut v = vec![patch];
                v.extend(before.as_mut());
                v.extend(after.as_mut());
                v
            }
            StepKind::Error { message } => vec![message],
            StepKind::Raw { data, .. } => vec![data],
            StepKind::Lifecycle {
                event: Lifecycle::Note { text, .. },
            } => vec![text],
            StepKind::Lifecycle { .. } => vec![],
        }
    }

    /// A one-line summary for lists and timelines.
    pub fn summary(&self) -> String {
        fn first_line(s: &str) -> &str {
            s.lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
        }
        match self {
            StepKind::UserMessage { text }
            | StepKind::AgentMessage { text }
            | StepKind::Thinking { text }
            | StepKind::Decision { text } => first_line(text.preview()).to_string(),
            StepKind::ToolCall { name, input, .. } => {
                format!("{name} {}", first_line(input.preview()))
            }
            StepKind::ToolResult {
                output, is_error, ..
            } => {
                let mark = if *is_error { "error: " } else { "" };
                format!("{mark}{}", first_line(output.preview()))
            }
            StepKind::Command {
                argv, exit_code, ..
            } => match exit_code {
                Some(c) => format!("$ {} -> {c}", argv.join(" ")),
                None => format!("$ {}", argv.join(" ")),
            },
            StepKind::FileEdit { path, .. } => format!("edit {path}"),
            StepKind::Error { message } => first_line(message.preview()).to_string(),
            StepKind::Lifecycle { event } => match event {
                Lifecycle::Started { model, .. } => match model {
                    Some(m) => format!("started ({m})"),
                    None => "started".to_string(),
                },
                Lifecycle::Exited { code, signal } => match (code, signal) {
                    (Some(c), _) => format!("exited {c}"),
                    (None, Some(s)) => format!("killed by signal {s}"),
                    _ => "exited".to_string(),
                },
                Lifecycle::Note { what, text } if text.is_empty() => what.clone(),
                Lifecycle::Note { what, text } => {
                    format!("{what}: {}", first_line(text.preview()))
                }
                Lifecycle::Usage(u) => {
                    let cost = u.cost_usd.map(|c| format!(" ${c:.4}")).unwrap_or_default();
                    format!(
                        "usage {} in / {} out{cost}",
                        u.input_tokens, u.output_tokens
                    )
                }
            },
            StepKind::Raw { reason, data, .. } => {
                format!("[{reason}] {}", first_line(data.preview()))
            }
        }
    }
}

//! Claude Code session transcripts (`~/.claude/projects/<dir>/<session>.jsonl`).
//!
//! Mapping choices:
//! - the first line with a `sessionId` also yields `Lifecycle::Started{session, cwd}`;
//! - user lines (meta lines, slash commands and their `<local-command-stdout>` included) are
//!   `UserMessage`s: they are what the model was shown;
//! - `summary` lines (a session title written by Claude Code) become an `AgentMessage`
//!   prefixed `Session summary:`;
//! - `system` lines with level `error` become `Error`; the transcript's bookkeeping (other
//!   system lines, attachments, request records, `tools-used`, `last-prompt`,
//!   `queue-operation`, `file-history-snapshot`, `progress`, ...) are lifecycle notes named
//!   by their type, the line whole; types this list does not know are `Raw`.

use serde_json::Value;

use super::claude::ClaudeState;
use super::{Draft, TraceParser, line_text, note, parse_line, raw, str_of, ts_of};

/// Line types Claude Code writes to a transcript beside the conversation (2.1.x).
const BOOKKEEPING: &[&str] = &[
    "api-request",
    "api-request-blob",
    "api-request-shape",
    "atis-latch",
    "attachment",
    "cost-state",
    "custom-title",
    "file-history-snapshot",
    "last-prompt",
    "progress",
    "queue-operation",
    "result",
    "tools-used",
];
use crate::model::{Lifecycle, Payload, StepKind};

pub struct ClaudeCodeParser {
    state: ClaudeState,
    started: bool,
}

impl Default for ClaudeCodeParser {
    fn default() -> Self {
        let mut state = ClaudeState::default();
        state.emit_message_usage = true;
        ClaudeCodeParser {
            state,
            started: false,
        }
    }
}

impl TraceParser for ClaudeCodeParser {
    fn feed(&mut self, line_no: u64, line: &[u8], out: &mut Vec<Draft>) {
        let v = match parse_line(line_no, line) {
            Ok(v) => v,
            Err(d) => return out.push(*d),
        };
        // A file-history snapshot keeps its time inside: `snapshot.timestamp`.
        let ts = ts_of(&v, "timestamp")
            .or_else(|| v.get("snapshot").and_then(|s| ts_of(s, "timestamp")));
        // Sub-agent (Task) turns are recorded in the same file: keep them apart.
        let agent = (v.get("isSidechain").and_then(Value::as_bool) == Some(true))
            .then(|| "claude-code/subagent".to_string());
        if !self.started
            && let Some(session) = str_of(&v, "sessionId")
        {
            self.started = true;
            out.push(
                Draft::new(StepKind::Lifecycle {
                    event: Lifecycle::Started {
                        model: None,
                        session: Some(session.to_string()),
                        cwd: str_of(&v, "cwd").map(String::from),
                    },
                })
                .at(ts),
            );
        }
        let ty = str_of(&v, "type").unwrap_or("");
        match ty {
            "user" | "assistant" => self.state.message(line_no, line, &v, ts, agent, out),
            "summary" => out.push(
                Draft::new(StepKind::AgentMessage {
                    text: Payload::Text(format!(
                        "Session summary: {}",
                        str_of(&v, "summary").unwrap_or("")
                    )),
                })
                .at(ts),
            ),
            "system" if str_of(&v, "level") == Some("error") => out.push(
                Draft::new(StepKind::Error {
                    message: Payload::Text(
                        str_of(&v, "content").map_or_else(|| line_text(line), String::from),
                    ),
                })
                .at(ts)
                .by(agent),
            ),
            "system" => {
                let sub = str_of(&v, "subtype").unwrap_or("?");
                out.push(note(format!("system/{sub}"), line_text(line)).at(ts))
            }
            "attachment" => {
                let kind = v
                    .get("attachment")
                    .and_then(|a| str_of(a, "type"))
                    .unwrap_or("?");
                out.push(note(format!("attachment/{kind}"), line_text(line)).at(ts))
            }
            ty if BOOKKEEPING.contains(&ty) => out.push(note(ty, line_text(line)).at(ts)),
            "" => out.push(raw(
                line_no,
                super::problem(line_no, "claude-code line without `type`"),
                line_text(line),
            )),
            other => out.push(raw(line_no, format!("claude-code {other}"), line_text(line)).at(ts)),
        }
    }

    fn finish(&mut self, _out: &mut Vec<Draft>) {}
}

//! `claude -p --output-format stream-json --verbose`: `system/init` starts the run, message
//! lines are as in transcripts (with their own timestamps), `result` carries the session's
//! usage and cost. `system/permission_denied` is an Error (the agent was refused a tool:
//! a reviewer must see it). Other `system` lines, `stream_event` (partial deltas: the
//! complete message follows) and `rate_limit_event` are lifecycle notes, the line whole.

use serde_json::Value;

use super::claude::{ClaudeState, usage_of};
use super::{Draft, TraceParser, line_text, note, parse_line, raw, str_of, ts_of};
use crate::model::{Lifecycle, Payload, StepKind};

#[derive(Default)]
pub struct ClaudeStreamParser {
    state: ClaudeState,
}

impl TraceParser for ClaudeStreamParser {
    fn feed(&mut self, line_no: u64, line: &[u8], out: &mut Vec<Draft>) {
        let v = match parse_line(line_no, line) {
            Ok(v) => v,
            Err(d) => return out.push(*d),
        };
        // Sub-agent output carries the Task call it belongs to.
        let agent = v
            .get("parent_tool_use_id")
            .and_then(Value::as_str)
            .map(|_| "claude-code/subagent".to_string());
        match (str_of(&v, "type").unwrap_or(""), str_of(&v, "subtype")) {
            ("system", Some("init")) => out.push(Draft::new(StepKind::Lifecycle {
                event: Lifecycle::Started {
                    model: str_of(&v, "model").map(String::from),
                    session: str_of(&v, "session_id").map(String::from),
                    cwd: str_of(&v, "cwd").map(String::from),
                },
            })),
            ("user" | "assistant", _) => {
                let ts = ts_of(&v, "timestamp");
                self.state.message(line_no, line, &v, ts, agent, out)
            }
            ("system", Some("permission_denied")) => {
                let tool = str_of(&v, "tool_name").unwrap_or("a tool");
                let why = str_of(&v, "message")
                    .or_else(|| str_of(&v, "decision_reason"))
                    .unwrap_or("not allowed");
                out.push(
                    Draft::new(StepKind::Error {
                        message: Payload::Text(format!("permission denied: {tool}: {why}")),
                    })
                    .by(agent),
                );
            }
            ("system", Some(sub)) => out.push(note(format!("system/{sub}"), line_text(line))),
            ("stream_event" | "rate_limit_event", _) => {
                out.push(note(str_of(&v, "type").unwrap_or(""), line_text(line)))
            }
            ("result", _) => {
                let mut usage = v.get("usage").map(usage_of).unwrap_or_default();
                usage.cost_usd = v
                    .get("total_cost_usd")
                    .and_then(Value::as_f64)
                    .or_else(|| v.get("cost_usd").and_then(Value::as_f64));
                usage.turns = v.get("num_turns").and_then(Value::as_u64);
                out.push(Draft::new(StepKind::Lifecycle {
                    event: Lifecycle::Usage(usage),
                }));
                if v.get("is_error").and_then(Value::as_bool) == Some(true) {
                    let msg = str_of(&v, "result").map(String::from).unwrap_or_else(|| {
                        format!(
                            "run ended with {}",
                            str_of(&v, "subtype").unwrap_or("an error")
                        )
                    });
                    out.push(Draft::new(StepKind::Error {
                        message: Payload::Text(msg),
                    }));
                }
            }
            (ty, sub) => {
                let name = match sub {
                    Some(s) => format!("{ty}/{s}"),
                    None => ty.to_string(),
                };
                out.push(raw(
                    line_no,
                    format!("claude-stream {name}"),
                    line_text(line),
                ));
            }
        }
    }

    fn finish(&mut self, _out: &mut Vec<Draft>) {}
}

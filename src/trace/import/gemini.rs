//! `gemini -p PROMPT --output-format stream-json` (Gemini CLI headless mode).
//!
//! Every event has `type` and `timestamp`. Mapping:
//! - `init{session_id, model}` → Started;
//! - `message{role, content, delta}`: `user` → UserMessage; `assistant` → AgentMessage. The
//!   CLI streams assistant text in chunks marked `delta: true`: each chunk line is kept as
//!   Raw (`gemini message delta`) and the chunks are joined into one AgentMessage when the
//!   next non-delta event arrives (or the input ends), like Codex's `item.updated`;
//! - `tool_use{tool_name, tool_id, parameters}` → ToolCall;
//! - `tool_result{tool_id, status, output, error{type, message}}` → ToolResult (`status:
//!   "error"` sets is_error), plus what the call implies: `run_shell_command` → Command
//!   (exit code from an `Exit Code: N` line of the output when present), `write_file` →
//!   FileEdit with the whole new content, `replace` → FileEdit of the replaced snippet;
//! - `error{severity, message}` → Error (severity `warning` → Raw, it is not a failure);
//! - `result{status, error, stats{total_tokens, input_tokens, output_tokens, duration_ms,
//!   tool_calls}}` → Usage, and an Error when `status` is `error`;
//! - anything else → Raw.

use jiff::Timestamp;
use serde_json::Value;

use super::{
    Draft, MAX_LINE_BYTES, PendingCalls, TraceParser, json_text, line_text, parse_line, problem,
    raw, str_of, ts_of, u64_of,
};
use crate::model::{Lifecycle, Payload, StepKind, Usage};
use crate::trace::patch;

#[derive(Default)]
pub struct GeminiParser {
    /// Tool calls seen, by id: name and, for the tools whose results imply a Command or a
    /// FileEdit, their parameters.
    calls: PendingCalls<(String, Value)>,
    /// Assistant text streamed in deltas, not yet emitted, and the time of its first chunk.
    pending: Option<(String, Option<Timestamp>)>,
}

fn text(s: impl Into<String>) -> Payload {
    Payload::Text(s.into())
}

impl GeminiParser {
    fn flush(&mut self, out: &mut Vec<Draft>) {
        if let Some((t, ts)) = self.pending.take() {
            out.push(Draft::new(StepKind::AgentMessage { text: text(t) }).at(ts));
        }
    }

    fn tool_result(&mut self, v: &Value, ts: Option<Timestamp>, out: &mut Vec<Draft>) {
        let call_id = str_of(v, "tool_id").map(String::from);
        let is_error = str_of(v, "status") == Some("error");
        let err = v.get("error");
        let output = match (str_of(v, "output"), err) {
            (Some(o), _) if !o.is_empty() || err.is_none() => o.to_string(),
            (_, Some(e)) => str_of(e, "message")
                .map(String::from)
                .unwrap_or_else(|| json_text(e)),
            (_, None) => String::new(),
        };
        out.push(
            Draft::new(StepKind::ToolResult {
                call_id: call_id.clone(),
                output: text(output.clone()),
                is_error,
            })
            .at(ts),
        );
        let Some((name, params)) = call_id.as_ref().and_then(|id| self.calls.get(id)) else {
            return;
        };
        let derived = match name.as_str() {
            "run_shell_command" => str_of(params, "command").map(|cmd| {
                let exit_code = output.lines().find_map(|l| {
                    l.trim()
                        .strip_prefix("Exit Code:")
                        .and_then(|n| n.trim().parse().ok())
                });
                StepKind::Command {
                    argv: vec!["bash".into(), "-c".into(), cmd.to_string()],
                    exit_code,
                    output: text(output.clone()),
                }
            }),
            "write_file" if !is_error => str_of(params, "file_path").map(|path| {
                let after = str_of(params, "content").unwrap_or("");
                StepKind::FileEdit {
                    path: path.to_string(),
                    before: None,
                    after: Some(text(after)),
                    patch: text(patch::make(path, None, Some(after))),
                }
            }),
            "replace" if !is_error => str_of(params, "file_path").map(|path| {
                let old = str_of(params, "old_string").unwrap_or("");
                let new = str_of(params, "new_string").unwrap_or("");
                StepKind::FileEdit {
                    path: path.to_string(),
                    before: None,
                    after: None,
                    patch: text(patch::make(path, Some(old), Some(new))),
                }
            }),
            _ => None,
        };
        if let Some(kind) = derived {
            out.push(Draft::new(kind).at(ts).answering(call_id));
        }
    }
}

impl TraceParser for GeminiParser {
    fn feed(&mut self, line_no: u64, line: &[u8], out: &mut Vec<Draft>) {
        let v = match parse_line(line_no, line) {
            Ok(v) => v,
            Err(d) => {
                self.flush(out);
                return out.push(*d);
            }
        };
        let ts = ts_of(&v, "timestamp");
        let ty = str_of(&v, "type").unwrap_or("");
        let is_delta = ty == "message"
            && str_of(&v, "role") == Some("assistant")
            && v.get("delta").and_then(Value::as_bool) == Some(true);
        if is_delta {
            let chunk = str_of(&v, "content").unwrap_or("");
            // Joined text is bounded like a line: an endless stream of deltas becomes
            // several messages, not one that fills the memory.
            if self
                .pending
                .as_ref()
                .is_some_and(|(t, _)| t.len() + chunk.len() > MAX_LINE_BYTES)
            {
                self.flush(out);
            }
            match &mut self.pending {
                Some((t, _)) => t.push_str(chunk),
                None => self.pending = Some((chunk.to_string(), ts)),
            }
            return out.push(raw(line_no, "gemini message delta", line_text(line)));
        }
        self.flush(out);
        match ty {
            "init" => out.push(
                Draft::new(StepKind::Lifecycle {
                    event: Lifecycle::Started {
                        model: str_of(&v, "model").map(String::from),
                        session: str_of(&v, "session_id").map(String::from),
                        cwd: str_of(&v, "cwd").map(String::from),
                    },
                })
                .at(ts),
            ),
            "message" => {
                let content = match v.get("content") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => json_text(other),
                    None => String::new(),
                };
                let kind = match str_of(&v, "role") {
                    Some("user") => StepKind::UserMessage {
                        text: text(content),
                    },
                    Some("assistant") => StepKind::AgentMessage {
                        text: text(content),
                    },
                    _ => {
                        return out.push(raw(
                            line_no,
                            problem(line_no, "gemini message without a user/assistant role"),
                            line_text(line),
                        ));
                    }
                };
                out.push(Draft::new(kind).at(ts));
            }
            "tool_use" => {
                let call_id = str_of(&v, "tool_id").map(String::from);
                let name = str_of(&v, "tool_name").unwrap_or("?").to_string();
                let params = v.get("parameters").unwrap_or(&Value::Null);
                let input = json_text(params);
                if let Some(id) = &call_id {
                    // Only these tools' results imply more than a ToolResult.
                    let (kept, bytes) = match name.as_str() {
                        "run_shell_command" | "write_file" | "replace" => {
                            (params.clone(), input.len())
                        }
                        _ => (Value::Null, 0),
                    };
                    self.calls.insert(id.clone(), (name.clone(), kept), bytes);
                }
                out.push(
                    Draft::new(StepKind::ToolCall {
                        call_id,
                        name,
                        input: text(input),
                    })
                    .at(ts),
                );
            }
            "tool_result" => self.tool_result(&v, ts, out),
            "error" if str_of(&v, "severity") == Some("warning") => {
                out.push(raw(line_no, "gemini warning", line_text(line)).at(ts))
            }
            "error" => out.push(
                Draft::new(StepKind::Error {
                    message: text(str_of(&v, "message").unwrap_or("gemini reported an error")),
                })
                .at(ts),
            ),
            "result" => {
                let stats = v.get("stats").cloned().unwrap_or(Value::Null);
                let usage = Usage {
                    input_tokens: u64_of(&stats, "input_tokens"),
                    output_tokens: u64_of(&stats, "output_tokens"),
                    cache_read_tokens: u64_of(&stats, "cached"),
                    turns: None,
                    ..Usage::default()
                };
                out.push(
                    Draft::new(StepKind::Lifecycle {
                        event: Lifecycle::Usage(usage),
                    })
                    .at(ts),
                );
                if str_of(&v, "status") == Some("error") {
                    let msg = v
                        .get("error")
                        .and_then(|e| str_of(e, "message"))
                        .unwrap_or("gemini run ended with an error");
                    out.push(Draft::new(StepKind::Error { message: text(msg) }).at(ts));
                }
            }
            other => out.push(raw(line_no, format!("gemini {other}"), line_text(line)).at(ts)),
        }
    }

    fn finish(&mut self, out: &mut Vec<Draft>) {
        self.flush(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A realistic headless session: the model reads a file, edits it, runs the tests
    /// (which fail once), fixes it, and finishes; text is streamed in deltas.
    const SAMPLE: &str = r#"{"type":"init","timestamp":"2025-10-10T12:00:00.000Z","session_id":"c25acda3-b0e1-4f1e-9a3b-0d1c2e7f9a11","model":"gemini-2.5-pro"}
{"type":"message","timestamp":"2025-10-10T12:00:00.010Z","role":"user","content":"Add release() to Stock"}
{"type":"message","timestamp":"2025-10-10T12:00:01.200Z","role":"assistant","content":"I'll read ","delta":true}
{"type":"message","timestamp":"2025-10-10T12:00:01.300Z","role":"assistant","content":"the file first.","delta":true}
{"type":"tool_use","timestamp":"2025-10-10T12:00:01.400Z","tool_name":"read_file","tool_id":"read_file-1760097601400-a1","parameters":{"absolute_path":"/repo/inventory/stock.py"}}
{"type":"tool_result","timestamp":"2025-10-10T12:00:01.450Z","tool_id":"read_file-1760097601400-a1","status":"success","output":""}
{"type":"tool_use","timestamp":"2025-10-10T12:00:02.000Z","tool_name":"write_file","tool_id":"write_file-1760097602000-b2","parameters":{"file_path":"/repo/inventory/stock.py","content":"class Stock:\n    def release(self):\n        return 0\n"}}
{"type":"tool_result","timestamp":"2025-10-10T12:00:02.050Z","tool_id":"write_file-1760097602000-b2","status":"success","output":"Successfully overwrote file: /repo/inventory/stock.py."}
{"type":"tool_use","timestamp":"2025-10-10T12:00:03.000Z","tool_name":"run_shell_command","tool_id":"run_shell_command-1760097603000-c3","parameters":{"command":"python3 -m unittest","description":"Run the tests"}}
{"type":"tool_result","timestamp":"2025-10-10T12:00:04.000Z","tool_id":"run_shell_command-1760097603000-c3","status":"error","output":"Command: python3 -m unittest\nDirectory: (root)\nOutput: FAILED (failures=1)\nError: (none)\nExit Code: 1","error":{"type":"shell_execute_error","message":"Command exited with code 1"}}
{"type":"tool_use","timestamp":"2025-10-10T12:00:05.000Z","tool_name":"replace","tool_id":"replace-1760097605000-d4","parameters":{"file_path":"/repo/inventory/stock.py","old_string":"return 0","new_string":"return self._reserved"}}
{"type":"tool_result","timestamp":"2025-10-10T12:00:05.050Z","tool_id":"replace-1760097605000-d4","status":"error","error":{"type":"edit_no_occurrence_found","message":"Failed to edit, 0 occurrences found"}}
{"type":"error","timestamp":"2025-10-10T12:00:05.100Z","severity":"warning","message":"Loop detected, stopping"}
{"type":"message","timestamp":"2025-10-10T12:00:06.000Z","role":"assistant","content":"Done: release() added.","delta":true}
{"type":"telemetry","timestamp":"2025-10-10T12:00:06.100Z","what":"future event"}
{"type":"error","timestamp":"2025-10-10T12:00:06.200Z","severity":"error","message":"Quota exceeded"}
{"type":"result","timestamp":"2025-10-10T12:00:06.500Z","status":"error","error":{"type":"FatalTurnLimitedError","message":"Reached max turns"},"stats":{"total_tokens":5120,"input_tokens":4800,"output_tokens":320,"duration_ms":6500,"tool_calls":4}}
"#;

    fn parse(text: &str) -> Vec<Draft> {
        let mut p = GeminiParser::default();
        let mut out = Vec::new();
        for (i, l) in text.lines().enumerate() {
            let before = out.len();
            p.feed(i as u64 + 1, l.as_bytes(), &mut out);
            assert!(out.len() > before, "line {} gave no draft", i + 1);
        }
        p.finish(&mut out);
        out
    }

    #[test]
    fn a_realistic_session_maps_to_steps() {
        let d = parse(SAMPLE);
        let names: Vec<_> = d.iter().map(|d| d.kind.name()).collect();
        assert_eq!(
            names,
            [
                "lifecycle",   // init
                "user",        // prompt
                "raw",         // delta 1
                "raw",         // delta 2
                "agent",       // joined deltas, before the tool call
                "tool_call",   // read_file
                "tool_result", //
                "tool_call",   // write_file
                "tool_result", //
                "file_edit",   //
                "tool_call",   // run_shell_command
                "tool_result", // failed
                "command",     // exit 1
                "tool_call",   // replace
                "tool_result", // error: no FileEdit
                "raw",         // warning
                "raw",         // delta 3
                "agent",       // flushed by the unknown event
                "raw",         // telemetry
                "error",       // quota
                "lifecycle",   // usage
                "error",       // result status error
            ]
        );
        assert_eq!(
            d[4].kind,
            StepKind::AgentMessage {
                text: "I'll read the file first.".into()
            }
        );
        assert_eq!(d[4].ts, Some("2025-10-10T12:00:01.200Z".parse().unwrap()));
        let StepKind::Lifecycle {
            event: Lifecycle::Started { model, session, .. },
        } = &d[0].kind
        else {
            panic!()
        };
        assert_eq!(model.as_deref(), Some("gemini-2.5-pro"));
        assert!(session.is_some());
        let StepKind::FileEdit { path, after, .. } = &d[9].kind else {
            panic!()
        };
        assert_eq!(path, "/repo/inventory/stock.py");
        assert!(after.as_ref().unwrap().preview().contains("release"));
        assert_eq!(d[9].answers.as_deref(), Some("write_file-1760097602000-b2"));
        let StepKind::ToolResult { is_error, .. } = &d[11].kind else {
            panic!()
        };
        assert!(is_error);
        let StepKind::Command {
            argv, exit_code, ..
        } = &d[12].kind
        else {
            panic!()
        };
        assert_eq!(
            (argv[2].as_str(), *exit_code),
            ("python3 -m unittest", Some(1))
        );
        let StepKind::ToolResult { output, .. } = &d[14].kind else {
            panic!()
        };
        assert_eq!(output.preview(), "Failed to edit, 0 occurrences found");
        let StepKind::Lifecycle {
            event: Lifecycle::Usage(u),
        } = &d[20].kind
        else {
            panic!()
        };
        assert_eq!((u.input_tokens, u.output_tokens), (4800, 320));
        assert_eq!(
            d[21].kind,
            StepKind::Error {
                message: "Reached max turns".into()
            }
        );
    }

    #[test]
    fn deltas_that_never_end_join_into_messages_of_bounded_size() {
        let chunk = "d".repeat(1 << 20);
        let line =
            format!(r#"{{"type":"message","role":"assistant","content":"{chunk}","delta":true}}"#);
        let d = parse(&vec![line; 17].join("\n"));
        let joined: Vec<u64> = d
            .iter()
            .filter_map(|d| match &d.kind {
                StepKind::AgentMessage { text } => Some(text.len()),
                _ => None,
            })
            .collect();
        assert_eq!(
            joined,
            [16 << 20, 1 << 20],
            "no text lost, none over a line's limit"
        );
    }

    #[test]
    fn trailing_deltas_are_flushed_and_garbage_is_raw() {
        let d = parse(
            "{\"type\":\"message\",\"role\":\"assistant\",\"content\":\"par\",\"delta\":true}\nnot json\n{\"type\":\"message\",\"role\":\"assistant\",\"content\":\"tial\",\"delta\":true}\n",
        );
        let names: Vec<_> = d.iter().map(|d| d.kind.name()).collect();
        assert_eq!(names, ["raw", "agent", "raw", "raw", "agent"]);
        assert_eq!(
            d[4].kind,
            StepKind::AgentMessage {
                text: "tial".into()
            }
        );
    }
}

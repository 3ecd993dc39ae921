//! Codex CLI rollouts (`$CODEX_HOME/sessions/.../rollout-*.jsonl`): one
//! `{"timestamp","type","payload"}` per line.
//!
//! Mapping: `session_meta` → Started; `response_item` messages → User/AgentMessage (other
//! roles, e.g. developer instructions, are Raw); `reasoning` → Thinking; `function_call` /
//! `custom_tool_call` / `local_shell_call` → ToolCall; their outputs → ToolResult, plus a
//! Command for shell calls; `event_msg/token_count` → Usage (the per-turn
//! `last_token_usage`, once per distinct total); `event_msg/error` → Error; everything else
//! (`turn_context`, `compacted`, `event_msg`s that echo response items) → Raw.

use serde_json::Value;

use super::{
    Draft, PendingCalls, TraceParser, json_text, line_text, parse_line, problem, raw, str_of,
    ts_of, u64_of,
};
use crate::model::{Lifecycle, Payload, StepKind, Usage};

#[derive(Default)]
pub struct CodexRolloutParser {
    /// Shell calls seen, by call id: the argv they run.
    shell_calls: PendingCalls<Vec<String>>,
    last_total: Option<Value>,
}

const SHELL_TOOLS: [&str; 5] = [
    "shell",
    "container.exec",
    "exec_command",
    "shell_command",
    "local_shell",
];

/// The argv a shell tool call runs: `command` as an array, or a command string run by a
/// login shell (`cmd` in `exec_command`, `command` in `shell_command`).
fn shell_argv(args: &Value) -> Option<Vec<String>> {
    let cmd = args.get("command").or_else(|| args.get("cmd"))?;
    match cmd {
        Value::Array(a) => Some(a.iter().map(json_text).collect()),
        Value::String(s) => Some(vec!["bash".into(), "-lc".into(), s.clone()]),
        _ => None,
    }
}

/// Codex reports a shell call's output either as JSON `{"output","metadata":{"exit_code"}}`
/// or as text `Exit code: N\n...Output:\n<output>`.
fn shell_output(output: &str) -> (Option<i32>, String) {
    if let Ok(v) = serde_json::from_str::<Value>(output)
        && let Some(out) = str_of(&v, "output")
    {
        let code = v
            .get("metadata")
            .and_then(|m| m.get("exit_code"))
            .and_then(Value::as_i64)
            .and_then(|c| i32::try_from(c).ok());
        return (code, out.to_string());
    }
    let code = output
        .strip_prefix("Exit code: ")
        .and_then(|r| r.lines().next())
        .and_then(|n| n.trim().parse().ok());
    let body = match output.split_once("Output:\n") {
        Some((_, body)) if code.is_some() => body.to_string(),
        _ => output.to_string(),
    };
    (code, body)
}

fn content_text(content: Option<&Value>) -> String {
    content
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| str_of(c, "text"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl CodexRolloutParser {
    fn response_item(&mut self, line_no: u64, line: &[u8], p: &Value, out: &mut Vec<Draft>) {
        let ptype = str_of(p, "type").unwrap_or("");
        match ptype {
            "message" => {
                let text = Payload::Text(content_text(p.get("content")));
                match str_of(p, "role") {
                    Some("user") => out.push(Draft::new(StepKind::UserMessage { text })),
                    Some("assistant") => out.push(Draft::new(StepKind::AgentMessage { text })),
                    role => out.push(raw(
                        line_no,
                        format!("codex {} message", role.unwrap_or("unknown-role")),
                        line_text(line),
                    )),
                }
            }
            "reasoning" => {
                let mut text = content_text(p.get("summary"));
                if text.is_empty() {
                    text = content_text(p.get("content"));
                }
                if text.is_empty() {
                    text = "[reasoning not shown]".into();
                }
                out.push(Draft::new(StepKind::Thinking {
                    text: Payload::Text(text),
                }));
            }
            "function_call" | "custom_tool_call" | "local_shell_call" => {
                let call_id = str_of(p, "call_id")
                    .or_else(|| str_of(p, "id"))
                    .map(String::from);
                let name = str_of(p, "name")
                    .unwrap_or(if ptype == "local_shell_call" {
                        "local_shell"
                    } else {
                        "?"
                    })
                    .to_string();
                let input = p
                    .get("arguments")
                    .or_else(|| p.get("input"))
                    .or_else(|| p.get("action"))
                    .cloned()
                    .unwrap_or(Value::Null);
                if SHELL_TOOLS.contains(&name.as_str())
                    && let Some(id) = &call_id
                {
                    // `arguments` is JSON text inside the JSON line.
                    let args = match &input {
                        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
                        other => other.clone(),
                    };
                    if let Some(argv) = shell_argv(&args) {
                        let bytes = argv.iter().map(String::len).sum();
                        self.shell_calls.insert(id.clone(), argv, bytes);
                    }
                }
                out.push(Draft::new(StepKind::ToolCall {
                    call_id,
                    name,
                    input: Payload::Text(json_text(&input)),
                }));
            }
            "function_call_output" | "custom_tool_call_output" => {
                let call_id = str_of(p, "call_id").map(String::from);
                let output = match p.get("output") {
                    Some(Value::Object(o)) => o
                        .get("content")
                        .map(json_text)
                        .unwrap_or_else(|| json_text(&Value::Object(o.clone()))),
                    Some(v) => json_text(v),
                    None => String::new(),
                };
                let argv = call_id.as_ref().and_then(|id| self.shell_calls.remove(id));
                let (code, body) = shell_output(&output);
                out.push(Draft::new(StepKind::ToolResult {
                    call_id: call_id.clone(),
                    output: Payload::Text(output.clone()),
                    is_error: code.is_some_and(|c| c != 0),
                }));
                if let Some(argv) = argv {
                    out.push(
                        Draft::new(StepKind::Command {
                            argv,
                            exit_code: code,
                            output: Payload::Text(body),
                        })
                        .answering(call_id),
                    );
                }
            }
            other => out.push(raw(
                line_no,
                format!("codex response_item/{other}"),
                line_text(line),
            )),
        }
    }

    fn event(&mut self, line_no: u64, line: &[u8], p: &Value, out: &mut Vec<Draft>) {
        match str_of(p, "type").unwrap_or("") {
            "token_count" => {
                let info = p.get("info").filter(|i| i.is_object());
                let total = info.and_then(|i| i.get("total_token_usage")).cloned();
                // Codex repeats a token_count with the same totals: count each once.
                let fresh = total.is_some() && total != self.last_total;
                match info.and_then(|i| i.get("last_token_usage")) {
                    Some(u) if fresh => {
                        self.last_total = total;
                        let cached = u64_of(u, "cached_input_tokens");
                        out.push(Draft::new(StepKind::Lifecycle {
                            event: Lifecycle::Usage(Usage {
                                input_tokens: u64_of(u, "input_tokens").saturating_sub(cached),
                                output_tokens: u64_of(u, "output_tokens"),
                                cache_read_tokens: cached,
                                turns: None,
                                ..Usage::default()
                            }),
                        }));
                    }
                    _ => out.push(raw(
                        line_no,
                        "codex token_count without new usage",
                        line_text(line),
                    )),
                }
            }
            "error" | "stream_error" => out.push(Draft::new(StepKind::Error {
                message: Payload::Text(
                    str_of(p, "message").map_or_else(|| line_text(line), String::from),
                ),
            })),
            other => out.push(raw(
                line_no,
                format!("codex event_msg/{other}"),
                line_text(line),
            )),
        }
    }
}

impl TraceParser for CodexRolloutParser {
    fn feed(&mut self, line_no: u64, line: &[u8], out: &mut Vec<Draft>) {
        let v = match parse_line(line_no, line) {
            Ok(v) => v,
            Err(d) => return out.push(*d),
        };
        let ts = ts_of(&v, "timestamp");
        let start = out.len();
        let empty = Value::Null;
        let p = v.get("payload").unwrap_or(&empty);
        match str_of(&v, "type").unwrap_or("") {
            "session_meta" => out.push(Draft::new(StepKind::Lifecycle {
                event: Lifecycle::Started {
                    model: str_of(p, "model").map(String::from),
                    session: str_of(p, "id").map(String::from),
                    cwd: str_of(p, "cwd").map(String::from),
                },
            })),
            "response_item" => self.response_item(line_no, line, p, out),
            "event_msg" => self.event(line_no, line, p, out),
            "" => out.push(raw(
                line_no,
                problem(line_no, "codex line without `type`"),
                line_text(line),
            )),
            other => out.push(raw(line_no, format!("codex {other}"), line_text(line))),
        }
        for d in &mut out[start..] {
            d.ts = d.ts.or(ts);
        }
    }

    fn finish(&mut self, _out: &mut Vec<Draft>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_output_forms() {
        assert_eq!(
            shell_output("Exit code: 0\nWall time: 1s\nOutput:\nfile1\nfile2"),
            (Some(0), "file1\nfile2".into())
        );
        assert_eq!(
            shell_output(r#"{"output":"boom","metadata":{"exit_code":2}}"#),
            (Some(2), "boom".into())
        );
        assert_eq!(shell_output("plain"), (None, "plain".into()));
    }
}

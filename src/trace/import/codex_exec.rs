//! `codex exec --json` events.
//!
//! Mapping: `thread.started` → Started; `turn.completed{usage}` → Usage (one turn);
//! `turn.failed` and `error` → Error; `item.completed` by item type: `agent_message` →
//! AgentMessage, `reasoning` → Thinking, `command_execution` → Command, `file_change` →
//! one FileEdit per change (codex reports no diff: the patch is a header naming the kind of
//! change), `mcp_tool_call` → ToolCall + ToolResult, `web_search` → ToolCall, `todo_list` →
//! Decision (the plan as a checklist), `error` → Error. `turn.started`, `item.started` and
//! `item.updated` are lifecycle notes (the completed item follows with the same data; the
//! note keeps when it began). An MCP tool's result is its text, not the JSON wrapper.

use serde_json::Value;

use super::{
    Draft, MAX_ITEMS_PER_LINE, TraceParser, json_text, line_text, note, parse_line, problem, raw,
    split_words, str_of, too_many_items, u64_of,
};
use crate::model::{Lifecycle, Payload, StepKind, Usage};

#[derive(Default)]
pub struct CodexExecParser;

fn text(s: impl Into<String>) -> Payload {
    Payload::Text(s.into())
}

/// An MCP result as the model read it: its text blocks, joined; anything else (images,
/// structured content alone) as JSON.
fn mcp_result_text(r: &Value) -> String {
    let blocks = r.get("content").and_then(Value::as_array);
    let texts: Vec<&str> = blocks
        .into_iter()
        .flatten()
        .filter_map(|b| {
            (str_of(b, "type") == Some("text"))
                .then(|| str_of(b, "text"))
                .flatten()
        })
        .collect();
    if texts.is_empty() || blocks.is_some_and(|b| b.len() != texts.len()) {
        json_text(r)
    } else {
        texts.join("\n")
    }
}

/// What an item is, in a few words, for the note of its start.
fn item_summary(item: &Value) -> String {
    let ty = str_of(item, "type")
        .or_else(|| str_of(item, "item_type"))
        .unwrap_or("?");
    let what = match ty {
        "command_execution" => item.get("command").map(json_text),
        "mcp_tool_call" => Some(format!(
            "{}/{}",
            str_of(item, "server").unwrap_or("mcp"),
            str_of(item, "tool").unwrap_or("?")
        )),
        "file_change" => item.get("changes").and_then(Value::as_array).map(|c| {
            c.iter()
                .filter_map(|c| str_of(c, "path"))
                .collect::<Vec<_>>()
                .join(", ")
        }),
        _ => None,
    };
    match what {
        Some(w) => format!("{ty} {w}"),
        None => ty.to_string(),
    }
}

fn item_completed(line_no: u64, line: &[u8], item: &Value, out: &mut Vec<Draft>) {
    // Older versions name the field `item_type`.
    let ty = str_of(item, "type")
        .or_else(|| str_of(item, "item_type"))
        .unwrap_or("");
    let id = str_of(item, "id").map(String::from);
    match ty {
        "agent_message" => out.push(Draft::new(StepKind::AgentMessage {
            text: text(str_of(item, "text").unwrap_or("")),
        })),
        "reasoning" => out.push(Draft::new(StepKind::Thinking {
            text: text(str_of(item, "text").unwrap_or("")),
        })),
        "command_execution" => {
            let argv = match item.get("command") {
                Some(Value::Array(a)) => a.iter().map(json_text).collect(),
                Some(Value::String(s)) => split_words(s),
                _ => Vec::new(),
            };
            let exit_code = item
                .get("exit_code")
                .and_then(Value::as_i64)
                .and_then(|c| i32::try_from(c).ok());
            out.push(Draft::new(StepKind::Command {
                argv,
                exit_code,
                output: text(str_of(item, "aggregated_output").unwrap_or("")),
            }));
        }
        "file_change" => {
            let changes = item
                .get("changes")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            for c in changes.iter().take(MAX_ITEMS_PER_LINE) {
                let path = str_of(c, "path").unwrap_or("?").to_string();
                let kind = str_of(c, "kind").unwrap_or("update");
                // A header only, so replay knows a deletion; codex exec gives no content.
                let patch = match kind {
                    "add" => format!("--- /dev/null\n+++ b/{path}\n"),
                    "delete" => format!("--- a/{path}\n+++ /dev/null\n"),
                    _ => format!("--- a/{path}\n+++ b/{path}\n"),
                };
                out.push(Draft::new(StepKind::FileEdit {
                    path,
                    before: None,
                    after: None,
                    patch: text(patch),
                }));
            }
            if changes.len() > MAX_ITEMS_PER_LINE {
                out.push(too_many_items(line_no, line, changes.len(), "file changes"));
            }
            if changes.is_empty() {
                out.push(raw(
                    line_no,
                    "codex-exec file_change without changes",
                    line_text(line),
                ));
            }
        }
        "mcp_tool_call" => {
            let name = format!(
                "{}/{}",
                str_of(item, "server").unwrap_or("mcp"),
                str_of(item, "tool").unwrap_or("?")
            );
            out.push(Draft::new(StepKind::ToolCall {
                call_id: id.clone(),
                name,
                input: text(item.get("arguments").map(json_text).unwrap_or_default()),
            }));
            let error = item.get("error").filter(|e| !e.is_null());
            let failed = error.is_some() || str_of(item, "status") == Some("failed");
            let output = match (error, item.get("result")) {
                (Some(e), _) => str_of(e, "message").map_or_else(|| json_text(e), String::from),
                (None, Some(r)) => mcp_result_text(r),
                (None, None) => String::new(),
            };
            out.push(Draft::new(StepKind::ToolResult {
                call_id: id,
                output: text(output),
                is_error: failed,
            }));
        }
        "web_search" => out.push(Draft::new(StepKind::ToolCall {
            call_id: id,
            name: "web_search".into(),
            input: text(
                serde_json::json!({ "query": str_of(item, "query").unwrap_or("") }).to_string(),
            ),
        })),
        "todo_list" => {
            let list = item
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|t| {
                    let done = t.get("completed").and_then(Value::as_bool) == Some(true);
                    format!(
                        "[{}] {}",
                        if done { "x" } else { " " },
                        str_of(t, "text").unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            out.push(Draft::new(StepKind::Decision {
                text: text(format!("Plan:\n{list}")),
            }));
        }
        "error" => out.push(Draft::new(StepKind::Error {
            message: text(str_of(item, "message").unwrap_or("")),
        })),
        other => out.push(raw(
            line_no,
            format!("codex-exec item `{other}`"),
            line_text(line),
        )),
    }
}

impl TraceParser for CodexExecParser {
    fn feed(&mut self, line_no: u64, line: &[u8], out: &mut Vec<Draft>) {
        let v = match parse_line(line_no, line) {
            Ok(v) => v,
            Err(d) => return out.push(*d),
        };
        let error_message = |e: Option<&Value>| match e {
            Some(Value::String(s)) => s.clone(),
            Some(e) => str_of(e, "message").map_or_else(|| json_text(e), String::from),
            None => "unknown error".to_string(),
        };
        match str_of(&v, "type").unwrap_or("") {
            "thread.started" => out.push(Draft::new(StepKind::Lifecycle {
                event: Lifecycle::Started {
                    model: None,
                    session: str_of(&v, "thread_id").map(String::from),
                    cwd: None,
                },
            })),
            "turn.completed" => {
                let u = v.get("usage").cloned().unwrap_or(Value::Null);
                let cached = u64_of(&u, "cached_input_tokens");
                out.push(Draft::new(StepKind::Lifecycle {
                    event: Lifecycle::Usage(Usage {
                        input_tokens: u64_of(&u, "input_tokens").saturating_sub(cached),
                        output_tokens: u64_of(&u, "output_tokens"),
                        cache_read_tokens: cached,
                        turns: Some(1),
                        ..Usage::default()
                    }),
                }));
            }
            "turn.failed" => out.push(Draft::new(StepKind::Error {
                message: text(error_message(v.get("error"))),
            })),
            "error" => out.push(Draft::new(StepKind::Error {
                message: text(
                    str_of(&v, "message")
                        .map_or_else(|| error_message(v.get("error")), String::from),
                ),
            })),
            "turn.started" => out.push(note("turn.started", "")),
            "item.started" | "item.updated" => {
                let what = str_of(&v, "type").unwrap_or("");
                let summary = v.get("item").map(item_summary).unwrap_or_default();
                out.push(note(what, summary));
            }
            "item.completed" => match v.get("item") {
                Some(item) => item_completed(line_no, line, item, out),
                None => out.push(raw(
                    line_no,
                    problem(line_no, "item.completed without `item`"),
                    line_text(line),
                )),
            },
            "" => out.push(raw(
                line_no,
                problem(line_no, "codex-exec line without `type`"),
                line_text(line),
            )),
            other => out.push(raw(line_no, format!("codex-exec {other}"), line_text(line))),
        }
    }

    fn finish(&mut self, _out: &mut Vec<Draft>) {}
}

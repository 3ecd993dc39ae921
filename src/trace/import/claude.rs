//! Message lines shared by Claude Code transcripts and `claude -p --output-format
//! stream-json`: user/assistant messages, their content blocks, tool calls paired with their
//! results, and the file edits and commands those results imply.

use std::collections::HashSet;

use jiff::Timestamp;
use serde_json::Value;

use super::{
    Draft, MAX_ITEMS_PER_LINE, PendingCalls, json_text, line_text, problem, raw, str_of,
    too_many_items, u64_of,
};
use crate::model::{Lifecycle, Payload, StepKind, Usage};
use crate::trace::patch;

#[derive(Default)]
pub(crate) struct ClaudeState {
    /// Tool calls seen, by id: the tool's name and, for the tools whose results imply a
    /// FileEdit or a Command, their input.
    calls: PendingCalls<(String, Value)>,
    /// Usage already counted (see `usage_key`).
    usage_seen: HashSet<String>,
    /// Emit a Usage step per assistant message (transcripts). Stream-json leaves it off:
    /// its `result` line carries the session total, and counting both would double it.
    pub emit_message_usage: bool,
}

/// The text of a tool_result's `content`: a string, or text blocks (images noted).
fn result_text(content: Option<&Value>) -> String {
    match content {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .map(|b| match str_of(b, "type") {
                Some("text") => str_of(b, "text").unwrap_or("").to_string(),
                // What a tool search found: the tools it made callable.
                Some("tool_reference") => {
                    format!("[tool_reference] {}", str_of(b, "tool_name").unwrap_or("?"))
                }
                Some(other) => format!("[{other}]"),
                None => json_text(b),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Some(other) => other.to_string(),
    }
}

impl ClaudeState {
    /// A `user` or `assistant` line (`v` is the whole line, `line` its bytes). Always emits
    /// at least one draft: a line with nothing usable is kept raw.
    pub fn message(
        &mut self,
        line_no: u64,
        line: &[u8],
        v: &Value,
        ts: Option<Timestamp>,
        agent: Option<String>,
        out: &mut Vec<Draft>,
    ) {
        let start = out.len();
        let mk = |kind: StepKind| Draft::new(kind).at(ts).by(agent.clone());
        let Some(msg) = v.get("message") else {
            out.push(raw(
                line_no,
                problem(line_no, "message line without `message`"),
                line_text(line),
            ));
            return;
        };
        let ty = str_of(v, "type").unwrap_or("");
        let assistant = str_of(msg, "role").unwrap_or(ty) == "assistant";
        let api_error = v.get("isApiErrorMessage").and_then(Value::as_bool) == Some(true);
        let sidecar = v.get("toolUseResult").or_else(|| v.get("tool_use_result"));
        match msg.get("content") {
            Some(Value::String(s)) => {
                let text = Payload::Text(s.clone());
                out.push(mk(if api_error {
                    StepKind::Error { message: text }
                } else if assistant {
                    StepKind::AgentMessage { text }
                } else {
                    StepKind::UserMessage { text }
                }));
            }
            Some(Value::Array(blocks)) => {
                let n_results = blocks
                    .iter()
                    .filter(|b| str_of(b, "type") == Some("tool_result"))
                    .count();
                for b in blocks.iter().take(MAX_ITEMS_PER_LINE) {
                    self.block(
                        line_no,
                        b,
                        assistant,
                        api_error,
                        (n_results == 1).then_some(sidecar).flatten(),
                        line.len(),
                        &mk,
                        out,
                    );
                }
                if blocks.len() > MAX_ITEMS_PER_LINE {
                    out.push(too_many_items(
                        line_no,
                        line,
                        blocks.len(),
                        "content blocks",
                    ));
                }
            }
            _ => {}
        }
        if assistant
            && self.emit_message_usage
            && let Some(u) = msg.get("usage").filter(|u| u.is_object())
        {
            // A message split over several lines repeats the same usage on each: count it
            // once per message. The input side identifies it even where ids are
            // placeholders (`<MESSAGE_ID>` in normalized fixtures).
            let key = format!(
                "{}/{}/{}/{}",
                str_of(msg, "id").unwrap_or(""),
                u64_of(u, "input_tokens"),
                u64_of(u, "cache_read_input_tokens"),
                u64_of(u, "cache_creation_input_tokens")
            );
            if self.usage_seen.insert(key) {
                out.push(mk(StepKind::Lifecycle {
                    event: Lifecycle::Usage(usage_of(u)),
                }));
            }
        }
        if out.len() == start {
            out.push(raw(
                line_no,
                problem(line_no, "message without content"),
                line_text(line),
            ));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn block(
        &mut self,
        line_no: u64,
        b: &Value,
        assistant: bool,
        api_error: bool,
        sidecar: Option<&Value>,
        line_len: usize,
        mk: &dyn Fn(StepKind) -> Draft,
        out: &mut Vec<Draft>,
    ) {
        let text_of = |k: &str| Payload::Text(str_of(b, k).unwrap_or("").to_string());
        match str_of(b, "type") {
            Some("text") if api_error => out.push(mk(StepKind::Error {
                message: text_of("text"),
            })),
            Some("text") if assistant => out.push(mk(StepKind::AgentMessage {
                text: text_of("text"),
            })),
            Some("text") => out.push(mk(StepKind::UserMessage {
                text: text_of("text"),
            })),
            Some("thinking") => out.push(mk(StepKind::Thinking {
                text: text_of("thinking"),
            })),
            Some("redacted_thinking") => out.push(mk(StepKind::Thinking {
                text: "[redacted thinking]".into(),
            })),
            Some("tool_use" | "server_tool_use" | "mcp_tool_use") => {
                let id = str_of(b, "id").map(String::from);
                let name = str_of(b, "name").unwrap_or("?").to_string();
                let input = b.get("input").unwrap_or(&Value::Null);
                let text = json_text(input);
                if let Some(id) = &id {
                    // Only these tools' results imply more than a ToolResult.
                    let (kept, bytes) = match name.as_str() {
                        "Write" | "Edit" | "MultiEdit" | "Bash" => (input.clone(), text.len()),
                        _ => (Value::Null, 0),
                    };
                    self.calls.insert(id.clone(), (name.clone(), kept), bytes);
                }
                out.push(mk(StepKind::ToolCall {
                    call_id: id,
                    name,
                    input: Payload::Text(text),
                }));
            }
            Some("tool_result") => {
                let call_id = str_of(b, "tool_use_id").map(String::from);
                let output = result_text(b.get("content"));
                let is_error = b.get("is_error").and_then(Value::as_bool) == Some(true);
                let call = call_id.as_ref().and_then(|id| self.calls.get(id));
                out.push(mk(StepKind::ToolResult {
                    call_id: call_id.clone(),
                    output: Payload::Text(output.clone()),
                    is_error,
                }));
                if let Some((name, input)) = call {
                    let derived = match name.as_str() {
                        "Write" | "Edit" | "MultiEdit" if !is_error => {
                            file_edit(name, input, sidecar, line_len)
                        }
                        "Bash" => command(input, sidecar, &output, is_error),
                        _ => None,
                    };
                    if let Some(kind) = derived {
                        out.push(mk(kind).answering(call_id));
                    }
                }
            }
            // An image or a block type newer than this importer: keep it whole.
            Some(other) => out.push(raw(
                line_no,
                format!("claude content block `{other}`"),
                json_text(b),
            )),
            None => out.push(raw(
                line_no,
                problem(line_no, "content block without `type`"),
                json_text(b),
            )),
        }
    }
}

pub(crate) fn usage_of(u: &Value) -> Usage {
    Usage {
        input_tokens: u64_of(u, "input_tokens"),
        output_tokens: u64_of(u, "output_tokens"),
        cache_read_tokens: u64_of(u, "cache_read_input_tokens"),
        // Priced apart from plain input (at 1.25x): kept apart.
        cache_write_tokens: u64_of(u, "cache_creation_input_tokens"),
        ..Usage::default()
    }
}

/// Bytes of file text an Edit or MultiEdit may scan while its result is rebuilt: a
/// thousand edits of a 16 MiB file would otherwise take minutes.
const MAX_REBUILD_SCAN_BYTES: usize = 256 << 20;

/// The file after an edit, or None when `old` is not in it, or when the result would be
/// larger than `max_len`: replacing every `a` of a file by a longer text, edit after edit,
/// grows it exponentially, so a 2 KB line could otherwise ask for terabytes.
fn apply_edit(text: &str, old: &str, new: &str, all: bool, max_len: usize) -> Option<String> {
    if old.is_empty() || !text.contains(old) {
        return None;
    }
    let count = if all { text.matches(old).count() } else { 1 };
    let len = (text.len() - count * old.len()).checked_add(count.checked_mul(new.len())?)?;
    if len > max_len {
        return None;
    }
    Some(if all {
        text.replace(old, new)
    } else {
        text.replacen(old, new, 1)
    })
}

/// The file after a series of edits, within the bounds above (None when it cannot tell).
fn apply_edits(before: &str, edits: &[(String, String, bool)], line_len: usize) -> Option<String> {
    // What an edit can legitimately add is bounded by the line it was read from.
    let max_len = before.len().saturating_add(line_len);
    let mut scanned = 0usize;
    edits
        .iter()
        .try_fold(before.to_string(), |text, (old, new, all)| {
            // Each edit reads the text up to three times (find, count, replace).
            scanned = scanned.saturating_add(3 * text.len());
            if scanned > MAX_REBUILD_SCAN_BYTES {
                return None;
            }
            apply_edit(&text, old, new, *all, max_len)
        })
}

/// The FileEdit a successful Write/Edit/MultiEdit made, from the result's sidecar when the
/// transcript has one (whole before/after), else from the call's input. `line_len` is the
/// length of the result's line, which bounds what the edit can have added.
fn file_edit(
    name: &str,
    input: &Value,
    sidecar: Option<&Value>,
    line_len: usize,
) -> Option<StepKind> {
    let side = sidecar.filter(|s| s.get("filePath").is_some());
    let path = side
        .and_then(|s| str_of(s, "filePath"))
        .or_else(|| str_of(input, "file_path"))?
        .to_string();
    let get = |k_side: &str, k_in: &str| {
        side.and_then(|s| str_of(s, k_side))
            .or_else(|| str_of(input, k_in))
            .map(String::from)
    };
    let edits: Vec<(String, String, bool)> = match name {
        "Edit" => vec![(
            get("oldString", "old_string").unwrap_or_default(),
            get("newString", "new_string").unwrap_or_default(),
            side.and_then(|s| s.get("replaceAll"))
                .or_else(|| input.get("replace_all"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
        )],
        "MultiEdit" => side
            .and_then(|s| s.get("edits"))
            .or_else(|| input.get("edits"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .take(MAX_ITEMS_PER_LINE + 1)
            .map(|e| {
                (
                    str_of(e, "old_string").unwrap_or("").to_string(),
                    str_of(e, "new_string").unwrap_or("").to_string(),
                    e.get("replace_all")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    // More edits than a line's items: the file after them is not rebuilt, and the patch
    // shows the first ones (the call's input, a step of its own, holds them all).
    let all_edits = edits.len() <= MAX_ITEMS_PER_LINE;
    let edits = &edits[..edits.len().min(MAX_ITEMS_PER_LINE)];
    let (before, after) = match side {
        Some(s) => {
            let before = str_of(s, "originalFile").map(String::from);
            let after = if name == "Write" {
                get("content", "content")
            } else {
                before
                    .as_deref()
                    .filter(|_| all_edits)
                    .and_then(|b| apply_edits(b, edits, line_len))
            };
            (before, after)
        }
        // No sidecar (stream-json): a Write still tells the whole new content.
        None if name == "Write" => (None, get("content", "content")),
        None => (None, None),
    };
    let patch = if after.is_some() {
        patch::make(&path, before.as_deref(), after.as_deref())
    } else if let Some(hunks) = side
        .and_then(|s| s.get("structuredPatch"))
        .and_then(Value::as_array)
        .filter(|h| !h.is_empty())
    {
        patch::render_structured(&path, hunks)
    } else {
        // Only the replaced snippets are known: a diff of each, under one header (the
        // path once, however many edits), which replay can still apply by content.
        let mut p = patch::header(&path, true, true);
        for (o, n, _) in edits {
            p.push_str(&patch::hunks(o, n));
        }
        p
    };
    Some(StepKind::FileEdit {
        path,
        before: before.map(Payload::Text),
        after: after.map(Payload::Text),
        patch: Payload::Text(patch),
    })
}

/// The Command a Bash call ran. A call that was rejected (an error without the sidecar's
/// stdout/stderr) never ran, so it makes no Command.
fn command(
    input: &Value,
    sidecar: Option<&Value>,
    result: &str,
    is_error: bool,
) -> Option<StepKind> {
    let cmd = str_of(input, "command")?;
    let ran = sidecar.is_some_and(|s| s.get("stdout").is_some() || s.get("stderr").is_some());
    if is_error && !ran {
        return None;
    }
    let output = match sidecar.filter(|_| ran) {
        Some(s) => {
            let out = str_of(s, "stdout").unwrap_or("");
            let err = str_of(s, "stderr").unwrap_or("");
            match (out.is_empty(), err.is_empty()) {
                (_, true) => out.to_string(),
                (true, false) => err.to_string(),
                (false, false) => format!("{out}\n{err}"),
            }
        }
        None => result.to_string(),
    };
    // Claude Code reports a failing command as `Exit code N` at the top of the result.
    let exit_code = if is_error {
        result
            .trim_start_matches("Error: ")
            .strip_prefix("Exit code ")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    } else {
        None
    };
    Some(StepKind::Command {
        argv: vec!["bash".into(), "-c".into(), cmd.to_string()],
        exit_code,
        output: Payload::Text(output),
    })
}

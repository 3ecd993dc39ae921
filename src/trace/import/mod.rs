//! Line-fed parsers that turn agent output into step drafts. The same parser serves a file
//! import and a live agent's stdout: it sees one line at a time and keeps only the little
//! state it needs to pair tool calls with their results.
//!
//! Contract every parser keeps: each non-blank line yields at least one draft. What a
//! parser does not understand becomes `Raw` with the line number, so nothing is lost.

mod claude;
mod claude_code;
mod claude_stream;
mod codex_exec;
mod codex_rollout;
mod gemini;
mod jsonl;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde_json::Value;

use crate::model::{Payload, StepKind};

/// Lines longer than this are not parsed; they are kept whole as a `Raw` step (the store
/// moves the bytes to a blob).
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Items of one line (content blocks, file changes, edits) a parser makes steps of; a line
/// with more keeps the rest whole in one raw step. Real lines hold a handful; without a cap
/// a 16 MiB line of `{},{},...` would become millions of steps.
pub const MAX_ITEMS_PER_LINE: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    ClaudeCode,
    ClaudeStream,
    Codex,
    CodexExec,
    Jsonl,
    Gemini,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::ClaudeCode,
        Format::ClaudeStream,
        Format::Codex,
        Format::CodexExec,
        Format::Jsonl,
        Format::Gemini,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::ClaudeCode => "claude-code",
            Format::ClaudeStream => "claude-stream",
            Format::Codex => "codex",
            Format::CodexExec => "codex-exec",
            Format::Jsonl => "jsonl",
            Format::Gemini => "gemini",
        }
    }

    /// The agent a run of this format is attributed to when nothing says otherwise.
    pub fn default_agent(self) -> &'static str {
        match self {
            Format::ClaudeCode | Format::ClaudeStream => "claude-code",
            Format::Codex | Format::CodexExec => "codex",
            Format::Jsonl => "imported",
            Format::Gemini => "gemini",
        }
    }

    /// Guess the format from the first lines of a trace (best effort; None when no line is
    /// a JSON object this module recognizes).
    pub fn detect<'a>(first_lines: impl IntoIterator<Item = &'a [u8]>) -> Option<Format> {
        for line in first_lines {
            let Ok(v) = serde_json::from_slice::<Value>(line) else {
                continue;
            };
            let ty = v.get("type").and_then(Value::as_str).unwrap_or("");
            if v.get("payload").is_some()
                && matches!(
                    ty,
                    "session_meta" | "response_item" | "event_msg" | "turn_context" | "compacted"
                )
            {
                return Some(Format::Codex);
            }
            if ty.starts_with("thread.") || ty.starts_with("turn.") || ty.starts_with("item.") {
                return Some(Format::CodexExec);
            }
            // Before Claude's check: Gemini's `init` also carries `session_id`.
            if matches!(ty, "init" | "message" | "tool_use")
                || (ty == "tool_result" && v.get("tool_id").is_some())
                || (ty == "result" && v.get("stats").is_some())
            {
                return Some(Format::Gemini);
            }
            if v.get("session_id").is_some()
                || matches!(ty, "stream_event" | "rate_limit_event")
                || v.get("parent_tool_use_id").is_some()
            {
                return Some(Format::ClaudeStream);
            }
            if v.get("sessionId").is_some()
                || v.get("parentUuid").is_some()
                || matches!(ty, "file-history-snapshot" | "queue-operation" | "summary")
            {
                return Some(Format::ClaudeCode);
            }
            if v.get("seq").is_some() || serde_json::from_value::<StepKind>(v.clone()).is_ok() {
                return Some(Format::Jsonl);
            }
        }
        None
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            format!(
                "unknown trace format `{s}`; use one of: claude-code, claude-stream, codex, codex-exec, jsonl, gemini"
            )
        })
    }
}

/// A step before the builder gives it a run, a sequence number and a parent.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    pub ts: Option<Timestamp>,
    pub agent: Option<String>,
    pub kind: StepKind,
    /// For a step derived from a tool result (a `Command` or `FileEdit`): the call id it
    /// answers, so the builder points its parent at the call. ToolCall/ToolResult carry
    /// their call id in the kind itself.
    pub answers: Option<String>,
}

impl Draft {
    pub fn new(kind: StepKind) -> Draft {
        Draft {
            ts: None,
            agent: None,
            kind,
            answers: None,
        }
    }
    pub fn at(mut self, ts: Option<Timestamp>) -> Draft {
        self.ts = ts;
        self
    }
    pub fn by(mut self, agent: Option<String>) -> Draft {
        self.agent = agent;
        self
    }
    pub fn answering(mut self, call_id: Option<String>) -> Draft {
        self.answers = call_id;
        self
    }
}

/// A streaming parser for one trace format.
pub trait TraceParser: Send {
    /// Parse one line (without its newline). `line_no` counts from 1.
    fn feed(&mut self, line_no: u64, line: &[u8], out: &mut Vec<Draft>);
    /// The input ended: emit whatever is still pending.
    fn finish(&mut self, out: &mut Vec<Draft>);
}

pub fn parser(format: Format) -> Box<dyn TraceParser> {
    match format {
        Format::ClaudeCode => Box::new(claude_code::ClaudeCodeParser::default()),
        Format::ClaudeStream => Box::new(claude_stream::ClaudeStreamParser::default()),
        Format::Codex => Box::new(codex_rollout::CodexRolloutParser::default()),
        Format::CodexExec => Box::new(codex_exec::CodexExecParser),
        Format::Jsonl => Box::new(jsonl::JsonlParser::default()),
        Format::Gemini => Box::new(gemini::GeminiParser::default()),
    }
}

// ---- helpers shared by the parsers ----

/// Bytes of tool-call inputs a parser keeps while it waits for their results.
const MAX_PENDING_CALL_BYTES: usize = 64 << 20;

/// Tool calls waiting for their results, by call id, with what a result needs of them (a
/// Write's content, a command). Bounded: past `MAX_PENDING_CALL_BYTES` the oldest calls
/// are forgotten, so a log of calls that never get results cannot fill the memory; a
/// result that comes after its call was forgotten still becomes a ToolResult, only without
/// the FileEdit or Command the call would have implied.
pub(crate) struct PendingCalls<V> {
    calls: HashMap<String, (V, usize, u64)>,
    /// Call ids oldest first, with the generation they were kept at (an id kept again
    /// leaves its older place here stale).
    order: VecDeque<(String, u64)>,
    bytes: usize,
    generation: u64,
}

impl<V> Default for PendingCalls<V> {
    fn default() -> Self {
        PendingCalls {
            calls: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            generation: 0,
        }
    }
}

impl<V> PendingCalls<V> {
    /// Keep `value` for call `id`; `bytes` is what it holds (its input's text length).
    pub fn insert(&mut self, id: String, value: V, bytes: usize) {
        // An entry costs its id and its table slot as well as its value.
        let cost = bytes + id.len() + 64;
        self.generation += 1;
        self.order.push_back((id.clone(), self.generation));
        if let Some((_, old, _)) = self.calls.insert(id, (value, cost, self.generation)) {
            self.bytes -= old;
        }
        self.bytes += cost;
        if self.order.len() > 2 * self.calls.len() + 1024 {
            // Ids kept again and again leave stale places behind: drop them.
            let calls = &self.calls;
            self.order
                .retain(|(id, g)| calls.get(id).is_some_and(|(_, _, cur)| cur == g));
        }
        while self.bytes > MAX_PENDING_CALL_BYTES {
            let Some((id, generation)) = self.order.pop_front() else {
                break;
            };
            if self
                .calls
                .get(&id)
                .is_some_and(|(_, _, g)| *g == generation)
            {
                self.remove(&id);
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<&V> {
        self.calls.get(id).map(|(v, _, _)| v)
    }

    pub fn remove(&mut self, id: &str) -> Option<V> {
        let (v, cost, _) = self.calls.remove(id)?;
        self.bytes -= cost;
        Some(v)
    }
}

/// The raw step that keeps a line whose items (content blocks, file changes) were more
/// than `MAX_ITEMS_PER_LINE`: the whole line, so none of them is lost.
pub(crate) fn too_many_items(line_no: u64, line: &[u8], items: usize, what: &str) -> Draft {
    raw(
        line_no,
        problem(
            line_no,
            format!(
                "{items} {what} in one line; the first {MAX_ITEMS_PER_LINE} became steps, and the whole line is kept here"
            ),
        ),
        line_text(line),
    )
}

/// The reason of a Raw step that reports a problem always starts with `line N:`, so the
/// import report can list problems with their line numbers.
pub fn problem(line_no: u64, msg: impl fmt::Display) -> String {
    format!("line {line_no}: {msg}")
}

/// Whether a Raw reason reports a problem (see [`problem`]).
pub fn is_problem(reason: &str) -> bool {
    reason.starts_with("line ")
}

/// A bookkeeping line an agent's CLI writes beside the conversation, typed as a lifecycle
/// note; `text` is what it says (the whole line where nothing shorter says it).
pub(crate) fn note(what: impl Into<String>, text: impl Into<String>) -> Draft {
    Draft::new(StepKind::Lifecycle {
        event: crate::model::Lifecycle::Note {
            what: what.into(),
            text: Payload::Text(text.into()),
        },
    })
}

pub(crate) fn raw(line_no: u64, reason: impl Into<String>, data: impl Into<String>) -> Draft {
    Draft::new(StepKind::Raw {
        line: Some(line_no),
        reason: reason.into(),
        data: Payload::Text(data.into()),
    })
}

/// Decode a line as UTF-8 JSON, or explain (as a Raw draft) why it is kept raw.
pub(crate) fn parse_line(line_no: u64, line: &[u8]) -> Result<Value, Box<Draft>> {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(e) => {
            return Err(Box::new(raw(
                line_no,
                problem(
                    line_no,
                    format!(
                        "invalid UTF-8 at byte {}; kept as lossy text (U+FFFD marks the bad bytes)",
                        e.valid_up_to()
                    ),
                ),
                String::from_utf8_lossy(line).into_owned(),
            )));
        }
    };
    if line.len() > MAX_LINE_BYTES {
        return Err(Box::new(raw(
            line_no,
            problem(
                line_no,
                format!(
                    "line of {} bytes is over the {} MiB parse limit; kept unparsed",
                    line.len(),
                    MAX_LINE_BYTES >> 20
                ),
            ),
            text.to_string(),
        )));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(Box::new(raw(
            line_no,
            problem(line_no, "not a JSON object"),
            text.to_string(),
        ))),
        Err(e) => Err(Box::new(raw(
            line_no,
            problem(line_no, format!("malformed JSON: {e}")),
            text.to_string(),
        ))),
    }
}

pub(crate) fn ts_of(v: &Value, key: &str) -> Option<Timestamp> {
    v.get(key)?.as_str()?.parse().ok()
}

pub(crate) fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)?.as_str()
}

pub(crate) fn u64_of(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// JSON text of a value (the way tool inputs are kept).
pub(crate) fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The line as text for a Raw step (it parsed as JSON, so it is valid UTF-8).
pub(crate) fn line_text(line: &[u8]) -> String {
    String::from_utf8_lossy(line).into_owned()
}

/// Split a shell command string into words: whitespace separated, honouring simple single
/// and double quotes. Good enough to show `bash -lc 'ls -la'` as argv; not a shell parser.
pub(crate) fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    in_word = true;
                }
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_calls_forget_the_oldest_past_their_budget() {
        let mut p = PendingCalls::default();
        let big = MAX_PENDING_CALL_BYTES / 3;
        for id in ["a", "b", "c"] {
            p.insert(id.to_string(), id, big);
        }
        assert_eq!(p.get("a"), None, "the oldest went");
        assert_eq!((p.get("b"), p.get("c")), (Some(&"b"), Some(&"c")));
        // Kept again, a call is young again.
        p.insert("b".into(), "b2", big);
        p.insert("d".into(), "d", big);
        assert_eq!(
            (p.get("b"), p.get("c"), p.get("d")),
            (Some(&"b2"), None, Some(&"d"))
        );
        assert_eq!(p.remove("b"), Some("b2"));
        // One id kept a million times holds one place.
        for _ in 0..1_000_000 {
            p.insert("x".into(), "x", 1);
        }
        assert!(p.order.len() < 3000, "{}", p.order.len());
    }

    #[test]
    fn format_names_round_trip_and_unknown_is_helpful() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>().unwrap(), f);
        }
        assert!(
            "cursor"
                .parse::<Format>()
                .unwrap_err()
                .contains("use one of")
        );
    }

    #[test]
    fn detect_each_format() {
        let cases: [(&str, Format); 6] = [
            (
                r#"{"type":"session_meta","timestamp":"x","payload":{}}"#,
                Format::Codex,
            ),
            (
                r#"{"type":"thread.started","thread_id":"t"}"#,
                Format::CodexExec,
            ),
            (
                r#"{"type":"system","subtype":"init","session_id":"s"}"#,
                Format::ClaudeStream,
            ),
            (
                r#"{"type":"file-history-snapshot","messageId":"m"}"#,
                Format::ClaudeCode,
            ),
            (r#"{"type":"agent_message","text":"hi"}"#, Format::Jsonl),
            (
                r#"{"type":"init","session_id":"s","model":"gemini-2.5-pro"}"#,
                Format::Gemini,
            ),
        ];
        for (line, f) in cases {
            assert_eq!(
                Format::detect([b"not json".as_slice(), line.as_bytes()]),
                Some(f),
                "{line}"
            );
        }
        assert_eq!(Format::detect([b"{}".as_slice()]), None);
    }

    #[test]
    fn split_words_honours_quotes() {
        assert_eq!(split_words("bash -lc 'ls -la'"), ["bash", "-lc", "ls -la"]);
        assert_eq!(
            split_words(r#"echo "a \"b\"" c\ d"#),
            ["echo", "a \"b\"", "c d"]
        );
        assert!(split_words("   ").is_empty());
    }

    #[test]
    fn bad_lines_become_raw_with_line_numbers() {
        let d = *parse_line(7, b"{not json").unwrap_err();
        let StepKind::Raw { line, reason, .. } = d.kind else {
            panic!()
        };
        assert_eq!(line, Some(7));
        assert!(reason.starts_with("line 7: malformed JSON"), "{reason}");
        let d = *parse_line(3, b"{\"a\":\"\xff\"}").unwrap_err();
        let StepKind::Raw { reason, data, .. } = d.kind else {
            panic!()
        };
        assert!(
            reason.contains("line 3") && reason.contains("invalid UTF-8"),
            "{reason}"
        );
        assert!(data.preview().contains('\u{FFFD}'));
    }
}

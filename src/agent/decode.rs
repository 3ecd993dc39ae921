//! Turning a live agent's output into step drafts.
//!
//! An [`OutputDecoder`] takes bytes as they arrive (any chunking: half lines, many lines),
//! splits them into lines, and hands each complete line to the format's parser — the same
//! line-fed [`TraceParser`]s `trace import` uses, so a live run and an imported log of the
//! same agent give the same steps.
//!
//! - `claude-stream` (Claude Code and the fixture agent), `codex-exec`, `gemini`: stdout is
//!   JSON lines for the format's parser.
//! - `plain`: each non-blank stdout line is an `AgentMessage`.
//! - stderr, for every kind: each non-blank line is a `Raw` step with reason `stderr`, or an
//!   `Error` step when it looks like one: it starts (after ANSI codes and spaces) with
//!   `error`, `fatal`, `panic` or `traceback` (any case), or says `panicked at`. Everything
//!   else on stderr (progress bars, warnings, debug logs) is Raw, because CLIs print a lot of
//!   harmless chatter there and an Error is what a reviewer jumps to.
//!
//! Robustness (invariant 6): non-UTF-8 bytes are decoded lossily (U+FFFD); ANSI escape
//! codes are kept in the text (the TUI renders them) but never break JSON parsing: escape
//! sequences before or after a JSON object are dropped for parsing only, and a raw ESC byte
//! inside it is read as `\u001b`. A line longer than [`MAX_LINE_BYTES`] with no newline in
//! sight is cut into Raw pieces so memory stays bounded. Nothing here panics on input.

use crate::model::{Payload, StepKind};
use crate::trace::import::{Draft, Format, MAX_LINE_BYTES, TraceParser, parser};

/// Which decoder reads an agent's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecoderKind {
    /// `claude -p --output-format stream-json --verbose`, and the fixture agent.
    ClaudeStream,
    /// `codex exec --json`.
    CodexExec,
    /// `gemini --output-format stream-json`.
    Gemini,
    /// Any command: lines of text.
    Plain,
}

impl DecoderKind {
    /// The trace format of its stdout (None: plain text).
    pub fn format(self) -> Option<Format> {
        match self {
            DecoderKind::ClaudeStream => Some(Format::ClaudeStream),
            DecoderKind::CodexExec => Some(Format::CodexExec),
            DecoderKind::Gemini => Some(Format::Gemini),
            DecoderKind::Plain => None,
        }
    }
}

/// Bytes of one stream not yet ending in a newline, and the number of the next line.
#[derive(Default)]
struct LineBuf {
    pending: Vec<u8>,
    /// Lines completed so far (the next line's number is this + 1).
    lines: u64,
}

impl LineBuf {
    /// Append `bytes`; call `line(line_no, bytes)` for each complete line. A line that grows
    /// past the limit before its newline arrives is handed over in pieces (`cut = true`).
    fn feed(&mut self, mut bytes: &[u8], line: &mut dyn FnMut(u64, &[u8], bool)) {
        while !bytes.is_empty() {
            match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.pending.extend_from_slice(&bytes[..i]);
                    bytes = &bytes[i + 1..];
                    self.emit(line, false);
                }
                None => {
                    self.pending.extend_from_slice(bytes);
                    bytes = &[];
                    if self.pending.len() > MAX_LINE_BYTES {
                        self.emit(line, true);
                    }
                }
            }
        }
    }

    fn emit(&mut self, line: &mut dyn FnMut(u64, &[u8], bool), cut: bool) {
        self.lines += 1;
        let mut l = std::mem::take(&mut self.pending);
        if !cut && l.last() == Some(&b'\r') {
            l.pop();
        }
        line(self.lines, &l, cut);
    }

    /// The input ended: a last line without a newline is still a line.
    fn finish(&mut self, line: &mut dyn FnMut(u64, &[u8], bool)) {
        if !self.pending.is_empty() {
            self.emit(line, false);
        }
    }
}

pub struct OutputDecoder {
    kind: DecoderKind,
    parser: Option<Box<dyn TraceParser>>,
    stdout: LineBuf,
    stderr: LineBuf,
}

impl OutputDecoder {
    pub fn new(kind: DecoderKind) -> OutputDecoder {
        OutputDecoder {
            kind,
            parser: kind.format().map(parser),
            stdout: LineBuf::default(),
            stderr: LineBuf::default(),
        }
    }

    pub fn kind(&self) -> DecoderKind {
        self.kind
    }

    pub fn feed_stdout(&mut self, bytes: &[u8]) -> Vec<Draft> {
        let mut out = Vec::new();
        let parser = &mut self.parser;
        self.stdout.feed(bytes, &mut |n, l, cut| {
            stdout_line(parser, n, l, cut, &mut out)
        });
        out
    }

    pub fn feed_stderr(&mut self, bytes: &[u8]) -> Vec<Draft> {
        let mut out = Vec::new();
        self.stderr
            .feed(bytes, &mut |n, l, cut| stderr_line(n, l, cut, &mut out));
        out
    }

    /// Both streams ended: flush unterminated last lines and whatever the parser holds.
    pub fn finish(&mut self) -> Vec<Draft> {
        let mut out = Vec::new();
        let parser = &mut self.parser;
        self.stdout
            .finish(&mut |n, l, cut| stdout_line(parser, n, l, cut, &mut out));
        self.stderr
            .finish(&mut |n, l, cut| stderr_line(n, l, cut, &mut out));
        if let Some(p) = parser {
            p.finish(&mut out);
        }
        out
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

fn cut_raw(line_no: u64, line: &[u8], stream: &str) -> Draft {
    Draft::new(StepKind::Raw {
        line: Some(line_no),
        reason: format!(
            "line {line_no}: {stream} line over {} MiB without a newline; cut here and kept unparsed",
            MAX_LINE_BYTES >> 20
        ),
        data: Payload::Text(lossy(line)),
    })
}

fn stdout_line(
    parser: &mut Option<Box<dyn TraceParser>>,
    line_no: u64,
    line: &[u8],
    cut: bool,
    out: &mut Vec<Draft>,
) {
    if cut {
        return out.push(cut_raw(line_no, line, "stdout"));
    }
    if is_blank(line) {
        return;
    }
    match parser {
        Some(p) => {
            let cleaned = json_ready(line);
            p.feed(line_no, cleaned.as_deref().unwrap_or(line), out);
        }
        None => out.push(Draft::new(StepKind::AgentMessage {
            text: Payload::Text(lossy(line)),
        })),
    }
}

fn stderr_line(line_no: u64, line: &[u8], cut: bool, out: &mut Vec<Draft>) {
    if cut {
        return out.push(cut_raw(line_no, line, "stderr"));
    }
    if is_blank(line) {
        return;
    }
    let text = lossy(line);
    out.push(Draft::new(if looks_like_error(&text) {
        StepKind::Error {
            message: Payload::Text(text),
        }
    } else {
        StepKind::Raw {
            line: Some(line_no),
            reason: "stderr".into(),
            data: Payload::Text(text),
        }
    }));
}

/// Whether a stderr line reads as a failure (see the module comment for the rule).
pub fn looks_like_error(line: &str) -> bool {
    let plain = strip_ansi(line);
    let t = plain.trim_start().to_ascii_lowercase();
    ["error", "fatal", "panic", "traceback"]
        .iter()
        .any(|p| t.starts_with(p))
        || t.contains("panicked at")
}

/// Text without ANSI escape sequences (CSI `ESC [ ... final`, OSC `ESC ] ... BEL|ST`, and
/// two-byte `ESC x`).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                // Parameters and intermediates, then one final byte in @..~.
                for n in chars.by_ref() {
                    if ('@'..='~').contains(&n) {
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(n) = chars.next() {
                    if n == '\x07' {
                        break;
                    }
                    if n == '\x1b' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// A JSON line with ANSI codes around or inside it, made parseable: sequences before the
/// first `{` and after the last `}` are dropped, and raw ESC bytes inside become the JSON
/// escape `\u001b` (a raw control byte is invalid JSON; escaped, the text keeps its codes).
/// None when the line has no ESC byte and is used as it is.
fn json_ready(line: &[u8]) -> Option<Vec<u8>> {
    if !line.contains(&0x1b) {
        return None;
    }
    let start = line.iter().position(|&b| b == b'{')?;
    let end = line.iter().rposition(|&b| b == b'}')?;
    if end < start {
        return None;
    }
    let outside = |part: &[u8]| {
        let s = strip_ansi(&String::from_utf8_lossy(part));
        s.trim().is_empty()
    };
    if !outside(&line[..start]) || !outside(&line[end + 1..]) {
        // Something other than escape codes around the object: let the parser report it.
        return None;
    }
    let mut out = Vec::with_capacity(end + 1 - start + 16);
    for &b in &line[start..=end] {
        if b == 0x1b {
            out.extend_from_slice(b"\\u001b");
        } else {
            out.push(b);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Lifecycle;

    fn names(drafts: &[Draft]) -> Vec<&'static str> {
        drafts.iter().map(|d| d.kind.name()).collect()
    }

    #[test]
    fn claude_stream_in_odd_chunks() {
        let text = concat!(
            r#"{"type":"system","subtype":"init","session_id":"s","model":"m","cwd":"/w"}"#,
            "\n",
            r#"{"type":"assistant","message":{"role":"assistant","content":[{"type":"text","text":"hi"},{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"ls"}}]}}"#,
            "\r\n\n",
            r#"{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"a.txt"}]},"tool_use_result":{"stdout":"a.txt","stderr":""}}"#,
            "\n",
            r#"{"type":"result","subtype":"success","is_error":false,"total_cost_usd":0.5,"usage":{"input_tokens":3,"output_tokens":4}}"#
        );
        let mut d = OutputDecoder::new(DecoderKind::ClaudeStream);
        let mut drafts = Vec::new();
        for chunk in text.as_bytes().chunks(7) {
            drafts.extend(d.feed_stdout(chunk));
        }
        drafts.extend(d.finish());
        assert_eq!(
            names(&drafts),
            [
                "lifecycle",
                "agent",
                "tool_call",
                "tool_result",
                "command",
                "lifecycle"
            ]
        );
        let StepKind::Lifecycle {
            event: Lifecycle::Usage(u),
        } = &drafts[5].kind
        else {
            panic!("{:?}", drafts[5])
        };
        assert_eq!((u.input_tokens, u.cost_usd), (3, Some(0.5)));
    }

    #[test]
    fn garbage_and_invalid_utf8_become_raw_never_panic() {
        let mut d = OutputDecoder::new(DecoderKind::ClaudeStream);
        let mut drafts = d.feed_stdout(b"not json\n{\"type\":\"x\xff\"}\n[1,2]\n\x00\x01\x02\n");
        drafts.extend(d.finish());
        assert_eq!(names(&drafts), ["raw", "raw", "raw", "raw"]);
        let StepKind::Raw { reason, data, .. } = &drafts[1].kind else {
            panic!()
        };
        assert!(
            reason.contains("line 2") && reason.contains("UTF-8"),
            "{reason}"
        );
        assert!(data.preview().contains('\u{FFFD}'));
        for k in [
            DecoderKind::CodexExec,
            DecoderKind::Gemini,
            DecoderKind::Plain,
        ] {
            let mut d = OutputDecoder::new(k);
            let bytes: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
            let mut n = d.feed_stdout(&bytes).len();
            n += d.feed_stderr(&bytes).len();
            n += d.finish().len();
            assert!(n > 0, "{k:?}");
        }
    }

    #[test]
    fn ansi_is_kept_and_does_not_break_json() {
        let mut d = OutputDecoder::new(DecoderKind::ClaudeStream);
        let line = "\x1b[0m{\"type\":\"assistant\",\"message\":{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"\x1b[31mred\x1b[0m\"}]}}\x1b[K\n";
        let drafts = d.feed_stdout(line.as_bytes());
        assert_eq!(names(&drafts), ["agent"]);
        assert_eq!(
            drafts[0].kind,
            StepKind::AgentMessage {
                text: "\x1b[31mred\x1b[0m".into()
            }
        );
        let mut d = OutputDecoder::new(DecoderKind::Plain);
        let drafts = d.feed_stdout("\x1b[32mok\x1b[0m\n".as_bytes());
        assert_eq!(
            drafts[0].kind,
            StepKind::AgentMessage {
                text: "\x1b[32mok\x1b[0m".into()
            }
        );
    }

    #[test]
    fn plain_stdout_lines_are_messages_and_stderr_is_raw_or_error() {
        let mut d = OutputDecoder::new(DecoderKind::Plain);
        let mut drafts = d.feed_stdout(b"working\n\n  \ndone");
        assert_eq!(names(&drafts), ["agent"]);
        drafts.extend(d.feed_stderr(b"warning: slow disk\n\x1b[31mError: boom\x1b[0m\n"));
        drafts.extend(d.feed_stderr(b"thread 'main' panicked at src/x.rs\npartial"));
        drafts.extend(d.finish());
        assert_eq!(
            names(&drafts),
            ["agent", "raw", "error", "error", "agent", "raw"]
        );
        let StepKind::Raw { reason, line, .. } = &drafts[1].kind else {
            panic!()
        };
        assert_eq!((reason.as_str(), *line), ("stderr", Some(1)));
        let StepKind::Raw { line, data, .. } = &drafts[5].kind else {
            panic!()
        };
        assert_eq!((*line, data.preview()), (Some(4), "partial"));
        assert_eq!(
            drafts[4].kind,
            StepKind::AgentMessage {
                text: "done".into()
            }
        );
    }

    #[test]
    fn a_line_without_end_is_cut_not_hoarded() {
        let mut d = OutputDecoder::new(DecoderKind::Plain);
        let chunk = vec![b'a'; 1 << 20];
        let mut drafts = Vec::new();
        for _ in 0..(MAX_LINE_BYTES >> 20) + 1 {
            drafts.extend(d.feed_stdout(&chunk));
        }
        assert_eq!(names(&drafts), ["raw"]);
        assert!(d.stdout.pending.is_empty());
    }

    #[test]
    fn codex_and_gemini_use_their_parsers() {
        let mut d = OutputDecoder::new(DecoderKind::CodexExec);
        let drafts = d.feed_stdout(
            br#"{"type":"item.completed","item":{"id":"i","type":"agent_message","text":"hi"}}
"#,
        );
        assert_eq!(names(&drafts), ["agent"]);
        let mut d = OutputDecoder::new(DecoderKind::Gemini);
        let drafts = d.feed_stdout(
            br#"{"type":"init","timestamp":"2025-10-10T12:00:00.000Z","session_id":"s","model":"gemini-2.5-pro"}
"#,
        );
        assert_eq!(names(&drafts), ["lifecycle"]);
    }

    #[test]
    fn strip_ansi_handles_csi_osc_and_truncation() {
        assert_eq!(strip_ansi("\x1b[1;31mA\x1b[0mB"), "AB");
        assert_eq!(strip_ansi("\x1b]0;title\x07C\x1b]8;;u\x1b\\D"), "CD");
        assert_eq!(strip_ansi("E\x1b"), "E");
        assert_eq!(strip_ansi("F\x1b[12"), "F");
    }
}

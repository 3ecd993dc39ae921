//! Turning a live agent's output into step drafts.
//!
//! An [`OutputDecoder`] takes bytes as they arrive (any chunking: half lines, many lines),
//! splits them into lines, and hands each complete line to the format's parser — the same
//! line-fed [`TraceParser`]s `trace import` uses, so a live run and an imported log of the
//! same agent give the same steps.
//!
//! Bytes are split into lines here; each line goes to the one trace decoder
//! (`trace::decode`) every trace uses, which says what stdout and stderr lines become.
//! A line longer than [`MAX_LINE_BYTES`] with no newline in sight is cut into Raw pieces so
//! memory stays bounded. Nothing here panics on input (invariant 6).

use crate::trace::decode::{Decoder, Source, Stream};
use crate::trace::import::{Draft, Format, MAX_LINE_BYTES};

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

    /// What the trace decoder reads its stdout as.
    pub fn source(self) -> Source {
        self.format().map_or(Source::Plain, Source::Format)
    }
}

/// Bytes of one stream not yet ending in a newline.
#[derive(Default)]
struct LineBuf {
    pending: Vec<u8>,
}

impl LineBuf {
    /// Append `bytes`; call `line(bytes, cut)` for each complete line. A line that grows
    /// past the limit before its newline arrives is handed over in pieces (`cut = true`).
    fn feed(&mut self, mut bytes: &[u8], line: &mut dyn FnMut(&mut Vec<u8>, bool)) {
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

    fn emit(&mut self, line: &mut dyn FnMut(&mut Vec<u8>, bool), cut: bool) {
        let mut l = std::mem::take(&mut self.pending);
        if !cut && l.last() == Some(&b'\r') {
            l.pop();
        }
        line(&mut l, cut);
    }

    /// The input ended: a last line without a newline is still a line.
    fn finish(&mut self, line: &mut dyn FnMut(&mut Vec<u8>, bool)) {
        if !self.pending.is_empty() {
            self.emit(line, false);
        }
    }
}

pub struct OutputDecoder {
    kind: DecoderKind,
    decoder: Decoder,
    stdout: LineBuf,
    stderr: LineBuf,
}

impl OutputDecoder {
    pub fn new(kind: DecoderKind) -> OutputDecoder {
        OutputDecoder {
            kind,
            decoder: Decoder::new(kind.source()),
            stdout: LineBuf::default(),
            stderr: LineBuf::default(),
        }
    }

    pub fn kind(&self) -> DecoderKind {
        self.kind
    }

    pub fn feed_stdout(&mut self, bytes: &[u8]) -> Vec<Draft> {
        self.feed(Stream::Stdout, bytes)
    }

    pub fn feed_stderr(&mut self, bytes: &[u8]) -> Vec<Draft> {
        self.feed(Stream::Stderr, bytes)
    }

    fn feed(&mut self, stream: Stream, bytes: &[u8]) -> Vec<Draft> {
        let mut out = Vec::new();
        let (buf, decoder) = match stream {
            Stream::Stdout => (&mut self.stdout, &mut self.decoder),
            Stream::Stderr => (&mut self.stderr, &mut self.decoder),
        };
        buf.feed(bytes, &mut |l, cut| {
            let n = full_len(l, cut);
            decoder.line(stream, l, n, &mut out)
        });
        out
    }

    /// Both streams ended: flush unterminated last lines and whatever the parser holds.
    pub fn finish(&mut self) -> Vec<Draft> {
        let mut out = Vec::new();
        let decoder = &mut self.decoder;
        self.stdout.finish(&mut |l, cut| {
            let n = full_len(l, cut);
            decoder.line(Stream::Stdout, l, n, &mut out)
        });
        self.stderr.finish(&mut |l, cut| {
            let n = full_len(l, cut);
            decoder.line(Stream::Stderr, l, n, &mut out)
        });
        decoder.finish(&mut out);
        out
    }
}

/// A line handed over cut (no newline in sight past the limit) counts as longer than it
/// is, so the decoder keeps it raw, unparsed.
fn full_len(line: &[u8], cut: bool) -> u64 {
    line.len() as u64 + u64::from(cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Lifecycle, StepKind};

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
    fn plain_stdout_lines_are_messages_and_stderr_is_a_note_or_an_error() {
        let mut d = OutputDecoder::new(DecoderKind::Plain);
        let mut drafts = d.feed_stdout(b"working\n\n  \ndone");
        assert_eq!(names(&drafts), ["agent"]);
        drafts.extend(d.feed_stderr(b"warning: slow disk\n\x1b[31mError: boom\x1b[0m\n"));
        drafts.extend(d.feed_stderr(b"thread 'main' panicked at src/x.rs\npartial"));
        drafts.extend(d.finish());
        assert_eq!(
            names(&drafts),
            ["agent", "lifecycle", "error", "error", "agent", "lifecycle"]
        );
        let StepKind::Lifecycle {
            event: Lifecycle::Note { what, text },
        } = &drafts[1].kind
        else {
            panic!()
        };
        assert_eq!(
            (what.as_str(), text.preview()),
            ("stderr", "warning: slow disk")
        );
        assert!(
            matches!(&drafts[5].kind, StepKind::Lifecycle { event: Lifecycle::Note { text, .. } } if text.preview() == "partial")
        );
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
        let _ = MAX_LINE_BYTES;
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
        use crate::trace::decode::strip_ansi;
        assert_eq!(strip_ansi("\x1b[1;31mA\x1b[0mB"), "AB");
        assert_eq!(strip_ansi("\x1b]0;title\x07C\x1b]8;;u\x1b\\D"), "CD");
        assert_eq!(strip_ansi("E\x1b"), "E");
        assert_eq!(strip_ansi("F\x1b[12"), "F");
    }
}

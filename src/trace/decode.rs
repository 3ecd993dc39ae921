//! Lines to step drafts: the one decoder every trace goes through, a live agent's output
//! (stdout and stderr, line by line as the sandbox hands them over), an imported file and a
//! hook's transcript alike, so the three can never disagree about a line.
//!
//! - stdout: the format's line-fed parser (`import::parser`), or, for a plain command, each
//!   line an `AgentMessage`. ANSI codes around or inside a JSON line never break parsing:
//!   sequences before or after the object are dropped for parsing only, and a raw ESC byte
//!   inside it is read as `\u001b`, so the text keeps its codes.
//! - stderr: a line that reads as a failure (it starts, after ANSI codes and spaces, with
//!   `error`, `fatal`, `panic` or `traceback`, any case, or says `panicked at`) is an
//!   `Error`, what a reviewer jumps to; the rest (warnings, progress, debug logs: CLIs print
//!   a lot of harmless chatter there) is a lifecycle note, typed and searchable.
//! - Blank lines are nothing. A line over [`MAX_LINE_BYTES`] is not parsed: it is kept whole
//!   as a `Raw` step (the store moves it to a blob), and so is a line a parser gave nothing
//!   for, so no line is ever lost.

use super::import::{self, Draft, Format, MAX_LINE_BYTES, TraceParser};
use crate::model::{Lifecycle, Payload, StepKind};

/// Which stream of the agent a line came on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What an agent's stdout is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// JSON lines of a trace format.
    Format(Format),
    /// Lines of text (any command).
    Plain,
}

pub struct Decoder {
    parser: Option<Box<dyn TraceParser>>,
    /// Lines seen on each stream: a step's line number is its line's on its stream.
    stdout_lines: u64,
    stderr_lines: u64,
    /// Lines a parser gave no draft for (kept raw here all the same): a broken parser
    /// promise, which tests and fuzz targets hold at zero.
    pub unanswered: u64,
}

impl Decoder {
    pub fn new(source: Source) -> Decoder {
        Decoder {
            parser: match source {
                Source::Format(f) => Some(import::parser(f)),
                Source::Plain => None,
            },
            stdout_lines: 0,
            stderr_lines: 0,
            unanswered: 0,
        }
    }

    /// One line (without its newline) of `stream`, `full_len` bytes long before any cut
    /// (its length, when it was not cut): its drafts, appended to `out`. An over-long line
    /// moves out of `line` into its step (no second copy of up to 256 MiB); any other line
    /// is left in place.
    pub fn line(
        &mut self,
        stream: Stream,
        line: &mut Vec<u8>,
        full_len: u64,
        out: &mut Vec<Draft>,
    ) {
        let line_no = match stream {
            Stream::Stdout => {
                self.stdout_lines += 1;
                self.stdout_lines
            }
            Stream::Stderr => {
                self.stderr_lines += 1;
                self.stderr_lines
            }
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let before = out.len();
        if line.len() > MAX_LINE_BYTES || (line.len() as u64) < full_len {
            out.push(too_long(stream, line_no, std::mem::take(line), full_len));
            return;
        }
        match (stream, &mut self.parser) {
            (Stream::Stdout, Some(p)) => {
                let cleaned = json_ready(line);
                p.feed(line_no, cleaned.as_deref().unwrap_or(line), out);
            }
            (Stream::Stdout, None) => out.push(Draft::new(StepKind::AgentMessage {
                text: Payload::Text(lossy(line)),
            })),
            (Stream::Stderr, _) => out.push(stderr_line(line)),
        }
        if out.len() == before {
            // Parsers promise a step per line; if one breaks that promise the line is
            // still kept rather than silently lost.
            self.unanswered += 1;
            out.push(Draft::new(StepKind::Raw {
                line: Some(line_no),
                reason: import::problem(line_no, "the importer produced no step for this line"),
                data: Payload::Text(lossy(line)),
            }));
        }
    }

    /// The input ended: whatever the parser still holds.
    pub fn finish(&mut self, out: &mut Vec<Draft>) {
        if let Some(p) = &mut self.parser {
            p.finish(out);
        }
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn too_long(stream: Stream, line_no: u64, line: Vec<u8>, full_len: u64) -> Draft {
    let kept = line.len() as u64;
    let cut = if kept < full_len {
        format!("; only its first {kept} bytes were kept")
    } else {
        String::new()
    };
    let which = match stream {
        Stream::Stdout => "line",
        Stream::Stderr => "stderr line",
    };
    Draft::new(StepKind::Raw {
        line: Some(line_no),
        reason: import::problem(
            line_no,
            format!(
                "{which} of {full_len} bytes is over the {} MiB parse limit; kept unparsed{cut}",
                MAX_LINE_BYTES >> 20
            ),
        ),
        data: Payload::Text(
            String::from_utf8(line)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        ),
    })
}

fn stderr_line(line: &[u8]) -> Draft {
    let text = lossy(line);
    Draft::new(if looks_like_error(&text) {
        StepKind::Error {
            message: Payload::Text(text),
        }
    } else {
        StepKind::Lifecycle {
            event: Lifecycle::Note {
                what: "stderr".into(),
                text: Payload::Text(text),
            },
        }
    })
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

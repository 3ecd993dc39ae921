//! Redaction across a stream of steps: a private key printed line by line is hidden whole.

use std::borrow::Cow;

use super::Redactor;
use super::patterns::{pem_body_only, pem_marker};
use crate::model::{Payload, StepKind};

/// Lines a private key block may span across steps before it is taken to have ended: a
/// 4096-bit RSA key is about 50; a BEGIN line with no END must not hide a run's output.
pub const MAX_KEY_BLOCK_LINES: usize = 200;

/// A [`Redactor`] for one stream of steps, as a run's output arrives a line a step. A
/// private key block printed line by line would otherwise lose only its BEGIN line (the
/// body lines look like any base64); this one remembers an open block and hides every
/// following line up to and including its END line, or [`MAX_KEY_BLOCK_LINES`] lines.
#[derive(Clone, Debug)]
pub struct StreamRedactor {
    redactor: Redactor,
    /// Lines still hidden before an open block is taken to have ended; None: no block open.
    key_block_left: Option<usize>,
}

impl StreamRedactor {
    pub fn new(redactor: Redactor) -> StreamRedactor {
        StreamRedactor {
            redactor,
            key_block_left: None,
        }
    }

    /// Redact a step's texts, in the order they were printed, and carry an open private
    /// key block over to the next step.
    pub fn redact_step(&mut self, kind: &mut StepKind) {
        if self.redactor.hides_private_keys() {
            for p in kind.payloads_mut() {
                if let Payload::Text(t) = p
                    && let Cow::Owned(new) = self.hide_key_block_lines(t)
                {
                    *t = new;
                }
            }
        }
        self.redactor.redact_step(kind);
    }

    /// `text` with the lines that continue an open key block replaced by one mark.
    fn hide_key_block_lines<'a>(&mut self, text: &'a str) -> Cow<'a, str> {
        let hidden = self.continue_key_block(text);
        let rest = &text[hidden..];
        self.note_key_block_start(rest);
        if hidden == 0 {
            return Cow::Borrowed(text);
        }
        let newline = if text[..hidden].ends_with('\n') {
            "\n"
        } else {
            ""
        };
        Cow::Owned(format!("[REDACTED:private_key]{newline}{rest}"))
    }

    /// How many bytes at the start of `text` belong to an open key block (its lines up to
    /// and including the END line, within the block's budget); closes the block at its end.
    fn continue_key_block(&mut self, text: &str) -> usize {
        let Some(mut left) = self.key_block_left else {
            return 0;
        };
        let mut hidden = 0;
        for line in text.split_inclusive('\n') {
            if left == 0 {
                break;
            }
            left -= 1;
            hidden += line.len();
            if pem_marker().captures(line).is_some_and(|c| &c[1] == "END") {
                left = 0;
            }
        }
        self.key_block_left = (left > 0).then_some(left);
        hidden
    }

    /// Open a block when `text`'s last key marker is a BEGIN line followed by key body
    /// only, up to the end of the text: the rest of the key comes in the next steps. A
    /// BEGIN line quoted in prose (text after it on its line) opens nothing.
    fn note_key_block_start(&mut self, text: &str) {
        if !text.contains("PRIVATE KEY-----") {
            return;
        }
        let last = pem_marker().captures_iter(text).last();
        let Some(begin) = last.filter(|c| &c[1] == "BEGIN").and_then(|c| c.get(0)) else {
            return;
        };
        let body = &text[begin.end()..];
        if pem_body_only().is_match(body) {
            let used = body.lines().count();
            self.key_block_left = Some(MAX_KEY_BLOCK_LINES.saturating_sub(used).max(1));
        }
    }
}

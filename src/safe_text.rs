//! Untrusted text made safe to show on a terminal. Agent output, transcripts and tickets
//! may hold escape sequences that write the clipboard (OSC 52), retitle the window, clear
//! the screen or hide text, and bidi overrides that make the text read other than it is;
//! every view that prints stored text passes it through [`for_terminal`] first.

use std::borrow::Cow;

/// Whether `c` may not reach a terminal as it is: C0 controls other than `\n` and `\t`,
/// DEL, C1 controls (U+0080–U+009F, which 8-bit-aware terminals read as ESC sequences),
/// and the bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069).
pub fn is_unsafe(c: char) -> bool {
    match c {
        '\n' | '\t' => false,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

/// `text` as it may be printed: colour sequences (SGR, `ESC [ ... m`) are dropped, since
/// they only style (and can conceal) the text; a `\r` ending a line goes; every other unsafe
/// character is shown escaped (`\x1b`, `\u{9b}`, `\u{202e}`), so a reviewer sees that the
/// text tried something and what, and nothing is executed. Borrowed when already safe.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if !is_unsafe(c) {
            out.push(c);
            continue;
        }
        if c == '\x1b'
            && let Some(len) = sgr_len(&text[i..])
        {
            // Skip the rest of the sequence (ESC is already consumed).
            let end = i + len;
            while chars.peek().is_some_and(|&(j, _)| j < end) {
                chars.next();
            }
            continue;
        }
        if c == '\r' && matches!(chars.peek(), None | Some((_, '\n'))) {
            continue;
        }
        if (c as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// The byte length of the SGR sequence `ESC [ params m` that `s` starts with, if it does.
fn sgr_len(s: &str) -> Option<usize> {
    let rest = s.strip_prefix("\x1b[")?;
    let params = rest
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';' || *b == b':')
        .count();
    (rest.as_bytes().get(params) == Some(&b'm')).then_some(2 + params + 1)
}

/// `text` cut to at most `max` bytes at a character boundary, saying how much was left out.
pub fn clip_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[{} more bytes]", &text[..end], text.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_text_is_borrowed_and_kept() {
        for t in ["plain", "tabs\tand\nnewlines", "ünïcødé ✓ 日本", ""] {
            assert!(matches!(for_terminal(t), Cow::Borrowed(_)), "{t}");
        }
    }

    #[test]
    fn escape_sequences_are_shown_not_executed() {
        let cases = [
            ("\x1b]52;c;aGk=\x07", "\\x1b]52;c;aGk=\\x07"),
            ("\x1b]0;title\x07x", "\\x1b]0;title\\x07x"),
            ("a\x1b[2Jb", "a\\x1b[2Jb"),
            ("\x1bP1$q\x1b\\", "\\x1bP1$q\\x1b\\"),
            ("csi\u{9b}2J", "csi\\u{9b}2J"),
            ("del\x7f nul\0", "del\\x7f nul\\x00"),
            ("bell\x07", "bell\\x07"),
            ("over\rwrite", "over\\x0dwrite"),
            (
                "a\u{202e}b\u{2066}c\u{2069}\u{202a}",
                "a\\u{202e}b\\u{2066}c\\u{2069}\\u{202a}",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(for_terminal(input), want, "{input:?}");
        }
    }

    #[test]
    fn colour_goes_quietly_and_line_ends_stay_clean() {
        assert_eq!(for_terminal("\x1b[1;31mred\x1b[0m ok\x1b[m"), "red ok");
        assert_eq!(for_terminal("\x1b[38:5:196mx"), "x");
        assert_eq!(for_terminal("one\r\ntwo\r"), "one\ntwo");
        // Not SGR: a cursor move is shown.
        assert_eq!(for_terminal("\x1b[3A"), "\\x1b[3A");
        // A truncated sequence is shown, not swallowed.
        assert_eq!(for_terminal("end\x1b[1"), "end\\x1b[1");
    }

    #[test]
    fn the_output_never_holds_an_unsafe_character_and_is_stable() {
        let nasty: String = (0u32..0x2070)
            .filter_map(char::from_u32)
            .chain("\x1b[31m\x1b]52;c;x\x07".chars())
            .collect();
        let once = for_terminal(&nasty).into_owned();
        assert!(!once.chars().any(is_unsafe));
        assert_eq!(for_terminal(&once), once.as_str());
    }
}

//! Splitting a byte stream into lines with a bounded line length. An agent that prints a
//! gigabyte without a newline must not take the factory's memory with it (invariant 6): past
//! [`MAX_LINE`] the rest of the line is dropped and the line ends with a marker instead.

/// The longest line kept, in bytes.
pub const MAX_LINE: usize = 8 * 1024 * 1024;
/// Appended to a line that was cut at [`MAX_LINE`].
pub const TRUNCATED_MARKER: &[u8] = b" [shopfloor: line truncated]";

#[derive(Debug)]
pub struct LineSplitter {
    buf: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl Default for LineSplitter {
    fn default() -> Self {
        LineSplitter::new(MAX_LINE)
    }
}

impl LineSplitter {
    pub fn new(cap: usize) -> Self {
        LineSplitter {
            buf: Vec::new(),
            cap: cap.max(1),
            truncated: false,
        }
    }

    /// Feed bytes; every complete line is passed to `emit`, without its `\n` (a `\r` before
    /// it is kept: it is the agent's data).
    pub fn push(&mut self, mut bytes: &[u8], mut emit: impl FnMut(Vec<u8>)) {
        while !bytes.is_empty() {
            match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.append(&bytes[..i]);
                    emit(self.take());
                    bytes = &bytes[i + 1..];
                }
                None => {
                    self.append(bytes);
                    bytes = &[];
                }
            }
        }
    }

    /// The last line when the stream ended without a newline.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.buf.is_empty() && !self.truncated {
            None
        } else {
            Some(self.take())
        }
    }

    fn append(&mut self, part: &[u8]) {
        let room = self.cap.saturating_sub(self.buf.len());
        if part.len() > room {
            self.truncated = true;
        }
        self.buf.extend_from_slice(&part[..part.len().min(room)]);
    }

    fn take(&mut self) -> Vec<u8> {
        let mut line = std::mem::take(&mut self.buf);
        if std::mem::take(&mut self.truncated) {
            line.extend_from_slice(TRUNCATED_MARKER);
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(cap: usize, chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = LineSplitter::new(cap);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, |l| out.push(l));
        }
        out.extend(s.finish());
        out
    }

    #[test]
    fn lines_across_chunks_and_a_trailing_partial() {
        let out = split(100, &[b"ab", b"c\nde", b"\n\nf"]);
        assert_eq!(
            out,
            vec![b"abc".to_vec(), b"de".to_vec(), vec![], b"f".to_vec()]
        );
        assert!(split(100, &[b"x\n"]).len() == 1);
    }

    #[test]
    fn long_lines_are_cut_with_a_marker_and_the_next_line_is_whole() {
        let out = split(4, &[b"abcdefgh", b"ij\nok\n"]);
        let mut want = b"abcd".to_vec();
        want.extend_from_slice(TRUNCATED_MARKER);
        assert_eq!(out, vec![want, b"ok".to_vec()]);
    }
}

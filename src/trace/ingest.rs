//! The loop every trace import runs: bytes to lines (each capped), lines to drafts (the
//! format's parser), drafts to steps (the builder). It holds no store: `import_reader`
//! stores what it yields, and the fuzz targets check it.

use std::io::{self, BufRead};

use super::TraceBuilder;
use super::decode::{Decoder, Source, Stream};
use super::import::{Draft, Format};
use crate::model::{BlobHash, Step};

/// A line longer than this is cut here: beyond it even a blob is not worth the memory.
pub const MAX_RAW_LINE_BYTES: usize = 256 << 20;

/// A reader that hands out lines, counting (and, when asked, hashing) every byte it
/// consumes, so an import can record exactly how much of its file its stored steps cover.
pub struct LineReader<R> {
    inner: R,
    read: u64,
    hasher: Option<blake3::Hasher>,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            read: 0,
            hasher: None,
        }
    }

    /// A reader that also hashes what it consumes (see [`LineReader::hash`]).
    pub fn hashed(inner: R) -> Self {
        LineReader {
            hasher: Some(blake3::Hasher::new()),
            ..Self::new(inner)
        }
    }

    /// Bytes consumed so far: whole lines, newlines included.
    pub fn read(&self) -> u64 {
        self.read
    }

    /// The blake3 hash of the bytes consumed so far (of nothing, when not hashing).
    pub fn hash(&self) -> BlobHash {
        let h = self.hasher.as_ref().map(blake3::Hasher::finalize);
        BlobHash(*h.unwrap_or_else(|| blake3::hash(b"")).as_bytes())
    }

    /// Read one line into `buf` (without its `\n` or `\r\n`), keeping at most `cap` bytes
    /// of it; the rest of the line is consumed all the same. Returns None at the end of
    /// input, else the line's full length. Memory stays bounded by `cap` on a line of any
    /// length (a 2 GB line with no newline is read in buffer-sized pieces).
    pub fn read_line(&mut self, buf: &mut Vec<u8>, cap: usize) -> io::Result<Option<u64>> {
        buf.clear();
        let mut total: u64 = 0;
        let mut any = false;
        loop {
            let chunk = match self.inner.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                return Ok(any.then_some(total));
            }
            any = true;
            let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (&chunk[..i], true),
                None => (chunk, false),
            };
            let room = cap.saturating_sub(buf.len());
            buf.extend_from_slice(&part[..part.len().min(room)]);
            total += part.len() as u64;
            let used = part.len() + usize::from(done);
            if let Some(h) = &mut self.hasher {
                h.update(&chunk[..used]);
            }
            self.read += used as u64;
            self.inner.consume(used);
            if done {
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                return Ok(Some(total));
            }
        }
    }
}

/// The length of `file`'s whole lines: up to and including its last newline (a writer
/// may be in the middle of the line after it). Reads backwards from the end, a block at a
/// time, so a long file costs one block.
pub fn whole_lines_len(file: &mut std::fs::File) -> io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut end = file.metadata()?.len();
    let mut block = vec![0u8; 64 << 10];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let part = &mut block[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(part)?;
        if let Some(i) = part.iter().rposition(|&b| b == b'\n') {
            file.seek(SeekFrom::Start(0))?;
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(0)
}

/// What one call of [`Ingest::next`] read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineRead {
    /// A line of whitespace only: nothing to record.
    Blank,
    /// A line (`len` bytes long, before any cut) that became at least one step.
    Line { len: u64 },
    /// The end of input: the steps the parser still held, if any.
    End,
}

/// Turns a trace, line by line, into the steps of one run. Lines go through the one
/// trace decoder (`trace::decode`), as a live run's output does.
pub struct Ingest<R> {
    reader: LineReader<R>,
    decoder: Decoder,
    builder: TraceBuilder,
    buf: Vec<u8>,
    drafts: Vec<Draft>,
    line_no: u64,
    ended: bool,
    /// Whether the end of input flushes what the parser holds: not for a file still being
    /// written (a hook's transcript), whose end is not the session's, and whose steps must
    /// stay a prefix of the next read's.
    flush_at_end: bool,
}

impl<R: BufRead> Ingest<R> {
    pub fn new(reader: LineReader<R>, format: Format, builder: TraceBuilder) -> Self {
        Ingest {
            reader,
            decoder: Decoder::new(Source::Format(format)),
            builder,
            buf: Vec::new(),
            drafts: Vec::new(),
            line_no: 0,
            ended: false,
            flush_at_end: true,
        }
    }

    /// An ingest of a file that is still growing: its end holds nothing back for later.
    pub fn growing(mut self) -> Self {
        self.flush_at_end = false;
        self
    }

    /// Lines the parser gave no draft for (kept raw all the same): a broken parser
    /// promise, which tests and fuzz targets hold at zero.
    pub fn unanswered(&self) -> u64 {
        self.decoder.unanswered
    }

    /// Read the next line and append its steps to `out`; None once the input has ended
    /// and everything is out.
    pub fn next(&mut self, out: &mut Vec<Step>) -> io::Result<Option<LineRead>> {
        if self.ended {
            return Ok(None);
        }
        let Some(full_len) = self.reader.read_line(&mut self.buf, MAX_RAW_LINE_BYTES)? else {
            self.ended = true;
            if self.flush_at_end {
                self.decoder.finish(&mut self.drafts);
            }
            self.build(out);
            return Ok(Some(LineRead::End));
        };
        self.line_no += 1;
        self.decoder
            .line(Stream::Stdout, &mut self.buf, full_len, &mut self.drafts);
        if self.drafts.is_empty() {
            return Ok(Some(LineRead::Blank));
        }
        self.build(out);
        Ok(Some(LineRead::Line { len: full_len }))
    }

    fn build(&mut self, out: &mut Vec<Step>) {
        out.extend(self.drafts.drain(..).map(|d| self.builder.push(d)));
    }

    /// Bytes of input consumed so far (whole lines).
    pub fn read(&self) -> u64 {
        self.reader.read()
    }

    /// The hash of the bytes consumed so far (when the reader hashes).
    pub fn hash(&self) -> BlobHash {
        self.reader.hash()
    }

    /// Lines read so far, blank ones included.
    pub fn lines(&self) -> u64 {
        self.line_no
    }

    /// The seq the next step gets.
    pub fn next_seq(&self) -> u64 {
        self.builder.next_seq()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_reader_caps_long_lines_counts_and_hashes_every_byte() {
        let input = b"short\r\n0123456789abcdef\n\nlast".to_vec();
        let mut r = LineReader::hashed(input.as_slice());
        let mut buf = Vec::new();
        assert_eq!(r.read_line(&mut buf, 8).unwrap(), Some(6));
        assert_eq!(buf, b"short", "the \\r of a CRLF line goes too");
        assert_eq!(r.read(), 7);
        assert_eq!(r.read_line(&mut buf, 8).unwrap(), Some(16));
        assert_eq!(buf, b"01234567", "cut at the cap, the rest consumed");
        assert_eq!(r.read_line(&mut buf, 8).unwrap(), Some(0));
        let at_blank = r.read();
        assert_eq!(r.read_line(&mut buf, 8).unwrap(), Some(4));
        assert_eq!(buf, b"last");
        assert_eq!(r.read_line(&mut buf, 8).unwrap(), None);
        assert_eq!(r.read(), input.len() as u64);
        assert_eq!(r.hash(), BlobHash::of(&input));
        assert_eq!(at_blank, 7 + 17 + 1);
    }

    #[test]
    fn whole_lines_stop_at_the_last_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        for (text, want) in [
            (b"".to_vec(), 0),
            (b"half".to_vec(), 0),
            (b"a\nb\nhal".to_vec(), 4),
            (b"a\n".to_vec(), 2),
            (
                [vec![b'x'; 200_000], b"\n".to_vec(), vec![b'y'; 70_000]].concat(),
                200_001,
            ),
        ] {
            std::fs::write(&path, &text).unwrap();
            let mut f = std::fs::File::open(&path).unwrap();
            assert_eq!(whole_lines_len(&mut f).unwrap(), want);
            let mut all = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut all).unwrap();
            assert_eq!(all, text, "the file is read from its start after");
        }
    }
}

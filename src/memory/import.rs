//! Bulk import of memories from JSON Lines, one object a line. A bad line never stops the
//! import: it is reported with its line number and the rest goes in.

use std::io::BufRead;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{MemoryBank, NewMemory, Result};
use crate::model::{Author, MemoryKind};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LineError {
    /// From 1.
    pub line: u64,
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportSummary {
    pub imported: usize,
    pub errors: Vec<LineError>,
}

/// One line as written; unknown fields are ignored so exports of other tools load.
#[derive(Deserialize)]
struct Line {
    text: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    ts: Option<String>,
    /// Any JSON value; kept as its text (a string stays as it is).
    #[serde(default, rename = "ref")]
    reference: Option<serde_json::Value>,
}

fn parse_line(bytes: &[u8], author: &Author) -> std::result::Result<Option<NewMemory>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let line: Line = serde_json::from_str(text)
        .map_err(|e| format!("not a JSON object with a `text` string: {e}"))?;
    if line.text.trim().is_empty() {
        return Err("`text` is empty".into());
    }
    let chars = line.text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(format!(
            "`text` is {chars} characters, at most {MAX_TEXT_CHARS}: a memory is what the next agent should know, not a document"
        ));
    }
    let kind = match line.kind.as_deref() {
        None => MemoryKind::Note,
        Some(k) => k.parse::<MemoryKind>()?,
    };
    let ts = match line.ts.as_deref() {
        None => None,
        Some(t) => Some(t.parse::<Timestamp>().map_err(|e| {
            format!("`ts` {t:?} is not an RFC 3339 time like 2024-05-01T12:00:00Z: {e}")
        })?),
    };
    let reference = line.reference.map(|v| match v {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    });
    Ok(Some(NewMemory {
        kind,
        text: line.text,
        paths: line.paths,
        tags: line.tags,
        author: author.clone(),
        source: None,
        ts,
        reference,
    }))
}

/// The longest line of a memory import that is read: far above any memory, far below
/// what would let one line hold the process's memory.
const MAX_LINE_BYTES: usize = 1 << 20;
/// The longest memory text imported, in characters (MCP takes 16,000; imports may carry
/// longer notes from other tools).
pub const MAX_TEXT_CHARS: usize = 64 << 10;

pub(super) fn import(
    bank: &MemoryBank,
    mut reader: impl BufRead,
    author: Author,
    batch_size: usize,
) -> Result<ImportSummary> {
    let mut summary = ImportSummary::default();
    let mut batch = Vec::with_capacity(batch_size);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        // Bytes, not lines: one line of invalid UTF-8 is that line's error, not the file's.
        // At most MAX_LINE_BYTES of a line are held; the rest of a longer one is skipped.
        let mut line = std::io::Read::take(&mut reader, MAX_LINE_BYTES as u64 + 1);
        if line.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line_no += 1;
        if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
            let mut skipped = buf.len() as u64;
            loop {
                let (done, used) = {
                    let rest = reader.fill_buf()?;
                    match rest.iter().position(|b| *b == b'\n') {
                        Some(i) => (true, i + 1),
                        None => (rest.is_empty(), rest.len()),
                    }
                };
                reader.consume(used);
                skipped += used as u64;
                if done {
                    break;
                }
            }
            summary.errors.push(LineError {
                line: line_no,
                message: format!(
                    "the line is {skipped} bytes, over the {} MiB a memory line may hold; a memory is a few sentences: split it",
                    MAX_LINE_BYTES >> 20
                ),
            });
            continue;
        }
        match parse_line(&buf, &author) {
            Ok(Some(m)) => batch.push(m),
            Ok(None) => {}
            Err(message) => summary.errors.push(LineError {
                line: line_no,
                message,
            }),
        }
        if batch.len() >= batch_size {
            // One store transaction a batch; one index commit for the whole import.
            summary.imported += bank.add_unflushed(std::mem::take(&mut batch))?.len();
        }
    }
    summary.imported += bank.add_unflushed(batch)?.len();
    bank.flush_index()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a() -> Author {
        Author::Human { name: "me".into() }
    }

    #[test]
    fn an_endless_line_is_one_error_and_the_next_line_imports() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("s.redb")).unwrap();
        let index = crate::index::Index::open(&dir.path().join("i")).unwrap();
        let bank =
            MemoryBank::open(store, index, crate::memory::StaticEmbedder::builtin()).unwrap();
        let mut input = format!("{{\"text\":\"{}\"}}\n", "x".repeat(3 << 20)).into_bytes();
        input.extend(format!("{{\"text\":\"{}\"}}\n", "y".repeat(MAX_TEXT_CHARS + 1)).bytes());
        input.extend(b"{\"text\":\"kept\"}\n");
        let summary = import(&bank, std::io::Cursor::new(input), a(), 10).unwrap();
        assert_eq!(summary.imported, 1);
        assert_eq!(summary.errors.len(), 2, "{:?}", summary.errors);
        assert!(
            summary.errors[0].message.contains("over the 1 MiB"),
            "{:?}",
            summary.errors
        );
        assert_eq!(summary.errors[1].line, 2);
        assert!(
            summary.errors[1].message.contains("at most"),
            "{:?}",
            summary.errors
        );
    }

    #[test]
    fn lines_parse_with_defaults_and_reasons() {
        let m = parse_line(
            br#"{"text":"hi","ref":"D1:3","kind":"lesson","ts":"2024-05-01T12:00:00Z","extra":1}"#,
            &a(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (m.kind, m.reference.as_deref()),
            (MemoryKind::Lesson, Some("D1:3"))
        );
        assert!(m.ts.is_some());
        let m = parse_line(br#"{"text":"hi","ref":42}"#, &a())
            .unwrap()
            .unwrap();
        assert_eq!(
            (m.kind, m.reference.as_deref()),
            (MemoryKind::Note, Some("42"))
        );
        assert!(parse_line(b"  \r\n", &a()).unwrap().is_none());
        let err = |b: &[u8]| parse_line(b, &a()).err().unwrap();
        assert!(err(b"{not json").contains("JSON"));
        assert!(err(br#"{"kind":"note"}"#).contains("text"));
        assert!(err(br#"{"text":"  "}"#).contains("empty"));
        assert!(err(br#"{"text":"x","kind":"bogus"}"#).contains("use one of"));
        assert!(err(br#"{"text":"x","ts":"yesterday"}"#).contains("RFC 3339"));
        assert!(err(b"{\"text\":\"\xff\"}").contains("UTF-8"));
    }
}

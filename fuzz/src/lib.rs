//! What every import promises, checked on arbitrary bytes. The fuzz targets call it, and
//! `tests/import_fuzz.rs` includes this file, so `cargo test` holds the importers to the
//! same promises on its deterministic mutations. A broken promise is a panic: the crash
//! libFuzzer reports.

use std::sync::OnceLock;

use shopfloor::memory::MemoryBank;
use shopfloor::model::{Author, BlobHash, Step, StepKind};
use shopfloor::redact::Redactor;
use shopfloor::store::Store;
use shopfloor::trace::import::MAX_ITEMS_PER_LINE;
use shopfloor::trace::{Format, Ingest, LineRead, LineReader, TraceBuilder};

/// Steps one line may become: a parser keeps at most `MAX_ITEMS_PER_LINE` items of a line
/// (content blocks, file changes, edits), each making at most two steps (a result and what
/// it implies), and one raw step with the whole line for the rest.
pub const MAX_STEPS_PER_LINE: usize = 2 * MAX_ITEMS_PER_LINE + 4;
/// Stored bytes (a step's JSON) per input byte: JSON escapes of control characters (one
/// byte becomes six), a diff's line prefixes, a file's text before, after and in a patch.
pub const STORED_BYTES_PER_INPUT_BYTE: u64 = 8;
/// And per step: its fields, time, agent, a reason, a patch header.
pub const STORED_BYTES_PER_STEP: u64 = 512;

/// What an import of some bytes made.
pub struct Outcome {
    pub lines: u64,
    pub blank: u64,
    pub steps: Vec<Step>,
}

impl Outcome {
    pub fn raw(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s.kind, StepKind::Raw { .. }))
            .count()
    }
}

/// Import `data` as `format` through the loop `trace import` runs (line splitting, the
/// over-long line cap, the parser, the builder), with no store, checking:
/// - every non-blank line becomes at least one step, typed or raw, and no more than
///   [`MAX_STEPS_PER_LINE`];
/// - every byte is read and hashed (what a resumed import is matched by);
/// - what would be stored is bounded by the input ([`STORED_BYTES_PER_INPUT_BYTE`]);
/// - every step serializes and reads back equal, as the store writes and reads it;
/// - sequence numbers are dense, a parent comes before its child, a raw step names a line
///   of the input;
/// - the same bytes give the same steps (a killed import resumes by parsing its file
///   again and passing over the steps already stored).
pub fn import_bytes(format: Format, data: &[u8]) -> Outcome {
    let first = import_once(format, data);
    let again = import_once(format, data);
    assert_eq!(
        first.steps.len(),
        again.steps.len(),
        "same bytes, other steps"
    );
    for (a, b) in first.steps.iter().zip(&again.steps) {
        assert_eq!(
            (a.seq, a.parent, &a.agent, &a.kind),
            (b.seq, b.parent, &b.agent, &b.kind),
            "same bytes, other steps"
        );
    }
    first
}

/// One import of `data` with every check of [`import_bytes`] but the second run.
pub fn import_once(format: Format, data: &[u8]) -> Outcome {
    // Built once: compiling its patterns costs far more than an import of a few lines.
    static REDACTOR: OnceLock<Redactor> = OnceLock::new();
    let redactor = REDACTOR.get_or_init(Redactor::standard).clone();
    let builder = TraceBuilder::new(1, 0, format.default_agent(), redactor);
    let mut ingest = Ingest::new(LineReader::hashed(data), format, builder);
    let mut steps: Vec<Step> = Vec::new();
    let (mut lines, mut blank, mut stored_bytes) = (0u64, 0u64, 0u64);
    loop {
        let before = steps.len();
        let Some(read) = ingest.next(&mut steps).expect("a slice reads") else {
            break;
        };
        let made = steps.len() - before;
        match read {
            LineRead::Blank => {
                lines += 1;
                blank += 1;
                assert_eq!(made, 0, "a blank line made steps");
            }
            LineRead::Line { .. } => {
                lines += 1;
                assert!(made >= 1, "line {lines} made no step");
                assert!(made <= MAX_STEPS_PER_LINE, "line {lines} made {made} steps");
            }
            LineRead::End => {}
        }
        for s in &steps[before..] {
            stored_bytes += check_step(format, s, lines);
        }
        let bound = STORED_BYTES_PER_INPUT_BYTE * ingest.read()
            + STORED_BYTES_PER_STEP * steps.len() as u64;
        assert!(
            stored_bytes <= bound,
            "{stored_bytes} bytes stored for {} bytes read in {} steps",
            ingest.read(),
            steps.len()
        );
    }
    assert_eq!(
        ingest.unanswered(),
        0,
        "the parser gave no draft for a line"
    );
    assert_eq!(ingest.read(), data.len() as u64, "every byte read");
    assert_eq!(ingest.hash(), BlobHash::of(data), "every byte hashed");
    assert_eq!(lines, line_count(data));
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(s.seq, i as u64, "dense sequence numbers");
        assert!(
            s.parent.is_none_or(|p| p < s.seq),
            "a parent after its child"
        );
    }
    Outcome {
        lines,
        blank,
        steps,
    }
}

/// Lines in `data` as an import counts them: a last line without a newline counts.
pub fn line_count(data: &[u8]) -> u64 {
    let nl = data.iter().filter(|&&b| b == b'\n').count() as u64;
    nl + u64::from(!data.is_empty() && data.last() != Some(&b'\n'))
}

/// The bytes the store would write for `s`, after checking they read back as `s`.
fn check_step(format: Format, s: &Step, lines: u64) -> u64 {
    let json = serde_json::to_vec(s).expect("a step always serializes");
    let back: Step = serde_json::from_slice(&json).expect("a stored step reads back");
    assert_eq!(&back, s, "a step reads back as another");
    // A raw step in shopfloor's own format keeps the line of the trace it came from.
    if let StepKind::Raw { line: Some(l), .. } = &s.kind
        && format != Format::Jsonl
    {
        assert!(
            (1..=lines).contains(l),
            "raw step names line {l} of {lines}"
        );
    }
    json.len() as u64
}

/// A memory bank in a temp dir, made once per process (on /dev/shm where there is one, so
/// its fsyncs cost nothing), and its store.
pub fn memory_bank() -> (&'static Store, &'static MemoryBank) {
    static BANK: OnceLock<(tempfile::TempDir, Store, MemoryBank)> = OnceLock::new();
    let (_, store, bank) = BANK.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        }
        .expect("a temp dir");
        let store = Store::open(&dir.path().join("store.redb")).expect("a store");
        let index = shopfloor::index::Index::open(&dir.path().join("index")).expect("an index");
        let bank = MemoryBank::open(
            store.clone(),
            index,
            shopfloor::memory::StaticEmbedder::builtin(),
        )
        .expect("a memory bank");
        (dir, store, bank)
    });
    (store, bank)
}

/// `memory import` of `data` into `bank`: every line is a memory, an error naming its
/// line, or blank; what it says it imported is in the store.
pub fn import_memories(store: &Store, bank: &MemoryBank, data: &[u8]) {
    let before = store.memory_count().expect("count memories");
    let summary = bank
        .import_jsonl(
            data,
            Author::Human {
                name: "fuzz".into(),
            },
        )
        .expect("an import of bad lines reports them, it does not fail");
    let after = store.memory_count().expect("count memories");
    assert_eq!(after - before, summary.imported as u64, "imported = stored");
    let lines: Vec<&[u8]> = split_lines(data);
    let blank = lines
        .iter()
        .filter(|l| std::str::from_utf8(l).is_ok_and(|t| t.trim().is_empty()))
        .count();
    assert_eq!(
        summary.imported + summary.errors.len() + blank,
        lines.len(),
        "every line is a memory, an error or blank"
    );
    let mut last = 0;
    for e in &summary.errors {
        assert!(
            e.line > last && e.line <= lines.len() as u64,
            "error line {}",
            e.line
        );
        last = e.line;
    }
}

fn split_lines(data: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if data.is_empty() || data.last() == Some(&b'\n') {
        lines.pop();
    }
    lines
}

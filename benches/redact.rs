//! The redactor's throughput on large clean text, the common case every step pays for:
//! the standard rule set beside the built-in set as it was before issue 11 (compiled the
//! same way, as one combined regex), and beside a bare memchr-speed scan for one literal,
//! all measured in this run. (The old set runs here as custom patterns, which skip the
//! needs-a-digit check, so it changes a few near-miss lines the real one left alone.)
//!
//! `cargo bench --bench redact`

use std::time::Instant;

use shopfloor::redact::{RedactConfig, Redactor};

/// The built-in shapes before issue 11, as they were in `src/redact.rs` (Unicode `\b`,
/// which makes the regex's lazy DFA give up at the first non-ASCII byte).
const BEFORE: [&str; 9] = [
    r"(?s:-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----)",
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:[A-Za-z0-9+/=\s]|\\n|\\r)*",
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    r#"(?i:aws_secret_access_key)["']?\s*[:=]\s*["']?(?P<secret>[A-Za-z0-9/+=]{40})\b"#,
    r"\bAIza[0-9A-Za-z_\-]{35}",
    r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
    r"\bsk-ant-[A-Za-z0-9_\-]{20,}",
    r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",
    r"\bxox[baprs]-[A-Za-z0-9\-]{10,}",
];

/// About `size` bytes of clean text: the clean corpus (near-misses, placeholders, code)
/// and this crate's own TUI source, repeated.
fn clean_text(size: usize) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seed = std::fs::read_to_string(root.join("tests/data/redaction/clean.toml")).unwrap();
    for f in ["src/tui/view.rs", "src/tui/app.rs", "src/tui/fleet.rs"] {
        seed.push_str(&std::fs::read_to_string(root.join(f)).unwrap());
    }
    let mut text = String::with_capacity(size + seed.len());
    while text.len() < size {
        text.push_str(&seed);
    }
    text
}

/// MB/s of `f` over `text`, best of a few rounds.
fn throughput(text: &str, mut f: impl FnMut(&str) -> usize) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        std::hint::black_box(f(std::hint::black_box(text)));
        best = best.min(t.elapsed().as_secs_f64());
    }
    text.len() as f64 / 1e6 / best
}

fn main() {
    let text = clean_text(16 << 20);
    // Steps arrive a line or a tool result at a time: redact in step-sized pieces.
    let pieces: Vec<&str> = text.split_inclusive('\n').collect();
    let now = Redactor::standard();
    let before = Redactor::new(&RedactConfig {
        patterns: BEFORE.map(String::from).to_vec(),
        builtin: false,
        ..RedactConfig::default()
    })
    .unwrap();
    let changed = |r: &Redactor| {
        pieces
            .iter()
            .filter(|p| r.redact(p).len() != p.len())
            .count()
    };
    println!(
        "clean text: {:.1} MB in {} lines; lines changed: {} now, {} before",
        text.len() as f64 / 1e6,
        pieces.len(),
        changed(&now),
        changed(&before)
    );
    let per_line = |r: &Redactor, _: &str| pieces.iter().map(|p| r.redact(p).len()).sum::<usize>();
    let whole = |r: &Redactor, t: &str| r.redact(t).len();
    let rows = [
        (
            "standard rules, a line at a time",
            throughput(&text, |t| per_line(&now, t)),
        ),
        (
            "rules before issue 11, a line at a time",
            throughput(&text, |t| per_line(&before, t)),
        ),
        (
            "standard rules, the text whole",
            throughput(&text, |t| whole(&now, t)),
        ),
        (
            "rules before issue 11, the text whole",
            throughput(&text, |t| whole(&before, t)),
        ),
        (
            "peer: one literal (`PRIVATE KEY-----`), memchr",
            throughput(&text, |t| t.matches("PRIVATE KEY-----").count()),
        ),
    ];
    for (name, mbs) in rows {
        println!("{name:<48} {mbs:>9.1} MB/s");
    }
}

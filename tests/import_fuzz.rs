//! The importers on hostile input, in `cargo test`: deterministic mutations of a small
//! sample of each format (the fuzz targets' seeds) — truncations, flipped bytes, NULs and
//! invalid UTF-8, huge lines, deep nesting, wrong types for known fields, unknown event
//! types — held to the promises the fuzz targets check (`fuzz/src/lib.rs`, included here),
//! then imported for real into a temp store whose report must say what it kept raw. And the
//! inputs the fuzzing found or that were seen breaking an importer, each kept as a test.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod harness;

use shopfloor::model::{Lifecycle, RunState, Step, StepKind};
use shopfloor::redact::Redactor;
use shopfloor::store::Store;
use shopfloor::trace::{Format, ImportOptions, ImportReport, import_reader};

/// Each format's seed sample, as the fuzz targets start from it.
const SAMPLES: [(Format, &str); 6] = [
    (
        Format::ClaudeCode,
        include_str!("../fuzz/seeds/claude_code/session.jsonl"),
    ),
    (
        Format::ClaudeStream,
        include_str!("../fuzz/seeds/claude_stream/session.jsonl"),
    ),
    (
        Format::Codex,
        include_str!("../fuzz/seeds/codex/rollout.jsonl"),
    ),
    (
        Format::CodexExec,
        include_str!("../fuzz/seeds/codex_exec/events.jsonl"),
    ),
    (
        Format::Gemini,
        include_str!("../fuzz/seeds/gemini/session.jsonl"),
    ),
    (
        Format::Jsonl,
        include_str!("../fuzz/seeds/jsonl/steps.jsonl"),
    ),
];

/// A small deterministic generator (xorshift64*): the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values of the wrong type (and the awkward right ones) for any field.
const WRONG: [&str; 11] = [
    "null",
    "true",
    "-1",
    "184467440737095516150000",
    "1e308",
    "-0.0",
    "\"\"",
    "\"\\u0000\\ufffd\\n\"",
    "[]",
    "{}",
    "[[{\"type\":{}}]]",
];

/// Mutations of `sample`, by kind: a deterministic pick of each kind, enough to reach
/// every field and event of the sample while the test stays a matter of seconds.
fn mutations(sample: &str, seed: u64) -> Vec<(&'static str, Vec<u8>)> {
    let bytes = sample.as_bytes();
    let lines: Vec<&str> = sample.lines().collect();
    let mut rng = Rng(seed | 1);
    let mut out: Vec<(&'static str, Vec<u8>)> = Vec::new();
    // Cut anywhere: mid-line, mid-string, mid-escape.
    for i in 0..12 {
        let at = bytes.len() * i / 12 + rng.below(bytes.len() / 12);
        out.push(("truncated", bytes[..at.min(bytes.len())].to_vec()));
    }
    for _ in 0..12 {
        let mut b = bytes.to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(b.len());
            b[at] ^= 1 << rng.below(8);
        }
        out.push(("flipped bytes", b));
    }
    let junk: [&[u8]; 6] = [b"\0", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\r", b"\n\n\0\n"];
    for _ in 0..12 {
        let mut b = bytes.to_vec();
        let at = rng.below(b.len());
        let j = junk[rng.below(junk.len())];
        b.splice(at..at, j.iter().copied());
        out.push(("NUL or invalid UTF-8", b));
    }
    let parsed: Vec<(usize, serde_json::Value)> = lines
        .iter()
        .enumerate()
        .filter_map(|(n, l)| Some((n, serde_json::from_str(l).ok()?)))
        .collect();
    // Known fields given wrong values, in their line's context.
    let mut fields = Vec::new();
    for (n, v) in &parsed {
        let mut paths = Vec::new();
        field_paths(v, &mut Vec::new(), &mut paths);
        fields.extend(paths.into_iter().map(|p| (*n, v, p)));
    }
    for _ in 0..40 {
        let (n, v, path) = &fields[rng.below(fields.len())];
        let mut m = (*v).clone();
        *pointer_mut(&mut m, path) = serde_json::from_str(WRONG[rng.below(WRONG.len())]).unwrap();
        out.push(("wrong type", with_line(&lines, *n, &m.to_string())));
    }
    for _ in 0..8 {
        let (n, v) = &parsed[rng.below(parsed.len())];
        let ty = ["zzz_unknown", "", "user", "item.completed", "response_item"][rng.below(5)];
        let mut m = v.clone();
        if let Some(o) = m.as_object_mut() {
            o.insert("type".into(), ty.into());
        }
        out.push(("unknown type", with_line(&lines, *n, &m.to_string())));
    }
    // Deep nesting in place of a line's first field.
    for _ in 0..4 {
        let (n, v) = &parsed[rng.below(parsed.len())];
        if let Some(key) = v.as_object().and_then(|o| o.keys().next().cloned()) {
            let nested = match rng.below(2) {
                0 => format!("{}1{}", "[".repeat(5000), "]".repeat(5000)),
                _ => format!("{}1{}", "{\"a\":".repeat(100), "}".repeat(100)),
            };
            let mut m = v.clone();
            m[&key] = serde_json::Value::Null;
            let text = m.to_string().replacen("null", &nested, 1);
            out.push(("deep nesting", with_line(&lines, *n, &text)));
        }
    }
    // A huge value for the first string field of a line (a line over the parse limit is
    // `bad_input_is_kept_raw...` in tests/trace_import.rs).
    for _ in 0..2 {
        let n = rng.below(lines.len());
        let big = "x\\n\\\"y\\t".repeat(60_000);
        let huge = lines[n].replacen("\":\"", &format!("\":\"{big}"), 1);
        out.push(("huge line", with_line(&lines, n, &huge)));
    }
    out.push(("deep nesting", "[".repeat(200_000).into_bytes()));
    out.push((
        "reordered",
        lines
            .iter()
            .rev()
            .flat_map(|l| format!("{l}\n").into_bytes())
            .collect(),
    ));
    out.push(("repeated", sample.repeat(3).into_bytes()));
    out
}

/// The paths (keys and indexes) of every field under `v`.
fn field_paths(v: &serde_json::Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, c) in o {
                at.push(k.clone());
                out.push(at.clone());
                field_paths(c, at, out);
                at.pop();
            }
        }
        serde_json::Value::Array(a) => {
            for (i, c) in a.iter().enumerate().take(3) {
                at.push(i.to_string());
                field_paths(c, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn pointer_mut<'a>(v: &'a mut serde_json::Value, path: &[String]) -> &'a mut serde_json::Value {
    path.iter().fold(v, |v, k| match v {
        serde_json::Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
        other => &mut other[k.as_str()],
    })
}

fn with_line(lines: &[&str], n: usize, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        out.extend_from_slice(if i == n {
            text.as_bytes()
        } else {
            l.as_bytes()
        });
        out.push(b'\n');
    }
    out
}

fn opts(format: Format) -> ImportOptions {
    ImportOptions {
        format,
        agent: None,
        redactor: Redactor::standard(),
    }
}

/// Import `data` into `store` for real and check the report against what is stored.
fn import_for_real(store: &Store, format: Format, data: &[u8]) -> (ImportReport, Vec<Step>) {
    let report = import_reader(store, data, "mutated", &opts(format), &mut |_| {})
        .unwrap_or_else(|e| panic!("{format}: an import of bad lines failed: {e}"));
    let steps = store.steps(report.run, 0, u64::MAX).unwrap();
    let run = store.run(report.run).unwrap().unwrap();
    assert_eq!((run.state, run.steps), (RunState::Imported, report.steps));
    assert_eq!(report.steps as usize, steps.len());
    assert_eq!(report.lines, report.lines_with_steps + report.blank);
    let raw: Vec<&String> = steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Raw { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(
        report.raw as usize,
        raw.len(),
        "{format}: raw steps reported"
    );
    for reason in raw.iter().filter(|r| r.starts_with("line ")).take(1000) {
        assert!(
            report.warnings.contains(reason),
            "{format}: a problem kept raw but not reported: {reason}"
        );
    }
    (report, steps)
}

#[test]
fn mutated_samples_of_every_format_keep_every_line_and_report_what_is_raw() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store.redb")).unwrap();
    let started = std::time::Instant::now();
    let mut checked = 0;
    for (i, (format, sample)) in SAMPLES.into_iter().enumerate() {
        // The sample itself imports with no problem.
        let clean = harness::import_bytes(format, sample.as_bytes());
        assert_eq!(clean.lines, harness::line_count(sample.as_bytes()));
        // Then every mutation, one after another in one file, into the store: what it
        // stores is what the store-less import built, and it reports what it kept raw.
        let mut all = Vec::new();
        for (_, data) in mutations(sample, 0x5eed + i as u64) {
            harness::import_bytes(format, &data);
            checked += 1;
            all.extend_from_slice(&data);
            if !data.ends_with(b"\n") {
                all.push(b'\n');
            }
        }
        let expected = harness::import_once(format, &all);
        let (report, steps) = import_for_real(&store, format, &all);
        assert_eq!(report.lines, expected.lines, "{format}");
        assert_eq!(report.raw as usize, expected.raw(), "{format}");
        let kinds = |s: &[Step]| s.iter().map(|s| s.kind.name()).collect::<Vec<_>>();
        assert_eq!(
            kinds(&steps),
            kinds(&expected.steps),
            "{format}: stored as built"
        );
    }
    eprintln!(
        "{checked} mutated inputs checked in {:?}",
        started.elapsed()
    );
}

/// Import one hostile input through the harness and into a store; returns the steps.
fn hostile(format: Format, data: &[u8]) -> Vec<Step> {
    let started = std::time::Instant::now();
    let outcome = harness::import_bytes(format, data);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store.redb")).unwrap();
    import_for_real(&store, format, data);
    assert!(
        started.elapsed().as_secs() < 20,
        "{format}: {} bytes took {:?}",
        data.len(),
        started.elapsed()
    );
    outcome.steps
}

#[test]
fn a_2_kb_multi_edit_that_doubles_its_file_30_times_is_not_rebuilt() {
    // Each edit replaces every `a` by `aa`: rebuilt, the file would be 1 KB × 2^30.
    let edits: Vec<String> = (0..30)
        .map(|_| r#"{"old_string":"a","new_string":"aa","replace_all":true}"#.to_string())
        .collect();
    let trace = format!(
        "{}\n{}\n",
        format_args!(
            r#"{{"type":"assistant","sessionId":"s","message":{{"id":"m","role":"assistant","content":[{{"type":"tool_use","id":"t","name":"MultiEdit","input":{{"file_path":"/r/a","edits":[{}]}}}}]}}}}"#,
            edits.join(",")
        ),
        format_args!(
            r#"{{"type":"user","sessionId":"s","message":{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"t","content":"ok"}}]}},"toolUseResult":{{"filePath":"/r/a","originalFile":"{}","edits":[{}]}}}}"#,
            "a".repeat(1000),
            edits.join(",")
        )
    );
    assert!(trace.len() < 6000);
    let steps = hostile(Format::ClaudeCode, trace.as_bytes());
    let edit = steps.iter().find(|s| s.kind.name() == "file_edit").unwrap();
    let StepKind::FileEdit { before, after, .. } = &edit.kind else {
        unreachable!()
    };
    assert_eq!(before.as_ref().map(|b| b.len()), Some(1000));
    assert_eq!(after, &None, "not rebuilt");
}

#[test]
fn a_replace_all_that_would_make_a_terabyte_is_not_rebuilt() {
    let trace = format!(
        "{}\n{}\n",
        r#"{"type":"assistant","sessionId":"s","message":{"id":"m","role":"assistant","content":[{"type":"tool_use","id":"t","name":"Edit","input":{"file_path":"/r/a"}}]}}"#,
        format_args!(
            r#"{{"type":"user","sessionId":"s","message":{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"t","content":"ok"}}]}},"toolUseResult":{{"filePath":"/r/a","originalFile":"{a}","oldString":"a","newString":"{b}","replaceAll":true}}}}"#,
            a = "a".repeat(1 << 20),
            b = "b".repeat(1 << 20)
        )
    );
    let steps = hostile(Format::ClaudeCode, trace.as_bytes());
    assert!(steps.iter().any(|s| s.kind.name() == "file_edit"));
}

#[test]
fn a_multi_edit_of_many_edits_names_its_long_path_once() {
    // 5,000 empty edits of a 100 KB path: a header per edit was 1 GB of patch.
    let path = "p".repeat(100_000);
    let edits = vec!["{}"; 5000].join(",");
    let trace = format!(
        "{}\n{}\n",
        format_args!(
            r#"{{"type":"assistant","sessionId":"s","message":{{"id":"m","role":"assistant","content":[{{"type":"tool_use","id":"t","name":"MultiEdit","input":{{"file_path":"{path}","edits":[{edits}]}}}}]}}}}"#
        ),
        r#"{"type":"user","sessionId":"s","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"ok"}]}}"#
    );
    let steps = hostile(Format::ClaudeCode, trace.as_bytes());
    let edit = steps.iter().find(|s| s.kind.name() == "file_edit").unwrap();
    let StepKind::FileEdit { patch, .. } = &edit.kind else {
        unreachable!()
    };
    assert!(patch.len() < 3 * path.len() as u64, "{}", patch.len());
}

#[test]
fn a_write_over_a_large_unlike_file_is_diffed_in_linear_time() {
    let before: String = (0..60_000).map(|i| format!("old {i}\\n")).collect();
    let after: String = (0..60_000).map(|i| format!("new {i}\\n")).collect();
    let trace = format!(
        "{}\n{}\n",
        format_args!(
            r#"{{"type":"assistant","sessionId":"s","message":{{"id":"m","role":"assistant","content":[{{"type":"tool_use","id":"t","name":"Write","input":{{"file_path":"/r/a","content":"{after}"}}}}]}}}}"#
        ),
        format_args!(
            r#"{{"type":"user","sessionId":"s","message":{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"t","content":"ok"}}]}},"toolUseResult":{{"filePath":"/r/a","originalFile":"{before}","content":"{after}"}}}}"#
        )
    );
    let steps = hostile(Format::ClaudeCode, trace.as_bytes());
    let edit = steps.iter().find(|s| s.kind.name() == "file_edit").unwrap();
    let StepKind::FileEdit { patch, .. } = &edit.kind else {
        unreachable!()
    };
    assert!(patch.len() > 1_000_000);
}

#[test]
fn a_line_of_a_hundred_thousand_blocks_or_changes_stays_a_bounded_number_of_steps() {
    let blocks = vec!["{}"; 100_000].join(",");
    let claude = format!(
        r#"{{"type":"assistant","sessionId":"s","message":{{"role":"assistant","content":[{blocks}]}}}}"#
    );
    let codex = format!(
        r#"{{"type":"item.completed","item":{{"type":"file_change","changes":[{blocks}]}}}}"#
    );
    for (format, line) in [(Format::ClaudeCode, claude), (Format::CodexExec, codex)] {
        let steps = hostile(format, line.as_bytes());
        assert!(
            steps.len() <= harness::MAX_STEPS_PER_LINE,
            "{}",
            steps.len()
        );
        let last = steps.last().unwrap();
        assert!(
            matches!(&last.kind, StepKind::Raw { reason, data, .. }
                if reason.contains("100000") && data.len() == line.len() as u64),
            "{format}: the whole line is kept: {:?}",
            last.kind.summary()
        );
    }
}

#[test]
fn token_counts_near_u64_max_saturate_instead_of_overflowing() {
    let max = u64::MAX;
    let claude = format!(
        r#"{{"type":"assistant","sessionId":"s","message":{{"id":"m","role":"assistant","content":"hi","usage":{{"input_tokens":{max},"cache_creation_input_tokens":{max},"output_tokens":{max}}}}}}}
{{"type":"assistant","sessionId":"s","message":{{"id":"m2","role":"assistant","content":"hi","usage":{{"input_tokens":{max},"output_tokens":1}}}}}}
"#
    );
    let stream = format!(
        r#"{{"type":"result","num_turns":{max},"total_cost_usd":1e308,"usage":{{"input_tokens":{max}}}}}
{{"type":"result","num_turns":{max},"total_cost_usd":1e308,"usage":{{"input_tokens":{max}}}}}
"#
    );
    for (format, trace) in [(Format::ClaudeCode, claude), (Format::ClaudeStream, stream)] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.redb")).unwrap();
        harness::import_bytes(format, trace.as_bytes());
        let (report, _) = import_for_real(&store, format, trace.as_bytes());
        let run = store.run(report.run).unwrap().unwrap();
        assert_eq!(run.usage.input_tokens, max, "{format}");
        if format == Format::ClaudeStream {
            assert_eq!(run.usage.turns, Some(max));
        }
    }
}

#[test]
fn deep_nesting_and_huge_numbers_are_raw_or_typed_never_a_crash() {
    let deep = "[".repeat(100_000);
    let deep_obj = format!("{}{}", r#"{"a":"#.repeat(20_000), "1");
    let numbers = r#"{"type":"lifecycle","event":{"event":"usage","input_tokens":1e999999,"output_tokens":-1,"turns":340282366920938463463374607431768211456}}"#;
    for format in Format::ALL {
        for data in [deep.as_str(), deep_obj.as_str(), numbers] {
            hostile(format, data.as_bytes());
        }
    }
    let usage = r#"{"type":"lifecycle","event":{"event":"usage","input_tokens":18446744073709551615,"cost_usd":1e308}}"#;
    let steps = hostile(Format::Jsonl, usage.as_bytes());
    assert!(matches!(
        &steps[0].kind,
        StepKind::Lifecycle {
            event: Lifecycle::Usage(u)
        } if u.input_tokens == u64::MAX
    ));
}

#[test]
fn memory_import_of_mutated_lines_imports_or_reports_every_line() {
    let (store, bank) = harness::memory_bank();
    let sample = include_str!("../fuzz/seeds/memory_import/memories.jsonl");
    // All the mutations in a few imports: every line of each accounted for.
    let mutated = mutations(sample, 0xbeef);
    for group in mutated.chunks(mutated.len() / 4 + 1) {
        let mut data = Vec::new();
        for (_, m) in group {
            data.extend_from_slice(m);
            if !m.ends_with(b"\n") {
                data.push(b'\n');
            }
        }
        harness::import_memories(store, bank, &data);
    }
    for data in [
        "[".repeat(100_000),
        format!(
            r#"{{"text":"deep","ref":{}1{}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        ),
        r#"{"text":"n","ref":1e999999}"#.to_string(),
        "\0\0\0\n\u{feff}{\"text\":\"bom\"}\n".to_string(),
    ] {
        harness::import_memories(store, bank, data.as_bytes());
    }
}

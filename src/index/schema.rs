//! The one tantivy schema holding both document types (memories and steps), and how a
//! model value becomes a document. One index rather than two keeps a single writer, a
//! single commit and a single reader to reload.

use tantivy::TantivyDocument;
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
};

use super::filter::{is_glob, normalize_path};
use super::tokenizer::CODE_TOKENIZER;
use crate::model::{Lifecycle, Memory, Step, StepKind};

pub const DOC_MEMORY: &str = "memory";
pub const DOC_STEP: &str = "step";

/// Characters of each payload indexed for a step: enough for every word a reviewer would
/// search, without letting a 10 MB tool output dominate the index.
const STEP_PAYLOAD_CHARS: usize = 4096;

#[derive(Clone, Copy)]
pub struct Fields {
    pub doc_type: Field,
    /// `m:<id>` or `s:<run>:<seq>`: adding a document deletes any older one with the same
    /// key first, so re-indexing is idempotent.
    pub key: Field,
    pub mem_id: Field,
    /// Memory kind name or step kind name.
    pub kind: Field,
    /// A memory's searchable text (text, paths, tags), through the code-aware tokenizer.
    /// Memories and steps have separate text fields so an unfiltered search needs no
    /// doc-type clause, which lets tantivy prune with block-max WAND.
    pub body: Field,
    /// A step's searchable text (`step_text`).
    pub step_body: Field,
    /// Every directory prefix of every path (`src`, `src/index`, `src/index/mod.rs`), so a
    /// path filter is one term lookup.
    pub path_prefix: Field,
    /// Each path itself, normalised: a filter on `src/index/mod.rs` also wants memories
    /// about the directory `src`, found by looking up the filter path's ancestors here.
    pub path: Field,
    pub tag: Field,
    /// A memory's author name, or a step's agent.
    pub agent: Field,
    pub run: Field,
    pub seq: Field,
    /// Microseconds since the Unix epoch.
    pub ts: Field,
}

pub fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let body_opts = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(CODE_TOKENIZER)
            // BM25 needs term frequencies; queries are OR-of-terms, never phrases.
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        doc_type: b.add_text_field("doc_type", STRING),
        key: b.add_text_field("key", STRING),
        mem_id: b.add_u64_field("mem_id", INDEXED | FAST),
        kind: b.add_text_field("kind", STRING),
        body: b.add_text_field("body", body_opts.clone()),
        step_body: b.add_text_field("step_body", body_opts),
        path_prefix: b.add_text_field("path_prefix", STRING),
        path: b.add_text_field("path", STRING),
        tag: b.add_text_field("tag", STRING),
        agent: b.add_text_field("agent", STRING),
        run: b.add_u64_field("run", INDEXED | FAST),
        seq: b.add_u64_field("seq", FAST),
        ts: b.add_i64_field("ts", INDEXED | FAST),
    };
    (b.build(), fields)
}

/// Indexed in `path_prefix` for a memory with a glob path (`migrations/**`, `*.sql`): a
/// glob can match a filter's path whatever its prefix, so path filters always include
/// these documents and leave the exact test to `MemoryFilter::matches`.
pub const GLOB_MARK: &str = "\u{0}glob";

pub fn memory_key(id: u64) -> String {
    format!("m:{id}")
}

pub fn step_key(run: u64, seq: u64) -> String {
    format!("s:{run}:{seq}")
}

/// `src/index/mod.rs` -> `src`, `src/index`, `src/index/mod.rs`.
pub fn path_prefixes(path: &str) -> Vec<String> {
    let norm = normalize_path(path);
    let mut out = Vec::new();
    for (i, c) in norm.char_indices() {
        if c == '/' && i > 0 {
            out.push(norm[..i].to_string());
        }
    }
    if !norm.is_empty() {
        out.push(norm);
    }
    out
}

pub fn memory_doc(f: &Fields, m: &Memory) -> TantivyDocument {
    let mut d = TantivyDocument::default();
    d.add_text(f.doc_type, DOC_MEMORY);
    d.add_text(f.key, memory_key(m.id));
    d.add_u64(f.mem_id, m.id);
    d.add_text(f.kind, m.kind.name());
    let mut body = m.text.clone();
    for p in &m.paths {
        body.push(' ');
        body.push_str(p);
        for pre in path_prefixes(p) {
            d.add_text(f.path_prefix, pre);
        }
        d.add_text(f.path, normalize_path(p));
        if is_glob(p) {
            d.add_text(f.path_prefix, GLOB_MARK);
        }
    }
    for t in &m.tags {
        body.push(' ');
        body.push_str(t);
        d.add_text(f.tag, t);
    }
    d.add_text(f.body, body);
    d.add_text(f.agent, m.author.name());
    if let Some(src) = m.source {
        d.add_u64(f.run, src.run);
    }
    d.add_i64(f.ts, m.ts.as_microsecond());
    d
}

pub fn step_doc(f: &Fields, s: &Step) -> TantivyDocument {
    let mut d = TantivyDocument::default();
    d.add_text(f.doc_type, DOC_STEP);
    d.add_text(f.key, step_key(s.run, s.seq));
    d.add_text(f.kind, s.kind.name());
    d.add_text(f.step_body, step_text(s));
    if let StepKind::FileEdit { path, .. } = &s.kind {
        for pre in path_prefixes(path) {
            d.add_text(f.path_prefix, pre);
        }
    }
    d.add_text(f.agent, &s.agent);
    d.add_u64(f.run, s.run);
    d.add_u64(f.seq, s.seq);
    d.add_i64(f.ts, s.ts.as_microsecond());
    d
}

fn clip(s: &str) -> &str {
    match s.char_indices().nth(STEP_PAYLOAD_CHARS) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The searchable text of a step: tool names, commands, paths, messages and payload
/// previews (large payloads are blob references in the store; their preview is what the
/// index sees, which is what lists show too).
pub fn step_text(s: &Step) -> String {
    let mut parts: Vec<&str> = vec![s.kind.name()];
    match &s.kind {
        StepKind::UserMessage { text }
        | StepKind::AgentMessage { text }
        | StepKind::Thinking { text }
        | StepKind::Decision { text } => parts.push(clip(text.preview())),
        StepKind::ToolCall { name, input, .. } => {
            parts.push(name);
            parts.push(clip(input.preview()));
        }
        StepKind::ToolResult {
            output, is_error, ..
        } => {
            if *is_error {
                parts.push("error");
            }
            parts.push(clip(output.preview()));
        }
        StepKind::Command {
            argv,
            output,
            exit_code,
        } => {
            parts.extend(argv.iter().map(String::as_str));
            if exit_code.is_some_and(|c| c != 0) {
                parts.push("failed");
            }
            parts.push(clip(output.preview()));
        }
        StepKind::FileEdit { path, patch, .. } => {
            parts.push(path);
            parts.push(clip(patch.preview()));
        }
        StepKind::Error { message } => parts.push(clip(message.preview())),
        StepKind::Lifecycle { event } => match event {
            Lifecycle::Started { model, .. } => {
                parts.push("started");
                parts.extend(model.as_deref());
            }
            Lifecycle::Exited { .. } => parts.push("exited"),
            Lifecycle::Usage(_) => parts.push("usage"),
            Lifecycle::Note { what, text } => {
                parts.push(what);
                parts.push(clip(text.preview()));
            }
        },
        StepKind::Raw { reason, data, .. } => {
            parts.push(reason);
            parts.push(clip(data.preview()));
        }
    }
    parts.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    #[test]
    fn prefixes_of_a_path() {
        assert_eq!(
            path_prefixes("./src/index/mod.rs"),
            vec!["src", "src/index", "src/index/mod.rs"]
        );
        assert_eq!(path_prefixes("src/"), vec!["src"]);
        assert!(path_prefixes("").is_empty());
    }

    #[test]
    fn step_text_holds_tool_command_and_path() {
        let mk = |kind| Step {
            run: 1,
            seq: 0,
            ts: Timestamp::UNIX_EPOCH,
            agent: "claude".into(),
            parent: None,
            kind,
        };
        let t = step_text(&mk(StepKind::ToolCall {
            call_id: None,
            name: "Bash".into(),
            input: r#"{"command":"cargo test"}"#.into(),
        }));
        assert!(t.contains("Bash") && t.contains("cargo test"), "{t}");
        let t = step_text(&mk(StepKind::Command {
            argv: vec!["git".into(), "status".into()],
            exit_code: Some(1),
            output: "fatal".into(),
        }));
        assert!(t.contains("git\nstatus") && t.contains("failed"), "{t}");
        let t = step_text(&mk(StepKind::FileEdit {
            path: "src/a.rs".into(),
            before: None,
            after: None,
            patch: "+fn main() {}".into(),
        }));
        assert!(t.contains("src/a.rs") && t.contains("fn main"), "{t}");
    }
}

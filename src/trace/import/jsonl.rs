//! shopfloor's own interchange format: one `model::Step` JSON per line, as `trace export`
//! writes it. `run` and `seq` are not trusted (the builder reassigns them); `ts` and `agent`
//! are optional, so minimal lines such as `{"type":"agent_message","text":"hi"}` work too.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::Deserialize;

use super::{Draft, TraceParser, parse_line, problem, raw};
use crate::model::{Payload, StepKind};

#[derive(Default)]
pub struct JsonlParser {
    /// Call ids of the tool calls seen, by their seq in the source, so a derived step whose
    /// `parent` names a call still answers it after seqs are reassigned.
    calls_by_seq: HashMap<u64, String>,
}

#[derive(Deserialize)]
struct Line {
    #[serde(default)]
    ts: Option<Timestamp>,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    parent: Option<u64>,
    #[serde(flatten)]
    kind: StepKind,
}

impl TraceParser for JsonlParser {
    fn feed(&mut self, line_no: u64, line: &[u8], out: &mut Vec<Draft>) {
        let v = match parse_line(line_no, line) {
            Ok(v) => v,
            Err(d) => return out.push(*d),
        };
        match serde_json::from_value::<Line>(v) {
            Ok(mut l) => {
                // A blob reference points into another store: keep what it shows.
                let mut dangling = false;
                for p in l.kind.payloads_mut() {
                    if let Payload::Blob(b) = p {
                        dangling = true;
                        *p = Payload::Text(b.preview.clone());
                    }
                }
                if let (
                    Some(seq),
                    StepKind::ToolCall {
                        call_id: Some(id), ..
                    },
                ) = (l.seq, &l.kind)
                {
                    self.calls_by_seq.insert(seq, id.clone());
                }
                let answers = l.parent.and_then(|p| self.calls_by_seq.get(&p).cloned());
                out.push(Draft::new(l.kind).at(l.ts).by(l.agent).answering(answers));
                if dangling {
                    out.push(raw(
                        line_no,
                        problem(line_no, "blob reference from another store; only its preview was kept (export with `trace export`, which inlines blobs)"),
                        String::from_utf8_lossy(line).into_owned(),
                    ));
                }
            }
            Err(e) => out.push(raw(
                line_no,
                problem(line_no, format!("not a shopfloor step: {e}")),
                String::from_utf8_lossy(line).into_owned(),
            )),
        }
    }

    fn finish(&mut self, _out: &mut Vec<Draft>) {}
}

//! Turns drafts into the steps of one run: dense sequence numbers, agent and time filled
//! in, tool results (and what derives from them) pointed at their calls, secrets redacted.

use std::collections::HashMap;

use jiff::Timestamp;

use super::import::Draft;
use crate::model::{RunId, Step, StepKind};
use crate::redact::{Redactor, StreamRedactor};

pub struct TraceBuilder {
    run: RunId,
    next_seq: u64,
    agent: String,
    last_ts: Option<Timestamp>,
    /// Seq of each tool call, by the agent's call id.
    calls: HashMap<String, u64>,
    /// Stateful: a private key printed a line a step is hidden across those steps.
    redactor: StreamRedactor,
}

impl TraceBuilder {
    /// A builder for `run` whose next step gets `start_seq` (the run's current step count).
    pub fn new(run: RunId, start_seq: u64, agent: impl Into<String>, redactor: Redactor) -> Self {
        TraceBuilder {
            run,
            next_seq: start_seq,
            agent: agent.into(),
            last_ts: None,
            calls: HashMap::new(),
            redactor: StreamRedactor::new(redactor),
        }
    }

    /// The seq the next pushed step gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn push(&mut self, d: Draft) -> Step {
        let seq = self.next_seq;
        self.next_seq += 1;
        // A step without its own time happened no earlier than the one before it.
        let ts = d.ts.or(self.last_ts).unwrap_or_else(Timestamp::now);
        self.last_ts = Some(ts);
        let parent = match &d.kind {
            StepKind::ToolCall {
                call_id: Some(id), ..
            } => {
                self.calls.insert(id.clone(), seq);
                None
            }
            StepKind::ToolResult {
                call_id: Some(id), ..
            } => self.calls.get(id).copied(),
            _ => d
                .answers
                .as_ref()
                .and_then(|id| self.calls.get(id).copied()),
        };
        let mut kind = d.kind;
        self.redactor.redact_step(&mut kind);
        Step {
            run: self.run,
            seq,
            ts,
            agent: d.agent.unwrap_or_else(|| self.agent.clone()),
            parent,
            kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Payload;

    #[test]
    fn seq_parent_ts_agent_and_redaction() {
        let mut b = TraceBuilder::new(4, 10, "codex", Redactor::standard());
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let call = b.push(
            Draft::new(StepKind::ToolCall {
                call_id: Some("c1".into()),
                name: "shell".into(),
                input: "echo AKIAIOSFODNN7EXAMPLE".into(),
            })
            .at(Some(t0)),
        );
        assert_eq!(
            (call.run, call.seq, call.agent.as_str(), call.ts),
            (4, 10, "codex", t0)
        );
        assert!(call.kind.summary().contains("[REDACTED:aws_access_key]"));
        let res = b.push(Draft::new(StepKind::ToolResult {
            call_id: Some("c1".into()),
            output: "ok".into(),
            is_error: false,
        }));
        assert_eq!((res.seq, res.parent, res.ts), (11, Some(10), t0));
        let cmd = b.push(
            Draft::new(StepKind::Command {
                argv: vec!["echo".into()],
                exit_code: Some(0),
                output: Payload::default(),
            })
            .answering(Some("c1".into()))
            .by(Some("other".into())),
        );
        assert_eq!(
            (cmd.seq, cmd.parent, cmd.agent.as_str()),
            (12, Some(10), "other")
        );
        let orphan = b.push(Draft::new(StepKind::ToolResult {
            call_id: Some("zz".into()),
            output: "".into(),
            is_error: false,
        }));
        assert_eq!(orphan.parent, None);
        assert_eq!(b.next_seq(), 14);
    }
}

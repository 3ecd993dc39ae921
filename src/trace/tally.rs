//! What a run's steps add up to: its spend, the files it changed, its model and its time
//! span. One tally for a live run, an import and a hook's session sync, so the three
//! report a run the same way.

use jiff::Timestamp;

use crate::model::{Lifecycle, Step, StepKind, Usage};

#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Tokens, cost and turns: each usage step's spend added, and the turns it covers.
    pub usage: Usage,
    /// Paths file edits named (repo-relative, as the builder stores them), first edit first.
    pub files: Vec<String>,
    /// The model the session said it runs, from its start step.
    pub model: Option<String>,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
}

impl Tally {
    /// Count `step`; true when it names a file not seen before.
    pub fn add(&mut self, step: &Step) -> bool {
        self.first_ts.get_or_insert(step.ts);
        self.last_ts = Some(step.ts);
        match &step.kind {
            StepKind::Lifecycle {
                event: Lifecycle::Started { model: Some(m), .. },
            } => self.model = Some(m.clone()),
            StepKind::Lifecycle {
                event: Lifecycle::Usage(u),
            } => {
                self.usage.add_spend(u);
                if let Some(n) = u.turns {
                    self.usage.turns = Some(self.usage.turns.unwrap_or(0).saturating_add(n));
                }
            }
            StepKind::FileEdit { path, .. } if !self.files.contains(path) => {
                self.files.push(path.clone());
                return true;
            }
            _ => {}
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Payload;

    fn step(seq: u64, kind: StepKind) -> Step {
        Step {
            run: 1,
            seq,
            ts: Timestamp::from_second(1_700_000_000 + seq as i64).unwrap(),
            agent: "a".into(),
            parent: None,
            kind,
        }
    }

    #[test]
    fn adds_spend_turns_files_model_and_span() {
        let mut t = Tally::default();
        let usage = |i, turns| StepKind::Lifecycle {
            event: Lifecycle::Usage(Usage {
                input_tokens: i,
                turns,
                ..Usage::default()
            }),
        };
        let edit = |p: &str| StepKind::FileEdit {
            path: p.into(),
            before: None,
            after: None,
            patch: Payload::Text(String::new()),
        };
        assert!(!t.add(&step(0, usage(3, Some(1)))));
        assert!(t.add(&step(1, edit("a.rs"))));
        assert!(!t.add(&step(2, edit("a.rs"))), "a file once");
        assert!(t.add(&step(3, edit("b.rs"))));
        t.add(&step(4, usage(4, Some(2))));
        assert_eq!(t.usage.input_tokens, 7);
        assert_eq!(t.usage.turns, Some(3));
        assert_eq!(t.files, ["a.rs", "b.rs"]);
        assert_eq!(t.first_ts.unwrap().as_second(), 1_700_000_000);
        assert_eq!(t.last_ts.unwrap().as_second(), 1_700_000_004);
    }
}

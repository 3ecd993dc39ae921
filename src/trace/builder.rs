//! Turns drafts into the steps of one run: dense sequence numbers, agent and time filled
//! in, tool results (and what derives from them) pointed at their calls, paths inside the
//! agent's sandbox made repo-relative, secrets redacted.
//!
//! Time: a step carries the time its line gives, else the time the line arrived (a live
//! run), else, for a file with no times in it, the time of the step before (a step happened
//! no earlier than the one before it).
//!
//! Paths: an agent names files by absolute path in its sandbox (`<data dir>/worktrees/4-1/
//! calc.py`, `/workspace/calc.py` in Docker, the session's cwd in a transcript). Those are
//! stored relative to the repository (`calc.py`), in file edits, tool inputs and command
//! arguments, so a path filter matches across runs and replay asks for `calc.py`.

use std::borrow::Cow;
use std::collections::HashMap;

use jiff::Timestamp;

use super::import::Draft;
use crate::model::{Lifecycle, Payload, RunId, Step, StepKind};
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
    /// The sandbox's roots as the agent names them (`/abs/checkout`, `/workspace`), each
    /// ending in `/`: a path under one is stored relative to it.
    roots: Vec<String>,
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
            roots: Vec::new(),
        }
    }

    /// Paths under `root` (the sandbox as the agent sees it) are stored relative to it.
    /// A session's own `cwd` (its start step) is added as a root when it arrives.
    pub fn relative_to(mut self, root: impl AsRef<str>) -> Self {
        self.add_root(root.as_ref());
        self
    }

    fn add_root(&mut self, root: &str) {
        let root = root.trim_end_matches('/');
        // Only absolute roots with something in them: `/` would strip every path.
        if !root.starts_with('/') || root.len() < 2 {
            return;
        }
        let root = format!("{root}/");
        if !self.roots.contains(&root) {
            // Longest first: a checkout inside another root is stripped whole.
            self.roots.push(root);
            self.roots.sort_by_key(|r| std::cmp::Reverse(r.len()));
        }
    }

    /// `text` with every sandbox root taken off the paths in it; a text that is a root
    /// itself (a cwd argument) becomes `.` when `bare_is_dot`.
    fn relative<'a>(&self, text: &'a str, bare_is_dot: bool) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for root in &self.roots {
            if out.contains(root.as_str()) {
                out = Cow::Owned(out.replace(root.as_str(), ""));
            }
            // The root itself (a cwd argument, `"file_path": "/workspace"`): the repository.
            let bare = &root[..root.len() - 1];
            if bare_is_dot && out == bare {
                out = Cow::Owned(".".to_string());
            }
        }
        out
    }

    fn relative_payload(&self, p: &mut Payload) {
        if let Payload::Text(t) = p
            && let Cow::Owned(r) = self.relative(t, false)
        {
            *t = r;
        }
    }

    fn relativize(&mut self, kind: &mut StepKind) {
        if let StepKind::Lifecycle {
            event: Lifecycle::Started { cwd: Some(cwd), .. },
        } = kind
        {
            let cwd = cwd.clone();
            self.add_root(&cwd);
            return;
        }
        if self.roots.is_empty() {
            return;
        }
        match kind {
            StepKind::FileEdit { path, patch, .. } => {
                // Only a path under a root: an edit naming the root itself is kept as
                // the agent wrote it, since `.` would say it edited the repository.
                if let Cow::Owned(r) = self.relative(path, false) {
                    *path = r;
                }
                self.relative_payload(patch);
            }
            StepKind::ToolCall { input, .. } => self.relative_payload(input),
            StepKind::Command { argv, .. } => {
                for a in argv.iter_mut() {
                    if let Cow::Owned(r) = self.relative(a, true) {
                        *a = r;
                    }
                }
            }
            _ => {}
        }
    }

    /// The seq the next pushed step gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The next step, from a draft of a file: its own time, else the step before's.
    pub fn push(&mut self, d: Draft) -> Step {
        self.push_at(d, None)
    }

    /// The next step, from a draft of a line that `arrived` then (a live run's): its own
    /// time when the line gives one, else the time it arrived.
    pub fn push_at(&mut self, d: Draft, arrived: Option<Timestamp>) -> Step {
        let seq = self.next_seq;
        self.next_seq += 1;
        let ts =
            d.ts.or(arrived)
                .or(self.last_ts)
                .unwrap_or_else(Timestamp::now);
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
        self.relativize(&mut kind);
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

    #[test]
    fn live_lines_are_stamped_when_they_arrive_and_files_inherit() {
        let mut b = TraceBuilder::new(1, 0, "codex", Redactor::standard());
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:00:03Z".parse().unwrap();
        let msg = || Draft::new(StepKind::AgentMessage { text: "hi".into() });
        assert_eq!(b.push_at(msg(), Some(t0)).ts, t0);
        assert_eq!(
            b.push_at(msg(), Some(t1)).ts,
            t1,
            "not the first line's time"
        );
        let own: Timestamp = "2025-06-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            b.push_at(msg().at(Some(own)), Some(t1)).ts,
            own,
            "the line's own time wins"
        );
        assert_eq!(
            b.push(msg()).ts,
            own,
            "a file's line without a time inherits"
        );
    }

    #[test]
    fn sandbox_paths_become_repo_relative() {
        let mut b = TraceBuilder::new(1, 0, "codex", Redactor::standard())
            .relative_to("/data/ws/worktrees/4-1")
            .relative_to("/workspace");
        let edit = b.push(Draft::new(StepKind::FileEdit {
            path: "/workspace/src/calc.py".into(),
            before: None,
            after: None,
            patch: "--- a//workspace/src/calc.py\n+++ b//workspace/src/calc.py\n".into(),
        }));
        let StepKind::FileEdit { path, patch, .. } = &edit.kind else {
            panic!()
        };
        assert_eq!(path, "src/calc.py");
        assert_eq!(patch.preview(), "--- a/src/calc.py\n+++ b/src/calc.py\n");
        let call = b.push(Draft::new(StepKind::ToolCall {
            call_id: None,
            name: "Read".into(),
            input: r#"{"file_path":"/data/ws/worktrees/4-1/calc.py"}"#.into(),
        }));
        assert!(
            call.kind.summary().contains(r#"{"file_path":"calc.py"}"#),
            "{}",
            call.kind.summary()
        );
        let cmd = b.push(Draft::new(StepKind::Command {
            argv: vec!["ls".into(), "/workspace".into(), "/etc/passwd".into()],
            exit_code: Some(0),
            output: Payload::default(),
        }));
        let StepKind::Command { argv, .. } = &cmd.kind else {
            panic!()
        };
        assert_eq!(
            argv,
            &["ls", ".", "/etc/passwd"],
            "only the sandbox's paths"
        );
        // A transcript names its root in its start step.
        let mut t = TraceBuilder::new(2, 0, "claude-code", Redactor::standard());
        t.push(Draft::new(StepKind::Lifecycle {
            event: Lifecycle::Started {
                model: None,
                session: None,
                cwd: Some("/home/me/proj".into()),
            },
        }));
        let e = t.push(Draft::new(StepKind::FileEdit {
            path: "/home/me/proj/a.rs".into(),
            before: None,
            after: None,
            patch: Payload::default(),
        }));
        assert!(matches!(&e.kind, StepKind::FileEdit { path, .. } if path == "a.rs"));
    }
}

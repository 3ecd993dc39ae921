//! A step's detail, formatted once for every view: the CLI's `trace show --step`, the MCP
//! tool `trace_step` (an agent reading another agent's step) and the control room's step
//! pane. `parts` walks the step's kind once and says what to show and in what order (what
//! the step did, the facts beside it, its own text); a view only decides how each part
//! looks: a label line, a colour, a cut. Where the audiences are worded differently (a
//! person at a terminal, an agent, a pane with keys), `Voice` picks the words.

use std::borrow::Cow;

use crate::model::{Lifecycle, Step, StepKind};

/// Who reads the detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Voice {
    /// A person running `shopfloor trace show --step`.
    Cli,
    /// An agent calling `trace_step`: every payload under a label, nothing reformatted.
    Mcp,
    /// The control room's step pane.
    Tui,
}

/// What a part is, which is how a view styles it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// What the step did: its tool, its file, why it was not understood.
    Head,
    /// A command line, in the colour of its kind.
    Command,
    /// A line with no style of its own.
    Plain,
    /// A fact beside it: a call id, the step it answers, where a run started.
    Note,
    /// It went well: a command's zero exit.
    Success,
    /// It failed: a command's exit code, a tool's error.
    Failure,
    /// The step's own text.
    Body(Body),
}

/// What a step's own text is, which is how a view lays it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// Words of the step (a message, a thought, an error), in the colour of its kind; may
    /// carry ANSI colours.
    Text,
    /// What a tool or command printed; may carry ANSI colours.
    Output,
    /// Lines shown as they are: a tool's input, raw data.
    Verbatim,
    /// A unified diff.
    Diff,
}

/// One part of a step's detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part<'a> {
    pub role: Role,
    /// What a body is (`input`, `output`, `diff`...), for views that say so.
    pub label: Option<&'static str>,
    pub text: Cow<'a, str>,
}

impl<'a> Part<'a> {
    fn new(role: Role, text: impl Into<Cow<'a, str>>) -> Part<'a> {
        Part {
            role,
            label: None,
            text: text.into(),
        }
    }

    fn body(
        body: Body,
        label: &'static str,
        voice: Voice,
        text: impl Into<Cow<'a, str>>,
    ) -> Part<'a> {
        Part {
            role: Role::Body(body),
            label: voice.labels(label).then_some(label),
            text: text.into(),
        }
    }
}

impl Voice {
    /// Whether a body is put under its label: an agent is told what every payload is;
    /// the pane names only a tool's input (its output is headed by its own step).
    fn labels(self, label: &str) -> bool {
        match self {
            Voice::Cli => false,
            Voice::Mcp => true,
            Voice::Tui => label == "input",
        }
    }
}

/// The serde name of a step's kind (`tool_call`, `user_message`...), which is also what
/// `shopfloor trace search --kind` takes.
pub fn kind_tag(k: &StepKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_else(|| k.name().to_string())
}

/// The line naming a step above its detail: run, step, kind, agent, time.
pub fn heading(s: &Step, voice: Voice) -> String {
    let (kind, ts) = match voice {
        Voice::Mcp => (
            kind_tag(&s.kind),
            s.ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        ),
        Voice::Cli | Voice::Tui => (s.kind.name().to_string(), s.ts.to_string()),
    };
    format!("run {} step {} · {kind} · {} · {ts}", s.run, s.seq, s.agent)
}

/// One step as a timeline row: its sequence (right-aligned to `seq_width`), `!` for an
/// error, the time, the kind and `summary` (the caller cuts it to fit).
pub fn timeline_row(s: &Step, seq_width: usize, summary: &str) -> String {
    let mark = if s.kind.is_error() { "!" } else { " " };
    format!(
        "{:>seq_width$} {mark} {} {:<11} {summary}",
        s.seq,
        s.ts.strftime("%H:%M:%S"),
        s.kind.name(),
    )
}

/// JSON laid out over lines when `s` is JSON; else `s` as it is.
pub fn pretty_json(s: &str) -> String {
    serde_json::from_str::<serde_json::Value>(s)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| s.to_string())
}

/// `wrap(value)` when there is a value, else nothing: the optional end of a line.
fn suffix<T: std::fmt::Display>(value: Option<T>, wrap: impl Fn(T) -> String) -> String {
    value.map(wrap).unwrap_or_default()
}

/// What to show of step `s`, in order. The pane adds what only it holds (a tool call's
/// result, a file as it was) around these.
pub fn parts(s: &Step, voice: Voice) -> Vec<Part<'_>> {
    let mut out = Vec::new();
    match &s.kind {
        StepKind::UserMessage { text }
        | StepKind::AgentMessage { text }
        | StepKind::Thinking { text }
        | StepKind::Decision { text } => {
            out.push(Part::new(Role::Body(Body::Text), text.preview()))
        }
        StepKind::Error { message } => {
            out.push(Part::body(Body::Text, "error", voice, message.preview()))
        }
        StepKind::ToolCall {
            name,
            input,
            call_id,
        } => {
            let call = call_id.as_deref();
            out.push(Part::new(
                Role::Head,
                match voice {
                    Voice::Cli => format!("tool {name}{}", suffix(call, |c| format!(" ({c})"))),
                    Voice::Mcp => {
                        format!("tool: {name}{}", suffix(call, |c| format!(" (call {c})")))
                    }
                    Voice::Tui => format!("tool call: {name}"),
                },
            ));
            if let (Voice::Tui, Some(id)) = (voice, call) {
                out.push(Part::new(Role::Note, format!("id {id}")));
            }
            let input: Cow<str> = match voice {
                Voice::Mcp => input.preview().into(),
                Voice::Cli | Voice::Tui => pretty_json(input.preview()).into(),
            };
            out.push(Part::body(Body::Verbatim, "input", voice, input));
        }
        StepKind::ToolResult {
            call_id,
            output,
            is_error,
        } => {
            match voice {
                Voice::Cli if *is_error => out.push(Part::new(Role::Failure, "error result:")),
                Voice::Cli => {}
                Voice::Mcp => out.push(Part::new(
                    Role::Head,
                    format!(
                        "{}result{}",
                        if *is_error { "error " } else { "" },
                        suffix(call_id.as_deref(), |c| format!(" of call {c}"))
                    ),
                )),
                Voice::Tui => {
                    if let Some(p) = s.parent {
                        out.push(Part::new(
                            Role::Note,
                            format!("answers the call at step {p}"),
                        ));
                    }
                    if *is_error {
                        out.push(Part::new(Role::Failure, "✗ the tool failed"));
                    }
                }
            }
            out.push(Part::body(Body::Output, "output", voice, output.preview()));
        }
        StepKind::Command {
            argv,
            exit_code,
            output,
        } => {
            let line = format!("$ {}", argv.join(" "));
            match voice {
                Voice::Cli => {
                    out.push(Part::new(Role::Command, line));
                    out.push(Part::new(
                        Role::Note,
                        format!(
                            "exit code: {}",
                            exit_code.map_or("unknown".into(), |c| c.to_string())
                        ),
                    ));
                }
                Voice::Mcp => out.push(Part::new(
                    Role::Command,
                    format!(
                        "{line}{}",
                        suffix(*exit_code, |c| format!("  (exit code {c})"))
                    ),
                )),
                Voice::Tui => {
                    out.push(Part::new(Role::Command, line));
                    out.push(match exit_code {
                        Some(0) => Part::new(Role::Success, "exit code 0 ✓"),
                        Some(c) => Part::new(Role::Failure, format!("exit code {c} ✗")),
                        None => Part::new(Role::Note, "exit code unknown"),
                    });
                    out.push(Part::new(Role::Plain, ""));
                }
            }
            out.push(Part::body(Body::Output, "output", voice, output.preview()));
        }
        StepKind::FileEdit {
            path,
            before,
            after,
            patch,
        } => {
            let what = match (before, after) {
                (None, Some(_)) => "created",
                (Some(_), None) => "deleted",
                _ => "edited",
            };
            match voice {
                Voice::Tui => out.push(Part::new(
                    Role::Head,
                    format!("{path} {what} (f: the file as it was here)"),
                )),
                Voice::Cli | Voice::Mcp => out.push(Part::new(Role::Head, format!("edit {path}"))),
            }
            if voice == Voice::Cli && what != "edited" {
                out.push(Part::new(Role::Note, format!("({what})")));
            }
            out.push(Part::body(Body::Diff, "diff", voice, patch.preview()));
        }
        StepKind::Lifecycle { event } => match (voice, event) {
            (Voice::Cli, Lifecycle::Usage(u)) => out.push(Part::new(
                Role::Plain,
                format!(
                    "tokens: {} in, {} out, {} cache read; cost: {}; turns: {}",
                    u.input_tokens,
                    u.output_tokens,
                    u.cache_read_tokens,
                    u.cost_usd.map_or("-".into(), |c| format!("${c:.4}")),
                    u.turns.map_or("-".into(), |t| t.to_string())
                ),
            )),
            (Voice::Cli, other) => out.push(Part::new(
                Role::Plain,
                serde_json::to_string_pretty(other).unwrap_or_default(),
            )),
            (Voice::Mcp | Voice::Tui, _) => {
                out.push(Part::new(Role::Plain, s.kind.summary()));
                if let (
                    Voice::Tui,
                    Lifecycle::Started {
                        cwd: Some(c),
                        session,
                        ..
                    },
                ) = (voice, event)
                {
                    out.push(Part::new(Role::Note, format!("in {c}")));
                    if let Some(s) = session {
                        out.push(Part::new(Role::Note, format!("session {s}")));
                    }
                }
            }
        },
        StepKind::Raw { line, reason, data } => {
            out.push(match voice {
                Voice::Cli => Part::new(
                    Role::Head,
                    format!(
                        "raw ({reason}){}",
                        suffix(*line, |l| format!(", source line {l}"))
                    ),
                ),
                Voice::Mcp => Part::new(
                    Role::Head,
                    format!(
                        "unparsed input{}: {reason}",
                        suffix(*line, |l| format!(" (line {l})"))
                    ),
                ),
                Voice::Tui => Part::new(
                    Role::Note,
                    format!(
                        "not understood ({reason}){}",
                        suffix(*line, |l| format!(", source line {l}"))
                    ),
                ),
            });
            out.push(Part::body(Body::Verbatim, "data", voice, data.preview()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Payload, Usage};
    use jiff::Timestamp;

    fn step(kind: StepKind) -> Step {
        Step {
            run: 3,
            seq: 4,
            ts: Timestamp::UNIX_EPOCH,
            agent: "claude".into(),
            parent: Some(2),
            kind,
        }
    }

    /// The parts as plain lines, labels as `label:` lines.
    fn text(s: &Step, voice: Voice) -> Vec<String> {
        parts(s, voice)
            .into_iter()
            .flat_map(|p| {
                p.label
                    .map(|l| format!("{l}:"))
                    .into_iter()
                    .chain([p.text.into_owned()])
            })
            .collect()
    }

    #[test]
    fn a_tool_call_is_worded_for_each_reader() {
        let s = step(StepKind::ToolCall {
            name: "Read".into(),
            input: Payload::Text("{\"path\":\"a.rs\"}".into()),
            call_id: Some("c1".into()),
        });
        let pretty = "{\n  \"path\": \"a.rs\"\n}";
        assert_eq!(text(&s, Voice::Cli), ["tool Read (c1)", pretty]);
        assert_eq!(
            text(&s, Voice::Mcp),
            ["tool: Read (call c1)", "input:", "{\"path\":\"a.rs\"}"]
        );
        assert_eq!(
            text(&s, Voice::Tui),
            ["tool call: Read", "id c1", "input:", pretty]
        );
        assert_eq!(parts(&s, Voice::Tui)[1].role, Role::Note);
    }

    #[test]
    fn a_command_says_its_exit_code() {
        let cmd = |exit_code| {
            step(StepKind::Command {
                argv: vec!["cargo".into(), "test".into()],
                exit_code,
                output: Payload::Text("ok".into()),
            })
        };
        assert_eq!(
            text(&cmd(Some(101)), Voice::Cli),
            ["$ cargo test", "exit code: 101", "ok"]
        );
        assert_eq!(text(&cmd(None), Voice::Cli)[1], "exit code: unknown");
        assert_eq!(
            text(&cmd(Some(101)), Voice::Mcp),
            ["$ cargo test  (exit code 101)", "output:", "ok"]
        );
        let ok = cmd(Some(0));
        let tui = parts(&ok, Voice::Tui);
        assert_eq!(
            (tui[1].role, tui[1].text.as_ref()),
            (Role::Success, "exit code 0 ✓")
        );
        let failed = cmd(Some(1));
        let tui = parts(&failed, Voice::Tui);
        assert_eq!(
            (tui[1].role, tui[1].text.as_ref()),
            (Role::Failure, "exit code 1 ✗")
        );
        assert_eq!(tui.last().unwrap().role, Role::Body(Body::Output));
    }

    #[test]
    fn a_tool_result_an_edit_and_raw_data() {
        let r = step(StepKind::ToolResult {
            call_id: Some("c1".into()),
            output: Payload::Text("boom".into()),
            is_error: true,
        });
        assert_eq!(text(&r, Voice::Cli), ["error result:", "boom"]);
        assert_eq!(
            text(&r, Voice::Mcp),
            ["error result of call c1", "output:", "boom"]
        );
        assert_eq!(
            text(&r, Voice::Tui),
            ["answers the call at step 2", "✗ the tool failed", "boom"]
        );
        let e = step(StepKind::FileEdit {
            path: "a.rs".into(),
            before: None,
            after: Some(Payload::Text("x".into())),
            patch: Payload::Text("+x".into()),
        });
        assert_eq!(text(&e, Voice::Cli), ["edit a.rs", "(created)", "+x"]);
        assert_eq!(text(&e, Voice::Mcp), ["edit a.rs", "diff:", "+x"]);
        assert_eq!(
            text(&e, Voice::Tui),
            ["a.rs created (f: the file as it was here)", "+x"]
        );
        let raw = step(StepKind::Raw {
            line: Some(7),
            reason: "bad json".into(),
            data: Payload::Text("{".into()),
        });
        assert_eq!(
            text(&raw, Voice::Cli),
            ["raw (bad json), source line 7", "{"]
        );
        assert_eq!(
            text(&raw, Voice::Mcp),
            ["unparsed input (line 7): bad json", "data:", "{"]
        );
        assert_eq!(
            text(&raw, Voice::Tui),
            ["not understood (bad json), source line 7", "{"]
        );
    }

    #[test]
    fn messages_errors_and_usage() {
        let m = step(StepKind::AgentMessage {
            text: Payload::Text("hello".into()),
        });
        for v in [Voice::Cli, Voice::Mcp, Voice::Tui] {
            assert_eq!(text(&m, v), ["hello"]);
        }
        let e = step(StepKind::Error {
            message: Payload::Text("no".into()),
        });
        assert_eq!(text(&e, Voice::Mcp), ["error:", "no"]);
        assert_eq!(text(&e, Voice::Cli), ["no"]);
        let u = step(StepKind::Lifecycle {
            event: Lifecycle::Usage(Usage {
                input_tokens: 10,
                output_tokens: 2,
                ..Default::default()
            }),
        });
        assert_eq!(
            text(&u, Voice::Cli),
            ["tokens: 10 in, 2 out, 0 cache read; cost: -; turns: -"]
        );
        assert_eq!(text(&u, Voice::Mcp), [u.kind.summary()]);
    }

    #[test]
    fn headings_and_timeline_rows() {
        let s = step(StepKind::AgentMessage {
            text: Payload::Text("hi".into()),
        });
        assert_eq!(
            heading(&s, Voice::Mcp),
            "run 3 step 4 · agent_message · claude · 1970-01-01T00:00:00Z"
        );
        assert_eq!(
            heading(&s, Voice::Cli),
            "run 3 step 4 · agent · claude · 1970-01-01T00:00:00Z"
        );
        assert_eq!(timeline_row(&s, 3, "hi"), "  4   00:00:00 agent       hi");
    }
}

//! A failed run in short: what its retry and the fleet's memory should know of it, built
//! from its trajectory. The failing commands with their exit codes and the lines of their
//! output that say what broke (an assertion, a compiler error) before the rest of the
//! tail, the errors the agent met, what it said last, how the run ended, the files it
//! touched and the size of its change.
//!
//! `render` bounds the text (a prompt has room for a page, not a log) and puts the most
//! telling lines first; `signature` names the failure so the same failure again is
//! recognised (numbers, addresses and temporary paths do not make two failures differ).

use std::fmt::Write;

use crate::model::{Step, StepKind};

/// How a run (or its branch) ended badly.
#[derive(Clone, Debug, PartialEq)]
pub enum End {
    /// The agent exited unsuccessfully (or was killed by a signal).
    Exit {
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// The factory stopped it: no output for too long, or over its wall time.
    TimedOut { why: String },
    /// Its branch no longer merges onto main.
    Conflict { paths: Vec<String> },
    /// Merged onto main, the tests failed.
    RedMergeTest { output: String },
    /// A person (or a reviewer) said no.
    Rejected { by: String, reason: String },
}

impl End {
    fn describe(&self) -> String {
        match self {
            End::Exit {
                code: Some(c),
                signal: _,
            } => format!("the agent exited with code {c}"),
            End::Exit {
                code: None,
                signal: Some(s),
            } => format!("the agent was killed by signal {s}"),
            End::Exit { .. } => "the agent exited unsuccessfully".into(),
            End::TimedOut { why } => format!("stopped by the factory: {why}"),
            End::Conflict { paths } => format!(
                "the branch conflicts with main in {}",
                if paths.is_empty() {
                    "some files".to_string()
                } else {
                    paths.join(", ")
                }
            ),
            End::RedMergeTest { .. } => "merged onto main, the tests failed".into(),
            End::Rejected { by, reason } => format!("{by} rejected it: {reason}"),
        }
    }

    /// Whether the merge queue (or a reviewer, or a person there) ended it, not the run.
    pub fn from_queue(&self) -> bool {
        matches!(
            self,
            End::Conflict { .. } | End::RedMergeTest { .. } | End::Rejected { .. }
        )
    }

    /// A stable word for the kind of end, for the signature.
    fn kind(&self) -> &'static str {
        match self {
            End::Exit { .. } => "exit",
            End::TimedOut { .. } => "timeout",
            End::Conflict { .. } => "conflict",
            End::RedMergeTest { .. } => "red-merge-test",
            End::Rejected { .. } => "rejected",
        }
    }
}

/// A command that failed, with the lines that say why.
#[derive(Clone, Debug, PartialEq)]
pub struct FailedCommand {
    /// Its step in the run.
    pub seq: u64,
    pub command: String,
    pub exit_code: Option<i32>,
    /// Lines that read as the failure (assertions, errors, panics), in order.
    pub telling: Vec<String>,
    /// The last lines of its output that are not among `telling`.
    pub tail: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Digest {
    pub end: End,
    /// The last few failing commands, oldest first.
    pub commands: Vec<FailedCommand>,
    /// The last few error steps: (seq, first line).
    pub errors: Vec<(u64, String)>,
    /// What the agent said last.
    pub last_said: Option<String>,
    /// Files the run edited, repo-relative.
    pub files: Vec<String>,
    /// Lines added and removed on its branch, when known.
    pub diff: Option<(usize, usize)>,
}

/// Failing commands and errors kept: the last ones are what the run ended on.
const KEEP_COMMANDS: usize = 3;
const KEEP_ERRORS: usize = 3;
const TELLING_LINES: usize = 12;
const TAIL_LINES: usize = 8;
/// A line longer than this is cut: a minified file on one line says nothing more.
const LINE_CHARS: usize = 240;

/// Whether a line of output reads as the reason something failed.
pub fn is_telling(line: &str) -> bool {
    let l = line.trim_start().to_ascii_lowercase();
    [
        "assert",
        "error",
        "fail",
        "panicked",
        "expected",
        "traceback",
        "exception",
        "fatal",
        "cannot ",
        "not found",
        "undefined",
        "mismatch",
        "left:",
        "right:",
        "e   ",
        "thread '",
    ]
    .iter()
    .any(|p| l.starts_with(p) || (p.len() > 4 && l.contains(p)))
}

fn cut(line: &str) -> String {
    let line = line.trim_end();
    if line.chars().count() <= LINE_CHARS {
        return line.to_string();
    }
    let mut s: String = line.chars().take(LINE_CHARS).collect();
    s.push('…');
    s
}

/// The telling lines of `output` and, apart from them, its tail.
pub fn telling_and_tail(output: &str) -> (Vec<String>, Vec<String>) {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut telling_at = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if is_telling(l) {
            telling_at.push(i);
        }
    }
    // The last telling lines are nearest the failure (a test runner's summary repeats
    // the first ones); keep the last TELLING_LINES.
    let skip = telling_at.len().saturating_sub(TELLING_LINES);
    let telling_at = &telling_at[skip..];
    let telling = telling_at.iter().map(|&i| cut(lines[i])).collect();
    let tail = lines
        .iter()
        .enumerate()
        .rev()
        .filter(|(i, _)| !telling_at.contains(i))
        .take(TAIL_LINES)
        .map(|(_, l)| cut(l))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    (telling, tail)
}

impl Digest {
    /// A digest of a run from its steps (payloads inline), oldest first.
    pub fn of_steps<'a>(steps: impl IntoIterator<Item = &'a Step>, end: End) -> Digest {
        let mut d = Digest {
            end,
            commands: Vec::new(),
            errors: Vec::new(),
            last_said: None,
            files: Vec::new(),
            diff: None,
        };
        for s in steps {
            match &s.kind {
                StepKind::Command {
                    argv,
                    exit_code,
                    output,
                } if s.kind.is_error() => {
                    let (telling, tail) = telling_and_tail(output.preview());
                    d.commands.push(FailedCommand {
                        seq: s.seq,
                        command: command_line(argv),
                        exit_code: *exit_code,
                        telling,
                        tail,
                    });
                }
                StepKind::Error { message } => {
                    let first = message.preview().lines().next().unwrap_or("").to_string();
                    d.errors.push((s.seq, cut(&first)));
                }
                StepKind::AgentMessage { text } if !text.preview().trim().is_empty() => {
                    d.last_said = Some(cut(text.preview().trim()));
                }
                StepKind::FileEdit { path, .. } if !d.files.contains(path) => {
                    d.files.push(path.clone())
                }
                _ => {}
            }
        }
        let n = d.commands.len();
        d.commands.drain(..n.saturating_sub(KEEP_COMMANDS));
        let n = d.errors.len();
        d.errors.drain(..n.saturating_sub(KEEP_ERRORS));
        if let End::RedMergeTest { output } = &d.end {
            // The merge test's output is the failing command of a bounce.
            let (telling, tail) = telling_and_tail(output);
            d.commands.push(FailedCommand {
                seq: u64::MAX,
                command: "the merge queue's test command".into(),
                exit_code: None,
                telling,
                tail,
            });
        }
        d
    }

    /// The step a lesson should point at: the last failing command, else the last error.
    pub fn source_step(&self) -> Option<u64> {
        self.commands
            .iter()
            .rev()
            .map(|c| c.seq)
            .find(|s| *s != u64::MAX)
            .or(self.errors.last().map(|e| e.0))
    }

    /// The digest as text of at most `budget` bytes, the most telling part first: how it
    /// ended, then the last failing command's telling lines, its command and tail, then
    /// errors, earlier commands, what the agent said last, the files and the diff.
    pub fn render(&self, budget: usize) -> String {
        let mut parts: Vec<String> = vec![format!("Ended: {}.", self.end.describe())];
        if let Some(last) = self.commands.last() {
            let code = last
                .exit_code
                .map(|c| format!(" (exit {c})"))
                .unwrap_or_default();
            parts.push(format!("Failing command: `{}`{code}", last.command));
            if !last.telling.is_empty() {
                parts.push(format!("What it printed:\n{}", indent(&last.telling)));
            }
            if !last.tail.is_empty() {
                parts.push(format!("Its last lines:\n{}", indent(&last.tail)));
            }
        }
        if !self.errors.is_empty() {
            let lines: Vec<String> = self
                .errors
                .iter()
                .map(|(seq, e)| format!("step {seq}: {e}"))
                .collect();
            parts.push(format!("Errors:\n{}", indent(&lines)));
        }
        let earlier = self.commands.len().saturating_sub(1);
        if earlier > 0 {
            let lines: Vec<String> = self.commands[..earlier]
                .iter()
                .map(|c| {
                    let first = c.telling.first().or(c.tail.last()).cloned();
                    format!(
                        "`{}`{}{}",
                        c.command,
                        c.exit_code
                            .map(|x| format!(" (exit {x})"))
                            .unwrap_or_default(),
                        first.map(|f| format!(": {f}")).unwrap_or_default()
                    )
                })
                .collect();
            parts.push(format!("Earlier failing commands:\n{}", indent(&lines)));
        }
        if let Some(said) = &self.last_said {
            parts.push(format!("The agent said last: {said}"));
        }
        if !self.files.is_empty() {
            let mut s = format!("Files touched: {}", self.files.join(", "));
            if let Some((add, del)) = self.diff {
                let _ = write!(s, " (+{add} -{del})");
            }
            parts.push(s);
        }
        let mut out = String::new();
        for p in parts {
            let sep = if out.is_empty() { 0 } else { 1 };
            if out.len() + sep + p.len() <= budget {
                if sep == 1 {
                    out.push('\n');
                }
                out.push_str(&p);
            } else {
                // What fits of the next part, on whole lines, then stop.
                for line in p.lines() {
                    if out.len() + 1 + line.len() + 2 > budget {
                        break;
                    }
                    out.push('\n');
                    out.push_str(line);
                }
                out.push_str("\n…");
                break;
            }
        }
        out
    }

    /// A name for this failure that another run failing the same way shares: the kind of
    /// end, the failing command and its first telling line (or the first error), with
    /// numbers, hex ids and temporary paths blurred.
    pub fn signature(&self) -> String {
        let mut key = self.end.kind().to_string();
        match &self.end {
            End::Conflict { paths } => key.push_str(&paths.join(",")),
            // Each no says something of its own: two different ones are two lessons.
            End::Rejected { by, reason } => {
                key.push_str(by);
                key.push_str(reason);
            }
            _ => {}
        }
        if let Some(c) = self.commands.last() {
            key.push('|');
            key.push_str(&c.command);
            if let Some(t) = c.telling.first().or(c.tail.last()) {
                key.push('|');
                key.push_str(t);
            }
        } else if let Some((_, e)) = self.errors.first() {
            key.push('|');
            key.push_str(e);
        }
        let h = blake3::hash(blur(&key).as_bytes());
        h.to_hex()[..16].to_string()
    }
}

fn indent(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn command_line(argv: &[String]) -> String {
    // `bash -c CMD` / `bash -lc CMD`: the command is what the agent wrote.
    let cmd = match argv {
        [sh, flag, cmd] if sh.ends_with("sh") && flag.starts_with('-') && flag.ends_with('c') => {
            cmd.clone()
        }
        _ => argv.join(" "),
    };
    cut(&cmd)
}

/// Digits and hex runs become `#`, `/tmp/...` and `/var/...` paths `<tmp>`.
fn blur(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_inclusive(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
        if word.starts_with("/tmp/") || word.starts_with("/var/") {
            out.push_str("<tmp>");
            if let Some(last) = word.chars().last().filter(|c| !c.is_alphanumeric()) {
                out.push(last);
            }
            continue;
        }
        let core = word.trim_end_matches(|c: char| !c.is_alphanumeric());
        let hexish = core.len() >= 6
            && core.chars().all(|c| c.is_ascii_hexdigit())
            && core.chars().any(|c| c.is_ascii_digit());
        if core.starts_with("0x") || hexish {
            out.push('#');
            out.push_str(&word[core.len()..]);
            continue;
        }
        let mut in_num = false;
        for c in word.chars() {
            if c.is_ascii_digit() {
                if !in_num {
                    out.push('#');
                }
                in_num = true;
            } else {
                in_num = false;
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Payload;
    use jiff::Timestamp;

    fn step(seq: u64, kind: StepKind) -> Step {
        Step {
            run: 1,
            seq,
            ts: Timestamp::UNIX_EPOCH,
            agent: "a".into(),
            parent: None,
            kind,
        }
    }

    fn cmd(seq: u64, c: &str, code: i32, out: &str) -> Step {
        step(
            seq,
            StepKind::Command {
                argv: vec!["bash".into(), "-c".into(), c.into()],
                exit_code: Some(code),
                output: Payload::Text(out.into()),
            },
        )
    }

    const PYTEST: &str = "============ test session starts ============\n\
        collected 3 items\n\ntests/test_calc.py ..F\n\n=== FAILURES ===\n\
        ____ test_add ____\n    def test_add():\n>       assert add(2, 3) == 5\n\
        E       assert -1 == 5\n\ntests/test_calc.py:7: AssertionError\n\
        === 1 failed, 2 passed in 0.03s ===\n";

    fn failed_run() -> Vec<Step> {
        vec![
            cmd(1, "ls", 0, "calc.py\ntests"),
            step(
                2,
                StepKind::FileEdit {
                    path: "calc.py".into(),
                    before: None,
                    after: None,
                    patch: Payload::Text(String::new()),
                },
            ),
            cmd(3, "python3 -m pytest -q", 1, PYTEST),
            step(
                4,
                StepKind::AgentMessage {
                    text: Payload::Text("I could not make the test pass.".into()),
                },
            ),
        ]
    }

    #[test]
    fn the_assertion_the_command_and_the_file_are_in_it() {
        let d = Digest::of_steps(
            &failed_run(),
            End::Exit {
                code: Some(1),
                signal: None,
            },
        );
        let text = d.render(3000);
        assert!(
            text.starts_with("Ended: the agent exited with code 1."),
            "{text}"
        );
        assert!(
            text.contains("Failing command: `python3 -m pytest -q` (exit 1)"),
            "{text}"
        );
        assert!(text.contains("E       assert -1 == 5"), "{text}");
        assert!(text.contains("AssertionError"), "{text}");
        assert!(text.contains("Files touched: calc.py"), "{text}");
        assert!(text.contains("could not make the test pass"), "{text}");
        // The assertion comes before the tail and before what the agent said.
        assert!(text.find("assert -1").unwrap() < text.find("Its last lines").unwrap());
        assert_eq!(d.source_step(), Some(3));
        assert_eq!(d.commands.len(), 1, "a passing command is no failure");
    }

    #[test]
    fn render_keeps_to_its_budget_most_telling_first() {
        let noisy = format!("{PYTEST}{}", "progress line\n".repeat(5000));
        let steps = vec![cmd(3, "cargo test", 101, &noisy)];
        let d = Digest::of_steps(
            &steps,
            End::Exit {
                code: Some(101),
                signal: None,
            },
        );
        for budget in [200, 600, 2000] {
            let text = d.render(budget);
            assert!(text.len() <= budget + 4, "{budget}: {} bytes", text.len());
            assert!(text.contains("Ended"), "{text}");
        }
        assert!(d.render(600).contains("assert -1 == 5"));
    }

    #[test]
    fn the_same_failure_has_the_same_signature_whatever_its_numbers() {
        let a = Digest::of_steps(
            &[cmd(
                3,
                "pytest",
                1,
                "E  assert 12 == 5 at 0x7f3a1c\n/tmp/tmpAbc/x.py:7",
            )],
            End::Exit {
                code: Some(1),
                signal: None,
            },
        );
        let b = Digest::of_steps(
            &[cmd(
                9,
                "pytest",
                1,
                "E  assert 13 == 5 at 0x7f3b2d\n/tmp/tmpXyz/x.py:7",
            )],
            End::Exit {
                code: Some(1),
                signal: None,
            },
        );
        let other = Digest::of_steps(
            &[cmd(3, "pytest", 1, "E  KeyError: 'sku'")],
            End::Exit {
                code: Some(1),
                signal: None,
            },
        );
        assert_eq!(a.signature(), b.signature());
        assert_ne!(a.signature(), other.signature());
    }

    #[test]
    fn bounces_and_rejections_say_what_happened() {
        let d = Digest::of_steps(
            &[],
            End::RedMergeTest {
                output: PYTEST.into(),
            },
        );
        let text = d.render(2000);
        assert!(
            text.contains("merged onto main, the tests failed"),
            "{text}"
        );
        assert!(text.contains("assert -1 == 5"), "{text}");
        let r = Digest::of_steps(
            &[],
            End::Rejected {
                by: "alice".into(),
                reason: "do not touch the schema".into(),
            },
        )
        .render(2000);
        assert_eq!(r, "Ended: alice rejected it: do not touch the schema.");
    }
}

//! The fleet screen's state: its panes, one per live run, and what they show.

use crate::model::{Lifecycle, Run, RunId, Step, StepKind, Usage};
use crate::tui::scrollback::Scrollback;
use crate::tui::theme::{Slot, Theme};
use crate::tui::widgets::{kind_symbol, labelled, step_slot};
use jiff::Timestamp;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Lines each pane keeps: enough to scroll back through a zoomed pane, bounded so 16
/// agents streaming for hours hold steady memory.
pub const SCROLLBACK_LINES: usize = 2_000;

/// Most panes on the grid.
pub const MAX_PANES: usize = 16;

/// A live agent silent this long is flagged quiet.
pub const QUIET_AFTER_S: i64 = 30;

/// ... and one whose last words ask something, silent this long, waiting for input.
pub const WAITING_AFTER_S: i64 = 3;

/// Finished runs stay on the grid this long, so a failure can be seen and retried.
pub const KEEP_FINISHED_S: i64 = 600;

/// Why a pane wants attention, besides its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    /// Its last output asks a question or for a key, and nothing came since.
    Waiting,
    /// No output for this many seconds.
    Quiet(i64),
}

pub struct Pane {
    pub run: Run,
    pub lines: Scrollback,
    /// Steps already taken into `lines`: the next fetch starts here.
    pub loaded: u64,
    /// Steps the run has, as the last event said.
    pub known: u64,
    /// When the last fetch went out; with `due`, what paces a streaming pane's fetches.
    pub fetched_at: Option<Timestamp>,
    /// Steps are waiting to be fetched at the next tick.
    pub due: bool,
    pub last_output: Option<Timestamp>,
    /// The last line of agent text, for the waiting-for-input check.
    pub last_text: String,
    /// Spend reported by the run's usage steps so far.
    pub usage: Usage,
    /// Lines up from the tail, when zoomed.
    pub scroll: usize,
}

impl Pane {
    pub fn new(run: Run) -> Pane {
        Pane {
            known: run.steps,
            run,
            lines: Scrollback::new(SCROLLBACK_LINES),
            loaded: 0,
            fetched_at: None,
            due: false,
            last_output: None,
            last_text: String::new(),
            usage: Usage::default(),
            scroll: 0,
        }
    }

    /// Take a batch of the run's steps (in order, from `loaded`).
    pub fn take_steps(&mut self, steps: &[Step], theme: &Theme) {
        for s in steps {
            if s.seq < self.loaded {
                continue;
            }
            self.loaded = s.seq + 1;
            self.known = self.known.max(self.loaded);
            self.last_output = Some(s.ts);
            push_step(&mut self.lines, s, theme);
            match &s.kind {
                StepKind::AgentMessage { text } | StepKind::UserMessage { text } => {
                    self.last_text = last_line(text.preview()).to_string();
                }
                StepKind::Command { output, .. } => {
                    self.last_text = last_line(output.preview()).to_string();
                }
                StepKind::Lifecycle {
                    event: Lifecycle::Usage(u),
                } => self.usage.add_spend(u),
                StepKind::Lifecycle { .. } => {}
                _ => self.last_text.clear(),
            }
        }
    }

    /// What the pane flags at `now`; only live runs wait or go quiet.
    pub fn flag(&self, now: Timestamp) -> Option<Flag> {
        if !self.run.state.is_live() {
            return None;
        }
        let since = self.last_output.unwrap_or(self.run.started);
        let silent = now.duration_since(since).as_secs();
        if silent >= WAITING_AFTER_S && asks_for_input(&self.last_text) {
            return Some(Flag::Waiting);
        }
        (silent >= QUIET_AFTER_S).then_some(Flag::Quiet(silent))
    }

    /// Tokens and cost: the run's own totals once it has them, else what its steps said.
    pub fn spend(&self) -> &Usage {
        if self.run.usage.input_tokens + self.run.usage.output_tokens > 0 {
            &self.run.usage
        } else {
            &self.usage
        }
    }
}

fn last_line(s: &str) -> &str {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

/// Whether an agent's last line reads as a prompt for a person: a question, a `[y/N]`, a
/// "press enter".
pub fn asks_for_input(line: &str) -> bool {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(
            r"(?i)(\?\s*$|\[y/n\]|\(y/n\)|\[yes/no\]|press (enter|any key|return)|waiting for (your )?input|continue\?)",
        )
        .expect("the prompt pattern compiles")
    });
    re.is_match(line)
}

/// A step as pane lines: a symbol and its summary, and for messages and commands the
/// text itself (with its ANSI colours), a few lines of it.
fn push_step(sb: &mut Scrollback, s: &Step, theme: &Theme) {
    let style = theme.style(step_slot(&s.kind));
    let sym = kind_symbol(s.kind.name(), s.kind.is_error());
    match &s.kind {
        // The prompt is long and the same every run: its first lines say which it is.
        StepKind::UserMessage { text } => {
            let body = head_lines(text.preview(), 2);
            sb.push(&format!("{sym} {body}"), style);
        }
        StepKind::AgentMessage { text } => {
            let body = tail_lines(text.preview(), 6);
            sb.push(&format!("{sym} {body}"), style);
        }
        StepKind::Command {
            argv,
            exit_code,
            output,
        } => {
            let code = exit_code.map(|c| format!(" -> {c}")).unwrap_or_default();
            sb.push(&format!("{sym} {}{code}", argv.join(" ")), style);
            let out = tail_lines(output.preview(), 4);
            if !out.is_empty() {
                sb.push(&out, theme.style(Slot::UiMuted));
            }
        }
        _ => sb.push(
            &labelled(s.kind.name(), s.kind.is_error(), &s.kind.summary()),
            style,
        ),
    }
}

fn tail_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    let mut out = lines[start..].join("\n");
    if start > 0 {
        out.insert_str(0, &format!("⋯ {start} lines above\n"));
    }
    out
}

fn head_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = lines[..n.min(lines.len())].join("\n");
    if lines.len() > n {
        out.push_str(&format!("\n⋯ {} more lines", lines.len() - n));
    }
    out
}

/// The runs the grid shows: live ones, then the latest finished within `KEEP_FINISHED_S`,
/// at most `MAX_PANES`, by id.
pub fn pick_runs(runs: &[Run], now: Timestamp) -> Vec<RunId> {
    let mut live: Vec<&Run> = runs.iter().filter(|r| r.state.is_live()).collect();
    live.sort_by_key(|r| r.id);
    let mut done: Vec<&Run> = runs
        .iter()
        .filter(|r| {
            !r.state.is_live()
                && r.ticket.is_some()
                && r.ended
                    .is_some_and(|e| now.duration_since(e).as_secs() < KEEP_FINISHED_S)
        })
        .collect();
    done.sort_by_key(|r| std::cmp::Reverse(r.id));
    live.into_iter()
        .chain(done)
        .take(MAX_PANES)
        .map(|r| r.id)
        .collect()
}

/// A pane asks for its new steps at most this often: 16 agents each flushing steps 20
/// times a second become at most 80 small requests a second, not 320.
pub const PANE_EVERY: jiff::SignedDuration = jiff::SignedDuration::from_millis(200);

#[derive(Default)]
pub struct FleetState {
    pub panes: Vec<RunId>,
    pub by_run: HashMap<RunId, Pane>,
    pub selected: usize,
    pub zoomed: bool,
}

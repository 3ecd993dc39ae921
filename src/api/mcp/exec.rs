//! Running a checked tool call against the workspace (and the factory, when one runs it),
//! and the compact text an agent reads back. Results lead with short hits carrying ids
//! (`m42`, `run 7 step 12`) an agent can follow up with `trace_step`, so a search costs
//! few tokens and the whole record is one call away.

use std::fmt::Write as _;

use jiff::Timestamp;

use super::tools::Call;
use crate::api::auth::Caller;
use crate::api::ops;
use crate::api::server::AppState;
use crate::memory::NewMemory;
use crate::model::{Author, Step, StepRef};
use crate::trace::detail::{self, Voice};
use crate::wire::{MemorySearch, StepSearch};

/// Longest payload `trace_step` returns inline; the rest is left for `shopfloor trace show`.
const MAX_STEP_CHARS: usize = 24_000;
/// Longest memory text in a search hit: enough to judge it, short enough for many hits.
const HIT_CHARS: usize = 400;

/// A call that ran and failed: the agent reads the message as the tool's error result.
#[derive(Debug)]
pub struct Failure(pub String);

impl From<crate::api::OpError> for Failure {
    fn from(e: crate::api::OpError) -> Failure {
        Failure(e.message)
    }
}

/// What a tool call answers: its text, or a failure the model reads.
type Answer = Result<String, Failure>;

/// Run `call` for `caller`. Blocking: redb and tantivy work happens here.
pub fn run(state: &AppState, caller: &Caller, call: Call) -> Answer {
    let ws = &*state.ws;
    match call {
        Call::MemorySearch {
            query,
            limit,
            kinds,
            paths,
            since,
        } => {
            let hits = ops::search_memory(
                ws,
                MemorySearch {
                    text: query.clone(),
                    limit,
                    kinds,
                    paths,
                    since,
                    ..MemorySearch::default()
                },
            )?;
            let mut out = String::new();
            if hits.is_empty() {
                let _ = writeln!(out, "No memories match \"{query}\".");
                return Ok(out);
            }
            let _ = writeln!(
                out,
                "{} {} for \"{query}\":",
                hits.len(),
                plural(hits.len(), "memory", "memories")
            );
            for h in &hits {
                let m = &h.memory;
                let mut head = format!(
                    "[m{}] {} · {} · {}",
                    m.id,
                    m.kind.name(),
                    m.ts.strftime("%Y-%m-%d"),
                    m.author
                );
                if let Some(src) = &m.source {
                    let _ = write!(head, " (run {} step {})", src.run, src.step);
                }
                if !m.paths.is_empty() {
                    let _ = write!(head, " · paths: {}", m.paths.join(", "));
                }
                if !m.tags.is_empty() {
                    let _ = write!(head, " · tags: {}", m.tags.join(", "));
                }
                let _ = writeln!(out, "{head}");
                let _ = writeln!(out, "  {}", clip(&m.text.replace('\n', " "), HIT_CHARS));
            }
            if hits.iter().any(|h| h.memory.source.is_some()) {
                let _ = writeln!(
                    out,
                    "Where a hit names a run and step, trace_step {{run, step}} shows what the agent was doing."
                );
            }
            Ok(out)
        }
        Call::MemoryWrite {
            kind,
            text,
            paths,
            tags,
        } => {
            let (author, source) = match caller {
                Caller::Human { name } => (Author::Human { name: name.clone() }, None),
                Caller::Run { run, agent } => {
                    // Attributed to the run's latest step when written: the tool call
                    // that wrote it, or the step just before.
                    let latest = ws
                        .store
                        .run(*run)
                        .ok()
                        .flatten()
                        .map_or(0, |r| r.steps.saturating_sub(1));
                    (
                        Author::Agent {
                            name: agent.clone(),
                        },
                        Some(StepRef {
                            run: *run,
                            step: latest,
                        }),
                    )
                }
            };
            let mut new = NewMemory::new(kind, text, author);
            new.paths = paths;
            new.tags = tags;
            new.source = source;
            let m = ws
                .memory
                .add(new)
                .map_err(|e| Failure(format!("the memory was not saved: {e}")))?;
            Ok(format!(
                "Saved memory m{} ({}) as {}.\n",
                m.id,
                m.kind.name(),
                m.author
            ))
        }
        Call::TraceSearch {
            query,
            run,
            agent,
            limit,
        } => {
            let hits = ops::search_steps(
                ws,
                StepSearch {
                    query: query.clone(),
                    run,
                    agent,
                    kind: None,
                    limit,
                },
            )?;
            let mut out = String::new();
            if hits.is_empty() {
                let _ = writeln!(out, "No steps match \"{query}\".");
                return Ok(out);
            }
            let _ = writeln!(
                out,
                "{} {} for \"{query}\":",
                hits.len(),
                plural(hits.len(), "step", "steps")
            );
            for h in &hits {
                let s = &h.step;
                let _ = writeln!(
                    out,
                    "[run {} step {}] {} · {} · {}",
                    s.run,
                    s.seq,
                    detail::kind_tag(&s.kind),
                    s.agent,
                    clip(&s.kind.summary(), 160)
                );
            }
            let _ = writeln!(out, "trace_step {{run, step}} shows a step whole.");
            Ok(out)
        }
        Call::TraceStep { run, step } => {
            let s = ops::step(ws, run, step)?;
            Ok(render_step(&s))
        }
        Call::Wip => wip(state, caller),
        Call::Lease { paths, ttl } => {
            let (factory, run) = run_in_factory(state, caller, "lease")?;
            match factory.lease(run, &paths, ttl) {
                Ok(leases) => {
                    let mut out = format!(
                        "Leased to run {run}: {}",
                        leases
                            .iter()
                            .map(|l| l.path.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    if let Some(l) = leases.first() {
                        let _ = write!(out, " (until {})", l.expires.strftime("%H:%M:%S UTC"));
                    }
                    out.push_str(".\n");
                    Ok(out)
                }
                Err(conflict) => Err(Failure(format!(
                    "Nothing leased: {conflict}. Work elsewhere, or coordinate: trace_search {{run: {}}} shows what it is doing.",
                    conflict.held.run
                ))),
            }
        }
        Call::Release { paths } => {
            let (factory, run) = run_in_factory(state, caller, "release")?;
            let n = factory.release(run, &paths);
            Ok(format!(
                "Released {n} {} of run {run}.\n",
                plural(n, "lease", "leases")
            ))
        }
        Call::TicketGet { id } => {
            let t = ops::ticket(ws, id)?;
            let mut out = format!(
                "ticket {} · {} · priority {}",
                t.id,
                t.state.name(),
                t.priority
            );
            if let Some(a) = &t.agent {
                let _ = write!(out, " · agent {a}");
            }
            let _ = write!(out, "\n{}\n", t.title);
            if !t.paths.is_empty() {
                let _ = writeln!(out, "paths: {}", t.paths.join(", "));
            }
            if !t.runs.is_empty() {
                let _ = writeln!(
                    out,
                    "runs: {}",
                    t.runs
                        .iter()
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            if !t.body.trim().is_empty() {
                let _ = write!(out, "\n{}\n", clip(t.body.trim(), MAX_STEP_CHARS));
            }
            Ok(out)
        }
        Call::ReviewSubmit {
            verdict,
            summary,
            comments,
        } => {
            let (factory, run) = run_in_factory(state, caller, "review_submit")?;
            factory
                .submit_review(run, verdict, summary, comments)
                .map_err(Failure)
        }
    }
}

/// The factory and the caller's run, for the tools only a live run can use.
fn run_in_factory<'a>(
    state: &'a AppState,
    caller: &Caller,
    tool: &str,
) -> Result<(&'a crate::scheduler::factory::Factory, crate::model::RunId), Failure> {
    let Some(factory) = state.factory.as_deref() else {
        return Err(Failure(format!(
            "{tool}: no factory runs this workspace, so there is nothing to coordinate with; start one with `shopfloor serve`"
        )));
    };
    let Some(run) = caller.run() else {
        return Err(Failure(format!(
            "{tool}: only a run can call it; call it with your run's token (SHOPFLOOR_TOKEN)"
        )));
    };
    Ok((factory, run))
}

fn wip(state: &AppState, caller: &Caller) -> Answer {
    let Some(factory) = state.factory.as_deref() else {
        return Ok("No factory runs this workspace: no run is in progress.\n".into());
    };
    let runs = factory.wip();
    let leases = factory.leases();
    let mut out = String::new();
    if runs.is_empty() {
        let _ = writeln!(out, "No run is in progress.");
    } else {
        let _ = writeln!(
            out,
            "{} {} in progress:",
            runs.len(),
            plural(runs.len(), "run", "runs")
        );
    }
    let now = Timestamp::now();
    for w in &runs {
        let rec = state.ws.store.run(w.run).ok().flatten();
        let you = if caller.run() == Some(w.run) {
            " (you)"
        } else {
            ""
        };
        let mut line = format!(
            "run {}{you} · ticket {} \"{}\" · {}",
            w.run,
            w.ticket,
            clip(&w.title, 80),
            w.agent
        );
        if let Some(r) = &rec {
            let secs = now.duration_since(r.started).as_secs().max(0);
            let _ = write!(line, " · {} · {} steps", elapsed(secs), r.steps);
        }
        let _ = writeln!(out, "{line}");
        let mine: Vec<String> = leases
            .iter()
            .filter(|l| l.run == w.run)
            .map(|l| format!("{} (until {})", l.path, l.expires.strftime("%H:%M:%S UTC")))
            .collect();
        if !mine.is_empty() {
            let _ = writeln!(out, "  leases: {}", mine.join(", "));
        }
        if !w.files.is_empty() {
            let _ = writeln!(out, "  files touched: {}", w.files.join(", "));
        }
    }
    Ok(out)
}

fn elapsed(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// At most `max` characters of `s`, marked when cut.
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((i, _)) => format!("{}… [{} more characters]", &s[..i], s[i..].chars().count()),
    }
}

/// One step, whole (payloads inline; `ops::step` inlines blobs), as text.
pub fn render_step(s: &Step) -> String {
    let mut out = detail::heading(s, Voice::Mcp);
    out.push('\n');
    for part in detail::parts(s, Voice::Mcp) {
        if let Some(label) = part.label {
            let _ = writeln!(out, "{label}:");
        }
        let _ = writeln!(out, "{}", clip(&part.text, MAX_STEP_CHARS));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Payload, StepKind};

    #[test]
    fn clip_marks_what_it_cuts_and_keeps_char_boundaries() {
        assert_eq!(clip("héllo", 10), "héllo");
        assert_eq!(clip("héllo", 2), "hé… [3 more characters]");
    }

    #[test]
    fn a_command_step_renders_with_its_exit_code() {
        let s = Step {
            run: 3,
            seq: 4,
            ts: Timestamp::UNIX_EPOCH,
            agent: "claude".into(),
            parent: None,
            kind: StepKind::Command {
                argv: vec!["cargo".into(), "test".into()],
                exit_code: Some(101),
                output: Payload::Text("test failed".into()),
            },
        };
        let r = render_step(&s);
        assert!(r.starts_with("run 3 step 4 · command · claude"), "{r}");
        assert!(r.contains("$ cargo test  (exit code 101)"), "{r}");
        assert!(r.contains("output:\ntest failed"), "{r}");
    }
}

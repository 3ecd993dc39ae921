//! `shopfloor trace ...`: import agent logs as runs, list and show them step by step,
//! export them, and search every step of the workspace at once.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use shopfloor::model::Step;
use shopfloor::trace::detail::{self, Voice};
use shopfloor::trace::{ExportFormat, Format};
use shopfloor::wire::{ImportTrace, StepSearch};

use super::Ctx;
use super::output::{
    clip, print_json, print_list, print_rows, say, say_err, step_line, when, write_json_line,
};

#[derive(Subcommand, Debug)]
pub enum TraceCmd {
    /// Import an agent's log as a run
    Import {
        file: PathBuf,
        /// claude-code (transcript), claude-stream (-p --output-format stream-json),
        /// codex (rollout), codex-exec (exec --json), gemini (--output-format stream-json)
        /// or jsonl (shopfloor's own)
        /// [default: detected from the first lines]
        #[arg(long, value_parser = parse_format)]
        format: Option<Format>,
        /// Name the run's agent [default: the format's agent]
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List runs, newest last
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a run's timeline, or one step whole
    Show {
        run: u64,
        /// Show this step in full (payloads, patch, parent)
        #[arg(long)]
        step: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Export a run: as shopfloor's JSONL (one step a line, imports back), or as
    /// OpenTelemetry spans in OTLP/JSON (one export request a line; message text only with
    /// `[telemetry] content = true`)
    Export {
        run: u64,
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "otlp"])]
        format: String,
        /// Write here instead of stdout
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Search every step of every run in the workspace
    Search {
        query: String,
        #[arg(long)]
        run: Option<u64>,
        #[arg(long)]
        agent: Option<String>,
        /// Step kind: user, agent, thinking, tool_call, tool_result, command, file_edit,
        /// decision, error, lifecycle, raw
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse::<Format>().map_err(|e| e.to_string())
}

pub fn run(ctx: &Ctx, cmd: TraceCmd) -> Result<()> {
    match cmd {
        TraceCmd::Import {
            file,
            format,
            agent,
            json,
        } => import(ctx, file, format, agent, json),
        TraceCmd::List { json } => list(ctx, json),
        TraceCmd::Show { run, step, json } => show(ctx, run, step, json),
        TraceCmd::Export {
            run,
            format,
            output,
        } => {
            let format = format.parse::<ExportFormat>().map_err(anyhow::Error::msg)?;
            export(ctx, run, format, output)
        }
        TraceCmd::Search {
            query,
            run,
            agent,
            kind,
            limit,
            json,
        } => search(ctx, &query, run, agent, kind, limit, json),
    }
}

fn import(
    ctx: &Ctx,
    file: PathBuf,
    format: Option<Format>,
    agent: Option<String>,
    json: bool,
) -> Result<()> {
    let backend = ctx.backend()?;
    // Absolute, so the factory (whose working directory is its own) reads the same file,
    // and the run's recorded source names it wherever it is later looked at from.
    let path =
        std::path::absolute(&file).with_context(|| format!("cannot resolve {}", file.display()))?;
    let report = backend.import_trace(ImportTrace {
        path,
        format: format.map(|f| f.name().to_string()),
        agent,
    })?;
    if json {
        return print_json(&serde_json::json!({
            "run": report.run, "lines": report.lines, "steps": report.steps, "raw": report.raw,
            "by_kind": report.by_kind, "warnings": report.warnings, "format": report.format,
        }));
    }
    say!(
        "imported {} as run {} ({}): {} lines, {} steps, {} raw",
        file.display(),
        report.run,
        report.format,
        report.lines,
        report.steps,
        report.raw
    );
    let kinds: Vec<String> = report
        .by_kind
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    say!("  {}", kinds.join(", "));
    for w in report.warnings.iter().take(10) {
        say!("  warning: {w}");
    }
    if report.warnings.len() > 10 {
        say!(
            "  ... {} more warnings (--json lists them all)",
            report.warnings.len() - 10
        );
    }
    Ok(())
}

fn list(ctx: &Ctx, json: bool) -> Result<()> {
    let runs = ctx.backend()?.runs()?;
    print_list(
        json,
        &runs,
        &[
            "RUN", "STATE", "AGENT", "STEPS", "TICKET", "STARTED", "SOURCE",
        ],
        |r| {
            vec![
                r.id.to_string(),
                r.state.to_string(),
                r.agent.clone(),
                r.steps.to_string(),
                r.ticket.map_or("-".into(), |t| t.to_string()),
                when(r.started),
                clip(&r.source, 60),
            ]
        },
        "no runs yet; `shopfloor trace import FILE` imports an agent's log",
    )
}

fn show(ctx: &Ctx, run_id: u64, step: Option<u64>, json: bool) -> Result<()> {
    let backend = ctx.backend()?;
    let run = backend.run(run_id)?;
    if let Some(seq) = step {
        let s = backend.step(run_id, seq)?;
        if json {
            return print_json(&s);
        }
        print_step(&s);
        return Ok(());
    }
    if json {
        // One JSON object per line: a 100,000-step run streams, it is never held whole.
        let mut out = std::io::stdout().lock();
        backend.for_each_step(run_id, |s| write_json_line(&mut out, &s))?;
        return Ok(());
    }
    say!(
        "run {} · {} · {} · {} steps · {}",
        run.id,
        run.agent,
        run.state,
        run.steps,
        clip(&run.source, 80)
    );
    let u = &run.usage;
    if u.input_tokens + u.output_tokens > 0 || u.cost_usd.is_some() {
        let cost = u.cost_usd.map(|c| format!(", ${c:.4}")).unwrap_or_default();
        say!(
            "usage: {} in / {} out tokens{cost}",
            u.input_tokens,
            u.output_tokens
        );
    }
    let width = run.steps.max(1).to_string().len();
    backend.for_each_step(run_id, |s| {
        let parent = s.parent.map(|p| format!(" ←{p}")).unwrap_or_default();
        say!("{}{parent}", step_line(&s, width, 100));
        Ok(())
    })?;
    say!("`shopfloor trace show {run_id} --step N` shows a step whole");
    Ok(())
}

/// A step whole, as `trace show --step` prints it.
fn print_step(s: &Step) {
    say!("{}", detail::heading(s, Voice::Cli));
    if let Some(p) = s.parent {
        say!("answers step {p}");
    }
    say!();
    for part in detail::parts(s, Voice::Cli) {
        say!("{}", part.text);
    }
}

fn export(ctx: &Ctx, run: u64, format: ExportFormat, output: Option<PathBuf>) -> Result<()> {
    let backend = ctx.backend()?;
    match output {
        Some(path) => {
            let tmp = path.with_extension("partial");
            let mut f = std::io::BufWriter::new(
                std::fs::File::create(&tmp)
                    .with_context(|| format!("cannot create {}", tmp.display()))?,
            );
            let n = backend.export(run, format, &mut f)?;
            f.flush()?;
            drop(f);
            shopfloor::private::as_user_file(&tmp)?;
            std::fs::rename(&tmp, &path)?;
            match format {
                ExportFormat::Jsonl => {
                    say_err!("exported {n} steps of run {run} to {}", path.display())
                }
                ExportFormat::Otlp => say_err!(
                    "exported run {run} as OpenTelemetry spans to {} ({n} OTLP/JSON request{})",
                    path.display(),
                    if n == 1 { "" } else { "s" }
                ),
            }
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            backend.export(run, format, &mut out)?;
            out.flush()?;
        }
    }
    Ok(())
}

fn search(
    ctx: &Ctx,
    query: &str,
    run: Option<u64>,
    agent: Option<String>,
    kind: Option<String>,
    limit: usize,
    json: bool,
) -> Result<()> {
    let found = ctx.backend()?.search_steps(StepSearch {
        query: query.to_string(),
        run,
        agent,
        kind,
        limit,
    })?;
    if json {
        let v: Vec<_> = found
            .iter()
            .map(|f| (f.score, &f.step))
            .map(|(score, s)| serde_json::json!({"run": s.run, "step": s.seq, "score": score, "kind": s.kind.name(), "agent": s.agent, "ts": s.ts, "summary": s.kind.summary()}))
            .collect();
        return print_json(&v);
    }
    print_rows(
        &found,
        &["RUN:STEP", "KIND", "AGENT", "SCORE", "SUMMARY"],
        |f| {
            let (score, s) = (f.score, &f.step);
            vec![
                format!("{}:{}", s.run, s.seq),
                s.kind.name().to_string(),
                s.agent.clone(),
                format!("{score:.2}"),
                clip(&s.kind.summary(), 90),
            ]
        },
        "no steps match",
    );
    if !found.is_empty() {
        say!("`shopfloor trace show RUN --step STEP` shows a step whole");
    }
    Ok(())
}

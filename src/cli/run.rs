//! `shopfloor run ...`: the factory's runs: list, show, kill, and follow their steps live.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Subcommand;
use shopfloor::model::{Run, Step};

use super::Ctx;
use super::output::{clip, print_json, print_list, say, step_line, when, write_json_line};

#[derive(Subcommand, Debug)]
pub enum RunCmd {
    /// List runs: state, agent, ticket, host, sandbox backend, steps, elapsed
    List {
        /// Only live runs
        #[arg(long)]
        live: bool,
        #[arg(long)]
        json: bool,
    },
    /// Show one run
    Show {
        run: u64,
        #[arg(long)]
        json: bool,
    },
    /// Stop a live run (its process tree or container) within a second
    Kill { run: u64 },
    /// The paths live runs hold leases on, and until when
    Leases {
        #[arg(long)]
        json: bool,
    },
    /// Print a run's steps; -f keeps following a live run until it ends
    Logs {
        run: u64,
        #[arg(short, long)]
        follow: bool,
        /// Start at this step
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// One JSON step a line
        #[arg(long)]
        json: bool,
    },
}

fn elapsed(r: &Run) -> String {
    let end = r.ended.unwrap_or_else(jiff::Timestamp::now);
    let s = end.duration_since(r.started).as_secs().max(0);
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

pub fn run(ctx: &Ctx, cmd: RunCmd) -> Result<()> {
    match cmd {
        RunCmd::List { live, json } => {
            let b = ctx.backend()?;
            let runs: Vec<Run> = b
                .runs()?
                .into_iter()
                .filter(|r| !live || r.state.is_live())
                .collect();
            print_list(
                json,
                &runs,
                &[
                    "RUN", "STATE", "AGENT", "TICKET", "HOST", "SANDBOX", "STEPS", "ELAPSED",
                    "OUTCOME",
                ],
                |r| {
                    vec![
                        r.id.to_string(),
                        r.state.to_string(),
                        r.agent.clone(),
                        r.ticket
                            .map_or("-".into(), |t| format!("{t}#{}", r.attempt)),
                        r.host_name().to_string(),
                        r.sandbox.clone().unwrap_or_else(|| "-".into()),
                        r.steps.to_string(),
                        elapsed(r),
                        clip(r.outcome.as_deref().unwrap_or(""), 60),
                    ]
                },
                "no runs; `shopfloor serve` runs queued tickets, `shopfloor trace import` imports a log",
            )
        }
        RunCmd::Show { run, json } => {
            let b = ctx.backend()?;
            let r = b.run(run)?;
            if json {
                return print_json(&r);
            }
            say!("run       {}", r.id);
            say!("state     {}", r.state);
            say!("agent     {}", r.agent);
            say!(
                "ticket    {}",
                r.ticket
                    .map_or("-".into(), |t| format!("{t} (attempt {})", r.attempt))
            );
            say!("host      {}", r.host_name());
            say!("sandbox   {}", r.sandbox.as_deref().unwrap_or("-"));
            say!("branch    {}", r.branch.as_deref().unwrap_or("-"));
            say!("started   {}", when(r.started));
            say!("elapsed   {}", elapsed(&r));
            say!("steps     {}", r.steps);
            let u = &r.usage;
            let cost = u.cost_usd.map(|c| format!(", ${c:.4}")).unwrap_or_default();
            say!(
                "usage     {} in / {} out tokens{cost}",
                u.input_tokens,
                u.output_tokens
            );
            if !r.files_changed.is_empty() {
                say!("changed   {}", r.files_changed.join(", "));
            }
            if let Some(o) = &r.outcome {
                say!("outcome   {o}");
            }
            say!(
                "`shopfloor run logs {} -f` follows its steps; `shopfloor trace show {}` shows them all",
                r.id,
                r.id
            );
            Ok(())
        }
        RunCmd::Kill { run } => {
            let b = ctx.backend()?;
            b.kill_run(run)?;
            say!("run {run} stopped");
            Ok(())
        }
        RunCmd::Leases { json } => {
            let leases = ctx.backend()?.leases()?;
            print_list(
                json,
                &leases,
                &["RUN", "AGENT", "UNTIL", "PATH"],
                |l| {
                    vec![
                        l.run.to_string(),
                        l.agent.clone(),
                        when(l.expires),
                        l.path.clone(),
                    ]
                },
                "no leases (only live runs of a running factory hold any)",
            )
        }
        RunCmd::Logs {
            run,
            follow,
            from,
            json,
        } => {
            let b = ctx.backend()?;
            let mut next = from;
            let mut out = std::io::stdout().lock();
            loop {
                let r = b.run(run)?;
                let steps = b.steps(run, next, next + 1000)?;
                for s in &steps {
                    print_step(&mut out, s, json).context("writing to stdout")?;
                }
                if let Some(last) = steps.last() {
                    next = last.seq + 1;
                    continue;
                }
                out.flush()?;
                if !follow || !r.state.is_live() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

fn print_step(out: &mut impl Write, s: &Step, json: bool) -> std::io::Result<()> {
    if json {
        return write_json_line(out, s);
    }
    say!("{}", step_line(s, 6, 110));
    Ok(())
}

//! `shopfloor ticket ...`

use anyhow::Result;
use clap::Subcommand;
use shopfloor::model::TicketState;
use shopfloor::wire::NewTicket;

use super::Ctx;
use super::output::{clip, print_json, print_list, say, when};

#[derive(Subcommand, Debug)]
pub enum TicketCmd {
    /// Queue a ticket for the agents
    Add {
        title: String,
        /// What to do, in detail (see --body-file for a long one)
        #[arg(long, default_value = "")]
        body: String,
        /// Read the body from a file, `-` for stdin (at most 64K characters)
        #[arg(long, value_name = "PATH", conflicts_with = "body")]
        body_file: Option<std::path::PathBuf>,
        /// Higher runs first
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        priority: i32,
        /// Agent profile to run it with
        #[arg(long)]
        agent: Option<String>,
        /// Paths (globs) it is expected to touch
        #[arg(long, num_args = 1.., value_delimiter = ',')]
        paths: Vec<String>,
        /// What the host running it must offer (`[[hosts]] labels`), e.g. gpu,linux
        #[arg(long, num_args = 1.., value_delimiter = ',')]
        labels: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List tickets, highest priority first
    List {
        /// Only tickets in this state
        #[arg(long, value_parser = parse_state)]
        state: Option<TicketState>,
        #[arg(long)]
        json: bool,
    },
    /// Show one ticket
    Show {
        id: u64,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a ticket that has not landed
    Cancel { id: u64 },
}

/// A ticket body from a file or stdin. Read with a bound, so a huge file or an endless
/// pipe is refused rather than held in memory; the ticket's own bound (64K characters)
/// is checked where every ticket is added.
fn read_body(path: &std::path::Path) -> Result<String> {
    use std::io::Read;
    const MAX_BYTES: u64 = 1 << 20;
    let reader: Box<dyn Read> =
        if path.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(std::fs::File::open(path).map_err(|e| {
                anyhow::anyhow!("cannot read the body from {}: {e}", path.display())
            })?)
        };
    let mut bytes = Vec::new();
    reader
        .take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot read the body from {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_BYTES {
        anyhow::bail!(
            "the body in {} is over {} MiB; a ticket's body is at most 64K characters: put the detail in a file the agent can read",
            path.display(),
            MAX_BYTES >> 20
        );
    }
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "the body in {} is not UTF-8 (byte {}); save it as UTF-8 text",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

fn parse_state(s: &str) -> Result<TicketState, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
        format!("unknown state `{s}`; use queued, running, review, merged, failed or cancelled")
    })
}

pub fn run(ctx: &Ctx, cmd: TicketCmd) -> Result<()> {
    match cmd {
        TicketCmd::Add {
            title,
            body,
            body_file,
            priority,
            agent,
            paths,
            labels,
            json,
        } => {
            let body = match body_file {
                Some(path) => read_body(&path)?,
                None => body,
            };
            let t = ctx.backend()?.add_ticket(NewTicket {
                title,
                body,
                priority,
                agent,
                paths,
                labels,
            })?;
            if json {
                return print_json(&t);
            }
            say!("ticket {} queued: {}", t.id, t.title);
            Ok(())
        }
        TicketCmd::List { state, json } => {
            // In the order the scheduler takes them: priority, then age.
            let backend = ctx.backend()?;
            let tickets = backend.tickets(state)?;
            // Why queued tickets are not starting, when the budget says so.
            if !json && let Some(why) = backend.status()?.held {
                say!("{why}");
            }
            print_list(
                json,
                &tickets,
                &["ID", "STATE", "PRIO", "AGENT", "CREATED", "TITLE"],
                |t| {
                    vec![
                        t.id.to_string(),
                        t.state.to_string(),
                        t.priority.to_string(),
                        t.agent.clone().unwrap_or_else(|| "-".into()),
                        when(t.created),
                        clip(&t.title, 60),
                    ]
                },
                "no tickets; `shopfloor ticket add TITLE` queues one",
            )
        }
        TicketCmd::Show { id, json } => {
            let t = ctx.backend()?.ticket(id)?;
            if json {
                return print_json(&t);
            }
            say!("ticket    {}", t.id);
            say!("title     {}", t.title);
            say!("state     {}", t.state);
            say!("priority  {}", t.priority);
            say!("agent     {}", t.agent.as_deref().unwrap_or("-"));
            say!(
                "paths     {}",
                if t.paths.is_empty() {
                    "-".into()
                } else {
                    t.paths.join(", ")
                }
            );
            if !t.labels.is_empty() {
                say!("labels    {}", t.labels.join(", "));
            }
            say!("created   {}", when(t.created));
            say!("updated   {}", when(t.updated));
            let runs: Vec<String> = t.runs.iter().map(|r| r.to_string()).collect();
            say!(
                "runs      {}",
                if runs.is_empty() {
                    "-".into()
                } else {
                    runs.join(", ")
                }
            );
            if !t.body.is_empty() {
                say!("\n{}", t.body);
            }
            Ok(())
        }
        TicketCmd::Cancel { id } => {
            let t = ctx.backend()?.cancel_ticket(id)?;
            say!("ticket {} cancelled", t.id);
            Ok(())
        }
    }
}

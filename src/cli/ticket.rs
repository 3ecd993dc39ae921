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
        #[arg(long, default_value = "")]
        body: String,
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
            priority,
            agent,
            paths,
            labels,
            json,
        } => {
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

//! `shopfloor ticket ...`

use anyhow::{Context, Result};
use clap::Subcommand;
use jiff::Timestamp;
use shopfloor::model::{Ticket, TicketState};
use shopfloor::store::{Store, StoreError};

use super::Ctx;
use super::output::{clip, print_json, print_table, when};

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

fn open(ctx: &Ctx) -> Result<Store> {
    let info = ctx.info()?;
    Store::open(&info.store_path()).with_context(|| format!("opening workspace `{}`", info.name))
}

pub fn run(ctx: &Ctx, cmd: TicketCmd) -> Result<()> {
    match cmd {
        TicketCmd::Add {
            title,
            body,
            priority,
            agent,
            paths,
            json,
        } => {
            if title.trim().is_empty() {
                anyhow::bail!("a ticket needs a title: `shopfloor ticket add \"what to do\"`");
            }
            let store = open(ctx)?;
            let now = Timestamp::now();
            let t = store.add_ticket(Ticket {
                id: 0,
                title,
                body,
                priority,
                agent,
                paths,
                state: TicketState::Queued,
                created: now,
                updated: now,
                runs: vec![],
            })?;
            if json {
                return print_json(&t);
            }
            println!("ticket {} queued: {}", t.id, t.title);
            Ok(())
        }
        TicketCmd::List { state, json } => {
            let store = open(ctx)?;
            let mut tickets: Vec<Ticket> = store
                .tickets()?
                .into_iter()
                .filter(|t| state.is_none_or(|s| t.state == s))
                .collect();
            // The order the scheduler takes them in: priority, then age.
            tickets.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.created.cmp(&b.created)));
            if json {
                return print_json(&tickets);
            }
            if tickets.is_empty() {
                println!("no tickets; `shopfloor ticket add TITLE` queues one");
                return Ok(());
            }
            let rows = tickets
                .iter()
                .map(|t| {
                    vec![
                        t.id.to_string(),
                        t.state.to_string(),
                        t.priority.to_string(),
                        t.agent.clone().unwrap_or_else(|| "-".into()),
                        when(t.created),
                        clip(&t.title, 60),
                    ]
                })
                .collect::<Vec<_>>();
            print_table(&["ID", "STATE", "PRIO", "AGENT", "CREATED", "TITLE"], &rows);
            Ok(())
        }
        TicketCmd::Show { id, json } => {
            let store = open(ctx)?;
            let t = store.ticket(id)?.with_context(|| {
                format!("ticket {id} not found; `shopfloor ticket list` shows the tickets")
            })?;
            if json {
                return print_json(&t);
            }
            println!("ticket    {}", t.id);
            println!("title     {}", t.title);
            println!("state     {}", t.state);
            println!("priority  {}", t.priority);
            println!("agent     {}", t.agent.as_deref().unwrap_or("-"));
            println!(
                "paths     {}",
                if t.paths.is_empty() {
                    "-".into()
                } else {
                    t.paths.join(", ")
                }
            );
            println!("created   {}", when(t.created));
            println!("updated   {}", when(t.updated));
            let runs: Vec<String> = t.runs.iter().map(|r| r.to_string()).collect();
            println!(
                "runs      {}",
                if runs.is_empty() {
                    "-".into()
                } else {
                    runs.join(", ")
                }
            );
            if !t.body.is_empty() {
                println!("\n{}", t.body);
            }
            Ok(())
        }
        TicketCmd::Cancel { id } => {
            let store = open(ctx)?;
            let t = store
                .update_ticket(id, |t| {
                    if t.state.is_final() {
                        return Err(StoreError::Invalid(format!(
                            "ticket {} is already {}; only queued, running or review tickets can be cancelled",
                            t.id, t.state
                        )));
                    }
                    t.state = TicketState::Cancelled;
                    Ok(())
                })
                .map_err(|e| match e {
                    StoreError::NotFound { .. } => {
                        anyhow::anyhow!("ticket {id} not found; `shopfloor ticket list` shows the tickets")
                    }
                    e => e.into(),
                })?;
            println!("ticket {} cancelled", t.id);
            Ok(())
        }
    }
}

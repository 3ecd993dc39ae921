//! `shopfloor cost`: what the factory spent, per ticket, agent and day.

use anyhow::Result;
use jiff::Timestamp;

use super::Ctx;
use super::output::{print_json, print_table, say};
use shopfloor::spend::{Line, spend};

pub fn run(ctx: &Ctx, since: Option<Timestamp>, json: bool) -> Result<()> {
    let backend = ctx.backend()?;
    let runs = backend.runs()?;
    let tickets = backend.tickets(None)?;
    let s = spend(&runs, &tickets, since);
    if json {
        return print_json(&s);
    }
    let row = |l: &Line| {
        let priced = if l.priced_usd > 0.0 {
            format!(" ({:.2} priced)", l.priced_usd)
        } else {
            String::new()
        };
        vec![
            l.key.clone(),
            l.runs.to_string(),
            l.input_tokens.to_string(),
            l.output_tokens.to_string(),
            format!("${:.2}{priced}", l.cost_usd),
        ]
    };
    for (title, lines) in [
        ("TICKET", &s.by_ticket),
        ("AGENT", &s.by_agent),
        ("DAY (UTC)", &s.by_day),
    ] {
        let rows: Vec<Vec<String>> = lines.iter().map(row).collect();
        print_table(&[title, "RUNS", "IN", "OUT", "COST"], &rows);
        say!("");
    }
    let t = &s.total;
    say!(
        "total: ${:.2} over {} runs{}{}",
        t.cost_usd,
        t.runs,
        s.since
            .map(|since| format!(" since {since}"))
            .unwrap_or_default(),
        if t.priced_usd > 0.0 {
            format!("; ${:.2} of it priced from tokens ([prices])", t.priced_usd)
        } else {
            String::new()
        }
    );
    Ok(())
}

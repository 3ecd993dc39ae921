//! What the factory spent: runs' costs added up per ticket, per agent and per day (UTC),
//! for `shopfloor cost` and the Tickets screen. Imported sessions count too: they were
//! spent on this repository all the same.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{Run, Ticket, TicketId};

/// One row: what a ticket, an agent or a day cost.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub key: String,
    pub runs: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    /// Part of the cost priced from token counts (`[prices]`), not reported by the agent.
    pub priced_usd: f64,
}

impl Line {
    fn add(&mut self, r: &Run) {
        let u = &r.usage;
        self.runs += 1;
        self.input_tokens = self.input_tokens.saturating_add(u.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(u.output_tokens);
        let cost = u.cost_usd.unwrap_or(0.0);
        self.cost_usd += cost;
        if u.cost_priced {
            self.priced_usd += cost;
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    /// Runs started at or after this, when limited.
    pub since: Option<Timestamp>,
    pub total: Line,
    /// Dearest first; key `#ID title`.
    pub by_ticket: Vec<Line>,
    /// Dearest first.
    pub by_agent: Vec<Line>,
    /// Newest first; key `YYYY-MM-DD` (UTC).
    pub by_day: Vec<Line>,
}

/// The UTC day `ts` falls on, `YYYY-MM-DD`.
pub fn day_of(ts: Timestamp) -> String {
    ts.to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date()
        .to_string()
}

/// What `runs` started at or after `since` cost.
pub fn spend(runs: &[Run], tickets: &[Ticket], since: Option<Timestamp>) -> Spend {
    let titles: BTreeMap<TicketId, &str> =
        tickets.iter().map(|t| (t.id, t.title.as_str())).collect();
    let mut total = Line {
        key: "total".into(),
        ..Line::default()
    };
    let (mut by_ticket, mut by_agent, mut by_day) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for r in runs.iter().filter(|r| since.is_none_or(|s| r.started >= s)) {
        total.add(r);
        let ticket = match r.ticket {
            Some(t) => format!("#{t} {}", titles.get(&t).copied().unwrap_or("")),
            None => "(imported sessions)".to_string(),
        };
        for (map, key) in [
            (&mut by_ticket, ticket),
            (&mut by_agent, r.agent.clone()),
            (&mut by_day, day_of(r.started)),
        ] {
            map.entry(key.clone())
                .or_insert_with(|| Line {
                    key,
                    ..Line::default()
                })
                .add(r);
        }
    }
    let dearest = |m: BTreeMap<String, Line>| {
        let mut v: Vec<Line> = m.into_values().collect();
        v.sort_by(|a, b| b.cost_usd.total_cmp(&a.cost_usd).then(a.key.cmp(&b.key)));
        v
    };
    let mut days: Vec<Line> = by_day.into_values().collect();
    days.reverse();
    Spend {
        since,
        total,
        by_ticket: dearest(by_ticket),
        by_agent: dearest(by_agent),
        by_day: days,
    }
}

/// What one ticket's runs cost so far.
pub fn ticket_cost(runs: &[Run], ticket: TicketId) -> f64 {
    runs.iter()
        .filter(|r| r.ticket == Some(ticket))
        .filter_map(|r| r.usage.cost_usd)
        .sum()
}

/// The start of `now`'s UTC day: the runs the day's budget counts start from here
/// (`Store::runs_started_since`).
pub fn day_start(now: Timestamp) -> Timestamp {
    Timestamp::from_second(now.as_second().div_euclid(86_400) * 86_400).unwrap_or(now)
}

/// What runs started on `day` (UTC, `YYYY-MM-DD`) cost.
pub fn day_cost(runs: &[Run], day: &str) -> f64 {
    runs.iter()
        .filter(|r| day_of(r.started) == day)
        .filter_map(|r| r.usage.cost_usd)
        .sum()
}

/// Why nothing new may start: the day's budget is spent. None while there is budget left
/// (or no budget).
pub fn day_budget_spent(runs: &[Run], budget: Option<f64>, now: Timestamp) -> Option<String> {
    let budget = budget?;
    let today = day_of(now);
    let spent = day_cost(runs, &today);
    (spent >= budget).then(|| {
        format!(
            "today's budget of ${budget:.2} is spent (${spent:.2} on {today} UTC): nothing new starts until tomorrow; raise [factory] budget_usd_per_day to go on"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{RunState, TicketState, Usage};

    fn run(id: u64, ticket: Option<u64>, agent: &str, day: &str, cost: f64, priced: bool) -> Run {
        Run {
            id,
            ticket,
            agent: agent.into(),
            state: RunState::Succeeded,
            started: format!("{day}T12:00:00Z").parse().unwrap(),
            ended: None,
            steps: 0,
            source: String::new(),
            attempt: 1,
            branch: None,
            usage: Usage {
                input_tokens: 100,
                output_tokens: 10,
                cost_usd: Some(cost),
                cost_priced: priced,
                ..Usage::default()
            },
            files_changed: vec![],
            sandbox: None,
            outcome: None,
            recalled: vec![],
            review_of: None,
            host: None,
        }
    }

    #[test]
    fn adds_up_per_ticket_agent_and_day_dearest_and_newest_first() {
        let now = Timestamp::now();
        let t = |id, title: &str| Ticket {
            id,
            title: title.into(),
            body: String::new(),
            priority: 0,
            agent: None,
            paths: vec![],
            labels: vec![],
            state: TicketState::Merged,
            created: now,
            updated: now,
            runs: vec![],
        };
        let runs = vec![
            run(1, Some(1), "claude", "2026-11-27", 1.0, false),
            run(2, Some(1), "claude", "2026-11-28", 2.0, false),
            run(3, Some(2), "codex", "2026-11-28", 0.5, true),
            run(4, None, "claude-code", "2026-11-29", 0.25, false),
        ];
        let s = spend(&runs, &[t(1, "Fix it"), t(2, "Docs")], None);
        assert_eq!(s.total.runs, 4);
        assert!((s.total.cost_usd - 3.75).abs() < 1e-9);
        assert!((s.total.priced_usd - 0.5).abs() < 1e-9);
        assert_eq!(s.by_ticket[0].key, "#1 Fix it");
        assert!((s.by_ticket[0].cost_usd - 3.0).abs() < 1e-9);
        assert_eq!(s.by_ticket.last().unwrap().key, "(imported sessions)");
        assert_eq!(s.by_agent[0].key, "claude");
        let days: Vec<&str> = s.by_day.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(days, ["2026-11-29", "2026-11-28", "2026-11-27"]);
        let since = "2026-11-28T00:00:00Z".parse().unwrap();
        assert_eq!(spend(&runs, &[], Some(since)).total.runs, 3);
        assert!((ticket_cost(&runs, 1) - 3.0).abs() < 1e-9);
        assert!((day_cost(&runs, "2026-11-28") - 2.5).abs() < 1e-9);
        let on_28th = "2026-11-28T20:00:00Z".parse().unwrap();
        assert!(day_budget_spent(&runs, None, on_28th).is_none());
        assert!(day_budget_spent(&runs, Some(3.0), on_28th).is_none());
        let spent = day_budget_spent(&runs, Some(2.5), on_28th).unwrap();
        assert!(
            spent.contains("$2.50") && spent.contains("2026-11-28"),
            "{spent}"
        );
    }
}

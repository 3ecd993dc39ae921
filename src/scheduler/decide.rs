//! The scheduler's decisions as pure functions: no clock, no store, no processes. The
//! factory builds a snapshot, asks, and carries out the answer.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::model::{Attempts, TicketId};

/// A ticket waiting for an agent.
#[derive(Clone, Debug, PartialEq)]
pub struct Waiting {
    pub ticket: TicketId,
    pub priority: i32,
    pub created: Timestamp,
    /// The profile the ticket asks for; None takes the default.
    pub agent: Option<String>,
    /// The attempt the next run will be (1 for a fresh ticket).
    pub attempt: u32,
}

/// How many runs may go at once: overall, and per agent profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    pub global: usize,
    pub per_profile: BTreeMap<String, usize>,
}

/// What is running now, by profile.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Busy {
    pub by_profile: BTreeMap<String, usize>,
}

impl Busy {
    pub fn total(&self) -> usize {
        self.by_profile.values().sum()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Start {
    pub ticket: TicketId,
    pub agent: String,
    pub attempt: u32,
}

/// A ticket the scheduler cannot run as asked, with the reason to show on it.
#[derive(Clone, Debug, PartialEq)]
pub struct Unrunnable {
    pub ticket: TicketId,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Picks {
    pub start: Vec<Start>,
    pub unrunnable: Vec<Unrunnable>,
}

/// Which waiting tickets to start now: highest priority first, then oldest, up to the
/// global limit and each profile's limit. A full profile does not block tickets for other
/// profiles behind it (no head-of-line blocking).
pub fn pick(
    waiting: &[Waiting],
    busy: &Busy,
    limits: &Limits,
    default_agent: &str,
    known: &dyn Fn(&str) -> bool,
) -> Picks {
    let mut order: Vec<&Waiting> = waiting.iter().collect();
    order.sort_by_key(|w| crate::model::take_order(w.priority, w.created, w.ticket));
    let mut running = busy.clone();
    let mut out = Picks::default();
    for w in order {
        let agent = w.agent.as_deref().unwrap_or(default_agent);
        if !known(agent) {
            out.unrunnable.push(Unrunnable {
                ticket: w.ticket,
                reason: format!(
                    "no agent profile `{agent}`; add [agents.{agent}] to shopfloor.toml or set the ticket's agent to one that exists"
                ),
            });
            continue;
        }
        if running.total() >= limits.global {
            break;
        }
        let in_profile = running.by_profile.get(agent).copied().unwrap_or(0);
        if limits
            .per_profile
            .get(agent)
            .is_some_and(|&cap| in_profile >= cap)
        {
            continue;
        }
        *running.by_profile.entry(agent.to_string()).or_default() += 1;
        out.start.push(Start {
            ticket: w.ticket,
            agent: agent.to_string(),
            attempt: w.attempt,
        });
    }
    out
}

/// How a run ended, as the factory saw it.
#[derive(Clone, Debug, PartialEq)]
pub enum RunOutcome {
    /// Exit code 0.
    Succeeded,
    /// Non-zero exit, or killed by a signal the factory did not send: `exit` is the code
    /// and signal.
    Failed {
        why: String,
        exit: (Option<i32>, Option<i32>),
    },
    /// The factory stopped it for going over its wall-clock or quiet limit.
    TimedOut { why: String },
    /// The factory stopped it: its ticket's budget is spent. No retry: another attempt
    /// would spend more.
    OverBudget { why: String },
    /// A human cancelled the ticket or killed the run.
    Cancelled,
    /// The factory stopped; the ticket goes back to the queue as it was.
    Interrupted,
    /// A human stopped it for a fresh attempt: the ticket goes back to the queue.
    Restarted,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    /// Hand the branch to the merge queue.
    Review,
    /// Run the ticket again; the failure goes into the next prompt and into memory.
    Retry {
        attempt: u32,
        lesson: String,
    },
    /// Give up on the ticket.
    Fail {
        why: String,
    },
    Cancel,
    /// Back to the queue as it was: the run was interrupted, not failed.
    Requeue,
}

/// At most this many interruptions of one ticket's runs (a factory that keeps dying, a
/// sandbox that cannot be prepared) before the ticket fails for a person to look at.
pub const MAX_INTERRUPTIONS: u32 = 5;

/// What to do with a ticket whose run was interrupted, the `interrupted`th time in all.
pub fn after_interruption(interrupted: u32) -> Next {
    if interrupted >= MAX_INTERRUPTIONS {
        Next::Fail {
            why: format!(
                "interrupted {interrupted} times (the factory stopped, or the run's sandbox could not be prepared); \
                 `shopfloor run list` and the log say why; retry it when that is mended"
            ),
        }
    } else {
        Next::Requeue
    }
}

/// What to do with a ticket after its run ended, given how its earlier runs counted.
pub fn after_exit(outcome: &RunOutcome, before: Attempts, max_attempts: u32) -> Next {
    let attempt = before.counted + 1;
    match outcome {
        RunOutcome::Succeeded => Next::Review,
        RunOutcome::Cancelled => Next::Cancel,
        RunOutcome::Restarted => Next::Requeue,
        RunOutcome::Interrupted => after_interruption(before.interrupted + 1),
        RunOutcome::OverBudget { why } => Next::Fail {
            why: format!("stopped at attempt {attempt}: {why}"),
        },
        RunOutcome::Failed { why, .. } | RunOutcome::TimedOut { why } => {
            if !crate::model::transitions::attempts_spent(attempt, max_attempts) {
                Next::Retry {
                    attempt: attempt + 1,
                    lesson: format!("Attempt {attempt} failed: {why}"),
                }
            } else {
                Next::Fail {
                    why: format!("failed after {attempt} attempt(s); last: {why}"),
                }
            }
        }
    }
}

/// The limits a live run is held to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timeouts {
    pub wall: SignedDuration,
    pub quiet: SignedDuration,
}

/// Whether a live run has run too long or been silent too long.
pub fn timed_out(
    now: Timestamp,
    started: Timestamp,
    last_output: Timestamp,
    t: &Timeouts,
) -> Option<String> {
    let ran = now.duration_since(started);
    let quiet = now.duration_since(last_output);
    if ran >= t.wall {
        Some(format!(
            "ran for {}s, over the wall-clock limit of {}s",
            ran.as_secs(),
            t.wall.as_secs()
        ))
    } else if quiet >= t.quiet {
        Some(format!(
            "no output for {}s, over the no-output limit of {}s",
            quiet.as_secs(),
            t.quiet.as_secs()
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn w(ticket: u64, priority: i32, created: i64, agent: Option<&str>) -> Waiting {
        Waiting {
            ticket,
            priority,
            created: ts(created),
            agent: agent.map(str::to_string),
            attempt: 1,
        }
    }

    fn limits(global: usize, per: &[(&str, usize)]) -> Limits {
        Limits {
            global,
            per_profile: per.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    fn all(_: &str) -> bool {
        true
    }

    fn ids(p: &Picks) -> Vec<u64> {
        p.start.iter().map(|s| s.ticket).collect()
    }

    #[test]
    fn priority_then_age_up_to_the_global_limit() {
        let waiting = [
            w(1, 0, 10, None),
            w(2, 5, 30, None),
            w(3, 5, 20, None),
            w(4, 1, 0, None),
        ];
        let p = pick(&waiting, &Busy::default(), &limits(3, &[]), "claude", &all);
        assert_eq!(ids(&p), vec![3, 2, 4]);
        assert!(p.start.iter().all(|s| s.agent == "claude"));
    }

    #[test]
    fn running_runs_count_against_limits() {
        let busy = Busy {
            by_profile: [("claude".to_string(), 2)].into(),
        };
        let p = pick(&[w(1, 0, 0, None)], &busy, &limits(2, &[]), "claude", &all);
        assert!(p.start.is_empty());
        let p = pick(&[w(1, 0, 0, None)], &busy, &limits(3, &[]), "claude", &all);
        assert_eq!(ids(&p), vec![1]);
    }

    #[test]
    fn a_full_profile_does_not_block_others() {
        let waiting = [
            w(1, 9, 0, Some("codex")),
            w(2, 8, 0, Some("codex")),
            w(3, 1, 0, Some("claude")),
        ];
        let p = pick(
            &waiting,
            &Busy::default(),
            &limits(10, &[("codex", 1)]),
            "claude",
            &all,
        );
        assert_eq!(ids(&p), vec![1, 3]);
    }

    #[test]
    fn unknown_profiles_are_reported_not_started() {
        let known = |a: &str| a == "claude";
        let p = pick(
            &[w(1, 0, 0, Some("gpt-9")), w(2, 0, 1, None)],
            &Busy::default(),
            &limits(5, &[]),
            "claude",
            &known,
        );
        assert_eq!(ids(&p), vec![2]);
        assert_eq!(p.unrunnable.len(), 1);
        assert!(p.unrunnable[0].reason.contains("[agents.gpt-9]"));
    }

    #[test]
    fn exhaustive_small_cases_never_exceed_limits() {
        // Every combination of 0..4 busy, global 0..4, per-profile cap 0..3, over 6 tickets.
        let profiles = ["a", "b"];
        for busy_a in 0..4 {
            for global in 0..5 {
                for cap in 0..4 {
                    let waiting: Vec<Waiting> = (0..6)
                        .map(|i| {
                            w(
                                i,
                                (i % 3) as i32,
                                i as i64,
                                Some(profiles[(i % 2) as usize]),
                            )
                        })
                        .collect();
                    let busy = Busy {
                        by_profile: [("a".to_string(), busy_a)].into(),
                    };
                    let l = limits(global, &[("a", cap)]);
                    let p = pick(&waiting, &busy, &l, "a", &all);
                    let started_a = p.start.iter().filter(|s| s.agent == "a").count();
                    assert!(
                        busy_a + p.start.len() <= global.max(busy_a),
                        "global {global} busy {busy_a}: {p:?}"
                    );
                    assert!(busy_a + started_a <= cap.max(busy_a), "cap {cap}: {p:?}");
                    // Started tickets come in priority order.
                    let prios: Vec<i32> = p
                        .start
                        .iter()
                        .map(|s| waiting[s.ticket as usize].priority)
                        .collect();
                    assert!(prios.windows(2).all(|x| x[0] >= x[1]), "{prios:?}");
                }
            }
        }
    }

    fn tried(counted: u32, interrupted: u32) -> Attempts {
        Attempts {
            counted,
            interrupted,
        }
    }

    #[test]
    fn failures_retry_until_the_last_attempt() {
        let f = RunOutcome::Failed {
            why: "exit 1".into(),
            exit: (Some(1), None),
        };
        assert_eq!(
            after_exit(&f, tried(0, 0), 3),
            Next::Retry {
                attempt: 2,
                lesson: "Attempt 1 failed: exit 1".into()
            }
        );
        assert!(matches!(after_exit(&f, tried(2, 0), 3), Next::Fail { .. }));
        assert_eq!(
            after_exit(&RunOutcome::Succeeded, tried(0, 0), 3),
            Next::Review
        );
        assert_eq!(
            after_exit(&RunOutcome::Cancelled, tried(0, 0), 3),
            Next::Cancel
        );
        let t = RunOutcome::TimedOut {
            why: "quiet".into(),
        };
        assert!(matches!(after_exit(&t, tried(0, 0), 1), Next::Fail { .. }));
    }

    #[test]
    fn interruptions_are_no_attempt_but_are_bounded() {
        let f = RunOutcome::Failed {
            why: "exit 1".into(),
            exit: (Some(1), None),
        };
        // Two interruptions before: still the agent's first attempt.
        assert!(matches!(
            after_exit(&f, tried(0, 2), 2),
            Next::Retry { attempt: 2, .. }
        ));
        assert_eq!(
            after_exit(&RunOutcome::Interrupted, tried(2, 0), 2),
            Next::Requeue,
            "spent attempts do not fail an interrupted run"
        );
        assert_eq!(
            after_exit(&RunOutcome::Interrupted, tried(0, MAX_INTERRUPTIONS - 2), 2),
            Next::Requeue
        );
        assert!(matches!(
            after_exit(&RunOutcome::Interrupted, tried(0, MAX_INTERRUPTIONS - 1), 2),
            Next::Fail { .. }
        ));
        assert_eq!(
            after_exit(&RunOutcome::Restarted, tried(0, 100), 2),
            Next::Requeue,
            "a person's restart is never bounded"
        );
    }

    #[test]
    fn timeouts_wall_and_quiet() {
        let t = Timeouts {
            wall: SignedDuration::from_secs(100),
            quiet: SignedDuration::from_secs(10),
        };
        assert_eq!(timed_out(ts(50), ts(0), ts(45), &t), None);
        assert!(
            timed_out(ts(50), ts(0), ts(39), &t)
                .unwrap()
                .contains("no output for 11s")
        );
        assert!(
            timed_out(ts(100), ts(0), ts(99), &t)
                .unwrap()
                .contains("wall-clock")
        );
    }
}

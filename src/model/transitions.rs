//! The one state machine of tickets and merge-queue entries. Every change of a ticket's or
//! an entry's state is one of these pure functions, `(state, event) -> (new state, effects)`
//! or a [`Refusal`] that says why; the store applies one per write transaction (read, check,
//! write), so a person's decision and a machine's result can never interleave halfway.
//!
//! A person's decision wins over a machine's outcome: a reject or a cancel takes effect while
//! the entry is being tested, and the test result that arrives afterwards is recorded and
//! discarded; a paused queue refuses to begin a landing. The only window a person cannot
//! close is [`QueueState::Landing`]: the tests and the gate have passed and main is being
//! moved, which either happens or, after a crash, is found out by `recover`.

use std::fmt;

use super::{
    Approval, Attempts, LineComment, QueueEntry, QueueEntryId, QueueState, Review, ReviewVerdict,
    RunId, TestRecord, Ticket, TicketId, TicketState, Verdict, short_commit,
};

/// Why a transition was not made, in words for the person or the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub why: String,
}

impl Refusal {
    fn new(why: impl Into<String>) -> Refusal {
        Refusal { why: why.into() }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.why)
    }
}

impl std::error::Error for Refusal {}

/// The retry cap, decided here and nowhere else: whether a ticket whose runs have counted
/// `counted` attempts (the latest included) may have no more.
pub fn attempts_spent(counted: u32, max_attempts: u32) -> bool {
    counted >= max_attempts
}

/// What a transition asks the world to do besides writing the new state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Stop the ticket's live runs (it was cancelled).
    StopRuns(TicketId),
    /// A machine's result arrived for an entry a person already decided: it was recorded
    /// and changes nothing.
    Discarded(String),
}

// ---- tickets ----

/// What happens to a ticket.
#[derive(Clone, Debug, PartialEq)]
pub enum TicketEvent {
    /// The scheduler starts run `run` of it.
    Claim { run: RunId },
    /// Its run ended; the scheduler decided what comes next.
    RunEnded { next: AfterRun },
    /// The factory could not run it as asked (an unknown agent profile, say).
    Unrunnable { reason: String },
    /// A person cancels it.
    Cancel,
    /// A person queues a failed or cancelled ticket again.
    Retry,
    /// A person gives it a new priority.
    Prioritize(i32),
}

/// Where a ticket goes after its run, as the scheduler decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterRun {
    /// Its branch goes to the merge queue.
    Review,
    /// Back to the queue for another run.
    Queue,
    Fail,
    Cancel,
}

/// A ticket transition's result: the ticket, the entries of it that change with it (a
/// cancel withdraws them), and effects.
#[derive(Clone, Debug, PartialEq)]
pub struct TicketOutcome {
    pub ticket: Ticket,
    pub entries: Vec<QueueEntry>,
    pub effects: Vec<Effect>,
}

/// Apply `ev` to ticket `t`, whose queue entries are `entries`.
pub fn ticket(
    t: &Ticket,
    entries: &[QueueEntry],
    ev: &TicketEvent,
) -> Result<TicketOutcome, Refusal> {
    let mut out = TicketOutcome {
        ticket: t.clone(),
        entries: Vec::new(),
        effects: Vec::new(),
    };
    let id = t.id;
    match ev {
        TicketEvent::Claim { run } => {
            if t.state != TicketState::Queued {
                return Err(Refusal::new(format!(
                    "ticket {id} is {} now; only a queued ticket is started",
                    t.state
                )));
            }
            out.ticket.state = TicketState::Running;
            out.ticket.runs.push(*run);
        }
        TicketEvent::RunEnded { next } => match t.state {
            TicketState::Running => {
                out.ticket.state = match next {
                    AfterRun::Review => TicketState::Review,
                    AfterRun::Queue => TicketState::Queued,
                    AfterRun::Fail => TicketState::Failed,
                    AfterRun::Cancel => TicketState::Cancelled,
                };
            }
            // A cancel that raced the run's end wins; the run's result is recorded on the
            // run, not on the ticket.
            TicketState::Cancelled => out.effects.push(Effect::Discarded(format!(
                "ticket {id} was cancelled while its run ended; it stays cancelled"
            ))),
            s => {
                return Err(Refusal::new(format!(
                    "ticket {id} is {s}, not running; its run's end changes nothing"
                )));
            }
        },
        TicketEvent::Unrunnable { reason } => {
            if t.state != TicketState::Queued {
                return Err(Refusal::new(format!("ticket {id} is {} now", t.state)));
            }
            out.ticket.state = TicketState::Failed;
            out.ticket.body = format!("{}\n\n[shopfloor] not run: {reason}", t.body.trim_end());
        }
        TicketEvent::Cancel => {
            if t.state.is_final() {
                return Err(Refusal::new(format!(
                    "ticket {id} is already {}; only queued, running or review tickets can be cancelled",
                    t.state
                )));
            }
            for e in entries.iter().filter(|e| e.ticket == Some(id)) {
                match entry(
                    e,
                    Some(t),
                    &Context::default(),
                    &EntryEvent::TicketCancelled,
                ) {
                    Ok(o) => {
                        if o.entry != *e {
                            out.entries.push(o.entry);
                        }
                    }
                    Err(r) => {
                        return Err(Refusal::new(format!(
                            "ticket {id} cannot be cancelled now: {r}"
                        )));
                    }
                }
            }
            out.ticket.state = TicketState::Cancelled;
            out.effects.push(Effect::StopRuns(id));
        }
        TicketEvent::Retry => {
            if !matches!(t.state, TicketState::Failed | TicketState::Cancelled) {
                return Err(Refusal::new(format!(
                    "ticket {id} is {}; only a failed or cancelled ticket is retried (kill its run first)",
                    t.state
                )));
            }
            out.ticket.state = TicketState::Queued;
        }
        TicketEvent::Prioritize(p) => {
            if t.state.is_final() {
                return Err(Refusal::new(format!(
                    "ticket {id} is already {}; a priority only matters before it lands",
                    t.state
                )));
            }
            out.ticket.priority = *p;
        }
    }
    Ok(out)
}

// ---- queue entries ----

/// What happens to a queue entry.
#[derive(Clone, Debug, PartialEq)]
pub enum EntryEvent {
    /// Its branch has a new head (which voids an approval of the old one).
    HeadMoved { head: String },
    /// A person approves its current head.
    Approve(Approval),
    /// A person rejects it.
    Reject { by: String, reason: String },
    /// Its ticket was cancelled.
    TicketCancelled,
    /// A person moves it in the queue.
    Bump { priority: i32 },
    /// The queue merged it onto `base` as `candidate` and starts testing it.
    StartTest {
        base: String,
        candidate: String,
        verdict: Verdict,
    },
    /// One test run that included it finished.
    TestResult(TestRecord),
    /// It waits for a person (a needed approval, or tests that cannot run).
    Wait {
        verdict: Option<Verdict>,
        reason: String,
    },
    /// The policy denies it.
    Deny { verdict: Verdict, reason: String },
    /// It goes back to its ticket (a conflict, red tests); `paths` are the ones involved.
    Bounce { reason: String, paths: Vec<String> },
    /// Back in line, to be merged and tested again (main moved, the queue was paused, an
    /// entry ahead of it in a batch broke, the factory stopped).
    Requeue { reason: String },
    /// The queue is about to move main to `landing`, a commit that holds this entry.
    BeginLanding {
        landing: String,
        /// The `test` check is required: `landing` must have a green run.
        requires_green: bool,
    },
    /// Main now holds it, at `commit`.
    Landed { commit: String },
    /// An agent reviewer answered. Always recorded; a request for changes sends the entry
    /// back to its ticket with the review as the retry's lesson.
    Reviewed(Review),
    /// A person comments on a line of its diff (sent back with it by `SendBack`).
    Comment(LineComment),
    /// A person sends it back to its agent with every comment on it.
    SendBack { by: String },
}

/// What the store reads, in the same transaction, for an entry transition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// How its ticket's runs count (for a bounce: back to the queue, or failed).
    pub attempts: Attempts,
    pub max_attempts: u32,
    /// The queue is paused: nothing begins to land.
    pub paused: bool,
}

/// An entry transition's result: the entry, its ticket's new state if it changes, effects.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryOutcome {
    pub entry: QueueEntry,
    pub ticket: Option<TicketState>,
    pub effects: Vec<Effect>,
}

impl EntryOutcome {
    /// The event was recorded but changed nothing: a person had decided first.
    pub fn discarded(&self) -> bool {
        self.effects
            .iter()
            .any(|e| matches!(e, Effect::Discarded(_)))
    }
}

/// The most comments an entry holds, a person's and a reviewer's alike: notes, not a file.
pub const MAX_COMMENTS: usize = 200;

/// The latest agent review of `e`'s current head, if any.
pub fn review_of_head(e: &QueueEntry) -> Option<&Review> {
    e.reviews.iter().rev().find(|r| r.head == e.head)
}

/// A review's request for changes, in words for the entry's reason and the retry's prompt:
/// the summary, then each comment on its own line.
pub fn changes_requested(who: &str, summary: &str, comments: &[LineComment]) -> String {
    let mut out = format!("{who} asked for changes: {}", summary.trim());
    for c in comments {
        out.push_str("\n- ");
        out.push_str(&c.render());
    }
    out
}

/// The ticket of an entry going back to it: queued again, or failed with its attempts spent.
fn back_to_ticket(cx: &Context) -> TicketState {
    if attempts_spent(cx.attempts.counted, cx.max_attempts) {
        TicketState::Failed
    } else {
        TicketState::Queued
    }
}

/// Whether `e` holds a human approval for exactly its current head.
pub fn approved(e: &QueueEntry) -> bool {
    e.approval.as_ref().is_some_and(|a| a.commit == e.head)
}

fn decided(id: QueueEntryId, e: &QueueEntry) -> String {
    let why = e
        .reason
        .as_deref()
        .and_then(|r| r.lines().next())
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    format!("entry {id} is {}{why}", e.state.name())
}

/// Apply `ev` to entry `e`, whose ticket (if any) is `t`.
pub fn entry(
    e: &QueueEntry,
    t: Option<&Ticket>,
    cx: &Context,
    ev: &EntryEvent,
) -> Result<EntryOutcome, Refusal> {
    use QueueState as S;
    let id = e.id;
    let mut out = EntryOutcome {
        entry: e.clone(),
        ticket: None,
        effects: Vec::new(),
    };
    let n = &mut out.entry;
    // The ticket follows its entry only while it waits in review: a ticket a person
    // cancelled, or one already running again, is not the entry's to move.
    let in_review = t.is_some_and(|t| t.state == TicketState::Review);
    let landing = || {
        Refusal::new(format!(
            "entry {id} is landing on main right now (its tests and gate passed); it is too late to stop it: revert it on main if it must go"
        ))
    };
    match ev {
        EntryEvent::HeadMoved { head } => match e.state {
            S::Queued | S::Testing | S::AwaitingApproval if *head != e.head => {
                if e.approval.as_ref().is_some_and(|a| a.commit != *head) {
                    n.reason = Some(
                        "the branch changed after it was approved: the approval is void".into(),
                    );
                }
                n.head = head.clone();
            }
            _ => {}
        },
        EntryEvent::Approve(a) => match e.state {
            S::Queued | S::Testing | S::AwaitingApproval => {
                let mut a = a.clone();
                // Pinned to the head the store holds, whatever the caller read.
                a.commit = e.head.clone();
                n.approval = Some(a);
                if e.state == S::AwaitingApproval {
                    n.state = S::Queued;
                }
            }
            S::Landing => return Err(landing()),
            _ => {
                return Err(Refusal::new(format!(
                    "entry {id} is {}; only a queued, testing or waiting entry can be approved",
                    e.state.name()
                )));
            }
        },
        EntryEvent::Reject { by, reason } => match e.state {
            S::Queued | S::AwaitingApproval => {
                n.state = S::Rejected;
                n.reason = Some(format!("rejected by {by}: {reason}"));
                if in_review {
                    out.ticket = Some(TicketState::Failed);
                }
            }
            S::Testing => {
                n.state = S::Rejected;
                n.reason = Some(format!(
                    "rejected by {by} while it was being tested: {reason}; the rejection is recorded and it will not land"
                ));
                if in_review {
                    out.ticket = Some(TicketState::Failed);
                }
            }
            S::Landing => return Err(landing()),
            S::Merged => return Err(Refusal::new(format!("entry {id} has already landed"))),
            S::Bounced => {
                return Err(Refusal::new(format!(
                    "entry {id} was bounced back to its ticket and will not land as it is; cancel the ticket to stop it"
                )));
            }
            S::Rejected => return Err(Refusal::new(format!("{}: already", decided(id, e)))),
        },
        EntryEvent::TicketCancelled => match e.state {
            S::Queued | S::Testing | S::AwaitingApproval => {
                n.state = S::Rejected;
                n.reason = Some(match (e.state, e.ticket) {
                    (S::Testing, Some(t)) => format!(
                        "ticket {t} was cancelled while it was being tested; it will not land"
                    ),
                    (_, Some(t)) => format!("ticket {t} was cancelled; it will not land"),
                    _ => "its ticket was cancelled; it will not land".into(),
                });
            }
            S::Landing => return Err(landing()),
            S::Merged | S::Bounced | S::Rejected => {}
        },
        EntryEvent::Bump { priority } => {
            if e.state.is_finished() || e.state == S::Landing {
                return Err(Refusal::new(format!(
                    "entry {id} is {}; only an entry still to land can be bumped",
                    e.state.name()
                )));
            }
            n.priority = *priority;
        }
        EntryEvent::StartTest {
            base,
            candidate,
            verdict,
        } => match e.state {
            // `testing` too: a turn a dead factory left halfway is taken again.
            S::Queued | S::Testing => {
                n.state = S::Testing;
                n.base = Some(base.clone());
                n.candidate = Some(candidate.clone());
                n.verdict = Some(verdict.clone());
                n.reason = None;
            }
            _ => {
                return Err(Refusal::new(format!(
                    "{}; it is not tested",
                    decided(id, e)
                )));
            }
        },
        EntryEvent::TestResult(r) => {
            // Always recorded: a person reads every run, a flaky one included.
            n.tests.push(r.clone());
            if e.state != S::Testing {
                out.effects.push(Effect::Discarded(format!(
                    "{}; the test result is recorded and discarded",
                    decided(id, e)
                )));
            }
        }
        EntryEvent::Wait { verdict, reason } => match e.state {
            S::Queued | S::Testing => {
                n.state = S::AwaitingApproval;
                if let Some(v) = verdict {
                    n.verdict = Some(v.clone());
                }
                n.reason = Some(reason.clone());
            }
            _ => return Err(Refusal::new(decided(id, e))),
        },
        EntryEvent::Deny { verdict, reason } => match e.state {
            S::Queued | S::Testing | S::AwaitingApproval => {
                n.state = S::Rejected;
                n.verdict = Some(verdict.clone());
                n.reason = Some(reason.clone());
                if in_review {
                    out.ticket = Some(TicketState::Failed);
                }
            }
            _ => return Err(Refusal::new(decided(id, e))),
        },
        EntryEvent::Bounce { reason, .. } => match e.state {
            S::Queued | S::Testing => {
                n.state = S::Bounced;
                n.reason = Some(reason.clone());
                if in_review {
                    // Back to its ticket: run again on the new main with this reason in the
                    // prompt, until its attempts are spent.
                    out.ticket = Some(back_to_ticket(cx));
                }
            }
            _ => return Err(Refusal::new(decided(id, e))),
        },
        EntryEvent::Requeue { reason } => match e.state {
            S::Queued | S::Testing | S::Landing => {
                n.state = S::Queued;
                n.reason = Some(reason.clone());
            }
            _ => return Err(Refusal::new(decided(id, e))),
        },
        EntryEvent::BeginLanding {
            landing,
            requires_green,
        } => {
            if e.state != S::Testing {
                return Err(Refusal::new(format!(
                    "{}; it will not land",
                    decided(id, e)
                )));
            }
            if cx.paused {
                return Err(Refusal::new(format!(
                    "the queue is paused; entry {id} holds and is tested again after `shopfloor queue resume`"
                )));
            }
            let Some(v) = &e.verdict else {
                return Err(Refusal::new(format!("entry {id} was never judged")));
            };
            if !v.allowed {
                return Err(Refusal::new(format!("the policy denies entry {id}")));
            }
            if v.needs_human && !approved(e) {
                return Err(Refusal::new(format!(
                    "entry {id} needs a person's approval of {}",
                    short_commit(&e.head)
                )));
            }
            if review_of_head(e).is_some_and(|r| r.verdict == ReviewVerdict::RequestChanges) {
                return Err(Refusal::new(format!(
                    "a review asked for changes to {} of entry {id}",
                    short_commit(&e.head)
                )));
            }
            if *requires_green && !e.tests.iter().any(|r| r.ok && r.commit == *landing) {
                return Err(Refusal::new(format!(
                    "no green test run of {} holds entry {id}",
                    short_commit(landing)
                )));
            }
            n.state = S::Landing;
            n.landed = None;
        }
        EntryEvent::Landed { commit } => match e.state {
            // `queued`/`testing`: its branch was found already in main.
            S::Landing | S::Queued | S::Testing => {
                n.state = S::Merged;
                n.landed = Some(commit.clone());
                n.reason = None;
                if t.is_some_and(|t| !t.state.is_final()) {
                    out.ticket = Some(TicketState::Merged);
                }
            }
            _ => return Err(Refusal::new(decided(id, e))),
        },
        EntryEvent::Reviewed(r) => {
            // Always recorded, like a test run: people read every review.
            n.reviews.push(r.clone());
            let live = matches!(e.state, S::Queued | S::Testing) && r.head == e.head;
            if !live {
                out.effects.push(Effect::Discarded(format!(
                    "{}; the review is recorded and changes nothing",
                    decided(id, e)
                )));
            } else if r.verdict == ReviewVerdict::RequestChanges {
                n.state = S::Bounced;
                n.reason = Some(changes_requested(
                    &format!("review run {} ({})", r.run, r.agent),
                    &r.summary,
                    &r.comments,
                ));
                if in_review {
                    out.ticket = Some(back_to_ticket(cx));
                }
            }
        }
        EntryEvent::Comment(c) => match e.state {
            // Counted here, in the transaction that adds it: two at once cannot pass it.
            S::Queued | S::Testing | S::AwaitingApproval if e.comments.len() >= MAX_COMMENTS => {
                return Err(Refusal::new(format!(
                    "entry {id} holds {MAX_COMMENTS} comments already; send it back (`shopfloor queue send-back {id}`)"
                )));
            }
            S::Queued | S::Testing | S::AwaitingApproval => n.comments.push(c.clone()),
            S::Landing => return Err(landing()),
            _ => {
                return Err(Refusal::new(format!(
                    "{}; a comment only reaches an entry still to land",
                    decided(id, e)
                )));
            }
        },
        EntryEvent::SendBack { by } => match e.state {
            S::Queued | S::Testing | S::AwaitingApproval => {
                if e.comments.is_empty() {
                    return Err(Refusal::new(format!(
                        "entry {id} has no comments to send back: write one first (`shopfloor queue comment {id} --path P --line L TEXT`, or `c` on a line of its diff)"
                    )));
                }
                n.state = S::Bounced;
                let summary = format!(
                    "{} comment{} on the change",
                    e.comments.len(),
                    if e.comments.len() == 1 { "" } else { "s" }
                );
                n.reason = Some(changes_requested(by, &summary, &e.comments));
                if in_review {
                    out.ticket = Some(back_to_ticket(cx));
                }
            }
            S::Landing => return Err(landing()),
            _ => {
                return Err(Refusal::new(format!(
                    "{}; only an entry still to land is sent back",
                    decided(id, e)
                )));
            }
        },
    }
    Ok(out)
}

#[cfg(test)]
mod tests;

//! Unit tests of the ticket and merge-queue state machine.

use super::*;
use jiff::Timestamp;

fn e(state: QueueState) -> QueueEntry {
    QueueEntry {
        id: 4,
        ticket: Some(1),
        run: Some(1),
        branch: "b".into(),
        head: "h1".into(),
        priority: 0,
        state,
        enqueued: Timestamp::UNIX_EPOCH,
        verdict: Some(Verdict {
            allowed: true,
            needs_human: false,
            reasons: vec![],
            denied: vec![],
            gated: vec![],
            changed_lines: 1,
            files: 1,
        }),
        reason: None,
        candidate: Some("c1".into()),
        base: Some("m0".into()),
        tests: vec![],
        approval: None,
        landed: None,
        updated: None,
        reviews: Vec::new(),
        comments: Vec::new(),
    }
}

fn t(state: TicketState) -> Ticket {
    Ticket {
        id: 1,
        title: "t".into(),
        body: String::new(),
        priority: 0,
        agent: None,
        paths: vec![],
        labels: vec![],
        state,
        created: Timestamp::UNIX_EPOCH,
        updated: Timestamp::UNIX_EPOCH,
        runs: vec![],
    }
}

fn green(commit: &str) -> TestRecord {
    TestRecord {
        commit: commit.into(),
        ok: true,
        exit_code: Some(0),
        seconds: 1.0,
        log: String::new(),
        batch: vec![4],
        retry: 0,
    }
}

#[test]
fn a_rejection_mid_test_holds_and_the_result_is_recorded_and_discarded() {
    let cx = Context::default();
    let ticket = t(TicketState::Review);
    let testing = e(QueueState::Testing);
    let rejected = entry(
        &testing,
        Some(&ticket),
        &cx,
        &EntryEvent::Reject {
            by: "ana".into(),
            reason: "no".into(),
        },
    )
    .unwrap();
    assert_eq!(rejected.entry.state, QueueState::Rejected);
    assert_eq!(rejected.ticket, Some(TicketState::Failed));
    assert!(
        rejected
            .entry
            .reason
            .as_deref()
            .unwrap()
            .contains("being tested")
    );
    let result = entry(
        &rejected.entry,
        Some(&ticket),
        &cx,
        &EntryEvent::TestResult(green("c1")),
    )
    .unwrap();
    assert!(result.discarded());
    assert_eq!(result.entry.state, QueueState::Rejected);
    assert_eq!(result.entry.tests.len(), 1, "recorded all the same");
    let land = entry(
        &result.entry,
        Some(&ticket),
        &cx,
        &EntryEvent::BeginLanding {
            landing: "c1".into(),
            requires_green: true,
        },
    )
    .unwrap_err();
    assert!(land.why.contains("rejected"), "{land}");
}

#[test]
fn a_landing_needs_green_tests_an_approval_of_its_head_and_an_unpaused_queue() {
    let ticket = t(TicketState::Review);
    let mut x = e(QueueState::Testing);
    let begin = EntryEvent::BeginLanding {
        landing: "c1".into(),
        requires_green: true,
    };
    let cx = Context::default();
    assert!(entry(&x, Some(&ticket), &cx, &begin).is_err(), "not tested");
    x.tests.push(green("c1"));
    let paused = Context {
        paused: true,
        ..Context::default()
    };
    let r = entry(&x, Some(&ticket), &paused, &begin).unwrap_err();
    assert!(r.why.contains("paused"), "{r}");
    x.verdict.as_mut().unwrap().needs_human = true;
    x.approval = Some(Approval {
        entry: 4,
        commit: "h0".into(),
        by: "ana".into(),
        note: None,
        ts: Timestamp::UNIX_EPOCH,
    });
    assert!(
        entry(&x, Some(&ticket), &cx, &begin).is_err(),
        "approved another head"
    );
    x.approval.as_mut().unwrap().commit = "h1".into();
    let o = entry(&x, Some(&ticket), &cx, &begin).unwrap();
    assert_eq!(o.entry.state, QueueState::Landing);
    let r = entry(
        &o.entry,
        Some(&ticket),
        &cx,
        &EntryEvent::Reject {
            by: "ana".into(),
            reason: "late".into(),
        },
    )
    .unwrap_err();
    assert!(r.why.contains("too late"), "{r}");
    let done = entry(
        &o.entry,
        Some(&ticket),
        &cx,
        &EntryEvent::Landed {
            commit: "c1".into(),
        },
    )
    .unwrap();
    assert_eq!(done.entry.state, QueueState::Merged);
    assert_eq!(done.ticket, Some(TicketState::Merged));
}

#[test]
fn cancelling_a_ticket_withdraws_its_entries_and_a_bounce_follows_the_retry_cap() {
    let ticket = t(TicketState::Review);
    let o = super::ticket(&ticket, &[e(QueueState::Queued)], &TicketEvent::Cancel).unwrap();
    assert_eq!(o.ticket.state, TicketState::Cancelled);
    assert_eq!(o.entries[0].state, QueueState::Rejected);
    assert_eq!(o.effects, vec![Effect::StopRuns(1)]);
    let blocked =
        super::ticket(&ticket, &[e(QueueState::Landing)], &TicketEvent::Cancel).unwrap_err();
    assert!(blocked.why.contains("too late"), "{blocked}");
    for (counted, want) in [(1, TicketState::Queued), (2, TicketState::Failed)] {
        let cx = Context {
            attempts: Attempts {
                counted,
                interrupted: 0,
            },
            max_attempts: 2,
            paused: false,
        };
        let o = entry(
            &e(QueueState::Testing),
            Some(&ticket),
            &cx,
            &EntryEvent::Bounce {
                reason: "red".into(),
                paths: vec![],
            },
        )
        .unwrap();
        assert_eq!(o.ticket, Some(want));
    }
    let ran = super::ticket(
        &t(TicketState::Cancelled),
        &[],
        &TicketEvent::RunEnded {
            next: AfterRun::Review,
        },
    )
    .unwrap();
    assert_eq!(ran.ticket.state, TicketState::Cancelled, "cancel wins");
}

fn review(verdict: ReviewVerdict, head: &str) -> Review {
    Review {
        run: 9,
        agent: "codex".into(),
        head: head.into(),
        verdict,
        summary: "the sign is wrong".into(),
        comments: vec![LineComment {
            path: "a.py".into(),
            line: 3,
            text: "add, do not subtract".into(),
            by: "review run 9 (codex)".into(),
            ts: Timestamp::UNIX_EPOCH,
        }],
        ts: Timestamp::UNIX_EPOCH,
    }
}

#[test]
fn a_request_for_changes_bounces_with_its_comments_and_never_lands() {
    let cx = Context {
        max_attempts: 3,
        ..Context::default()
    };
    let ticket = t(TicketState::Review);
    let o = entry(
        &e(QueueState::Testing),
        Some(&ticket),
        &cx,
        &EntryEvent::Reviewed(review(ReviewVerdict::RequestChanges, "h1")),
    )
    .unwrap();
    assert_eq!(o.entry.state, QueueState::Bounced);
    assert_eq!(o.ticket, Some(TicketState::Queued));
    let why = o.entry.reason.as_deref().unwrap();
    assert!(why.contains("review run 9 (codex) asked for changes: the sign is wrong"));
    assert!(why.contains("a.py:3: add, do not subtract"), "{why}");

    // Should it still be testing (a racing turn), it may not begin landing.
    let mut testing = e(QueueState::Testing);
    testing
        .reviews
        .push(review(ReviewVerdict::RequestChanges, "h1"));
    testing.tests.push(green("c1"));
    let land = entry(
        &testing,
        Some(&ticket),
        &cx,
        &EntryEvent::BeginLanding {
            landing: "c1".into(),
            requires_green: true,
        },
    );
    assert!(land.unwrap_err().why.contains("asked for changes"));
    // A review of an older head does not hold the new one.
    testing.head = "h2".into();
    assert!(
        entry(
            &testing,
            Some(&ticket),
            &cx,
            &EntryEvent::BeginLanding {
                landing: "c1".into(),
                requires_green: true,
            },
        )
        .is_ok()
    );
}

#[test]
fn a_review_arriving_after_a_person_decided_is_recorded_and_changes_nothing() {
    let cx = Context::default();
    for verdict in [ReviewVerdict::Approve, ReviewVerdict::RequestChanges] {
        let o = entry(
            &e(QueueState::Rejected),
            Some(&t(TicketState::Failed)),
            &cx,
            &EntryEvent::Reviewed(review(verdict, "h1")),
        )
        .unwrap();
        assert_eq!(o.entry.state, QueueState::Rejected);
        assert_eq!(o.entry.reviews.len(), 1);
        assert!(o.discarded());
        assert_eq!(o.ticket, None);
    }
}

#[test]
fn comments_go_back_with_a_send_back_and_only_to_an_entry_still_to_land() {
    let cx = Context {
        max_attempts: 3,
        ..Context::default()
    };
    let ticket = t(TicketState::Review);
    let waiting = e(QueueState::AwaitingApproval);
    let refused = entry(
        &waiting,
        Some(&ticket),
        &cx,
        &EntryEvent::SendBack { by: "ana".into() },
    );
    assert!(refused.unwrap_err().why.contains("no comments"));
    let c = LineComment {
        path: "a.py".into(),
        line: 7,
        text: "validate qty".into(),
        by: "ana".into(),
        ts: Timestamp::UNIX_EPOCH,
    };
    let commented = entry(
        &waiting,
        Some(&ticket),
        &cx,
        &EntryEvent::Comment(c.clone()),
    )
    .unwrap()
    .entry;
    let back = entry(
        &commented,
        Some(&ticket),
        &cx,
        &EntryEvent::SendBack { by: "ana".into() },
    )
    .unwrap();
    assert_eq!(back.entry.state, QueueState::Bounced);
    assert_eq!(back.ticket, Some(TicketState::Queued));
    assert!(
        back.entry
            .reason
            .as_deref()
            .unwrap()
            .contains("a.py:7: validate qty (ana)")
    );
    for s in [QueueState::Merged, QueueState::Bounced, QueueState::Landing] {
        assert!(entry(&e(s), Some(&ticket), &cx, &EntryEvent::Comment(c.clone())).is_err());
        assert!(
            entry(
                &e(s),
                Some(&ticket),
                &cx,
                &EntryEvent::SendBack { by: "ana".into() }
            )
            .is_err()
        );
    }
}

//! The merge queue's invariants over random schedules (issue 13): the real driver and
//! state machine against an in-memory world (see `queue_model`), 10,000 schedules of agent
//! results, turns, approvals, rejections, cancels, new commits, pauses, mid-test decisions,
//! crashes and recoveries, in serial, batch and speculative modes. After every step: main
//! only moves to a commit that passed the tests and the gate; nothing rejected, cancelled or
//! denied lands; an approval lands only the commit it was given for; nothing lands twice;
//! no entry is lost; and at the end nothing is left in flight. `QUEUE_SCHEDULES` sets the
//! number (the bench `queue_schedules` runs more).

use crate::queue_model;

use proptest::test_runner::{Config, TestCaseError, TestRunner};

#[test]
fn every_schedule_keeps_the_queue_invariants() {
    let cases = std::env::var("QUEUE_SCHEDULES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let started = std::time::Instant::now();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&queue_model::schedule(), |(cfg, acts)| {
            queue_model::run(&cfg, &acts).map_err(TestCaseError::fail)
        })
        .unwrap();
    eprintln!(
        "{cases} schedules checked in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

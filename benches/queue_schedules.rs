//! The merge queue's property tests at scale, run with `cargo bench --bench
//! queue_schedules`: `QUEUE_SCHEDULES` random schedules (default 200,000) of the real driver
//! and state machine against the in-memory world of `tests/queue_model`, every invariant
//! checked after every step; prints schedules, steps and the rate beside `cargo test`'s
//! 10,000.

#[path = "../tests/queue_model/mod.rs"]
mod queue_model;

use std::time::Instant;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, TestRunner};

fn main() {
    let cases: u32 = std::env::var("QUEUE_SCHEDULES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = queue_model::schedule();
    let started = Instant::now();
    let mut steps = 0usize;
    for i in 0..cases {
        let (cfg, acts) = strategy.new_tree(&mut runner).unwrap().current();
        steps += acts.len();
        if let Err(e) = queue_model::run(&cfg, &acts) {
            panic!("schedule {i} broke an invariant: {e}\n{cfg:?}\n{acts:?}");
        }
    }
    let s = started.elapsed().as_secs_f64();
    println!(
        "{cases} schedules ({steps} steps), every invariant after every step: {s:.1} s, {:.0} schedules/s",
        f64::from(cases) / s
    );
}

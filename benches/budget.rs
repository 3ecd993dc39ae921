//! The day's budget check on a workspace with a long history, run with
//! `cargo bench --bench budget`: the scheduler asks what today has cost on every pass (about
//! once a second while tickets wait). 100,000 runs over 100 days (BUDGET_RUNS to change),
//! a few of them today; what reading every run costs (the check before) beside reading
//! back only to today (`Store::runs_started_since`), on the same store in the same run, and
//! both must find the same spend. Then the lookup of a Claude Code session's run, which
//! every hook event makes: reading every run, and reading from the newest.

use std::time::Instant;

use jiff::{SignedDuration, Timestamp};
use shopfloor::model::{Run, RunState};
use shopfloor::spend;
use shopfloor::store::Store;

fn main() {
    let n: usize = std::env::var("BUDGET_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open(&dir.path().join("store.redb")).unwrap());
    let now = Timestamp::now();
    let first = now - SignedDuration::from_hours(24 * 100);
    let step = SignedDuration::from_secs(100 * 86_400 / n as i64);
    let t = Instant::now();
    // Eight writers at once, so the store's group commit batches them. Each stamps its next
    // run as it creates it, from one clock, as the factory's claims do: ids follow the
    // stamps within the few runs in flight.
    let clock = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            let (store, clock) = (store.clone(), &clock);
            s.spawn(move || {
                loop {
                    let i = clock.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= n {
                        break;
                    }
                    let mut r = Run::new("claude", RunState::Succeeded, first + step * i as i32);
                    r.sandbox = Some("worktree".into());
                    r.usage.cost_usd = Some(0.01);
                    store.create_run(r).unwrap();
                }
            });
        }
    });
    println!(
        "budget benchmark: {n} runs over 100 days, stored in {:.1?}",
        t.elapsed()
    );

    let time = |f: &dyn Fn() -> Vec<Run>| {
        let mut best = f64::MAX;
        let mut runs = vec![];
        for _ in 0..5 {
            let t = Instant::now();
            runs = f();
            best = best.min(t.elapsed().as_secs_f64() * 1e3);
        }
        (best, spend::day_cost(&runs, &spend::day_of(now)))
    };
    let (all_ms, all_spent) = time(&|| store.runs().unwrap());
    let (today_ms, today_spent) =
        time(&|| store.runs_started_since(spend::day_start(now)).unwrap());
    assert!(
        (all_spent - today_spent).abs() < 1e-9,
        "the same spend: {all_spent} against {today_spent}"
    );
    println!(
        "  today's spend ${today_spent:.2}: every run read {all_ms:.1} ms, back to today {today_ms:.2} ms ({:.0}x less)",
        all_ms / today_ms
    );

    // A Claude Code session's run, looked up on every hook event: a session that began
    // 50 runs ago.
    let mut session = Run::new("claude-code", RunState::Imported, now);
    session.source = "claude-code session s-1: /home/me/s-1.jsonl".into();
    let id = store.create_run(session).unwrap().id;
    for _ in 0..50 {
        store
            .create_run(Run::new("claude", RunState::Succeeded, now))
            .unwrap();
    }
    let is_it = |r: &Run| r.source.starts_with("claude-code session s-1: ");
    let time = |f: &dyn Fn() -> Option<Run>| {
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            assert_eq!(f().map(|r| r.id), Some(id));
            best = best.min(t.elapsed().as_secs_f64() * 1e3);
        }
        best
    };
    let all_ms = time(&|| store.runs().unwrap().into_iter().find(|r| is_it(r)));
    let newest_ms = time(&|| store.newest_run_where(is_it).unwrap());
    println!(
        "  a session's run on a hook event: every run read {all_ms:.1} ms, newest first {newest_ms:.2} ms ({:.0}x less)",
        all_ms / newest_ms
    );
}

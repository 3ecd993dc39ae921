//! The merge queue's decisions as plain functions over a snapshot: which entries a turn
//! takes, what a merge or a verdict means for an entry, which candidates to test next,
//! and, once the results are in, what lands and what bounces. No git, no store, no
//! processes: the driver asks and carries out the answer.

use crate::model::{QueueEntry, QueueState, Verdict};

use super::{MergeConfig, Mode};

/// The entries still to land, in landing order: priority (higher first), then arrival.
/// `testing` ones are included: turns never overlap, so one still testing when a turn
/// starts was left by a factory that died mid-turn, and is taken again.
pub fn pending(entries: Vec<QueueEntry>) -> Vec<QueueEntry> {
    super::ordered(entries)
        .into_iter()
        .filter(|e| matches!(e.state, QueueState::Queued | QueueState::Testing))
        .collect()
}

/// How many entries one turn may chain onto main: one in serial, a batch, or the
/// speculation depth. A queue that cannot test waits for a person one entry at a time.
pub fn chain_limit(cfg: &MergeConfig, untestable: bool) -> usize {
    if untestable {
        return 1;
    }
    match cfg.mode {
        Mode::Serial => 1,
        Mode::Batch => cfg.batch_size.max(1),
        Mode::Speculative => cfg.depth.max(1),
    }
}

/// What the policy's verdict means for an entry about to join a turn's chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    /// A denied path: it never lands.
    Deny(String),
    /// Tests are required and cannot run: a person decides.
    WaitUntested(String),
    /// Approved to land untested (tests required but no command).
    LandUntested,
    /// Test it.
    Test,
    /// It needs a person, and others are already chained: it is tested alone later, so
    /// a person waits on it and not the whole batch.
    Later,
}

/// Judge an entry's verdict. `approved`: a person approved its current head;
/// `untestable`: tests are required and there is no command; `chained`: entries are
/// already chained ahead of it this turn.
pub fn gate(verdict: &Verdict, approved: bool, untestable: bool, chained: bool) -> Gate {
    if !verdict.allowed {
        return Gate::Deny(format!(
            "the policy rejects it: {}",
            verdict.reasons.join("; ")
        ));
    }
    if untestable {
        return if approved {
            Gate::LandUntested
        } else {
            Gate::WaitUntested(
                "the policy requires the `test` check, but no [test] command is configured: configure one, or approve to land it untested".into(),
            )
        };
    }
    if verdict.needs_human && !approved && chained {
        return Gate::Later;
    }
    Gate::Test
}

/// What to test next for a chain of candidates (candidate k holds main plus entries
/// 0..=k), given the results so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Test these candidates (at once, where there are several).
    Test(Vec<usize>),
    /// Done: candidates 0..=green passed (None: none did); `culprit` breaks the tests.
    Done {
        green: Option<usize>,
        culprit: Option<usize>,
    },
}

/// Serial and batch test the whole chain first and bisect on red (a batch of one is
/// serial); speculative tests every candidate at once and the first red decides. Test
/// results are taken as monotone: a candidate holding a breaking entry is red.
pub fn next_tests(mode: Mode, results: &[Option<bool>]) -> Next {
    let n = results.len();
    if n == 0 {
        return Next::Done {
            green: None,
            culprit: None,
        };
    }
    let last = n - 1;
    let first_red = results.iter().position(|r| *r == Some(false));
    match mode {
        Mode::Speculative => {
            let untested: Vec<usize> = (0..first_red.unwrap_or(n))
                .filter(|&k| results[k].is_none())
                .collect();
            if !untested.is_empty() {
                return Next::Test(untested);
            }
            match first_red {
                None => Next::Done {
                    green: Some(last),
                    culprit: None,
                },
                Some(r) => Next::Done {
                    green: r.checked_sub(1),
                    culprit: Some(r),
                },
            }
        }
        Mode::Serial | Mode::Batch => match (results[last], first_red) {
            (None, _) => Next::Test(vec![last]),
            (Some(true), _) => Next::Done {
                green: Some(last),
                culprit: None,
            },
            (Some(false), hi) => {
                // Invariant: prefix lo-1 is green (or empty), hi is red.
                let hi = hi.unwrap_or(last);
                let lo = (0..hi)
                    .rev()
                    .find(|&k| results[k] == Some(true))
                    .map_or(0, |g| g + 1);
                if lo == hi {
                    Next::Done {
                        green: lo.checked_sub(1),
                        culprit: Some(hi),
                    }
                } else {
                    Next::Test(vec![(lo + hi) / 2])
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run `next_tests` to the end against a chain whose entry `bad` (if any) breaks it.
    fn drive(mode: Mode, n: usize, bad: Option<usize>) -> (Next, usize, usize) {
        let mut results = vec![None; n];
        let (mut runs, mut rounds) = (0, 0);
        loop {
            match next_tests(mode, &results) {
                Next::Test(ks) => {
                    rounds += 1;
                    for k in ks {
                        runs += 1;
                        results[k] = Some(bad.is_none_or(|b| k < b));
                    }
                }
                done => return (done, runs, rounds),
            }
        }
    }

    #[test]
    fn every_mode_finds_the_same_green_prefix_and_culprit() {
        for n in 1..=20 {
            for bad in std::iter::once(None).chain((0..n).map(Some)) {
                let want = Next::Done {
                    green: match bad {
                        None => Some(n - 1),
                        Some(b) => b.checked_sub(1),
                    },
                    culprit: bad,
                };
                for mode in [Mode::Batch, Mode::Speculative] {
                    let (got, runs, rounds) = drive(mode, n, bad);
                    assert_eq!(got, want, "{mode:?} n={n} bad={bad:?}");
                    if mode == Mode::Speculative {
                        assert_eq!(rounds, 1, "all at once");
                    } else {
                        assert!(runs <= 1 + (usize::BITS - n.leading_zeros()) as usize);
                    }
                }
            }
        }
        assert_eq!(
            drive(Mode::Serial, 1, Some(0)).0,
            Next::Done {
                green: None,
                culprit: Some(0)
            }
        );
    }
}

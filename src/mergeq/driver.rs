//! The queue driver: one turn of the merge queue, carried out through three small traits
//! (git, the tests, the store) so that the same code runs on a real repository and, in
//! the property tests, on an in-memory model by the thousand. Decisions come from
//! [`super::decide`]; every state change is a transition of
//! [`crate::model::transitions`], which a person's decision can refuse in between.

use crate::model::transitions::{self, EntryEvent, EntryOutcome, Refusal};
use crate::model::{
    QueueEntry, QueueEntryId, QueueState, Review, ReviewVerdict, TestRecord, Verdict,
};

use super::decide::{self, Gate, Next};
use super::{MergeConfig, Mode, QueueError, Turn};
use crate::model::short_commit;

type Result<T> = std::result::Result<T, QueueError>;

/// What merging a branch head onto a base gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Merge {
    /// The commit that would become main.
    Clean(String),
    /// The head is already in the base.
    AlreadyIn,
    /// These paths conflict.
    Conflict(Vec<String>),
}

/// The repository: main, branches, merges, the gate and the compare-and-swap of main.
pub trait QueueGit {
    fn main(&self) -> Result<String>;
    /// A branch's head now; None when the branch is gone.
    fn branch_head(&self, branch: &str) -> Result<Option<String>>;
    fn merge(&self, base: &str, head: &str, message: &str) -> Result<Merge>;
    /// Whether `commit` is `main` or one of its ancestors.
    fn contains(&self, main: &str, commit: &str) -> Result<bool>;
    /// Move main from `old` to `new` if it is still at `old`.
    fn compare_and_swap(&self, old: &str, new: &str, message: &str) -> Result<bool>;
    /// The policy's verdict on the change from `base` to `candidate`.
    fn judge(&self, base: &str, candidate: &str) -> Result<Verdict>;
    /// Main moved to `main`: tell the world (a configured remote, `shopfloor/main`).
    fn published(&self, main: &str) -> Result<()>;
}

/// One candidate to test and the entries it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestJob {
    pub candidate: String,
    pub entries: Vec<QueueEntryId>,
}

/// The tests, in the workspace's sandbox.
pub trait Tester {
    /// Test each job (at once where there are several); per job, every try in order
    /// (flaky retries included), the last one deciding.
    fn test(&self, jobs: &[TestJob]) -> Result<Vec<Vec<TestRecord>>>;
    /// Whether a test command is configured.
    fn has_command(&self) -> bool;
}

/// One entry's change for an agent reviewer: the entry, and its own change (from the main
/// plus entries ahead of it that it was merged onto, to its candidate).
#[derive(Clone, Debug, PartialEq)]
pub struct ReviewJob {
    pub entry: QueueEntry,
    pub base: String,
    pub candidate: String,
}

/// What came of asking for a review.
#[derive(Clone, Debug, PartialEq)]
pub enum ReviewAnswer {
    /// `[review]` does not ask for one for this change (no reviewer, or its paths).
    NotWanted,
    Given(Review),
    /// The review run ended without a verdict: why.
    NoVerdict(String),
}

/// Agent review (`[review]`), after the tests pass and before a person's gate.
pub trait Reviewer {
    /// Review each job (at once where there are several), one answer per job in order.
    fn review(&self, jobs: &[ReviewJob]) -> Result<Vec<ReviewAnswer>>;
    /// `required_checks` names `review`: no verdict means a person decides.
    fn required(&self) -> bool;
}

/// No `[review]`: nothing is reviewed by an agent.
pub struct NoReviewer;

impl Reviewer for NoReviewer {
    fn review(&self, jobs: &[ReviewJob]) -> Result<Vec<ReviewAnswer>> {
        Ok(vec![ReviewAnswer::NotWanted; jobs.len()])
    }
    fn required(&self) -> bool {
        false
    }
}

/// The store: entries, and transitions applied one transaction at a time.
pub trait QueueStore {
    fn entries(&self) -> Result<Vec<QueueEntry>>;
    /// Apply `ev` to every entry of `ids`, all or none.
    fn apply(
        &self,
        ids: &[QueueEntryId],
        ev: EntryEvent,
    ) -> Result<std::result::Result<Vec<EntryOutcome>, Refusal>>;
}

pub struct Driver<'a> {
    pub git: &'a dyn QueueGit,
    pub tester: &'a dyn Tester,
    pub store: &'a dyn QueueStore,
    pub reviewer: &'a dyn Reviewer,
    pub cfg: &'a MergeConfig,
    /// The policy requires the `test` check.
    pub requires_tests: bool,
}

/// What a turn's tests (and reviews) decided for its chain.
struct Tested<'l> {
    results: Vec<Option<bool>>,
    /// The longest prefix that may land.
    green: Option<usize>,
    /// The entry that breaks the tests.
    culprit: Option<usize>,
    logs: &'l [String],
    requires_green: bool,
    /// Why the entries behind the prefix go back in line, when it is not the default.
    held: Option<&'static str>,
}

/// One entry chained onto main this turn.
struct Link {
    id: QueueEntryId,
    candidate: String,
    base: String,
    verdict: Verdict,
    approved: bool,
}

impl Driver<'_> {
    fn untestable(&self) -> bool {
        self.requires_tests && !self.tester.has_command()
    }

    /// Apply `ev` to `id`; a refusal (a person decided first) is an answer, not an error.
    fn apply(&self, id: QueueEntryId, ev: EntryEvent) -> Result<Option<EntryOutcome>> {
        Ok(self.store.apply(&[id], ev)?.ok().and_then(|mut v| v.pop()))
    }

    /// After a crash: an entry caught mid-test is queued again; one caught landing is
    /// landed if main holds its candidate (the crash fell between moving main and
    /// recording it), else queued again.
    pub fn recover(&self) -> Result<()> {
        self.settle(true)
    }

    /// Settle what a dead turn left: `landing` entries always (main either holds them or
    /// not), `testing` ones only on `recover` (a turn takes those again anyway).
    fn settle(&self, testing_too: bool) -> Result<()> {
        let main = self.git.main()?;
        for e in self.store.entries()? {
            let how = match e.state {
                QueueState::Landing => "landing",
                QueueState::Testing if testing_too => "tested",
                _ => continue,
            };
            let landed = match &e.candidate {
                Some(c) => self.git.contains(&main, c)?,
                None => false,
            };
            let ev = if landed {
                EntryEvent::Landed {
                    commit: main.clone(),
                }
            } else {
                EntryEvent::Requeue {
                    reason: format!("the factory stopped while it was {how}; queued again"),
                }
            };
            self.apply(e.id, ev)?;
        }
        Ok(())
    }

    /// One turn: the head entry (serial), a batch, or the next `depth` entries
    /// (speculative). Idle when nothing is queued.
    pub fn turn(&self) -> Result<Turn> {
        let mut turn = Turn::default();
        self.settle(false)?;
        let pending = decide::pending(self.store.entries()?);
        if pending.is_empty() {
            return Ok(turn);
        }
        let main = self.git.main()?;
        let untestable = self.untestable();
        let limit = decide::chain_limit(self.cfg, untestable);
        let mut chain: Vec<Link> = Vec::new();
        let mut tip = main.clone();
        for e in pending {
            if chain.len() >= limit {
                break;
            }
            let e = self.refresh_head(e)?;
            self.chain_one(&e, &main, &mut tip, &mut chain, untestable, &mut turn)?;
            let stop = self.cfg.mode == Mode::Serial
                || untestable
                || chain
                    .last()
                    .is_some_and(|l| l.verdict.needs_human && !l.approved);
            if stop {
                break;
            }
        }
        if chain.is_empty() {
            return Ok(turn);
        }
        if untestable {
            // Only an approved entry gets here: it lands untested, as its approver chose.
            let g = Some(chain.len() - 1);
            self.land_and_bounce(
                &main,
                &chain,
                Tested {
                    results: vec![None; chain.len()],
                    green: g,
                    culprit: None,
                    logs: &[],
                    requires_green: false,
                    held: None,
                },
                &mut turn,
            )?;
            return Ok(turn);
        }
        let mut results: Vec<Option<bool>> = vec![None; chain.len()];
        let mut logs: Vec<String> = vec![String::new(); chain.len()];
        let (green, culprit) = loop {
            match decide::next_tests(self.cfg.mode, &results) {
                Next::Test(ks) => {
                    let jobs: Vec<TestJob> = ks
                        .iter()
                        .map(|&k| TestJob {
                            candidate: chain[k].candidate.clone(),
                            entries: chain[..=k].iter().map(|l| l.id).collect(),
                        })
                        .collect();
                    let tries = self.tester.test(&jobs)?;
                    for ((k, job), tries) in ks.iter().zip(&jobs).zip(tries) {
                        for r in &tries {
                            turn.test_runs += 1;
                            // Recorded on every entry it held, rejected or not.
                            self.store
                                .apply(&job.entries, EntryEvent::TestResult(r.clone()))?
                                .ok();
                        }
                        results[*k] = Some(tries.last().is_some_and(|r| r.ok));
                        logs[*k] = tries.last().map(|r| r.log.clone()).unwrap_or_default();
                    }
                }
                Next::Done { green, culprit } => break (green, culprit),
            }
        };
        // The green prefix goes to agent review; the first entry sent back (or left
        // without a verdict a required review needs) ends it, and a test culprit behind
        // it is tested again without it.
        let (green, culprit, held) = match self.review(&chain, green, &mut turn)? {
            Some(stop) => (
                stop.checked_sub(1),
                None,
                Some("an entry ahead of it was stopped by its review; rebuilt on the new main"),
            ),
            None => (green, culprit, None),
        };
        let requires_green = self.requires_tests;
        self.land_and_bounce(
            &main,
            &chain,
            Tested {
                results,
                green,
                culprit,
                logs: &logs,
                requires_green,
                held,
            },
            &mut turn,
        )?;
        Ok(turn)
    }

    /// Ask for agent reviews of chain entries `0..=green` whose current head has none;
    /// record each answer. Returns the first entry that may not land now.
    fn review(
        &self,
        chain: &[Link],
        green: Option<usize>,
        turn: &mut Turn,
    ) -> Result<Option<usize>> {
        let Some(g) = green else {
            return Ok(None);
        };
        let now = self.store.entries()?;
        let mut jobs = Vec::new();
        let mut at = Vec::new();
        for (k, l) in chain.iter().enumerate().take(g + 1) {
            let Some(e) = now.iter().find(|e| e.id == l.id) else {
                continue;
            };
            // An approval of this head stands (main moved since, say): not asked again.
            let reviewed =
                transitions::review_of_head(e).is_some_and(|r| r.verdict == ReviewVerdict::Approve);
            if e.state == QueueState::Testing && !reviewed {
                jobs.push(ReviewJob {
                    entry: e.clone(),
                    base: l.base.clone(),
                    candidate: l.candidate.clone(),
                });
                at.push(k);
            }
        }
        if jobs.is_empty() {
            return Ok(None);
        }
        let answers = self.reviewer.review(&jobs)?;
        let mut stop: Option<usize> = None;
        for ((k, job), answer) in at.into_iter().zip(&jobs).zip(answers) {
            let id = job.entry.id;
            match answer {
                ReviewAnswer::NotWanted => {}
                ReviewAnswer::Given(r) => {
                    let sent_back = r.verdict == ReviewVerdict::RequestChanges;
                    let o = self.apply(id, EntryEvent::Reviewed(r))?;
                    if sent_back {
                        if o.is_some_and(|o| o.entry.state == QueueState::Bounced) {
                            turn.bounced.push(id);
                        }
                        stop.get_or_insert(k);
                    }
                }
                ReviewAnswer::NoVerdict(why) if self.reviewer.required() => {
                    let reason = format!(
                        "tested green; the required agent review gave no verdict ({why}): a person approves or rejects it"
                    );
                    if self
                        .apply(
                            id,
                            EntryEvent::Wait {
                                verdict: None,
                                reason,
                            },
                        )?
                        .is_some()
                    {
                        turn.waiting.push(id);
                    }
                    stop.get_or_insert(k);
                }
                ReviewAnswer::NoVerdict(why) => {
                    tracing::warn!(
                        entry = id,
                        "the agent review gave no verdict ({why}); it is not required, the entry goes on"
                    );
                }
            }
        }
        Ok(stop)
    }

    /// A new commit on the branch: the entry follows it (and an approval of the old head
    /// is void).
    fn refresh_head(&self, e: QueueEntry) -> Result<QueueEntry> {
        match self.git.branch_head(&e.branch)? {
            Some(h) if h != e.head => Ok(self
                .apply(e.id, EntryEvent::HeadMoved { head: h })?
                .map_or(e, |o| o.entry)),
            _ => Ok(e),
        }
    }

    /// Merge `e` onto `tip`, judge it and, if it is to be tested, chain it.
    fn chain_one(
        &self,
        e: &QueueEntry,
        main: &str,
        tip: &mut String,
        chain: &mut Vec<Link>,
        untestable: bool,
        turn: &mut Turn,
    ) -> Result<()> {
        let message = format!(
            "Merge {}{}",
            e.branch,
            e.ticket
                .map(|t| format!(" (ticket {t})"))
                .unwrap_or_default()
        );
        let candidate = match self.git.merge(tip, &e.head, &message)? {
            Merge::Clean(c) => c,
            Merge::AlreadyIn => {
                // In main already (merged by hand): nothing to land. Only in the chain
                // ahead of it: it waits for those to land.
                if self.git.contains(main, &e.head)?
                    && self
                        .apply(
                            e.id,
                            EntryEvent::Landed {
                                commit: main.to_string(),
                            },
                        )?
                        .is_some()
                {
                    turn.landed.push(e.id);
                }
                return Ok(());
            }
            Merge::Conflict(paths) => {
                let reason = format!(
                    "merge conflict with main {} in {}; rebuild the change on the new main",
                    short_commit(tip),
                    paths.join(", ")
                );
                self.bounce(e.id, reason, paths, turn)?;
                return Ok(());
            }
        };
        let verdict = self.git.judge(tip, &candidate)?;
        let approved = transitions::approved(e);
        match decide::gate(&verdict, approved, untestable, !chain.is_empty()) {
            Gate::Deny(reason) => {
                if self
                    .apply(e.id, EntryEvent::Deny { verdict, reason })?
                    .is_some()
                {
                    turn.rejected.push(e.id);
                }
                return Ok(());
            }
            Gate::WaitUntested(reason) => {
                if self
                    .apply(
                        e.id,
                        EntryEvent::Wait {
                            verdict: Some(verdict),
                            reason,
                        },
                    )?
                    .is_some()
                {
                    turn.waiting.push(e.id);
                }
                return Ok(());
            }
            Gate::Later => return Ok(()),
            Gate::Test | Gate::LandUntested => {}
        }
        let started = self.apply(
            e.id,
            EntryEvent::StartTest {
                base: tip.clone(),
                candidate: candidate.clone(),
                verdict: verdict.clone(),
            },
        )?;
        if started.is_none() {
            // A person decided in between: it is not tested.
            return Ok(());
        }
        chain.push(Link {
            id: e.id,
            candidate: candidate.clone(),
            base: tip.clone(),
            verdict,
            approved,
        });
        *tip = candidate;
        Ok(())
    }

    /// Land the longest green prefix the store still allows, bounce the culprit, and
    /// queue the rest again to be rebuilt on the new main.
    fn land_and_bounce(
        &self,
        main: &str,
        chain: &[Link],
        tested: Tested<'_>,
        turn: &mut Turn,
    ) -> Result<()> {
        let Tested {
            results,
            mut green,
            culprit,
            logs,
            requires_green,
            held,
        } = tested;
        let ids: Vec<QueueEntryId> = chain.iter().map(|l| l.id).collect();
        let mut held = held.unwrap_or(
            "the queue was paused while it was tested; tested again after `shopfloor queue resume`",
        );
        // Every entry of the prefix begins landing in one transaction, or none does: a
        // person who rejected, cancelled or paused in the meantime wins.
        let mut landing = None;
        while let Some(g) = green {
            let begin = EntryEvent::BeginLanding {
                landing: chain[g].candidate.clone(),
                requires_green,
            };
            if self.store.apply(&ids[..=g], begin)?.is_ok() {
                landing = Some(g);
                break;
            }
            // Who refused? An entry decided (or waiting for a person) meanwhile: land
            // only what is green before it. None of them: the queue is paused.
            let now = self.store.entries()?;
            let state = |id: QueueEntryId| now.iter().find(|e| e.id == id);
            let blocked = (0..=g).find(|&k| {
                state(ids[k]).is_none_or(|e| {
                    e.state != QueueState::Testing
                        || (chain[k].verdict.needs_human && !transitions::approved(e))
                })
            });
            let Some(j) = blocked else {
                break;
            };
            held = "an entry ahead of it in the same test run was stopped by a person; rebuilt on the new main";
            if let Some(e) = state(ids[j]).filter(|e| e.state == QueueState::Testing) {
                // Tested green, not yet approved: it waits for a person.
                let reason = format!(
                    "tested green; waiting for a human: {}",
                    chain[j].verdict.reasons.join("; ")
                );
                if self
                    .apply(
                        e.id,
                        EntryEvent::Wait {
                            verdict: None,
                            reason,
                        },
                    )?
                    .is_some()
                {
                    turn.waiting.push(e.id);
                }
            }
            green = (0..j).rev().find(|&k| results[k] == Some(true));
        }
        let mut landed = 0;
        if let Some(g) = landing {
            let commit = &chain[g].candidate;
            let message = format!("merge queue: land entries {:?}", &ids[..=g]);
            if self.git.compare_and_swap(main, commit, &message)? {
                self.store
                    .apply(
                        &ids[..=g],
                        EntryEvent::Landed {
                            commit: commit.clone(),
                        },
                    )?
                    .map_err(|r| QueueError::Invalid(r.to_string()))?;
                turn.landed.extend_from_slice(&ids[..=g]);
                landed = g + 1;
                self.git.published(commit)?;
            } else {
                held = "main moved while it was tested; rebuilt on the new main";
                landed = 0;
            }
        }
        if let Some(c) = culprit {
            let reason = match (self.cfg.mode, chain.len()) {
                (_, 1) | (Mode::Serial, _) => format!(
                    "the tests failed on {} (merged onto main {}):\n{}",
                    short_commit(&chain[c].candidate),
                    short_commit(&chain[c].base),
                    tail(&logs[c], 2000)
                ),
                (Mode::Batch, n) => format!(
                    "it breaks the tests (found by bisecting a batch of {n}):\n{}",
                    tail(&logs[c], 2000)
                ),
                (Mode::Speculative, _) => format!(
                    "it breaks the tests (tested on main plus the {c} entries ahead of it):\n{}",
                    tail(&logs[c], 2000)
                ),
            };
            self.bounce(ids[c], reason, Vec::new(), turn)?;
        }
        for (k, id) in ids.iter().enumerate().skip(landed) {
            if Some(k) == culprit {
                continue;
            }
            let reason = if culprit.is_some_and(|c| k > c) {
                "an entry ahead of it broke the tests; rebuilt on the new main"
            } else {
                held
            };
            // Refused for one a person decided, or that waits for one: as it should be.
            self.apply(
                *id,
                EntryEvent::Requeue {
                    reason: reason.into(),
                },
            )?;
        }
        Ok(())
    }

    fn bounce(
        &self,
        id: QueueEntryId,
        reason: String,
        paths: Vec<String>,
        turn: &mut Turn,
    ) -> Result<()> {
        if self
            .apply(id, EntryEvent::Bounce { reason, paths })?
            .is_some()
        {
            turn.bounced.push(id);
        }
        Ok(())
    }
}

/// The last `max` characters of `s`: the end of a test log is what says why it failed.
fn tail(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    s.chars().skip(n - max).collect()
}

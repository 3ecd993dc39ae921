//! An in-memory world for the merge queue's driver: a repository whose commits are sets
//! of branch versions, a test runner whose verdict is known in advance, and a store that
//! applies the real state machine all or nothing. Random schedules of agent results, queue
//! turns, approvals, rejections, cancels, new commits, pauses, crashes and recoveries run
//! against the real `Driver` and `transitions`, and the queue's invariants are checked after
//! every step. Shared by `tests/queue_properties.rs` and `benches/queue_schedules.rs`.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};

use proptest::prelude::*;
use shopfloor::mergeq::driver::{Driver, Merge, QueueGit, QueueStore, TestJob, Tester};
use shopfloor::mergeq::{MergeConfig, Mode, QueueError};
use shopfloor::model::transitions::{self, Context, EntryEvent, EntryOutcome, Refusal};
use shopfloor::model::{
    Approval, QueueEntry, QueueEntryId, QueueState, TestRecord, Ticket, TicketState, Verdict,
};

/// A branch version: (branch, version). Branch b is entry b's (one entry a branch).
type Head = (usize, u32);

/// What a person or an agent does at one step of a schedule.
#[derive(Clone, Debug)]
pub enum Act {
    /// An agent's run finished: a new branch and its entry.
    Enqueue {
        file: u8,
        bad: bool,
        gated: bool,
        denied: bool,
        flaky: bool,
    },
    Turn,
    /// The next turn crashes after this many calls into git, the tests or the store;
    /// the factory then restarts and recovers.
    CrashingTurn(u8),
    Approve(u8),
    Reject(u8),
    Cancel(u8),
    /// A new commit on an entry's branch (good or bad).
    Commit(u8, bool),
    Pause,
    Resume,
    /// This person's act lands while the next test runs.
    MidTest(Box<Act>),
}

fn person() -> impl Strategy<Value = Act> {
    prop_oneof![
        any::<u8>().prop_map(Act::Approve),
        any::<u8>().prop_map(Act::Reject),
        any::<u8>().prop_map(Act::Cancel),
        (any::<u8>(), any::<bool>()).prop_map(|(i, b)| Act::Commit(i, b)),
        Just(Act::Pause),
        Just(Act::Resume),
    ]
}

pub fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        4 => (0u8..4, prop::bool::weighted(0.25), prop::bool::weighted(0.2), prop::bool::weighted(0.1), prop::bool::weighted(0.15))
            .prop_map(|(file, bad, gated, denied, flaky)| Act::Enqueue { file, bad, gated, denied, flaky }),
        6 => Just(Act::Turn),
        1 => (0u8..12).prop_map(Act::CrashingTurn),
        3 => person(),
        2 => person().prop_map(|a| Act::MidTest(Box::new(a))),
    ]
}

pub fn mode() -> impl Strategy<Value = MergeConfig> {
    prop_oneof![
        Just((Mode::Serial, 1usize)),
        (1usize..5).prop_map(|n| (Mode::Batch, n)),
        (1usize..5).prop_map(|n| (Mode::Speculative, n)),
    ]
    .prop_map(|(mode, n)| MergeConfig {
        mode,
        batch_size: n,
        depth: n,
        flaky_retries: 1,
        ..MergeConfig::default()
    })
}

pub fn schedule() -> impl Strategy<Value = (MergeConfig, Vec<Act>)> {
    (mode(), prop::collection::vec(act(), 1..40))
}

/// A branch as the world knows it.
#[derive(Clone, Debug)]
struct Branch {
    file: u8,
    /// Versions that break the tests.
    bad: BTreeSet<u32>,
    version: u32,
    gated: bool,
    denied: bool,
    flaky: bool,
}

#[derive(Default)]
pub struct World {
    /// Commit id -> the branch versions it holds.
    commits: RefCell<Vec<BTreeSet<Head>>>,
    main: RefCell<usize>,
    branches: RefCell<Vec<Branch>>,
    entries: RefCell<BTreeMap<QueueEntryId, QueueEntry>>,
    tickets: RefCell<BTreeMap<u64, Ticket>>,
    paused: Cell<bool>,
    /// Calls left before the factory dies (None: it does not).
    crash_in: Cell<Option<u32>>,
    /// People's acts that land while the next test runs.
    mid_test: RefCell<Vec<Act>>,
    /// Candidates that have been tested green.
    green: RefCell<BTreeSet<usize>>,
    /// Flaky candidates already failed once.
    flaked: RefCell<BTreeSet<usize>>,
    // ---- what the invariants check against ----
    /// Entries a person rejected or withdrew (by cancelling its ticket): never land.
    stopped: RefCell<BTreeSet<QueueEntryId>>,
    /// Entry -> the heads a person approved.
    approvals: RefCell<HashMap<QueueEntryId, BTreeSet<String>>>,
    /// Every commit main moved to, in order.
    moves: RefCell<Vec<usize>>,
    /// Landed transitions per entry.
    landed: RefCell<HashMap<QueueEntryId, u32>>,
}

fn crash() -> QueueError {
    QueueError::Invalid("the factory was killed".into())
}

fn head_id((b, v): Head) -> String {
    format!("h{b}.{v}")
}

fn parse_head(s: &str) -> Head {
    let (b, v) = s[1..].split_once('.').unwrap();
    (b.parse().unwrap(), v.parse().unwrap())
}

fn commit_id(c: usize) -> String {
    format!("c{c}")
}

fn parse_commit(s: &str) -> usize {
    s[1..].parse().unwrap()
}

impl World {
    pub fn new() -> World {
        let w = World::default();
        w.commits.borrow_mut().push(BTreeSet::new());
        w
    }

    /// One more call into the world: the factory may die here.
    fn tick(&self) -> Result<(), QueueError> {
        match self.crash_in.get() {
            Some(0) => Err(crash()),
            Some(n) => {
                self.crash_in.set(Some(n - 1));
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn content(&self, c: usize) -> BTreeSet<Head> {
        self.commits.borrow()[c].clone()
    }

    fn diff(&self, from: usize, to: usize) -> BTreeSet<Head> {
        let a = self.content(from);
        self.content(to).difference(&a).copied().collect()
    }

    fn entry_of(&self, i: u8) -> Option<QueueEntryId> {
        let n = self.entries.borrow().len() as u64;
        (n > 0).then(|| u64::from(i) % n + 1)
    }

    fn context(&self) -> Context {
        Context {
            attempts: Default::default(),
            max_attempts: 2,
            paused: self.paused.get(),
        }
    }

    /// Apply `ev` to every entry of `ids`, all or none, as the store does.
    fn apply_all(
        &self,
        ids: &[QueueEntryId],
        ev: &EntryEvent,
    ) -> Result<Vec<EntryOutcome>, Refusal> {
        let mut entries = self.entries.borrow_mut();
        let mut tickets = self.tickets.borrow_mut();
        let mut outs = Vec::new();
        for id in ids {
            let e = &entries[id];
            let t = e.ticket.and_then(|t| tickets.get(&t));
            outs.push(transitions::entry(e, t, &self.context(), ev)?);
        }
        for o in &outs {
            if let Some(s) = o.ticket {
                tickets.get_mut(&o.entry.ticket.unwrap()).unwrap().state = s;
            }
            entries.insert(o.entry.id, o.entry.clone());
            if matches!(ev, EntryEvent::Landed { .. }) {
                *self.landed.borrow_mut().entry(o.entry.id).or_default() += 1;
            }
        }
        Ok(outs)
    }

    fn enqueue(&self, file: u8, bad: bool, gated: bool, denied: bool, flaky: bool) {
        let mut branches = self.branches.borrow_mut();
        let b = branches.len();
        branches.push(Branch {
            file,
            bad: if bad { [1].into() } else { BTreeSet::new() },
            version: 1,
            gated,
            denied,
            flaky,
        });
        let id = b as u64 + 1;
        let now = jiff::Timestamp::UNIX_EPOCH;
        self.tickets.borrow_mut().insert(
            id,
            Ticket {
                id,
                title: format!("t{id}"),
                body: String::new(),
                priority: 0,
                agent: None,
                paths: vec![],
                labels: vec![],
                state: TicketState::Review,
                created: now,
                updated: now,
                runs: vec![],
            },
        );
        self.entries.borrow_mut().insert(
            id,
            QueueEntry {
                id,
                ticket: Some(id),
                run: None,
                branch: format!("b{b}"),
                head: head_id((b, 1)),
                priority: (b % 3) as i32,
                state: QueueState::Queued,
                enqueued: now,
                verdict: None,
                reason: None,
                candidate: None,
                base: None,
                tests: vec![],
                approval: None,
                landed: None,
                updated: None,
                reviews: Vec::new(),
                comments: Vec::new(),
            },
        );
    }

    /// A person's (or an agent's) act, through the state machine as the API does it.
    fn person(&self, a: &Act) {
        match a {
            Act::Approve(i) => {
                let Some(id) = self.entry_of(*i) else { return };
                let ev = EntryEvent::Approve(Approval {
                    entry: id,
                    commit: String::new(),
                    by: "ana".into(),
                    note: None,
                    ts: jiff::Timestamp::UNIX_EPOCH,
                });
                if let Ok(o) = self.apply_all(&[id], &ev) {
                    self.approvals
                        .borrow_mut()
                        .entry(id)
                        .or_default()
                        .insert(o[0].entry.head.clone());
                }
            }
            Act::Reject(i) => {
                let Some(id) = self.entry_of(*i) else { return };
                let ev = EntryEvent::Reject {
                    by: "ana".into(),
                    reason: "no".into(),
                };
                if self.apply_all(&[id], &ev).is_ok() {
                    self.stopped.borrow_mut().insert(id);
                }
            }
            Act::Cancel(i) => {
                let Some(id) = self.entry_of(*i) else { return };
                let mut tickets = self.tickets.borrow_mut();
                let mut entries = self.entries.borrow_mut();
                let t = tickets[&id].clone();
                let mine: Vec<QueueEntry> = entries
                    .values()
                    .filter(|e| e.ticket == Some(id))
                    .cloned()
                    .collect();
                if let Ok(o) = transitions::ticket(&t, &mine, &transitions::TicketEvent::Cancel) {
                    for e in &mine {
                        if !e.state.is_finished() {
                            self.stopped.borrow_mut().insert(e.id);
                        }
                    }
                    for e in o.entries {
                        entries.insert(e.id, e);
                    }
                    tickets.insert(id, o.ticket);
                }
            }
            Act::Commit(i, bad) => {
                let Some(id) = self.entry_of(*i) else { return };
                let mut branches = self.branches.borrow_mut();
                let b = &mut branches[id as usize - 1];
                b.version += 1;
                if *bad {
                    b.bad.insert(b.version);
                }
            }
            Act::Pause => self.paused.set(true),
            Act::Resume => self.paused.set(false),
            _ => {}
        }
    }

    fn driver_with<T>(&self, cfg: &MergeConfig, f: impl FnOnce(&Driver<'_>) -> T) -> T {
        let d = Driver {
            git: self,
            tester: self,
            store: self,
            reviewer: &shopfloor::mergeq::driver::NoReviewer,
            cfg,
            requires_tests: true,
        };
        f(&d)
    }

    /// Run one act; then check every invariant.
    pub fn step(&self, cfg: &MergeConfig, a: &Act) -> Result<(), String> {
        match a {
            Act::Enqueue {
                file,
                bad,
                gated,
                denied,
                flaky,
            } => self.enqueue(*file, *bad, *gated, *denied, *flaky),
            Act::Turn | Act::CrashingTurn(_) => {
                // A paused queue takes no turns: the factory's loop skips them.
                if !self.paused.get() {
                    if let Act::CrashingTurn(n) = a {
                        self.crash_in.set(Some(u32::from(*n)));
                    }
                    let r = self.driver_with(cfg, |d| d.turn());
                    self.crash_in.set(None);
                    if let Err(e) = r {
                        if !e.to_string().contains("killed") {
                            return Err(format!("a turn failed: {e}"));
                        }
                        // A restart: whatever was mid-test is gone, then recover.
                        self.mid_test.borrow_mut().clear();
                        self.driver_with(cfg, |d| d.recover())
                            .map_err(|e| format!("recover failed: {e}"))?;
                    }
                }
            }
            Act::MidTest(p) => self.mid_test.borrow_mut().push((**p).clone()),
            p => self.person(p),
        }
        self.check()
    }

    /// Resume, approve nothing, and turn until idle: nothing may be left in flight.
    pub fn drain(&self, cfg: &MergeConfig) -> Result<(), String> {
        self.paused.set(false);
        self.mid_test.borrow_mut().clear();
        for _ in 0..200 {
            let t = self
                .driver_with(cfg, |d| d.turn())
                .map_err(|e| format!("a turn failed: {e}"))?;
            self.check()?;
            if t.is_idle() {
                for e in self.entries.borrow().values() {
                    if matches!(
                        e.state,
                        QueueState::Queued | QueueState::Testing | QueueState::Landing
                    ) {
                        return Err(format!("entry {} left {:?} when idle", e.id, e.state));
                    }
                }
                return Ok(());
            }
        }
        Err("the queue never went idle".into())
    }

    /// The invariants, after every step.
    pub fn check(&self) -> Result<(), String> {
        let entries = self.entries.borrow();
        let branches = self.branches.borrow();
        if entries.len() != branches.len() {
            return Err(format!(
                "entries lost: {} of {}",
                entries.len(),
                branches.len()
            ));
        }
        let moves = self.moves.borrow();
        let green = self.green.borrow();
        let approvals = self.approvals.borrow();
        let mut prev = 0;
        for &m in moves.iter() {
            if !green.contains(&m) {
                return Err(format!("main moved to c{m}, which never passed the tests"));
            }
            let before = self.content(prev);
            if !before.is_subset(&self.content(m)) {
                return Err(format!("main moved from c{prev} to c{m}, dropping work"));
            }
            // The gate, over what this move added: latest version of each branch.
            let mut added: BTreeMap<usize, u32> = BTreeMap::new();
            for (b, v) in self.diff(prev, m) {
                let e = added.entry(b).or_default();
                *e = (*e).max(v);
            }
            for (b, v) in added {
                let br = &branches[b];
                let id = b as u64 + 1;
                if br.denied {
                    return Err(format!("denied entry {id} landed in c{m}"));
                }
                if br.gated
                    && !approvals
                        .get(&id)
                        .is_some_and(|a| a.contains(&head_id((b, v))))
                {
                    return Err(format!(
                        "entry {id} landed {} without an approval of that commit",
                        head_id((b, v))
                    ));
                }
            }
            prev = m;
        }
        let main = self.content(*self.main.borrow());
        for id in self.stopped.borrow().iter() {
            let b = *id as usize - 1;
            if main.iter().any(|(x, _)| *x == b) {
                return Err(format!("entry {id} landed after a person stopped it"));
            }
        }
        for (id, n) in self.landed.borrow().iter() {
            if *n > 1 {
                return Err(format!("entry {id} landed {n} times"));
            }
        }
        let tickets = self.tickets.borrow();
        for e in entries.values() {
            let b = e.id as usize - 1;
            if e.state == QueueState::Merged && !main.iter().any(|(x, _)| *x == b) {
                return Err(format!("entry {} is merged but not in main", e.id));
            }
            let t = &tickets[&e.id];
            if e.state == QueueState::Merged && t.state != TicketState::Merged {
                return Err(format!(
                    "entry {} is merged but its ticket is {}",
                    e.id, t.state
                ));
            }
            if t.state == TicketState::Cancelled && main.iter().any(|(x, _)| *x == b) {
                return Err(format!("ticket {} was cancelled, yet it landed", e.id));
            }
        }
        Ok(())
    }
}

impl QueueGit for World {
    fn main(&self) -> Result<String, QueueError> {
        self.tick()?;
        Ok(commit_id(*self.main.borrow()))
    }

    fn branch_head(&self, branch: &str) -> Result<Option<String>, QueueError> {
        self.tick()?;
        let b: usize = branch[1..].parse().unwrap();
        Ok(Some(head_id((b, self.branches.borrow()[b].version))))
    }

    fn merge(&self, base: &str, head: &str, _message: &str) -> Result<Merge, QueueError> {
        self.tick()?;
        let (b, v) = parse_head(head);
        let content = self.content(parse_commit(base));
        if content.contains(&(b, v)) {
            return Ok(Merge::AlreadyIn);
        }
        let branches = self.branches.borrow();
        let file = branches[b].file;
        if content
            .iter()
            .any(|(x, _)| *x != b && branches[*x].file == file)
        {
            return Ok(Merge::Conflict(vec![format!("f{file}")]));
        }
        let mut new = content;
        new.extend((1..=v).map(|v| (b, v)));
        let mut commits = self.commits.borrow_mut();
        commits.push(new);
        Ok(Merge::Clean(commit_id(commits.len() - 1)))
    }

    fn contains(&self, main: &str, commit: &str) -> Result<bool, QueueError> {
        self.tick()?;
        Ok(self
            .content(parse_commit(commit))
            .is_subset(&self.content(parse_commit(main))))
    }

    fn compare_and_swap(&self, old: &str, new: &str, _message: &str) -> Result<bool, QueueError> {
        // A crash here may fall before or after the ref moves.
        let dies = self.tick().is_err();
        if *self.main.borrow() != parse_commit(old) {
            return if dies { Err(crash()) } else { Ok(false) };
        }
        let c = parse_commit(new);
        *self.main.borrow_mut() = c;
        self.moves.borrow_mut().push(c);
        if dies { Err(crash()) } else { Ok(true) }
    }

    fn judge(&self, base: &str, candidate: &str) -> Result<Verdict, QueueError> {
        self.tick()?;
        let branches = self.branches.borrow();
        let diff = self.diff(parse_commit(base), parse_commit(candidate));
        let allowed = !diff.iter().any(|(b, _)| branches[*b].denied);
        let needs_human = diff.iter().any(|(b, _)| branches[*b].gated);
        Ok(Verdict {
            allowed,
            needs_human,
            reasons: vec![],
            denied: vec![],
            gated: vec![],
            changed_lines: diff.len() as u64,
            files: diff.len() as u64,
        })
    }

    fn published(&self, _main: &str) -> Result<(), QueueError> {
        self.tick()
    }
}

impl Tester for World {
    fn has_command(&self) -> bool {
        true
    }

    fn test(&self, jobs: &[TestJob]) -> Result<Vec<Vec<TestRecord>>, QueueError> {
        self.tick()?;
        // People act while the tests run.
        let acts: Vec<Act> = std::mem::take(&mut *self.mid_test.borrow_mut());
        for a in &acts {
            self.person(a);
        }
        let branches = self.branches.borrow();
        let mut out = Vec::new();
        for j in jobs {
            let c = parse_commit(&j.candidate);
            let content = self.content(c);
            let ok = !content.iter().any(|(b, v)| branches[*b].bad.contains(v));
            let flaky = content.iter().any(|(b, _)| branches[*b].flaky);
            let record = |ok: bool, retry: u32| TestRecord {
                commit: j.candidate.clone(),
                ok,
                exit_code: Some(if ok { 0 } else { 1 }),
                seconds: 0.0,
                log: String::new(),
                batch: j.entries.clone(),
                retry,
            };
            let mut tries = Vec::new();
            if ok && flaky && self.flaked.borrow_mut().insert(c) {
                tries.push(record(false, 0));
                tries.push(record(true, 1));
            } else {
                tries.push(record(ok, 0));
            }
            if ok {
                self.green.borrow_mut().insert(c);
            }
            out.push(tries);
        }
        Ok(out)
    }
}

impl QueueStore for World {
    fn entries(&self) -> Result<Vec<QueueEntry>, QueueError> {
        self.tick()?;
        Ok(self.entries.borrow().values().cloned().collect())
    }

    fn apply(
        &self,
        ids: &[QueueEntryId],
        ev: EntryEvent,
    ) -> Result<Result<Vec<EntryOutcome>, Refusal>, QueueError> {
        self.tick()?;
        Ok(self.apply_all(ids, &ev))
    }
}

/// Run one schedule; every step's invariants, then a drain.
pub fn run(cfg: &MergeConfig, acts: &[Act]) -> Result<(), String> {
    let w = World::new();
    for (i, a) in acts.iter().enumerate() {
        w.step(cfg, a)
            .map_err(|e| format!("after step {i} ({a:?}): {e}"))?;
    }
    w.drain(cfg).map_err(|e| format!("draining: {e}"))
}

//! The learning loop's writes: what a failed run teaches (its digest, into its trace, its
//! retry's prompt and the fleet's memory as a lesson that counts repeats), and what a
//! landing confirms (the lessons its run received).

use git2::{Oid, Repository};

use crate::memory::NewMemory;
use crate::model::{
    Author, Lifecycle, MemoryId, MemoryKind, Payload, QueueState, RunId, RunState, Step, StepKind,
    StepRef, Ticket,
};
use crate::safe_text::clip_bytes;
use crate::trace::digest::{Digest, End};
use crate::workspace::Workspace;

/// What a note step holding a failure digest is called.
pub const DIGEST_NOTE: &str = "failure digest";
/// Bytes of digest a retry's prompt and a lesson carry: a page, not a log.
pub const DIGEST_BUDGET: usize = 2400;

/// Lines added and removed between `base` and the head of `branch` in `repo`.
pub fn diff_size(repo: &Repository, base: &str, branch: &str) -> Option<(usize, usize)> {
    let head = repo
        .find_branch(branch, git2::BranchType::Local)
        .ok()?
        .get()
        .peel_to_commit()
        .ok()?;
    let s = crate::diffstat::between(repo, Oid::from_str(base).ok()?, head.id()).ok()?;
    Some((s.added as usize, s.deleted as usize))
}

/// Build the digest of a failed run from its stored steps, append it to the run's trace
/// as a note (the retry's prompt reads it there), and write it as a lesson on the paths
/// the run touched, pointing at the step it came from. Returns the digest's text.
pub fn record_failure(
    ws: &Workspace,
    run: RunId,
    ticket: &Ticket,
    agent: &str,
    end: End,
    files: &[String],
    diff: Option<(usize, usize)>,
) -> Result<String, crate::store::StoreError> {
    let mut steps: Vec<Step> = Vec::new();
    ws.store.for_each_step(run, |mut s| {
        // Payloads whole: the assertion may sit in a command output kept as a blob.
        if s.kind.is_error() || matches!(s.kind, StepKind::AgentMessage { .. }) {
            ws.store.inline_step(&mut s)?;
        }
        steps.push(s);
        Ok(())
    })?;
    let mut digest = Digest::of_steps(&steps, end);
    for f in files {
        if !digest.files.contains(f) {
            digest.files.push(f.clone());
        }
    }
    digest.diff = diff;
    let text = digest.render(DIGEST_BUDGET);
    let next_seq = steps.last().map_or(0, |s| s.seq + 1);
    let note = Step {
        run,
        seq: next_seq,
        ts: jiff::Timestamp::now(),
        agent: "shopfloor".into(),
        parent: digest.source_step(),
        kind: StepKind::Lifecycle {
            event: Lifecycle::Note {
                what: DIGEST_NOTE.into(),
                text: Payload::Text(text.clone()),
            },
        },
    };
    ws.store.append_steps(run, vec![note.clone()])?;
    if let Err(e) = ws.index().add_steps(&[note]) {
        tracing::error!(run, error = %e, "indexing the failure digest failed");
    }

    let mut paths = ticket.paths.clone();
    paths.extend(digest.files.iter().cloned());
    paths.sort();
    paths.dedup();
    let queue = digest.end.from_queue();
    let mut m = NewMemory::new(
        MemoryKind::Lesson,
        format!(
            "Ticket {} \"{}\" {}:\n{text}",
            ticket.id,
            ticket.title,
            if queue {
                "came back from the merge queue"
            } else {
                "failed this way"
            }
        ),
        Author::Agent {
            name: agent.to_string(),
        },
    );
    m.paths = paths;
    m.tags = vec![if queue { "merge-queue" } else { "run-failure" }.into()];
    m.source = Some(StepRef {
        run,
        step: digest.source_step().unwrap_or(next_seq),
    });
    match ws.memory.record_lesson(m, &digest.signature()) {
        Ok((lesson, false)) => tracing::info!(
            run,
            lesson = lesson.id,
            seen = lesson.seen,
            "the same failure again"
        ),
        Ok(_) => {}
        Err(e) => tracing::error!(run, error = %e, "could not save the failure lesson"),
    }
    Ok(text)
}

/// A queue entry came back (a conflict, red merge tests, a reviewer's or a person's no):
/// its run's digest with that end, in its trace and as a lesson, as for a failed run.
/// False when the entry has no ticket or run to learn for (the caller writes a plain
/// memory then) or the workspace's learning loop is off.
pub fn record_queue_end(ws: &Workspace, e: &crate::model::QueueEntry, end: End) -> bool {
    if !ws.config.factory.learning {
        return false;
    }
    let (Some(run), Some(tid)) = (e.run, e.ticket) else {
        return false;
    };
    let (Ok(Some(ticket)), Ok(Some(r))) = (ws.store.ticket(tid), ws.store.run(run)) else {
        return false;
    };
    match record_failure(ws, run, &ticket, &r.agent, end, &r.files_changed, None) {
        Ok(_) => true,
        Err(err) => {
            tracing::error!(run, entry = e.id, error = %err, "could not record the entry's digest");
            false
        }
    }
}

/// What the earlier attempts at `ticket` say, oldest first: one line each, and for the
/// last failed one its whole digest (what the retry most needs).
pub fn earlier_attempts(ws: &Workspace, ticket: &Ticket) -> Vec<String> {
    let failed: Vec<_> = ticket
        .runs
        .iter()
        .filter_map(|r| ws.store.run(*r).ok().flatten())
        .filter(|r| matches!(r.state, RunState::Failed | RunState::Interrupted))
        .collect();
    let last_failed = failed
        .iter()
        .rev()
        .find(|r| r.state == RunState::Failed)
        .map(|r| r.id);
    let runs = failed.into_iter().filter_map(|r| {
        let digest = (Some(r.id) == last_failed)
            .then(|| digest_of(ws, r.id, r.steps))
            .flatten();
        match (digest, r.outcome) {
            (Some(d), _) => Some(format!("attempt {} (run {}):\n{d}", r.attempt, r.id)),
            (None, Some(o)) => Some(format!("attempt {} (run {}): {o}", r.attempt, r.id)),
            (None, None) => None,
        }
    });
    // Attempts the merge queue sent back (a conflict with the new main, tests that broke
    // once merged) or a person rejected: their reason, a long test log cut to what tells.
    let queue = ws
        .store
        .queue_entries()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.ticket == Some(ticket.id))
        .filter_map(|e| {
            let reason = e.reason.as_deref()?;
            // A review's or a person's comments are the lesson itself: every one of them
            // goes, within the budget, not just the lines a test log is cut to.
            let reviewed = e.state == QueueState::Bounced
                && (!e.comments.is_empty()
                    || crate::model::transitions::review_of_head(&e)
                        .is_some_and(|r| r.verdict == crate::model::ReviewVerdict::RequestChanges));
            let who = match e.state {
                QueueState::Bounced if reviewed => "a review sent back",
                QueueState::Bounced => "the merge queue bounced",
                QueueState::Rejected => "a person rejected",
                _ => return None,
            };
            let why = if reviewed {
                clip_bytes(reason, DIGEST_BUDGET)
            } else {
                shorten(reason)
            };
            Some(format!("{who} `{}`: {why}", e.branch))
        });
    runs.chain(queue).collect()
}

/// A reason of a few lines as it is; a long one (a test log) as its first line, the lines
/// that say what failed and its last lines, within the digest budget.
fn shorten(reason: &str) -> String {
    if reason.lines().count() <= 12 && reason.len() <= DIGEST_BUDGET {
        return reason.to_string();
    }
    let first = reason.lines().next().unwrap_or_default();
    let (telling, tail) = crate::trace::digest::telling_and_tail(reason);
    let mut out = format!("{first}\n{}", telling.join("\n"));
    if !tail.is_empty() {
        out.push_str(&format!("\n...\n{}", tail.join("\n")));
    }
    clip_bytes(&out, DIGEST_BUDGET)
}

/// The failure digest a run's trace ends with, if it has one.
fn digest_of(ws: &Workspace, run: RunId, steps: u64) -> Option<String> {
    let tail = ws.store.steps(run, steps.saturating_sub(4), steps).ok()?;
    tail.into_iter().rev().find_map(|mut s| {
        let StepKind::Lifecycle {
            event: Lifecycle::Note { what, .. },
        } = &s.kind
        else {
            return None;
        };
        if what != DIGEST_NOTE {
            return None;
        }
        ws.store.inline_step(&mut s).ok()?;
        match s.kind {
            StepKind::Lifecycle {
                event:
                    Lifecycle::Note {
                        text: Payload::Text(t),
                        ..
                    },
            } => Some(t),
            _ => None,
        }
    })
}

/// A run landed: the lessons it received that bear on what it changed are confirmed.
pub fn confirm_landed(ws: &Workspace, run: RunId, recalled: &[MemoryId], files: &[String]) {
    let confirmed: Vec<MemoryId> = recalled
        .iter()
        .copied()
        .filter(|id| {
            ws.store.memory(*id).ok().flatten().is_some_and(|m| {
                m.kind == MemoryKind::Lesson
                    && (m.paths.is_empty()
                        || m.paths.iter().any(|p| files.iter().any(|f| overlaps(p, f))))
            })
        })
        .collect();
    if let Err(e) = ws.memory.confirm(&confirmed, run) {
        tracing::error!(run, error = %e, "could not confirm the run's lessons");
    }
}

/// Whether two repo paths overlap: the same, or one a directory of the other.
fn overlaps(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_end_matches('/'), b.trim_end_matches('/'));
    a == b || b.starts_with(&format!("{a}/")) || a.starts_with(&format!("{b}/"))
}

/// Lines changed on a memory's paths since it was written, past which it is stale: the
/// code it speaks of has been rewritten.
pub const STALE_LINES: usize = 200;
/// Commits of main looked at, newest first, when judging staleness.
const STALE_WALK: usize = 500;

/// Whether `m`'s paths changed by more than [`STALE_LINES`] lines on main (`head`) since
/// it was written. Memories without paths never go stale this way.
pub fn is_stale(repo: &Repository, head: Oid, m: &crate::model::Memory) -> bool {
    if m.paths.is_empty() {
        return false;
    }
    let since = m.ts.as_second();
    let Ok(mut walk) = repo.revwalk() else {
        return false;
    };
    if walk.push(head).is_err() || walk.set_sorting(git2::Sort::TIME).is_err() {
        return false;
    }
    let mut changed = 0usize;
    for oid in walk.take(STALE_WALK).flatten() {
        let Ok(c) = repo.find_commit(oid) else {
            continue;
        };
        if c.time().seconds() < since {
            break;
        }
        let Some(parent) = c.parents().next() else {
            continue;
        };
        let mut opts = git2::DiffOptions::new();
        for p in &m.paths {
            opts.pathspec(p);
        }
        let diff = match (c.tree(), parent.tree()) {
            (Ok(t), Ok(pt)) => repo.diff_tree_to_tree(Some(&pt), Some(&t), Some(&mut opts)),
            _ => continue,
        };
        if let Ok(s) = diff.and_then(|d| d.stats()) {
            changed += s.insertions() + s.deletions();
        }
        if changed > STALE_LINES {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_overlap_as_files_or_directories() {
        assert!(overlaps("src/a.rs", "src/a.rs"));
        assert!(overlaps("src", "src/a.rs"));
        assert!(overlaps("src/a.rs", "src/"));
        assert!(!overlaps("src/a.rs", "src/ab.rs"));
    }
}

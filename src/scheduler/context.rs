//! The context pack handed to a new run: what the fleet already learned that bears on the
//! ticket (decisions, lessons, conventions for its words and paths), what other agents are
//! changing right now, and why earlier attempts failed. Rendered into the agent's prompt.

use std::fmt::Write;

use serde::Serialize;

use crate::memory::{Leg, MemoryBank, MemoryError, RecallHit, RecallQuery};
use crate::model::{MemoryKind, RunId, Ticket};

/// What another live run is doing, as the factory sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Activity {
    pub run: RunId,
    pub agent: String,
    pub ticket: String,
    /// Files it has edited so far.
    pub files: Vec<String>,
    /// Paths it holds leases on.
    pub leases: Vec<String>,
}

/// A memory in the pack, and why it is there.
#[derive(Clone, Debug, Serialize)]
pub struct Recalled {
    pub hit: RecallHit,
    pub why: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ContextPack {
    pub memories: Vec<Recalled>,
    pub others: Vec<Activity>,
    /// Why earlier attempts at this ticket failed, oldest first.
    pub attempts: Vec<String>,
}

/// Candidates recall is asked for; the pack keeps those that earn their place.
const CANDIDATES: usize = 24;
/// Bytes of memory text a pack holds at most: recall that floods the prompt hurts more
/// than it helps (SWE-ContextBench), so the pack is kept to what is relevant and short.
pub const PACK_BYTES: usize = 4000;
/// A hit found by one ranker only must score at least this share of the best hit's.
const RELEVANCE: f32 = 0.5;

/// Why a hit is relevant to the ticket, or None when it is not relevant enough: found on
/// the ticket's paths, or by both its words and its meaning, or by one of them with a
/// score near the best. Recency alone is no reason.
pub fn relevance(hit: &RecallHit, best: f32) -> Option<String> {
    let has = |l: Leg| hit.legs.contains(&l);
    let mut why = Vec::new();
    if has(Leg::Path) {
        why.push("on the ticket's paths");
    }
    if has(Leg::Bm25) {
        why.push("shares the ticket's words");
    }
    if has(Leg::Dense) {
        why.push("close in meaning");
    }
    let strong = has(Leg::Path) || (has(Leg::Bm25) && has(Leg::Dense));
    let near_best =
        best > 0.0 && hit.score >= RELEVANCE * best && (has(Leg::Bm25) || has(Leg::Dense));
    (strong || near_best).then(|| why.join(", "))
}

/// The pack: relevant memories (confirmed lessons first, then by score, stale ones left
/// out, within [`PACK_BYTES`]), what other runs are doing, and the earlier attempts.
/// `stale` says whether a memory's paths changed a lot since it was written.
pub fn build(
    bank: &MemoryBank,
    ticket: &Ticket,
    others: Vec<Activity>,
    attempts: Vec<String>,
    stale: &dyn Fn(&crate::model::Memory) -> bool,
) -> Result<ContextPack, MemoryError> {
    let hits = bank.search(&RecallQuery {
        text: format!("{}\n{}", ticket.title, ticket.body),
        limit: CANDIDATES,
        kinds: vec![
            MemoryKind::Decision,
            MemoryKind::Lesson,
            MemoryKind::Convention,
            MemoryKind::FileContext,
        ],
        paths: ticket.paths.clone(),
        ..Default::default()
    })?;
    let best = hits.iter().map(|h| h.score).fold(0.0, f32::max);
    let mut kept: Vec<Recalled> = hits
        .into_iter()
        .filter_map(|hit| {
            let mut why = relevance(&hit, best)?;
            let m = &hit.memory;
            if m.confirmed.is_none() && stale(m) {
                return None;
            }
            if let Some(run) = m.confirmed {
                why = format!("confirmed by run {run}; {why}");
            }
            if m.seen > 1 {
                why = format!("{why}; seen {} times", m.seen);
            }
            Some(Recalled { hit, why })
        })
        .collect();
    // Confirmed lessons first; otherwise recall's order.
    kept.sort_by_key(|r| r.hit.memory.confirmed.is_none());
    let mut used = 0;
    kept.retain(|r| {
        let size = r.hit.memory.text.len() + r.why.len() + 40;
        let fits = used + size <= PACK_BYTES;
        if fits {
            used += size;
        }
        fits
    });
    Ok(ContextPack {
        memories: kept,
        others,
        attempts,
    })
}

impl ContextPack {
    pub fn is_empty(&self) -> bool {
        self.memories.is_empty() && self.others.is_empty() && self.attempts.is_empty()
    }

    /// Each memory handed over, with why (for its history).
    pub fn recalled(&self) -> Vec<(crate::model::MemoryId, String)> {
        self.memories
            .iter()
            .map(|r| (r.hit.memory.id, r.why.clone()))
            .collect()
    }

    /// Markdown for the prompt.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if !self.attempts.is_empty() {
            out.push_str("## Earlier attempts at this ticket failed: learn from them\n");
            for a in &self.attempts {
                let _ = writeln!(out, "- Lesson: {a}");
            }
            out.push('\n');
        }
        if !self.memories.is_empty() {
            out.push_str("## What the fleet already knows (shared memory)\n");
            for r in &self.memories {
                let m = &r.hit.memory;
                let paths = if m.paths.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", m.paths.join(", "))
                };
                let _ = writeln!(
                    out,
                    "- ({}, memory {}; {}) {}{paths}",
                    m.kind,
                    m.id,
                    r.why,
                    m.text.trim()
                );
            }
            out.push('\n');
        }
        if !self.others.is_empty() {
            out.push_str("## Other agents working right now (do not redo or undo their work)\n");
            for o in &self.others {
                let _ = write!(out, "- run {} ({}) on \"{}\"", o.run, o.agent, o.ticket);
                if !o.files.is_empty() {
                    let _ = write!(out, "; editing {}", o.files.join(", "));
                }
                if !o.leases.is_empty() {
                    let _ = write!(out, "; holds {}", o.leases.join(", "));
                }
                out.push('\n');
            }
            out.push('\n');
        }
        out
    }
}

/// The whole prompt for a run of `ticket`.
pub fn prompt(ticket: &Ticket, pack: &ContextPack) -> String {
    let mut out = format!("# Ticket {}: {}\n\n", ticket.id, ticket.title);
    if !ticket.body.trim().is_empty() {
        out.push_str(ticket.body.trim());
        out.push_str("\n\n");
    }
    if !ticket.paths.is_empty() {
        let _ = writeln!(out, "Expected to touch: {}\n", ticket.paths.join(", "));
    }
    out.push_str(&pack.render());
    out.push_str(
        "Work in the current directory (a sandbox on your own branch). Commit or leave your changes; \
         the factory commits what is left and sends the branch to the merge queue.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Index;
    use crate::memory::{NewMemory, StaticEmbedder};
    use crate::model::{Author, TicketState};
    use crate::store::Store;

    #[test]
    fn the_pack_brings_lessons_for_the_tickets_words_and_paths() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let index = Index::open(&dir.path().join("i")).unwrap();
        let bank = MemoryBank::open(store, index, StaticEmbedder::builtin()).unwrap();
        let agent = Author::Agent {
            name: "claude".into(),
        };
        let mut m = NewMemory::new(
            MemoryKind::Lesson,
            "reserve() must check the level before subtracting or stock goes negative",
            agent.clone(),
        );
        m.paths = vec!["inventory/stock.py".into()];
        bank.add(m).unwrap();
        bank.add(NewMemory::new(
            MemoryKind::Note,
            "the coffee machine is on floor 3",
            agent,
        ))
        .unwrap();
        let now = jiff::Timestamp::now();
        let ticket = Ticket {
            id: 7,
            title: "Fix overselling in reserve".into(),
            body: String::new(),
            priority: 0,
            agent: None,
            paths: vec!["inventory/stock.py".into()],
            labels: vec![],
            state: TicketState::Queued,
            created: now,
            updated: now,
            runs: vec![],
        };
        let others = vec![Activity {
            run: 3,
            agent: "codex".into(),
            ticket: "Add release()".into(),
            files: vec!["inventory/stock.py".into()],
            leases: vec![],
        }];
        let pack = build(
            &bank,
            &ticket,
            others,
            vec!["Attempt 1 failed: exit 1".into()],
            &|_| false,
        )
        .unwrap();
        assert_eq!(
            pack.memories.len(),
            1,
            "notes are not context; the lesson is"
        );
        let text = prompt(&ticket, &pack);
        assert!(
            text.contains("# Ticket 7: Fix overselling in reserve"),
            "{text}"
        );
        assert!(text.contains("reserve() must check the level"), "{text}");
        assert!(
            text.contains("run 3 (codex)") && text.contains("editing inventory/stock.py"),
            "{text}"
        );
        assert!(text.contains("Attempt 1 failed"), "{text}");
    }
}

//! The workspace's store as the queue's driver sees it. Landings, bounces and denials are
//! audited here, and become memories on the paths involved, so the next agent on those
//! paths finds them in its context pack.

use super::*;

/// What a queue end teaches: its run's failure digest, in the run's trace and as a lesson
/// that counts repeats ([`crate::learn::record_queue_end`]); or, for an entry with no
/// ticket or run to learn for (or with the learning loop off), a plain lesson saying
/// `text`, to write.
pub(super) fn lesson(
    ws: &Workspace,
    e: &QueueEntry,
    end: End,
    text: impl FnOnce() -> String,
    paths: Vec<String>,
    author: Author,
) -> Option<NewMemory> {
    (!crate::learn::record_queue_end(ws, e, end))
        .then(|| memory(e, MemoryKind::Lesson, text(), paths, author))
}

pub(super) fn comment_paths(comments: &[crate::model::LineComment]) -> Vec<String> {
    let mut paths: Vec<String> = comments.iter().map(|c| c.path.clone()).collect();
    paths.sort();
    paths.dedup();
    paths
}

/// Landings, bounces and rejections become memories on the paths involved, so the next
/// agent on those paths finds them in its context pack.
pub(super) fn remember(
    ws: &Workspace,
    e: &QueueEntry,
    kind: MemoryKind,
    text: String,
    paths: Vec<String>,
    author: Author,
) {
    write_memories(ws, vec![memory(e, kind, text, paths, author)]);
}

pub(super) fn memory(
    e: &QueueEntry,
    kind: MemoryKind,
    text: String,
    paths: Vec<String>,
    author: Author,
) -> NewMemory {
    let mut m = NewMemory::new(kind, text, author);
    m.paths = paths;
    m.tags = vec!["merge-queue".into()];
    if let Some(r) = e.run {
        m.source = Some(crate::model::StepRef { run: r, step: 0 });
    }
    m
}

/// In one store transaction and one index commit: a batch landing's memories cost one.
pub(super) fn write_memories(ws: &Workspace, memories: Vec<NewMemory>) {
    if memories.is_empty() {
        return;
    }
    if let Err(err) = ws.memory.add_many(memories) {
        tracing::error!(error = %err, "could not write the queue's memories");
    }
}

/// The workspace's store for the driver; landings, bounces and denials are audited and
/// become memories here.
pub(super) struct StoreQueue<'a> {
    pub(super) ws: &'a Workspace,
    pub(super) repo_path: PathBuf,
}

impl QueueStore for StoreQueue<'_> {
    fn entries(&self) -> Result<Vec<QueueEntry>> {
        Ok(self.ws.store.queue_entries()?)
    }

    fn apply(
        &self,
        ids: &[QueueEntryId],
        ev: EntryEvent,
    ) -> Result<std::result::Result<Vec<EntryOutcome>, Refusal>> {
        let info = self.ws.info.clone();
        let cx = EntryContext {
            max_attempts: self.ws.config.factory.max_attempts,
            paused: Arc::new(move || is_paused(&info)),
        };
        match self.ws.store.apply_entries(ids.to_vec(), cx, ev.clone()) {
            Ok(outs) => {
                let memories = outs.iter().filter_map(|o| self.note(&ev, o)).collect();
                write_memories(self.ws, memories);
                Ok(Ok(outs))
            }
            Err(StoreError::Refused(r)) => {
                tracing::info!(entries = ?ids, "{r}");
                Ok(Err(r))
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl StoreQueue<'_> {
    /// The audit line a transition leaves, and the memory it leaves to write.
    fn note(&self, ev: &EntryEvent, o: &EntryOutcome) -> Option<NewMemory> {
        let e = &o.entry;
        let bot = || Author::Agent {
            name: "merge-queue".into(),
        };
        match ev {
            EntryEvent::Bounce { reason, paths } => {
                audit(
                    self.ws,
                    "merge-queue",
                    "queue.bounced",
                    format!("entry {}: {}", e.id, first_line(reason)),
                );
                let end = if paths.is_empty() {
                    End::RedMergeTest {
                        output: reason.clone(),
                    }
                } else {
                    End::Conflict {
                        paths: paths.clone(),
                    }
                };
                lesson(
                    self.ws,
                    e,
                    end,
                    || format!("`{}` bounced from the merge queue: {reason}", e.branch),
                    paths.clone(),
                    bot(),
                )
            }
            EntryEvent::Deny { verdict, reason } => {
                audit(
                    self.ws,
                    "merge-queue",
                    "queue.rejected",
                    format!("entry {}: {reason}", e.id),
                );
                Some(memory(
                    e,
                    MemoryKind::Lesson,
                    format!("`{}` was rejected by the merge queue: {reason}", e.branch),
                    verdict.denied.clone(),
                    bot(),
                ))
            }
            EntryEvent::TestResult(_) if o.discarded() => {
                audit(
                    self.ws,
                    "merge-queue",
                    "queue.result_discarded",
                    format!("entry {}: {}", e.id, e.state.name()),
                );
                None
            }
            EntryEvent::Landed { commit } => Some(self.note_landed(e, commit)),
            EntryEvent::Reviewed(r) => {
                audit(
                    self.ws,
                    &format!("review-run:{}", r.run),
                    "queue.reviewed",
                    format!(
                        "entry {} at {}: {}{}",
                        e.id,
                        short_commit(&r.head),
                        r.verdict.name(),
                        if o.discarded() { " (discarded)" } else { "" }
                    ),
                );
                if e.state != QueueState::Bounced || o.discarded() {
                    return None;
                }
                let end = End::Rejected {
                    by: format!("review run {} ({})", r.run, r.agent),
                    reason: e.reason.clone().unwrap_or_default(),
                };
                lesson(
                    self.ws,
                    e,
                    end,
                    || {
                        format!(
                            "`{}` was sent back by its review: {}",
                            e.branch,
                            e.reason.as_deref().unwrap_or_default()
                        )
                    },
                    comment_paths(&r.comments),
                    Author::Agent {
                        name: r.agent.clone(),
                    },
                )
            }
            _ => None,
        }
    }

    fn note_landed(&self, e: &QueueEntry, main: &str) -> NewMemory {
        let (paths, lines) = match (e.base.as_deref(), e.candidate.as_deref()) {
            (Some(b), Some(c)) => Repository::open(&self.repo_path)
                .ok()
                .and_then(|repo| crate::diffstat::between(&repo, oid(b).ok()?, oid(c).ok()?).ok())
                .map(|s| {
                    let lines = s.lines();
                    (s.files, lines)
                })
                .unwrap_or_default(),
            _ => (Vec::new(), 0),
        };
        audit(
            self.ws,
            "merge-queue",
            "queue.merged",
            format!("entry {} {} -> main {}", e.id, e.branch, short_commit(main)),
        );
        // The lessons its run received held: it landed on their paths.
        if let Some(run) = e.run.and_then(|r| self.ws.store.run(r).ok().flatten()) {
            crate::learn::confirm_landed(self.ws, run.id, &run.recalled, &paths);
        }
        let title = e
            .ticket
            .and_then(|t| self.ws.store.ticket(t).ok().flatten())
            .map(|t| t.title)
            .unwrap_or_else(|| e.branch.clone());
        let approved = e
            .approval
            .as_ref()
            .map(|a| {
                format!(
                    "; approved by {}{}",
                    a.by,
                    a.note
                        .as_deref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                )
            })
            .unwrap_or_default();
        memory(
            e,
            MemoryKind::Decision,
            format!(
                "Landed on main: {title} (`{}`, {} files, {lines} lines){approved}",
                e.branch,
                paths.len()
            ),
            paths,
            Author::Agent {
                name: "merge-queue".into(),
            },
        )
    }
}

pub(super) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

//! What people do to the queue: approve, reject, comment, send back, bump, pause. Each is
//! one transition through the state machine, so a person's decision holds whatever the
//! queue's turn is doing at that moment.

use super::store_queue::{comment_paths, lesson, remember, write_memories};
use super::*;

/// A human approves `id`, pinned to the branch head the entry holds now.
pub fn approve(
    ws: &Workspace,
    id: QueueEntryId,
    by: &str,
    note: Option<String>,
) -> Result<QueueEntry> {
    let approval = Approval {
        entry: id,
        // Pinned by the transition to the head the store holds.
        commit: String::new(),
        by: by.to_string(),
        note: note.clone(),
        ts: Timestamp::now(),
    };
    let e = transition(ws, id, EntryEvent::Approve(approval))?.entry;
    audit(
        ws,
        &format!("human:{by}"),
        "queue.approved",
        format!(
            "entry {id} at {}{}",
            short_commit(&e.head),
            note.as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        ),
    );
    if let Some(n) = note {
        remember(
            ws,
            &e,
            MemoryKind::Decision,
            format!("{by} approved `{}` for landing: {n}", e.branch),
            Vec::new(),
            Author::Human {
                name: by.to_string(),
            },
        );
    }
    Ok(e)
}

/// A human rejects `id` with a reason: it never lands, even if it is being tested now.
pub fn reject(ws: &Workspace, id: QueueEntryId, by: &str, reason: &str) -> Result<QueueEntry> {
    let e = transition(
        ws,
        id,
        EntryEvent::Reject {
            by: by.to_string(),
            reason: reason.to_string(),
        },
    )?
    .entry;
    audit(
        ws,
        &format!("human:{by}"),
        "queue.rejected",
        format!("entry {id}: {reason}"),
    );
    let end = End::Rejected {
        by: by.to_string(),
        reason: reason.to_string(),
    };
    let taught = lesson(
        ws,
        &e,
        end,
        || format!("{by} rejected `{}`: {reason}", e.branch),
        Vec::new(),
        Author::Human {
            name: by.to_string(),
        },
    );
    write_memories(ws, taught.into_iter().collect());
    Ok(e)
}

/// The most a comment may say: a person's or a reviewer's note, not a file.
pub const MAX_COMMENT_CHARS: usize = 8_000;

/// Check a comment's path (as every path named from outside is checked), line and text;
/// the path as it is kept, or an error that says what to change.
pub fn check_comment(path: &str, line: u32, text: &str) -> Result<String> {
    let bad = |m: String| Err(QueueError::Invalid(m));
    let path = match crate::model::repo_paths(vec![path.to_string()]) {
        Ok(mut p) => p.remove(0),
        Err(e) => return bad(format!("comment path: {e}")),
    };
    if line == 0 {
        return bad("comment line numbers start at 1".into());
    }
    if text.trim().is_empty() {
        return bad("the comment is empty; say what to change".into());
    }
    if text.chars().count() > MAX_COMMENT_CHARS {
        return bad(format!(
            "the comment is {} characters; at most {MAX_COMMENT_CHARS}: split it",
            text.chars().count()
        ));
    }
    Ok(path)
}

/// A person comments on line `line` of `path` in entry `id`'s diff; it goes back to the
/// agent with the entry (`send_back`).
pub fn comment(
    ws: &Workspace,
    id: QueueEntryId,
    by: &str,
    path: &str,
    line: u32,
    text: &str,
) -> Result<QueueEntry> {
    let path = check_comment(path, line, text)?;
    let c = crate::model::LineComment {
        path: path.clone(),
        line,
        text: text.to_string(),
        by: by.to_string(),
        ts: Timestamp::now(),
    };
    let e = transition(ws, id, EntryEvent::Comment(c))?.entry;
    audit(
        ws,
        &format!("human:{by}"),
        "queue.commented",
        format!("entry {id} {path}:{line}"),
    );
    Ok(e)
}

/// A person sends `id` back to its agent with every comment on it: the same path as an
/// agent reviewer's request for changes. The comments are the retry's lesson.
pub fn send_back(ws: &Workspace, id: QueueEntryId, by: &str) -> Result<QueueEntry> {
    let e = transition(ws, id, EntryEvent::SendBack { by: by.to_string() })?.entry;
    audit(
        ws,
        &format!("human:{by}"),
        "queue.sent_back",
        format!("entry {id} with {} comments", e.comments.len()),
    );
    let end = End::Rejected {
        by: by.to_string(),
        reason: e.reason.clone().unwrap_or_default(),
    };
    let taught = lesson(
        ws,
        &e,
        end,
        || {
            format!(
                "`{}` was sent back: {}",
                e.branch,
                e.reason.as_deref().unwrap_or_default()
            )
        },
        comment_paths(&e.comments),
        Author::Human {
            name: by.to_string(),
        },
    );
    write_memories(ws, taught.into_iter().collect());
    Ok(e)
}

/// Move `id` ahead of every other entry.
pub fn bump(ws: &Workspace, id: QueueEntryId, by: &str) -> Result<QueueEntry> {
    let top = ws
        .store
        .queue_entries()?
        .iter()
        .map(|e| e.priority)
        .max()
        .unwrap_or(0);
    let e = transition(ws, id, EntryEvent::Bump { priority: top + 1 })?.entry;
    audit(
        ws,
        &format!("human:{by}"),
        "queue.bumped",
        format!("entry {id} to priority {}", e.priority),
    );
    Ok(e)
}

pub fn is_paused(info: &crate::layout::WorkspaceInfo) -> bool {
    info.queue_pause_path().exists()
}

pub fn set_paused(ws: &Workspace, paused: bool, by: &str) -> Result<()> {
    let f = ws.info.queue_pause_path();
    let done = if paused {
        std::fs::write(&f, format!("paused by {by} at {}\n", Timestamp::now()))
    } else {
        match std::fs::remove_file(&f) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    };
    done.map_err(|e| QueueError::Invalid(format!("cannot write {}: {e}", f.display())))?;
    audit(
        ws,
        &format!("human:{by}"),
        if paused {
            "queue.paused"
        } else {
            "queue.resumed"
        },
        String::new(),
    );
    Ok(())
}

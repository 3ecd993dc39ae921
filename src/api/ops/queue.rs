//! The merge queue as the API shows and acts on it.

use super::*;

pub(super) fn queue_err(e: crate::mergeq::QueueError) -> OpError {
    let kind = match &e {
        crate::mergeq::QueueError::NoEntry(_) => ErrorKind::NotFound,
        crate::mergeq::QueueError::Invalid(_) | crate::mergeq::QueueError::Refused(_) => {
            ErrorKind::Conflict
        }
        _ => ErrorKind::Internal,
    };
    OpError::from_error(kind, &e)
}

/// The queue, in landing order (waiting and finished entries after the queued ones).
pub fn queue(ws: &Workspace) -> Result<QueueView> {
    let entries = crate::mergeq::ordered(ws.store.queue_entries().map_err(store_err)?);
    Ok(QueueView {
        paused: crate::mergeq::is_paused(&ws.info),
        entries,
    })
}

/// One entry with its diff stat.
pub fn queue_entry(ws: &Workspace, id: crate::model::QueueEntryId) -> Result<QueueDetail> {
    let entry = ws
        .store
        .queue_entry(id)
        .map_err(store_err)?
        .ok_or_else(|| {
            OpError::not_found(format!(
                "queue entry {id} does not exist; `shopfloor queue list` shows the queue"
            ))
        })?;
    // A branch gone from the clone leaves the stat empty and the patch saying why.
    let (files, changed_lines, patch) =
        crate::mergeq::entry_diff(ws, &entry, crate::wire::PATCH_LIMIT)
            .unwrap_or_else(|e| (vec![], 0, format!("(no diff: {e})\n")));
    let title = entry
        .ticket
        .and_then(|t| ws.store.ticket(t).ok().flatten())
        .map(|t| t.title);
    Ok(QueueDetail {
        entry,
        files,
        changed_lines,
        title,
        patch,
    })
}

/// A queue action by its verb (`approve`, `reject`, `bump`, `comment`, `send-back`), as
/// the route names it.
pub fn queue_act(
    ws: &Workspace,
    id: crate::model::QueueEntryId,
    verb: &str,
    a: QueueAction,
) -> Result<crate::model::QueueEntry> {
    match verb {
        "approve" => queue_approve(ws, id, a),
        "reject" => queue_reject(ws, id, a),
        "bump" => queue_bump(ws, id, a),
        "comment" => {
            let (Some(path), Some(line), Some(text)) = (a.path, a.line, a.note) else {
                return Err(OpError::bad_request(
                    "a comment needs a path, a line and its text (--path P --line L TEXT)",
                ));
            };
            crate::mergeq::comment(ws, id, &a.by, &path, line, &text).map_err(queue_err)
        }
        "send-back" => crate::mergeq::send_back(ws, id, &a.by).map_err(queue_err),
        other => Err(OpError::not_found(format!(
            "no queue action `{other}`; use approve, reject, bump, comment or send-back"
        ))),
    }
}

pub fn queue_approve(
    ws: &Workspace,
    id: crate::model::QueueEntryId,
    a: QueueAction,
) -> Result<crate::model::QueueEntry> {
    crate::mergeq::approve(ws, id, &a.by, a.note).map_err(queue_err)
}

pub fn queue_reject(
    ws: &Workspace,
    id: crate::model::QueueEntryId,
    a: QueueAction,
) -> Result<crate::model::QueueEntry> {
    let reason = a
        .note
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| OpError::bad_request("a rejection needs a reason (--reason)"))?;
    crate::mergeq::reject(ws, id, &a.by, &reason).map_err(queue_err)
}

pub fn queue_bump(
    ws: &Workspace,
    id: crate::model::QueueEntryId,
    a: QueueAction,
) -> Result<crate::model::QueueEntry> {
    crate::mergeq::bump(ws, id, &a.by).map_err(queue_err)
}

pub fn queue_pause(ws: &Workspace, paused: bool, a: QueueAction) -> Result<QueueView> {
    crate::mergeq::set_paused(ws, paused, &a.by).map_err(queue_err)?;
    queue(ws)
}

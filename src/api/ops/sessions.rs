//! Interactive agent sessions recorded as runs: a Claude Code session's hooks bring its run
//! up to date with its transcript.

use super::*;

/// Session syncs are serialized: two hooks of one session firing together must not both
/// append the same steps (the store would refuse the second, but as an error).
static SESSION_SYNC: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The `source` of the run recording Claude Code session `id`, which is how the session's
/// later events find it again.
pub(super) fn session_source_prefix(id: &str) -> String {
    format!("claude-code session {id}: ")
}

/// Bring the run that records a Claude Code session up to date with its transcript. The
/// first event creates the run; later ones append the steps not stored yet; `Stop` and
/// `SessionEnd` mark it finished, any later event (the user went on) live again.
///
/// The transcript is append-only and its parser is deterministic and line by line, so the
/// steps of a longer transcript extend those of a shorter one: the whole file is parsed
/// again (tool results need their calls, wherever they are) and only the steps beyond the
/// run's count are appended. Only complete lines are read, so a line Claude Code is still
/// writing waits for the next event.
pub fn sync_session(ws: &Workspace, req: SyncSession) -> Result<SyncedSession> {
    use crate::model::RunState;
    use crate::trace::{Format, TraceBuilder};

    let id = req.session_id.trim();
    if id.is_empty() || id.len() > 200 || id.chars().any(char::is_control) {
        return Err(OpError::bad_request(format!(
            "`{}` is not a session id",
            req.session_id.escape_debug()
        )));
    }
    if !req.transcript.is_absolute() {
        return Err(OpError::bad_request(format!(
            "transcript path {} is relative; pass an absolute path",
            req.transcript.display()
        )));
    }
    let file = std::fs::File::open(&req.transcript).map_err(|e| {
        OpError::from_error(ErrorKind::BadRequest, &e).with_context(format!(
            "cannot read the transcript of session {id} at {}",
            req.transcript.display()
        ))
    })?;
    let finished = matches!(req.event.as_str(), "Stop" | "SessionEnd");
    let _one_at_a_time = SESSION_SYNC.lock().unwrap_or_else(|p| p.into_inner());

    let prefix = session_source_prefix(id);
    // One run per session (the lock above): every hook event looks it up.
    let existing = ws
        .store
        .newest_run_where(|r| r.source.starts_with(&prefix))
        .map_err(store_err)?;
    let created = existing.is_none();
    let run = match existing {
        Some(r) => r,
        None => ws
            .store
            .create_run(Run {
                source: format!("{prefix}{}", req.transcript.display()),
                ..Run::new(
                    Format::ClaudeCode.default_agent(),
                    RunState::Imported,
                    Timestamp::now(),
                )
            })
            .map_err(store_err)?,
    };
    let stored = run.steps;

    let builder = TraceBuilder::new(
        run.id,
        0,
        Format::ClaudeCode.default_agent(),
        ws.redactor.clone(),
    );
    // Only whole lines: Claude Code may be writing the last one as we read.
    let mut file = file;
    let whole = crate::trace::ingest::whole_lines_len(&mut file).map_err(|e| {
        OpError::from_error(ErrorKind::Internal, &e)
            .with_context(format!("reading {}", req.transcript.display()))
    })?;
    let reader = std::io::BufReader::with_capacity(1 << 20, std::io::Read::take(file, whole));
    let mut ingest = crate::trace::Ingest::new(
        crate::trace::LineReader::new(reader),
        Format::ClaudeCode,
        builder,
    )
    .growing();
    let mut total = 0u64;
    let mut tally = crate::trace::Tally::default();
    let mut batch: Vec<Step> = Vec::new();
    let mut appended = 0u64;
    let mut warnings = Vec::new();
    let mut steps: Vec<Step> = Vec::new();
    let index = ws.index();
    let store_batch = |batch: &mut Vec<Step>, appended: &mut u64| -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let steps = std::mem::take(batch);
        ws.store
            .append_steps(run.id, steps.clone())
            .map_err(store_err)?;
        *appended += steps.len() as u64;
        if let Err(e) = index.add_steps(&steps) {
            tracing::error!(run = run.id, error = %e, "indexing session steps failed");
        }
        Ok(())
    };
    while ingest
        .next(&mut steps)
        .map_err(|e| {
            OpError::from_error(ErrorKind::Internal, &e)
                .with_context(format!("reading {}", req.transcript.display()))
        })?
        .is_some()
    {
        for step in steps.drain(..) {
            total += 1;
            tally.add(&step);
            if step.seq >= stored {
                batch.push(step);
                if batch.len() >= crate::trace::BATCH_STEPS {
                    store_batch(&mut batch, &mut appended)?;
                }
            }
        }
    }
    let lines = ingest.lines();
    store_batch(&mut batch, &mut appended)?;
    if let Err(e) = index.flush() {
        warnings.push(format!(
            "the steps are stored but not searchable: {e}; remove {} to rebuild the index on the next open",
            ws.info.index_dir().display()
        ));
    }
    if total < stored {
        warnings.push(format!(
            "the transcript now yields {total} steps but run {} already holds {stored}: it was rewritten or truncated; nothing appended",
            run.id
        ));
    }
    let state = if finished {
        RunState::Succeeded
    } else {
        RunState::Imported
    };
    let event = req.event.clone();
    let crate::trace::Tally {
        usage,
        files,
        first_ts,
        last_ts,
        ..
    } = tally;
    let updated = ws
        .store
        .update_run(run.id, move |r| {
            if let Some(t) = first_ts {
                r.started = t;
            }
            r.ended = if finished { last_ts } else { None };
            r.state = state;
            r.usage = usage.clone();
            r.files_changed = files.clone();
            r.outcome = Some(if finished {
                format!("an interactive Claude Code session; its last turn ended ({event})")
            } else {
                format!("an interactive Claude Code session, recorded as it goes ({event})")
            });
        })
        .map_err(store_err)?;
    tracing::info!(
        run = updated.id, session = id, created, appended, steps = updated.steps,
        event = %req.event, "synced a Claude Code session"
    );
    Ok(SyncedSession {
        run: updated.id,
        created,
        appended,
        steps: updated.steps,
        lines,
        state: updated.state,
        warnings,
    })
}

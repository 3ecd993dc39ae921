//! `shopfloor hook claude-code`: what Claude Code's hooks run (installed by `shopfloor
//! connect claude-code --hooks`). It reads the hook's JSON payload on stdin and syncs the
//! session's transcript into one run of the workspace's traces, so sessions run by hand
//! are recorded like the factory's own.
//!
//! A hook must never get in the way of the session it observes: whatever happens, it
//! exits 0 quickly and prints nothing on stdout (Claude Code reads a hook's stdout as
//! instructions); problems go to stderr and to the log.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::ValueEnum;
use serde::Deserialize;

use shopfloor::api::Backend;
use shopfloor::wire::SyncSession;
use shopfloor::workspace::Home;

use super::output::say_err;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum HookAgent {
    /// Claude Code (`PostToolUse`, `Stop`, `SessionEnd`, ... events)
    ClaudeCode,
}

/// The fields of a Claude Code hook payload we use; the rest are ignored.
#[derive(Debug, Default, Deserialize)]
struct Payload {
    session_id: Option<String>,
    transcript_path: Option<PathBuf>,
    cwd: Option<PathBuf>,
    hook_event_name: Option<String>,
}

/// Largest payload read: hook payloads carry a tool's input and output, which can be big,
/// but we only need the first few fields, and no more than this is worth holding.
const MAX_PAYLOAD: u64 = 64 << 20;

/// How long to wait for another shopfloor command holding the workspace to finish.
const HELD_PATIENCE: Duration = Duration::from_secs(5);

/// Run the hook; never fails, never panics out.
pub fn run(workspace: Option<String>, _agent: HookAgent) {
    // Hooks committed to the repository fire in the factory's own runs too (the run's
    // checkout holds the project's .claude/settings.json); the factory records those runs
    // itself, so the hook does nothing there rather than record them twice.
    if std::env::var_os(shopfloor::sandbox::ENV_SANDBOX).is_some() {
        return;
    }
    let outcome = std::panic::catch_unwind(|| sync(workspace));
    let problem = match outcome {
        Ok(Ok(())) => return,
        Ok(Err(e)) => format!("{e:#}"),
        Err(_) => "the hook panicked; see the log".to_string(),
    };
    tracing::warn!(error = %problem, "claude-code hook: session not recorded");
    say_err!("shopfloor hook: session not recorded: {problem}");
}

fn sync(workspace: Option<String>) -> Result<()> {
    let mut input = Vec::new();
    std::io::stdin()
        .take(MAX_PAYLOAD)
        .read_to_end(&mut input)
        .context("reading the hook payload on stdin")?;
    let payload: Payload = serde_json::from_slice(&input)
        .context("the hook payload on stdin is not the JSON object Claude Code sends")?;
    let home = Home::from_env()?;
    let _log = super::output::init_logging(&home);
    let session_id = payload
        .session_id
        .filter(|s| !s.is_empty())
        .context("the hook payload has no `session_id`")?;
    let transcript = payload
        .transcript_path
        .filter(|p| !p.as_os_str().is_empty())
        .context("the hook payload has no `transcript_path`")?;
    let cwd = payload
        .cwd
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default();
    // Claude Code passes absolute paths; a relative one is relative to the session's cwd.
    let transcript = if transcript.is_absolute() {
        transcript
    } else {
        cwd.join(transcript)
    };
    let event = payload.hook_event_name.unwrap_or_default();
    let info = home.resolve(workspace.as_deref(), &cwd)?;
    // Another shopfloor command (the previous hook of the same session, say) may hold the
    // store for a moment: `open` waits its turn.
    let name = info.name.clone();
    let backend = Backend::open_waiting(info, HELD_PATIENCE)
        .with_context(|| format!("opening workspace `{name}`"))?;
    let synced = backend.sync_session(SyncSession {
        session_id,
        transcript,
        event,
    })?;
    for w in &synced.warnings {
        tracing::warn!(run = synced.run, "{w}");
        say_err!("shopfloor hook: {w}");
    }
    Ok(())
}

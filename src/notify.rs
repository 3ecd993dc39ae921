//! Telling a person when the factory needs them: an entry waits for their approval, an
//! agent seems to wait for input, a ticket failed for good. The control room rings the
//! terminal bell and raises a desktop notification through the terminal (OSC 777 and
//! OSC 9, which most terminals turn into one); `[notify] command` hands every notice to a
//! command of the person's (a Slack webhook script, `notify-send`) as JSON on stdin.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{QueueEntryId, RunId, TicketId, TicketState};
use crate::wire::FactoryEvent;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A merge queue entry waits for a human's approval.
    NeedsApproval,
    /// A live run has printed nothing for a while: it may be waiting for input.
    AgentQuiet,
    /// A ticket failed for good (its attempts are spent, or it cannot run).
    TicketFailed,
    /// A host stopped answering: its runs go elsewhere until `host check` passes.
    HostDown,
}

/// One thing a person should know, as the notify command reads it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub kind: NoticeKind,
    pub workspace: String,
    /// One line for people.
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<TicketId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<QueueEntryId>,
}

/// The notices a factory event carries.
pub fn of_event(workspace: &str, e: &FactoryEvent) -> Vec<Notice> {
    let notice = |kind, text: String| Notice {
        kind,
        workspace: workspace.to_string(),
        text,
        ticket: None,
        run: None,
        entry: None,
    };
    match e {
        FactoryEvent::Queue { waiting, .. } => waiting
            .iter()
            .map(|id| Notice {
                entry: Some(*id),
                ..notice(
                    NoticeKind::NeedsApproval,
                    format!("merge queue entry {id} waits for your approval"),
                )
            })
            .collect(),
        FactoryEvent::TicketState {
            ticket,
            state: TicketState::Failed,
        } => vec![Notice {
            ticket: Some(*ticket),
            ..notice(
                NoticeKind::TicketFailed,
                format!("ticket {ticket} failed for good"),
            )
        }],
        FactoryEvent::Quiet {
            run,
            ticket,
            agent,
            seconds,
        } => vec![Notice {
            run: Some(*run),
            ticket: *ticket,
            ..notice(
                NoticeKind::AgentQuiet,
                format!(
                    "run {run} ({agent}) has printed nothing for {seconds} s: is it waiting for input?"
                ),
            )
        }],
        FactoryEvent::HostDown { host, why } => vec![notice(
            NoticeKind::HostDown,
            format!("host {host} is down: {why}"),
        )],
        _ => Vec::new(),
    }
}

/// Text safe inside an OSC string: no control characters (an ESC or BEL would end it
/// early and let the rest run as terminal commands) and no `;` (OSC 777's separator).
fn osc_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() || c == ';' { ' ' } else { c })
        .collect()
}

/// What the control room writes to its terminal for a notice: the bell, then a desktop
/// notification as OSC 777 (rxvt, foot, WezTerm, Ghostty...) and OSC 9 (iTerm2, kitty,
/// Windows Terminal...); a terminal that knows neither ignores them.
pub fn terminal_sequence(n: &Notice) -> String {
    let title = osc_safe(&format!("shopfloor · {}", n.workspace));
    let body = osc_safe(&n.text);
    format!("\x07\x1b]777;notify;{title};{body}\x07\x1b]9;{title}: {body}\x07")
}

/// How long a notify command may take before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Hand `n` to the person's command (`sh -c`, the notice as JSON on stdin) on a thread of
/// its own, so a slow webhook never holds the factory; killed after [`COMMAND_TIMEOUT`].
pub fn run_command(command: &str, n: &Notice) {
    let command = command.to_string();
    let json = serde_json::to_vec(n).expect("notices serialize");
    std::thread::spawn(move || {
        let child = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "[notify] command could not start");
                return;
            }
        };
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(&json);
        }
        let deadline = std::time::Instant::now() + COMMAND_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return,
                Ok(Some(status)) => {
                    tracing::warn!(%status, "[notify] command failed");
                    return;
                }
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    tracing::warn!("[notify] command took over 10 s; killed");
                    return;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_notices_and_others_none() {
        let waiting = FactoryEvent::Queue {
            landed: vec![1],
            bounced: vec![],
            rejected: vec![],
            waiting: vec![4],
        };
        let n = of_event("shop", &waiting);
        assert_eq!(n.len(), 1);
        assert_eq!(
            (n[0].kind, n[0].entry),
            (NoticeKind::NeedsApproval, Some(4))
        );
        let failed = FactoryEvent::TicketState {
            ticket: 7,
            state: TicketState::Failed,
        };
        assert_eq!(of_event("shop", &failed)[0].kind, NoticeKind::TicketFailed);
        let merged = FactoryEvent::TicketState {
            ticket: 7,
            state: TicketState::Merged,
        };
        assert!(of_event("shop", &merged).is_empty());
    }

    #[test]
    fn a_hostile_text_cannot_end_the_notification_early() {
        let n = Notice {
            kind: NoticeKind::TicketFailed,
            workspace: "w\x07s".into(),
            text: "ticket \x1b]52;c;aGk=\x07 failed; rm".into(),
            ticket: None,
            run: None,
            entry: None,
        };
        let seq = terminal_sequence(&n);
        // Exactly the five framing control bytes: the bell, and ESC..BEL around each OSC.
        assert_eq!(seq.chars().filter(|c| c.is_control()).count(), 5, "{seq:?}");
        assert!(
            seq.starts_with(
                "\x07\x1b]777;notify;shopfloor · w s;ticket  ]52 c aGk=  failed  rm\x07"
            )
        );
    }
}

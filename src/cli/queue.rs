//! `shopfloor queue`: the merge queue, and a human's part in it.

use anyhow::Result;
use clap::Subcommand;
use shopfloor::model::short_commit;
use shopfloor::model::{QueueEntry, QueueState};
use shopfloor::wire::QueueAction;

use super::Ctx;
use super::output::{print_json, print_rows, say, when};

#[derive(Subcommand, Debug)]
pub enum QueueCmd {
    /// The queue in landing order; entries waiting for a human are marked
    List {
        #[arg(long)]
        json: bool,
    },
    /// One entry: diff stat, policy verdict, test runs and their log, the run to replay
    Show {
        entry: u64,
        #[arg(long)]
        json: bool,
    },
    /// Approve an entry's current branch head (a new commit on the branch voids it)
    Approve {
        entry: u64,
        #[arg(long)]
        note: Option<String>,
    },
    /// Reject an entry: it never lands, and its ticket fails with the reason
    Reject {
        entry: u64,
        #[arg(long)]
        reason: String,
    },
    /// Move an entry to the front
    Bump { entry: u64 },
    /// Comment on a line of an entry's diff; `queue send-back` sends the comments to its agent
    Comment {
        entry: u64,
        /// The file, repository-relative
        #[arg(long)]
        path: String,
        /// The line in the new version of the file (1-based)
        #[arg(long)]
        line: u32,
        /// What to change there
        text: String,
    },
    /// Send an entry back to its agent with every comment on it (its ticket runs again)
    SendBack { entry: u64 },
    /// Stop landing (entries stay queued)
    Pause,
    /// Land again
    Resume,
}

fn state(e: &QueueEntry) -> String {
    match e.state {
        QueueState::AwaitingApproval => "AWAITING APPROVAL".into(),
        s => s.name().to_string(),
    }
}

pub fn run(ctx: &Ctx, cmd: QueueCmd) -> Result<()> {
    let b = ctx.backend()?;
    let act = |note: Option<String>| QueueAction {
        by: shopfloor::api::auth::local_user(),
        note,
        ..QueueAction::default()
    };
    match cmd {
        QueueCmd::List { json } => {
            let v = b.queue()?;
            if json {
                return print_json(&v);
            }
            if v.paused {
                say!("the queue is paused (`shopfloor queue resume` lands again)");
            }
            print_rows(
                &v.entries,
                &["ENTRY", "STATE", "PRIO", "TICKET", "BRANCH", "HEAD", "WHY"],
                |e| {
                    vec![
                        e.id.to_string(),
                        state(e),
                        e.priority.to_string(),
                        e.ticket.map_or("-".into(), |t| t.to_string()),
                        e.branch.clone(),
                        short_commit(&e.head).to_string(),
                        e.reason
                            .as_deref()
                            .and_then(|r| r.lines().next())
                            .unwrap_or("")
                            .to_string(),
                    ]
                },
                "the queue is empty",
            );
            let waiting = v
                .entries
                .iter()
                .filter(|e| e.state == QueueState::AwaitingApproval)
                .count();
            if waiting > 0 {
                say!(
                    "{waiting} waiting for a human: `shopfloor queue show ENTRY`, then `queue approve` or `queue reject`"
                );
            }
            Ok(())
        }
        QueueCmd::Show { entry, json } => {
            let d = b.queue_entry(entry)?;
            if json {
                return print_json(&d);
            }
            let e = &d.entry;
            say!("entry {} · {} · priority {}", e.id, state(e), e.priority);
            if let Some(t) = &d.title {
                say!("ticket {}: {t}", e.ticket.unwrap_or_default());
            }
            say!("branch {} at {}", e.branch, short_commit(&e.head));
            say!("queued {}", when(e.enqueued));
            if let Some(r) = &e.reason {
                say!("why: {r}");
            }
            say!(
                "diff: {} files, {} changed lines",
                d.files.len(),
                d.changed_lines
            );
            for f in &d.files {
                say!("  {f}");
            }
            match &e.verdict {
                Some(v) => {
                    say!("policy: {}", v.outcome().replace('_', " "));
                    for r in &v.reasons {
                        say!("  {r}");
                    }
                }
                None => say!("policy: not judged yet"),
            }
            match &e.approval {
                Some(a) if a.commit == e.head => say!(
                    "approved by {} at {}{}",
                    a.by,
                    short_commit(&a.commit),
                    a.note
                        .as_deref()
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default()
                ),
                Some(a) => say!(
                    "approval by {} is void: it was for {}, the branch is now at {}",
                    a.by,
                    short_commit(&a.commit),
                    short_commit(&e.head)
                ),
                None => {}
            }
            for (i, t) in e.tests.iter().enumerate() {
                say!(
                    "test run {}: {} on {} in {:.1} s{}{}",
                    i + 1,
                    if t.ok { "green" } else { "red" },
                    short_commit(&t.commit),
                    t.seconds,
                    if t.batch.len() > 1 {
                        format!(" (batch of {})", t.batch.len())
                    } else {
                        String::new()
                    },
                    if t.retry > 0 {
                        format!(" (flaky retry {})", t.retry)
                    } else {
                        String::new()
                    }
                );
            }
            for (commit, failed) in shopfloor::mergeq::flaky(e) {
                say!(
                    "flaky: the tests failed {failed} time(s) on {} and then passed on a retry",
                    short_commit(&commit)
                );
            }
            for r in &e.reviews {
                say!(
                    "review by run {} ({}) of {}: {}{}",
                    r.run,
                    r.agent,
                    short_commit(&r.head),
                    r.verdict.name(),
                    if r.head == e.head {
                        ""
                    } else {
                        " (of an earlier head)"
                    }
                );
                say!("  {}", r.summary.trim());
                for c in &r.comments {
                    say!("  {}:{}: {}", c.path, c.line, c.text.trim());
                }
            }
            if !e.comments.is_empty() {
                say!("comments:");
                for c in &e.comments {
                    say!("  {}", c.render());
                }
            }
            if let Some(t) = e.tests.last() {
                say!("--- last test log ---\n{}", t.log.trim_end());
            }
            if let Some(r) = e.run {
                say!("trace: shopfloor trace show {r}");
            }
            Ok(())
        }
        QueueCmd::Approve { entry, note } => {
            let e = b.queue_act(entry, "approve", act(note))?;
            say!(
                "entry {} approved at {}; it lands once green on the current main",
                e.id,
                short_commit(&e.head)
            );
            Ok(())
        }
        QueueCmd::Reject { entry, reason } => {
            let e = b.queue_act(entry, "reject", act(Some(reason)))?;
            // The reason says whether it was being tested: the person learns it holds.
            say!(
                "entry {} rejected: {}",
                e.id,
                e.reason.as_deref().unwrap_or("it will not land")
            );
            Ok(())
        }
        QueueCmd::Bump { entry } => {
            let e = b.queue_act(entry, "bump", act(None))?;
            say!(
                "entry {} moved to the front (priority {})",
                e.id,
                e.priority
            );
            Ok(())
        }
        QueueCmd::Comment {
            entry,
            path,
            line,
            text,
        } => {
            let a = QueueAction {
                path: Some(path),
                line: Some(line),
                ..act(Some(text))
            };
            let e = b.queue_act(entry, "comment", a)?;
            say!(
                "entry {} has {} comment{}; `shopfloor queue send-back {}` sends them to its agent",
                e.id,
                e.comments.len(),
                if e.comments.len() == 1 { "" } else { "s" },
                e.id
            );
            Ok(())
        }
        QueueCmd::SendBack { entry } => {
            let e = b.queue_act(entry, "send-back", act(None))?;
            say!(
                "entry {} sent back to its agent: {}",
                e.id,
                e.reason
                    .as_deref()
                    .and_then(|r| r.lines().next())
                    .unwrap_or("")
            );
            Ok(())
        }
        QueueCmd::Pause => {
            b.queue_pause(true, act(None))?;
            say!("the queue is paused: nothing lands until `shopfloor queue resume`");
            Ok(())
        }
        QueueCmd::Resume => {
            b.queue_pause(false, act(None))?;
            say!("the queue lands again");
            Ok(())
        }
    }
}

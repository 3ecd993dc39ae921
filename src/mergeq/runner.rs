//! The merge queue's loop in a running factory: recover once, then one turn at a time on a
//! blocking thread, whenever something wakes it or the poll comes round, until shutdown.
//! Whoever runs it (the factory) builds the queue for each turn and hears what it did.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::Turn;
use crate::model::QueueState;
use crate::workspace::Workspace;

/// What the loop needs from the process that owns the queue.
pub trait QueueOwner: Send + Sync + 'static {
    fn workspace(&self) -> &Workspace;
    /// Finish what a stopped factory left mid-turn (blocking).
    fn recover_queue(self: Arc<Self>) -> Result<(), String>;
    /// One turn of the queue (blocking).
    fn queue_turn(self: Arc<Self>) -> Result<Turn, String>;
    /// A turn that did something: tell the watchers, wake the scheduler for a bounce.
    fn turned(&self, turn: &Turn);
    /// Notified when the queue should look now (an approval, a resume, a new entry).
    fn queue_wake(&self) -> &Notify;
    /// How often the queue is looked at when nothing wakes it.
    fn poll(&self) -> Duration;
}

/// Run the queue until `shutdown` turns true. A turn in progress when the loop is aborted
/// finishes on its own thread; the next start recovers what a stop mid-turn leaves.
pub async fn run(owner: Arc<dyn QueueOwner>, mut shutdown: watch::Receiver<bool>) {
    let o = owner.clone();
    match tokio::task::spawn_blocking(move || o.recover_queue()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "the merge queue could not recover"),
        Err(e) => tracing::error!(error = %e, "the merge queue's recovery task failed"),
    }
    loop {
        if *shutdown.borrow() {
            return;
        }
        let mut busy = false;
        if !super::is_paused(&owner.workspace().info) {
            let o = owner.clone();
            let turn = tokio::task::spawn_blocking(move || {
                // New commits on the user's main reach ours first, so candidates are
                // built on the main people see.
                let waiting = o
                    .workspace()
                    .store
                    .queue_entries()
                    .map_err(|e| e.to_string())?
                    .iter()
                    .any(|e| matches!(e.state, QueueState::Queued | QueueState::Testing));
                if waiting && let Err(e) = super::clone::ensure(&o.workspace().info) {
                    tracing::warn!(error = %e, "could not refresh the clone from the user's repository");
                }
                o.queue_turn()
            })
            .await
            .unwrap_or_else(|e| Err(format!("the merge queue's turn task failed: {e}")));
            match turn {
                Ok(turn) => {
                    busy = !turn.is_idle();
                    if busy {
                        tracing::info!(?turn, "merge queue turn");
                        owner.turned(&turn);
                    }
                }
                Err(e) => tracing::error!(error = %e, "merge queue turn failed"),
            }
        }
        if busy {
            continue;
        }
        tokio::select! {
            _ = owner.queue_wake().notified() => {}
            _ = tokio::time::sleep(owner.poll()) => {}
            _ = shutdown.changed() => {}
        }
    }
}

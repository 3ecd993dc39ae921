//! Tickets: the work asked of the factory, and their lifecycle states.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{RunId, TicketId};

/// Ticket lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    Queued,
    Running,
    Review,
    Merged,
    Failed,
    Cancelled,
}

impl TicketState {
    pub fn name(self) -> &'static str {
        match self {
            TicketState::Queued => "queued",
            TicketState::Running => "running",
            TicketState::Review => "review",
            TicketState::Merged => "merged",
            TicketState::Failed => "failed",
            TicketState::Cancelled => "cancelled",
        }
    }
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TicketState::Merged | TicketState::Failed | TicketState::Cancelled
        )
    }
}

impl fmt::Display for TicketState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: TicketId,
    pub title: String,
    #[serde(default)]
    pub body: String,
    /// Higher runs first.
    #[serde(default)]
    pub priority: i32,
    /// The agent profile to run it with; None lets the scheduler choose.
    #[serde(default)]
    pub agent: Option<String>,
    /// Paths (globs) the ticket is expected to touch.
    #[serde(default)]
    pub paths: Vec<String>,
    /// What a host must offer to run it (`gpu`, `linux`): every label, on `[[hosts]]
    /// labels` (or `[factory] local_labels` for this machine).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    pub state: TicketState,
    pub created: Timestamp,
    pub updated: Timestamp,
    /// Runs made for this ticket, oldest first.
    #[serde(default)]
    pub runs: Vec<RunId>,
}

/// The order tickets are taken in and shown: higher priority first, then older, then the
/// lower id. The scheduler, the API's ticket list and the control room's board all sort by
/// it.
pub fn take_order(
    priority: i32,
    created: Timestamp,
    id: TicketId,
) -> (std::cmp::Reverse<i32>, Timestamp, TicketId) {
    (std::cmp::Reverse(priority), created, id)
}

impl Ticket {
    /// [`take_order`] of this ticket.
    pub fn take_order(&self) -> (std::cmp::Reverse<i32>, Timestamp, TicketId) {
        take_order(self.priority, self.created, self.id)
    }
}

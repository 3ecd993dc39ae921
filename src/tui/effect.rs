//! What the app asks for, as data: the loads it wants and the actions it wants done.
//! `runtime` carries them out through the API client; the overlays that ask before an
//! action (`forms`) hold one as their yes, which is why this sits apart from `app`.

use crate::model::{QueueEntryId, RunId, TicketId};
use crate::wire::{MemorySearch, MemoryWrite, NewTicket};

/// What can be loaded; the app keeps at most one request of each in flight and asks
/// again when the answer comes back stale, which is what coalesces a burst of events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Load {
    Status,
    Runs,
    Tickets,
    Queue,
    QueueDetail(QueueEntryId),
    PaneSteps(RunId),
    Outline(RunId),
    Step(RunId, u64),
}

/// What the app wants done; `runtime` does it through the API.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    Load(Load, LoadArgs),
    FileAt {
        run: RunId,
        seq: u64,
        path: String,
    },
    SearchRun {
        run: RunId,
        query: String,
    },
    SearchMemory {
        generation: u64,
        query: MemorySearch,
    },
    KillRun(RunId),
    RetryRun(RunId),
    AddTicket(NewTicket),
    CancelTicket(TicketId),
    SetPriority(TicketId, i32),
    QueueAct {
        id: QueueEntryId,
        verb: &'static str,
        note: Option<String>,
    },
    /// A person's comment on a line of an entry's diff.
    QueueComment {
        id: QueueEntryId,
        path: String,
        line: u32,
        text: String,
    },
    AddMemory(MemoryWrite),
    /// Ring the bell and raise a desktop notification: a person is needed.
    Notify(crate::notify::Notice),
    Quit,
}

/// Where a load starts (steps and outlines are fetched from what is already held).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadArgs {
    pub from: u64,
}

//! Plain data types shared by every room: tickets, runs, the typed trajectory, memories,
//! queue entries. Serde only; no I/O lives here.

mod blob;
mod memory;
mod paths;
mod queue;
mod run;
mod step;
mod ticket;
pub mod transitions;

pub use blob::*;
pub use memory::*;
pub use paths::*;
pub use queue::*;
pub use run::*;
pub use step::*;
pub use ticket::*;

pub type TicketId = u64;
pub type RunId = u64;
pub type MemoryId = u64;
pub type QueueEntryId = u64;

#[cfg(test)]
mod tests;

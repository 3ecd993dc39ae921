//! The control room's screens, in tab order. Each holds its state, what its keys do and
//! how it is drawn; they add to `App` what is theirs, and `app` dispatches to them.

pub mod fleet;
pub mod memory;
pub mod queue;
pub mod replay;
pub mod tickets;

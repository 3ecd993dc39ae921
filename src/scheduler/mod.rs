//! Tickets to runs. The decisions (what to start next, what to do after an exit, whether a
//! run has timed out, who holds a path) are pure functions over a snapshot, tested by the
//! hundred; the factory loop that carries them out lives beside them.

pub mod context;
pub mod decide;
pub mod factory;
pub mod leases;
pub mod placement;

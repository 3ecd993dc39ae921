//! shopfloor: a terminal control room for a local software factory of coding agents.
//!
//! The core (model, store, index, memory, trace, ...) knows nothing of the terminal; the CLI
//! and the TUI are views over it. See DESIGN.md for the map of rooms and invariants.

pub mod model;
pub mod redact;
pub mod store;
pub mod workspace;
pub mod index;
pub mod memory;
pub mod trace;
pub mod sandbox;
pub mod agent;
pub mod scheduler;
pub mod mergeq;
pub mod policy;
pub mod api;
pub mod tui;

//! shopfloor: a terminal control room for a local software factory of coding agents.
//!
//! The core (model, store, index, memory, trace, ...) knows nothing of the terminal; the CLI
//! and the TUI are views over it. See DESIGN.md for the map of rooms and invariants.

pub mod agent;
pub mod api;
pub mod config;
pub mod connect;
pub mod cost;
pub mod diffstat;
pub mod hosts;
pub mod index;
pub mod layout;
pub mod learn;
pub mod memory;
pub mod merge;
pub mod mergeq;
pub mod model;
pub mod notify;
pub mod policy;
pub mod private;
pub mod redact;
pub mod safe_text;
pub mod sandbox;
pub mod scheduler;
pub mod since;
pub mod spend;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod trace;
pub mod tui;
pub mod wire;
pub mod workspace;

//! Table definitions of the current schema. Values are JSON so fields can be added with
//! serde defaults without a migration; keys are fixed-width for ordered range scans.

use redb::TableDefinition;

/// Schema version and id counters.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub const TICKETS: TableDefinition<u64, &[u8]> = TableDefinition::new("tickets");
pub const RUNS: TableDefinition<u64, &[u8]> = TableDefinition::new("runs");
/// Keyed by (run, seq): a seek to any step of any run is one B-tree lookup.
pub const STEPS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("steps");
pub const MEMORIES: TableDefinition<u64, &[u8]> = TableDefinition::new("memories");
/// A memory's embedding, encoded by the memory room.
pub const MEMORY_VECTORS: TableDefinition<u64, &[u8]> = TableDefinition::new("memory_vectors");
/// A memory's history, keyed by (memory, n): written, recalled by which runs, repeated,
/// confirmed.
pub const MEMORY_EVENTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("memory_events");
/// Content-addressed by blake3.
pub const BLOBS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("blobs");
pub const QUEUE: TableDefinition<u64, &[u8]> = TableDefinition::new("queue");
pub const APPROVALS: TableDefinition<u64, &[u8]> = TableDefinition::new("approvals");
pub const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// The progress of each `trace import` still in progress, by run: see `model::ImportMark`.
pub const IMPORTS: TableDefinition<u64, &[u8]> = TableDefinition::new("imports");

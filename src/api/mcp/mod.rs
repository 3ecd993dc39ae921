//! MCP: the fleet's shared memory and traces as tools any MCP-speaking agent can call.
//!
//! - `tools`: the tools' names, descriptions, argument schemas and argument checks.
//! - `exec`: what a call does on the workspace, and the compact text it answers with.
//! - `service`: the server handler, and the stateless streamable-HTTP endpoint the
//!   factory mounts at `/mcp`.
//! - `stdio`: `shopfloor mcp`, the stdio server that forwards to a running factory or
//!   serves the store itself.
//!
//! | tool | arguments | answers |
//! |---|---|---|
//! | `memory_search` | `query`, `limit?`, `kinds?`, `paths?`, `since?` | short hits `[m42] lesson · ...` |
//! | `memory_write` | `kind`, `text`, `paths?`, `tags?` | the new memory's id; attributed to the caller's run |
//! | `trace_search` | `query`, `run?`, `agent?`, `limit?` | `[run 7 step 12] command · ...` |
//! | `trace_step` | `run`, `step` | the whole step |
//! | `wip` | | live runs, their tickets, leases, files touched |
//! | `lease` | `paths`, `ttl_s?` | leased, or who holds an overlap |
//! | `release` | `paths` | how many were released |
//! | `ticket_get` | `id` | the ticket |

pub mod exec;
pub mod service;
pub mod stdio;
pub mod tools;

pub use service::{McpService, http_service};

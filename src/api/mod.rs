//! The factory's local API: a JSON control API over HTTP on the workspace's Unix socket
//! (`factory.sock` in its data dir), and its client.
//!
//! - `wire`: what crosses the socket (request and response bodies, the error body).
//! - `ops`: what each operation does on an open workspace; the server's handlers and the
//!   CLI's direct path both call these, so both answer alike.
//! - `server`: the routes (axum), binding the socket, serving until shutdown.
//! - `client`: typed calls over the socket (hyper).
//! - `backend`: the one place that decides whether a command works on the store itself
//!   or asks the factory that holds it.
//!
//! Routes (all JSON unless said):
//!
//! | route | does |
//! |---|---|
//! | `GET /v1/health` | who answers: workspace name, version |
//! | `GET /v1/workspace` | counts of tickets, runs, steps, memories |
//! | `GET /v1/tickets?state=` | tickets, in scheduling order |
//! | `POST /v1/tickets` | add a ticket |
//! | `GET /v1/tickets/{id}` | one ticket |
//! | `POST /v1/tickets/{id}/cancel` | cancel it |
//! | `GET /v1/runs` | runs |
//! | `POST /v1/runs/import` | import a trace file (absolute path on this machine) |
//! | `GET /v1/runs/{id}` | one run |
//! | `GET /v1/runs/{id}/steps?from=&to=` | steps `from..to`, payloads as stored |
//! | `GET /v1/runs/{id}/steps/{seq}` | one step, payloads inline |
//! | `GET /v1/runs/{id}/export?format=` | the run as JSONL, or OTLP/JSON spans with `otlp` (`application/x-ndjson`), streamed |
//! | `POST /v1/steps/search` | full-text search over steps |
//! | `POST /v1/memory` | write a memory |
//! | `POST /v1/memory/search` | hybrid recall, every `RecallQuery` field |
//! | `POST /v1/memory/import?author=` | import a JSON Lines body |
//! | `GET /v1/queue` | the merge queue in landing order, and whether it is paused |
//! | `GET /v1/queue/{id}` | one entry with its diff stat and ticket title |
//! | `POST /v1/queue/{id}/approve` / `reject` / `bump` | `{by, note}`: a human's action |
//! | `POST /v1/queue/pause` / `resume` | `{by}` |
//! | `GET /v1/audit` | the audit log, oldest first |
//! | `POST /v1/sessions/sync` | record a hand-run Claude Code session (its hook's payload) |
//! | `/mcp` | MCP, streamable HTTP (stateless, JSON answers): see `mcp` |
//!
//! Callers: a person on the socket needs no token (the socket is 0600); a run's agent
//! presents its token and reaches only `/mcp` and `/v1/health` (see `auth`).
//!
//! Errors are `{"error": "...", "kind": "...", "causes": [...]}` with a 4xx/5xx status.

pub mod auth;
pub mod backend;
pub mod client;
pub mod listen;
pub mod mcp;
pub mod ops;
pub mod server;

use std::path::PathBuf;

pub use crate::wire::{ErrorKind, OpError};
pub use backend::Backend;
pub use client::Client;
pub use listen::serve;
pub use server::{Api, AppState, api};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The operation itself failed (not found, invalid, storage...): its message is what
    /// the command would have said had it done the work directly.
    #[error(transparent)]
    Op(#[from] OpError),
    #[error(
        "a factory already runs for workspace `{workspace}` (it answers on {socket}); \
         use it through `shopfloor` commands, or stop it before starting another"
    )]
    AlreadyRunning { workspace: String, socket: PathBuf },
    #[error(
        "no factory answers on {socket} ({detail}); start one with `shopfloor serve`, \
         or run the command again once the process holding the workspace has finished"
    )]
    NotAnswering { socket: PathBuf, detail: String },
    #[error("cannot listen on {socket}: {source}")]
    Bind {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the factory on {socket} broke off the request: {detail}")]
    Transport { socket: PathBuf, detail: String },
    #[error(
        "the factory's answer is not what this shopfloor expects ({detail}); \
         are the CLI and the factory the same version?"
    )]
    Protocol { detail: String },
    #[error("the API server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Tokens(#[from] auth::TokenError),
}

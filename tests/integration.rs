//! Every integration test, as modules of one test binary: each `tests/<name>.rs` is the
//! module `<name>`, sharing `common` (a temp shopfloor home, real git repositories, the
//! factory, tmux, Docker, agent CLIs, model servers and test hosts). One binary instead of
//! one per file: every file's binary linked the whole crate and its dependencies again,
//! so the suite took 38 links and gigabytes of `target/` (see the README's "Building").
//!
//! `cargo test --test integration <module>::` runs one file's tests, e.g.
//! `SHOPFLOOR_STRESS_ROUNDS=10 cargo test --test integration concurrency::`.

mod common;
mod queue_model;

mod agent_fixture;
mod api_control_room;
mod api_routing;
mod cli_trace_memory;
mod cli_workspace;
mod concurrency;
mod connect;
mod demo;
mod factory;
mod hooks;
mod hostile;
mod hosts;
mod import_fuzz;
mod import_resume;
mod long_prompts;
mod malicious_agent;
mod mcp;
mod merge_queue;
mod module_graph;
mod otel;
mod policy;
mod queue_factory;
mod queue_gates;
mod queue_properties;
mod real_agents;
mod real_cli;
mod real_review;
mod redaction;
mod remote_runs;
mod review;
mod sandbox_docker;
mod sandbox_worktree;
mod terminal_output;
mod trace_import;
mod tui;
mod up;

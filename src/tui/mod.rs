//! The control room (issue 6): a ratatui view over the factory's API and event stream.
//! `app` is the state and its pure update (messages in, effects out) and `view` draws
//! it; each screen (`screens::{fleet, tickets, replay, queue, memory}`) holds its own
//! state, keys and drawing. `runtime` owns the terminal and the loop and carries effects
//! out through the API client, so the UI holds no store handle. `effect` is what the app
//! asks for; `forms`, `scrollback`, `help`, `status` and `widgets` are shared parts;
//! `theme` and `keymap` are data, their slot and action names enums (`names`).

pub mod app;
pub mod effect;
pub mod forms;
pub mod help;
pub mod keymap;
pub mod names;
pub mod runtime;
pub mod screens;
pub mod scrollback;
pub mod status;
pub mod theme;
pub mod view;
pub mod widgets;

/// The fleet screen under its old path (benches name `tui::fleet`).
pub use screens::fleet;

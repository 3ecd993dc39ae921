//! The control room (issue 6): a ratatui view over the factory's API and event stream.
//! `app` is the state and its pure update (messages in, effects out); `view` draws it;
//! `runtime` owns the terminal and the loop and carries effects out through the API
//! client, so the UI holds no store handle. `fleet`, `forms`, `replay` (the cursor),
//! `scrollback`, `help`, `status`, `theme` and `keymap` are the parts.

pub mod app;
pub mod fleet;
pub mod forms;
pub mod help;
pub mod keymap;
pub mod replay;
pub mod runtime;
pub mod scrollback;
pub mod status;
pub mod theme;
pub mod view;

//! The control room (issue 6): a ratatui view over the factory's API and event stream.
//! What is here so far: `theme` (semantic slots from `themes/*.toml`) and `keymap`
//! (bindings from `assets/keymap.toml`), both patched by the user's own files and both
//! tolerant of broken ones; `scrollback`, a pane's bounded, ANSI-parsed output; `help`,
//! the `?` overlay drawn from the live keymap; `status`, the bar every screen shows; and
//! `replay`, the pure cursor the replay keys move.
//! The screens and the app loop arrive with the rest of issue 6.

pub mod help;
pub mod keymap;
pub mod replay;
pub mod scrollback;
pub mod status;
pub mod theme;

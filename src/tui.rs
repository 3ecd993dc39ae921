//! The control room: ratatui app loop, screens, widgets, theme, keymap. Arrives with issue 6.

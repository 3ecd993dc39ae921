//! Rules from config: human-gated paths, denied paths, size limits. Arrives with issue 5.

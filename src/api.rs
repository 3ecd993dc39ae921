//! The factory's local API (control + MCP) and its client. Arrives with issue 4.

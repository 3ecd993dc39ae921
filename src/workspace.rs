//! Workspaces. (in progress)

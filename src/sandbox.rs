//! Sandboxes for runs: one trait, a git worktree backend (git2) and a Docker backend
//! (bollard). Arrives with the factory runtime (issue 3).

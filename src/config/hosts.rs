//! `[[hosts]]`: machines runs may go to over SSH.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where runs go on a host: a checkout of their own, or a container.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HostBackend {
    #[default]
    Worktree,
    Docker,
}

impl HostBackend {
    pub fn name(self) -> &'static str {
        match self {
            HostBackend::Worktree => "worktree",
            HostBackend::Docker => "docker",
        }
    }
}

/// One `[[hosts]]` entry.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    pub name: String,
    /// `user@host[:port]` (`[::1]:2222` for an IPv6 address).
    pub ssh: String,
    /// The private key to log in with; the SSH agent and `~/.ssh/config` otherwise.
    #[serde(default)]
    pub identity: Option<PathBuf>,
    /// Runs at once on it.
    #[serde(default = "one")]
    pub slots: usize,
    #[serde(default)]
    pub backend: HostBackend,
    /// Where the host keeps its mirror and its sandboxes (relative: to the login's home).
    #[serde(default = "default_work_dir")]
    pub work_dir: String,
    /// What tickets may ask of it (`gpu`, `linux`, ...).
    #[serde(default)]
    pub labels: Vec<String>,
    /// The Docker image runs use there; `[sandbox] image` when unset.
    #[serde(default)]
    pub image: Option<String>,
}

fn one() -> usize {
    1
}

pub(crate) fn default_work_dir() -> String {
    ".shopfloor-host".into()
}

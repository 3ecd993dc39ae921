//! Sandboxes for runs: one trait, two backends.
//!
//! - [`worktree`]: the agent runs as a child process in its checkout, with a scrubbed
//!   environment, in its own process group. Needs nothing installed.
//! - [`docker`]: the same checkout, bind-mounted into a locked-down container (no
//!   capabilities, read-only root, no network by default, resource limits).
//!
//! Both start from [`checkout::prepare`]: a repository of the run's own on a fresh branch
//! `shopfloor/<ticket>-<attempt>` from the clone's base branch, borrowing the clone's objects
//! read-only, outside the user's checkout (invariant 7); [`checkout::commit_leftovers`]
//! brings the branch back. Every process or container a backend starts carries the
//! workspace and run as labels, so a restarted factory can find and reap what a crashed one
//! left behind (invariant 5).

pub mod checkout;
pub mod docker;
pub mod lines;
pub mod ports;
pub mod remote;
pub mod worktree;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

pub use checkout::{
    Leftovers, PrepareSpec, Prepared, commit_leftovers, prepare, prepare_review, remove, seal,
};
pub use docker::DockerSandbox;
pub use worktree::WorktreeSandbox;

/// Labels: the environment variable names a worktree-backend process carries, and the
/// container label keys of the Docker backend.
pub const ENV_WORKSPACE: &str = "SHOPFLOOR_WORKSPACE";
pub const ENV_RUN: &str = "SHOPFLOOR_RUN";
/// Set only on processes a sandbox started. `SHOPFLOOR_WORKSPACE` alone is not enough to
/// reap by: users set it in their own shells to pick a workspace for the CLI.
pub const ENV_SANDBOX: &str = "SHOPFLOOR_SANDBOX";
pub use crate::config::sandbox::{BASE_ENV, BackendChoice, SandboxConfig};
pub use crate::layout::{LABEL_RUN, LABEL_WORKSPACE};

/// The largest limits `[sandbox]` accepts: far above any machine, far below overflow.
const MAX_CPUS: f64 = 1024.0;
const MAX_MEMORY_MB: u64 = 4 << 20;
const MAX_PIDS: i64 = 4 << 20;

impl SandboxConfig {
    pub fn validate(&self) -> Result<(), SandboxError> {
        let bad = |what: &str| {
            Err(SandboxError::BadConfig {
                // The key the message starts with, so the config's error names its line.
                key: what
                    .strip_prefix("sandbox.")
                    .and_then(|k| k.split(' ').next())
                    .map(str::to_string),
                message: what.to_string(),
            })
        };
        // Upper bounds too: a value past them would overflow into no limit at all when
        // converted for the engine (1e308 CPUs, memory_mb near i64::MAX).
        if !(self.cpus.is_finite() && self.cpus > 0.0 && self.cpus <= MAX_CPUS) {
            return bad("sandbox.cpus must be a number of CPUs from 0.01 to 1024, e.g. 2.0");
        }
        if !(16..=MAX_MEMORY_MB).contains(&self.memory_mb) {
            return bad(
                "sandbox.memory_mb must be from 16 to 4194304 (MiB, i.e. 4 TiB), e.g. 4096",
            );
        }
        if !(1..=MAX_PIDS).contains(&self.pids) {
            return bad("sandbox.pids must be from 1 to 4194304, e.g. 512");
        }
        if self.network.trim().is_empty() {
            return bad("sandbox.network must name a Docker network mode, e.g. \"none\"");
        }
        if self.image.trim().is_empty() {
            return bad("sandbox.image must name an image, e.g. \"shopfloor-agent:latest\"");
        }
        if self
            .setup
            .iter()
            .chain(&self.teardown)
            .any(|c| c.trim().is_empty())
        {
            return bad("sandbox.setup and sandbox.teardown hold commands; remove the empty one");
        }
        if self.ports > 1000 {
            return bad("sandbox.ports must be from 0 (none) to 1000 ports a run, e.g. 10");
        }
        if self.ports > 0 && self.port_base < 1024 {
            return bad(
                "sandbox.port_base must be 1024 or above (ports below need root), e.g. 20000",
            );
        }
        if self.ports > 0 && ports::PortBlocks::new(self.port_base, self.ports).capacity() < 16 {
            return bad(
                "sandbox.port_base leaves room for fewer than 16 runs' blocks below 65535; lower it or give fewer ports",
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Worktree,
    Docker,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Worktree => "worktree",
            BackendKind::Docker => "docker",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("git error in {path}: {message}")]
    Git { path: PathBuf, message: String },
    #[error("base branch `{base}` not found in {repo}; fetch it into the workspace's clone first")]
    NoBase { base: String, repo: PathBuf },
    #[error(
        "worktree root {root} is inside the user's checkout {checkout}; sandboxes must live in \
         the workspace's data directory (invariant 7)"
    )]
    InsideCheckout { root: PathBuf, checkout: PathBuf },
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start `{program}` in {dir}: {source}; check the agent command and its PATH")]
    Spawn {
        program: String,
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("empty command: give the agent's program and its arguments")]
    EmptyCommand,
    #[error(
        "no Docker engine answers ({detail}); start it, or set `[sandbox] backend = \"worktree\"` \
         in shopfloor.toml"
    )]
    NoDocker { detail: String },
    #[error(
        "Docker image `{image}` not found locally; build it with `docker build -t {image} -f \
         assets/docker/Dockerfile.agent .` (or `scripts/build-test-image.sh` for the registry-free \
         test image), or set `[sandbox] backend = \"worktree\"`"
    )]
    NoImage { image: String },
    #[error("Docker engine error while {action}: {detail}")]
    Docker { action: String, detail: String },
    #[error("{detail}")]
    Host { detail: String },
    #[error(
        "host `{host}` stopped answering (its SSH keepalives went unanswered); the run goes to another host and `{host}` stays down until `shopfloor host check {host}` passes"
    )]
    HostLost { host: String },
    #[error("invalid sandbox config: {message}")]
    BadConfig {
        key: Option<String>,
        message: String,
    },
}

impl SandboxError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SandboxError {
        let path = path.into();
        move |source| SandboxError::Io { path, source }
    }
}

/// What identifies a launched process as belonging to a workspace's run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    pub workspace: String,
    pub run: u64,
}

#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// Program and arguments; not run through a shell.
    pub argv: Vec<String>,
    /// Added to the allowlisted environment (and may override it).
    pub env: Vec<(String, String)>,
    /// The prepared worktree.
    pub workdir: PathBuf,
    pub labels: Labels,
    /// The factory's sandboxes' socket (run tokens only), for the agent's MCP client. A
    /// worktree agent reaches it where it is; a container gets it bind-mounted at
    /// [`docker::SOCKET_MOUNT`].
    pub socket: Option<PathBuf>,
    /// Host paths the sandbox reads at the same path (the clone's objects, which the
    /// checkout borrows): mounted read-only in a container, already readable on the host.
    pub read_only: Vec<PathBuf>,
    /// The checkout itself is mounted read-only (a review run).
    pub workdir_read_only: bool,
}

/// One line of a process's output, without its newline. A line longer than
/// [`lines::MAX_LINE`] is cut there and ends with [`lines::TRUNCATED_MARKER`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

/// How a process ended: an exit code, or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl Exit {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Control of a launched process, usable from several tasks at once (one waits while
/// another kills).
#[async_trait]
pub trait ProcessControl: Send + Sync {
    /// For display: a pid or a short container id.
    fn id(&self) -> String;
    /// Stop the process and everything it started; returns within about a second.
    async fn kill(&self) -> Result<(), SandboxError>;
    /// Wait for the process to end. May be called more than once.
    async fn wait(&self) -> Result<Exit, SandboxError>;
}

/// The status a process's waiter task publishes, once it has; None when the waiter ended
/// without one. Every backend's `wait` reads its status this way.
pub(crate) async fn published<T: Clone>(
    status: &tokio::sync::watch::Receiver<Option<T>>,
) -> Option<T> {
    let mut rx = status.clone();
    rx.wait_for(|s| s.is_some())
        .await
        .ok()
        .and_then(|s| s.clone())
}

pub struct Process {
    /// Lines as they are printed. Closes when the process's output ends.
    pub output: tokio::sync::mpsc::Receiver<Output>,
    pub control: Box<dyn ProcessControl>,
}

#[async_trait]
pub trait Sandbox: Send + Sync {
    fn kind(&self) -> BackendKind;
    async fn launch(&self, spec: LaunchSpec) -> Result<Process, SandboxError>;
    /// Kill whatever an earlier factory of `workspace` left running; returns how many
    /// processes or containers it removed. Call at startup, before launching anything:
    /// processes this sandbox object launched itself are left alone.
    async fn reap_orphans(&self, workspace: &str) -> Result<usize, SandboxError>;
}

/// The sandbox the config asks for. `auto` picks Docker when an engine answers and the
/// image exists locally, else the worktree backend; an explicit `docker` that cannot be
/// had is an error that says how to fix it, never a silent downgrade.
pub async fn choose(cfg: &SandboxConfig) -> Result<Arc<dyn Sandbox>, SandboxError> {
    cfg.validate()?;
    match cfg.backend {
        BackendChoice::Worktree => Ok(Arc::new(WorktreeSandbox::new(cfg))),
        BackendChoice::Docker => Ok(Arc::new(DockerSandbox::connect(cfg).await?)),
        BackendChoice::Auto => match DockerSandbox::connect(cfg).await {
            Ok(d) => Ok(Arc::new(d)),
            Err(e) => {
                tracing::info!(reason = %e, "sandbox: using the worktree backend");
                Ok(Arc::new(WorktreeSandbox::new(cfg)))
            }
        },
    }
}

/// The environment a sandboxed process starts with: the allowlisted variables present in
/// the factory's environment, then the launch's own, then the labels (last, so a launch
/// cannot forge another run's labels).
pub(crate) fn build_env(
    allowed: &[String],
    skip: &[&str],
    spec: &LaunchSpec,
    backend: BackendKind,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |k: &str, v: String, env: &mut Vec<(String, String)>| {
        env.retain(|(ek, _)| ek != k);
        env.push((k.to_string(), v));
    };
    for name in allowed {
        if skip.contains(&name.as_str()) {
            continue;
        }
        if let Ok(v) = std::env::var(name) {
            set(name, v, &mut env);
        }
    }
    for (k, v) in &spec.env {
        set(k, v.clone(), &mut env);
    }
    set(ENV_WORKSPACE, spec.labels.workspace.clone(), &mut env);
    set(ENV_RUN, spec.labels.run.to_string(), &mut env);
    set(ENV_SANDBOX, backend.to_string(), &mut env);
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_unknown_keys() {
        let c: SandboxConfig = toml::from_str("").unwrap();
        assert_eq!(c, SandboxConfig::default());
        assert_eq!(c.network, "none");
        let c: SandboxConfig = toml::from_str("backend = \"docker\"\ncpus = 0.5").unwrap();
        assert_eq!(c.backend, BackendChoice::Docker);
        assert!(toml::from_str::<SandboxConfig>("backend = \"vm\"").is_err());
        assert!(toml::from_str::<SandboxConfig>("cpu = 1.0").is_err());
        for bad in [
            SandboxConfig {
                cpus: f64::NAN,
                ..Default::default()
            },
            SandboxConfig {
                cpus: 1e308,
                ..Default::default()
            },
            SandboxConfig {
                memory_mb: i64::MAX as u64 - 1,
                ..Default::default()
            },
            SandboxConfig {
                memory_mb: u64::MAX,
                ..Default::default()
            },
            SandboxConfig {
                pids: i64::MAX,
                ..Default::default()
            },
            SandboxConfig {
                pids: 0,
                ..Default::default()
            },
        ] {
            let e = bad.validate().unwrap_err().to_string();
            assert!(e.contains("must be"), "{e}");
        }
        assert!(
            SandboxConfig {
                cpus: 1024.0,
                memory_mb: 4 << 20,
                pids: 4 << 20,
                ..Default::default()
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn base_env_always_passes_and_labels_win() {
        let cfg = SandboxConfig {
            env_allow: vec!["EXTRA".into()],
            ..Default::default()
        };
        let names = cfg.allowed_env_names();
        assert!(names.contains(&"PATH".to_string()) && names.contains(&"EXTRA".to_string()));
        let spec = LaunchSpec {
            argv: vec!["true".into()],
            env: vec![(ENV_RUN.into(), "999".into()), ("A".into(), "1".into())],
            workdir: PathBuf::from("/"),
            labels: Labels {
                workspace: "w".into(),
                run: 7,
            },
            socket: None,
            read_only: vec![],
            workdir_read_only: false,
        };
        let env = build_env(&names, &["HOME"], &spec, BackendKind::Worktree);
        assert!(env.iter().any(|(k, v)| k == ENV_RUN && v == "7"));
        assert!(!env.iter().any(|(k, v)| k == ENV_RUN && v == "999"));
        assert!(env.iter().any(|(k, v)| k == "A" && v == "1"));
        assert!(!env.iter().any(|(k, _)| k == "HOME"));
    }
}

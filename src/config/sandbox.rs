//! `[sandbox]`: where and how runs are held (worktree or Docker) and what they may use.

use serde::Deserialize;

/// The image `auto` looks for and `docker` uses unless configured otherwise.
pub const DEFAULT_IMAGE: &str = "shopfloor-agent:latest";

/// Environment variables every sandboxed process receives from the factory's environment
/// (when set there), whatever `env_allow` says: without them most tools do not start.
pub const BASE_ENV: &[&str] = &[
    "PATH", "HOME", "LANG", "LC_ALL", "TERM", "USER", "TMPDIR", "RUST_LOG",
];

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    #[default]
    Auto,
    Worktree,
    Docker,
}

/// `[sandbox]` in `shopfloor.toml`.
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// `auto` (Docker when an engine answers and the image exists, else worktree),
    /// `worktree` or `docker`.
    pub backend: BackendChoice,
    /// Docker image the agent runs in.
    pub image: String,
    /// Docker: CPUs the container may use (fractions allowed).
    pub cpus: f64,
    /// Docker: memory limit in MiB (swap included, so it is a hard limit).
    pub memory_mb: u64,
    /// Docker: maximum number of processes in the container (fork bombs stop here).
    pub pids: i64,
    /// Docker: the container's network mode; `none` means loopback only.
    pub network: String,
    /// Git pathspec globs (relative to the checkout root) of git-ignored files copied from
    /// the user's checkout into each new worktree, e.g. local `.env` files the tests need.
    pub include: Vec<String>,
    /// Environment variables passed through to the agent. [`BASE_ENV`] always passes.
    pub env_allow: Vec<String>,
    /// Commands run (`sh -c`) in each new sandbox before the agent starts, in order, with
    /// the agent's sandbox and ports: their output becomes steps, and a failure ends the run
    /// with the setup's output as its lesson. E.g. `["npm ci"]`.
    pub setup: Vec<String>,
    /// Commands run in the sandbox after the agent has ended (stop what setup started);
    /// a failure is recorded as a step and changes nothing else.
    pub teardown: Vec<String>,
    /// TCP ports each run gets to itself (`SHOPFLOOR_PORT`, `SHOPFLOOR_PORTS`); 0: none.
    pub ports: u16,
    /// The first port of the first block.
    pub port_base: u16,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            backend: BackendChoice::Auto,
            image: DEFAULT_IMAGE.to_string(),
            cpus: 2.0,
            memory_mb: 4096,
            pids: 512,
            network: "none".to_string(),
            include: vec![".env".to_string(), ".env.*".to_string()],
            env_allow: BASE_ENV.iter().map(|s| s.to_string()).collect(),
            setup: Vec::new(),
            teardown: Vec::new(),
            ports: 0,
            port_base: DEFAULT_PORT_BASE,
        }
    }
}

impl SandboxConfig {
    /// The names of the variables a sandboxed process inherits: [`BASE_ENV`] plus
    /// `env_allow`, without duplicates.
    pub fn allowed_env_names(&self) -> Vec<String> {
        let mut names: Vec<String> = BASE_ENV.iter().map(|s| s.to_string()).collect();
        for n in &self.env_allow {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        names
    }
}

/// The first port handed out, unless `[sandbox] port_base` says otherwise: above the
/// well-known and registered ports most dev servers use, below the ephemeral range.
pub const DEFAULT_PORT_BASE: u16 = 20000;

//! `shopfloor.toml`, the team-shared configuration at the repository root. A missing file
//! means the defaults; an unknown key or a bad value is an error naming its line, because a
//! typo silently ignored is a policy silently not applied.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use std::collections::BTreeMap;

pub mod agents;
pub mod hosts;
pub mod merge;
pub mod notify;
pub mod prices;
pub mod redact;
pub mod sandbox;
pub mod telemetry;

use agents::{Adapter, AgentProfile};
use redact::RedactConfig;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub factory: FactoryConfig,
    pub sandbox: sandbox::SandboxConfig,
    /// Agent profiles by name: `[agents.NAME]`.
    pub agents: BTreeMap<String, AgentProfile>,
    pub test: TestConfig,
    /// Secret redaction applied to every step and memory before it is stored.
    pub redact: RedactConfig,
    pub memory: MemoryConfig,
    pub api: ApiConfig,
    pub policy: PolicyConfig,
    /// `[merge]`: how the merge queue lands branches.
    pub merge: merge::MergeConfig,
    /// `[prices."MODEL"]`: USD per million tokens, for agents that report no cost.
    pub prices: prices::PricesConfig,
    /// `[notify]`: the bell and desktop notifications, and a command for each notice.
    pub notify: notify::NotifyConfig,
    /// `[review]`: agent review of queue entries after their tests pass.
    pub review: ReviewConfig,
    /// `[telemetry]`: runs exported as OpenTelemetry spans (OTLP/HTTP), and what they hold.
    pub telemetry: telemetry::TelemetryConfig,
    /// `[[hosts]]`: machines runs may go to over SSH.
    pub hosts: Vec<hosts::HostConfig>,
}

/// `[review]`: which agent reviews which changes, after the tests pass and before a
/// person's gate.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewConfig {
    /// Reviewer profiles in order of preference; the first that is not the profile which
    /// wrote the change reviews it (the same profile only when it is the only one named).
    /// Empty: no agent review.
    pub agents: Vec<String>,
    /// Review only changes touching these paths (gitignore-style globs); empty: every change.
    pub paths: Vec<String>,
    /// Seconds a review run may take.
    pub timeout_s: u64,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        ReviewConfig {
            agents: Vec::new(),
            paths: Vec::new(),
            timeout_s: 900,
        }
    }
}

impl ReviewConfig {
    /// Whether a change touching `changed` is to be reviewed.
    pub fn wants(&self, changed: &[String]) -> bool {
        if self.agents.is_empty() {
            return false;
        }
        if self.paths.is_empty() {
            return true;
        }
        match self.globs() {
            Ok(set) => changed.iter().any(|p| set.is_match(p)),
            Err(_) => true,
        }
    }

    fn globs(&self) -> Result<globset::GlobSet, String> {
        let mut b = globset::GlobSetBuilder::new();
        for p in &self.paths {
            let pat = p.trim_start_matches('/');
            // `dir/` means everything under it, as in .gitignore.
            let pat = match pat.strip_suffix('/') {
                Some(d) => format!("{d}/**"),
                None => pat.to_string(),
            };
            b.add(
                globset::GlobBuilder::new(&pat)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| format!("[review] paths: `{p}` is not a glob: {e}"))?,
            );
        }
        b.build().map_err(|e| format!("[review] paths: {e}"))
    }

    /// The reviewer for a change written by `author`: the first listed profile that is
    /// not the author's.
    pub fn reviewer_for(&self, author: &str) -> Option<&str> {
        self.agents
            .iter()
            .find(|a| *a != author)
            .or(self.agents.first())
            .map(String::as_str)
    }
}

/// `[policy]`: what a change may touch and how big it may be before it lands.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Ordered `ACTION GLOB` lines (`approve`, `deny`, `allow`), gitignore-style globs;
    /// for each changed path the last matching line decides.
    pub paths: Vec<String>,
    /// Added plus deleted lines over the whole diff above which a human must approve;
    /// 0 means no limit.
    pub max_changed_lines: u64,
    /// Checks that must be green before landing; "test" is the `[test]` command.
    pub required_checks: Vec<String>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            paths: vec![],
            max_changed_lines: 0,
            required_checks: vec!["test".into()],
        }
    }
}

/// `[api]`: how agents reach the factory besides its Unix socket.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// A loopback `address:port` to also serve the API and MCP on, for containers that
    /// cannot reach the socket (a run's token is required there). Unset: socket only.
    pub listen: Option<String>,
}

impl ApiConfig {
    /// The TCP address to listen on, if any; only loopback addresses are accepted, since
    /// the port serves a workspace's memory.
    pub fn listen_addr(&self) -> Result<Option<std::net::SocketAddr>, String> {
        let Some(l) = &self.listen else {
            return Ok(None);
        };
        let addr: std::net::SocketAddr = l.parse().map_err(|_| {
            format!("[api] listen = \"{l}\" is not an address:port like \"127.0.0.1:7300\"")
        })?;
        if !addr.ip().is_loopback() {
            return Err(format!(
                "[api] listen = \"{l}\" is not a loopback address; the API serves the workspace's memory, so only 127.0.0.1 or ::1 is allowed"
            ));
        }
        Ok(Some(addr))
    }
}

/// `[factory]`: how many runs, how long, how often to retry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FactoryConfig {
    pub concurrency: usize,
    pub max_attempts: u32,
    pub timeout_s: u64,
    pub quiet_timeout_s: u64,
    pub default_agent: String,
    /// The learning loop: a failed run's digest heads its retry's prompt and becomes a
    /// lesson in memory. On by default; off only to measure what it is worth (without
    /// it a retry is told only how the last attempt ended).
    pub learning: bool,
    /// Dollars one ticket may cost over all its attempts: a run that crosses it is stopped
    /// and the ticket fails with the reason. None: no limit.
    pub max_cost_usd: Option<f64>,
    /// Dollars the workspace may spend a day (UTC): once spent, nothing new starts until
    /// the next day. None: no limit.
    pub budget_usd_per_day: Option<f64>,
    /// Runs at once on this machine (the host `local`); `concurrency` when unset, 0 to
    /// send every run to `[[hosts]]`. `concurrency` caps all hosts together.
    pub local_slots: Option<usize>,
    /// What this machine offers tickets' labels (`[[hosts]] labels` for the others).
    pub local_labels: Vec<String>,
}

impl FactoryConfig {
    /// Runs at once on this machine.
    pub fn local_slots(&self) -> usize {
        self.local_slots.unwrap_or(self.concurrency)
    }
}

impl Default for FactoryConfig {
    fn default() -> Self {
        FactoryConfig {
            concurrency: 4,
            max_attempts: 2,
            timeout_s: 3600,
            quiet_timeout_s: 600,
            default_agent: "claude".into(),
            learning: true,
            max_cost_usd: None,
            budget_usd_per_day: None,
            local_slots: None,
            local_labels: Vec::new(),
        }
    }
}

/// `[test]`: what the merge queue runs on a candidate.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestConfig {
    pub command: Option<String>,
    /// Whether merge tests in a Docker sandbox get a network (`bridge`); off by default,
    /// like agents' runs.
    pub network: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// A model2vec model directory to embed with instead of the built-in model.
    pub model: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}:{}{message}", line.map(|l| format!("{l}: ")).unwrap_or_else(|| " ".into()))]
    Semantic {
        path: PathBuf,
        /// The line of the offending key, or of its table when the key is not written.
        line: Option<usize>,
        message: String,
    },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Config {
    /// The agent profiles in force: the configured ones, or, when none is configured,
    /// one per real agent CLI (`claude`, `codex`, `gemini`).
    pub fn agent_profiles(&self) -> BTreeMap<String, AgentProfile> {
        if !self.agents.is_empty() {
            return self.agents.clone();
        }
        [
            ("claude", Adapter::ClaudeCode),
            ("codex", Adapter::Codex),
            ("gemini", Adapter::Gemini),
        ]
        .into_iter()
        .map(|(n, a)| (n.to_string(), AgentProfile::new(a)))
        .collect()
    }

    /// Checks that need the whole file but no other room: values in range, names that
    /// resolve (the default agent, reviewers). Each error names the key to fix; with the
    /// file's `text`, its line. `workspace::check_config` adds the rooms' own checks.
    pub fn validate(&self, path: &Path, text: Option<&str>) -> Result<(), ConfigError> {
        let bad = |table: &str, key: Option<&str>, message: String| ConfigError::Semantic {
            path: path.to_path_buf(),
            line: text.and_then(|t| key_line(t, table, key)),
            message,
        };
        let f = &self.factory;
        if f.concurrency == 0 {
            return Err(bad(
                "factory",
                Some("concurrency"),
                "[factory] concurrency must be at least 1".into(),
            ));
        }
        if let Some(l) = f.local_labels.iter().find(|l| !crate::model::is_label(l)) {
            return Err(bad(
                "factory",
                Some("local_labels"),
                format!(
                    "[factory] local_labels: \"{l}\" is not a word (letters, digits, `-`, `_`, `.`)"
                ),
            ));
        }
        if f.local_slots == Some(0) && self.hosts.is_empty() {
            return Err(bad(
                "factory",
                Some("local_slots"),
                "[factory] local_slots = 0 sends every run to [[hosts]], and none is listed; add one or raise local_slots".into(),
            ));
        }
        if f.max_attempts == 0 {
            return Err(bad(
                "factory",
                Some("max_attempts"),
                "[factory] max_attempts must be at least 1".into(),
            ));
        }
        for (key, v) in [
            ("max_cost_usd", f.max_cost_usd),
            ("budget_usd_per_day", f.budget_usd_per_day),
        ] {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                return Err(bad(
                    "factory",
                    Some(key),
                    format!(
                        "[factory] {key} = {v} is not a budget; give dollars above 0 (e.g. 5.0), or leave it out for no limit"
                    ),
                ));
            }
        }
        for (key, v) in [
            ("timeout_s", f.timeout_s),
            ("quiet_timeout_s", f.quiet_timeout_s),
        ] {
            if v == 0 {
                return Err(bad(
                    "factory",
                    Some(key),
                    format!("[factory] {key} must be at least 1 (seconds)"),
                ));
            }
        }
        if self.merge.batch_size == 0 {
            return Err(bad(
                "merge",
                Some("batch_size"),
                "[merge] batch_size must be at least 1".into(),
            ));
        }
        if !(1..=merge::MAX_DEPTH).contains(&self.merge.depth) {
            return Err(bad(
                "merge",
                Some("depth"),
                format!(
                    "[merge] depth = {} is out of range: speculative mode tests 1 to {} entries at once, each in a sandbox of its own; e.g. depth = 4",
                    self.merge.depth,
                    merge::MAX_DEPTH
                ),
            ));
        }
        if self.merge.test_timeout_s == 0 {
            return Err(bad(
                "merge",
                Some("test_timeout_s"),
                "[merge] test_timeout_s must be at least 1 (seconds)".into(),
            ));
        }
        self.api
            .listen_addr()
            .map_err(|m| bad("api", Some("listen"), m))?;
        prices::validate(&self.prices).map_err(|m| bad("prices", None, m))?;
        let profiles = self.agent_profiles();
        for a in &self.review.agents {
            if !profiles.contains_key(a) {
                return Err(bad(
                    "review",
                    Some("agents"),
                    format!(
                        "[review] agents names `{a}`, which is no profile; define [agents.{a}] or pick one of: {}",
                        profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        self.review
            .globs()
            .map_err(|m| bad("review", Some("paths"), m))?;
        if self.review.timeout_s == 0 {
            return Err(bad(
                "review",
                Some("timeout_s"),
                "[review] timeout_s must be at least 1 (seconds)".into(),
            ));
        }
        if self.policy.required_checks.iter().any(|c| c == "review")
            && self.review.agents.is_empty()
        {
            return Err(bad(
                "policy",
                Some("required_checks"),
                "[policy] required_checks names `review`, but [review] agents is empty: name a reviewer profile (e.g. agents = [\"codex\"])".into(),
            ));
        }
        if !profiles.contains_key(&f.default_agent) {
            return Err(bad(
                "factory",
                Some("default_agent"),
                format!(
                    "[factory] default_agent = \"{}\" names no profile; define [agents.{}] or pick one of: {}",
                    f.default_agent,
                    f.default_agent,
                    profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// Load `path` with the checks this module can make alone; a file that does not exist
    /// gives the defaults. `workspace::load_config` adds the checks of the rooms whose
    /// values these are (patterns compile, policy rules parse, ...).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, |_, _, _| Ok(()))
    }

    /// [`Config::load`], then `more_checks` over the config, its path and its text (for
    /// errors that name their line).
    pub fn load_with(
        path: &Path,
        more_checks: impl FnOnce(&Config, &Path, Option<&str>) -> Result<(), ConfigError>,
    ) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let c = Config::parse(&text, path)?;
                c.validate(path, Some(&text))?;
                more_checks(&c, path, Some(&text))?;
                Ok(c)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            // Show the offending line itself: a type error names no key on its own.
            let source = text.lines().nth(line - 1).unwrap_or("").trim_end();
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message: format!("{} (in `{source}`)", e.message().trim()),
            }
        })
    }
}

/// The 1-based line of `key` in `[table]` (or of the table's header when `key` is None or
/// not written there), found by reading the file as lines: enough for the flat tables
/// shopfloor.toml has.
pub fn key_line(text: &str, table: &str, key: Option<&str>) -> Option<usize> {
    let header = format!("[{table}]");
    let mut in_table = false;
    let mut header_line = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            in_table = line == header;
            if in_table {
                header_line = Some(i + 1);
            }
            continue;
        }
        if in_table
            && let Some(k) = key
            && let Some(rest) = line.strip_prefix(k)
            && rest.trim_start().starts_with('=')
        {
            return Some(i + 1);
        }
    }
    header_line
}

/// The 1-based line of the `n`th (1-based) string in the array `key = [...]` of `[table]`,
/// found by counting string literals from the key's line; falls back to the key's line.
pub fn array_item_line(text: &str, table: &str, key: &str, n: usize) -> Option<usize> {
    let start = key_line(text, table, Some(key))?;
    let mut seen = 0;
    for (i, raw) in text.lines().enumerate().skip(start - 1) {
        let mut rest = if i + 1 == start {
            raw.split_once('=').map_or("", |(_, v)| v)
        } else {
            raw
        };
        // Count the strings opened on this line; a `#` outside one ends the line.
        while let Some(pos) = rest.find(['"', '\'', '#', ']']) {
            let c = rest.as_bytes()[pos];
            if c == b']' {
                return Some(start);
            }
            if c == b'#' {
                break;
            }
            seen += 1;
            if seen == n {
                return Some(i + 1);
            }
            let after = &rest[pos + 1..];
            let close = if c == b'"' {
                // Skip escaped quotes in a basic string.
                let mut end = None;
                let mut esc = false;
                for (j, ch) in after.char_indices() {
                    match ch {
                        '\\' if !esc => esc = true,
                        '"' if !esc => {
                            end = Some(j);
                            break;
                        }
                        _ => esc = false,
                    }
                }
                end
            } else {
                after.find('\'')
            };
            rest = close.map_or("", |j| &after[j + 1..]);
        }
    }
    Some(start)
}

/// 1-based line and column of a byte offset.
/// The 1-based line and column of byte `offset` in `text`, for errors that point at a spot.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything `workspace::load_config` checks: this module's checks and the rooms'.
    fn validate_whole(c: &Config, path: &Path, text: Option<&str>) -> Result<(), ConfigError> {
        c.validate(path, text)?;
        crate::workspace::check_config(c, path, text)
    }

    #[test]
    fn a_missing_file_is_the_defaults() {
        let c = Config::load(Path::new("/nonexistent/shopfloor.toml")).unwrap();
        assert!(c.memory.model.is_none());
    }

    #[test]
    fn unknown_keys_name_their_line() {
        let text = "[memory]\n\n[redact]\npaterns = [\"x\"]\n";
        let err = Config::parse(text, Path::new("shopfloor.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("shopfloor.toml:4:"), "{msg}");
        assert!(msg.contains("paterns"), "{msg}");
    }

    #[test]
    fn the_starter_file_parses_and_validates() {
        let text = include_str!("../../assets/shopfloor.toml");
        let c = Config::parse(text, Path::new("shopfloor.toml")).unwrap();
        validate_whole(&c, Path::new("shopfloor.toml"), Some(text)).unwrap();
        assert_eq!(c.factory.concurrency, 4);
        assert!(c.agents.contains_key("claude"));
    }

    #[test]
    fn semantic_errors_name_the_key_and_its_line() {
        // The error validating `text`, read with the file's text (for lines) or without.
        let error = |text: &str, with_text: bool| {
            let c = Config::parse(text, Path::new("s.toml")).unwrap();
            validate_whole(&c, Path::new("s.toml"), with_text.then_some(text))
                .unwrap_err()
                .to_string()
        };
        let e = error(
            "[memory]\n\n[factory]\nmax_attempts = 2\nconcurrency = 0\n",
            true,
        );
        assert!(e.starts_with("s.toml:5: [factory] concurrency"), "{e}");

        let e = error("[factory]\ndefault_agent = \"x\"\n", false);
        assert!(e.contains("[agents.x]"), "{e}");

        let e = error(
            "[factory]\ndefault_agent = \"s\"\n\n[agents.s]\nadapter = \"plain\"\n",
            true,
        );
        assert!(e.contains("command") && e.starts_with("s.toml:4: "), "{e}");

        for depth in [0, 33] {
            let e = error(
                &format!("[merge]\nmode = \"speculative\"\ndepth = {depth}\n"),
                true,
            );
            assert!(
                e.starts_with("s.toml:3: [merge] depth") && e.contains("1 to 32"),
                "{e}"
            );
        }
        let e = Config::parse("[merge]\nmode = \"sideways\"\n", Path::new("s.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s.toml:2:") && e.contains("speculative"),
            "{e}"
        );

        let e = error("[sandbox]\ncpus = -1.0\n", true);
        assert!(
            e.starts_with("s.toml:2: ") && e.contains("sandbox.cpus"),
            "{e}"
        );

        // A redaction pattern matching empty text would inflate every stored step.
        let e = error(
            "[factory]\nconcurrency = 2\n\n[redact]\npatterns = [\"id-[0-9]+\", \"a*\"]\n",
            true,
        );
        assert!(
            e.starts_with("s.toml:5: ") && e.contains("\"a*\" can match empty text"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_policy_line_names_its_line_in_the_file() {
        let check = |text: &str, want: &str, has: &str| {
            let c = Config::parse(text, Path::new("s.toml")).unwrap();
            let e = validate_whole(&c, Path::new("s.toml"), Some(text))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(want) && e.contains(has), "{e}");
        };
        let text = "[factory]\n\n[policy]\nmax_changed_lines = 10\npaths = [\n  \"approve migrations/**\",  # why\n  # a comment, \"quoted\"\n  \"deny x\", \"frob y\",\n]\n";
        check(
            text,
            "s.toml:8: ",
            "[policy] paths entry 3 (`frob y`): unknown action `frob`",
        );
        let text = "[policy]\npaths = [\"approve \\\"a\\\"\", \"deny [x\"]\n";
        check(text, "s.toml:2: ", "entry 2 (`deny [x`): bad glob");
        let text = "[policy]\npaths = [\n\"allow a\",\n\"deny\"]\n";
        check(text, "s.toml:4: ", "no glob after `deny`");
        let text = "[policy]\npaths = []\nrequired_checks = [\"lint\"]\n";
        check(text, "s.toml:3: ", "unknown check `lint`");
        let c = Config::parse("", Path::new("s.toml")).unwrap();
        assert_eq!(c.policy.required_checks, ["test"]);
        assert_eq!(c.policy.max_changed_lines, 0);
    }

    #[test]
    fn bad_values_name_their_line() {
        let err = Config::parse("[memory]\nmodel = 3\n", Path::new("s.toml")).unwrap_err();
        assert!(err.to_string().starts_with("s.toml:2:"), "{err}");
    }
}

//! Workspaces: one repository's factory opened: its store, index, memory, redaction and
//! validated config. Where a workspace lives on disk is `crate::layout`'s.

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError};
pub use crate::layout::{Home, WorkspaceError, WorkspaceInfo, repo_root, validate_name};

/// Load `shopfloor.toml` at `path` and check it whole: what `config` checks alone, then
/// what only the rooms owning each section can tell (patterns compile, policy rules parse,
/// sandbox limits, hosts, agent profiles). Each error names the key and, with the file's
/// text, its line.
pub fn load_config(path: &Path) -> Result<Config, ConfigError> {
    Config::load_with(path, check_config)
}

/// The checks of [`load_config`] that need the rooms above `config`.
pub fn check_config(c: &Config, path: &Path, text: Option<&str>) -> Result<(), ConfigError> {
    use crate::config::{array_item_line, key_line};
    let bad = |table: &str, key: Option<&str>, message: String| ConfigError::Semantic {
        path: path.to_path_buf(),
        line: text.and_then(|t| key_line(t, table, key)),
        message,
    };
    c.redact
        .validate()
        .map_err(|e| bad("redact", Some("patterns"), e.to_string()))?;
    c.telemetry
        .validate()
        .map_err(|(key, m)| bad("telemetry", Some(key), m))?;
    c.sandbox.validate().map_err(|e| {
        let key = match &e {
            crate::sandbox::SandboxError::BadConfig { key, .. } => key.clone(),
            _ => None,
        };
        bad("sandbox", key.as_deref(), e.to_string())
    })?;
    crate::policy::Policy::from_config(&c.policy).map_err(|e| {
        let line = match &e {
            crate::policy::PolicyError::Rule { line, .. } => {
                text.and_then(|t| array_item_line(t, "policy", "paths", *line))
            }
            _ => text.and_then(|t| key_line(t, "policy", Some("required_checks"))),
        };
        ConfigError::Semantic {
            path: path.to_path_buf(),
            line,
            message: e.to_string(),
        }
    })?;
    crate::hosts::validate(&c.hosts).map_err(|m| bad("hosts", None, m))?;
    for (name, p) in &c.agent_profiles() {
        p.validate(name)
            .map_err(|e| bad(&format!("agents.{name}"), None, e.to_string()))?;
    }
    Ok(())
}

/// An open workspace: its store, index and memory, with the redaction its config asks
/// for. With no factory running, the CLI opens one of these directly; the factory holds
/// one for its lifetime. Opening takes the store's and the index's single-writer locks.
pub struct Workspace {
    pub info: WorkspaceInfo,
    pub config: crate::config::Config,
    pub store: crate::store::Store,
    pub memory: crate::memory::MemoryBank,
    pub redactor: crate::redact::Redactor,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("in [redact] of {path}: {source}")]
    Redact {
        path: PathBuf,
        source: crate::redact::RedactError,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Index(#[from] crate::index::IndexError),
    #[error(transparent)]
    Memory(#[from] crate::memory::MemoryError),
    #[error(transparent)]
    Embed(#[from] crate::memory::embed::EmbedError),
}

/// Add every stored step to a fresh index, a run at a time in bounded chunks.
fn reindex_steps(
    store: &crate::store::Store,
    index: &crate::index::Index,
) -> Result<(), OpenError> {
    const CHUNK: u64 = 5000;
    let runs = store.runs()?;
    for run in &runs {
        let mut from = 0;
        while from < run.steps {
            let steps = store.steps(run.id, from, from + CHUNK)?;
            if steps.is_empty() {
                break;
            }
            index.add_steps(&steps)?;
            from += CHUNK;
        }
    }
    if !runs.is_empty() {
        tracing::info!(runs = runs.len(), "re-indexed the steps of every run");
        index.flush()?;
    }
    Ok(())
}

impl Workspace {
    pub fn open(info: WorkspaceInfo) -> Result<Workspace, OpenError> {
        // A data directory an older shopfloor made with the default 0755 is closed here.
        if let Err(e) = crate::private::private_dir(&info.dir) {
            tracing::warn!(dir = %info.dir.display(), error = %e, "cannot restrict the data directory to its owner");
        }
        // The store first: a command waiting for a factory or another command to let it go
        // retries this, and finds it held before any other work (the config's regexes, the
        // redactor's) is done again.
        let store = crate::store::Store::open(&info.store_path())?;
        let config = load_config(&info.config_path())?;
        let redactor = crate::redact::Redactor::with_env(&config.redact, std::env::vars())
            .map_err(|source| OpenError::Redact {
                path: info.config_path(),
                source,
            })?;
        let index = crate::index::Index::open(&info.index_dir())?;
        if index.is_fresh() {
            // The index is derived data: made anew (first open, deleted, or an older
            // schema), it gets every stored step back before anyone searches it.
            reindex_steps(&store, &index)?;
        }
        let embedder: std::sync::Arc<dyn crate::memory::embed::Embedder> =
            match &config.memory.model {
                Some(dir) => {
                    let dir = if dir.is_absolute() {
                        dir.clone()
                    } else {
                        info.repo.join(dir)
                    };
                    std::sync::Arc::new(crate::memory::embed::StaticEmbedder::from_dir(&dir)?)
                }
                None => crate::memory::embed::StaticEmbedder::builtin(),
            };
        let memory = crate::memory::MemoryBank::open(store.clone(), index, embedder)?
            .with_redactor(redactor.clone());
        Ok(Workspace {
            info,
            config,
            store,
            memory,
            redactor,
        })
    }

    pub fn index(&self) -> &crate::index::Index {
        self.memory.index()
    }

    /// Import an agent's log as a new run; its steps are redacted, stored durably, then
    /// indexed for `trace search`.
    pub fn import_trace(
        &self,
        path: &Path,
        format: crate::trace::Format,
        agent: Option<String>,
    ) -> Result<crate::trace::ImportReport, crate::trace::TraceError> {
        let opts = crate::trace::ImportOptions {
            format,
            agent,
            redactor: self.redactor.clone(),
        };
        let index = self.index();
        let mut index_error = None;
        let report = crate::trace::import_file(&self.store, path, &opts, &mut |steps| {
            if index_error.is_none()
                && let Err(e) = index.add_steps(steps)
            {
                index_error = Some(e);
            }
        })?;
        // The steps are durable either way: an index failure must not fail an import that
        // already landed. It is reported, with the way to mend it (the index is derived
        // data, rebuilt from the store when its directory is gone).
        let failure = match index_error {
            Some(e) => Some(e),
            None => index.flush().err(),
        };
        let mut report = report;
        if let Some(e) = failure {
            tracing::error!(run = report.run, error = %e, "indexing imported steps failed");
            report.warnings.push(format!(
                "the steps are stored but not searchable: {e}; remove {} to rebuild the index on the next open",
                self.info.index_dir().display()
            ));
        }
        Ok(report)
    }
}

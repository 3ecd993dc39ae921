//! Wiring agent clients to shopfloor: where each client (Claude Code, Codex, Cursor,
//! Gemini CLI) keeps its MCP server list, the entry that launches `shopfloor mcp`, and the
//! edit that merges it into the user's file without disturbing anything else in it.
//!
//! Planning is pure (text in, text out) and writing is separate, so `--dry-run` shows
//! exactly the bytes a real run would write.

pub mod jsonc;
pub mod toml;

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// The name the entry gets in every client's server list.
pub const SERVER_NAME: &str = "shopfloor";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    ClaudeCode,
    Codex,
    Cursor,
    Gemini,
}

impl Client {
    pub fn name(self) -> &'static str {
        match self {
            Client::ClaudeCode => "claude-code",
            Client::Codex => "codex",
            Client::Cursor => "cursor",
            Client::Gemini => "gemini",
        }
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whose configuration: the repository's (shared through git) or the user's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Project,
    User,
}

/// Where the config files are: the user's home (from `$HOME`), `$CODEX_HOME` when set,
/// and the workspace's repository.
#[derive(Clone, Debug)]
pub struct Places {
    pub home: PathBuf,
    pub codex_home: Option<PathBuf>,
    pub repo: PathBuf,
}

impl Places {
    /// `$HOME` and `$CODEX_HOME` from the environment.
    pub fn from_env(repo: PathBuf) -> Result<Places, ConnectError> {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .ok_or(ConnectError::NoHome)?;
        let codex_home = std::env::var_os("CODEX_HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from);
        Ok(Places {
            home,
            codex_home,
            repo,
        })
    }
}

/// How the client starts the MCP server.
#[derive(Clone, Debug, PartialEq)]
pub struct Launch {
    pub command: String,
    pub args: Vec<String>,
}

impl Launch {
    /// `<exe> mcp --workspace NAME`.
    pub fn mcp(exe: &Path, workspace: &str) -> Launch {
        Launch {
            command: exe.display().to_string(),
            args: vec!["mcp".into(), "--workspace".into(), workspace.into()],
        }
    }
}

/// What an edit does to its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditOutcome {
    Added,
    Updated,
    Unchanged,
}

/// A problem in the file's text, before we know which file (see `ConnectError`).
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{0}")]
    Shape(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("$HOME is not set; set it to your home directory")]
    NoHome,
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not UTF-8 text; fix or move it, then run this again")]
    NotText { path: PathBuf },
    #[error(
        "cannot parse {path} at line {line}, column {column}: {message}; it was left untouched, fix it and run this again"
    )]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}; it was left untouched")]
    Shape { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ConnectError {
    fn in_file(e: EditError, path: &Path) -> ConnectError {
        match e {
            EditError::Syntax {
                line,
                column,
                message,
            } => ConnectError::Syntax {
                path: path.to_path_buf(),
                line,
                column,
                message,
            },
            EditError::Shape(message) => ConnectError::Shape {
                path: path.to_path_buf(),
                message,
            },
        }
    }
}

/// One file's planned change: its text before (None: the file does not exist) and after.
#[derive(Clone, Debug)]
pub struct Edit {
    pub path: PathBuf,
    /// What changes, for people: `mcpServers.shopfloor`, `hooks.Stop`.
    pub entry: String,
    pub outcome: EditOutcome,
    pub before: Option<String>,
    pub after: String,
}

impl Edit {
    /// A unified diff of the change (empty when nothing changes).
    pub fn diff(&self) -> String {
        if self.outcome == EditOutcome::Unchanged {
            return String::new();
        }
        let old = self.before.as_deref().unwrap_or("");
        let path = self.path.display().to_string();
        let old_name = if self.before.is_some() {
            path.as_str()
        } else {
            "/dev/null"
        };
        similar::TextDiff::from_lines(old, &self.after)
            .unified_diff()
            .context_radius(3)
            .header(old_name, &path)
            .to_string()
    }

    /// One line saying what this edit did (or would do).
    pub fn summary(&self) -> String {
        let path = self.path.display();
        match self.outcome {
            EditOutcome::Added => format!("{path}: added {}", self.entry),
            EditOutcome::Updated => format!("{path}: updated {}", self.entry),
            EditOutcome::Unchanged => format!("{path}: {} already up to date", self.entry),
        }
    }

    /// Write the new text, atomically; nothing is written when nothing changes.
    pub fn apply(&self) -> Result<(), ConnectError> {
        if self.outcome == EditOutcome::Unchanged {
            return Ok(());
        }
        write_atomic(&self.path, self.after.as_bytes()).map_err(|source| ConnectError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

/// The config file `client` reads its MCP servers from, for `scope`.
pub fn server_config_path(client: Client, scope: Scope, places: &Places) -> PathBuf {
    let (home, repo) = (&places.home, &places.repo);
    match (client, scope) {
        (Client::ClaudeCode, Scope::Project) => repo.join(".mcp.json"),
        (Client::ClaudeCode, Scope::User) => home.join(".claude.json"),
        // Codex has no project config: its one file is the user's.
        (Client::Codex, _) => places
            .codex_home
            .clone()
            .unwrap_or_else(|| home.join(".codex"))
            .join("config.toml"),
        (Client::Cursor, Scope::Project) => repo.join(".cursor").join("mcp.json"),
        (Client::Cursor, Scope::User) => home.join(".cursor").join("mcp.json"),
        (Client::Gemini, Scope::Project) => repo.join(".gemini").join("settings.json"),
        (Client::Gemini, Scope::User) => home.join(".gemini").join("settings.json"),
    }
}

/// Claude Code's settings file, where hooks live.
pub fn claude_settings_path(scope: Scope, places: &Places) -> PathBuf {
    match scope {
        Scope::Project => places.repo.join(".claude").join("settings.json"),
        Scope::User => places.home.join(".claude").join("settings.json"),
    }
}

/// The file's text, None when it does not exist.
fn read(path: &Path) -> Result<Option<String>, ConnectError> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| ConnectError::NotText {
                path: path.to_path_buf(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConnectError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// An entry's fields, in the order they are written.
type Fields = Vec<(&'static str, Value)>;

/// The fields of `client`'s entry: those we own (always set to these values) and
/// defaults (written only when absent, so the user's additions stay).
fn json_entry(client: Client, launch: &Launch) -> (Fields, Fields) {
    let command = ("command", json!(launch.command));
    let args = ("args", json!(launch.args));
    match client {
        Client::ClaudeCode => (
            vec![("type", json!("stdio")), command, args],
            vec![("env", json!({}))],
        ),
        _ => (vec![command, args], vec![]),
    }
}

/// Plan the edit that puts the shopfloor server entry into `client`'s config for `scope`.
pub fn plan_server(
    client: Client,
    scope: Scope,
    places: &Places,
    launch: &Launch,
) -> Result<Edit, ConnectError> {
    let path = server_config_path(client, scope, places);
    let before = read(&path)?;
    let text = before.as_deref().unwrap_or("");
    let (after, outcome, entry) = match client {
        Client::Codex => {
            let (after, outcome) = toml::upsert_server(
                text,
                "mcp_servers",
                SERVER_NAME,
                &launch.command,
                &launch.args,
            )
            .map_err(|e| ConnectError::in_file(e, &path))?;
            (after, outcome, format!("[mcp_servers.{SERVER_NAME}]"))
        }
        _ => {
            let (owned, defaults) = json_entry(client, launch);
            let (after, outcome) =
                jsonc::upsert_entry(text, &["mcpServers"], SERVER_NAME, &owned, &defaults)
                    .map_err(|e| ConnectError::in_file(e, &path))?;
            (after, outcome, format!("mcpServers.{SERVER_NAME}"))
        }
    };
    Ok(Edit {
        path,
        entry,
        outcome,
        before,
        after,
    })
}

/// The Claude Code hook events shopfloor records a session on, with their matcher:
/// after every tool call (the transcript grew), and when a turn ends.
pub const HOOK_EVENTS: [(&str, Option<&str>); 2] = [("PostToolUse", Some("*")), ("Stop", None)];

/// `<exe> hook claude-code --workspace NAME`, quoted for the shell that runs hooks.
pub fn hook_command(exe: &Path, workspace: &str) -> String {
    format!(
        "{} hook claude-code --workspace {}",
        shell_quote(&exe.display().to_string()),
        shell_quote(workspace)
    )
}

/// Whether a hook command is shopfloor's for `workspace` (from any install path).
fn is_our_hook(command: &str, workspace: &str) -> bool {
    command.ends_with(&format!(
        " hook claude-code --workspace {}",
        shell_quote(workspace)
    ))
}

/// Plan the edit that installs shopfloor's hooks in Claude Code's settings for `scope`.
/// One edit of one file, however many events it touches.
pub fn plan_hooks(
    scope: Scope,
    places: &Places,
    exe: &Path,
    workspace: &str,
) -> Result<Edit, ConnectError> {
    let path = claude_settings_path(scope, places);
    let before = read(&path)?;
    let command = hook_command(exe, workspace);
    let mut text = before.clone().unwrap_or_default();
    let mut changed = Vec::new();
    let mut outcome = EditOutcome::Unchanged;
    for (event, matcher) in HOOK_EVENTS {
        let (after, o) = jsonc::add_hook(&text, event, matcher, &command, &|c| {
            is_our_hook(c, workspace)
        })
        .map_err(|e| ConnectError::in_file(e, &path))?;
        if o != EditOutcome::Unchanged {
            changed.push(event);
            outcome = match (outcome, o) {
                (EditOutcome::Unchanged, o) => o,
                (EditOutcome::Added, EditOutcome::Added) => EditOutcome::Added,
                _ => EditOutcome::Updated,
            };
        }
        text = after;
    }
    let events: Vec<&str> = if changed.is_empty() {
        HOOK_EVENTS.iter().map(|(e, _)| *e).collect()
    } else {
        changed
    };
    Ok(Edit {
        path,
        entry: format!("hooks.{}", events.join(", hooks.")),
        outcome,
        before,
        after: text,
    })
}

/// Quote a word for a POSIX shell when it needs it.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Replace `path`'s contents with `bytes` so that a reader sees the old file or the new
/// one, never a half-written one: a temporary file in the same directory, renamed over
/// it. The file's permissions are kept; a symlinked config (dotfile managers) has its
/// target written, and stays a symlink.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path)?,
        _ => path.to_path_buf(),
    };
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mode = match std::fs::metadata(&target) {
        Ok(m) => m.permissions().mode(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0o644,
        Err(e) => return Err(e),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    tmp.as_file().sync_all()?;
    tmp.persist(&target).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests;

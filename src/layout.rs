//! Where everything lives: the shopfloor home, each workspace's data directory under it,
//! and every path inside that directory. This is the one place that builds those paths.
//! Nothing crosses between workspaces: each has its own store, index and clone, so
//! isolation is a property of the file system, not of query filters.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The file in a workspace's data directory that says what the workspace is.
const META_FILE: &str = "workspace.toml";

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error(
        "workspace `{0}` not found; `shopfloor workspace list` shows the ones that exist, \
         `shopfloor workspace create {0}` makes it"
    )]
    NotFound(String),
    #[error("workspace `{0}` already exists (`shopfloor workspace show {0}`)")]
    Exists(String),
    #[error(
        "invalid workspace name `{0}`: use 1-64 letters, digits, `-`, `_` or `.`, not starting with `.` or `-`"
    )]
    BadName(String),
    #[error("{0} is not inside a git repository; pass --repo PATH to a git repository")]
    NotARepo(PathBuf),
    #[error(
        "no workspace given and none has a repository containing {0}; pass -w NAME, set \
         SHOPFLOOR_WORKSPACE, or run `shopfloor workspace create NAME` inside the repository"
    )]
    NoneForDir(PathBuf),
    #[error("cannot find a data directory: set SHOPFLOOR_HOME to a directory shopfloor may use")]
    NoHome,
    #[error("workspace metadata {path} is unreadable: {detail}; fix or remove that directory")]
    BadMeta { path: PathBuf, detail: String },
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

type Result<T, E = WorkspaceError> = std::result::Result<T, E>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WorkspaceError + '_ {
    move |source| WorkspaceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a workspace is: its name, the user's repository it serves, its data directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceInfo {
    pub name: String,
    /// The user's repository (its working tree root), canonical.
    pub repo: PathBuf,
    pub created: Timestamp,
    /// The workspace's data directory; not stored, derived from where it was found.
    #[serde(skip)]
    pub dir: PathBuf,
}

impl WorkspaceInfo {
    pub fn store_path(&self) -> PathBuf {
        self.dir.join("store.redb")
    }
    pub fn index_dir(&self) -> PathBuf {
        self.dir.join("index")
    }
    /// The person's socket: the control API and MCP, no token needed (0600).
    pub fn socket_path(&self) -> PathBuf {
        self.dir.join("factory.sock")
    }
    /// The sandboxes' socket: MCP for runs, with a live run's token only. The only socket
    /// a sandbox ever gets.
    pub fn sandbox_socket_path(&self) -> PathBuf {
        self.dir.join("sandbox.sock")
    }
    /// The repository's team-shared config file.
    pub fn config_path(&self) -> PathBuf {
        self.repo.join("shopfloor.toml")
    }
    /// The key run tokens are made with (0600): a secret of this workspace's.
    pub fn token_key_path(&self) -> PathBuf {
        self.dir.join(TOKEN_KEY_FILE)
    }
    /// The factory's own clone of the user's repository: its source of truth, whose main
    /// only the merge queue moves.
    pub fn clone_dir(&self) -> PathBuf {
        self.dir.join("repo")
    }
    /// Where runs' worktrees are checked out.
    pub fn worktrees_dir(&self) -> PathBuf {
        self.dir.join("worktrees")
    }
    /// The merge queue's scratch space (candidate checkouts for tests).
    pub fn queue_scratch_dir(&self) -> PathBuf {
        self.dir.join("queue")
    }
    /// Present while a person has paused the merge queue: the pause outlives the factory,
    /// and a command works on it with or without one running.
    pub fn queue_pause_path(&self) -> PathBuf {
        self.dir.join("queue.paused")
    }
    /// What the factory knows of each `[[hosts]]` machine (drained, down).
    pub fn hosts_dir(&self) -> PathBuf {
        self.dir.join("hosts")
    }
    /// The label a workspace's sandboxes (agent runs and merge tests) carry and are
    /// reaped by: its name plus a hash of its data directory, because two shopfloor homes
    /// (a demo, a test, a second user) may each hold a workspace of the same name, and one
    /// factory must never reap the other's.
    pub fn sandbox_label(&self) -> String {
        let hash = blake3::hash(self.dir.as_os_str().as_encoded_bytes());
        format!("{}-{}", self.name, &hash.to_hex()[..8])
    }
    /// A file beside the others, written under a temporary name first and renamed into
    /// place (`name` must be one of this directory's own).
    pub fn temp_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.{}", std::process::id()))
    }
}

/// Container label keys: the workspace's sandbox label, and the run's id.
pub const LABEL_WORKSPACE: &str = "shopfloor.workspace";
pub const LABEL_RUN: &str = "shopfloor.run";

/// The token key's file name in a workspace's data dir.
pub const TOKEN_KEY_FILE: &str = "api.key";

/// The root under which every workspace has its data directory.
#[derive(Clone, Debug)]
pub struct Home {
    root: PathBuf,
}

/// Resolve a path to the working-tree root of the git repository containing it.
pub fn repo_root(path: &Path) -> Result<PathBuf> {
    let canon = path
        .canonicalize()
        .map_err(|_| WorkspaceError::NotARepo(path.to_path_buf()))?;
    let repo = git2::Repository::discover(&canon)
        .map_err(|_| WorkspaceError::NotARepo(path.to_path_buf()))?;
    let root = match repo.workdir() {
        Some(w) => w.to_path_buf(),
        None => repo.path().to_path_buf(),
    };
    root.canonicalize().map_err(io(&root))
}

pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(WorkspaceError::BadName(name.to_string()))
    }
}

impl Home {
    /// `$SHOPFLOOR_HOME`, else the XDG data directory's `shopfloor/`.
    pub fn from_env() -> Result<Home> {
        if let Some(h) = std::env::var_os("SHOPFLOOR_HOME").filter(|h| !h.is_empty()) {
            return Ok(Home::at(PathBuf::from(h)));
        }
        let dirs =
            directories::ProjectDirs::from("", "", "shopfloor").ok_or(WorkspaceError::NoHome)?;
        Ok(Home::at(dirs.data_dir().to_path_buf()))
    }

    pub fn at(root: PathBuf) -> Home {
        Home { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The log files of every command and factory run under this home.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    fn dir_of(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub fn create(&self, name: &str, repo: &Path) -> Result<WorkspaceInfo> {
        validate_name(name)?;
        let repo = repo_root(repo)?;
        let dir = self.dir_of(name);
        if dir.join(META_FILE).exists() {
            return Err(WorkspaceError::Exists(name.to_string()));
        }
        crate::private::private_dir(&self.root).map_err(io(&self.root))?;
        crate::private::private_dir(&dir).map_err(io(&dir))?;
        let info = WorkspaceInfo {
            name: name.to_string(),
            repo,
            created: Timestamp::now(),
            dir: dir.clone(),
        };
        let text = toml::to_string(&info).expect("workspace info serializes");
        // Written last and atomically: a workspace exists once its metadata does.
        let tmp = dir.join(".workspace.toml.tmp");
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, dir.join(META_FILE)).map_err(io(&dir))?;
        Ok(info)
    }

    pub fn get(&self, name: &str) -> Result<WorkspaceInfo> {
        validate_name(name).map_err(|_| WorkspaceError::NotFound(name.to_string()))?;
        let dir = self.dir_of(name);
        let meta = dir.join(META_FILE);
        let text = match std::fs::read_to_string(&meta) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(WorkspaceError::NotFound(name.to_string()));
            }
            Err(e) => return Err(io(&meta)(e)),
        };
        let mut info: WorkspaceInfo =
            toml::from_str(&text).map_err(|e| WorkspaceError::BadMeta {
                path: meta.clone(),
                detail: e.to_string(),
            })?;
        info.dir = dir;
        Ok(info)
    }

    /// Every workspace, by name. Directories without metadata are not workspaces.
    pub fn list(&self) -> Result<Vec<WorkspaceInfo>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io(&self.root)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io(&self.root))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if validate_name(&name).is_ok() && entry.path().join(META_FILE).exists() {
                out.push(self.get(&name)?);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Delete a workspace's data directory. The user's repository is not touched.
    pub fn remove(&self, name: &str) -> Result<WorkspaceInfo> {
        let info = self.get(name)?;
        std::fs::remove_dir_all(&info.dir).map_err(io(&info.dir))?;
        Ok(info)
    }

    /// The workspace whose repository contains `dir` (the innermost, if nested).
    pub fn find_for_dir(&self, dir: &Path) -> Result<Option<WorkspaceInfo>> {
        let Ok(dir) = dir.canonicalize() else {
            return Ok(None);
        };
        Ok(self
            .list()?
            .into_iter()
            .filter(|w| dir.starts_with(&w.repo))
            .max_by_key(|w| w.repo.components().count()))
    }

    /// The workspace a command acts on: the one named, else the one around `cwd`.
    pub fn resolve(&self, name: Option<&str>, cwd: &Path) -> Result<WorkspaceInfo> {
        match name {
            Some(n) => self.get(n),
            None => self
                .find_for_dir(cwd)?
                .ok_or_else(|| WorkspaceError::NoneForDir(cwd.to_path_buf())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git_repo(dir: &Path) -> PathBuf {
        git2::Repository::init(dir).unwrap();
        dir.canonicalize().unwrap()
    }

    #[test]
    fn create_get_list_resolve_remove() {
        let home_dir = tempfile::tempdir().unwrap();
        let repo_dir = tempfile::tempdir().unwrap();
        let repo = git_repo(repo_dir.path());
        std::fs::create_dir_all(repo.join("src/deep")).unwrap();
        let home = Home::at(home_dir.path().to_path_buf());

        let ws = home.create("alpha", &repo.join("src")).unwrap();
        assert_eq!(ws.repo, repo, "a path inside the repo resolves to its root");
        assert!(matches!(
            home.create("alpha", &repo),
            Err(WorkspaceError::Exists(_))
        ));
        assert_eq!(home.get("alpha").unwrap().repo, repo);
        assert_eq!(home.list().unwrap().len(), 1);
        let found = home.resolve(None, &repo.join("src/deep")).unwrap();
        assert_eq!(found.name, "alpha");
        home.remove("alpha").unwrap();
        assert!(matches!(
            home.get("alpha"),
            Err(WorkspaceError::NotFound(_))
        ));
        assert!(
            repo.exists(),
            "removing a workspace never touches the user's repo"
        );
    }

    #[test]
    fn bad_names_and_non_repos_are_clear_errors() {
        let home_dir = tempfile::tempdir().unwrap();
        let home = Home::at(home_dir.path().to_path_buf());
        let plain = tempfile::tempdir().unwrap();
        for bad in ["", "../x", ".hidden", "a/b", "-x"] {
            assert!(
                matches!(
                    home.create(bad, plain.path()),
                    Err(WorkspaceError::BadName(_))
                ),
                "{bad}"
            );
        }
        let err = home.create("ok", plain.path()).unwrap_err();
        assert!(
            err.to_string().contains("not inside a git repository"),
            "{err}"
        );
        let err = home.resolve(None, plain.path()).unwrap_err();
        assert!(err.to_string().contains("-w NAME"), "{err}");
    }
}

//! Run tokens: what lets a run's agent reach the factory, and only while its run lives.
//!
//! A token is `sf_<run>_<mac>`, the MAC a keyed BLAKE3 hash of the workspace's name and
//! the run under a secret kept in the workspace's data dir (`api.key`, mode 0600), so it
//! is worthless to any other workspace. A token is issued when its run starts and revoked
//! when it ends, so a killed run's token, or any token after a factory restart, opens
//! nothing. The factory issues and revokes; the API's auth layer (`api::auth`) verifies.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::sync::{Arc, Mutex};

use crate::layout::{TOKEN_KEY_FILE, WorkspaceInfo};
use crate::model::RunId;

const TOKEN_PREFIX: &str = "sf_";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "cannot read or create the token key {path}: {source}; check the workspace's data dir is writable by you"
    )]
    Key {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the token key {path} is damaged ({len} bytes, 32 expected); delete it and restart the factory (running runs' tokens stop working)"
    )]
    Damaged {
        path: std::path::PathBuf,
        len: usize,
    },
}

/// Issues, verifies and revokes a workspace's run tokens. Clones share one table of live
/// runs: the factory issues and revokes, the API's auth layer verifies.
#[derive(Clone)]
pub struct Tokens {
    key: [u8; 32],
    workspace: String,
    /// Runs whose tokens open the API now, with their agent's name.
    live: Arc<Mutex<HashMap<RunId, String>>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("workspace", &self.workspace)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// The workspace's token key, made on first use.
    pub fn open(info: &WorkspaceInfo) -> Result<Tokens, TokenError> {
        let path = info.token_key_path();
        let err = |source| TokenError::Key {
            path: path.clone(),
            source,
        };
        let key = match std::fs::File::open(&path) {
            Ok(mut f) => {
                let mut bytes = Vec::new();
                f.read_to_end(&mut bytes).map_err(err)?;
                <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| TokenError::Damaged {
                    path: path.clone(),
                    len: bytes.len(),
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                std::fs::File::open("/dev/urandom")
                    .and_then(|mut r| r.read_exact(&mut key))
                    .map_err(err)?;
                // Written under a temporary name and linked into place, so two processes
                // racing to make the key agree on one.
                let tmp = info.temp_path(&format!(".{TOKEN_KEY_FILE}"));
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)
                    .map_err(err)?;
                f.write_all(&key).and_then(|()| f.sync_all()).map_err(err)?;
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
                    .map_err(err)?;
                let linked = std::fs::hard_link(&tmp, &path);
                let _ = std::fs::remove_file(&tmp);
                match linked {
                    Ok(()) => key,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        return Tokens::open(info);
                    }
                    Err(e) => return Err(err(e)),
                }
            }
            Err(e) => return Err(err(e)),
        };
        Ok(Tokens {
            key,
            workspace: info.name.clone(),
            live: Arc::default(),
        })
    }

    fn mac(&self, run: RunId) -> blake3::Hash {
        blake3::keyed_hash(
            &self.key,
            format!("shopfloor run token\0{}\0{run}", self.workspace).as_bytes(),
        )
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, String>> {
        // The table is a plain map: a panic elsewhere cannot leave it half-updated.
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The token for `run` of `agent`, open from now until [`Tokens::revoke`].
    pub fn issue(&self, run: RunId, agent: &str) -> String {
        self.live().insert(run, agent.to_string());
        format!("{TOKEN_PREFIX}{run}_{}", self.mac(run).to_hex())
    }

    /// Close `run`'s token: its run ended (or was killed).
    pub fn revoke(&self, run: RunId) {
        self.live().remove(&run);
    }

    /// The run and agent a token opens the API for: issued by this workspace for a run
    /// that is live now.
    pub fn verify(&self, token: &str) -> Option<(RunId, String)> {
        let rest = token.trim().strip_prefix(TOKEN_PREFIX)?;
        let (run, mac) = rest.split_once('_')?;
        let run: RunId = run.parse().ok()?;
        let given = blake3::Hash::from_hex(mac).ok()?;
        // blake3::Hash compares in constant time.
        if given != self.mac(run) {
            return None;
        }
        self.live().get(&run).map(|agent| (run, agent.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(dir: &std::path::Path, name: &str) -> WorkspaceInfo {
        WorkspaceInfo {
            name: name.into(),
            repo: dir.to_path_buf(),
            created: jiff::Timestamp::UNIX_EPOCH,
            dir: dir.to_path_buf(),
        }
    }

    #[test]
    fn tokens_verify_only_in_their_own_workspace_and_only_while_their_run_lives() {
        let a_dir = tempfile::tempdir().unwrap();
        let b_dir = tempfile::tempdir().unwrap();
        let a = Tokens::open(&info(a_dir.path(), "a")).unwrap();
        let b = Tokens::open(&info(b_dir.path(), "b")).unwrap();
        let t = a.issue(7, "claude");
        assert_eq!(a.verify(&t), Some((7, "claude".to_string())));
        b.issue(7, "claude");
        assert_eq!(b.verify(&t), None, "B cannot verify A's token");
        // A factory restart: same key file, but no run is live in the new factory.
        let a2 = Tokens::open(&info(a_dir.path(), "a")).unwrap();
        assert_eq!(a2.verify(&t), None, "a token dies with its factory");
        let mode = std::fs::metadata(a_dir.path().join(TOKEN_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Another run's number with this run's MAC does not pass, live or not.
        a.issue(8, "codex");
        let forged = t.replacen("sf_7_", "sf_8_", 1);
        assert_eq!(a.verify(&forged), None);
        for junk in ["", "sf_", "sf_x_y", "sf_7_zz", "Bearer x", "sf_7_"] {
            assert_eq!(a.verify(junk), None, "{junk:?}");
        }
        // The run ends: its token opens nothing, in every clone of the table.
        let shared = a.clone();
        a.revoke(7);
        assert_eq!(shared.verify(&t), None);
    }

    #[test]
    fn damaged_key_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TOKEN_KEY_FILE), b"short").unwrap();
        let e = Tokens::open(&info(dir.path(), "a")).unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
    }
}

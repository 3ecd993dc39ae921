//! Who is calling the factory, and what they may reach.
//!
//! Two kinds of caller exist. A person uses the Unix socket, whose file mode (0600)
//! already says who may connect, so the socket needs no token from them. A run's agent
//! presents the bearer token the factory gave that run; it opens MCP (`/mcp`) and the
//! health check, nothing else, and everything it writes is attributed to its run and
//! agent. On the loopback TCP port (for containers) a token is always required.
//!
//! A token is `sf_<run>_<mac>`, the MAC a keyed BLAKE3 hash of the workspace's name and
//! the run under a secret kept in the workspace's data dir (`api.key`, mode 0600). So a
//! token needs no table, survives a factory restart, and is worthless to any other
//! workspace: B's factory cannot verify A's token and answers it exactly as it answers
//! garbage, so it learns nothing of A, and A's caller learns nothing of B.
//!
//! Every refused call is written to the workspace's audit log.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::model::{AuditEvent, RunId};
use crate::workspace::{Workspace, WorkspaceInfo};

/// The file in the workspace's data dir holding the token key.
pub const KEY_FILE: &str = "api.key";
const TOKEN_PREFIX: &str = "sf_";

/// Who a request (or an MCP session) acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A person on the socket (the factory's own user), by login name.
    Human { name: String },
    /// A run's agent, proven by the run's token.
    Run { run: RunId, agent: String },
}

/// The name of the person running this process ($USER, else "human"): who a memory,
/// an approval or an API call is recorded as.
pub fn local_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "human".into())
}

impl Caller {
    /// The person running this process: the socket's owner.
    pub fn local_human() -> Caller {
        Caller::Human { name: local_user() }
    }

    /// How the audit log names the caller.
    pub fn actor(&self) -> String {
        match self {
            Caller::Human { name } => format!("human:{name}"),
            Caller::Run { run, agent } => format!("run:{run}:{agent}"),
        }
    }

    pub fn run(&self) -> Option<RunId> {
        match self {
            Caller::Run { run, .. } => Some(*run),
            Caller::Human { .. } => None,
        }
    }
}

/// Which listener a request came in on; the server tags each one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Unix,
    Tcp,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Unix => "unix socket",
            Transport::Tcp => "tcp",
        }
    }
}

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

/// Issues and verifies a workspace's run tokens.
#[derive(Clone)]
pub struct Tokens {
    key: [u8; 32],
    workspace: String,
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
        let path = info.dir.join(KEY_FILE);
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
                let tmp = info.dir.join(format!(".{KEY_FILE}.{}", std::process::id()));
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
        })
    }

    fn mac(&self, run: RunId) -> blake3::Hash {
        blake3::keyed_hash(
            &self.key,
            format!("shopfloor run token\0{}\0{run}", self.workspace).as_bytes(),
        )
    }

    /// The token for `run` in this workspace.
    pub fn issue(&self, run: RunId) -> String {
        format!("{TOKEN_PREFIX}{run}_{}", self.mac(run).to_hex())
    }

    /// The run a token was issued for, if it was issued by this workspace.
    pub fn verify(&self, token: &str) -> Option<RunId> {
        let rest = token.trim().strip_prefix(TOKEN_PREFIX)?;
        let (run, mac) = rest.split_once('_')?;
        let run: RunId = run.parse().ok()?;
        let given = blake3::Hash::from_hex(mac).ok()?;
        // blake3::Hash compares in constant time.
        (given == self.mac(run)).then_some(run)
    }
}

/// What the auth layer needs: the workspace (to look runs up and write the audit log)
/// and its tokens.
#[derive(Clone)]
pub struct Gate {
    pub ws: Arc<Workspace>,
    pub tokens: Tokens,
}

/// A refusal, as the caller sees it: one message for every bad token, so a token from
/// another workspace is told exactly what garbage is told.
const BAD_TOKEN: &str = "invalid or missing token: present the SHOPFLOOR_TOKEN your run was given as `Authorization: Bearer <token>`";

impl Gate {
    /// Who presents `token`, if anyone valid: the run must exist in this workspace.
    pub fn caller_for_token(&self, token: &str) -> Option<Caller> {
        let run = self.tokens.verify(token)?;
        let rec = self.ws.store.run(run).ok().flatten()?;
        Some(Caller::Run {
            run,
            agent: rec.agent,
        })
    }

    /// Record a refused call in the audit log. A failure to record is logged, not
    /// returned: the caller is refused either way.
    pub fn audit_refusal(&self, actor: &str, what: &str, why: &str) {
        let event = AuditEvent {
            ts: jiff::Timestamp::now(),
            actor: actor.to_string(),
            action: "api.refused".into(),
            detail: format!("{what}: {why}"),
        };
        tracing::warn!(actor, what, why, "refused an API call");
        if let Err(e) = self.ws.store.append_audit(event) {
            tracing::error!(error = %e, "could not write a refused call to the audit log");
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Paths a run's token opens.
fn open_to_runs(path: &str) -> bool {
    path == "/mcp" || path.starts_with("/mcp/") || path == "/v1/health"
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({
        "error": message,
        "kind": if status == StatusCode::FORBIDDEN { "forbidden" } else { "unauthorized" },
        "causes": [],
    });
    let mut resp = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"shopfloor\""),
        );
    }
    resp
}

/// The auth layer: decide the caller, refuse (and audit) what it may not do, and hand the
/// caller to the handlers as a request extension.
pub async fn authorize(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    let transport = req.extensions().get::<Transport>().copied();
    let what = format!("{} {}", req.method(), req.uri().path());
    let caller = match (bearer(req.headers()), transport) {
        (Some(token), Some(t)) => {
            let token = token.to_string();
            let g = gate.clone();
            let found = tokio::task::spawn_blocking(move || g.caller_for_token(&token))
                .await
                .ok()
                .flatten();
            match found {
                Some(c) => c,
                None => {
                    gate.audit_refusal("unknown", &what, &format!("bad token on {}", t.name()));
                    return refuse(StatusCode::UNAUTHORIZED, BAD_TOKEN);
                }
            }
        }
        (None, Some(Transport::Unix)) => Caller::local_human(),
        (None, Some(t)) => {
            gate.audit_refusal("unknown", &what, &format!("no token on {}", t.name()));
            return refuse(StatusCode::UNAUTHORIZED, BAD_TOKEN);
        }
        // A listener that did not say what it is: fail closed.
        (_, None) => {
            gate.audit_refusal("unknown", &what, "request from an untagged listener");
            return refuse(StatusCode::UNAUTHORIZED, BAD_TOKEN);
        }
    };
    if let Caller::Run { .. } = &caller
        && !open_to_runs(req.uri().path())
    {
        let actor = caller.actor();
        gate.audit_refusal(&actor, &what, "a run's token opens only /mcp");
        return refuse(
            StatusCode::FORBIDDEN,
            "a run's token opens only MCP at /mcp; the control API is for people on the socket",
        );
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
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
    fn tokens_verify_only_in_their_own_workspace() {
        let a_dir = tempfile::tempdir().unwrap();
        let b_dir = tempfile::tempdir().unwrap();
        let a = Tokens::open(&info(a_dir.path(), "a")).unwrap();
        let b = Tokens::open(&info(b_dir.path(), "b")).unwrap();
        let t = a.issue(7);
        assert_eq!(a.verify(&t), Some(7));
        assert_eq!(b.verify(&t), None, "B cannot verify A's token");
        // The same key file reopened gives the same tokens (a factory restart).
        let a2 = Tokens::open(&info(a_dir.path(), "a")).unwrap();
        assert_eq!(a2.verify(&t), Some(7));
        let mode = std::fs::metadata(a_dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Another run's number with this run's MAC does not pass.
        let forged = t.replacen("sf_7_", "sf_8_", 1);
        assert_eq!(a.verify(&forged), None);
        for junk in ["", "sf_", "sf_x_y", "sf_7_zz", "Bearer x", "sf_7_"] {
            assert_eq!(a.verify(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn damaged_key_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), b"short").unwrap();
        let e = Tokens::open(&info(dir.path(), "a")).unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
    }
}

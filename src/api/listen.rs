//! Where the API listens: the person's socket and the sandboxes' (owner-only files, bound
//! under a temporary name and moved into place), and the optional loopback TCP port.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use tokio::net::UnixListener;

use super::ApiError;
use super::auth::Transport;
use super::server::{AppState, api};
use crate::workspace::{Workspace, WorkspaceInfo};

/// A bound socket. Its file is removed when the listener (or the server it was handed
/// to) is done, so a factory that stops cleanly leaves nothing behind.
pub struct Listener {
    inner: UnixListener,
    file: SocketFile,
}

impl Listener {
    pub fn path(&self) -> &Path {
        &self.file.0
    }
}

struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Bind the workspace's person's socket, readable and writable by its owner only. A
/// socket file left by a factory that died is removed once nothing answers on it; one that
/// answers is a factory already running.
pub async fn bind(info: &WorkspaceInfo) -> Result<Listener, ApiError> {
    bind_at(info, info.socket_path(), ".factory.sock").await
}

/// Bind the workspace's sandboxes' socket (`sandbox.sock`), owner-only too: containers run
/// as the factory's user and get it bind-mounted; it serves only run tokens.
pub async fn bind_sandbox(info: &WorkspaceInfo) -> Result<Listener, ApiError> {
    bind_at(info, info.sandbox_socket_path(), ".sandbox.sock").await
}

async fn bind_at(
    info: &WorkspaceInfo,
    path: PathBuf,
    tmp_name: &str,
) -> Result<Listener, ApiError> {
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(ApiError::Bind {
                socket: path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a file that is not a socket is in the way; move it aside",
                ),
            });
        }
        match tokio::net::UnixStream::connect(&path).await {
            Ok(_) => {
                return Err(ApiError::AlreadyRunning {
                    workspace: info.name.clone(),
                    socket: path,
                });
            }
            Err(_) => {
                tracing::info!(socket = %path.display(), "removing a stale socket");
                std::fs::remove_file(&path).map_err(|source| ApiError::Bind {
                    socket: path.clone(),
                    source,
                })?;
            }
        }
    }
    // Bind under a temporary name, restrict it, then move it into place: the socket is
    // never reachable at its real path with looser permissions than 0600.
    let tmp = info.temp_path(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let bind_err = |source| ApiError::Bind {
        socket: path.clone(),
        source,
    };
    let inner = UnixListener::bind(&tmp).map_err(bind_err)?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(bind_err(e));
    }
    Ok(Listener {
        inner,
        file: SocketFile(path),
    })
}

/// Serve `router` on `listener` until `shutdown` resolves; requests in flight finish.
/// `transport` tags every request for the auth layer: `Unix` for the person's socket,
/// `Sandbox` for the sandboxes'.
pub async fn serve_on(
    listener: Listener,
    router: Router,
    transport: Transport,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    let Listener { inner, file } = listener;
    let router = router.layer(axum::Extension(transport));
    let res = axum::serve(inner, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ApiError::Serve);
    drop(file);
    res
}

/// Bind the workspace's socket and serve the control API until `shutdown` resolves.
pub async fn serve(
    ws: Arc<Workspace>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    let listener = bind(&ws.info).await?;
    serve_on(
        listener,
        api(AppState::new(ws))?.person,
        Transport::Unix,
        shutdown,
    )
    .await
}

/// Bind the optional loopback TCP port (`[api] listen`), for sandboxes that cannot reach
/// the socket. Every request on it needs a run's token.
pub async fn bind_tcp(addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener, ApiError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ApiError::Bind {
            socket: PathBuf::from(addr.to_string()),
            source,
        })
}

/// Serve `router` on a loopback TCP listener until `shutdown` resolves.
pub async fn serve_tcp_on(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    let router = router.layer(axum::Extension(Transport::Tcp));
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ApiError::Serve)
}

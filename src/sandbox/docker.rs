//! The Docker backend: one locked-down container per run, the run's worktree bind-mounted
//! at `/workspace`.
//!
//! The container gets no capabilities, `no-new-privileges`, a read-only root with a tmpfs
//! `/tmp`, CPU/memory/pids limits, the configured network (default `none`), the host user's
//! uid:gid (so files it writes in the worktree belong to the user), and no Docker socket.
//! Output is streamed with `attach`, never polled. Containers carry the workspace and run as
//! labels so a restarted factory can remove what a crashed one left (invariant 5).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    AttachContainerOptions, KillContainerOptions, ListContainersOptions, RemoveContainerOptions,
    WaitContainerOptions,
};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

use super::lines::LineSplitter;
use super::worktree::OUTPUT_BUFFER;
use super::{
    BackendKind, Exit, LABEL_RUN, LABEL_WORKSPACE, LaunchSpec, Output, Process, ProcessControl,
    Sandbox, SandboxConfig, SandboxError, build_env,
};

/// Where the worktree appears inside the container (and the agent's working directory).
pub const WORKSPACE_MOUNT: &str = "/workspace";
/// Where the shopfloor binary appears inside the container, so agents can run
/// `shopfloor mcp` without the image shipping it.
pub const BINARY_MOUNT: &str = "/usr/local/bin/shopfloor";
/// Where a container finds the factory's sandboxes' socket (for `shopfloor mcp --socket`):
/// run tokens only. The person's socket is never mounted into a container.
pub const SOCKET_MOUNT: &str = "/run/shopfloor/sandbox.sock";
/// How long `auto` waits for an engine to answer before choosing the worktree backend.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Host-specific variables that mean nothing inside the image: the image's PATH and a
/// HOME/TMPDIR on the writable tmpfs are used instead.
const HOST_ONLY_ENV: &[&str] = &["PATH", "HOME", "TMPDIR", "USER"];

fn engine(action: &str) -> impl FnOnce(bollard::errors::Error) -> SandboxError + '_ {
    move |e| SandboxError::Docker {
        action: action.to_string(),
        detail: e.to_string(),
    }
}

fn is_status(e: &bollard::errors::Error, codes: &[u16]) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code, .. } if codes.contains(status_code))
}

pub struct DockerSandbox {
    docker: Docker,
    cfg: SandboxConfig,
    allowed_env: Vec<String>,
    /// The binary mounted at [`BINARY_MOUNT`]; the running executable unless overridden.
    binary: Option<PathBuf>,
    /// Containers this object launched and has not removed yet: `reap_orphans` spares them.
    live: Arc<Mutex<HashSet<String>>>,
    /// Labels every container gets besides the workspace's and the run's (a merge test's
    /// entries).
    extra_labels: HashMap<String, String>,
}

impl DockerSandbox {
    /// Connect to the local engine and check that `cfg.image` exists locally. Fails with an
    /// error saying how to get an engine or the image.
    pub async fn connect(cfg: &SandboxConfig) -> Result<DockerSandbox, SandboxError> {
        cfg.validate()?;
        let no_docker = |detail: String| SandboxError::NoDocker { detail };
        let docker = Docker::connect_with_local_defaults().map_err(|e| no_docker(e.to_string()))?;
        // Pin the API version to what the engine speaks (this codebase targets engines as
        // old as Docker 20.10, API 1.41).
        let docker = tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version())
            .await
            .map_err(|_| no_docker("the engine did not answer within 3 s".into()))?
            .map_err(|e| no_docker(e.to_string()))?;
        match docker.inspect_image(&cfg.image).await {
            Ok(_) => {}
            Err(e) if is_status(&e, &[404]) => {
                return Err(SandboxError::NoImage {
                    image: cfg.image.clone(),
                });
            }
            Err(e) => return Err(engine("inspecting the image")(e)),
        }
        Ok(DockerSandbox {
            docker,
            cfg: cfg.clone(),
            allowed_env: cfg.allowed_env_names(),
            binary: std::env::current_exe().ok(),
            live: Arc::default(),
            extra_labels: HashMap::new(),
        })
    }

    /// The same engine and settings, its containers carrying `labels` as well.
    pub fn clone_with_labels(
        &self,
        labels: impl IntoIterator<Item = (String, String)>,
    ) -> DockerSandbox {
        let mut extra_labels = self.extra_labels.clone();
        extra_labels.extend(labels);
        DockerSandbox {
            docker: self.docker.clone(),
            cfg: self.cfg.clone(),
            allowed_env: self.allowed_env.clone(),
            binary: self.binary.clone(),
            live: self.live.clone(),
            extra_labels,
        }
    }

    /// Mount `path` at [`BINARY_MOUNT`] instead of the running executable (tests, or a
    /// factory running from a wrapper).
    pub fn with_binary(mut self, path: PathBuf) -> Self {
        self.binary = Some(path);
        self
    }

    /// The checkout read-write; the binary, the sandboxes' socket and the clone's objects
    /// (which the checkout borrows through its alternates, at the same path) read-only.
    /// Nothing else of the host: not the clone's refs, not other runs' branches.
    fn mounts(
        &self,
        workdir: &Path,
        workdir_read_only: bool,
        socket: Option<&Path>,
        read_only: &[PathBuf],
    ) -> Vec<Mount> {
        let bind = |source: &Path, target: &Path, read_only: bool| Mount {
            source: Some(source.to_string_lossy().into_owned()),
            target: Some(target.to_string_lossy().into_owned()),
            typ: Some(MountType::BIND),
            read_only: Some(read_only),
            ..Default::default()
        };
        let mut mounts = vec![bind(workdir, Path::new(WORKSPACE_MOUNT), workdir_read_only)];
        if let Some(bin) = &self.binary {
            mounts.push(bind(bin, Path::new(BINARY_MOUNT), true));
        }
        if let Some(sock) = socket {
            // Read-only is enough to connect to a socket, and nothing can replace it.
            mounts.push(bind(sock, Path::new(SOCKET_MOUNT), true));
        }
        mounts.extend(read_only.iter().map(|p| bind(p, p, true)));
        mounts
    }
}

#[async_trait]
impl Sandbox for DockerSandbox {
    fn kind(&self) -> BackendKind {
        BackendKind::Docker
    }

    async fn launch(&self, spec: LaunchSpec) -> Result<Process, SandboxError> {
        if spec.argv.is_empty() {
            return Err(SandboxError::EmptyCommand);
        }
        let workdir = spec
            .workdir
            .canonicalize()
            .map_err(SandboxError::io(&spec.workdir))?;
        let mut env = vec![
            ("HOME".to_string(), "/tmp".to_string()),
            ("TMPDIR".to_string(), "/tmp".to_string()),
        ];
        for (k, v) in build_env(&self.allowed_env, HOST_ONLY_ENV, &spec, BackendKind::Docker) {
            env.retain(|(ek, _)| *ek != k);
            env.push((k, v));
        }
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let memory = (self.cfg.memory_mb as i64).saturating_mul(1024 * 1024);
        let body = ContainerCreateBody {
            image: Some(self.cfg.image.clone()),
            // Entrypoint replaced too: the argv is the whole command, whatever the image says.
            entrypoint: Some(vec![spec.argv[0].clone()]),
            cmd: Some(spec.argv[1..].to_vec()),
            env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            working_dir: Some(WORKSPACE_MOUNT.to_string()),
            user: Some(format!("{uid}:{gid}")),
            labels: Some({
                let mut l = self.extra_labels.clone();
                // Last, so no extra label can forge the workspace's or the run's.
                l.insert(LABEL_WORKSPACE.to_string(), spec.labels.workspace.clone());
                l.insert(LABEL_RUN.to_string(), spec.labels.run.to_string());
                l
            }),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            attach_stdin: Some(false),
            open_stdin: Some(false),
            tty: Some(false),
            host_config: Some(HostConfig {
                mounts: Some(self.mounts(
                    &workdir,
                    spec.workdir_read_only,
                    spec.socket.as_deref(),
                    &spec.read_only,
                )),
                cap_drop: Some(vec!["ALL".to_string()]),
                security_opt: Some(vec!["no-new-privileges".to_string()]),
                readonly_rootfs: Some(true),
                tmpfs: Some(HashMap::from([(
                    "/tmp".to_string(),
                    "rw,nosuid,nodev,size=1g".to_string(),
                )])),
                nano_cpus: Some((self.cfg.cpus * 1e9) as i64),
                memory: Some(memory),
                // Same as memory: no swap on top, the limit is the limit.
                memory_swap: Some(memory),
                pids_limit: Some(self.cfg.pids),
                network_mode: Some(self.cfg.network.clone()),
                // Removed by us after wait(), once its exit code has been read.
                auto_remove: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = self
            .docker
            .create_container(None, body)
            .await
            .map_err(engine("creating the container"))?
            .id;
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone());

        match self.start(&id).await {
            Ok(p) => Ok(p),
            Err(e) => {
                let _ = self.docker.remove_container(&id, Some(force())).await;
                self.live
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                Err(e)
            }
        }
    }

    async fn reap_orphans(&self, workspace: &str) -> Result<usize, SandboxError> {
        let opts = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([(
                "label".to_string(),
                vec![format!("{LABEL_WORKSPACE}={workspace}")],
            )])),
            ..Default::default()
        };
        let found = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(engine("listing containers"))?;
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut removed = 0;
        for c in found {
            let Some(id) = c.id else { continue };
            if live.contains(&id) {
                continue;
            }
            match self.docker.remove_container(&id, Some(force())).await {
                Ok(()) => removed += 1,
                // Already gone (another reaper, or auto-removal): fine.
                Err(e) if is_status(&e, &[404, 409]) => {}
                Err(e) => return Err(engine("removing a leftover container")(e)),
            }
        }
        Ok(removed)
    }
}

/// Which stream a line came from.
type Wrap = fn(Vec<u8>) -> Output;

fn force() -> RemoveContainerOptions {
    RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    }
}

impl DockerSandbox {
    /// Attach (before start, so no output is lost), start, and spawn the tasks that stream
    /// output and wait for the exit.
    async fn start(&self, id: &str) -> Result<Process, SandboxError> {
        let attached = self
            .docker
            .attach_container(
                id,
                Some(AttachContainerOptions {
                    stream: true,
                    stdout: true,
                    stderr: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(engine("attaching to the container"))?;
        self.docker
            .start_container(id, None)
            .await
            .map_err(engine("starting the container"))?;

        let (tx, rx) = mpsc::channel(OUTPUT_BUFFER);
        let mut stream = attached.output;
        let pump = tokio::spawn(async move {
            let mut out = LineSplitter::default();
            let mut err = LineSplitter::default();
            let mut open = true;
            let send = async |o: Output, open: &mut bool| {
                if *open && tx.send(o).await.is_err() {
                    // Nobody listens: keep draining so the container never blocks.
                    *open = false;
                }
            };
            while let Some(Ok(frame)) = stream.next().await {
                let (lines, wrap): (Vec<Vec<u8>>, Wrap) = match frame {
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        let mut v = Vec::new();
                        out.push(&message, |l| v.push(l));
                        (v, Output::Stdout)
                    }
                    LogOutput::StdErr { message } => {
                        let mut v = Vec::new();
                        err.push(&message, |l| v.push(l));
                        (v, Output::Stderr)
                    }
                    LogOutput::StdIn { .. } => continue,
                };
                for l in lines {
                    send(wrap(l), &mut open).await;
                }
            }
            if let Some(l) = out.finish() {
                send(Output::Stdout(l), &mut open).await;
            }
            if let Some(l) = err.finish() {
                send(Output::Stderr(l), &mut open).await;
            }
        });

        let killed = Arc::new(AtomicBool::new(false));
        let (exit_tx, exit_rx) = watch::channel(None);
        {
            let docker = self.docker.clone();
            let id = id.to_string();
            let killed = killed.clone();
            let live = self.live.clone();
            tokio::spawn(async move {
                // A non-zero exit arrives as an error item; the state is read below either way.
                let _ = docker
                    .wait_container(&id, None::<WaitContainerOptions>)
                    .next()
                    .await;
                let code = docker
                    .inspect_container(&id, None)
                    .await
                    .ok()
                    .and_then(|i| i.state)
                    .and_then(|s| s.exit_code);
                // Let the attach stream deliver its last bytes before the container goes.
                let _ = tokio::time::timeout(Duration::from_secs(2), pump).await;
                let _ = docker.remove_container(&id, Some(force())).await;
                live.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                let exit = if killed.load(Ordering::SeqCst) {
                    Exit {
                        code: None,
                        signal: Some(libc::SIGKILL),
                    }
                } else {
                    Exit {
                        code: code.map(|c| c as i32),
                        signal: None,
                    }
                };
                let _ = exit_tx.send(Some(exit));
            });
        }

        Ok(Process {
            output: rx,
            control: Box::new(ContainerControl {
                docker: self.docker.clone(),
                id: id.to_string(),
                killed,
                exit: exit_rx,
            }),
        })
    }
}

struct ContainerControl {
    docker: Docker,
    id: String,
    killed: Arc<AtomicBool>,
    exit: watch::Receiver<Option<Exit>>,
}

#[async_trait]
impl ProcessControl for ContainerControl {
    fn id(&self) -> String {
        format!("container {}", &self.id[..self.id.len().min(12)])
    }

    async fn kill(&self) -> Result<(), SandboxError> {
        if self.exit.borrow().is_some() {
            return Ok(());
        }
        self.killed.store(true, Ordering::SeqCst);
        // SIGKILL at once: the container's PID 1 is usually the agent or a shell, and PID 1
        // in a namespace ignores SIGTERM unless it installs a handler.
        let opts = KillContainerOptions {
            signal: "SIGKILL".to_string(),
        };
        match self.docker.kill_container(&self.id, Some(opts)).await {
            Ok(()) => {}
            // Not running any more, or already removed.
            Err(e) if is_status(&e, &[404, 409]) => {}
            Err(e) => return Err(engine("killing the container")(e)),
        }
        let mut rx = self.exit.clone();
        let _ = tokio::time::timeout(Duration::from_secs(1), rx.wait_for(|e| e.is_some())).await;
        Ok(())
    }

    async fn wait(&self) -> Result<Exit, SandboxError> {
        super::published(&self.exit)
            .await
            .ok_or_else(|| SandboxError::Docker {
                action: "waiting for the container".into(),
                detail: "the waiter ended without a status".into(),
            })
    }
}

impl Drop for ContainerControl {
    /// A dropped handle must not leave a container running unsupervised (invariant 5).
    fn drop(&mut self) {
        if self.exit.borrow().is_some() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let docker = self.docker.clone();
            let id = self.id.clone();
            rt.spawn(async move {
                let _ = docker.remove_container(&id, Some(force())).await;
            });
        }
    }
}

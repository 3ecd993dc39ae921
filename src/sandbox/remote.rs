//! Runs on another machine, through its held SSH connection ([`crate::hosts::link`]), with
//! no shared filesystem: the base commit goes to the host's bare mirror with `git push`
//! (incremental: only what the mirror lacks), the run's checkout is a `git clone --shared`
//! of the mirror there, the agent runs in it (as a process group of its own, or in a
//! container with the same hardening as locally), its output comes back line by line on
//! the session's stdout and stderr into the same ingest as a local run's, and its branch
//! comes back with `git fetch` when it ends.
//!
//! A session's wrapper records the agent's process group in `pids/<run>` (what a restarted
//! factory reaps by), watches its own stdin so the agent dies when the session does (the
//! factory died or closed it), and says the agent's exit as its last stderr line, marked
//! with a nonce the agent never sees: a session that ends without it lost its host.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use tokio::sync::{mpsc, watch};

use super::checkout::{Leftovers, PrepareSpec, Prepared};
use super::worktree::OUTPUT_BUFFER;
use super::{
    BackendKind, ENV_RUN, ENV_SANDBOX, ENV_WORKSPACE, Exit, LABEL_RUN, LABEL_WORKSPACE, LaunchSpec,
    Output, Process, ProcessControl, Sandbox, SandboxConfig, SandboxError, docker,
};
use crate::hosts::HostBackend;
use crate::hosts::link::{Link, LinkError, quote};

/// The most bytes of `[sandbox] include` files a run sends to a host.
const MAX_INCLUDE_BYTES: usize = 4 << 20;
/// How long `kill()` lets a process group handle SIGTERM before SIGKILL.
const TERM_GRACE: &str = "0.4";

impl From<LinkError> for SandboxError {
    fn from(e: LinkError) -> SandboxError {
        match e {
            LinkError::Lost { host } => SandboxError::HostLost { host },
            other => SandboxError::Host {
                detail: other.to_string(),
            },
        }
    }
}

/// The runs of one workspace on one host.
pub struct RemoteSandbox {
    link: Arc<Link>,
    backend: HostBackend,
    image: String,
    cfg: SandboxConfig,
    /// The workspace's label (as locally): processes and containers carry it.
    label: String,
    /// The base branch, as the mirror names it too.
    base: String,
    /// The factory's clone: pushed from, fetched into.
    clone: PathBuf,
    /// The mirror's base tip as last pushed: one push at a time, none when unchanged.
    mirrored: tokio::sync::Mutex<Option<String>>,
    nonces: AtomicU64,
}

impl RemoteSandbox {
    pub fn new(
        link: Arc<Link>,
        cfg: &SandboxConfig,
        label: String,
        base: String,
        clone: PathBuf,
    ) -> RemoteSandbox {
        let image = link.host.image.clone().unwrap_or_else(|| cfg.image.clone());
        RemoteSandbox {
            backend: link.host.backend,
            mirrored: tokio::sync::Mutex::new(link.mirrored.clone()),
            link,
            image,
            cfg: cfg.clone(),
            label,
            base,
            clone,
            nonces: AtomicU64::new(0),
        }
    }

    /// Whether the host's mirror holds the repository (a run there transfers little).
    pub fn has_objects(&self) -> bool {
        self.mirrored
            .try_lock()
            .map(|m| m.is_some())
            .unwrap_or(true)
    }

    pub fn link(&self) -> &Arc<Link> {
        &self.link
    }

    pub fn host(&self) -> &str {
        &self.link.host.name
    }

    /// The mirror's object store, which checkouts on the host borrow (a container gets it
    /// read-only at the same path).
    fn mirror(&self) -> String {
        format!("{}/mirror.git", self.link.root)
    }

    /// Where agents see their checkout, the factory's socket and the binary.
    pub fn agent_paths(&self, dir: &Path) -> (PathBuf, Option<PathBuf>, PathBuf) {
        match self.backend {
            HostBackend::Worktree => (
                dir.to_path_buf(),
                self.link.socket.as_ref().map(PathBuf::from),
                PathBuf::from(&self.link.exe),
            ),
            HostBackend::Docker => (
                PathBuf::from(docker::WORKSPACE_MOUNT),
                self.link
                    .socket
                    .as_ref()
                    .map(|_| PathBuf::from(docker::SOCKET_MOUNT)),
                PathBuf::from(docker::BINARY_MOUNT),
            ),
        }
    }

    /// Bring the mirror to `commit` (only what it lacks crosses), unless it is there.
    pub async fn push(&self, commit: &str) -> Result<(), SandboxError> {
        let mut mirrored = self.mirrored.lock().await;
        if mirrored.as_deref() == Some(commit) {
            return Ok(());
        }
        let _turn = self.link.short_turn().await;
        let started = std::time::Instant::now();
        let out = tokio::process::Command::new("git")
            .arg("-C")
            .arg(&self.clone)
            .args(["push", "--quiet", "--force"])
            .arg(self.link.git_url(&self.mirror()))
            .arg(format!("{commit}:refs/heads/{}", self.base))
            .env("GIT_SSH_COMMAND", self.link.git_ssh_command())
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(SandboxError::io(&self.clone))?;
        if !out.status.success() {
            if self.link.is_lost() {
                return Err(self.link.lost_error().into());
            }
            return Err(SandboxError::Host {
                detail: format!(
                    "pushing {} to `{}`'s mirror: {}",
                    &commit[..commit.len().min(12)],
                    self.host(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        *mirrored = Some(commit.to_string());
        tracing::debug!(
            host = self.host(),
            ms = started.elapsed().as_millis() as u64,
            "pushed to the mirror"
        );
        Ok(())
    }

    /// A fresh checkout on the host on `shopfloor/<ticket>-<attempt>` from the base
    /// branch's tip in the factory's clone, with the git-ignored `include` files of the
    /// user's checkout. The branch exists in the clone from the start, as locally.
    pub async fn prepare(
        &self,
        spec: &PrepareSpec,
        include: &[String],
    ) -> Result<Prepared, SandboxError> {
        let leaf = format!("{}-{}", spec.ticket, spec.attempt);
        let branch = format!("shopfloor/{leaf}");
        let (spec2, include, branch2) = (spec.clone(), include.to_vec(), branch.clone());
        let (base_commit, clone, files) = local_git(move || {
            let (base, clone) = super::checkout::start_branch(&spec2, &branch2)?;
            let files = super::checkout::include_files(&spec2.user_checkout, &include)?;
            Ok((base, clone, files))
        })
        .await?;
        let size: usize = files.iter().map(|(_, b)| b.len()).sum();
        if size > MAX_INCLUDE_BYTES {
            return Err(SandboxError::Host {
                detail: format!(
                    "the [sandbox] include files are {size} bytes, more than {MAX_INCLUDE_BYTES} to send to `{}`; include fewer",
                    self.host()
                ),
            });
        }
        self.push(&base_commit).await?;
        let started = std::time::Instant::now();
        let dir = format!("{}/runs/{leaf}", self.link.root);
        let mut script = format!(
            "set -e\nD={d}\nchmod -R u+w \"$D\" 2>/dev/null || true\nrm -rf \"$D\"\n\
             git clone -q --shared --no-checkout {m} \"$D\"\ncd \"$D\"\n\
             git remote remove origin\n\
             git checkout -q -B {b} {c}\n",
            d = quote(&dir),
            m = quote(&self.mirror()),
            b = quote(&branch),
            c = quote(&base_commit),
        );
        if spec.base != branch {
            script.push_str(&format!(
                "git branch -f {} {} 2>/dev/null || true\n",
                quote(&spec.base),
                quote(&base_commit)
            ));
        }
        script.push_str(&format!(
            "git config user.name {}\ngit config user.email shopfloor@localhost\n",
            quote(&format!("shopfloor run {}", spec.run))
        ));
        script.push_str(&write_files_script(&files, None));
        self.link
            .run(&script, "preparing the run's checkout")
            .await?;
        tracing::debug!(
            host = self.host(),
            ms = started.elapsed().as_millis() as u64,
            "checkout prepared"
        );
        Ok(Prepared {
            dir: PathBuf::from(dir),
            branch,
            base_commit,
            clone,
        })
    }

    /// Write the run's own files (its MCP config, its token) into its checkout, owner-only.
    pub async fn write_files(
        &self,
        prepared: &Prepared,
        files: &[(PathBuf, Vec<u8>)],
    ) -> Result<(), SandboxError> {
        if files.is_empty() {
            return Ok(());
        }
        let script = format!(
            "set -e\ncd {}\n{}",
            quote(&prepared.dir.to_string_lossy()),
            write_files_script(files, Some(0o600))
        );
        let started = std::time::Instant::now();
        self.link.run(&script, "writing the run's files").await?;
        tracing::debug!(
            host = self.host(),
            ms = started.elapsed().as_millis() as u64,
            "run's files written"
        );
        Ok(())
    }

    /// Commit what the agent left on the run's branch there and fetch the branch into the
    /// factory's clone. The agent could have rewritten its repository's config (hooks, a
    /// filesystem monitor: commands git would run outside a container), so git there runs
    /// on a fresh config with hooks off.
    pub async fn leftovers(
        &self,
        p: &Prepared,
        message: &str,
        author: &str,
    ) -> Result<Leftovers, SandboxError> {
        let (name, email) = super::checkout::parse_author(author);
        // Trusting none of what the agent may have changed in `.git`, as locally: a real
        // directory (not a link sending git elsewhere on the host), alternates naming the
        // mirror only, a config replaced rather than edited (a link there would be
        // written through), the work tree the checkout whatever it said.
        let script = format!(
            "set -e\ncd {d}\n\
             if [ -L .git ] || [ ! -d .git ]; then echo \"the run's .git is no longer a directory (the agent replaced it); its work cannot be read back\" >&2; exit 3; fi\n\
             rm -f .git/config .git/objects/info/alternates .git/objects/info/http-alternates\n\
             printf '[core]\\n\\trepositoryformatversion = 0\\n\\tbare = false\\n' > .git/config\n\
             mkdir -p .git/objects/info && printf '%s\\n' {objects} > .git/objects/info/alternates\n\
             rm -rf .git/hooks\n\
             g() {{ GIT_DIR=.git GIT_WORK_TREE=. git -c core.hooksPath=/dev/null -c core.fsmonitor= -c user.name={n} -c user.email={e} \"$@\"; }}\n\
             g add -A\n\
             if g diff --cached --quiet; then echo same; else g commit -q --no-verify -m {msg}; echo committed; fi\n\
             g update-ref {r} HEAD\ng rev-parse HEAD\n",
            d = quote(&p.dir.to_string_lossy()),
            objects = quote(&format!("{}/objects", self.mirror())),
            n = quote(&name),
            e = quote(&email),
            msg = quote(message),
            r = quote(&format!("refs/heads/{}", p.branch)),
        );
        let done = self
            .link
            .run(&script, "committing the run's leftovers")
            .await?;
        let mut lines = done.stdout.lines().map(str::trim);
        let committed = lines.next() == Some("committed");
        let tip = lines.next().unwrap_or_default().to_string();
        let url = self.link.git_url(&p.dir.to_string_lossy());
        let ssh = self.link.git_ssh_command();
        let p2 = p.clone();
        let _turn = self.link.short_turn().await;
        let files = local_git(move || {
            super::checkout::fetch_branch(&p2, &url, &ssh)?;
            super::checkout::changed_files(&p2)
        })
        .await;
        let files = match files {
            Err(_) if self.link.is_lost() => return Err(self.link.lost_error().into()),
            other => other?,
        };
        Ok(Leftovers {
            commit: committed.then_some(tip),
            files_changed: files,
        })
    }

    /// Remove the run's checkout on the host; the branch is home already.
    pub async fn remove(&self, p: &Prepared) -> Result<(), SandboxError> {
        let d = quote(&p.dir.to_string_lossy());
        self.link
            .run(
                &format!("chmod -R u+w {d} 2>/dev/null; rm -rf {d}"),
                "removing the run's checkout",
            )
            .await?;
        Ok(())
    }

    fn container_name(&self, run: u64) -> String {
        format!("shopfloor-{}-{run}", self.label)
    }

    /// The command that runs the agent in the wrapper: as a process group of its own
    /// with a scrubbed environment, or in a hardened container.
    fn agent_command(&self, spec: &LaunchSpec) -> String {
        let labels = [
            (ENV_WORKSPACE.to_string(), spec.labels.workspace.clone()),
            (ENV_RUN.to_string(), spec.labels.run.to_string()),
        ];
        let argv: Vec<String> = spec.argv.iter().map(|a| quote(a)).collect();
        match self.backend {
            HostBackend::Worktree => {
                // The host's own PATH and HOME, not the factory's; what `env_allow` adds
                // beyond them comes from the factory, as locally.
                let mut words = vec![
                    "env -i PATH=\"$PATH\" HOME=\"$HOME\" USER=\"${USER:-}\" LANG=\"${LANG:-C.UTF-8}\""
                        .to_string(),
                ];
                for (k, v) in self.env_for(spec, super::BASE_ENV) {
                    words.push(quote(&format!("{k}={v}")));
                }
                for (k, v) in labels {
                    words.push(quote(&format!("{k}={v}")));
                }
                words.push(quote(&format!("{ENV_SANDBOX}=worktree")));
                words.push("setsid -w".into());
                words.extend(argv);
                words.join(" ")
            }
            HostBackend::Docker => {
                let memory = format!("{}m", self.cfg.memory_mb);
                let mut w = vec![
                    "setsid -w docker run --rm -i".to_string(),
                    format!("--name {}", quote(&self.container_name(spec.labels.run))),
                    format!(
                        "--label {}",
                        quote(&format!("{LABEL_WORKSPACE}={}", spec.labels.workspace))
                    ),
                    format!(
                        "--label {}",
                        quote(&format!("{LABEL_RUN}={}", spec.labels.run))
                    ),
                    "--cap-drop ALL --security-opt no-new-privileges --read-only".into(),
                    "--tmpfs /tmp:rw,nosuid,nodev,size=1g".into(),
                    format!("--cpus {}", self.cfg.cpus),
                    format!("--memory {memory} --memory-swap {memory}"),
                    format!("--pids-limit {}", self.cfg.pids),
                    format!("--network {}", quote(&self.cfg.network)),
                    "--user \"$(id -u):$(id -g)\"".into(),
                    format!("--workdir {}", docker::WORKSPACE_MOUNT),
                ];
                let ro = if spec.workdir_read_only {
                    ",readonly"
                } else {
                    ""
                };
                let mount = |src: &str, dst: &str, extra: &str| {
                    format!(
                        "--mount {}",
                        quote(&format!("type=bind,source={src},target={dst}{extra}"))
                    )
                };
                w.push(mount(
                    &spec.workdir.to_string_lossy(),
                    docker::WORKSPACE_MOUNT,
                    ro,
                ));
                w.push(mount(&self.link.exe, docker::BINARY_MOUNT, ",readonly"));
                if let Some(s) = &self.link.socket
                    && spec.socket.is_some()
                {
                    w.push(mount(s, docker::SOCKET_MOUNT, ",readonly"));
                }
                let objects = format!("{}/objects", self.mirror());
                w.push(mount(&objects, &objects, ",readonly"));
                let mut env = vec![
                    ("HOME".to_string(), "/tmp".to_string()),
                    ("TMPDIR".to_string(), "/tmp".to_string()),
                ];
                env.extend(self.env_for(spec, &["PATH", "HOME", "TMPDIR", "USER"]));
                env.extend(labels);
                env.push((ENV_SANDBOX.to_string(), "docker".to_string()));
                for (k, v) in env {
                    w.push(format!("-e {}", quote(&format!("{k}={v}"))));
                }
                w.push(format!("--entrypoint {}", argv[0]));
                w.push(quote(&self.image));
                w.extend(argv[1..].iter().cloned());
                w.join(" ")
            }
        }
    }

    /// The allowlisted variables from the factory's environment (less `skip`) and the
    /// launch's own, labels excluded (the wrapper sets them last).
    fn env_for(&self, spec: &LaunchSpec, skip: &[&str]) -> Vec<(String, String)> {
        super::build_env(
            &self.cfg.allowed_env_names(),
            skip,
            spec,
            BackendKind::Worktree,
        )
        .into_iter()
        .filter(|(k, _)| ![ENV_WORKSPACE, ENV_RUN, ENV_SANDBOX].contains(&k.as_str()))
        .collect()
    }

    fn nonce(&self, run: u64) -> String {
        let n = self.nonces.fetch_add(1, Ordering::SeqCst);
        let seed = format!(
            "{run}-{n}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        );
        format!(
            "shopfloor-exit-{}",
            &blake3::hash(seed.as_bytes()).to_hex()[..24]
        )
    }
}

/// Run the factory's own git work (the clone, the user's checkout) off the async threads.
async fn local_git<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SandboxError> + Send + 'static,
) -> Result<T, SandboxError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SandboxError::Host {
            detail: format!("a background task failed: {e}"),
        })?
}

/// Shell lines writing `files` (relative paths) in the current directory, from base64.
fn write_files_script(files: &[(PathBuf, Vec<u8>)], mode: Option<u32>) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut s = String::new();
    for (path, bytes) in files {
        let p = quote(&path.to_string_lossy());
        s.push_str(&format!(
            "mkdir -p \"$(dirname {p})\"\nprintf %s {} | base64 -d > {p}\n",
            quote(&b64.encode(bytes))
        ));
        if let Some(m) = mode {
            s.push_str(&format!("chmod {m:o} {p}\n"));
        }
    }
    s
}

#[async_trait]
impl Sandbox for RemoteSandbox {
    fn kind(&self) -> BackendKind {
        match self.backend {
            HostBackend::Worktree => BackendKind::Worktree,
            HostBackend::Docker => BackendKind::Docker,
        }
    }

    async fn launch(&self, spec: LaunchSpec) -> Result<Process, SandboxError> {
        if spec.argv.is_empty() {
            return Err(SandboxError::EmptyCommand);
        }
        if self.link.is_lost() {
            return Err(self.link.lost_error().into());
        }
        let run = spec.labels.run;
        let nonce = self.nonce(run);
        let pidfile = format!("{}/pids/{run}", self.link.root);
        // The agent's command (its prompt, environment and token in it) goes to a file on
        // the host over stdin: on the SSH command line it would meet the 128 KiB bound on
        // one argument. It `exec`s, so the pid the wrapper keeps is the agent's own.
        let command_file = format!("{}/runs/run-{run}.sh", self.link.root);
        self.link
            .write_file(
                &command_file,
                format!("exec {}\n", self.agent_command(&spec)).into_bytes(),
                "writing the agent's command",
            )
            .await?;
        let stop_container = match self.backend {
            HostBackend::Docker => format!(
                "docker kill {} >/dev/null 2>&1",
                quote(&self.container_name(run))
            ),
            HostBackend::Worktree => ":".into(),
        };
        // stdin (fd 3 in the watchdog) stays open while the session lives: its end means
        // the factory or the link is gone, and the agent goes with it.
        let script = format!(
            "exec 3<&0\ncd {dir} || exit 97\n\
             sh {cf} </dev/null &\npid=$!\necho $pid > {pf}\n\
             {{ cat <&3 >/dev/null; {stop}; kill -TERM -$pid 2>/dev/null; sleep {grace}; kill -KILL -$pid 2>/dev/null; }} &\nwd=$!\n\
             wait $pid\ncode=$?\nkill -KILL -$pid 2>/dev/null\nkill $wd 2>/dev/null\nrm -f {pf} {cf}\n\
             echo \"{nonce} $code\" >&2\n",
            dir = quote(&spec.workdir.to_string_lossy()),
            cf = quote(&command_file),
            pf = quote(&pidfile),
            stop = stop_container,
            grace = TERM_GRACE,
        );
        let mut cmd = self.link.session(&script);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| SandboxError::Spawn {
            program: "ssh".into(),
            dir: spec.workdir.clone(),
            source,
        })?;
        // Held open, never written: see the watchdog above.
        let stdin = child.stdin.take();

        let (tx, rx) = mpsc::channel(OUTPUT_BUFFER);
        let (said_tx, said_rx) = watch::channel(None::<i32>);
        let out_pump = child
            .stdout
            .take()
            .map(|out| tokio::spawn(super::worktree::pump(out, tx.clone(), Output::Stdout)));
        let err_pump = child
            .stderr
            .take()
            .map(|err| tokio::spawn(pump_stderr(err, tx, nonce.clone(), said_tx)));

        let (exit_tx, exit_rx) = watch::channel(None);
        let link = self.link.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            if let Some(p) = out_pump {
                let _ = p.await;
            }
            if let Some(p) = err_pump {
                let _ = p.await;
            }
            drop(stdin);
            let said = *said_rx.borrow();
            let ended = match (said, status) {
                (Some(code), _) if code > 128 => Ok(Exit {
                    code: None,
                    signal: Some(code - 128),
                }),
                (Some(code), _) => Ok(Exit {
                    code: Some(code),
                    signal: None,
                }),
                // No word from the wrapper: the session died under it.
                (None, _) if link.is_lost() => Err(link.host.name.clone()),
                (None, Ok(s)) if s.code() == Some(255) || s.code().is_none() => {
                    // The link may be going down: give its keepalives time to say so.
                    let wait =
                        crate::hosts::link::KEEPALIVE * (crate::hosts::link::KEEPALIVE_MISSES + 2);
                    let _ = tokio::time::timeout(wait, link.lost()).await;
                    Err(link.host.name.clone())
                }
                (None, Ok(s)) => Ok(Exit {
                    code: s.code(),
                    signal: None,
                }),
                (None, Err(_)) => Err(link.host.name.clone()),
            };
            let _ = exit_tx.send(Some(ended));
        });

        Ok(Process {
            output: rx,
            control: Box::new(RemoteControl {
                link: self.link.clone(),
                pidfile,
                stop_container,
                exit: exit_rx,
            }),
        })
    }

    /// Reaping happens when the link comes up ([`Link::open`]), before any run is placed.
    async fn reap_orphans(&self, _workspace: &str) -> Result<usize, SandboxError> {
        Ok(0)
    }
}

/// stderr's lines, but the wrapper's exit line: kept, not passed on.
async fn pump_stderr(
    src: tokio::process::ChildStderr,
    tx: mpsc::Sender<Output>,
    nonce: String,
    said: watch::Sender<Option<i32>>,
) {
    let prefix = format!("{nonce} ");
    super::worktree::pump_with(src, tx, |l| {
        match l
            .strip_prefix(prefix.as_bytes())
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(|c| c.trim().parse::<i32>().ok())
        {
            Some(code) => {
                let _ = said.send(Some(code));
                None
            }
            None => Some(Output::Stderr(l)),
        }
    })
    .await
}

struct RemoteControl {
    link: Arc<Link>,
    pidfile: String,
    stop_container: String,
    /// Ok(exit), or Err(host) when the host was lost.
    exit: watch::Receiver<Option<Result<Exit, String>>>,
}

#[async_trait]
impl ProcessControl for RemoteControl {
    fn id(&self) -> String {
        format!("on {}", self.link.host.name)
    }

    async fn kill(&self) -> Result<(), SandboxError> {
        if self.exit.borrow().is_some() {
            return Ok(());
        }
        let script = format!(
            "{stop}; p=$(cat {pf} 2>/dev/null) || exit 0\n\
             [ \"$p\" -gt 1 ] 2>/dev/null || exit 0\n\
             kill -TERM -\"$p\" 2>/dev/null; sleep {TERM_GRACE}; kill -KILL -\"$p\" 2>/dev/null; true\n",
            stop = self.stop_container,
            pf = quote(&self.pidfile),
        );
        if let Err(e) = self.link.try_run(&script, Vec::new()).await {
            tracing::warn!(host = %self.link.host.name, error = %e, "could not stop a run there");
        }
        let mut rx = self.exit.clone();
        let _ = tokio::time::timeout(Duration::from_secs(2), rx.wait_for(|e| e.is_some())).await;
        Ok(())
    }

    async fn wait(&self) -> Result<Exit, SandboxError> {
        match super::published(&self.exit).await {
            Some(Ok(exit)) => Ok(exit),
            Some(Err(host)) => Err(SandboxError::HostLost { host }),
            None => Err(SandboxError::Host {
                detail: "the session's waiter ended without a status".into(),
            }),
        }
    }
}

//! One SSH connection per host, held open by the factory (OpenSSH's connection sharing,
//! `ControlMaster`). Every command, git transfer and agent session to the host rides it as
//! a session of its own, costing milliseconds instead of a handshake; its keepalives notice
//! a host that stops answering; and it carries the one forward agents there reach the
//! factory by: a Unix socket in the host's work dir forwarded back (`ssh -R`) to the
//! factory's sandboxes' socket. Nothing listens on a network port.
//!
//! On the host, a workspace keeps everything under `<work_dir>/<workspace label>/`:
//! `mirror.git` (a bare mirror of the factory's clone, pushed to incrementally), `runs/`
//! (one checkout per run), `pids/` (each live run's process group, the label a restarted
//! factory reaps by), `bin/` (the factory's own binary, by content hash) and `factory.sock`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use super::{HostConfig, Ssh, SshTarget};
use crate::layout::WorkspaceInfo;

/// A command that reads a script of `len` bytes from stdin whole, then runs it with stdin
/// closed (so nothing in it can eat the rest of itself) and exits with its status. A script
/// cut short (the factory gone mid-send) does not run at all.
fn run_from_stdin(len: usize) -> String {
    format!(
        "f=$(mktemp) || exit 1; cat > \"$f\"; \
         if [ $(wc -c < \"$f\") -eq {len} ]; then sh \"$f\" </dev/null; c=$?; \
         else echo 'the script arrived cut short; nothing ran' >&2; c=1; fi; rm -f \"$f\"; exit $c"
    )
}

/// Keepalives on the held connection: a host that leaves this many in a row unanswered,
/// this far apart, is lost (so a dead host is noticed within about 6 to 8 seconds).
pub const KEEPALIVE: Duration = Duration::from_secs(2);
pub const KEEPALIVE_MISSES: u32 = 3;
/// How long the connection may take to come up.
const CONNECT: Duration = Duration::from_secs(15);
/// How long one short command (not an agent's session) may take.
const COMMAND: Duration = Duration::from_secs(120);
/// Short sessions (commands, git transfers) open at once on one connection. sshd allows
/// `MaxSessions` (10 by default) per connection: a host's slots plus these must fit, so
/// hosts with more than 8 slots need `MaxSessions` raised; the link checks when it comes
/// up ([`Link::check_sessions`]).
pub const SHORT_SESSIONS: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(
        "host `{host}` does not answer over SSH ({detail}); `shopfloor host check {host}` says what is wrong"
    )]
    Connect { host: String, detail: String },
    #[error(
        "host `{host}` stopped answering (its SSH keepalives went unanswered); it stays down until `shopfloor host check {host}` passes"
    )]
    Lost { host: String },
    #[error("on host `{host}`, {what} failed: {detail}")]
    Command {
        host: String,
        what: String,
        detail: String,
    },
    #[error(
        "could not start `ssh` ({0}); install the OpenSSH client (`apt install openssh-client`)"
    )]
    Spawn(std::io::Error),
}

/// What a command on the host did.
#[derive(Debug)]
pub struct Done {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Done {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// Its complaint in a line: stderr's last line, else its exit.
    pub fn said(&self) -> String {
        self.stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_string())
            .unwrap_or_else(|| match self.code {
                Some(c) => format!("it failed with exit {c}"),
                None => "it failed".into(),
            })
    }
}

/// An open connection to one host.
pub struct Link {
    pub host: HostConfig,
    ssh: Ssh,
    control: PathBuf,
    /// Turns true when the held connection ends.
    lost: watch::Receiver<bool>,
    /// Set when the factory closed it on purpose: not a lost host.
    closing: Arc<AtomicBool>,
    /// The workspace's directory on the host, absolute there.
    pub root: String,
    /// The factory's socket as agents on the host reach it, when it serves MCP.
    pub socket: Option<String>,
    /// The factory's binary on the host (for `shopfloor mcp` and fixture agents).
    pub exe: String,
    /// The mirror's base branch tip when the link came up (None: an empty mirror).
    pub mirrored: Option<String>,
    /// How many processes and containers of an earlier factory the link reaped.
    pub reaped: usize,
    /// Bounds the short sessions open at once (see [`SHORT_SESSIONS`]).
    short: tokio::sync::Semaphore,
}

/// Quote `s` for a POSIX shell: one word, taken literally.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Kill this child if the factory dies (even by SIGKILL): a held connection or a session
/// outliving the factory would keep agents running that nobody reads.
fn die_with_factory(c: &mut Command) {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
}

/// The control socket's path: short (Unix socket paths stop at 108 bytes), private, one
/// per workspace and host.
fn control_path(info: &WorkspaceInfo, host: &str) -> std::io::Result<PathBuf> {
    let dir = control_dir(&std::env::temp_dir())?;
    let key = blake3::hash(format!("{}\0{host}", info.dir.display()).as_bytes());
    Ok(dir.join(&key.to_hex()[..20]))
}

/// `<base>/shopfloor-ssh-<uid>`, made owner-only. In a shared /tmp another user could
/// have made it first (or a link by its name), and could then swap the sockets in it:
/// only a directory of our own will do, checked before anything is done to it.
fn control_dir(base: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::MetadataExt as _;
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = base.join(format!("shopfloor-ssh-{uid}"));
    let ours = |meta: &std::fs::Metadata| meta.is_dir() && meta.uid() == uid;
    if let Ok(meta) = std::fs::symlink_metadata(&dir)
        && !ours(&meta)
    {
        return Err(std::io::Error::other(format!(
            "{} belongs to another user (or is not a directory): remove it, it holds the factory's SSH control sockets",
            dir.display()
        )));
    }
    crate::private::private_dir(&dir)?;
    Ok(dir)
}

impl Link {
    /// Open the connection to `host` and make the workspace's directory there ready: the
    /// mirror, the factory's binary, the forwarded socket (to `local_socket`, when the
    /// factory serves MCP). Whatever an earlier factory of this workspace left running
    /// there is killed first.
    pub async fn open(
        info: &WorkspaceInfo,
        host: &HostConfig,
        label: &str,
        base: &str,
        local_socket: Option<&Path>,
        exe: &Path,
    ) -> Result<Arc<Link>, LinkError> {
        let ssh = Ssh::new(info, host);
        let control = control_path(info, &host.name).map_err(LinkError::Spawn)?;
        let connect_err = |detail: String| LinkError::Connect {
            host: host.name.clone(),
            detail,
        };
        // A master a killed factory left behind (or its socket) goes first.
        let _ = Command::new("ssh")
            .arg("-S")
            .arg(&control)
            .args(["-O", "exit", "x"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        let _ = std::fs::remove_file(&control);

        let mut master = Command::new("ssh");
        master
            .args(["-M", "-N", "-S"])
            .arg(&control)
            // First given wins in ssh: these before the shared options.
            .args([
                "-o",
                "ControlPersist=no",
                "-o",
                &format!("ServerAliveInterval={}", KEEPALIVE.as_secs()),
                "-o",
                &format!("ServerAliveCountMax={KEEPALIVE_MISSES}"),
                "-o",
                "ExitOnForwardFailure=yes",
            ])
            .args(ssh.options())
            .arg("--")
            .arg(ssh.target.destination())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        die_with_factory(&mut master);
        let mut child = master.spawn().map_err(LinkError::Spawn)?;
        let started = Instant::now();
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err).await;
                }
                let last = err
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("the connection closed")
                    .trim()
                    .to_string();
                return Err(connect_err(last));
            }
            let up = Command::new("ssh")
                .arg("-S")
                .arg(&control)
                .args(["-O", "check"])
                .arg(ssh.target.destination())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await
                .is_ok_and(|s| s.success());
            if up {
                break;
            }
            if started.elapsed() > CONNECT {
                return Err(connect_err(format!(
                    "no connection within {} s",
                    CONNECT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        // Its stderr is drained so the master never blocks on a full pipe.
        if let Some(mut e) = child.stderr.take() {
            tokio::spawn(async move {
                let mut sink = Vec::new();
                let _ = e.read_to_end(&mut sink).await;
            });
        }
        let (lost_tx, lost) = watch::channel(false);
        let closing = Arc::new(AtomicBool::new(false));
        tokio::spawn(watch_master(child, lost_tx));

        let mut link = Link {
            host: host.clone(),
            ssh,
            control,
            lost,
            closing,
            root: String::new(),
            socket: None,
            exe: String::new(),
            mirrored: None,
            reaped: 0,
            short: tokio::sync::Semaphore::new(SHORT_SESSIONS),
        };
        match link.ready(label, base, local_socket, exe).await {
            Ok(()) => Ok(Arc::new(link)),
            Err(e) => {
                link.close().await;
                Err(e)
            }
        }
    }

    /// The workspace's directory, the mirror, the binary, the leftovers of an earlier
    /// factory reaped, the socket forwarded.
    async fn ready(
        &mut self,
        label: &str,
        base: &str,
        local_socket: Option<&Path>,
        exe: &Path,
    ) -> Result<(), LinkError> {
        let wd = &self.host.work_dir;
        let ws = format!("{wd}/{label}");
        let setup = format!(
            "set -e\nmkdir -p {w}/runs {w}/pids {w}/bin\ncd {w}\npwd\n\
             test -d mirror.git || git init -q --bare mirror.git\n\
             git -C mirror.git rev-parse -q --verify {b} || echo none\n",
            w = quote(&ws),
            b = quote(&format!("refs/heads/{base}^{{commit}}")),
        );
        let done = self.run(&setup, "preparing its work dir").await?;
        let mut lines = done.stdout.lines();
        self.root = lines.next().unwrap_or_default().trim().to_string();
        self.mirrored = lines
            .next()
            .map(str::trim)
            .filter(|s| s.len() == 40)
            .map(str::to_string);
        self.check_sessions().await?;
        self.reaped = self.reap(label).await?;
        self.exe = self.upload_binary(exe).await?;
        if let Some(local) = local_socket {
            let remote = format!("{}/factory.sock", self.root);
            self.run(
                &format!("rm -f {}", quote(&remote)),
                "clearing the old socket",
            )
            .await?;
            let out = Command::new("ssh")
                .arg("-S")
                .arg(&self.control)
                .args(["-O", "forward", "-R"])
                .arg(format!("{remote}:{}", local.display()))
                .arg(self.ssh.target.destination())
                .stdin(Stdio::null())
                .output()
                .await
                .map_err(LinkError::Spawn)?;
            if !out.status.success() {
                return Err(LinkError::Command {
                    host: self.host.name.clone(),
                    what: "forwarding the factory's socket (ssh -R)".into(),
                    detail: format!(
                        "{}; set `AllowStreamLocalForwarding yes` in its sshd_config",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                });
            }
            self.socket = Some(remote);
        }
        Ok(())
    }

    /// Open as many sessions side by side as this link will hold at once (the host's
    /// slots, and the factory's own short ones), and say so when sshd refuses some on this
    /// connection (`MaxSessions`, 10 by default). ssh then opens each of those on a
    /// connection of its own: the run still goes, but logs in again, and outside the
    /// keepalives that tell the factory the host is gone.
    async fn check_sessions(&self) -> Result<(), LinkError> {
        use tokio::io::AsyncBufReadExt;
        let want = self.host.slots + SHORT_SESSIONS;
        let mut held = Vec::with_capacity(want);
        for _ in 0..want {
            let mut c = self.session("echo open; exec cat >/dev/null");
            c.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = c.spawn().map_err(LinkError::Spawn)?;
            if let Some(out) = child.stdout.take() {
                let mut line = String::new();
                let mut out = tokio::io::BufReader::new(out);
                let _ = tokio::time::timeout(CONNECT, out.read_line(&mut line)).await;
            }
            held.push(child);
        }
        let mut refused = 0;
        for mut child in held {
            // Its end of stdin closed, `cat` ends and so does the session.
            drop(child.stdin.take());
            let mut said = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = tokio::time::timeout(CONNECT, err.read_to_string(&mut said)).await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            if said.contains("refused") {
                refused += 1;
            }
        }
        if refused > 0 {
            tracing::warn!(
                host = %self.host.name,
                "sshd on `{}` allows {} sessions on one connection and the factory holds {want} ({} slots and {SHORT_SESSIONS} of its own): the rest log in on connections of their own; raise `MaxSessions` in its sshd_config to {want} or more, or lower [[hosts]] slots",
                self.host.name,
                want - refused,
                self.host.slots,
            );
        }
        Ok(())
    }

    /// Kill whatever an earlier factory of this workspace left on the host: the process
    /// groups in `pids/` and the containers labelled with the workspace; their checkouts
    /// go too. Called when the link comes up, before any run of this factory is there.
    async fn reap(&self, label: &str) -> Result<usize, LinkError> {
        let script = format!(
            "cd {root} || exit 0\nn=0\n\
             for f in pids/*; do [ -f \"$f\" ] || continue; p=$(cat \"$f\"); \
             case \"$p\" in ''|*[!0-9]*|0|1) ;; *) kill -KILL -\"$p\" 2>/dev/null && n=$((n+1));; esac; rm -f \"$f\"; done\n\
             if command -v docker >/dev/null 2>&1; then \
             for c in $(docker ps -aq --filter label={lw}={l} 2>/dev/null); do docker rm -f \"$c\" >/dev/null 2>&1 && n=$((n+1)); done; fi\n\
             chmod -R u+w runs 2>/dev/null; rm -rf runs; mkdir -p runs\necho $n\n",
            root = quote(&self.root),
            lw = crate::layout::LABEL_WORKSPACE,
            l = quote(label),
        );
        let done = self
            .run(&script, "reaping an earlier factory's runs")
            .await?;
        Ok(done.stdout.trim().parse().unwrap_or(0))
    }

    /// The factory's own binary on the host, named by its content: sent once, reused by
    /// every run (agents there start `shopfloor mcp` from it).
    async fn upload_binary(&self, exe: &Path) -> Result<String, LinkError> {
        let hash = binary_hash(exe).map_err(|e| LinkError::Command {
            host: self.host.name.clone(),
            what: "reading the factory's binary".into(),
            detail: e,
        })?;
        let path = format!("{}/bin/shopfloor-{hash}", self.root);
        let have = self
            .run(
                &format!("test -x {} && echo have || echo send", quote(&path)),
                "looking for the binary",
            )
            .await?;
        if have.stdout.trim() == "have" {
            return Ok(path);
        }
        let tmp = format!("{path}.{}", std::process::id());
        let bytes = tokio::fs::read(exe).await.map_err(|e| LinkError::Command {
            host: self.host.name.clone(),
            what: "reading the factory's binary".into(),
            detail: e.to_string(),
        })?;
        let script = format!(
            "cat > {t} && chmod 755 {t} && mv -f {t} {p}",
            t = quote(&tmp),
            p = quote(&path)
        );
        self.run_with_input(&script, bytes, "sending the factory's binary")
            .await?;
        Ok(path)
    }

    /// A session on the connection running `script` with `sh -c`: not yet started, for
    /// the caller to pipe and spawn. Dies with the factory.
    pub fn session(&self, script: &str) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-S")
            .arg(&self.control)
            .args(["-o", "ControlMaster=no"])
            .args(self.ssh.options())
            .arg("--")
            .arg(self.ssh.target.destination())
            .arg(format!("sh -c {}", quote(script)));
        c.kill_on_drop(true);
        die_with_factory(&mut c);
        c
    }

    /// Run a short `script` on the host; `what` names it in errors. Fails when it fails.
    /// The script goes on stdin, not the command line, so its size has no bound: a run's
    /// files ride in it, and one argument stops at 128 KiB (`MAX_ARG_STRLEN`).
    pub async fn run(&self, script: &str, what: &str) -> Result<Done, LinkError> {
        self.run_with_input(
            &run_from_stdin(script.len()),
            script.as_bytes().to_vec(),
            what,
        )
        .await
    }

    /// [`Link::run`] with `input` on the script's stdin.
    pub async fn run_with_input(
        &self,
        script: &str,
        input: Vec<u8>,
        what: &str,
    ) -> Result<Done, LinkError> {
        let done = self.try_run(script, input).await?;
        if done.ok() {
            Ok(done)
        } else if self.is_lost() || done.code == Some(255) {
            Err(self.lost_error())
        } else {
            Err(LinkError::Command {
                host: self.host.name.clone(),
                what: what.into(),
                detail: done.said(),
            })
        }
    }

    /// A turn for one short session (a command, a git transfer): held while it is open.
    pub async fn short_turn(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.short
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }

    /// Write `bytes` to `path` on the host, owner-only, creating its directory.
    pub async fn write_file(
        &self,
        path: &str,
        bytes: Vec<u8>,
        what: &str,
    ) -> Result<(), LinkError> {
        let script = format!(
            "umask 077 && mkdir -p \"$(dirname {p})\" && cat > {p}",
            p = quote(path)
        );
        self.run_with_input(&script, bytes, what).await.map(|_| ())
    }

    /// Run `script`, whatever its exit.
    pub async fn try_run(&self, script: &str, input: Vec<u8>) -> Result<Done, LinkError> {
        let _turn = self.short_turn().await;
        let mut c = self.session(script);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().map_err(LinkError::Spawn)?;
        let mut stdin = child.stdin.take();
        let feed = async move {
            if let Some(s) = stdin.as_mut() {
                let _ = s.write_all(&input).await;
                let _ = s.shutdown().await;
            }
            drop(stdin);
        };
        let out = async {
            let (_, out) = tokio::join!(feed, child.wait_with_output());
            out
        };
        match tokio::time::timeout(COMMAND, out).await {
            Ok(Ok(o)) => Ok(Done {
                code: o.status.code(),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            }),
            Ok(Err(e)) => Err(LinkError::Spawn(e)),
            Err(_) => Err(LinkError::Command {
                host: self.host.name.clone(),
                what: "a command".into(),
                detail: format!("no answer within {} s", COMMAND.as_secs()),
            }),
        }
    }

    /// `GIT_SSH_COMMAND` for git to ride the connection (`git push`/`fetch` to the host).
    pub fn git_ssh_command(&self) -> String {
        let mut words = vec![
            "ssh".to_string(),
            "-S".into(),
            quote(&self.control.display().to_string()),
            "-o".into(),
            "ControlMaster=no".into(),
        ];
        // The port is in the options; git adds none (the URL names none).
        words.extend(self.ssh.options().iter().map(|w| quote(w)));
        words.join(" ")
    }

    /// The URL git reaches `path` on the host by.
    pub fn git_url(&self, path: &str) -> String {
        let SshTarget { user, host, .. } = &self.ssh.target;
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        match user {
            Some(u) => format!("ssh://{u}@{host}{path}"),
            None => format!("ssh://{host}{path}"),
        }
    }

    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Resolves when the connection ends.
    pub async fn lost(&self) {
        let mut rx = self.lost.clone();
        let _ = rx.wait_for(|l| *l).await;
    }

    pub fn lost_error(&self) -> LinkError {
        LinkError::Lost {
            host: self.host.name.clone(),
        }
    }

    /// Whether it ended without the factory closing it: the host was lost.
    pub fn was_lost(&self) -> bool {
        self.is_lost() && !self.closing.load(Ordering::SeqCst)
    }

    /// Close the connection (its sessions end with it).
    pub async fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let _ = Command::new("ssh")
            .arg("-S")
            .arg(&self.control)
            .args(["-O", "exit"])
            .arg(self.ssh.target.destination())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }
}

async fn watch_master(mut child: Child, lost: watch::Sender<bool>) {
    let _ = child.wait().await;
    let _ = lost.send(true);
}

/// The binary's content hash, computed once per process.
fn binary_hash(exe: &Path) -> Result<String, String> {
    static HASH: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let file = std::fs::File::open(exe).map_err(|e| format!("{}: {e}", exe.display()))?;
        let mut h = blake3::Hasher::new();
        h.update_reader(file)
            .map(|h| h.finalize().to_hex()[..16].to_string())
            .map_err(|e| format!("{}: {e}", exe.display()))
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_dir_someone_else_made_is_refused_untouched() {
        use std::os::unix::fs::PermissionsExt as _;
        let base = tempfile::tempdir().unwrap();
        // SAFETY: getuid cannot fail.
        let uid = unsafe { libc::getuid() };
        let name = base.path().join(format!("shopfloor-ssh-{uid}"));
        // A link by its name, to a directory open to all: refused, the target unchanged.
        let elsewhere = base.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &name).unwrap();
        let e = control_dir(base.path()).unwrap_err().to_string();
        assert!(e.contains("belongs to another user"), "{e}");
        let mode = std::fs::metadata(&elsewhere).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o777);
        std::fs::remove_file(&name).unwrap();
        // Ours, made loose: tightened and used.
        std::fs::create_dir(&name).unwrap();
        std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(control_dir(base.path()).unwrap(), name);
        let mode = std::fs::metadata(&name).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0);
        // Another user's (root can make one to test with): refused.
        if uid == 0 {
            std::os::unix::fs::chown(&name, Some(65534), None).unwrap();
            assert!(control_dir(base.path()).is_err());
        }
    }

    #[test]
    fn quoting_is_one_literal_word() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", quote("$(echo x)'`;\"\n")))
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"$(echo x)'`;\"\n");
    }
}

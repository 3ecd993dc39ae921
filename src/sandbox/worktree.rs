//! The worktree backend: the agent runs as a child process in its run's checkout (see
//! [`super::checkout`]), with a scrubbed environment, as the leader of its own process
//! group, so killing the group kills everything it started. Needs nothing installed.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, watch};

use super::lines::LineSplitter;
use super::{
    BackendKind, ENV_SANDBOX, ENV_WORKSPACE, Exit, LaunchSpec, Output, Process, ProcessControl,
    Sandbox, SandboxConfig, SandboxError, build_env,
};

/// How many lines may wait in a process's output channel before reading its pipes pauses
/// (and so, through the pipe, the agent's writes).
pub(crate) const OUTPUT_BUFFER: usize = 1024;
/// How long `kill()` lets a process group handle SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_millis(400);

/// Agents as child processes in their checkout.
pub struct WorktreeSandbox {
    allowed_env: Vec<String>,
    /// Process groups this object launched and that have not been reaped: `reap_orphans`
    /// leaves them alone.
    live: Arc<Mutex<HashSet<i32>>>,
}

impl WorktreeSandbox {
    pub fn new(cfg: &SandboxConfig) -> Self {
        WorktreeSandbox {
            allowed_env: cfg.allowed_env_names(),
            live: Arc::default(),
        }
    }
}

#[async_trait]
impl Sandbox for WorktreeSandbox {
    fn kind(&self) -> BackendKind {
        BackendKind::Worktree
    }

    async fn launch(&self, spec: LaunchSpec) -> Result<Process, SandboxError> {
        let (program, args) = spec.argv.split_first().ok_or(SandboxError::EmptyCommand)?;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .current_dir(&spec.workdir)
            .env_clear()
            .envs(build_env(
                &self.allowed_env,
                &[],
                &spec,
                BackendKind::Worktree,
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so kill() reaches everything it starts.
            .process_group(0);
        let mut child = cmd.spawn().map_err(|source| SandboxError::Spawn {
            program: program.clone(),
            dir: spec.workdir.clone(),
            source,
        })?;
        // A spawned child always has a pid until it is waited for.
        let pid = child.id().unwrap_or(0) as i32;
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pid);

        let (tx, rx) = mpsc::channel(OUTPUT_BUFFER);
        if let Some(out) = child.stdout.take() {
            tokio::spawn(pump(out, tx.clone(), Output::Stdout));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(pump(err, tx, Output::Stderr));
        }

        let (exit_tx, exit_rx) = watch::channel(None);
        let live = self.live.clone();
        tokio::spawn(async move {
            let exit = match child.wait().await {
                Ok(status) => {
                    use std::os::unix::process::ExitStatusExt;
                    Exit {
                        code: status.code(),
                        signal: status.signal(),
                    }
                }
                Err(_) => Exit {
                    code: None,
                    signal: None,
                },
            };
            let _ = exit_tx.send(Some(exit));
            // Keep the group in `live` until it is empty: orphaned grandchildren of a
            // running factory's own launch are kill()'s business, not reap_orphans'.
            while group_alive(pid) {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            live.lock().unwrap_or_else(|e| e.into_inner()).remove(&pid);
        });

        Ok(Process {
            output: rx,
            control: Box::new(GroupControl {
                pgid: pid,
                exit: exit_rx,
            }),
        })
    }

    async fn reap_orphans(&self, workspace: &str) -> Result<usize, SandboxError> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let workspace = workspace.to_string();
        tokio::task::spawn_blocking(move || reap_labelled(&workspace, &live))
            .await
            .map_err(|e| SandboxError::Io {
                path: PathBuf::from("/proc"),
                source: std::io::Error::other(e.to_string()),
            })?
    }
}

/// Read `src` to its end, sending each line to `tx`. When nobody listens any more it keeps
/// reading (and dropping), so the agent never blocks on a full pipe.
pub(crate) async fn pump(
    src: impl AsyncRead + Unpin,
    tx: mpsc::Sender<Output>,
    wrap: fn(Vec<u8>) -> Output,
) {
    pump_with(src, tx, |l| Some(wrap(l))).await
}

/// [`pump`], each line first through `line`, which may keep it back (None).
pub(crate) async fn pump_with(
    mut src: impl AsyncRead + Unpin,
    tx: mpsc::Sender<Output>,
    mut line: impl FnMut(Vec<u8>) -> Option<Output>,
) {
    let mut splitter = LineSplitter::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut open = true;
    loop {
        let n = match src.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut lines = Vec::new();
        splitter.push(&buf[..n], |l| lines.push(l));
        for l in lines {
            if let Some(o) = line(l)
                && open
                && tx.send(o).await.is_err()
            {
                open = false;
            }
        }
    }
    if let Some(l) = splitter.finish()
        && let Some(o) = line(l)
        && open
    {
        let _ = tx.send(o).await;
    }
}

/// Whether any process is left in group `pgid` (zombies awaiting their reaper excluded:
/// they hold nothing and cannot be killed further).
fn group_alive(pgid: i32) -> bool {
    if pgid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    if unsafe { libc::killpg(pgid, 0) } != 0 {
        return false;
    }
    // killpg(0) also counts zombies; look for a member that is not one.
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return true;
    };
    dir.flatten().any(|e| {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            return false;
        };
        proc_stat(pid).is_some_and(|(state, pg)| pg == pgid && state != 'Z' && state != 'X')
    })
}

/// State letter and process group of a process, from `/proc/<pid>/stat`.
fn proc_stat(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

struct GroupControl {
    pgid: i32,
    exit: watch::Receiver<Option<Exit>>,
}

#[async_trait]
impl ProcessControl for GroupControl {
    fn id(&self) -> String {
        format!("pid {}", self.pgid)
    }

    async fn kill(&self) -> Result<(), SandboxError> {
        if !group_alive(self.pgid) {
            return Ok(());
        }
        // SAFETY: plain signal delivery to the group we created.
        unsafe { libc::killpg(self.pgid, libc::SIGTERM) };
        let deadline = tokio::time::Instant::now() + TERM_GRACE;
        while tokio::time::Instant::now() < deadline {
            if !group_alive(self.pgid) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // SAFETY: as above.
        unsafe { libc::killpg(self.pgid, libc::SIGKILL) };
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        while group_alive(self.pgid) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    async fn wait(&self) -> Result<Exit, SandboxError> {
        super::published(&self.exit)
            .await
            .ok_or_else(|| SandboxError::Io {
                path: PathBuf::from(format!("/proc/{}", self.pgid)),
                source: std::io::Error::other("the process's waiter ended without a status"),
            })
    }
}

impl Drop for GroupControl {
    /// A dropped handle must not leave an agent running unsupervised (invariant 5).
    fn drop(&mut self) {
        if group_alive(self.pgid) {
            // SAFETY: plain signal delivery to the group we created.
            unsafe { libc::killpg(self.pgid, libc::SIGKILL) };
        }
    }
}

/// Kill every process labelled as a sandbox process of `workspace`, except those in `live`
/// groups and this process and its ancestors.
fn reap_labelled(workspace: &str, live: &HashSet<i32>) -> Result<usize, SandboxError> {
    let want = format!("{ENV_WORKSPACE}={workspace}");
    let me = std::process::id() as i32;
    let mut spare: HashSet<i32> = HashSet::new();
    // Never kill ourselves or whoever started us, even if they carry the label.
    let mut p = me;
    while p > 1 && spare.insert(p) {
        p = parent_of(p).unwrap_or(0);
    }
    let dir = std::fs::read_dir("/proc").map_err(SandboxError::io("/proc"))?;
    let mut killed = 0;
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if spare.contains(&pid) {
            continue;
        }
        // Unreadable (another user's, or gone): not ours to reap.
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let mut has_ws = false;
        let mut has_sandbox = false;
        for var in environ.split(|&b| b == 0) {
            has_ws |= var == want.as_bytes();
            has_sandbox |= var.starts_with(format!("{ENV_SANDBOX}=").as_bytes());
        }
        if !(has_ws && has_sandbox) {
            continue;
        }
        let running = proc_stat(pid).is_some_and(|(state, pg)| state != 'Z' && !live.contains(&pg));
        // SAFETY: plain signal delivery to a labelled leftover process.
        if running && unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
            killed += 1;
        }
    }
    Ok(killed)
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parses_names_with_parens() {
        let me = std::process::id() as i32;
        let (state, _) = proc_stat(me).unwrap();
        assert!(state == 'R' || state == 'S');
        assert!(parent_of(me).is_some());
    }
}

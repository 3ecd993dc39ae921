//! The worktree backend, and the worktree preparation both backends share.
//!
//! A run's sandbox is a git worktree of the workspace's own clone (never of the user's
//! checkout: invariant 7) on a fresh branch `shopfloor/<ticket>-<attempt>`. The agent runs
//! as a child process there, with a scrubbed environment, as the leader of its own process
//! group, so killing the group kills everything it started.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
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

fn git_err(path: &Path) -> impl FnOnce(git2::Error) -> SandboxError + '_ {
    move |e| SandboxError::Git {
        path: path.to_path_buf(),
        message: e.message().to_string(),
    }
}

/// What to prepare a sandbox worktree from, and where.
#[derive(Debug, Clone)]
pub struct PrepareSpec {
    pub workspace: String,
    pub run: u64,
    pub ticket: u64,
    pub attempt: u32,
    /// The workspace's own clone: the source of truth, and the repository the worktree
    /// belongs to.
    pub repo: PathBuf,
    /// The branch to start from, normally `main`.
    pub base: String,
    /// The user's checkout: include files are copied from it, and nothing else touches it.
    pub user_checkout: PathBuf,
    /// Where worktrees live: `<data dir>/worktrees`.
    pub root: PathBuf,
}

/// A prepared sandbox worktree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub dir: PathBuf,
    /// `shopfloor/<ticket>-<attempt>`.
    pub branch: String,
    /// The commit the branch started from (hex).
    pub base_commit: String,
    /// git's name for the worktree (`shopfloor-<ticket>-<attempt>`), used to prune it.
    pub worktree: String,
}

/// The result of [`commit_leftovers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftovers {
    /// The commit made, when the worktree had uncommitted changes.
    pub commit: Option<String>,
    /// Every path that differs between `base_commit` and the branch's head, sorted.
    pub files_changed: Vec<String>,
}

/// Make a fresh worktree on `shopfloor/<ticket>-<attempt>` from `base` in `spec.root`, and
/// copy the git-ignored files matching `include` from the user's checkout into it. A branch
/// or directory left by an earlier attempt of the same name that crashed is replaced.
pub fn prepare(spec: &PrepareSpec, include: &[String]) -> Result<Prepared, SandboxError> {
    std::fs::create_dir_all(&spec.root).map_err(SandboxError::io(&spec.root))?;
    let root = spec
        .root
        .canonicalize()
        .map_err(SandboxError::io(&spec.root))?;
    if let Ok(checkout) = spec.user_checkout.canonicalize()
        && root.starts_with(&checkout)
    {
        return Err(SandboxError::InsideCheckout { root, checkout });
    }

    let repo = git2::Repository::open(&spec.repo).map_err(git_err(&spec.repo))?;
    let base = repo
        .find_branch(&spec.base, git2::BranchType::Local)
        .ok()
        .and_then(|b| b.get().peel_to_commit().ok())
        .or_else(|| {
            repo.revparse_single(&spec.base)
                .ok()
                .and_then(|o| o.peel_to_commit().ok())
        })
        .ok_or_else(|| SandboxError::NoBase {
            base: spec.base.clone(),
            repo: spec.repo.clone(),
        })?;

    let leaf = format!("{}-{}", spec.ticket, spec.attempt);
    let name = format!("shopfloor-{leaf}");
    let branch = format!("shopfloor/{leaf}");
    let dir = root.join(&leaf);

    // An earlier attempt of this name crashed: drop its worktree registration, directory
    // and branch, so this attempt starts clean from base.
    if let Ok(old) = repo.find_worktree(&name) {
        let _ = old.unlock();
        let _ = old.prune(Some(
            git2::WorktreePruneOptions::new()
                .valid(true)
                .locked(true)
                .working_tree(true),
        ));
    }
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(SandboxError::io(&dir)(e)),
    }
    // Forcing the branch to base replaces a stale one in place.
    let branch_ref = repo
        .branch(&branch, &base, true)
        .map_err(git_err(&spec.repo))?;
    repo.worktree(
        &name,
        &dir,
        Some(git2::WorktreeAddOptions::new().reference(Some(branch_ref.get()))),
    )
    .map_err(git_err(&dir))?;

    copy_includes(&spec.user_checkout, &dir, include)?;

    Ok(Prepared {
        dir,
        branch,
        base_commit: base.id().to_string(),
        worktree: name,
    })
}

/// Copy the user's git-ignored files matching `include` (git pathspecs) into `dest`. Only
/// reads the checkout: no index refresh, no writes (invariant 7).
fn copy_includes(checkout: &Path, dest: &Path, include: &[String]) -> Result<(), SandboxError> {
    if include.is_empty() {
        return Ok(());
    }
    let user = match git2::Repository::open(checkout) {
        Ok(r) => r,
        // No checkout (or not a repository): nothing to copy from.
        Err(_) => return Ok(()),
    };
    let mut opts = git2::StatusOptions::new();
    opts.include_ignored(true)
        .include_untracked(false)
        .recurse_ignored_dirs(false)
        .exclude_submodules(true);
    for p in include {
        opts.pathspec(p);
    }
    let statuses = user.statuses(Some(&mut opts)).map_err(git_err(checkout))?;
    for entry in statuses.iter() {
        if !entry.status().contains(git2::Status::IGNORED) {
            continue;
        }
        let Ok(rel) = entry.path() else { continue };
        let rel = Path::new(rel.trim_end_matches('/'));
        // libgit2 only reports paths inside the checkout; refuse anything else anyway.
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| c == std::path::Component::ParentDir)
        {
            continue;
        }
        copy_path(&checkout.join(rel), &dest.join(rel))?;
    }
    Ok(())
}

fn copy_path(from: &Path, to: &Path) -> Result<(), SandboxError> {
    let meta = std::fs::symlink_metadata(from).map_err(SandboxError::io(from))?;
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(SandboxError::io(parent))?;
    }
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(from).map_err(SandboxError::io(from))?;
        let _ = std::fs::remove_file(to);
        std::os::unix::fs::symlink(target, to).map_err(SandboxError::io(to))?;
    } else if meta.is_dir() {
        std::fs::create_dir_all(to).map_err(SandboxError::io(to))?;
        for entry in std::fs::read_dir(from).map_err(SandboxError::io(from))? {
            let entry = entry.map_err(SandboxError::io(from))?;
            copy_path(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else {
        std::fs::copy(from, to).map_err(SandboxError::io(to))?;
    }
    Ok(())
}

/// Stage everything in the worktree (respecting `.gitignore`, deletions included) and
/// commit it on the branch when anything changed. `author` is `Name <email>` or a name.
pub fn commit_leftovers(
    p: &Prepared,
    message: &str,
    author: &str,
) -> Result<Leftovers, SandboxError> {
    let repo = git2::Repository::open(&p.dir).map_err(git_err(&p.dir))?;
    let mut index = repo.index().map_err(git_err(&p.dir))?;
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .map_err(git_err(&p.dir))?;
    index.update_all(["*"], None).map_err(git_err(&p.dir))?;
    index.write().map_err(git_err(&p.dir))?;
    let tree_id = index.write_tree().map_err(git_err(&p.dir))?;
    let tree = repo.find_tree(tree_id).map_err(git_err(&p.dir))?;
    let head = repo
        .head()
        .and_then(|h| h.peel_to_commit())
        .map_err(git_err(&p.dir))?;

    let commit = if head.tree_id() == tree_id {
        None
    } else {
        let (name, email) = parse_author(author);
        let sig = git2::Signature::now(&name, &email).map_err(git_err(&p.dir))?;
        let id = repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &[&head])
            .map_err(git_err(&p.dir))?;
        Some(id.to_string())
    };

    let base_oid = git2::Oid::from_str(&p.base_commit).map_err(git_err(&p.dir))?;
    let base_tree = repo
        .find_commit(base_oid)
        .and_then(|c| c.tree())
        .map_err(git_err(&p.dir))?;
    let diff = repo
        .diff_tree_to_tree(Some(&base_tree), Some(&tree), None)
        .map_err(git_err(&p.dir))?;
    let mut files: Vec<String> = diff
        .deltas()
        .filter_map(|d| d.new_file().path().or_else(|| d.old_file().path()))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    files.sort();
    files.dedup();
    Ok(Leftovers {
        commit,
        files_changed: files,
    })
}

fn parse_author(author: &str) -> (String, String) {
    let author = author.trim();
    if let (Some(lt), Some(gt)) = (author.find('<'), author.rfind('>'))
        && lt < gt
    {
        let name = author[..lt].trim();
        let email = author[lt + 1..gt].trim();
        let name = if name.is_empty() { email } else { name };
        return (name.to_string(), email.to_string());
    }
    let name = if author.is_empty() {
        "shopfloor"
    } else {
        author
    };
    (name.to_string(), "shopfloor@localhost".to_string())
}

/// Remove the worktree's directory and its registration in `repo`. The branch stays: the
/// merge queue needs it.
pub fn remove(p: &Prepared, repo: &Path) -> Result<(), SandboxError> {
    match std::fs::remove_dir_all(&p.dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(SandboxError::io(&p.dir)(e)),
    }
    let r = git2::Repository::open(repo).map_err(git_err(repo))?;
    if let Ok(wt) = r.find_worktree(&p.worktree) {
        let _ = wt.unlock();
        wt.prune(Some(
            git2::WorktreePruneOptions::new().valid(true).locked(true),
        ))
        .map_err(git_err(repo))?;
    }
    Ok(())
}

/// Agents as child processes in their worktree.
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
async fn pump(
    mut src: impl AsyncRead + Unpin,
    tx: mpsc::Sender<Output>,
    wrap: fn(Vec<u8>) -> Output,
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
            if open && tx.send(wrap(l)).await.is_err() {
                open = false;
            }
        }
    }
    if let Some(l) = splitter.finish()
        && open
    {
        let _ = tx.send(wrap(l)).await;
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
        let mut rx = self.exit.clone();
        let exit = rx
            .wait_for(|e| e.is_some())
            .await
            .map_err(|_| SandboxError::Io {
                path: PathBuf::from(format!("/proc/{}", self.pgid)),
                source: std::io::Error::other("the process's waiter ended without a status"),
            })?;
        Ok(exit.unwrap_or(Exit {
            code: None,
            signal: None,
        }))
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
    fn authors_parse() {
        assert_eq!(
            parse_author("Ann Agent <ann@x.org>"),
            ("Ann Agent".into(), "ann@x.org".into())
        );
        assert_eq!(
            parse_author("bot"),
            ("bot".into(), "shopfloor@localhost".into())
        );
        assert_eq!(
            parse_author(""),
            ("shopfloor".into(), "shopfloor@localhost".into())
        );
        assert_eq!(parse_author("<a@b>"), ("a@b".into(), "a@b".into()));
    }

    #[test]
    fn stat_parses_names_with_parens() {
        let me = std::process::id() as i32;
        let (state, _) = proc_stat(me).unwrap();
        assert!(state == 'R' || state == 'S');
        assert!(parent_of(me).is_some());
    }
}

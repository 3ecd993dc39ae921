//! A run's checkout: the git repository its agent works in, and the way its branch comes
//! back to the factory.
//!
//! A sandbox is a repository of its own in the data directory (never in the user's checkout:
//! invariant 7) on a fresh branch `shopfloor/<ticket>-<attempt>` at the base commit, whose
//! object store borrows the factory's clone's objects through `objects/info/alternates`
//! (read-only for it, mounted read-only in a container). So an agent commits, branches and
//! resets as in any repository, and nothing it does can reach main, another run's branch or
//! the clone's objects. When the run ends, the factory commits what the agent left and
//! fetches the run's branch into the clone: the only moment the clone learns of the run's
//! objects, and the factory's own code that does it.
//!
//! Why not `git worktree`: worktrees share the clone's refs and its `.git/worktrees`
//! registry, which concurrent adds and removes corrupted (1 run in 14 at concurrency 8
//! failed with "already checked out" or "directory exists"), and a container would need
//! the clone's object store and refs mounted writable for its agent to commit.
//!
//! The agent controls everything in its sandbox, `.git` included, so the factory's host-side
//! reads trust none of it: `.git` must be a real directory, the alternates file is written
//! back before each read, and the working directory is set explicitly.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::SandboxError;

/// The factory's own writes to its clone made on a run's behalf (the run's branch at
/// prepare, the fetch of its work at the end) take this lock. Lock order: it is taken
/// alone, never while another lock of the factory's is held, and nothing is locked inside.
static CLONE_WRITES: Mutex<()> = Mutex::new(());

fn clone_writes() -> std::sync::MutexGuard<'static, ()> {
    CLONE_WRITES.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn git_err(path: &Path) -> impl FnOnce(git2::Error) -> SandboxError + '_ {
    move |e| SandboxError::Git {
        path: path.to_path_buf(),
        message: e.message().to_string(),
    }
}

/// What to prepare a sandbox from, and where.
#[derive(Debug, Clone)]
pub struct PrepareSpec {
    pub workspace: String,
    pub run: u64,
    pub ticket: u64,
    pub attempt: u32,
    /// The workspace's own clone: the source of truth, whose objects the sandbox borrows
    /// and into which the run's branch comes back.
    pub repo: PathBuf,
    /// The branch to start from, normally `main`.
    pub base: String,
    /// The user's checkout: include files are copied from it, and nothing else touches it.
    pub user_checkout: PathBuf,
    /// Where sandboxes live: `<data dir>/worktrees`.
    pub root: PathBuf,
}

/// A prepared sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The sandbox's working directory (its own `.git` inside).
    pub dir: PathBuf,
    /// `shopfloor/<ticket>-<attempt>`.
    pub branch: String,
    /// The commit the branch started from (hex).
    pub base_commit: String,
    /// The factory's clone the branch comes back to.
    pub clone: PathBuf,
}

impl Prepared {
    /// The clone's object store, which the sandbox reads through its alternates; a
    /// container gets it mounted read-only at the same path.
    pub fn clone_objects(&self) -> PathBuf {
        objects_dir(&self.clone)
    }
}

/// The result of [`commit_leftovers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftovers {
    /// The commit made, when the sandbox had uncommitted changes.
    pub commit: Option<String>,
    /// Every path that differs between `base_commit` and the branch's head, sorted.
    pub files_changed: Vec<String>,
}

fn objects_dir(clone: &Path) -> PathBuf {
    let git = clone.join(".git");
    if git.is_dir() {
        git.join("objects")
    } else {
        clone.join("objects")
    }
}

/// Make a fresh sandbox on `shopfloor/<ticket>-<attempt>` from `base` in `spec.root`, and
/// copy the git-ignored files matching `include` from the user's checkout into it. A
/// directory left by an earlier attempt of the same name that crashed is replaced.
pub fn prepare(spec: &PrepareSpec, include: &[String]) -> Result<Prepared, SandboxError> {
    crate::private::private_dir(&spec.root).map_err(SandboxError::io(&spec.root))?;
    let root = spec
        .root
        .canonicalize()
        .map_err(SandboxError::io(&spec.root))?;
    if let Ok(checkout) = spec.user_checkout.canonicalize()
        && root.starts_with(&checkout)
    {
        return Err(SandboxError::InsideCheckout { root, checkout });
    }
    let leaf = format!("{}-{}", spec.ticket, spec.attempt);
    let branch = format!("shopfloor/{leaf}");
    let dir = root.join(&leaf);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(SandboxError::io(&dir)(e)),
    }
    let (base_hex, clone_path) = start_branch(spec, &branch)?;
    let base_id = git2::Oid::from_str(&base_hex).map_err(git_err(&clone_path))?;

    let objects = objects_dir(&clone_path);
    let repo = git2::Repository::init_opts(
        &dir,
        git2::RepositoryInitOptions::new()
            .no_reinit(true)
            .initial_head(&branch),
    )
    .map_err(git_err(&dir))?;
    write_alternates(&dir, &objects)?;
    // Reopened, so its object database reads the alternates just written.
    drop(repo);
    let repo = git2::Repository::open(&dir).map_err(git_err(&dir))?;
    let commit = repo.find_commit(base_id).map_err(git_err(&dir))?;
    repo.branch(&branch, &commit, true).map_err(git_err(&dir))?;
    // The base branch too, at the same commit: agents diff against `main` by name.
    if spec.base != branch && git2::Branch::name_is_valid(&spec.base).unwrap_or(false) {
        let _ = repo.branch(&spec.base, &commit, true);
    }
    repo.set_head(&format!("refs/heads/{branch}"))
        .map_err(git_err(&dir))?;
    repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .map_err(git_err(&dir))?;
    let mut cfg = repo.config().map_err(git_err(&dir))?;
    // Agents that commit need an identity; a container has no ~/.gitconfig.
    cfg.set_str("user.name", &format!("shopfloor run {}", spec.run))
        .and_then(|()| cfg.set_str("user.email", "shopfloor@localhost"))
        .map_err(git_err(&dir))?;

    copy_includes(&spec.user_checkout, &dir, include)?;

    Ok(Prepared {
        dir,
        branch,
        base_commit: base_hex,
        clone: clone_path,
    })
}

/// Put the run's `branch` in the clone at the tip of `spec.base`, so people and the queue
/// see it even if the run dies before its work comes back: the base commit (hex) and the
/// clone's canonical path.
pub(crate) fn start_branch(
    spec: &PrepareSpec,
    branch: &str,
) -> Result<(String, PathBuf), SandboxError> {
    let clone_path = spec
        .repo
        .canonicalize()
        .map_err(SandboxError::io(&spec.repo))?;
    let clone = git2::Repository::open(&clone_path).map_err(git_err(&clone_path))?;
    let base = clone
        .find_branch(&spec.base, git2::BranchType::Local)
        .ok()
        .and_then(|b| b.get().peel_to_commit().ok())
        .or_else(|| {
            clone
                .revparse_single(&spec.base)
                .ok()
                .and_then(|o| o.peel_to_commit().ok())
        })
        .ok_or_else(|| SandboxError::NoBase {
            base: spec.base.clone(),
            repo: spec.repo.clone(),
        })?;
    let _clone = clone_writes();
    clone
        .branch(branch, &base, true)
        .map_err(git_err(&clone_path))?;
    Ok((base.id().to_string(), clone_path))
}

/// A read-only sandbox of `commit` for a review run `run` of queue entry `entry`: a
/// detached checkout (no branch, in the clone or in it) whose files and directories are
/// read-only. Nothing from it ever comes back: the review answers through MCP. In a
/// container the checkout is mounted read-only too ([`super::LaunchSpec::workdir_read_only`]),
/// which is the real boundary; on the host the modes tell a well-behaved agent it is
/// reading, not writing.
pub fn prepare_review(
    root: &Path,
    clone_path: &Path,
    entry: u64,
    run: u64,
    commit: &str,
) -> Result<Prepared, SandboxError> {
    crate::private::private_dir(root).map_err(SandboxError::io(root))?;
    let root = root.canonicalize().map_err(SandboxError::io(root))?;
    let clone_path = clone_path
        .canonicalize()
        .map_err(SandboxError::io(clone_path))?;
    let dir = root.join(format!("review-{entry}-{run}"));
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(SandboxError::io(&dir)(e)),
    }
    let repo = git2::Repository::init(&dir).map_err(git_err(&dir))?;
    write_alternates(&dir, &objects_dir(&clone_path))?;
    drop(repo);
    let repo = git2::Repository::open(&dir).map_err(git_err(&dir))?;
    let id = git2::Oid::from_str(commit).map_err(git_err(&dir))?;
    let c = repo.find_commit(id).map_err(git_err(&dir))?;
    repo.set_head_detached(c.id()).map_err(git_err(&dir))?;
    repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .map_err(git_err(&dir))?;
    Ok(Prepared {
        dir,
        branch: String::new(),
        base_commit: commit.to_string(),
        clone: clone_path,
    })
}

/// Make every file and directory under `dir` read-only (after the agent's own config
/// files are written into it).
pub fn seal(dir: &Path) -> Result<(), SandboxError> {
    set_writable(dir, false)
}

/// Give every file and directory under `dir` its owner's write bit back, so it can be
/// removed.
fn unseal(dir: &Path) {
    let _ = set_writable(dir, true);
}

fn set_writable(dir: &Path, writable: bool) -> Result<(), SandboxError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(dir).map_err(SandboxError::io(dir))?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    if meta.is_dir() && writable {
        // Writable first, so its entries can be changed.
        let mut p = meta.permissions();
        p.set_mode(p.mode() | 0o200);
        std::fs::set_permissions(dir, p).map_err(SandboxError::io(dir))?;
    }
    if meta.is_dir() {
        for e in std::fs::read_dir(dir).map_err(SandboxError::io(dir))? {
            let e = e.map_err(SandboxError::io(dir))?;
            set_writable(&e.path(), writable)?;
        }
    }
    if !(meta.is_dir() && writable) {
        let mut p = meta.permissions();
        let mode = if writable {
            p.mode() | 0o200
        } else {
            p.mode() & !0o222
        };
        p.set_mode(mode);
        std::fs::set_permissions(dir, p).map_err(SandboxError::io(dir))?;
    }
    Ok(())
}

/// Point the sandbox's object store at the clone's, and nowhere else.
fn write_alternates(dir: &Path, objects: &Path) -> Result<(), SandboxError> {
    let info = dir.join(".git/objects/info");
    std::fs::create_dir_all(&info).map_err(SandboxError::io(&info))?;
    let file = info.join("alternates");
    // Replaced, not edited: whatever the agent wrote there is gone.
    let _ = std::fs::remove_file(&file);
    std::fs::write(&file, format!("{}\n", objects.display())).map_err(SandboxError::io(&file))?;
    let http = info.join("http-alternates");
    let _ = std::fs::remove_file(http);
    Ok(())
}

/// Open a sandbox's repository for the factory's own work on it, trusting none of what the
/// agent may have changed in `.git`: it must be a real directory (not a link or a `gitdir:`
/// file sending the factory elsewhere), its alternates name the clone's objects only, and
/// the working directory is the sandbox whatever `core.worktree` says.
fn open_sandbox(p: &Prepared) -> Result<git2::Repository, SandboxError> {
    let git = p.dir.join(".git");
    let meta = std::fs::symlink_metadata(&git).map_err(SandboxError::io(&git))?;
    if !meta.is_dir() {
        return Err(SandboxError::Git {
            path: git,
            message: "the sandbox's .git is no longer a directory (the agent replaced it); \
                      its work cannot be read back"
                .into(),
        });
    }
    write_alternates(&p.dir, &p.clone_objects())?;
    let repo = git2::Repository::open_ext(
        &git,
        git2::RepositoryOpenFlags::NO_SEARCH | git2::RepositoryOpenFlags::NO_DOTGIT,
        std::iter::empty::<&std::ffi::OsStr>(),
    )
    .map_err(git_err(&p.dir))?;
    repo.set_workdir(&p.dir, false).map_err(git_err(&p.dir))?;
    Ok(repo)
}

/// The user's git-ignored files and directories matching `include` (git pathspecs), as
/// paths inside the checkout. Only reads the checkout: no index refresh, no writes
/// (invariant 7).
fn include_paths(checkout: &Path, include: &[String]) -> Result<Vec<PathBuf>, SandboxError> {
    if include.is_empty() {
        return Ok(vec![]);
    }
    let user = match git2::Repository::open(checkout) {
        Ok(r) => r,
        // No checkout (or not a repository): nothing to copy from.
        Err(_) => return Ok(vec![]),
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
    let mut out = vec![];
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
        out.push(rel.to_path_buf());
    }
    Ok(out)
}

/// Copy the user's git-ignored files matching `include` into `dest`.
fn copy_includes(checkout: &Path, dest: &Path, include: &[String]) -> Result<(), SandboxError> {
    for rel in include_paths(checkout, include)? {
        copy_path(&checkout.join(&rel), &dest.join(&rel))?;
    }
    Ok(())
}

/// The user's git-ignored regular files matching `include`, read, as (path inside the
/// checkout, bytes): what a run on another host gets. Symlinks are not sent (they would
/// point into this machine).
pub(crate) fn include_files(
    checkout: &Path,
    include: &[String],
) -> Result<Vec<(PathBuf, Vec<u8>)>, SandboxError> {
    fn walk(
        root: &Path,
        rel: &Path,
        out: &mut Vec<(PathBuf, Vec<u8>)>,
    ) -> Result<(), SandboxError> {
        let path = root.join(rel);
        let meta = std::fs::symlink_metadata(&path).map_err(SandboxError::io(&path))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(SandboxError::io(&path))? {
                let entry = entry.map_err(SandboxError::io(&path))?;
                walk(root, &rel.join(entry.file_name()), out)?;
            }
        } else if meta.is_file() {
            out.push((
                rel.to_path_buf(),
                std::fs::read(&path).map_err(SandboxError::io(&path))?,
            ));
        }
        Ok(())
    }
    let mut out = vec![];
    for rel in include_paths(checkout, include)? {
        walk(checkout, &rel, &mut out)?;
    }
    Ok(out)
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

/// Stage everything in the sandbox (respecting `.gitignore`, deletions included), commit it
/// on the run's branch when anything changed, and bring the branch back into the clone.
/// `author` is `Name <email>` or a name. Whatever the agent did to its own refs, what comes
/// back is the run's branch; if the agent checked out something else, the leftovers are
/// committed there and that head is what comes back.
pub fn commit_leftovers(
    p: &Prepared,
    message: &str,
    author: &str,
) -> Result<Leftovers, SandboxError> {
    let repo = open_sandbox(p)?;
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

    let tip = if head.tree_id() == tree_id {
        head.id()
    } else {
        let (name, email) = parse_author(author);
        let sig = git2::Signature::now(&name, &email).map_err(git_err(&p.dir))?;
        repo.commit(None, &sig, &sig, message, &tree, &[&head])
            .map_err(git_err(&p.dir))?
    };
    let commit = (tip != head.id()).then(|| tip.to_string());
    // The run's branch is where its work is, whatever HEAD pointed at.
    repo.reference(
        &format!("refs/heads/{}", p.branch),
        tip,
        true,
        "shopfloor: the run's work",
    )
    .map_err(git_err(&p.dir))?;
    bring_back(p)?;

    Ok(Leftovers {
        commit,
        files_changed: changed_files(p)?,
    })
}

/// Every path that differs between the run's base commit and its branch in the clone,
/// sorted.
pub(crate) fn changed_files(p: &Prepared) -> Result<Vec<String>, SandboxError> {
    let repo = git2::Repository::open(&p.clone).map_err(git_err(&p.clone))?;
    let base = git2::Oid::from_str(&p.base_commit).map_err(git_err(&p.clone))?;
    let tip = repo
        .find_branch(&p.branch, git2::BranchType::Local)
        .and_then(|b| b.get().peel_to_commit())
        .map_err(git_err(&p.clone))?;
    Ok(crate::diffstat::between(&repo, base, tip.id())
        .map_err(git_err(&p.clone))?
        .files)
}

/// Fetch the run's branch from `url` (its checkout on another host, reached by git over
/// `ssh_command`) into the clone.
pub(crate) fn fetch_branch(p: &Prepared, url: &str, ssh_command: &str) -> Result<(), SandboxError> {
    let _clone = clone_writes();
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(&p.clone)
        .args(["fetch", "--quiet", "--no-tags", url])
        .arg(format!("+refs/heads/{0}:refs/heads/{0}", p.branch))
        .env("GIT_SSH_COMMAND", ssh_command)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(SandboxError::io(&p.clone))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SandboxError::Git {
            path: p.clone.clone(),
            message: format!(
                "fetching {} back: {}",
                p.branch,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}

/// Fetch the run's branch from its sandbox into the clone, with the objects it needs.
fn bring_back(p: &Prepared) -> Result<(), SandboxError> {
    let _clone = clone_writes();
    let clone = git2::Repository::open(&p.clone).map_err(git_err(&p.clone))?;
    let url = p.dir.join(".git");
    let mut remote = clone
        .remote_anonymous(&url.to_string_lossy())
        .map_err(git_err(&p.clone))?;
    let refspec = format!("+refs/heads/{0}:refs/heads/{0}", p.branch);
    remote
        .fetch(&[refspec.as_str()], None, None)
        .map_err(git_err(&p.clone))?;
    Ok(())
}

pub(crate) fn parse_author(author: &str) -> (String, String) {
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

/// Remove the sandbox's directory. The branch stays in the clone: the merge queue needs it.
pub fn remove(p: &Prepared) -> Result<(), SandboxError> {
    if p.branch.is_empty() {
        // A review's sealed checkout.
        unseal(&p.dir);
    }
    match std::fs::remove_dir_all(&p.dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SandboxError::io(&p.dir)(e)),
    }
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
}

//! The factory's own clone of the user's repository: made on first use, refreshed from
//! the user's main (a fast-forward, never the reverse), and landed on. This module is the
//! only code that moves a main: ours by compare-and-swap when the queue lands, the user's
//! `shopfloor/main` when it publishes. The user's checkout is only ever read.

use std::path::{Path, PathBuf};

use git2::{Oid, Repository};

use super::{QueueError, audit, hex};
use crate::layout::WorkspaceInfo;
use crate::workspace::Workspace;

/// The workspace's own clone of the user's repository (made on first use), refreshed from
/// the user's repository: new commits on their main fast-forward ours, never the reverse,
/// and the user's checkout is only read. Returns the clone's path and its main branch.
/// It needs no open workspace, so readers such as `shopfloor policy check` can use it
/// while the factory holds the store.
pub fn ensure(info: &WorkspaceInfo) -> Result<(PathBuf, String), git2::Error> {
    let dest = info.clone_dir();
    let user = git2::Repository::open(&info.repo)?;
    let main = match user.head() {
        Ok(h) if h.is_branch() => h.shorthand().unwrap_or("main").to_string(),
        _ => "main".to_string(),
    };
    let repo = if dest.join(".git").exists() || dest.join("HEAD").exists() {
        git2::Repository::open(&dest)?
    } else {
        let url = info.repo.to_string_lossy().to_string();
        git2::build::RepoBuilder::new().clone(&url, &dest)?
    };
    // Fetch the user's branches into origin/*.
    let mut remote = repo.find_remote("origin")?;
    remote.fetch(&["+refs/heads/*:refs/remotes/origin/*"], None, None)?;
    let theirs = repo.refname_to_id(&format!("refs/remotes/origin/{main}"));
    let ours_ref = format!("refs/heads/{main}");
    match (repo.refname_to_id(&ours_ref), theirs) {
        (Err(_), Ok(t)) => {
            repo.reference(
                &ours_ref,
                t,
                false,
                "shopfloor: main from the user's repository",
            )?;
        }
        (Ok(o), Ok(t)) if o != t && repo.graph_descendant_of(t, o)? => {
            // Compare-and-swap: only if main is still where we read it.
            repo.reference_matching(
                &ours_ref,
                t,
                true,
                o,
                "shopfloor: fast-forward from the user's repository",
            )?;
        }
        _ => {}
    }
    Ok((dest, main))
}

/// Remove every worktree directory under `root` and prune git's records of them.
pub fn clean_worktrees(clone: &Path, root: &Path) -> Result<(), git2::Error> {
    if let Ok(entries) = std::fs::read_dir(root) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                tracing::info!(path = %p.display(), "removing a dead run's worktree");
                let _ = std::fs::remove_dir_all(&p);
            }
        }
    }
    let repo = git2::Repository::open(clone)?;
    let names = repo.worktrees()?;
    for name in (0..names.len()).filter_map(|i| names.get(i).ok().flatten()) {
        if let Ok(wt) = repo.find_worktree(name)
            && wt.validate().is_err()
        {
            let mut opts = git2::WorktreePruneOptions::new();
            opts.working_tree(true);
            let _ = wt.prune(Some(&mut opts));
        }
    }
    Ok(())
}

/// Move `refs/heads/<main>` from `old` to `new`, only if it still points at `old`.
/// `Ok(false)`: someone else moved it first (another factory, a hand-run git command);
/// main is left as they left it.
pub(super) fn compare_and_swap(
    repo: &Repository,
    main: &str,
    old: Oid,
    new: Oid,
    message: &str,
) -> Result<bool, git2::Error> {
    let name = format!("refs/heads/{main}");
    match repo.reference_matching(&name, new, true, old, message) {
        Ok(_) => Ok(true),
        Err(e) => {
            // libgit2 reports a lost race as `Modified` (the ref moved) or `Locked` (another
            // writer holds the ref's lock right now); both mean "not us".
            let now = repo.refname_to_id(&name).ok();
            if now != Some(old)
                || matches!(
                    e.code(),
                    git2::ErrorCode::Modified | git2::ErrorCode::Locked
                )
            {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

/// The branch people see landed work on, in their own repository.
pub const USER_BRANCH: &str = "shopfloor/main";

/// Point `shopfloor/main` in the user's repository at `main` (pushing the objects it
/// needs), never touching their HEAD, index or working tree; a failure is logged and
/// audited, since main has landed in the factory's clone either way.
pub(super) fn publish_to_user(ws: &Workspace, repo: &Repository, main_branch: &str, main: &str) {
    let done = (|| -> std::result::Result<(), String> {
        let user = Repository::open(&ws.info.repo).map_err(|e| e.to_string())?;
        let target = format!("refs/heads/{USER_BRANCH}");
        // Their checked-out branch is never moved under their feet (invariant 7).
        if user
            .head()
            .ok()
            .and_then(|h| h.name().ok().map(String::from))
            == Some(target.clone())
        {
            return Err(format!(
                "{USER_BRANCH} is checked out in {}; switch to another branch and the next landing updates it",
                ws.info.repo.display()
            ));
        }
        // Fetched from the user's side: libgit2 cannot push into a non-bare repository.
        // Only the objects and that one ref are written; no FETCH_HEAD either.
        let clone = repo.path().to_string_lossy().into_owned();
        let mut remote = user.remote_anonymous(&clone).map_err(|e| e.to_string())?;
        let spec = format!("+refs/heads/{main_branch}:{target}");
        let mut opts = git2::FetchOptions::new();
        opts.update_fetchhead(false);
        remote
            .fetch(&[&spec], Some(&mut opts), None)
            .map_err(|e| e.to_string())?;
        let now = user.refname_to_id(&target).map_err(|e| e.to_string())?;
        if hex(now) != main {
            return Err(format!("{USER_BRANCH} is at {now}, not {main}"));
        }
        Ok(())
    })();
    if let Err(why) = done {
        tracing::warn!(%why, "could not update {USER_BRANCH} in the user's repository");
        audit(ws, "merge-queue", "queue.publish_failed", why);
    }
}

/// Push our main to `remote` (`[merge] push`) after a landing; a failure or a refusal is
/// audited and said, and the next landing pushes again.
pub(super) fn push_main(
    ws: &Workspace,
    repo: &Repository,
    main: &str,
    remote: &str,
) -> Result<(), QueueError> {
    let mut r = repo.find_remote(remote).map_err(|e| {
        QueueError::Invalid(format!(
            "[merge] push = \"{remote}\": no such remote in the factory's clone: {e}"
        ))
    })?;
    let spec = format!("refs/heads/{main}:refs/heads/{main}");
    let mut refused = None;
    let mut cbs = git2::RemoteCallbacks::new();
    cbs.push_update_reference(|name, status| {
        if let Some(s) = status {
            refused = Some(format!("{name}: {s}"));
        }
        Ok(())
    });
    let mut opts = git2::PushOptions::new();
    opts.remote_callbacks(cbs);
    let pushed = r.push(&[&spec], Some(&mut opts));
    drop(opts);
    if let Err(e) = pushed {
        audit(ws, "merge-queue", "queue.push_failed", e.to_string());
        return Err(QueueError::Invalid(format!(
            "pushing main to `{remote}` failed: {e}; main landed in the factory's clone and will be pushed after the next landing"
        )));
    }
    if let Some(why) = refused {
        audit(ws, "merge-queue", "queue.push_refused", why.clone());
        return Err(QueueError::Invalid(format!(
            "`{remote}` refused the push of main ({why}); main landed in the factory's clone; pull and resolve, then the next landing pushes again"
        )));
    }
    Ok(())
}

//! The git the merge queue needs, all with git2 on the factory's clone and none of it
//! touching a working tree: merge two commits in memory, check a commit out into a
//! directory of its own, and move main with a compare-and-swap.

use std::path::Path;

use git2::{Oid, Repository};

/// What merging a branch onto a base gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Merged {
    /// The commit that would become main: the branch itself when it already sits on
    /// the base (a fast-forward), else a new merge commit (written, on no ref).
    Clean { commit: Oid },
    /// The branch is already in the base: nothing to land.
    AlreadyIn,
    /// These paths conflict.
    Conflict { paths: Vec<String> },
}

/// Merge `tip` onto `base` in memory.
pub fn merge(repo: &Repository, base: Oid, tip: Oid, message: &str) -> Result<Merged, git2::Error> {
    use crate::merge::InMemory;
    Ok(match crate::merge::merge(repo, base, tip)? {
        InMemory::Same | InMemory::AlreadyIn => Merged::AlreadyIn,
        InMemory::FastForward => Merged::Clean { commit: tip },
        InMemory::Conflicts(paths) => Merged::Conflict { paths },
        InMemory::Merged { tree } => {
            let (ours, theirs) = (repo.find_commit(base)?, repo.find_commit(tip)?);
            let tree = repo.find_tree(tree)?;
            let sig = signature()?;
            let commit = repo.commit(None, &sig, &sig, message, &tree, &[&ours, &theirs])?;
            Merged::Clean { commit }
        }
    })
}

/// The queue's own identity in the history it writes.
fn signature() -> Result<git2::Signature<'static>, git2::Error> {
    git2::Signature::now("shopfloor merge queue", "merge-queue@shopfloor.invalid")
}

/// Write `commit`'s files into `dir` (made if missing), without touching the repository's
/// own working tree, index or HEAD.
pub fn checkout(repo: &Repository, commit: Oid, dir: &Path) -> Result<(), git2::Error> {
    std::fs::create_dir_all(dir).map_err(|e| git2::Error::from_str(&e.to_string()))?;
    let tree = repo.find_commit(commit)?.tree()?;
    let mut co = git2::build::CheckoutBuilder::new();
    // Not the clone's index either: libgit2 would otherwise lock and rewrite it, which
    // also made parallel checkouts (speculative mode) fail on `index.lock`.
    co.target_dir(dir)
        .force()
        .recreate_missing(true)
        .update_index(false);
    repo.checkout_tree(tree.as_object(), Some(&mut co))
}

/// The unified diff between two commits, as `git diff` prints it, cut at `limit` bytes
/// (a reviewer reads a diff; a multi-megabyte generated file is noted, not shipped).
pub fn diff_patch(
    repo: &Repository,
    from: Oid,
    to: Oid,
    limit: usize,
) -> Result<String, git2::Error> {
    let a = repo.find_commit(from)?.tree()?;
    let b = repo.find_commit(to)?.tree()?;
    let diff = repo.diff_tree_to_tree(Some(&a), Some(&b), None)?;
    let mut out = String::new();
    let mut cut = false;
    diff.print(git2::DiffFormat::Patch, |_, _, line| {
        if out.len() >= limit {
            cut = true;
            return false;
        }
        if matches!(line.origin(), '+' | '-' | ' ') {
            out.push(line.origin());
        }
        out.push_str(&String::from_utf8_lossy(line.content()));
        true
    })
    .or_else(|e| if cut { Ok(()) } else { Err(e) })?;
    if cut {
        out.push_str("\n[diff cut: larger than the control room shows; `git diff` has it all]\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit_file(repo: &Repository, parent: Option<Oid>, path: &str, text: &str) -> Oid {
        let mut builder = match parent {
            Some(p) => repo
                .treebuilder(Some(&repo.find_commit(p).unwrap().tree().unwrap()))
                .unwrap(),
            None => repo.treebuilder(None).unwrap(),
        };
        let blob = repo.blob(text.as_bytes()).unwrap();
        builder.insert(path, blob, 0o100644).unwrap();
        let tree = repo.find_tree(builder.write().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@e").unwrap();
        let parents: Vec<git2::Commit> = parent
            .map(|p| repo.find_commit(p).unwrap())
            .into_iter()
            .collect();
        let refs: Vec<&git2::Commit> = parents.iter().collect();
        repo.commit(None, &sig, &sig, "c", &tree, &refs).unwrap()
    }

    #[test]
    fn merge_fast_forward_clean_conflict_and_already_in() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let base = commit_file(&repo, None, "a.txt", "a\n");
        let ff = commit_file(&repo, Some(base), "b.txt", "b\n");
        assert_eq!(
            merge(&repo, base, ff, "m").unwrap(),
            Merged::Clean { commit: ff }
        );
        assert_eq!(merge(&repo, ff, base, "m").unwrap(), Merged::AlreadyIn);
        let other = commit_file(&repo, Some(base), "c.txt", "c\n");
        let Merged::Clean { commit } = merge(&repo, ff, other, "m").unwrap() else {
            panic!("clean")
        };
        assert_eq!(repo.find_commit(commit).unwrap().parent_count(), 2);
        let paths = crate::diffstat::between(&repo, ff, commit).unwrap().files;
        assert_eq!(paths, vec!["c.txt".to_string()]);
        let x = commit_file(&repo, Some(base), "a.txt", "x\n");
        let y = commit_file(&repo, Some(base), "a.txt", "y\n");
        assert_eq!(
            merge(&repo, x, y, "m").unwrap(),
            Merged::Conflict {
                paths: vec!["a.txt".into()]
            }
        );
    }

    #[test]
    fn compare_and_swap_loses_to_a_ref_that_moved() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let a = commit_file(&repo, None, "a.txt", "a\n");
        let b = commit_file(&repo, Some(a), "a.txt", "b\n");
        let c = commit_file(&repo, Some(a), "a.txt", "c\n");
        repo.reference("refs/heads/main", a, true, "init").unwrap();
        assert!(crate::mergeq::clone::compare_and_swap(&repo, "main", a, b, "land b").unwrap());
        assert!(
            !crate::mergeq::clone::compare_and_swap(&repo, "main", a, c, "land c").unwrap(),
            "main is at b now"
        );
        assert_eq!(repo.refname_to_id("refs/heads/main").unwrap(), b);
    }
}

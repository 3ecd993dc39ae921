//! Merging two commits in memory, with no working tree, index or ref touched: the one
//! implementation the policy gate's preview (`shopfloor policy check`) and the merge queue
//! both build on.

use git2::{Oid, Repository};

/// What merging `tip` onto `base` gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InMemory {
    /// They are the same commit.
    Same,
    /// `tip` already contains `base`: a fast-forward to `tip`.
    FastForward,
    /// `base` already contains `tip`: nothing to merge.
    AlreadyIn,
    /// A true merge: its tree, written as a tree object (no commit).
    Merged { tree: Oid },
    /// The paths that conflict (every side's path of each conflict), sorted.
    Conflicts(Vec<String>),
}

/// Merge `tip` onto `base` in memory.
pub fn merge(repo: &Repository, base: Oid, tip: Oid) -> Result<InMemory, git2::Error> {
    if base == tip {
        return Ok(InMemory::Same);
    }
    if repo.graph_descendant_of(tip, base)? {
        return Ok(InMemory::FastForward);
    }
    if repo.graph_descendant_of(base, tip)? {
        return Ok(InMemory::AlreadyIn);
    }
    let (ours, theirs) = (repo.find_commit(base)?, repo.find_commit(tip)?);
    let mut index = repo.merge_commits(&ours, &theirs, None)?;
    if index.has_conflicts() {
        let mut paths = vec![];
        for c in index.conflicts()? {
            let c = c?;
            for e in [c.our, c.their, c.ancestor].into_iter().flatten() {
                paths.push(String::from_utf8_lossy(&e.path).into_owned());
            }
        }
        paths.sort();
        paths.dedup();
        return Ok(InMemory::Conflicts(paths));
    }
    Ok(InMemory::Merged {
        tree: index.write_tree_to(repo)?,
    })
}

//! What changed between two commits or trees: the one implementation the policy gate, the
//! merge queue, a run's list of files and its failure digest all read. Renames are
//! detected (a pure move counts its two paths and no lines); binary files count no lines.

use git2::{Oid, Repository, Tree};

/// One changed file of a diff: its path, or both paths of a rename.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileChange {
    pub paths: Vec<String>,
    pub added: u64,
    pub deleted: u64,
    pub binary: bool,
}

/// A diff in sum: every path it touches (sorted, once each) and its lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub files: Vec<String>,
    pub added: u64,
    pub deleted: u64,
}

impl Summary {
    /// Added plus deleted lines.
    pub fn lines(&self) -> u64 {
        self.added + self.deleted
    }
}

/// The files changed from `base` to `candidate`, one entry per file (a rename is one).
pub fn changes(
    repo: &Repository,
    base: &Tree<'_>,
    candidate: &Tree<'_>,
) -> Result<Vec<FileChange>, git2::Error> {
    let mut opts = git2::DiffOptions::new();
    opts.context_lines(0);
    let mut diff = repo.diff_tree_to_tree(Some(base), Some(candidate), Some(&mut opts))?;
    diff.find_similar(Some(git2::DiffFindOptions::new().renames(true)))?;
    let mut out = vec![];
    for i in 0..diff.deltas().len() {
        let Some(patch) = git2::Patch::from_diff(&diff, i)? else {
            continue;
        };
        let (_, added, deleted) = patch.line_stats()?;
        let delta = patch.delta();
        let path = |f: git2::DiffFile<'_>| f.path().map(|p| p.to_string_lossy().into_owned());
        let mut paths = vec![];
        for p in [path(delta.old_file()), path(delta.new_file())]
            .into_iter()
            .flatten()
        {
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
        out.push(FileChange {
            paths,
            added: added as u64,
            deleted: deleted as u64,
            binary: delta.flags().is_binary(),
        });
    }
    Ok(out)
}

/// The sum of the changes from commit `from` to commit `to`.
pub fn between(repo: &Repository, from: Oid, to: Oid) -> Result<Summary, git2::Error> {
    let a = repo.find_commit(from)?.tree()?;
    let b = repo.find_commit(to)?.tree()?;
    let mut s = Summary::default();
    for c in changes(repo, &a, &b)? {
        s.files.extend(c.paths);
        s.added += c.added;
        s.deleted += c.deleted;
    }
    s.files.sort();
    s.files.dedup();
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(repo: &Repository, parent: Option<Oid>, files: &[(&str, &str)]) -> Oid {
        let mut b = repo.treebuilder(None).unwrap();
        for (p, text) in files {
            let blob = repo.blob(text.as_bytes()).unwrap();
            b.insert(p, blob, 0o100644).unwrap();
        }
        let tree = repo.find_tree(b.write().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        let parents: Vec<_> = parent
            .map(|p| repo.find_commit(p).unwrap())
            .into_iter()
            .collect();
        let refs: Vec<_> = parents.iter().collect();
        repo.commit(None, &sig, &sig, "c", &tree, &refs).unwrap()
    }

    #[test]
    fn a_move_is_two_paths_and_no_lines_an_edit_counts_its_lines() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let body = "one\ntwo\nthree\nfour\nfive\n";
        let a = commit(&repo, None, &[("old.txt", body), ("e.txt", "a\nb\n")]);
        let b = commit(&repo, Some(a), &[("new.txt", body), ("e.txt", "a\nc\nd\n")]);
        let s = between(&repo, a, b).unwrap();
        assert_eq!(s.files, vec!["e.txt", "new.txt", "old.txt"]);
        assert_eq!((s.added, s.deleted, s.lines()), (2, 1, 3));
    }
}

//! The policy gate: which changed paths need a human, which may never land, how big a
//! change may be and which checks must pass, judged on the diff a candidate brings to main.
//! Reads git and writes nothing (except, for a merge preview, a tree object).

use std::collections::BTreeMap;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::config::PolicyConfig;
use crate::model::Verdict;

/// The checks a `required_checks` entry may name; "test" is the `[test]` command,
/// "review" an agent review (`[review]`).
pub const KNOWN_CHECKS: &[&str] = &["test", "review"];

/// What a `[policy] paths` line does to the paths it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathAction {
    /// Lift what an earlier line caught.
    Allow,
    /// A human must sign off before it lands.
    Approve,
    /// Never lands.
    Deny,
}

impl PathAction {
    fn parse(word: &str) -> Option<PathAction> {
        match word {
            "allow" => Some(PathAction::Allow),
            "approve" => Some(PathAction::Approve),
            "deny" => Some(PathAction::Deny),
            _ => None,
        }
    }
}

/// One line of `[policy] paths`, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub action: PathAction,
    /// The line as the user wrote it (trimmed), e.g. `deny .github/workflows/**`.
    pub text: String,
    /// Its 1-based position in `paths`; `None` for the built-in rule.
    pub line: Option<usize>,
}

impl Rule {
    /// Where the rule comes from, for a reason: "line 4 of [policy] paths".
    pub fn origin(&self) -> String {
        match self.line {
            Some(n) => format!("line {n} of [policy] paths"),
            None => format!(
                "built in, so a change cannot loosen its own policy; `allow {BUILTIN_GLOB}` lifts it"
            ),
        }
    }
}

/// Evaluated before the user's lines, so any of them can override it: the policy file
/// itself needs a human, or an agent could land a change that deletes its deny lines.
const BUILTIN_GLOB: &str = "/shopfloor.toml";

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A bad `paths` entry; `line` is its 1-based position in the list.
    #[error("[policy] paths entry {line} (`{text}`): {message}")]
    Rule {
        line: usize,
        text: String,
        message: String,
    },
    #[error("[policy] required_checks: {0}")]
    Check(String),
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

/// The rules of `[policy]`, compiled.
#[derive(Debug)]
pub struct Policy {
    rules: Vec<Rule>,
    set: GlobSet,
    /// For each glob in `set`, the index of its rule in `rules`.
    owner: Vec<usize>,
    max_changed_lines: u64,
    required_checks: Vec<String>,
}

pub use crate::diffstat::FileChange;

/// What merging a branch into main would give, computed in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MergePreview {
    /// The tree main would have; `fast_forward` when the branch already contains main.
    Clean { tree: git2::Oid, fast_forward: bool },
    /// The paths that conflict; there is no candidate to judge until they are resolved.
    Conflicts(Vec<String>),
}

impl Policy {
    pub fn from_config(c: &PolicyConfig) -> Result<Policy, PolicyError> {
        let mut rules = vec![Rule {
            action: PathAction::Approve,
            text: format!("approve {BUILTIN_GLOB}"),
            line: None,
        }];
        let mut globs = vec![(BUILTIN_GLOB.to_string(), 0)];
        for (i, raw) in c.paths.iter().enumerate() {
            let line = i + 1;
            let text = raw.trim().to_string();
            let bad = |message: String| PolicyError::Rule {
                line,
                text: text.clone(),
                message,
            };
            let (word, glob) = text
                .split_once(char::is_whitespace)
                .map(|(w, g)| (w, g.trim()))
                .unwrap_or((text.as_str(), ""));
            if text.is_empty() {
                return Err(bad(
                    "empty; write `ACTION GLOB` with ACTION approve, deny or allow".into(),
                ));
            }
            let Some(action) = PathAction::parse(word) else {
                return Err(bad(format!(
                    "unknown action `{word}`; write `ACTION GLOB` with ACTION approve, deny or allow"
                )));
            };
            if glob.is_empty() {
                return Err(bad(format!(
                    "no glob after `{word}`; write e.g. `{word} migrations/**`"
                )));
            }
            rules.push(Rule {
                action,
                text: text.clone(),
                line: Some(line),
            });
            globs.push((glob.to_string(), rules.len() - 1));
        }
        let mut builder = GlobSetBuilder::new();
        let mut owner = vec![];
        for (glob, rule) in globs {
            let compiled = gitignore_globs(&glob).map_err(|message| {
                let r = &rules[rule];
                PolicyError::Rule {
                    line: r.line.unwrap_or(0),
                    text: r.text.clone(),
                    message,
                }
            })?;
            for g in compiled {
                builder.add(g);
                owner.push(rule);
            }
        }
        let set = builder
            .build()
            .map_err(|e| PolicyError::Check(format!("cannot build the path rules: {e}")))?;
        for (i, check) in c.required_checks.iter().enumerate() {
            if !KNOWN_CHECKS.contains(&check.as_str()) {
                return Err(PolicyError::Check(format!(
                    "unknown check `{check}`; the checks are: {}",
                    KNOWN_CHECKS.join(", ")
                )));
            }
            if c.required_checks[..i].contains(check) {
                return Err(PolicyError::Check(format!("`{check}` is listed twice")));
            }
        }
        Ok(Policy {
            rules,
            set,
            owner,
            max_changed_lines: c.max_changed_lines,
            required_checks: c.required_checks.clone(),
        })
    }

    pub fn required_checks(&self) -> &[String] {
        &self.required_checks
    }

    /// 0 means no limit.
    pub fn max_changed_lines(&self) -> u64 {
        self.max_changed_lines
    }

    /// The rule that decides `path` (relative to the repository root, `/`-separated):
    /// the last line that matches it, or `None` when no line does (it may land).
    pub fn decide(&self, path: &str) -> Option<&Rule> {
        self.set
            .matches(path)
            .into_iter()
            .map(|g| self.owner[g])
            .max()
            .map(|r| &self.rules[r])
    }

    /// Judge the change from `base` (main) to `candidate` (the merged or branch commit):
    /// which paths it touches (renames count both sides, deletions count), how many lines,
    /// what that needs. Either may be a commit or a tree. Pure git2 reads; nothing written.
    pub fn evaluate(
        &self,
        repo: &git2::Repository,
        base: git2::Oid,
        candidate: git2::Oid,
    ) -> Result<Verdict, PolicyError> {
        let base = repo.find_object(base, None)?.peel_to_tree()?;
        let candidate = repo.find_object(candidate, None)?.peel_to_tree()?;
        self.evaluate_trees(repo, &base, &candidate)
    }

    /// [`Policy::evaluate`] on two trees, e.g. main's and an in-memory merge's.
    pub fn evaluate_trees(
        &self,
        repo: &git2::Repository,
        base: &git2::Tree<'_>,
        candidate: &git2::Tree<'_>,
    ) -> Result<Verdict, PolicyError> {
        Ok(self.judge(&changes(repo, base, candidate)?))
    }

    /// The verdict on a list of changed files: the pure decision behind `evaluate`.
    /// `needs_human` is only set on an allowed change: no approval can land a denied path.
    pub fn judge(&self, changes: &[FileChange]) -> Verdict {
        let mut decided: BTreeMap<&str, &Rule> = BTreeMap::new();
        for p in changes.iter().flat_map(|c| &c.paths) {
            if let Some(rule) = self.decide(p)
                && rule.action != PathAction::Allow
            {
                decided.insert(p, rule);
            }
        }
        let (mut denied, mut gated, mut reasons, mut gate_reasons) =
            (vec![], vec![], vec![], vec![]);
        for (path, rule) in decided {
            if rule.action == PathAction::Deny {
                reasons.push(format!(
                    "`{path}` is denied by `{}` ({})",
                    rule.text,
                    rule.origin()
                ));
                denied.push(path.to_string());
            } else {
                gate_reasons.push(format!(
                    "`{path}` needs a human's approval: `{}` ({})",
                    rule.text,
                    rule.origin()
                ));
                gated.push(path.to_string());
            }
        }
        reasons.append(&mut gate_reasons);
        let changed_lines: u64 = changes.iter().map(|c| c.added + c.deleted).sum();
        let too_big = self.max_changed_lines > 0 && changed_lines > self.max_changed_lines;
        if too_big {
            reasons.push(format!(
                "{changed_lines} changed lines exceed max_changed_lines = {}: a human must approve",
                self.max_changed_lines
            ));
        }
        let allowed = denied.is_empty();
        Verdict {
            allowed,
            needs_human: allowed && (!gated.is_empty() || too_big),
            reasons,
            denied,
            gated,
            changed_lines,
            files: changes.len() as u64,
        }
    }
}

/// The globs (globset syntax, `/` never crossed by `*`) that one gitignore-style pattern
/// stands for. A pattern with a `/` at its start or in its middle is anchored at the root;
/// otherwise it matches at any depth. It matches a path itself or anything under it (a
/// directory), and a trailing `/` keeps only the second.
fn gitignore_globs(pattern: &str) -> Result<Vec<globset::Glob>, String> {
    let dir_only = pattern.ends_with('/');
    let p = pattern.trim_end_matches('/');
    let anchored = p.contains('/');
    let p = p.trim_start_matches('/');
    if p.is_empty() {
        return Err("the glob matches no path; `**` matches every path".into());
    }
    let base = if anchored {
        p.to_string()
    } else {
        format!("**/{p}")
    };
    let mut out = vec![format!("{base}/**")];
    if !dir_only {
        out.push(base);
    }
    out.iter()
        .map(|g| {
            GlobBuilder::new(g)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| format!("bad glob `{pattern}`: {}", e.kind()))
        })
        .collect()
}

/// The files changed from `base` to `candidate` (see [`crate::diffstat::changes`]).
pub fn changes(
    repo: &git2::Repository,
    base: &git2::Tree<'_>,
    candidate: &git2::Tree<'_>,
) -> Result<Vec<FileChange>, PolicyError> {
    Ok(crate::diffstat::changes(repo, base, candidate)?)
}

/// Merge `branch` into `main` in memory: the branch's own tree when it already contains
/// main, main's when main already contains it, else the merged tree (written as a tree
/// object, no commit) or the conflicting paths.
pub fn preview_merge(
    repo: &git2::Repository,
    main: git2::Oid,
    branch: git2::Oid,
) -> Result<MergePreview, PolicyError> {
    use crate::merge::InMemory;
    Ok(match crate::merge::merge(repo, main, branch)? {
        InMemory::Same | InMemory::FastForward => MergePreview::Clean {
            tree: repo.find_commit(branch)?.tree_id(),
            fast_forward: true,
        },
        InMemory::AlreadyIn => MergePreview::Clean {
            tree: repo.find_commit(main)?.tree_id(),
            fast_forward: false,
        },
        InMemory::Merged { tree } => MergePreview::Clean {
            tree,
            fast_forward: false,
        },
        InMemory::Conflicts(paths) => MergePreview::Conflicts(paths),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn policy(lines: &[&str]) -> Policy {
        Policy::from_config(&PolicyConfig {
            paths: lines.iter().map(|s| s.to_string()).collect(),
            max_changed_lines: 0,
            required_checks: vec!["test".into()],
        })
        .unwrap()
    }

    fn action(p: &Policy, path: &str) -> Option<PathAction> {
        p.decide(path).map(|r| r.action)
    }

    fn error(lines: &[&str]) -> String {
        Policy::from_config(&PolicyConfig {
            paths: lines.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
        .unwrap_err()
        .to_string()
    }

    #[test]
    fn a_pattern_with_a_slash_is_anchored_at_the_root() {
        let p = policy(&["deny src/db/*.rs"]);
        assert_eq!(action(&p, "src/db/schema.rs"), Some(PathAction::Deny));
        assert_eq!(action(&p, "lib/src/db/schema.rs"), None);
        // `*` never crosses a `/`.
        assert_eq!(action(&p, "src/db/x/schema.rs"), None);
        assert_eq!(action(&p, "src/db/schema.rsx"), None);
        let p = policy(&["deny /Cargo.toml"]);
        assert_eq!(action(&p, "Cargo.toml"), Some(PathAction::Deny));
        assert_eq!(action(&p, "crates/a/Cargo.toml"), None);
    }

    #[test]
    fn a_pattern_without_a_slash_matches_a_name_at_any_depth() {
        let p = policy(&["approve Cargo.toml", "deny *.lock"]);
        assert_eq!(action(&p, "Cargo.toml"), Some(PathAction::Approve));
        assert_eq!(action(&p, "crates/a/Cargo.toml"), Some(PathAction::Approve));
        assert_eq!(action(&p, "Cargo.toml.bak"), None);
        assert_eq!(action(&p, "xCargo.toml"), None);
        assert_eq!(action(&p, "Cargo.lock"), Some(PathAction::Deny));
        assert_eq!(action(&p, "a/b/yarn.lock"), Some(PathAction::Deny));
        assert_eq!(action(&p, "lock"), None);
    }

    #[test]
    fn double_star_spans_directories() {
        let p = policy(&["approve migrations/**"]);
        assert_eq!(action(&p, "migrations/001.sql"), Some(PathAction::Approve));
        assert_eq!(
            action(&p, "migrations/a/b/002.sql"),
            Some(PathAction::Approve)
        );
        assert_eq!(action(&p, "db/migrations/001.sql"), None);
        assert_eq!(action(&p, "migrations.md"), None);
        let p = policy(&["deny docs/**/secret.md", "deny **/*.pem"]);
        assert_eq!(action(&p, "docs/secret.md"), Some(PathAction::Deny));
        assert_eq!(action(&p, "docs/a/b/secret.md"), Some(PathAction::Deny));
        assert_eq!(action(&p, "src/docs/secret.md"), None);
        assert_eq!(action(&p, "key.pem"), Some(PathAction::Deny));
        assert_eq!(action(&p, "a/b/key.pem"), Some(PathAction::Deny));
        // Elsewhere `**` is a `*`, as in gitignore.
        let p = policy(&["deny a**b/c"]);
        assert_eq!(action(&p, "axyb/c"), Some(PathAction::Deny));
        assert_eq!(action(&p, "ax/yb/c"), None);
        let p = policy(&["approve **"]);
        assert_eq!(action(&p, "anything/at/all.rs"), Some(PathAction::Approve));
        assert_eq!(action(&p, "README.md"), Some(PathAction::Approve));
    }

    #[test]
    fn a_directory_pattern_covers_everything_under_it() {
        // A trailing `/` is a directory only, and (as in gitignore) not an anchor.
        let p = policy(&["approve migrations/"]);
        assert_eq!(action(&p, "migrations/001.sql"), Some(PathAction::Approve));
        assert_eq!(
            action(&p, "migrations/a/001.sql"),
            Some(PathAction::Approve)
        );
        assert_eq!(
            action(&p, "db/migrations/001.sql"),
            Some(PathAction::Approve)
        );
        assert_eq!(action(&p, "migrations"), None, "a file named migrations");
        let p = policy(&["approve /migrations/"]);
        assert_eq!(action(&p, "migrations/001.sql"), Some(PathAction::Approve));
        assert_eq!(action(&p, "db/migrations/001.sql"), None);
        // Without the slash, a name matches a file or a directory of that name.
        let p = policy(&["deny secrets", "deny src/generated"]);
        assert_eq!(action(&p, "secrets"), Some(PathAction::Deny));
        assert_eq!(action(&p, "a/secrets/key"), Some(PathAction::Deny));
        assert_eq!(action(&p, "src/generated/x.rs"), Some(PathAction::Deny));
        assert_eq!(action(&p, "src/generated"), Some(PathAction::Deny));
        assert_eq!(action(&p, "src/generated.rs"), None);
    }

    #[test]
    fn the_last_matching_line_decides() {
        let p = policy(&[
            "approve migrations/**",
            "approve Cargo.toml",
            "deny .github/workflows/**",
            "allow .github/workflows/docs.yml",
        ]);
        assert_eq!(
            action(&p, ".github/workflows/ci.yml"),
            Some(PathAction::Deny)
        );
        assert_eq!(
            action(&p, ".github/workflows/docs.yml"),
            Some(PathAction::Allow)
        );
        assert_eq!(action(&p, ".github/CODEOWNERS"), None);
        let rule = p.decide(".github/workflows/ci.yml").unwrap();
        assert_eq!(rule.line, Some(3));
        assert_eq!(rule.text, "deny .github/workflows/**");
        // Order matters: a later deny beats an earlier allow.
        let p = policy(&["allow docs/**", "deny **/*.sh"]);
        assert_eq!(action(&p, "docs/build.sh"), Some(PathAction::Deny));
        let p = policy(&["deny **/*.sh", "allow docs/**"]);
        assert_eq!(action(&p, "docs/build.sh"), Some(PathAction::Allow));
    }

    #[test]
    fn the_policy_file_itself_needs_a_human_unless_a_line_lifts_it() {
        let p = policy(&[]);
        let r = p.decide("shopfloor.toml").unwrap();
        assert_eq!((r.action, r.line), (PathAction::Approve, None));
        assert_eq!(action(&p, "sub/shopfloor.toml"), None);
        let p = policy(&["allow /shopfloor.toml"]);
        assert_eq!(action(&p, "shopfloor.toml"), Some(PathAction::Allow));
        let p = policy(&["deny shopfloor.toml"]);
        assert_eq!(action(&p, "shopfloor.toml"), Some(PathAction::Deny));
    }

    #[test]
    fn bad_lines_are_errors_naming_their_entry() {
        let e = error(&["approve a", "reject b"]);
        assert!(
            e.contains("entry 2 (`reject b`)") && e.contains("unknown action `reject`"),
            "{e}"
        );
        let e = error(&["deny"]);
        assert!(
            e.contains("entry 1") && e.contains("no glob after `deny`"),
            "{e}"
        );
        let e = error(&["allow a", "  "]);
        assert!(e.contains("entry 2") && e.contains("empty"), "{e}");
        let e = error(&["deny src/[ab.rs"]);
        assert!(
            e.contains("entry 1") && e.contains("bad glob `src/[ab.rs`"),
            "{e}"
        );
        let e = error(&["deny /"]);
        assert!(e.contains("matches no path"), "{e}");
        let e = Policy::from_config(&PolicyConfig {
            required_checks: vec!["lint".into()],
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("unknown check `lint`; the checks are: test"),
            "{e}"
        );
        let e = Policy::from_config(&PolicyConfig {
            required_checks: vec!["test".into(), "test".into()],
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("listed twice"), "{e}");
    }

    fn change(path: &str, lines: u64) -> FileChange {
        FileChange {
            paths: vec![path.into()],
            added: lines,
            deleted: 0,
            binary: false,
        }
    }

    #[test]
    fn judging_a_change() {
        let mut p = policy(&["approve migrations/**", "deny .github/**"]);
        let v = p.judge(&[change("src/a.rs", 3), change("README.md", 1)]);
        assert!(v.allowed && !v.needs_human && v.reasons.is_empty(), "{v:?}");
        assert_eq!((v.files, v.changed_lines), (2, 4));

        let v = p.judge(&[change("src/a.rs", 3), change("migrations/1.sql", 10)]);
        assert!(v.allowed && v.needs_human, "{v:?}");
        assert_eq!(v.gated, ["migrations/1.sql"]);
        assert_eq!(
            v.reasons,
            [
                "`migrations/1.sql` needs a human's approval: `approve migrations/**` (line 1 of [policy] paths)"
            ]
        );

        // A denied path rejects the change; approval cannot help, so no human is asked.
        let v = p.judge(&[change("migrations/1.sql", 1), change(".github/ci.yml", 1)]);
        assert!(!v.allowed && !v.needs_human, "{v:?}");
        assert_eq!(v.denied, [".github/ci.yml"]);
        assert_eq!(v.gated, ["migrations/1.sql"]);
        assert!(
            v.reasons[0].contains("is denied by `deny .github/**` (line 2 of"),
            "{v:?}"
        );

        p.max_changed_lines = 400;
        let v = p.judge(&[change("a.rs", 400)]);
        assert!(v.allowed && !v.needs_human);
        let v = p.judge(&[change("a.rs", 400), change("b.rs", 12)]);
        assert!(v.allowed && v.needs_human);
        assert_eq!(
            v.reasons,
            ["412 changed lines exceed max_changed_lines = 400: a human must approve"]
        );
    }

    // Real repositories from here on.

    fn repo() -> (tempfile::TempDir, git2::Repository) {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        (dir, repo)
    }

    /// Commit `files` (path, Some(content) or None to delete) on top of `parent`.
    fn commit(
        repo: &git2::Repository,
        parent: Option<git2::Oid>,
        files: &[(&str, Option<&[u8]>)],
    ) -> git2::Oid {
        let root = repo.workdir().unwrap().to_path_buf();
        let mut index = repo.index().unwrap();
        if let Some(p) = parent {
            index
                .read_tree(&repo.find_commit(p).unwrap().tree().unwrap())
                .unwrap();
        }
        for (path, content) in files {
            let full = root.join(path);
            match content {
                Some(c) => {
                    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                    std::fs::write(&full, c).unwrap();
                    index.add_path(Path::new(path)).unwrap();
                }
                None => {
                    let _ = std::fs::remove_file(&full);
                    index.remove_path(Path::new(path)).unwrap();
                }
            }
        }
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let parents: Vec<git2::Commit> = parent
            .iter()
            .map(|p| repo.find_commit(*p).unwrap())
            .collect();
        let parents: Vec<&git2::Commit> = parents.iter().collect();
        repo.commit(None, &sig, &sig, "c", &tree, &parents).unwrap()
    }

    fn lines(n: usize, tag: &str) -> Vec<u8> {
        (0..n)
            .map(|i| format!("{tag} line {i}\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn lines_are_added_plus_deleted_over_the_diff() {
        let (_d, repo) = repo();
        let a = lines(10, "a");
        let base = commit(
            &repo,
            None,
            &[("a.txt", Some(&a)), ("gone.txt", Some(&lines(4, "g")))],
        );
        let mut a2 = a.clone();
        a2.extend_from_slice(b"new 1\nnew 2\n");
        // Two lines added to a.txt, one edited (1 deleted + 1 added), a file deleted, one new.
        let a2 = String::from_utf8(a2)
            .unwrap()
            .replace("a line 3\n", "A LINE 3\n");
        let cand = commit(
            &repo,
            Some(base),
            &[
                ("a.txt", Some(a2.as_bytes())),
                ("gone.txt", None),
                ("new.txt", Some(b"x\ny\nz\n")),
            ],
        );
        let v = policy(&["approve gone.txt"])
            .evaluate(&repo, base, cand)
            .unwrap();
        assert_eq!(v.files, 3);
        assert_eq!(v.changed_lines, (2 + 2) + 4 + 3);
        // The deleted file counts as a touched path.
        assert_eq!(v.gated, ["gone.txt"]);
    }

    #[test]
    fn a_rename_counts_both_paths_and_only_its_edits() {
        let (_d, repo) = repo();
        let body = lines(40, "m");
        let base = commit(&repo, None, &[("migrations/001.sql", Some(&body))]);
        let mut edited = body.clone();
        edited.extend_from_slice(b"one more\n");
        let cand = commit(
            &repo,
            Some(base),
            &[
                ("migrations/001.sql", None),
                ("archive/001.sql", Some(&edited)),
            ],
        );
        let tree = repo.find_commit(base).unwrap().tree().unwrap();
        let cand_tree = repo.find_commit(cand).unwrap().tree().unwrap();
        let ch = changes(&repo, &tree, &cand_tree).unwrap();
        assert_eq!(ch.len(), 1, "{ch:?}");
        assert_eq!(ch[0].paths, ["migrations/001.sql", "archive/001.sql"]);
        assert_eq!((ch[0].added, ch[0].deleted), (1, 0));
        // Moving a gated file out is gated by its old path; moving a file in, by its new one.
        let v = policy(&["approve migrations/**"])
            .evaluate(&repo, base, cand)
            .unwrap();
        assert_eq!(v.gated, ["migrations/001.sql"]);
        let v = policy(&["deny archive/"])
            .evaluate_trees(&repo, &tree, &cand_tree)
            .unwrap();
        assert_eq!(v.denied, ["archive/001.sql"]);
        // And the reverse direction.
        let v = policy(&["approve migrations/**"])
            .evaluate(&repo, cand, base)
            .unwrap();
        assert_eq!((v.gated.len(), v.changed_lines), (1, 1));
    }

    #[test]
    fn a_binary_file_counts_as_a_file_with_no_lines() {
        let (_d, repo) = repo();
        let base = commit(&repo, None, &[("a.txt", Some(b"a\n"))]);
        let png: &[u8] = &[0x89, b'P', b'N', b'G', 0, 0, 1, 2, 3, 0, 255, 10, 10];
        let cand = commit(
            &repo,
            Some(base),
            &[("logo.png", Some(png)), ("a.txt", Some(b"b\n"))],
        );
        let base_tree = repo.find_commit(base).unwrap().tree().unwrap();
        let cand_tree = repo.find_commit(cand).unwrap().tree().unwrap();
        let ch = changes(&repo, &base_tree, &cand_tree).unwrap();
        let png_change = ch.iter().find(|c| c.paths == ["logo.png"]).unwrap();
        assert!(png_change.binary);
        assert_eq!((png_change.added, png_change.deleted), (0, 0));
        let v = policy(&["deny *.png"]).evaluate(&repo, base, cand).unwrap();
        assert_eq!((v.files, v.changed_lines), (2, 2));
        assert_eq!(v.denied, ["logo.png"]);
    }

    #[test]
    fn merge_previews_fast_forward_merge_and_conflict() {
        let (_d, repo) = repo();
        let base = commit(
            &repo,
            None,
            &[("a.txt", Some(b"1\n2\n3\n4\n5\n")), ("b.txt", Some(b"b\n"))],
        );
        let feature = commit(
            &repo,
            Some(base),
            &[("migrations/1.sql", Some(b"create\n"))],
        );
        // Fast-forward: the branch's own tree.
        let MergePreview::Clean { tree, fast_forward } =
            preview_merge(&repo, base, feature).unwrap()
        else {
            panic!()
        };
        assert!(fast_forward);
        assert_eq!(tree, repo.find_commit(feature).unwrap().tree_id());
        // Main moved on: the merged tree has main's change and the branch's, and only the
        // branch's count against it.
        let main = commit(
            &repo,
            Some(base),
            &[("b.txt", Some(b"b\nmore\nand more\n"))],
        );
        let MergePreview::Clean { tree, fast_forward } =
            preview_merge(&repo, main, feature).unwrap()
        else {
            panic!()
        };
        assert!(!fast_forward);
        let v = policy(&["approve migrations/"])
            .evaluate(&repo, main, tree)
            .unwrap();
        assert_eq!((v.files, v.changed_lines), (1, 1));
        assert_eq!(v.gated, ["migrations/1.sql"]);
        // A branch already in main brings nothing.
        let MergePreview::Clean { tree, .. } = preview_merge(&repo, main, base).unwrap() else {
            panic!()
        };
        let v = policy(&[]).evaluate(&repo, main, tree).unwrap();
        assert_eq!(v.files, 0);
        // Both edit the same line: the conflicting path, and no tree.
        let ours = commit(&repo, Some(main), &[("a.txt", Some(b"1\n2\nours\n4\n5\n"))]);
        let theirs = commit(
            &repo,
            Some(base),
            &[("a.txt", Some(b"1\n2\ntheirs\n4\n5\n"))],
        );
        assert_eq!(
            preview_merge(&repo, ours, theirs).unwrap(),
            MergePreview::Conflicts(vec!["a.txt".into()])
        );
    }
}

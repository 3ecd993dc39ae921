//! Filters shared by every recall leg: what a memory or step must satisfy to be returned.
//! The index turns them into tantivy clauses; the dense leg and the path/recency rankers
//! check them in memory with `MemoryFilter::matches`, so every leg filters the same way.

use jiff::Timestamp;

use crate::model::{Memory, MemoryKind, RunId};

#[derive(Clone, Debug, Default)]
pub struct MemoryFilter {
    /// Any of these kinds (empty: all kinds).
    pub kinds: Vec<MemoryKind>,
    /// Written by this author (agent or human name).
    pub agent: Option<String>,
    /// Made from this run's trace.
    pub run: Option<RunId>,
    /// Touching a path under any of these prefixes or matching any of these globs.
    pub paths: Vec<String>,
    /// Not older than this.
    pub since: Option<Timestamp>,
}

#[derive(Clone, Debug, Default)]
pub struct StepFilter {
    pub run: Option<RunId>,
    pub agent: Option<String>,
    /// A step kind name (`tool_call`, `command`, ...; see `StepKind::name`).
    pub kind: Option<String>,
    pub since: Option<Timestamp>,
}

impl MemoryFilter {
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
            && self.agent.is_none()
            && self.run.is_none()
            && self.paths.is_empty()
            && self.since.is_none()
    }

    pub fn matches(&self, m: &Memory) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&m.kind))
            && self.agent.as_deref().is_none_or(|a| m.author.name() == a)
            && self
                .run
                .is_none_or(|r| m.source.is_some_and(|s| s.run == r))
            && self.since.is_none_or(|t| m.ts >= t)
            && (self.paths.is_empty()
                || self
                    .paths
                    .iter()
                    .any(|pat| m.paths.iter().any(|p| paths_overlap(pat, p))))
    }
}

/// Whether two paths or globs can name the same file, from either side: a memory about
/// `migrations/**` applies to a query about `migrations/0001_init.sql`, and a memory about
/// `src/index/mod.rs` to a query about `src/index`.
pub fn paths_overlap(a: &str, b: &str) -> bool {
    path_matches(a, b) || path_matches(b, a)
}

/// Normalise a path for prefix matching: forward slashes, no `./`, no trailing slash.
pub fn normalize_path(p: &str) -> String {
    let p = p.trim().replace('\\', "/");
    let p = p.trim_start_matches("./");
    p.trim_end_matches('/').to_string()
}

/// Whether a path names more than itself: it holds `*`, `?` or `[`.
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// The literal directory prefix of a pattern: `src/**/*.rs` -> `src`, `src/index` ->
/// `src/index`, `*.rs` -> `` (no prefix constraint).
pub fn literal_prefix(pattern: &str) -> String {
    let norm = normalize_path(pattern);
    if !is_glob(&norm) {
        return norm;
    }
    let cut = norm.find(['*', '?', '[']).unwrap_or(norm.len());
    match norm[..cut].rfind('/') {
        Some(i) => norm[..i].to_string(),
        None => String::new(),
    }
}

/// Whether `path` is matched by `pattern`: a glob (`*` within a segment, `**` across
/// segments, `?` one character) or, without glob characters, the path itself or a
/// directory above it (`src/index` matches `src/index/mod.rs`, not `src/indexer.rs`).
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let pat = normalize_path(pattern);
    let path = normalize_path(path);
    if pat.is_empty() {
        return false;
    }
    if !is_glob(&pat) {
        return path == pat
            || (path.len() > pat.len()
                && path.starts_with(&pat)
                && path.as_bytes()[pat.len()] == b'/');
    }
    glob_matches(&pat, &path)
}

/// `pattern` as a glob (globset, as the policy gate reads its globs: `*` and `?` stay
/// within a segment, `**/` spans directories), compiled once per thread and pattern:
/// recall checks it against many paths. A pattern globset refuses matches nothing.
fn glob_matches(pattern: &str, path: &str) -> bool {
    use std::cell::RefCell;
    use std::collections::HashMap;
    const KEEP: usize = 4096;
    thread_local! {
        static COMPILED: RefCell<HashMap<String, Option<globset::GlobMatcher>>> =
            RefCell::new(HashMap::new());
    }
    COMPILED.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= KEEP && !c.contains_key(pattern) {
            c.clear();
        }
        c.entry(pattern.to_string())
            .or_insert_with(|| {
                globset::GlobBuilder::new(pattern)
                    .literal_separator(true)
                    .backslash_escape(true)
                    .build()
                    .ok()
                    .map(|g| g.compile_matcher())
            })
            .as_ref()
            .is_some_and(|m| m.is_match(path))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Author, StepRef};

    #[test]
    fn prefix_matches_at_directory_boundaries() {
        assert!(path_matches("src/index", "src/index/mod.rs"));
        assert!(path_matches("src/index/", "src/index/mod.rs"));
        assert!(path_matches("./src/index/mod.rs", "src/index/mod.rs"));
        assert!(!path_matches("src/index", "src/indexer.rs"));
        assert!(!path_matches("", "src/a.rs"));
    }

    #[test]
    fn globs() {
        assert!(path_matches("src/**/*.rs", "src/index/mod.rs"));
        assert!(path_matches("src/**/*.rs", "src/lib.rs"));
        assert!(path_matches("*.toml", "Cargo.toml"));
        assert!(!path_matches("*.rs", "src/lib.rs"));
        assert!(path_matches("**/*.rs", "src/lib.rs"));
        assert!(path_matches("src/?ib.rs", "src/lib.rs"));
        assert!(!path_matches("src/*.rs", "src/index/mod.rs"));
        assert_eq!(literal_prefix("src/**/*.rs"), "src");
        assert_eq!(literal_prefix("*.rs"), "");
        assert_eq!(literal_prefix("src/index/"), "src/index");
    }

    #[test]
    fn memory_filter_checks_every_field() {
        let m = Memory {
            id: 1,
            kind: MemoryKind::Lesson,
            text: "x".into(),
            paths: vec!["src/store/writer.rs".into()],
            tags: vec![],
            author: Author::Agent {
                name: "codex".into(),
            },
            source: Some(StepRef { run: 4, step: 2 }),
            ts: Timestamp::from_second(1000).unwrap(),
            reference: None,
            seen: 1,
            confirmed: None,
        };
        assert!(MemoryFilter::default().matches(&m));
        let f = |f: MemoryFilter| f.matches(&m);
        assert!(f(MemoryFilter {
            kinds: vec![MemoryKind::Lesson, MemoryKind::Note],
            agent: Some("codex".into()),
            run: Some(4),
            paths: vec!["src/store".into()],
            since: Some(Timestamp::from_second(1000).unwrap()),
        }));
        assert!(!f(MemoryFilter {
            kinds: vec![MemoryKind::Decision],
            ..Default::default()
        }));
        assert!(!f(MemoryFilter {
            agent: Some("claude".into()),
            ..Default::default()
        }));
        assert!(!f(MemoryFilter {
            run: Some(5),
            ..Default::default()
        }));
        assert!(!f(MemoryFilter {
            paths: vec!["src/index".into()],
            ..Default::default()
        }));
        assert!(!f(MemoryFilter {
            since: Some(Timestamp::from_second(1001).unwrap()),
            ..Default::default()
        }));
    }
}

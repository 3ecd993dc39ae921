//! Checks for what tickets, memories and leases name from outside: paths and host labels.

/// Paths (or globs) a ticket, memory or lease may name: at most this many, each at most
/// [`MAX_PATH_CHARS`] characters.
pub const MAX_PATHS: usize = 64;
pub const MAX_PATH_CHARS: usize = 512;

/// The name the local machine goes by among the hosts.
pub const LOCAL: &str = "local";

/// Whether `l` is a label: 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn is_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 64
        && l.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Labels a ticket asks of its host: words (letters, digits, `-`, `_`, `.`), at most 16,
/// deduplicated. The error says which label is wrong.
pub fn host_labels(labels: Vec<String>) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = vec![];
    for l in labels {
        let l = l.trim().to_string();
        if !is_label(&l) {
            return Err(format!(
                "label \"{}\" is not a word (1 to 64 letters, digits, `-`, `_`, `.`), e.g. gpu",
                crate::safe_text::clip_bytes(&l, 64)
            ));
        }
        if !out.contains(&l) {
            out.push(l);
        }
    }
    if out.len() > 16 {
        return Err(format!("{} labels, at most 16", out.len()));
    }
    Ok(out)
}

/// Check paths named from outside (a ticket's, a memory's, a lease's): repository-relative
/// globs only, no `..`, no control characters, bounded; returned trimmed. The error says
/// what is wrong with which path.
pub fn repo_paths(paths: Vec<String>) -> Result<Vec<String>, String> {
    if paths.len() > MAX_PATHS {
        return Err(format!(
            "{} paths, at most {MAX_PATHS}; use a glob",
            paths.len()
        ));
    }
    paths
        .into_iter()
        .map(|p| {
            let p = p.trim().trim_start_matches("./").to_string();
            if p.is_empty() {
                return Err("an empty path".to_string());
            }
            let n = p.chars().count();
            if n > MAX_PATH_CHARS {
                return Err(format!(
                    "a path is {n} characters, at most {MAX_PATH_CHARS}; shorten it"
                ));
            }
            if p.chars().any(|c| c.is_control()) {
                return Err("a path holds control characters".to_string());
            }
            if p.starts_with('/') || p.starts_with('~') || p.contains('\\') {
                return Err(format!(
                    "`{p}` is not a repository-relative path; name it from the repository root, like `src/main.rs`"
                ));
            }
            if p.split('/').any(|c| c == "..") {
                return Err(format!(
                    "`{p}` climbs out with `..` and leaves the repository; name it from the repository root"
                ));
            }
            Ok(p)
        })
        .collect()
}

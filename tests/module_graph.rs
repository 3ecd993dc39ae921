//! The rooms of `src/` and what each may use, checked against the code's `crate::` paths.
//!
//! `ROOMS` below is the map (DESIGN.md's rooms table, kept true here): a room may name only
//! the rooms listed beside it, the list has no circle, so no lower room reaches a higher one.
//! A room is a top-level module of the library (`src/<room>.rs` or `src/<room>/`). Unit-test
//! code is left out: a test may reach wherever it needs to. Inside a room, no two modules
//! may name each other either (a parent and its own submodules aside: they are one module
//! in several files). The same walk checks that no source file grows past `MAX_LINES`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every room, lowest first, with the rooms it may use.
#[rustfmt::skip]
const ROOMS: &[(&str, &[&str])] = &[
    // Leaves: plain helpers and plain types.
    ("safe_text", &[]),
    ("private", &[]),
    ("since", &[]),
    ("diffstat", &[]),
    ("merge", &[]),
    ("model", &["safe_text"]),
    ("config", &["model"]),
    ("layout", &["config", "private"]),
    ("cost", &["config", "model"]),
    ("spend", &["cost", "model"]),
    ("redact", &["config", "model"]),
    // Storage and search.
    ("store", &["model", "private"]),
    ("index", &["config", "model"]),
    ("tokens", &["layout", "model"]),
    ("memory", &["config", "index", "model", "redact", "store"]),
    ("trace", &["config", "model", "redact", "safe_text", "store"]),
    // What crosses the API's socket, the factory's events among it.
    ("wire", &["memory", "model"]),
    ("policy", &["config", "diffstat", "merge", "model"]),
    // Machines and sandboxes.
    ("hosts", &["config", "layout", "model", "private"]),
    ("sandbox", &["config", "diffstat", "hosts", "layout", "model", "private"]),
    // The opened workspace: its store, index, memory and validated config.
    ("workspace", &[
        "config", "cost", "hosts", "index", "layout", "memory", "model", "policy", "private",
        "redact", "sandbox", "store", "trace",
    ]),
    ("agent", &["config", "model", "sandbox", "safe_text", "trace"]),
    ("learn", &["diffstat", "memory", "model", "safe_text", "store", "trace", "workspace"]),
    ("mergeq", &[
        "config", "diffstat", "layout", "learn", "memory", "merge", "model", "policy", "sandbox",
        "store", "trace", "workspace",
    ]),
    ("notify", &["config", "model", "wire"]),
    ("telemetry", &["config", "model", "safe_text", "trace", "wire", "workspace"]),
    ("scheduler", &[
        "agent", "config", "cost", "diffstat", "hosts", "index", "layout", "learn", "memory",
        "mergeq", "model", "notify", "policy", "safe_text", "sandbox", "spend", "store",
        "telemetry", "tokens", "trace", "wire", "workspace",
    ]),
    // The factory's API (control and MCP) and its client.
    ("api", &[
        "agent", "config", "cost", "index", "layout", "learn", "memory", "mergeq", "model",
        "policy", "safe_text", "sandbox", "scheduler", "since", "spend", "store", "telemetry",
        "tokens", "trace", "wire", "workspace",
    ]),
    ("connect", &["agent", "config", "layout", "model", "safe_text"]),
    // The control room: a view over the API's client and the factory's event stream.
    ("tui", &[
        "api", "config", "layout", "model", "notify", "safe_text", "since", "spend", "trace",
        "wire",
    ]),
];

/// The longest a source file may grow before it holds more than one job.
const MAX_LINES: usize = 800;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The library's rooms: `pub mod` lines of lib.rs.
fn rooms_in_lib() -> BTreeSet<String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("read src/lib.rs");
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').to_string())
        .collect()
}

/// The room a library file belongs to, or None for the binary's files.
fn room_of(file: &Path, rooms: &BTreeSet<String>) -> Option<String> {
    let rel = file.strip_prefix(src()).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    rooms.contains(name).then(|| name.to_string())
}

/// The file's non-test code: a `tests.rs` file is all test; elsewhere the inline
/// `#[cfg(test)] mod tests` block runs to the end of the file by this codebase's convention.
fn production_lines(file: &Path, text: &str) -> Vec<String> {
    let is_test_file = file.file_name().is_some_and(|n| n == "tests.rs")
        || file.components().any(|c| c.as_os_str() == "tests");
    if is_test_file {
        return Vec::new();
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim();
        if t == "#[cfg(test)]" {
            let next = lines.get(i + 1).map(|n| n.trim()).unwrap_or("");
            if next.starts_with("mod tests") || next.starts_with("mod test ") {
                break;
            }
        }
        if t.starts_with("//") {
            continue;
        }
        out.push(l.to_string());
    }
    out
}

/// Rooms named by `crate::<room>` in the line.
fn named_rooms<'a>(line: &'a str, rooms: &BTreeSet<String>) -> Vec<&'a str> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..end];
        if rooms.contains(name) {
            found.push(name);
        }
        rest = &after[end..];
    }
    found
}

struct Graph {
    /// (from, to) -> the first file and line that makes the edge.
    edges: BTreeMap<(String, String), String>,
    /// Files over MAX_LINES, with their length.
    long_files: Vec<(String, usize)>,
}

fn read_graph() -> Graph {
    let rooms = rooms_in_lib();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut edges = BTreeMap::new();
    let mut long_files = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read a source file");
        let rel = file.strip_prefix(src()).unwrap().display().to_string();
        let len = text.lines().count();
        if len >= MAX_LINES {
            long_files.push((format!("src/{rel}"), len));
        }
        let Some(room) = room_of(&file, &rooms) else {
            continue;
        };
        for line in production_lines(&file, &text) {
            for to in named_rooms(&line, &rooms) {
                if to != room {
                    edges
                        .entry((room.clone(), to.to_string()))
                        .or_insert_with(|| format!("src/{rel}: {}", line.trim()));
                }
            }
        }
    }
    Graph { edges, long_files }
}

#[test]
fn the_rooms_table_lists_every_room_and_has_no_circle() {
    let table: BTreeMap<&str, &[&str]> = ROOMS.iter().copied().collect();
    let in_lib = rooms_in_lib();
    let listed: BTreeSet<String> = table.keys().map(|s| s.to_string()).collect();
    assert_eq!(
        in_lib, listed,
        "src/lib.rs's rooms and this test's ROOMS differ"
    );
    // Lowest first: a room may use only rooms listed above it, which rules out circles.
    let mut seen = BTreeSet::new();
    for (room, uses) in ROOMS {
        for u in *uses {
            assert!(
                seen.contains(u),
                "`{room}` uses `{u}`, which is not listed above it"
            );
        }
        seen.insert(*room);
    }
}

#[test]
fn every_room_uses_only_the_rooms_the_table_allows() {
    let table: BTreeMap<&str, &[&str]> = ROOMS.iter().copied().collect();
    let graph = read_graph();
    let wrong: Vec<String> = graph
        .edges
        .iter()
        .filter(|((from, to), _)| {
            !table
                .get(from.as_str())
                .is_some_and(|u| u.contains(&to.as_str()))
        })
        .map(|((from, to), at)| format!("{from} -> {to}   ({at})"))
        .collect();
    assert!(
        wrong.is_empty(),
        "rooms reach where the table says they may not:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn no_source_file_grows_past_the_limit() {
    let graph = read_graph();
    assert!(
        graph.long_files.is_empty(),
        "files at or over {MAX_LINES} lines (split them by job):\n  {}",
        graph
            .long_files
            .iter()
            .map(|(f, n)| format!("{f}: {n}"))
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

#[test]
fn the_checker_sees_a_reach_up_and_leaves_out_comments_and_tests() {
    let rooms: BTreeSet<String> = ["model", "tui", "api"].map(String::from).into();
    let text = "//! uses crate::api in prose only\nuse crate::tui::App;\nfn f() { crate::api::x(); crate::nothing::y(); }\n#[cfg(test)]\nmod tests {\n    use crate::api::Client;\n}\n";
    let lines = production_lines(Path::new("src/model.rs"), text);
    let named: Vec<&str> = lines.iter().flat_map(|l| named_rooms(l, &rooms)).collect();
    assert_eq!(
        named,
        ["tui", "api"],
        "code is read; comments, unknown names and tests are not"
    );
    assert!(production_lines(Path::new("src/model/tests.rs"), text).is_empty());
}

/// A library module's path (`["tui", "screens", "fleet"]`) from its file.
fn module_of(file: &Path) -> Option<Vec<String>> {
    let rel = file.strip_prefix(src()).ok()?.with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    Some(parts)
}

/// The module a path names from `at`: the longest prefix of it that is a module.
fn target(at: &[String], path: &str, modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    let mut words = path.split("::").peekable();
    let mut base: Vec<String> = match words.peek().copied() {
        Some("crate") => {
            words.next();
            vec![]
        }
        Some("self") => {
            words.next();
            at.to_vec()
        }
        Some("super") => {
            let mut b = at.to_vec();
            while words.peek() == Some(&"super") {
                words.next();
                b.pop();
            }
            b
        }
        _ => return None,
    };
    let mut best = None;
    for w in words {
        base.push(w.to_string());
        if modules.contains(&base) {
            best = Some(base.clone());
        }
    }
    best
}

#[test]
fn no_two_modules_name_each_other() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.retain(|f| f.parent() != Some(&src().join("cli")) && !f.ends_with("main.rs"));
    let modules: BTreeSet<Vec<String>> = files.iter().filter_map(|f| module_of(f)).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for file in &files {
        let Some(at) = module_of(file) else { continue };
        let text = std::fs::read_to_string(file).expect("read a source file");
        for line in production_lines(file, &text) {
            let mut rest = line.as_str();
            while let Some(i) = rest.find(|c: char| c.is_ascii_lowercase()) {
                rest = &rest[i..];
                let len = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(rest.len());
                let (word, after) = rest.split_at(len);
                rest = after;
                let Some(to) = target(&at, word.trim_end_matches(':'), &modules) else {
                    continue;
                };
                // A module and its own submodules are one module in several files.
                if to.starts_with(&at) || at.starts_with(&to) {
                    continue;
                }
                edges.entry(at.clone()).or_default().insert(to);
            }
        }
    }
    // A circle is an edge back to a module that reaches it.
    let reaches = |from: &Vec<String>, to: &Vec<String>| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(m) = todo.pop() {
            if &m == to {
                return true;
            }
            if seen.insert(m.clone()) {
                todo.extend(edges.get(&m).into_iter().flatten().cloned());
            }
        }
        false
    };
    let circles: Vec<String> = edges
        .iter()
        .flat_map(|(a, tos)| tos.iter().map(move |b| (a, b)))
        .filter(|(a, b)| a < b && reaches(b, a))
        .map(|(a, b)| format!("{} <-> {}", a.join("::"), b.join("::")))
        .collect();
    assert!(
        circles.is_empty(),
        "modules that reach each other (one of them must not):\n  {}",
        circles.join("\n  ")
    );
}

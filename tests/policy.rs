//! `shopfloor policy check` end to end: the real binary on a real repository with a
//! `[policy]` in its shopfloor.toml, judging branches of the user's repository.

use crate::common;

use std::path::Path;

use common::Env;

const CONFIG: &str = r#"[policy]
paths = [
  "approve migrations/**",
  "approve Cargo.toml",
  "deny .github/workflows/**",
  "allow .github/workflows/docs.yml",
]
max_changed_lines = 20
"#;

/// A repository whose main has `CONFIG` and a few files, with a workspace on it.
fn policy_env() -> Env {
    let env = Env::new();
    let root = env.repo.path();
    std::fs::write(root.join("shopfloor.toml"), CONFIG).unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join("src/lib.rs"), "pub fn a() {}\n").unwrap();
    std::fs::write(root.join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
    common::commit_all(root, "main with a policy");
    env.ok(&["workspace", "create", "pol"]);
    env
}

/// Make branch `name` in the user's repository: `from` (default HEAD) plus `files`
/// (path, Some(content) or None to delete), without touching the checkout.
fn branch(env: &Env, name: &str, from: Option<&str>, files: &[(&str, Option<&str>)]) {
    let repo = git2::Repository::open(env.repo.path()).unwrap();
    let parent = match from {
        Some(f) => repo.revparse_single(f).unwrap().peel_to_commit().unwrap(),
        None => repo.head().unwrap().peel_to_commit().unwrap(),
    };
    let mut index = git2::Index::new().unwrap();
    index.read_tree(&parent.tree().unwrap()).unwrap();
    for (path, content) in files {
        match content {
            Some(c) => {
                let blob = repo.blob(c.as_bytes()).unwrap();
                let mut entry = index.get_path(Path::new("README.md"), 0).unwrap();
                entry.id = blob;
                entry.path = path.as_bytes().to_vec();
                entry.file_size = c.len() as u32;
                index.add(&entry).unwrap();
            }
            None => index.remove_path(Path::new(path)).unwrap(),
        }
    }
    let tree = repo.find_tree(index.write_tree_to(&repo).unwrap()).unwrap();
    let sig = git2::Signature::now("test", "test@example.com").unwrap();
    repo.commit(
        Some(&format!("refs/heads/{name}")),
        &sig,
        &sig,
        name,
        &tree,
        &[&parent],
    )
    .unwrap();
}

/// `policy check ARGS`: (exit code, stdout, stderr).
fn check(env: &Env, args: &[&str]) -> (i32, String, String) {
    let out = env
        .cmd()
        .args(["policy", "check"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_branch_touching_only_allowed_files_is_allowed() {
    let env = policy_env();
    branch(
        &env,
        "feature",
        None,
        &[
            ("src/lib.rs", Some("pub fn a() {}\npub fn b() {}\n")),
            ("README.md", None),
        ],
    );
    let (code, out, err) = check(&env, &["feature"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("verdict: allowed\n"), "{out}");
    assert!(
        out.contains("2 file(s), 2 changed line(s) (max_changed_lines = 20)"),
        "{out}"
    );
    assert!(out.contains("no [policy] line gates or denies"), "{out}");
    assert!(
        out.contains("required checks before landing: test"),
        "{out}"
    );

    // Any ref of the user's repository, not only its branches, is fetched to be judged.
    let repo = git2::Repository::open(env.repo.path()).unwrap();
    let head = repo.refname_to_id("refs/heads/feature").unwrap();
    repo.reference("refs/review/42", head, false, "a review ref")
        .unwrap();
    let (code, out, err) = check(&env, &["refs/review/42"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 file(s), 2 changed line(s)"), "{out}");
}

#[test]
fn gated_denied_and_re_allowed_paths() {
    let env = policy_env();
    branch(
        &env,
        "migrate",
        None,
        &[("migrations/001.sql", Some("create table t;\n"))],
    );
    let (code, out, _) = check(&env, &["migrate"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.starts_with("verdict: needs approval\n"), "{out}");
    assert!(
        out.contains("  - `migrations/001.sql` needs a human's approval: `approve migrations/**` (line 1 of [policy] paths)"),
        "{out}"
    );
    assert!(
        out.contains("gated (a human must approve):\n  migrations/001.sql\n"),
        "{out}"
    );

    // A name-only rule matches at any depth.
    branch(
        &env,
        "deps",
        None,
        &[("crates/b/Cargo.toml", Some("[package]\n"))],
    );
    let (code, out, _) = check(&env, &["deps"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("`approve Cargo.toml` (line 2 of"), "{out}");

    branch(
        &env,
        "ci",
        None,
        &[
            (".github/workflows/ci.yml", Some("on: push\n")),
            ("migrations/002.sql", Some("x\n")),
        ],
    );
    let (code, out, _) = check(&env, &["ci"]);
    assert_eq!(code, 4, "{out}");
    assert!(out.starts_with("verdict: rejected\n"), "{out}");
    assert!(
        out.contains("`.github/workflows/ci.yml` is denied by `deny .github/workflows/**` (line 3 of [policy] paths)"),
        "{out}"
    );
    assert!(
        out.contains("denied (never lands):\n  .github/workflows/ci.yml\n"),
        "{out}"
    );

    // The last matching line decides: `allow` re-includes one file.
    branch(
        &env,
        "docs",
        None,
        &[(".github/workflows/docs.yml", Some("on: push\n"))],
    );
    let (code, out, _) = check(&env, &["docs"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("verdict: allowed\n"), "{out}");

    // Deleting a denied file is touching it.
    let root = env.repo.path();
    std::fs::create_dir_all(root.join(".github/workflows")).unwrap();
    std::fs::write(root.join(".github/workflows/ci.yml"), "on: push\n").unwrap();
    common::commit_all(root, "a human adds CI");
    branch(&env, "del", None, &[(".github/workflows/ci.yml", None)]);
    let (code, out, _) = check(&env, &["del"]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("1 file(s), 1 changed line(s)"), "{out}");

    // The policy file itself needs a human, by the built-in rule.
    branch(
        &env,
        "loosen",
        None,
        &[("shopfloor.toml", Some("[policy]\n"))],
    );
    let (code, out, _) = check(&env, &["loosen"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains(
            "`shopfloor.toml` needs a human's approval: `approve /shopfloor.toml` (built in"
        ),
        "{out}"
    );
}

#[test]
fn too_many_changed_lines_need_a_human() {
    let env = policy_env();
    let body: String = (0..25).map(|i| format!("line {i}\n")).collect();
    branch(&env, "big", None, &[("src/big.rs", Some(&body))]);
    let (code, out, _) = check(&env, &["big"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("25 changed lines exceed max_changed_lines = 20: a human must approve"),
        "{out}"
    );
}

#[test]
fn json_output_carries_the_verdict_and_its_paths() {
    let env = policy_env();
    branch(
        &env,
        "ci",
        None,
        &[
            (".github/workflows/ci.yml", Some("on: push\n")),
            ("migrations/002.sql", Some("x\ny\n")),
        ],
    );
    let (code, out, err) = check(&env, &["ci", "--json"]);
    assert_eq!(code, 4, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "rejected");
    assert_eq!(v["allowed"], false);
    assert_eq!(v["needs_human"], false);
    assert_eq!(v["denied"], serde_json::json!([".github/workflows/ci.yml"]));
    assert_eq!(v["gated"], serde_json::json!(["migrations/002.sql"]));
    assert_eq!(v["files"], 2);
    assert_eq!(v["changed_lines"], 3);
    assert_eq!(v["branch"], "ci");
    assert_eq!(v["required_checks"], serde_json::json!(["test"]));
    assert_eq!(v["reasons"].as_array().unwrap().len(), 2);
    let (code, out, _) = check(&env, &["--json", "ci", "--base", "ci"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["verdict"].as_str(), v["files"].as_u64()),
        (Some("allowed"), Some(0))
    );
}

#[test]
fn a_branch_behind_main_is_judged_on_its_merge_and_conflicts_are_named() {
    let env = policy_env();
    branch(
        &env,
        "feature",
        None,
        &[("migrations/001.sql", Some("create;\n"))],
    );
    // Main moves on with a big change of its own: only the branch's change is judged.
    let body: String = (0..50).map(|i| format!("line {i}\n")).collect();
    let root = env.repo.path();
    std::fs::write(root.join("src/lib.rs"), body).unwrap();
    common::commit_all(root, "main moves on");
    let (code, out, _) = check(&env, &["feature"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("1 file(s), 1 changed line(s)"), "{out}");

    branch(
        &env,
        "clash",
        Some("feature~1"),
        &[("src/lib.rs", Some("pub fn other() {}\n"))],
    );
    let (code, out, _) = check(&env, &["clash"]);
    assert_eq!(code, 5, "{out}");
    assert!(out.starts_with("verdict: conflicts\n"), "{out}");
    assert!(out.contains("\n  src/lib.rs\n"), "{out}");
}

#[test]
fn errors_are_one_clear_line() {
    let env = policy_env();
    let main = git2::Repository::open(env.repo.path())
        .unwrap()
        .head()
        .unwrap()
        .shorthand()
        .unwrap()
        .to_string();
    let (code, err) = env.fails(&["policy", "check", &main]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("`{main}` is what it would merge into")),
        "{err}"
    );
    let (code, err) = env.fails(&["policy", "check", "nope"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: no branch or commit `nope`"),
        "{err}"
    );

    let text = "[policy]\npaths = [\n  \"approve migrations/**\",\n  \"reject .github/**\",\n]\n";
    std::fs::write(env.repo.path().join("shopfloor.toml"), text).unwrap();
    let (code, err) = env.fails(&["policy", "check", "HEAD"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("shopfloor.toml:4: [policy] paths entry 2 (`reject .github/**`): unknown action `reject`"),
        "{err}"
    );
}

//! Workspaces and tickets through the real binary, on real git repositories.

use crate::common;
use common::Env;

#[test]
fn workspace_lifecycle_and_resolution() {
    let env = Env::new();
    let out = env.ok(&["workspace", "create", "alpha"]);
    assert!(out.contains("created workspace `alpha`"), "{out}");

    // -w before or after the subcommand, the env var, or the repo around the cwd.
    let list = env.json(&["workspace", "list", "--json"]);
    assert_eq!(list[0]["name"], "alpha");
    assert_eq!(list[0]["repo"], env.repo_path().to_str().unwrap());
    env.ok(&["-w", "alpha", "ticket", "add", "first"]);
    env.ok(&["ticket", "add", "second", "-w", "alpha"]);
    env.cmd()
        .env("SHOPFLOOR_WORKSPACE", "alpha")
        .current_dir(env.home.path())
        .args(["ticket", "add", "third"])
        .assert()
        .success();
    std::fs::create_dir_all(env.repo.path().join("sub/dir")).unwrap();
    let tickets = env
        .cmd()
        .current_dir(env.repo.path().join("sub/dir"))
        .args(["ticket", "list", "--json"])
        .output()
        .unwrap();
    let tickets: serde_json::Value = serde_json::from_slice(&tickets.stdout).unwrap();
    assert_eq!(tickets.as_array().unwrap().len(), 3);

    let show = env.json(&["workspace", "show", "--json"]);
    assert_eq!(show["tickets"], 3);

    env.ok(&["workspace", "rm", "alpha"]);
    let (code, err) = env.fails(&["-w", "alpha", "ticket", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("workspace `alpha` not found"), "{err}");
    assert!(
        env.repo.path().join("README.md").exists(),
        "the user's repo is untouched"
    );
}

#[test]
fn clear_errors_and_exit_codes() {
    let env = Env::new();
    let plain = tempfile::tempdir().unwrap();
    let (code, err) = env.fails(&[
        "workspace",
        "create",
        "x",
        "--repo",
        plain.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("not inside a git repository"), "{err}");

    let (code, err) = env.fails(&["workspace", "create", "../evil"]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid workspace name"), "{err}");

    let (code, _) = env.fails(&["workspace", "frobnicate"]);
    assert_eq!(code, 2, "usage errors exit 2");

    let (code, err) = env.fails(&["ticket", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("workspace create NAME"), "{err}");
}

#[test]
fn tickets_add_list_show_cancel() {
    let env = Env::new();
    env.ok(&["workspace", "create", "w"]);
    env.ok(&["ticket", "add", "low", "--priority", "-1"]);
    let t = env.json(&[
        "ticket",
        "add",
        "high",
        "--priority",
        "5",
        "--agent",
        "claude",
        "--paths",
        "src/a.rs,src/b/**",
        "--body",
        "do it",
        "--json",
    ]);
    assert_eq!(t["state"], "queued");
    assert_eq!(t["paths"], serde_json::json!(["src/a.rs", "src/b/**"]));

    let list = env.json(&["ticket", "list", "--json"]);
    assert_eq!(list[0]["title"], "high", "highest priority first");
    assert_eq!(list[1]["title"], "low");

    let shown = env.ok(&["ticket", "show", "2"]);
    assert!(
        shown.contains("do it") && shown.contains("claude"),
        "{shown}"
    );

    env.ok(&["ticket", "cancel", "2"]);
    let (code, err) = env.fails(&["ticket", "cancel", "2"]);
    assert_eq!(code, 1);
    assert!(err.contains("already cancelled"), "{err}");
    let (_, err) = env.fails(&["ticket", "show", "99"]);
    assert!(err.contains("ticket 99 not found"), "{err}");
    let queued = env.json(&["ticket", "list", "--state", "queued", "--json"]);
    assert_eq!(queued.as_array().unwrap().len(), 1);
}

#[test]
fn completions_print_a_script() {
    let env = Env::new();
    let out = env.ok(&["completions", "bash"]);
    assert!(out.contains("shopfloor"), "{out}");
}

#[test]
fn a_broken_shopfloor_toml_is_an_error_naming_its_line() {
    let env = Env::new();
    env.ok(&["workspace", "create", "w"]);
    let cases = [
        (
            "[factory]\nconcurency = 2\n",
            "shopfloor.toml:2:",
            "concurency",
        ),
        (
            "[factory]\nconcurrency = \"two\"\n",
            "shopfloor.toml:2:",
            "concurrency",
        ),
        (
            "[factory]\ndefault_agent = \"nobody\"\n",
            "shopfloor.toml:2:",
            "[agents.nobody]",
        ),
        (
            "[agents.x]\nadapter = \"telepathy\"\n",
            "shopfloor.toml:2:",
            "telepathy",
        ),
    ];
    for (text, at, names) in cases {
        std::fs::write(env.repo.path().join("shopfloor.toml"), text).unwrap();
        let (code, err) = env.fails(&["ticket", "list"]);
        assert_eq!(code, 1, "{text}");
        assert!(err.contains(at) && err.contains(names), "{text:?} -> {err}");
    }
    // Fixed, the same command works and nothing was lost.
    std::fs::write(
        env.repo.path().join("shopfloor.toml"),
        "[factory]\nconcurrency = 2\n",
    )
    .unwrap();
    env.ok(&["ticket", "list"]);
}

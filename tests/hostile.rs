//! The factory under hostile input, on the real binary: requests sized to take it down, a
//! flood of refused requests, other local users reading the data directory. Each test here
//! reproduces a finding of a hostile test run and stays to keep it fixed.

use crate::common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::Env;
use common::serve::Serve;

fn workspace(config: &str) -> Env {
    let env = Env::new();
    std::fs::write(env.repo.path().join("shopfloor.toml"), config).unwrap();
    common::commit_all(env.repo.path(), "config");
    env.ok(&["workspace", "create", "w"]);
    env
}

const WORKTREE: &str = "[sandbox]\nbackend = \"worktree\"\n";

/// Huge limits are refused with a message that says what to do, with a factory and
/// without one, and the factory answers the next request: no request can take it down.
#[test]
fn huge_limits_are_refused_and_the_factory_lives() {
    let env = workspace(WORKTREE);
    env.ok(&["memory", "add", "The parser rejects empty files."]);
    let attempts: [&[&str]; 4] = [
        &["memory", "search", "parser", "--limit", "100000000"],
        &[
            "memory",
            "search",
            "parser",
            "--limit",
            "18446744073709551615",
        ],
        &["trace", "search", "parser", "--limit", "4000000000"],
        &[
            "trace",
            "search",
            "parser",
            "--limit",
            "18446744073709551615",
        ],
    ];
    for args in attempts {
        let (code, err) = env.fails(args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(
            err.contains("too large") && err.contains("at most"),
            "{args:?}: {err}"
        );
    }
    let serve = Serve::paused(&env);
    for args in attempts {
        let (code, err) = env.fails(args);
        assert_eq!(code, 1, "{args:?} through the factory: {err}");
        assert!(err.contains("too large"), "{args:?}: {err}");
    }
    // A query the size of a document, straight to the API.
    let (status, body) = raw_http(
        Path::new(serve.socket()),
        "POST",
        "/v1/memory/search",
        &serde_json::json!({"text": "x ".repeat(60_000), "limit": 5}).to_string(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("at most"), "{body}");
    let found = env.ok(&["memory", "search", "parser"]);
    assert!(found.contains("rejects empty files"), "{found}");
    serve.stop();
}

/// Status and body of one HTTP request on a Unix socket.
fn raw_http(sock: &Path, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).unwrap().parse().unwrap();
    (status, out)
}

/// 5,000 requests without a token on the loopback port: each is refused, and the audit
/// log says so in a handful of rows, so the store does not grow with the flood.
#[test]
fn a_flood_of_refused_requests_does_not_grow_the_store() {
    let env = workspace(&format!("{WORKTREE}\n[api]\nlisten = \"127.0.0.1:0\"\n"));
    let serve = Serve::paused(&env);
    let addr = serve.tcp().unwrap();
    let addr = addr.trim_start_matches("http://").to_string();
    let store = env.home.path().join("w/store.redb");
    let before = std::fs::metadata(&store).unwrap().len();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut refused = 0;
                for _ in 0..1250 {
                    let mut s = std::net::TcpStream::connect(&addr).unwrap();
                    s.write_all(
                        b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .unwrap();
                    let mut out = String::new();
                    s.read_to_string(&mut out).unwrap();
                    if out.starts_with("HTTP/1.1 401") {
                        refused += 1;
                    }
                }
                refused
            })
        })
        .collect();
    let refused: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(refused, 5000);
    serve.stop();
    let after = std::fs::metadata(&store).unwrap().len();
    let audit = env.json(&["audit", "--json"]);
    let rows: Vec<&serde_json::Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "api.refused")
        .collect();
    assert!(
        !rows.is_empty() && rows.len() <= 10,
        "{} audit rows for one kind of refusal",
        rows.len()
    );
    let counted: u64 = rows
        .iter()
        .map(|r| {
            let d = r["detail"].as_str().unwrap();
            d.split(" more refused")
                .next()
                .and_then(|n| n.parse().ok())
                .filter(|_| d.contains(" more refused"))
                .unwrap_or(1)
        })
        .sum();
    assert_eq!(counted, 5000, "every refusal is counted: {rows:?}");
    assert!(
        after.saturating_sub(before) < 256 << 10,
        "the store grew from {before} to {after} bytes"
    );
}

/// After a factory ran a ticket and memory was written, nothing in the data directory is
/// readable by another user: directories 0700, files 0600, sockets included. One exception,
/// behind those directories: libgit2 chmods the loose objects it writes to 0444 whatever
/// the umask (git's objects are immutable), so those are checked for "no write by others".
#[test]
fn the_data_directory_is_private() {
    let env = Env::new();
    std::fs::write(
        env.repo.path().join("hello.toml"),
        "name = \"hello\"\n[[step]]\nwrite = { path = \"hello.txt\", content = \"hi\\n\" }\n[[step]]\nmemory_write = { kind = \"lesson\", text = \"Greetings go in hello.txt.\" }\n[[step]]\nsay = \"done\"\n",
    )
    .unwrap();
    std::fs::write(
        env.repo.path().join("shopfloor.toml"),
        format!("[factory]\ndefault_agent = \"fx\"\n\n{WORKTREE}\n[agents.fx]\nadapter = \"fixture\"\nscenario = \"hello.toml\"\n"),
    )
    .unwrap();
    common::commit_all(env.repo.path(), "config");
    env.ok(&["workspace", "create", "w"]);
    env.ok(&["memory", "add", "Keep the data directory private."]);
    env.ok(&["ticket", "add", "Say hello"]);
    let serve = Serve::start(&env);
    common::wait_for("the run to end", Duration::from_secs(90), || {
        let runs = env.json(&["run", "list", "--json"]);
        runs.as_array()
            .unwrap()
            .iter()
            .any(|r| r["state"] == "succeeded")
            .then_some(())
    });
    let mut open = Vec::new();
    walk(&env.home.path().join("w"), &mut open);
    serve.stop();
    walk(&env.home.path().join("w"), &mut open);
    walk(&env.home.path().join("logs"), &mut open);
    assert!(open.is_empty(), "readable by others: {open:#?}");
}

fn walk(dir: &Path, open: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mode = std::fs::metadata(dir).unwrap().permissions().mode();
    if mode & 0o077 != 0 {
        open.push(format!("{:o} {}", mode & 0o777, dir.display()));
    }
    for e in entries.flatten() {
        let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        if meta.is_dir() {
            walk(&e.path(), open);
        } else if meta.file_type().is_symlink() {
            continue;
        } else if meta.permissions().mode() & 0o077 != 0 {
            let git_object = e.path().components().any(|c| c.as_os_str() == "objects")
                && meta.permissions().mode() & 0o777 == 0o444;
            if git_object {
                continue;
            }
            open.push(format!(
                "{:o} {}",
                meta.permissions().mode() & 0o777,
                e.path().display()
            ));
        }
    }
}

/// Values that pass a type check but would break the factory later: each is refused when
/// the config is read, naming the key and what to write instead.
#[test]
fn config_footguns_are_refused_when_read() {
    for (config, says) in [
        ("[sandbox]\ncpus = 1e308\n", "sandbox.cpus"),
        (
            "[sandbox]\nmemory_mb = 9223372036854775000\n",
            "sandbox.memory_mb",
        ),
        ("[sandbox]\npids = 9223372036854775807\n", "sandbox.pids"),
    ] {
        let env = Env::new();
        std::fs::write(env.repo.path().join("shopfloor.toml"), config).unwrap();
        env.ok(&["workspace", "create", "w"]);
        let (code, err) = env.fails(&["ticket", "list"]);
        assert_eq!(code, 1, "{config}: {err}");
        assert!(
            err.contains(says) && err.contains("must be"),
            "{config}: {err}"
        );
        assert!(err.contains("shopfloor.toml:2"), "the line is named: {err}");
    }
}

#[test]
fn tickets_name_only_paths_in_the_repository_and_agents_that_exist() {
    let env = workspace(&format!(
        "[factory]\ndefault_agent = \"fx\"\n{WORKTREE}\n[agents.fx]\nadapter = \"fixture\"\nscenario = \"hang\"\n"
    ));
    for (args, says) in [
        (&["--paths", "../secrets/**"][..], "climbs out"),
        (
            &["--paths", "/etc/shadow"][..],
            "not a repository-relative path",
        ),
        (&["--agent", "nobody"][..], "no agent profile `nobody`"),
    ] {
        let mut all = vec!["ticket", "add", "Do it"];
        all.extend_from_slice(args);
        let (code, err) = env.fails(&all);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let huge = "x".repeat(70_000);
    let (_, err) = env.fails(&["ticket", "add", "Big", "--body", &huge]);
    assert!(err.contains("at most"), "{err}");
    assert_eq!(
        env.json(&["ticket", "list", "--json"]),
        serde_json::json!([])
    );
}

/// With no factory, commands started together take turns on the store instead of failing
/// "store in use" (19 of 20 parallel searches did).
#[test]
fn parallel_commands_without_a_factory_take_turns() {
    let env = workspace(WORKTREE);
    env.ok(&["memory", "add", "Searches wait their turn for the store."]);
    let children: Vec<_> = (0..24)
        .map(|i| {
            let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("shopfloor"));
            c.env("SHOPFLOOR_HOME", env.home.path())
                .env_remove("SHOPFLOOR_WORKSPACE")
                .current_dir(env.repo.path())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            if i % 6 == 0 {
                c.args(["memory", "add", &format!("Parallel note {i}.")]);
            } else {
                c.args(["memory", "search", "store turn"]);
            }
            c.spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let all = env.json(&[
        "memory",
        "search",
        "parallel note",
        "--limit",
        "50",
        "--json",
    ]);
    assert_eq!(all.as_array().unwrap().len(), 4 + 1, "{all}");
}

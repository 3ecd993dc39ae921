//! Tickets whose prompt is too long for a command line, through the real binary. Linux
//! refuses to start a program with any one argument or environment string over 128 KiB,
//! and a ticket's body alone may be 64K characters (180 KB of CJK text here): before the
//! fix the agent never started, in a worktree, in Docker and on a host, where the prompt
//! rode the SSH command line twice, quoted (so a 30 KB body full of apostrophes, short
//! enough to pass inline, broke it). Each agent here writes `seen.txt` only if its prompt ends with
//! the body's last line, so a landed ticket is an agent that read the whole prompt. Also
//! `ticket add --body-file` and its refusals. The real Claude Code reading the file is in
//! `real_cli`.

use crate::common;

use std::time::Duration;

use common::Env;
use common::hosts::{Lacks, NetnsHost};
use common::serve::Serve;

const END: &str = "END-OF-BODY-7f3a";

/// Writes `seen.txt` only when the prompt it read holds the body's last line.
const SCENARIO: &str = r#"
name = "long-prompt"
echo_prompt = false
[[step]]
write = { path = "seen.txt", content = "read the whole prompt\n" }
when_prompt_contains = "END-OF-BODY-7f3a"
[[step]]
say = "done"
"#;

/// `text` repeated to `chars` characters, then the end marker: under the ticket's
/// 64K-character bound.
fn body(text: &str, chars: usize) -> String {
    let n = text.chars().count();
    format!("{}\n{END}\n", text.repeat(chars / n))
}

fn config(backend: &str, extra: &str) -> String {
    format!(
        "[factory]\ndefault_agent = \"long\"\nquiet_timeout_s = 60\n{extra}\n\
         [sandbox]\nbackend = \"{backend}\"\n\n[test]\ncommand = \"true\"\n\n\
         [agents.long]\nadapter = \"fixture\"\nscenario = \"long.toml\"\n"
    )
}

/// Add a ticket with `body` (from a file), let it land, and check the agent read it all.
fn lands_with_the_whole_prompt(env: &Env, body: &str) {
    let _serve = Serve::start(env);
    let file = env.home.path().join("body.md");
    std::fs::write(&file, body).unwrap();
    env.ok(&[
        "ticket",
        "add",
        "Translate the catalogue",
        "--body-file",
        file.to_str().unwrap(),
    ]);
    let t = env.json(&["ticket", "show", "1", "--json"]);
    assert_eq!(t["body"].as_str().unwrap().trim_end(), body.trim_end());
    env.wait_merged(1, Duration::from_secs(90));
    let r = &env.runs()[0];
    assert_eq!(r["state"], "succeeded", "{r}");
    let changed = r["files_changed"].to_string();
    assert!(
        changed.contains("seen.txt"),
        "the agent saw the end of its prompt: {r}"
    );
}

#[test]
fn a_worktree_agent_gets_a_prompt_of_180_kb() {
    let env = Env::project(
        "lpw",
        &[
            ("shopfloor.toml", &config("worktree", "")),
            ("long.toml", SCENARIO),
        ],
    );
    lands_with_the_whole_prompt(&env, &body("中", 60_000));
}

#[test]
fn a_docker_agent_gets_a_prompt_of_180_kb() {
    let Some(image) = common::docker::test_image() else {
        return;
    };
    let env = Env::project(
        "lpd",
        &[
            (
                "shopfloor.toml",
                &config("docker", "").replace(
                    "backend = \"docker\"",
                    &format!("backend = \"docker\"\nimage = \"{image}\""),
                ),
            ),
            ("long.toml", SCENARIO),
        ],
    );
    lands_with_the_whole_prompt(&env, &body("中", 60_000));
}

#[test]
fn an_agent_on_a_host_gets_a_long_prompt_full_of_quotes() {
    let Some(host) = NetnsHost::start(Lacks::default()) else {
        return;
    };
    let env = Env::project(
        "lph",
        &[
            (
                "shopfloor.toml",
                &format!(
                    "{}\n{}",
                    config("worktree", "local_slots = 0"),
                    host.config("alpha", "")
                ),
            ),
            ("long.toml", SCENARIO),
        ],
    );
    // Short enough to be passed inline (30 KB), and every apostrophe in it is four bytes
    // once quoted for the shell, and more once the script is quoted again for `sh -c`.
    lands_with_the_whole_prompt(&env, &body("'", 30_000));
    assert_eq!(env.runs()[0]["host"], "alpha", "{:?}", env.runs());
}

#[test]
fn a_body_file_is_read_from_a_file_or_stdin_and_bad_ones_are_refused() {
    let env = Env::project("lpb", &[]);
    let mut add = env.cmd();
    add.args(["ticket", "add", "From stdin", "--body-file", "-", "--json"])
        .write_stdin("line one\nline two\n");
    let out = add.assert().success().get_output().stdout.clone();
    let t: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(t["body"], "line one\nline two\n");

    let dir = tempfile::tempdir().unwrap();
    let refused: [(&str, Vec<u8>, &str); 3] = [
        (
            "long.md",
            vec![b'x'; 70_000],
            "70000 characters, at most 65536",
        ),
        ("huge.md", vec![b'y'; 3 << 20], "is over 1 MiB"),
        ("latin1.md", b"caf\xe9".to_vec(), "not UTF-8 (byte 3)"),
    ];
    for (name, bytes, says) in refused {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let (_, err) = env.fails(&["ticket", "add", name, "--body-file", path.to_str().unwrap()]);
        assert!(err.contains(says), "{name}: {err}");
    }
    let (_, err) = env.fails(&[
        "ticket",
        "add",
        "Gone",
        "--body-file",
        "/nonexistent/body.md",
    ]);
    assert!(
        err.contains("cannot read the body from /nonexistent/body.md"),
        "{err}"
    );
    let (_, err) = env.fails(&["ticket", "add", "Both", "--body", "x", "--body-file", "-"]);
    assert!(err.contains("cannot be used with"), "{err}");
    assert_eq!(env.tickets().len(), 1, "nothing refused was added");
}

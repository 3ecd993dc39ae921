//! The real Claude Code and Codex CLIs, launched exactly as `agent::plan` says, against the
//! scripted model servers (no factory runs the ticket; a paused `shopfloor serve` answers
//! their MCP calls). These establish which flags the CLIs accept and what they do with
//! them: a run searches shopfloor's memory, edits a file, runs the `[test]` command and
//! writes a memory without anyone allowing it, and a command off the allowlist is refused.
//! Their stdout is kept under tests/fixtures/real-cli/ (the recorded fixtures of our own).
//!
//! Needs the CLIs from scripts/install-agent-clis.sh: without them each test skips with one
//! line, or fails under CI=true.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Env;
use common::agent_clis::{self as clis, AgentClis};
use common::model_server::{ModelServer, Turn};
use common::serve::Serve;
use shopfloor::agent::{self, Adapter, AgentProfile, LaunchContext, LaunchPlan, Permissions};
use shopfloor::sandbox::BackendKind;

/// A workspace on the test project, a memory a person wrote, and a paused factory serving
/// MCP on its socket.
fn project() -> (Env, Serve) {
    let env = Env::new();
    for (path, text) in clis::PROJECT {
        std::fs::write(env.repo.path().join(path), text).unwrap();
    }
    std::fs::write(
        env.repo.path().join("shopfloor.toml"),
        format!("[test]\ncommand = \"{}\"\n", clis::TEST_COMMAND),
    )
    .unwrap();
    common::commit_all(env.repo.path(), "the project");
    env.ok(&["workspace", "create", "cli"]);
    env.ok(&["memory", "add", "--kind", "decision", clis::HUMAN_MEMORY]);
    let serve = Serve::paused(&env);
    (env, serve)
}

fn ctx(env: &Env, serve: Option<&Serve>, backend: BackendKind) -> LaunchContext {
    LaunchContext {
        workdir: env.repo_path(),
        mcp_socket: serve.map(|s| PathBuf::from(s.socket())),
        token: None,
        shopfloor_exe: assert_cmd::cargo::cargo_bin("shopfloor"),
        run: 1,
        backend,
        test_command: Some(clis::TEST_COMMAND.to_string()),
    }
}

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Run a plan in `dir` as the worktree sandbox would: its files written first, a fresh
/// HOME (no user's settings), the plan's environment over the given one.
fn run(plan: &LaunchPlan, dir: &Path, home: &Path, extra_env: &[(&str, String)]) -> Ran {
    for (path, bytes) in &plan.files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    let start = Instant::now();
    let mut cmd = Command::new(&plan.argv[0]);
    cmd.args(&plan.argv[1..])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", home)
        .env("LANG", "C.UTF-8")
        .stdin(std::process::Stdio::null());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    for (k, v) in &plan.env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: start.elapsed(),
    }
}

/// Keep a run's stdout as a fixture, with this machine's paths replaced: written when it is
/// missing or `SHOPFLOOR_RECORD_FIXTURES=1` (ids and times change each run, so a test run
/// does not rewrite the tree every time).
fn record(name: &str, ran: &Ran, dir: &Path, home: &Path) {
    let mut text = ran
        .stdout
        .lines()
        .map(|l| match serde_json::from_str::<serde_json::Value>(l) {
            Ok(mut v) => {
                trim_strings(&mut v);
                v.to_string()
            }
            Err(_) => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    text.push('\n');
    text = text.replace(&dir.display().to_string(), "/work/project");
    text = text.replace(&home.display().to_string(), "/home/agent");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real-cli");
    let again = std::env::var("SHOPFLOOR_RECORD_FIXTURES").is_ok_and(|v| v == "1");
    if again || !out.join(name).exists() {
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join(name), text).unwrap();
    }
}

/// Long strings (system prompts, request shapes: tens of KB a line) cut to their start, so
/// a recorded fixture stays small and still has every line and field.
fn trim_strings(v: &mut serde_json::Value) {
    const KEEP: usize = 600;
    match v {
        serde_json::Value::String(s) if s.len() > KEEP => {
            let mut cut = KEEP;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            let dropped = s.len() - cut;
            s.truncate(cut);
            s.push_str(&format!("…[{dropped} bytes trimmed]"));
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(trim_strings),
        serde_json::Value::Object(o) => o.values_mut().for_each(trim_strings),
        _ => {}
    }
}

fn lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn claude_profile(clis: &AgentClis) -> AgentProfile {
    let mut p = AgentProfile::new(Adapter::ClaudeCode);
    p.command = Some(clis.claude().display().to_string());
    p
}

fn codex_profile(clis: &AgentClis, server: &ModelServer) -> AgentProfile {
    let mut p = AgentProfile::new(Adapter::Codex);
    p.command = Some(clis.codex().display().to_string());
    p.model = Some(clis::CODEX_MODEL.to_string());
    p.args = clis::codex_provider_args(&server.url());
    p
}

fn assert_ran(ran: &Ran, what: &str) {
    assert_eq!(
        ran.code,
        Some(0),
        "{what} failed:\nstdout:\n{}\nstderr:\n{}",
        ran.stdout,
        ran.stderr
    );
}

#[test]
fn claude_code_works_a_ticket_with_allowlist_permissions() {
    let Some(clis) = AgentClis::find() else {
        return;
    };
    let (env, serve) = project();
    let dir = env.repo_path();
    let home = tempfile::tempdir().unwrap();
    let denied = "python3 -c \"open('pwned', 'w').write('x')\"";
    let server = ModelServer::anthropic(clis::claude_script(Some(denied)));
    let plan = agent::plan(
        "claude",
        &claude_profile(&clis),
        "Fix calc.add",
        &ctx(&env, Some(&serve), BackendKind::Worktree),
    )
    .unwrap();
    let ran = run(&plan, &dir, home.path(), &clis::claude_env(&server.url()));
    assert_ran(&ran, "claude");
    server.finish();
    eprintln!("claude (allowlist) took {:?}", ran.took);

    let calc = std::fs::read_to_string(dir.join("calc.py")).unwrap();
    assert!(calc.contains(clis::FIXED), "the edit landed: {calc}");
    assert!(
        !dir.join("pwned").exists(),
        "a command off the allowlist was refused"
    );
    let out = lines(&ran.stdout);
    let denials: Vec<&serde_json::Value> = out
        .iter()
        .filter(|l| l["subtype"] == "permission_denied")
        .collect();
    assert_eq!(denials.len(), 1, "only the off-list command: {denials:?}");
    assert_eq!(denials[0]["tool_name"], "Bash");
    let scripted = server.scripted();
    let ran_tests = scripted[5].last_tool_result().unwrap();
    assert!(
        ran_tests.contains("OK"),
        "the test command ran: {ran_tests}"
    );
    assert!(
        scripted[0].tool_names().iter().any(|t| t == "ToolSearch"),
        "MCP tools are deferred behind ToolSearch"
    );
    let memories = env.ok(&["memory", "search", "calc.add fixed", "--json"]);
    assert!(memories.contains(clis::AGENT_MEMORY), "{memories}");
    record("claude-allowlist.jsonl", &ran, &dir, home.path());
    // The session's transcript, as Claude Code keeps it for its hooks (what `shopfloor hook`
    // syncs): recorded too, for the decoders.
    let transcript = std::fs::read_dir(home.path().join(".claude/projects"))
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .expect("Claude Code wrote the session's transcript");
    let kept = Ran {
        stdout: std::fs::read_to_string(&transcript).unwrap(),
        ..ran
    };
    record("claude-transcript.jsonl", &kept, &dir, home.path());
}

/// A prompt over what a command line carries: the CLI is given where it is, reads the file
/// with its own tool (Claude Code's Read, Codex's `exec_command`), and the model gets all
/// of it, up to the last line.
fn reads_a_prompt_from_its_file(adapter: Adapter) {
    let Some(clis) = AgentClis::find() else {
        return;
    };
    let (env, _serve) = project();
    let dir = env.repo_path();
    let home = tempfile::tempdir().unwrap();
    const END: &str = "END-OF-PROMPT-1c2d";
    let mut prompt = String::from("# Ticket 9: Fix calc.add\n\n");
    for i in 0..800 {
        prompt.push_str(&format!("Context line {i}: calc.add must return a + b.\n"));
    }
    prompt.push_str(END);
    prompt.push('\n');
    assert!(prompt.len() > agent::INLINE_PROMPT_MAX);
    // The agent was pointed at the file, and not given the prompt itself.
    let pointed =
        |asked: String| match (asked.contains(".shopfloor/prompt.md"), asked.contains(END)) {
            (true, false) => Ok(()),
            _ => Err(format!(
                "not pointed at the file: {}",
                asked.chars().take(600).collect::<String>()
            )),
        };
    let done = || Turn::text("I have read the whole ticket.").after_result_containing(END);
    let (server, profile, cli_env) = match adapter {
        Adapter::ClaudeCode => {
            let file = dir.join(".shopfloor/prompt.md");
            let server = ModelServer::anthropic(vec![
                Turn::tool("Read", serde_json::json!({ "file_path": file }))
                    .expect(move |r| pointed(r.body["messages"][0].to_string())),
                done(),
            ]);
            let cli_env = clis::claude_env(&server.url());
            (server, claude_profile(&clis), cli_env)
        }
        _ => {
            let server = ModelServer::openai(vec![
                Turn::tool(
                    "exec_command",
                    serde_json::json!({ "cmd": "cat .shopfloor/prompt.md" }),
                )
                .expect(move |r| pointed(r.body["input"].to_string())),
                done(),
            ]);
            let profile = codex_profile(&clis, &server);
            (server, profile, clis::codex_env())
        }
    };
    let plan = agent::plan(
        "agent",
        &profile,
        &prompt,
        &ctx(&env, None, BackendKind::Worktree),
    )
    .unwrap();
    let ran = run(&plan, &dir, home.path(), &cli_env);
    assert_ran(&ran, "the agent");
    server.finish();
    assert!(
        ran.stdout.contains("I have read the whole ticket."),
        "{}",
        ran.stdout
    );
}

#[test]
fn claude_code_reads_a_prompt_too_long_for_its_command_line() {
    reads_a_prompt_from_its_file(Adapter::ClaudeCode);
}

#[test]
fn codex_reads_a_prompt_too_long_for_its_command_line() {
    reads_a_prompt_from_its_file(Adapter::Codex);
}

#[test]
fn codex_works_a_ticket_with_allowlist_permissions() {
    let Some(clis) = AgentClis::find() else {
        return;
    };
    let (env, serve) = project();
    let dir = env.repo_path();
    let home = tempfile::tempdir().unwrap();
    let server = ModelServer::openai(clis::codex_script());
    let plan = agent::plan(
        "codex",
        &codex_profile(&clis, &server),
        "Fix calc.add",
        &ctx(&env, Some(&serve), BackendKind::Worktree),
    )
    .unwrap();
    let ran = run(&plan, &dir, home.path(), &clis::codex_env());
    assert_ran(&ran, "codex");
    server.finish();
    eprintln!("codex (allowlist) took {:?}", ran.took);

    let calc = std::fs::read_to_string(dir.join("calc.py")).unwrap();
    assert!(calc.contains(clis::FIXED), "the patch landed: {calc}");
    let out = lines(&ran.stdout);
    let kinds: Vec<&str> = out
        .iter()
        .filter(|l| l["type"] == "item.completed")
        .filter_map(|l| l["item"]["type"].as_str())
        .collect();
    for k in [
        "mcp_tool_call",
        "file_change",
        "command_execution",
        "agent_message",
    ] {
        assert!(kinds.contains(&k), "codex reported no {k}: {kinds:?}");
    }
    let cmd = out
        .iter()
        .find(|l| l["item"]["type"] == "command_execution" && l["type"] == "item.completed")
        .unwrap();
    assert_eq!(cmd["item"]["exit_code"], 0, "{cmd}");
    let memories = env.ok(&["memory", "search", "calc.add fixed", "--json"]);
    assert!(memories.contains(clis::AGENT_MEMORY), "{memories}");
    record("codex-allowlist.jsonl", &ran, &dir, home.path());
}

/// Every argv `plan` makes for the two CLIs — both permission modes, with and without MCP —
/// is accepted by the real CLI: it starts, makes its first request and finishes. Codex runs
/// with `--strict-config`, which refuses any `-c` key it does not know.
#[test]
fn every_planned_flag_is_accepted_by_the_real_clis() {
    let Some(clis) = AgentClis::find() else {
        return;
    };
    let (env, serve) = project();
    let dir = env.repo_path();
    let home = tempfile::tempdir().unwrap();
    for backend in [BackendKind::Worktree, BackendKind::Docker] {
        for mcp in [false, true] {
            let c = ctx(&env, mcp.then_some(&serve), backend);
            let what = format!("{backend} permissions, mcp {mcp}");

            let server = ModelServer::anthropic(vec![Turn::text("ok")]);
            let mut prof = claude_profile(&clis);
            prof.model = Some("claude-sonnet-4-5".into());
            let plan = agent::plan("claude", &prof, "-say ok", &c).unwrap();
            let ran = run(&plan, &dir, home.path(), &clis::claude_env(&server.url()));
            assert_ran(&ran, &format!("claude, {what}: {:?}", plan.argv));
            server.finish();
            let init = &lines(&ran.stdout)[0];
            let want_mode = match agent::permissions(&prof, &c) {
                Permissions::Full => "bypassPermissions",
                _ => "acceptEdits",
            };
            assert_eq!(init["permissionMode"], want_mode, "{what}");
            assert_eq!(
                init["model"], "claude-sonnet-4-5",
                "--model reached it ({what})"
            );
            if mcp {
                let servers = init["mcp_servers"].to_string();
                assert!(
                    servers.contains("\"shopfloor\"") && servers.contains("connected"),
                    "the MCP server started ({what}): {servers}"
                );
            }

            let server = ModelServer::openai(vec![Turn::text("ok")]);
            let mut prof = codex_profile(&clis, &server);
            prof.args.push("--strict-config".into());
            let plan = agent::plan("codex", &prof, "-say ok", &c).unwrap();
            let ran = run(&plan, &dir, home.path(), &clis::codex_env());
            assert_ran(&ran, &format!("codex, {what}: {:?}", plan.argv));
            server.finish();
            let body = &server.scripted()[0].body;
            assert_eq!(body["model"], clis::CODEX_MODEL);
            let text = body["input"].to_string();
            assert!(
                text.contains("-say ok"),
                "the prompt after `--` arrived whole"
            );
            if mcp {
                assert!(
                    server.scripted()[0]
                        .tool_names()
                        .iter()
                        .any(|t| t == "tool_search"),
                    "our MCP server's tools are behind tool_search ({what})"
                );
            }
        }
    }
}

/// The README's profiles are what users copy: each ```toml block with agents parses as a
/// shopfloor.toml,
/// and each of its Claude Code and Codex profiles, planned for a worktree and for Docker,
/// runs the real CLI to its first answer (pointed at the model server, with the CLIs on
/// PATH as a user has them), so the README cannot rot again.
#[test]
fn the_readmes_profiles_run_against_the_real_clis() {
    let Some(clis) = AgentClis::find() else {
        return;
    };
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    let (env, serve) = project();
    let dir = env.repo_path();
    let home = tempfile::tempdir().unwrap();
    let path = [("PATH", clis.path_env())];
    let mut ran_profiles = vec![];
    for block in blocks {
        let table: toml::Table = toml::from_str(block).unwrap();
        // Blocks with agents are shopfloor.toml (others are keymaps, themes...).
        let Some(agents) = table.get("agents").and_then(|a| a.as_table()) else {
            continue;
        };
        shopfloor::config::Config::parse(block, Path::new("README.md"))
            .unwrap_or_else(|e| panic!("a README block does not parse: {e}\n{block}"));
        for (name, value) in agents {
            let prof: AgentProfile = value.clone().try_into().unwrap();
            for backend in [BackendKind::Worktree, BackendKind::Docker] {
                let c = ctx(&env, Some(&serve), backend);
                let what = format!("README profile `{name}` ({backend})");
                match prof.adapter {
                    Adapter::ClaudeCode => {
                        let server = ModelServer::anthropic(vec![Turn::text("ok")]);
                        let plan = agent::plan(name, &prof, "say ok", &c).unwrap();
                        let mut vars = clis::claude_env(&server.url());
                        vars.extend(path.iter().cloned());
                        let ran = run(&plan, &dir, home.path(), &vars);
                        assert_ran(&ran, &format!("{what}: {:?}", plan.argv));
                        server.finish();
                    }
                    Adapter::Codex => {
                        let server = ModelServer::openai(vec![Turn::text("ok")]);
                        let mut p = prof.clone();
                        p.args.extend(clis::codex_provider_args(&server.url()));
                        p.args.push("--strict-config".into());
                        let plan = agent::plan(name, &p, "say ok", &c).unwrap();
                        let mut vars = clis::codex_env();
                        vars.extend(path.iter().cloned());
                        let ran = run(&plan, &dir, home.path(), &vars);
                        assert_ran(&ran, &format!("{what}: {:?}", plan.argv));
                        server.finish();
                    }
                    _ => continue,
                }
                ran_profiles.push(what);
            }
        }
    }
    assert!(
        ran_profiles.len() >= 6,
        "the README's Claude Code and Codex profiles ran: {ran_profiles:?}"
    );
}

//! `plan` for every adapter: the argv, environment and files each gets.

use super::*;

fn ctx(mcp: bool) -> LaunchContext {
    LaunchContext {
        workdir: "/sb/t7".into(),
        mcp_socket: mcp.then(|| PathBuf::from("/data/ws/factory.sock")),
        token: mcp.then(|| "tok-123".to_string()),
        shopfloor_exe: "/usr/bin/shopfloor".into(),
        run: 42,
        backend: BackendKind::Worktree,
        test_command: Some("python3 -m unittest".into()),
    }
}

fn in_docker(mcp: bool) -> LaunchContext {
    LaunchContext {
        backend: BackendKind::Docker,
        workdir: "/workspace".into(),
        ..ctx(mcp)
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn check_common(p: &LaunchPlan, mcp: bool) {
    assert_eq!(p.env_var("SHOPFLOOR_RUN"), Some("42"));
    assert_eq!(p.env_var("SHOPFLOOR_PROMPT"), Some("fix it"));
    assert_eq!(
        p.env_var("SHOPFLOOR_SOCKET"),
        mcp.then_some("/data/ws/factory.sock")
    );
    assert_eq!(p.env_var("SHOPFLOOR_TOKEN"), mcp.then_some("tok-123"));
}

#[test]
fn claude_code_plan_with_and_without_mcp() {
    let mut prof = AgentProfile::new(Adapter::ClaudeCode);
    prof.model = Some("opus".into());
    prof.args = vec!["--effort".into(), "high".into()];
    let p = plan("claude", &prof, "fix it", &ctx(true)).unwrap();
    assert_eq!(
        strs(&p.argv),
        [
            "claude",
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--model",
            "opus",
            "--mcp-config",
            ".shopfloor/mcp.json",
            "--permission-mode",
            "acceptEdits",
            "--allowedTools",
            "mcp__shopfloor",
            "Bash(python3 -m unittest:*)",
            "--effort",
            "high",
            "--",
            "fix it"
        ]
    );
    assert_eq!(p.decoder, DecoderKind::ClaudeStream);
    assert_eq!(p.env_var("DISABLE_AUTOUPDATER"), Some("1"));
    assert_eq!(
        p.env_var("IS_SANDBOX"),
        None,
        "a worktree is no sandbox to Claude"
    );
    check_common(&p, true);
    assert_eq!(p.files.len(), 4);
    assert_eq!(
        p.files[0],
        (".shopfloor/.gitignore".into(), b"*\n".to_vec())
    );
    assert_eq!(
        p.files[1],
        (".shopfloor/prompt.md".into(), b"fix it".to_vec())
    );
    assert_eq!(
        p.files[2],
        (".shopfloor/token".into(), b"tok-123\n".to_vec())
    );
    assert_eq!(p.files[3].0, PathBuf::from(".shopfloor/mcp.json"));
    let cfg: serde_json::Value = serde_json::from_slice(&p.files[3].1).unwrap();
    assert_eq!(
        cfg,
        serde_json::json!({"mcpServers":{"shopfloor":{"type":"stdio","command":"/usr/bin/shopfloor","args":["mcp","--socket","/data/ws/factory.sock","--token-file","/sb/t7/.shopfloor/token"]}}})
    );

    let p = plan(
        "claude",
        &AgentProfile::new(Adapter::ClaudeCode),
        "fix it",
        &ctx(false),
    )
    .unwrap();
    assert_eq!(
        strs(&p.argv),
        [
            "claude",
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--permission-mode",
            "acceptEdits",
            "--allowedTools",
            "mcp__shopfloor",
            "Bash(python3 -m unittest:*)",
            "--",
            "fix it"
        ]
    );
    assert_eq!(only_the_prompt_file(), p.files);
    check_common(&p, false);
}

#[test]
fn claude_code_in_docker_gets_full_permissions_and_allowlists_add_commands() {
    let prof = AgentProfile::new(Adapter::ClaudeCode);
    let p = plan("claude", &prof, "fix it", &in_docker(true)).unwrap();
    let argv = strs(&p.argv);
    assert!(argv.contains(&"--dangerously-skip-permissions"), "{argv:?}");
    assert!(!argv.contains(&"--allowedTools"), "{argv:?}");
    assert_eq!(p.env_var("IS_SANDBOX"), Some("1"), "root in a container");

    // An explicit allowlist holds in Docker too, with the profile's commands after the
    // [test] command, each once; the profile's env overrides the adapter's defaults.
    let mut prof = AgentProfile::new(Adapter::ClaudeCode);
    prof.permissions = Permissions::Allowlist;
    prof.allow_commands = vec!["cargo check".into(), "python3 -m unittest".into()];
    prof.env.insert("DISABLE_AUTOUPDATER".into(), "0".into());
    let p = plan("claude", &prof, "fix it", &in_docker(false)).unwrap();
    let argv = strs(&p.argv);
    let at = argv.iter().position(|a| *a == "--allowedTools").unwrap();
    assert_eq!(
        argv[at + 1..at + 4],
        [
            "mcp__shopfloor",
            "Bash(python3 -m unittest:*)",
            "Bash(cargo check:*)"
        ]
    );
    assert_eq!(argv[at + 4], "--");
    assert_eq!(p.env_var("IS_SANDBOX"), None);
    assert_eq!(p.env_var("DISABLE_AUTOUPDATER"), Some("0"));

    // Full in a worktree, when the profile says so.
    let mut prof = AgentProfile::new(Adapter::ClaudeCode);
    prof.permissions = Permissions::Full;
    let p = plan("claude", &prof, "fix it", &ctx(false)).unwrap();
    assert!(
        p.argv
            .contains(&"--dangerously-skip-permissions".to_string())
    );
}

#[test]
fn codex_plan_uses_config_overrides() {
    let mut prof = AgentProfile::new(Adapter::Codex);
    prof.command = Some("/opt/codex".into());
    prof.args = vec!["--skip-git-repo-check".into()];
    let p = plan("codex", &prof, "fix it", &ctx(true)).unwrap();
    assert_eq!(
        strs(&p.argv),
        [
            "/opt/codex",
            "exec",
            "--json",
            "-c",
            "mcp_servers.shopfloor.command=\"/usr/bin/shopfloor\"",
            "-c",
            "mcp_servers.shopfloor.args=[\"mcp\", \"--socket\", \"/data/ws/factory.sock\", \"--token-file\", \"/sb/t7/.shopfloor/token\"]",
            "-c",
            "mcp_servers.shopfloor.default_tools_approval_mode=\"approve\"",
            "--sandbox",
            "workspace-write",
            "--skip-git-repo-check",
            "--",
            "fix it"
        ]
    );
    assert_eq!(
        p.env_var("DISABLE_AUTOUPDATER"),
        None,
        "Claude's, not Codex's"
    );
    let d = plan("codex", &prof, "fix it", &in_docker(false)).unwrap();
    assert_eq!(
        strs(&d.argv),
        [
            "/opt/codex",
            "exec",
            "--json",
            "--dangerously-bypass-approvals-and-sandbox",
            "--skip-git-repo-check",
            "--",
            "fix it"
        ]
    );
    assert_eq!(
        p.files[2],
        (".shopfloor/token".into(), b"tok-123\n".to_vec()),
        "the token is in a file the MCP server reads, not on the command line"
    );
    assert_eq!(p.decoder, DecoderKind::CodexExec);
    check_common(&p, true);
}

#[test]
fn gemini_plan() {
    let mut prof = AgentProfile::new(Adapter::Gemini);
    prof.model = Some("gemini-2.5-pro".into());
    let p = plan("g", &prof, "fix it", &ctx(false)).unwrap();
    assert_eq!(
        strs(&p.argv),
        [
            "gemini",
            "--output-format",
            "stream-json",
            "--model",
            "gemini-2.5-pro",
            "-p",
            "fix it"
        ]
    );
    assert_eq!(p.decoder, DecoderKind::Gemini);
    check_common(&p, false);
    let p = plan("g", &prof, "-x", &ctx(false)).unwrap();
    assert_eq!(p.argv.last().unwrap(), "--prompt=-x");
}

/// A plan's files without MCP: the prompt, git-ignored.
fn only_the_prompt_file() -> Vec<(PathBuf, Vec<u8>)> {
    vec![
        (".shopfloor/.gitignore".into(), b"*\n".to_vec()),
        (".shopfloor/prompt.md".into(), b"fix it".to_vec()),
    ]
}

#[test]
fn a_prompt_too_long_for_a_command_line_is_read_from_its_file() {
    // 60,000 three-byte characters: under the ticket body's 64K-character bound, and
    // 180 KB, over what one argument may be.
    let body = "中".repeat(60_000);
    let prompt = format!("# Ticket 7: Translate the catalogue\n\n{body}\n");
    let mut fixture = AgentProfile::new(Adapter::Fixture);
    fixture.scenario = Some("s.toml".into());
    let mut plain = AgentProfile::new(Adapter::Plain);
    plain.command = Some("./agent.sh".into());
    for (name, prof) in [
        ("claude", AgentProfile::new(Adapter::ClaudeCode)),
        ("codex", AgentProfile::new(Adapter::Codex)),
        ("gemini", AgentProfile::new(Adapter::Gemini)),
        ("plain", plain),
        ("fixture", fixture),
    ] {
        let p = plan(name, &prof, &prompt, &ctx(true)).unwrap();
        for s in p.argv.iter().chain(p.env.iter().map(|(_, v)| v)) {
            assert!(
                s.len() <= INLINE_PROMPT_MAX,
                "{name}: {} bytes inline",
                s.len()
            );
        }
        let told = p.env_var("SHOPFLOOR_PROMPT").unwrap();
        assert!(
            told.starts_with("# Ticket 7: Translate the catalogue\n"),
            "{told}"
        );
        assert!(
            told.contains("/sb/t7/.shopfloor/prompt.md") && told.contains("176 KiB"),
            "{told}"
        );
        if name != "plain" && name != "fixture" {
            assert!(
                p.argv.iter().any(|a| a.ends_with(told)),
                "{name}: {:?}",
                p.argv
            );
        }
        assert!(
            p.files
                .contains(&(".shopfloor/prompt.md".into(), prompt.as_bytes().to_vec())),
            "{name}: the whole prompt is in its file"
        );
    }
    // At the bound it is still inline.
    let fits = "x".repeat(INLINE_PROMPT_MAX);
    let p = plan(
        "claude",
        &AgentProfile::new(Adapter::ClaudeCode),
        &fits,
        &ctx(false),
    )
    .unwrap();
    assert_eq!(p.argv.last().unwrap(), &fits);
    assert_eq!(p.env_var("SHOPFLOOR_PROMPT"), Some(fits.as_str()));
}

#[test]
fn plain_plan_puts_the_prompt_in_env_and_a_file() {
    let mut prof = AgentProfile::new(Adapter::Plain);
    prof.command = Some("./agent.sh".into());
    prof.args = vec!["--fast".into()];
    prof.env.insert("SHOPFLOOR_RUN".into(), "spoofed".into());
    prof.env.insert("LANG".into(), "C".into());
    let p = plan("sh", &prof, "fix it", &ctx(true)).unwrap();
    assert_eq!(strs(&p.argv), ["./agent.sh", "--fast"]);
    assert_eq!(p.decoder, DecoderKind::Plain);
    check_common(&p, true);
    assert_eq!(p.env_var("LANG"), Some("C"));
    assert_eq!(
        p.env_var("SHOPFLOOR_PROMPT_FILE"),
        Some("/sb/t7/.shopfloor/prompt.md")
    );
    assert!(
        p.files
            .contains(&(".shopfloor/prompt.md".into(), b"fix it".to_vec()))
    );
    assert!(
        p.files
            .contains(&(".shopfloor/.gitignore".into(), b"*\n".to_vec()))
    );
}

#[test]
fn fixture_plan_runs_this_binary() {
    let mut prof = AgentProfile::new(Adapter::Fixture);
    prof.scenario = Some("assets/scenarios/success.toml".into());
    let p = plan("fake", &prof, "fix it", &ctx(false)).unwrap();
    assert_eq!(
        strs(&p.argv),
        [
            "/usr/bin/shopfloor",
            "fixture-agent",
            "assets/scenarios/success.toml"
        ]
    );
    assert_eq!(p.decoder, DecoderKind::ClaudeStream);
    assert_eq!(only_the_prompt_file(), p.files);
    check_common(&p, false);
    let p = plan("fake", &prof, "fix it", &ctx(true)).unwrap();
    assert_eq!(
        strs(&p.argv),
        [
            "/usr/bin/shopfloor",
            "fixture-agent",
            "assets/scenarios/success.toml",
            "--mcp-config",
            ".shopfloor/mcp.json"
        ]
    );
    check_common(&p, true);
}

#[test]
fn invalid_profiles_are_refused_by_plan() {
    let e = plan("x", &AgentProfile::new(Adapter::Plain), "p", &ctx(false)).unwrap_err();
    assert!(e.to_string().contains("[agents.x]"), "{e}");
}

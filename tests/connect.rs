//! `shopfloor connect` through the real binary, with $HOME in a temp dir: each client's
//! config merged byte-for-byte around the user's own servers and comments, idempotent,
//! `--dry-run` writing nothing, unparsable files left alone, `--scope user` under $HOME.

use crate::common;

use std::path::{Path, PathBuf};

use common::Env;

const WS: &str = "ws";

struct Setup {
    env: Env,
    home: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let env = Env::new();
        env.ok(&["workspace", "create", WS]);
        Setup {
            env,
            home: tempfile::tempdir().unwrap(),
        }
    }

    /// `shopfloor connect ARGS` with $HOME pointed at the temp home: (success, stdout, stderr).
    fn connect(&self, args: &[&str]) -> (bool, String, String) {
        let out = self
            .env
            .cmd()
            .env("HOME", self.home.path())
            .env_remove("CODEX_HOME")
            .arg("connect")
            .args(args)
            .args(["--workspace", WS])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.connect(args);
        assert!(ok, "connect {args:?} failed: {err}\n{out}");
        out
    }

    fn repo(&self) -> PathBuf {
        self.env.repo_path()
    }

    fn home(&self) -> PathBuf {
        self.home.path().to_path_buf()
    }
}

fn exe() -> String {
    assert_cmd::cargo::cargo_bin("shopfloor")
        .canonicalize()
        .unwrap()
        .display()
        .to_string()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// The whole cycle for one client's file: dry run writes nothing, the real run inserts
/// exactly `inserted` at `anchor` (everything else byte-identical), the second run is a
/// no-op.
fn check_merge(
    s: &Setup,
    args: &[&str],
    path: &Path,
    original: &str,
    anchor: &str,
    inserted: &str,
) {
    write(path, original);
    let diff = s.ok(&[args, &["--dry-run"]].concat());
    assert!(diff.contains(&format!("--- {}", path.display())), "{diff}");
    assert!(diff.contains("+++ "), "{diff}");
    assert!(
        diff.contains(&format!("+{}", inserted.lines().nth(1).unwrap_or(inserted))),
        "{diff}"
    );
    assert!(diff.contains("dry run: nothing written"), "{diff}");
    assert_eq!(read(path), original, "--dry-run wrote");

    let out = s.ok(args);
    assert!(out.contains(&format!("{}: added", path.display())), "{out}");
    let expected = original.replacen(anchor, &format!("{inserted}{anchor}"), 1);
    assert_eq!(read(path), expected);

    let out = s.ok(args);
    assert!(out.contains("already up to date"), "{out}");
    assert_eq!(read(path), expected, "the second run changed the file");
}

#[test]
fn claude_code_project_mcp_json() {
    let s = Setup::new();
    let exe = exe();
    let original = r#"{
  // servers the team shares
  "mcpServers": {
    "github": {
      "type": "stdio",
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-github"], /* pinned */
    },
  },
}
"#;
    let inserted = format!(
        "    \"shopfloor\": {{\n      \"type\": \"stdio\",\n      \"command\": \"{exe}\",\n      \"args\": [\"mcp\", \"--workspace\", \"ws\"],\n      \"env\": {{}},\n    }},\n"
    );
    check_merge(
        &s,
        &["claude-code"],
        &s.repo().join(".mcp.json"),
        original,
        "  },\n}\n",
        &inserted,
    );
}

#[test]
fn claude_code_user_scope_writes_claude_json_under_home() {
    let s = Setup::new();
    let exe = exe();
    // ~/.claude.json holds much more than servers; all of it must survive.
    let original = "{\n  \"numStartups\": 12,\n  \"projects\": {\n    \"/x\": { \"allowedTools\": [] }\n  },\n  \"mcpServers\": {\n    \"other\": { \"command\": \"o\" }\n  }\n}\n";
    let inserted = format!(
        ",\n    \"shopfloor\": {{\n      \"type\": \"stdio\",\n      \"command\": \"{exe}\",\n      \"args\": [\"mcp\", \"--workspace\", \"ws\"],\n      \"env\": {{}}\n    }}"
    );
    check_merge(
        &s,
        &["claude-code", "--scope", "user"],
        &s.home().join(".claude.json"),
        original,
        "\n  }\n}\n",
        &inserted,
    );
    assert!(!s.repo().join(".mcp.json").exists());
}

#[test]
fn codex_config_toml_keeps_comments() {
    let s = Setup::new();
    let exe = exe();
    let original = "# my settings\nmodel = \"gpt-5-codex\"  # the default\napproval_policy = \"on-request\"\n\n[mcp_servers.docs]\ncommand = \"docs-mcp\"   # local docs\nargs = [\"--port\", \"0\"]\n\n# profiles below\n[profiles.fast]\nmodel = \"o4-mini\"\n";
    let inserted = format!(
        "[mcp_servers.shopfloor]\ncommand = \"{exe}\"\nargs = [\"mcp\", \"--workspace\", \"ws\"]\n\n"
    );
    check_merge(
        &s,
        &["codex", "--scope", "user"],
        &s.home().join(".codex/config.toml"),
        original,
        "# profiles below\n",
        &inserted,
    );
}

#[test]
fn codex_respects_codex_home() {
    let s = Setup::new();
    let codex_home = s.home().join("elsewhere");
    let out = s
        .env
        .cmd()
        .env("HOME", s.home.path())
        .env("CODEX_HOME", &codex_home)
        .args(["connect", "codex", "--workspace", WS])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(read(&codex_home.join("config.toml")).contains("[mcp_servers.shopfloor]"));
    assert!(!s.home().join(".codex").exists());
}

#[test]
fn cursor_project_and_user() {
    let s = Setup::new();
    let exe = exe();
    let original = "{\n\t\"mcpServers\": {\n\t\t// browser tools\n\t\t\"browser\": {\"command\": \"b\"}\n\t}\n}\n";
    let inserted = format!(
        ",\n\t\t\"shopfloor\": {{\n\t\t\t\"command\": \"{exe}\",\n\t\t\t\"args\": [\"mcp\", \"--workspace\", \"ws\"]\n\t\t}}"
    );
    check_merge(
        &s,
        &["cursor"],
        &s.repo().join(".cursor/mcp.json"),
        original,
        "\n\t}\n}\n",
        &inserted,
    );
    // User scope: a missing file and directory are created under $HOME.
    let out = s.ok(&["cursor", "--scope", "user"]);
    let user = s.home().join(".cursor/mcp.json");
    assert!(
        out.contains(&format!("{}: added mcpServers.shopfloor", user.display())),
        "{out}"
    );
    let v: serde_json::Value = serde_json::from_str(&read(&user)).unwrap();
    assert_eq!(v["mcpServers"]["shopfloor"]["command"], exe.as_str());
}

#[test]
fn gemini_settings_crlf() {
    let s = Setup::new();
    let exe = exe();
    let original = "{\r\n  \"theme\": \"GitHub\", // dark is too dark\r\n  \"mcpServers\": {\r\n    \"other\": {\"command\": \"o\"}\r\n  }\r\n}\r\n";
    let inserted = format!(
        ",\r\n    \"shopfloor\": {{\r\n      \"command\": \"{exe}\",\r\n      \"args\": [\"mcp\", \"--workspace\", \"ws\"]\r\n    }}"
    );
    check_merge(
        &s,
        &["gemini"],
        &s.repo().join(".gemini/settings.json"),
        original,
        "\r\n  }\r\n}\r\n",
        &inserted,
    );
}

#[test]
fn a_stale_entry_is_updated() {
    let s = Setup::new();
    let path = s.repo().join(".mcp.json");
    write(
        &path,
        "{\"mcpServers\": {\"shopfloor\": {\"type\": \"stdio\", \"command\": \"/old/shopfloor\", \"args\": [\"mcp\", \"--workspace\", \"ws\"], \"env\": {\"K\": \"v\"}}}}\n",
    );
    let out = s.ok(&["claude-code"]);
    assert!(out.contains("updated mcpServers.shopfloor"), "{out}");
    assert_eq!(
        read(&path),
        format!(
            "{{\"mcpServers\": {{\"shopfloor\": {{\"type\": \"stdio\", \"command\": \"{}\", \"args\": [\"mcp\", \"--workspace\", \"ws\"], \"env\": {{\"K\": \"v\"}}}}}}}}\n",
            exe()
        )
    );
}

#[test]
fn an_unparsable_file_is_named_and_left_untouched() {
    let s = Setup::new();
    for (client, path, text, line) in [
        (
            "claude-code",
            s.repo().join(".mcp.json"),
            "{\n  \"mcpServers\": {\n    \"a\": ,\n  }\n}\n",
            3,
        ),
        (
            "cursor",
            s.repo().join(".cursor/mcp.json"),
            "{\n  // fine\n  \"mcpServers\": {\n    \"a\": tru\n  }\n}\n",
            4,
        ),
        (
            "codex",
            s.home().join(".codex/config.toml"),
            "model = \"x\"\n[mcp_servers\n",
            2,
        ),
    ] {
        write(&path, text);
        let (ok, out, err) = s.connect(&[client]);
        assert!(!ok, "{client}: {out}");
        assert!(
            err.contains(&format!("cannot parse {} at line {line}", path.display())),
            "{client}: {err}"
        );
        assert!(err.contains("left untouched"), "{err}");
        assert_eq!(read(&path), text);
        // No temp file left beside it either.
        assert!(
            std::fs::read_dir(path.parent().unwrap())
                .unwrap()
                .all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp"))
        );
    }
}

#[test]
fn hooks_need_claude_code() {
    let s = Setup::new();
    let (ok, _, err) = s.connect(&["gemini", "--hooks"]);
    assert!(!ok);
    assert!(err.contains("--hooks is for claude-code only"), "{err}");
    assert!(!s.repo().join(".gemini").exists());
}

#[test]
fn permissions_are_kept() {
    use std::os::unix::fs::PermissionsExt;
    let s = Setup::new();
    let path = s.home().join(".claude.json");
    write(&path, "{}\n");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    s.ok(&["claude-code", "--scope", "user"]);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(read(&path).contains("\"shopfloor\""));
}

#[test]
fn an_unknown_workspace_is_an_error() {
    let s = Setup::new();
    let out = s
        .env
        .cmd()
        .env("HOME", s.home.path())
        .args(["connect", "cursor", "--workspace", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!s.repo().join(".cursor").exists());
}

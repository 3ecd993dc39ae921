use super::*;

fn launch() -> Launch {
    Launch::mcp(Path::new("/opt/bin/shopfloor"), "ws")
}

fn claude(text: &str) -> (String, EditOutcome) {
    let (owned, defaults) = json_entry(Client::ClaudeCode, &launch());
    jsonc::upsert_entry(text, &["mcpServers"], SERVER_NAME, &owned, &defaults).unwrap()
}

fn cursor(text: &str) -> Result<(String, EditOutcome), EditError> {
    let (owned, defaults) = json_entry(Client::Cursor, &launch());
    jsonc::upsert_entry(text, &["mcpServers"], SERVER_NAME, &owned, &defaults)
}

fn codex(text: &str) -> Result<(String, EditOutcome), EditError> {
    let l = launch();
    toml::upsert_server(text, "mcp_servers", SERVER_NAME, &l.command, &l.args)
}

/// Running the edit again on its own output changes nothing.
fn assert_fixed_point(out: &str, edit: impl Fn(&str) -> (String, EditOutcome)) {
    let (again, o) = edit(out);
    assert_eq!(o, EditOutcome::Unchanged, "second run changed:\n{again}");
    assert_eq!(again, out);
}

const CLAUDE_ENTRY_2: &str = r#"    "shopfloor": {
      "type": "stdio",
      "command": "/opt/bin/shopfloor",
      "args": ["mcp", "--workspace", "ws"],
      "env": {}
    }"#;

#[test]
fn an_empty_file_gets_a_whole_document() {
    for empty in ["", "\n", "  \n\n"] {
        let (out, o) = claude(empty);
        assert_eq!(o, EditOutcome::Added);
        assert_eq!(
            out,
            format!("{{\n  \"mcpServers\": {{\n{CLAUDE_ENTRY_2}\n  }}\n}}\n")
        );
        assert_fixed_point(&out, claude);
    }
}

#[test]
fn mcp_servers_absent_is_added_after_the_other_keys() {
    let text = "{\n  \"theme\": \"dark\",\n  \"n\": 3\n}\n";
    let (out, o) = claude(text);
    assert_eq!(o, EditOutcome::Added);
    assert_eq!(
        out,
        format!(
            "{{\n  \"theme\": \"dark\",\n  \"n\": 3,\n  \"mcpServers\": {{\n{CLAUDE_ENTRY_2}\n  }}\n}}\n"
        )
    );
    assert_fixed_point(&out, claude);
}

#[test]
fn comments_and_other_servers_stay_byte_for_byte() {
    let text = r#"// my servers
{
  /* the one I use */
  "mcpServers": {
    "other": { "command": "npx", "args": ["-y", "other"] }, // keep me
    "last": {
      "command": "x" /* trailing */
    } // end of last
  },
  "after": true
}
"#;
    let (out, o) = claude(text);
    assert_eq!(o, EditOutcome::Added);
    let expected = format!(
        r#"// my servers
{{
  /* the one I use */
  "mcpServers": {{
    "other": {{ "command": "npx", "args": ["-y", "other"] }}, // keep me
    "last": {{
      "command": "x" /* trailing */
    }}, // end of last
{CLAUDE_ENTRY_2}
  }},
  "after": true
}}
"#
    );
    assert_eq!(out, expected);
    assert_fixed_point(&out, claude);
}

#[test]
fn trailing_commas_are_kept_and_followed() {
    let text = "{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"a\"},\n  },\n}\n";
    let (out, _) = cursor(text).unwrap();
    assert_eq!(
        out,
        "{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"a\"},\n    \"shopfloor\": {\n      \"command\": \"/opt/bin/shopfloor\",\n      \"args\": [\"mcp\", \"--workspace\", \"ws\"],\n    },\n  },\n}\n"
    );
    assert_fixed_point(&out, |t| cursor(t).unwrap());
}

#[test]
fn crlf_stays_crlf() {
    let text = "{\r\n  \"mcpServers\": {\r\n    \"a\": {}\r\n  }\r\n}\r\n";
    let (out, _) = cursor(text).unwrap();
    assert!(
        out.starts_with("{\r\n  \"mcpServers\": {\r\n    \"a\": {},\r\n"),
        "{out:?}"
    );
    assert!(
        !out.replace("\r\n", "").contains('\n'),
        "a bare LF crept in: {out:?}"
    );
    assert!(out.ends_with("}\r\n"));
}

#[test]
fn tabs_are_matched() {
    let text = "{\n\t\"mcpServers\": {\n\t\t\"a\": {}\n\t}\n}\n";
    let (out, _) = cursor(text).unwrap();
    assert_eq!(
        out,
        "{\n\t\"mcpServers\": {\n\t\t\"a\": {},\n\t\t\"shopfloor\": {\n\t\t\t\"command\": \"/opt/bin/shopfloor\",\n\t\t\t\"args\": [\"mcp\", \"--workspace\", \"ws\"]\n\t\t}\n\t}\n}\n"
    );
}

#[test]
fn four_space_indentation_is_matched() {
    let text = "{\n    \"mcpServers\": {\n        \"a\": {}\n    }\n}\n";
    let (out, _) = cursor(text).unwrap();
    assert!(
        out.contains("\n        \"shopfloor\": {\n            \"command\""),
        "{out}"
    );
}

#[test]
fn a_different_entry_is_updated_in_place_keeping_the_users_extras() {
    let text = r#"{
  "mcpServers": {
    "shopfloor": {
      // moved since
      "type": "stdio",
      "command": "/old/shopfloor",
      "args": ["mcp", "--workspace", "ws"],
      "env": { "SHOPFLOOR_LOG": "debug" }
    }
  }
}
"#;
    let (out, o) = claude(text);
    assert_eq!(o, EditOutcome::Updated);
    assert_eq!(out, text.replace("/old/shopfloor", "/opt/bin/shopfloor"));
    assert_fixed_point(&out, claude);
}

#[test]
fn the_same_entry_is_up_to_date_even_when_formatted_otherwise() {
    let text = r#"{"mcpServers":{"shopfloor":{"env":{},"args":["mcp","--workspace","ws"],"command":"/opt/bin/shopfloor","type":"stdio"}}}"#;
    let (out, o) = claude(text);
    assert_eq!(o, EditOutcome::Unchanged);
    assert_eq!(out, text);
}

#[test]
fn unparsable_json_names_the_line() {
    let text = "{\n  \"mcpServers\": {\n    \"a\": {,\n  }\n}\n";
    match cursor(text) {
        Err(EditError::Syntax { line, .. }) => assert_eq!(line, 3),
        other => panic!("{other:?}"),
    }
    // Looser than JSONC: a client would refuse it, so do we.
    assert!(matches!(cursor("{'a': 1}"), Err(EditError::Syntax { .. })));
    assert!(matches!(
        cursor("{\"a\": 1} {"),
        Err(EditError::Syntax { .. })
    ));
}

#[test]
fn a_foreign_shape_is_refused_not_replaced() {
    assert!(matches!(cursor("[1, 2]"), Err(EditError::Shape(_))));
    match cursor("{\"mcpServers\": [1]}") {
        Err(EditError::Shape(m)) => assert!(m.contains("`mcpServers` is not an object"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn gemini_settings_keep_their_other_keys() {
    let text = "{\n  \"theme\": \"GitHub\",\n  \"mcpServers\": {}\n}\n";
    let (out, o) = cursor(text).unwrap();
    assert_eq!(o, EditOutcome::Added);
    assert!(
        out.starts_with("{\n  \"theme\": \"GitHub\",\n  \"mcpServers\": {\n    \"shopfloor\": {")
    );
}

// ---- hooks ----

const HOOK: &str = "/opt/bin/shopfloor hook claude-code --workspace ws";

fn hooks(text: &str) -> (String, EditOutcome) {
    let mut text = text.to_string();
    let mut outcome = EditOutcome::Unchanged;
    for (event, matcher) in HOOK_EVENTS {
        let (t, o) =
            jsonc::add_hook(&text, event, matcher, HOOK, &|c| is_our_hook(c, "ws")).unwrap();
        text = t;
        if o != EditOutcome::Unchanged {
            outcome = o;
        }
    }
    (text, outcome)
}

#[test]
fn hooks_into_an_empty_settings_file() {
    let (out, o) = hooks("");
    assert_eq!(o, EditOutcome::Added);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        json!({"hooks": {
            "PostToolUse": [{"matcher": "*", "hooks": [{"type": "command", "command": HOOK}]}],
            "Stop": [{"hooks": [{"type": "command", "command": HOOK}]}],
        }})
    );
    assert_fixed_point(&out, hooks);
}

#[test]
fn hooks_join_the_users_own_without_duplicates() {
    let text = r#"{
  "permissions": { "allow": ["Bash(ls:*)"] },
  "hooks": {
    // format after edits
    "PostToolUse": [
      { "matcher": "Edit|Write", "hooks": [{ "type": "command", "command": "cargo fmt" }] }
    ],
    "Stop": [
      { "hooks": [{ "type": "command", "command": "/opt/bin/shopfloor hook claude-code --workspace ws" }] }
    ]
  }
}
"#;
    let (out, o) = hooks(text);
    assert_eq!(o, EditOutcome::Added);
    let v = jsonc_parser::cst::CstRootNode::parse(&out, &Default::default())
        .unwrap()
        .to_serde_value()
        .unwrap();
    assert_eq!(v["hooks"]["PostToolUse"].as_array().unwrap().len(), 2);
    assert_eq!(
        v["hooks"]["PostToolUse"][0]["hooks"][0]["command"],
        "cargo fmt"
    );
    assert_eq!(v["hooks"]["PostToolUse"][1]["hooks"][0]["command"], HOOK);
    assert_eq!(v["hooks"]["Stop"].as_array().unwrap().len(), 1, "{out}");
    assert!(out.contains("// format after edits"));
    assert!(out.starts_with("{\n  \"permissions\": { \"allow\": [\"Bash(ls:*)\"] },\n"));
    assert_fixed_point(&out, hooks);
}

#[test]
fn an_old_install_path_is_rewritten_not_duplicated() {
    let old = hooks("")
        .0
        .replace("/opt/bin/shopfloor", "/old/path/shopfloor");
    let (out, o) = hooks(&old);
    assert_eq!(o, EditOutcome::Updated);
    assert_eq!(
        out,
        old.replace("/old/path/shopfloor", "/opt/bin/shopfloor")
    );
    // Another workspace's hook is not ours to rewrite.
    let other = hooks("").0.replace("--workspace ws", "--workspace other");
    let (out, _) = hooks(&other);
    assert_eq!(out.matches("hook claude-code").count(), 4);
}

#[test]
fn hooks_refuse_a_foreign_shape() {
    let r = jsonc::add_hook("{\"hooks\": {\"Stop\": {}}}", "Stop", None, HOOK, &|_| {
        false
    });
    assert!(matches!(r, Err(EditError::Shape(m)) if m.contains("`hooks.Stop` is not an array")));
}

// ---- codex TOML ----

#[test]
fn codex_into_an_empty_file() {
    let (out, o) = codex("").unwrap();
    assert_eq!(o, EditOutcome::Added);
    assert_eq!(
        out,
        "[mcp_servers.shopfloor]\ncommand = \"/opt/bin/shopfloor\"\nargs = [\"mcp\", \"--workspace\", \"ws\"]\n"
    );
    assert_fixed_point(&out, |t| codex(t).unwrap());
}

#[test]
fn codex_keeps_comments_order_and_other_servers() {
    let text = "# my codex\nmodel = \"o3\"   # fast enough\n\n[mcp_servers.other]\ncommand = \"npx\" # keep\nargs = [ \"-y\",\"other\" ]\n\n[profiles.x]\nmodel = \"o4\"\n";
    let (out, o) = codex(text).unwrap();
    assert_eq!(o, EditOutcome::Added);
    // Next to its sibling servers, everything else as it was.
    let block = "[mcp_servers.shopfloor]\ncommand = \"/opt/bin/shopfloor\"\nargs = [\"mcp\", \"--workspace\", \"ws\"]\n\n";
    assert_eq!(
        out,
        text.replace("[profiles.x]", &format!("{block}[profiles.x]"))
    );
    assert_fixed_point(&out, |t| codex(t).unwrap());
}

#[test]
fn codex_updates_in_place_keeping_decor_and_extras() {
    let text = "[mcp_servers.shopfloor]\ncommand = \"/old\"   # why\nargs = [\"a\"]\nenv = { A = \"1\" }\n";
    let (out, o) = codex(text).unwrap();
    assert_eq!(o, EditOutcome::Updated);
    assert_eq!(
        out,
        "[mcp_servers.shopfloor]\ncommand = \"/opt/bin/shopfloor\"   # why\nargs = [\"mcp\", \"--workspace\", \"ws\"]\nenv = { A = \"1\" }\n"
    );
}

#[test]
fn codex_crlf_stays_crlf() {
    let (out, _) = codex("model = \"o3\"\r\n").unwrap();
    assert!(out.starts_with("model = \"o3\"\r\n"));
    assert!(!out.replace("\r\n", "").contains('\n'), "{out:?}");
}

#[test]
fn codex_errors_name_the_line() {
    match codex("model = \"o3\"\n\n[mcp_servers\ncommand = 1\n") {
        Err(EditError::Syntax { line, .. }) => assert_eq!(line, 3),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        codex("mcp_servers = 3\n"),
        Err(EditError::Shape(_))
    ));
}

#[test]
fn codex_inline_tables_get_an_inline_entry() {
    let (out, _) = codex("mcp_servers = { other = { command = \"x\" } }\n").unwrap();
    let doc: toml_edit::DocumentMut = out.parse().unwrap();
    assert_eq!(doc["mcp_servers"]["other"]["command"].as_str(), Some("x"));
    assert_eq!(
        doc["mcp_servers"]["shopfloor"]["command"].as_str(),
        Some("/opt/bin/shopfloor")
    );
}

// ---- files ----

fn places(dir: &Path) -> Places {
    Places {
        home: dir.join("home"),
        codex_home: None,
        repo: dir.join("repo"),
    }
}

#[test]
fn paths_per_client_and_scope() {
    let p = places(Path::new("/t"));
    let path = |c, s| server_config_path(c, s, &p);
    assert_eq!(
        path(Client::ClaudeCode, Scope::Project),
        Path::new("/t/repo/.mcp.json")
    );
    assert_eq!(
        path(Client::ClaudeCode, Scope::User),
        Path::new("/t/home/.claude.json")
    );
    assert_eq!(
        path(Client::Codex, Scope::User),
        Path::new("/t/home/.codex/config.toml")
    );
    assert_eq!(
        path(Client::Cursor, Scope::Project),
        Path::new("/t/repo/.cursor/mcp.json")
    );
    assert_eq!(
        path(Client::Gemini, Scope::User),
        Path::new("/t/home/.gemini/settings.json")
    );
    let p = Places {
        codex_home: Some("/ch".into()),
        ..p
    };
    assert_eq!(
        server_config_path(Client::Codex, Scope::Project, &p),
        Path::new("/ch/config.toml")
    );
}

#[test]
fn a_missing_file_and_its_directory_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let p = places(dir.path());
    let edit = plan_server(Client::Cursor, Scope::Project, &p, &launch()).unwrap();
    assert_eq!(edit.outcome, EditOutcome::Added);
    assert!(edit.before.is_none());
    assert!(
        edit.diff().starts_with("--- /dev/null\n+++ "),
        "{}",
        edit.diff()
    );
    edit.apply().unwrap();
    let written = std::fs::read_to_string(p.repo.join(".cursor/mcp.json")).unwrap();
    assert_eq!(written, edit.after);
    let again = plan_server(Client::Cursor, Scope::Project, &p, &launch()).unwrap();
    assert_eq!(again.outcome, EditOutcome::Unchanged);
    assert_eq!(again.diff(), "");
    assert!(
        again
            .summary()
            .ends_with("mcpServers.shopfloor already up to date")
    );
}

#[test]
fn writes_keep_permissions_and_symlinks() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("dotfiles/claude.json");
    std::fs::create_dir_all(real.parent().unwrap()).unwrap();
    std::fs::write(&real, "{}\n").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = dir.path().join(".claude.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    write_atomic(&link, b"{\"a\": 1}\n").unwrap();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(&real).unwrap(), "{\"a\": 1}\n");
    let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // No temporary file left behind.
    assert_eq!(
        std::fs::read_dir(real.parent().unwrap()).unwrap().count(),
        1
    );
}

#[test]
fn an_unparsable_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = places(dir.path());
    std::fs::create_dir_all(&p.repo).unwrap();
    std::fs::write(
        p.repo.join(".mcp.json"),
        "{\n  \"mcpServers\": {\n    oops\n}\n",
    )
    .unwrap();
    let e = plan_server(Client::ClaudeCode, Scope::Project, &p, &launch()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains(".mcp.json at line 3"), "{msg}");
    assert!(msg.contains("left untouched"), "{msg}");
}

#[test]
fn shell_quoting() {
    assert_eq!(shell_quote("/usr/bin/shopfloor"), "/usr/bin/shopfloor");
    assert_eq!(shell_quote("/My Apps/shop floor"), "'/My Apps/shop floor'");
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
    assert_eq!(shell_quote(""), "''");
}

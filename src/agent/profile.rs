//! Agent profiles: `[agents.NAME]` tables of `shopfloor.toml`, one per way of running an
//! agent. A profile names its adapter (which CLI and which output format), and may override
//! the executable, add arguments and environment, cap concurrency and pick a model.
//!
//! ```toml
//! [agents.claude]
//! adapter = "claude-code"
//! model = "sonnet"
//! concurrency = 2
//!
//! [agents.codex]
//! adapter = "codex"
//! permissions = "allowlist"          # even in Docker
//! allow_commands = ["cargo check"]    # beside the [test] command
//!
//! [agents.lint-bot]
//! adapter = "plain"
//! command = "./scripts/fix-lint.sh"
//!
//! [agents.fake]
//! adapter = "fixture"
//! scenario = "assets/scenarios/success.toml"
//! ```

use std::collections::BTreeMap;

use super::AgentError;
pub use crate::config::agents::{Adapter, AgentProfile, Permissions};

impl AgentProfile {
    /// A profile with nothing but its adapter set.
    pub fn new(adapter: Adapter) -> AgentProfile {
        AgentProfile {
            adapter,
            command: None,
            args: Vec::new(),
            env: BTreeMap::new(),
            concurrency: None,
            scenario: None,
            model: None,
            permissions: Permissions::Auto,
            allow_commands: Vec::new(),
        }
    }

    /// Check what serde cannot: fields that only make sense together. `name` is the
    /// profile's key in `[agents.NAME]`, so the message points at the table to fix.
    pub fn validate(&self, name: &str) -> Result<(), AgentError> {
        let bad = |message: String| {
            Err(AgentError::Profile {
                name: name.to_string(),
                message,
            })
        };
        if self.command.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return bad("`command` is empty: name an executable or remove the key".into());
        }
        match self.adapter {
            Adapter::Plain if self.command.is_none() => {
                return bad(
                    "adapter `plain` runs any command, so it needs one: add `command = \"./your-agent.sh\"`"
                        .into(),
                );
            }
            Adapter::Fixture if self.scenario.is_none() => {
                return bad(
                    "adapter `fixture` plays a scenario: add `scenario = \"assets/scenarios/success.toml\"`"
                        .into(),
                );
            }
            a if a != Adapter::Fixture && self.scenario.is_some() => {
                return bad(format!(
                    "`scenario` only applies to adapter `fixture`, not `{a}`: remove it or change the adapter"
                ));
            }
            _ => {}
        }
        if self.concurrency == Some(0) {
            return bad(
                "`concurrency = 0` would never run this agent: use 1 or more, or remove the key"
                    .into(),
            );
        }
        if let Some(c) = self.allow_commands.iter().find(|c| c.trim().is_empty()) {
            return bad(format!(
                "allow_commands has an empty command ({c:?}): name a command prefix like \"cargo check\", or remove it"
            ));
        }
        if let Some(k) = self.env.keys().find(|k| k.is_empty() || k.contains('=')) {
            return bad(format!(
                "env name `{k}` is not a valid variable name (empty or has `=`)"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AgentProfile, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn parses_each_adapter_and_defaults() {
        for a in Adapter::ALL {
            let p = parse(&format!(
                "adapter = \"{}\"\ncommand = \"x\"\nscenario = \"s.toml\"",
                a.name()
            ))
            .unwrap();
            assert_eq!(p.adapter, a);
        }
        let p = parse(
            "adapter = \"claude-code\"\nargs = [\"--x\"]\nenv = { A = \"1\" }\nmodel = \"opus\"",
        )
        .unwrap();
        assert_eq!(p.args, ["--x"]);
        assert_eq!(p.env["A"], "1");
        assert_eq!(p.model.as_deref(), Some("opus"));
        p.validate("claude").unwrap();
    }

    #[test]
    fn permissions_default_to_auto_and_resolve_by_sandbox() {
        let p = parse("adapter = \"codex\"").unwrap();
        assert_eq!(p.permissions, Permissions::Auto);
        assert_eq!(Permissions::Auto.resolve(true), Permissions::Full);
        assert_eq!(Permissions::Auto.resolve(false), Permissions::Allowlist);
        assert_eq!(Permissions::Allowlist.resolve(true), Permissions::Allowlist);
        assert_eq!(Permissions::Full.resolve(false), Permissions::Full);
        let p = parse(
            "adapter = \"claude-code\"\npermissions = \"allowlist\"\nallow_commands = [\"cargo check\"]",
        )
        .unwrap();
        assert_eq!(p.permissions, Permissions::Allowlist);
        assert_eq!(p.allow_commands, ["cargo check"]);
        let e = parse("adapter = \"codex\"\npermissions = \"yolo\"").unwrap_err();
        assert!(e.to_string().contains("allowlist"), "{e}");
        let mut p = AgentProfile::new(Adapter::ClaudeCode);
        p.allow_commands = vec![" ".into()];
        assert!(
            p.validate("a")
                .unwrap_err()
                .to_string()
                .contains("allow_commands")
        );
    }

    #[test]
    fn unknown_keys_and_adapters_are_errors() {
        let e = parse("adapter = \"claude-code\"\ncomand = \"x\"").unwrap_err();
        assert!(e.to_string().contains("comand"), "{e}");
        let e = parse("adapter = \"cursor\"").unwrap_err();
        assert!(e.to_string().contains("claude-code"), "{e}");
    }

    #[test]
    fn validation_says_what_to_fix() {
        let msg = |p: AgentProfile| p.validate("a").unwrap_err().to_string();
        assert!(msg(AgentProfile::new(Adapter::Plain)).contains("add `command"));
        assert!(msg(AgentProfile::new(Adapter::Fixture)).contains("add `scenario"));
        let mut p = AgentProfile::new(Adapter::Codex);
        p.scenario = Some("s.toml".into());
        assert!(msg(p).contains("only applies to adapter `fixture`"));
        let mut p = AgentProfile::new(Adapter::Gemini);
        p.concurrency = Some(0);
        assert!(msg(p).contains("concurrency"));
        let mut p = AgentProfile::new(Adapter::ClaudeCode);
        p.command = Some(" ".into());
        assert!(msg(p).contains("empty"));
        AgentProfile::new(Adapter::ClaudeCode)
            .validate("a")
            .unwrap();
    }
}

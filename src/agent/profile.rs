//! Agent profiles: `[agents.NAME]` tables of `shopfloor.toml`, one per way of running an
//! agent. A profile names its adapter (which CLI and which output format), and may override
//! the executable, add arguments and environment, cap concurrency and pick a model.
//!
//! ```toml
//! [agents.claude]
//! adapter = "claude-code"
//! args = ["--permission-mode", "acceptEdits"]
//! concurrency = 2
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
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::AgentError;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentProfile {
    pub adapter: Adapter,
    /// The executable to run instead of the adapter's (`claude`, `codex`, `gemini`, or the
    /// shopfloor binary for `fixture`). Required for `plain`.
    #[serde(default)]
    pub command: Option<String>,
    /// Extra arguments, placed after the adapter's own and before the prompt.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment for the agent process.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// At most this many runs of this profile at once (None: the scheduler's default).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// The scenario a `fixture` agent plays (only for `fixture`).
    #[serde(default)]
    pub scenario: Option<PathBuf>,
    /// The model to ask the CLI for (`--model`); None keeps the CLI's own default.
    #[serde(default)]
    pub model: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Adapter {
    ClaudeCode,
    Codex,
    Gemini,
    Plain,
    Fixture,
}

impl Adapter {
    pub const ALL: [Adapter; 5] = [
        Adapter::ClaudeCode,
        Adapter::Codex,
        Adapter::Gemini,
        Adapter::Plain,
        Adapter::Fixture,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Adapter::ClaudeCode => "claude-code",
            Adapter::Codex => "codex",
            Adapter::Gemini => "gemini",
            Adapter::Plain => "plain",
            Adapter::Fixture => "fixture",
        }
    }

    /// The executable the adapter runs when the profile names none (`plain` has none).
    pub fn default_command(self) -> Option<&'static str> {
        match self {
            Adapter::ClaudeCode => Some("claude"),
            Adapter::Codex => Some("codex"),
            Adapter::Gemini => Some("gemini"),
            Adapter::Plain | Adapter::Fixture => None,
        }
    }
}

impl fmt::Display for Adapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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

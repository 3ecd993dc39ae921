//! The MCP tools: their arguments (with the JSON Schema clients read), their
//! descriptions, and the checks every argument passes before any work is done. Unknown
//! fields, paths that climb out of the repository, and oversized strings are refused
//! here with a message that says what to send instead.

use std::borrow::Cow;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::model::{MemoryKind, RunId, TicketId};

/// Longest query an agent may send: recall reads words, and a page of them is plenty.
pub const MAX_QUERY_CHARS: usize = 2_000;
/// Longest memory text: a memory is a note for the next agent, not a file dump.
pub const MAX_MEMORY_CHARS: usize = 16_000;
pub use crate::model::{MAX_PATH_CHARS, MAX_PATHS};
pub const MAX_TAGS: usize = 32;
pub const MAX_TAG_CHARS: usize = 64;
pub const MAX_LIMIT: usize = 50;
pub const MAX_LEASE_TTL_S: u64 = 24 * 3600;
pub const DEFAULT_LEASE_TTL_S: u64 = 1800;

/// A memory's kind, as agents name it.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KindArg {
    /// A choice made and why.
    Decision,
    /// Something learned the hard way: a failure and its fix.
    Lesson,
    /// How things are done here: naming, layout, tooling.
    Convention,
    /// Anything else worth keeping.
    Note,
    /// What a file is for, how it fits.
    FileContext,
}

impl From<KindArg> for MemoryKind {
    fn from(k: KindArg) -> MemoryKind {
        match k {
            KindArg::Decision => MemoryKind::Decision,
            KindArg::Lesson => MemoryKind::Lesson,
            KindArg::Convention => MemoryKind::Convention,
            KindArg::Note => MemoryKind::Note,
            KindArg::FileContext => MemoryKind::FileContext,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemorySearchArgs {
    /// What you want to know, in words and identifiers (e.g. "why is the db pool size 8").
    pub query: String,
    /// Hits wanted, 1 to 50 (default 8).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Only these kinds of memory.
    #[serde(default)]
    pub kinds: Option<Vec<KindArg>>,
    /// Repository paths or globs you are working on (e.g. "src/db/**"): memories about
    /// them rank higher.
    #[serde(default)]
    pub paths: Option<Vec<String>>,
    /// Only memories this recent: an RFC 3339 time, or an age like "30m", "24h", "7d".
    #[serde(default)]
    pub since: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryWriteArgs {
    /// decision, lesson, convention, note or file_context.
    pub kind: KindArg,
    /// The memory, self-contained: what, why, and what to do about it.
    pub text: String,
    /// Repository paths or globs it is about.
    #[serde(default)]
    pub paths: Option<Vec<String>>,
    /// Short labels.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TraceSearchArgs {
    /// Words, identifiers, commands, error text to find in past runs' steps.
    pub query: String,
    /// Only this run.
    #[serde(default)]
    pub run: Option<RunId>,
    /// Only steps by this agent.
    #[serde(default)]
    pub agent: Option<String>,
    /// Hits wanted, 1 to 50 (default 10).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TraceStepArgs {
    /// The run id (from a search hit).
    pub run: RunId,
    /// The step's number within the run.
    pub step: u64,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WipArgs {}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseArgs {
    /// Repository paths or globs you are about to change (e.g. "src/db/pool.rs", "migrations/**").
    pub paths: Vec<String>,
    /// How long to hold them, in seconds (default 1800, at most 86400). Released anyway when your run ends.
    #[serde(default)]
    pub ttl_s: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseArgs {
    /// Paths or globs to release, exactly as leased.
    pub paths: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketGetArgs {
    /// The ticket's id.
    pub id: TicketId,
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerdictArg {
    /// The change may land as it is.
    Approve,
    /// The change goes back to its agent with your comments.
    #[serde(alias = "request-changes")]
    RequestChanges,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentArg {
    /// Repository-relative path of the file.
    pub path: String,
    /// Line number in the new version of the file (1-based).
    pub line: u32,
    /// What is wrong there and what to do instead.
    pub text: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewSubmitArgs {
    /// "approve" or "request_changes".
    pub verdict: VerdictArg,
    /// The review in a few sentences: what the change does and whether it is right.
    pub summary: String,
    /// Comments on lines of the change (at most 200).
    #[serde(default)]
    pub comments: Vec<CommentArg>,
}

/// The most a review's summary may say.
pub const MAX_SUMMARY_CHARS: usize = 16_000;

/// A checked tool call, ready to run.
#[derive(Debug)]
pub enum Call {
    MemorySearch {
        query: String,
        limit: usize,
        kinds: Vec<MemoryKind>,
        paths: Vec<String>,
        since: Option<Timestamp>,
    },
    MemoryWrite {
        kind: MemoryKind,
        text: String,
        paths: Vec<String>,
        tags: Vec<String>,
    },
    TraceSearch {
        query: String,
        run: Option<RunId>,
        agent: Option<String>,
        limit: usize,
    },
    TraceStep {
        run: RunId,
        step: u64,
    },
    Wip,
    Lease {
        paths: Vec<String>,
        ttl: SignedDuration,
    },
    Release {
        paths: Vec<String>,
    },
    TicketGet {
        id: TicketId,
    },
    ReviewSubmit {
        verdict: crate::model::ReviewVerdict,
        summary: String,
        /// (path, line, text), each checked.
        comments: Vec<(String, u32, String)>,
    },
}

struct Spec {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    schema: fn() -> schemars::Schema,
    read_only: bool,
}

fn schema<T: JsonSchema>() -> schemars::Schema {
    schemars::schema_for!(T)
}

const SPECS: &[Spec] = &[
    Spec {
        name: "memory_search",
        title: "Search the fleet's memory",
        description: "Recall what the fleet has learned in this repository: decisions, lessons, conventions, notes. Hybrid search (keywords, meaning, the paths you name). Returns short hits with ids; call it before changing code you have not touched before.",
        schema: schema::<MemorySearchArgs>,
        read_only: true,
    },
    Spec {
        name: "memory_write",
        title: "Write to the fleet's memory",
        description: "Save a decision, lesson, convention or note for the agents that come after you. Write it self-contained (what, why, what to do), name the paths it concerns. It is attributed to your run.",
        schema: schema::<MemoryWriteArgs>,
        read_only: false,
    },
    Spec {
        name: "trace_search",
        title: "Search past runs",
        description: "Full-text search over every recorded step of past and live runs (messages, tool calls, commands, file edits, errors). Returns one line per hit with its run and step; use trace_step for the whole record.",
        schema: schema::<TraceSearchArgs>,
        read_only: true,
    },
    Spec {
        name: "trace_step",
        title: "Read one step of a run",
        description: "The whole record of one step: a message, a tool call with its input, a tool result, a command with its exit code and output, a file edit with its diff.",
        schema: schema::<TraceStepArgs>,
        read_only: true,
    },
    Spec {
        name: "wip",
        title: "Work in progress",
        description: "What the other agents are doing right now: running runs, their tickets, the paths they lease and the files they have touched so far. Check it before starting on shared code.",
        schema: schema::<WipArgs>,
        read_only: true,
    },
    Spec {
        name: "lease",
        title: "Lease paths",
        description: "Claim repository paths (globs) you are about to change, so no other agent changes them at the same time. All or nothing: if another run holds an overlapping lease you are told who, and nothing is leased.",
        schema: schema::<LeaseArgs>,
        read_only: false,
    },
    Spec {
        name: "release",
        title: "Release leased paths",
        description: "Give back paths you leased, once you are done with them.",
        schema: schema::<ReleaseArgs>,
        read_only: false,
    },
    Spec {
        name: "review_submit",
        title: "Submit your review",
        description: "Only for a review run: give your verdict on the change you were asked to review (approve, or request_changes with comments on the lines to change). Call it once, at the end; request_changes sends the change back to its agent with your comments.",
        schema: schema::<ReviewSubmitArgs>,
        read_only: false,
    },
    Spec {
        name: "ticket_get",
        title: "Read a ticket",
        description: "A ticket's title, body, priority, paths, state and runs.",
        schema: schema::<TicketGetArgs>,
        read_only: true,
    },
];

/// The tools, as `tools/list` describes them.
pub fn definitions() -> Vec<Tool> {
    SPECS
        .iter()
        .map(|s| {
            let schema = match serde_json::to_value((s.schema)()) {
                Ok(serde_json::Value::Object(mut o)) => {
                    // `$schema` and `title` are noise to a client reading arguments.
                    o.remove("$schema");
                    o.remove("title");
                    o
                }
                _ => JsonObject::new(),
            };
            let mut annotations = ToolAnnotations::new()
                .read_only(s.read_only)
                .destructive(false)
                .open_world(false);
            annotations.title = Some(s.title.to_string());
            let mut tool = Tool::new(
                Cow::Borrowed(s.name),
                Cow::Borrowed(s.description),
                Arc::new(schema),
            );
            tool.title = Some(s.title.to_string());
            tool.annotations = Some(annotations);
            tool
        })
        .collect()
}

/// Why a call cannot be made, as MCP wants each told (protocol 2025-11-25, SEP-1303): a
/// tool that does not exist is a protocol error; arguments the tool refuses are a tool
/// execution error (`isError: true`), which the model reads and can act on, where a
/// protocol error would end the turn (the official Python SDK raises on it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalid {
    UnknownTool(String),
    Arguments(String),
}

impl Invalid {
    /// The answer to give the client.
    pub fn into_result(self) -> Result<CallToolResult, McpError> {
        match self {
            Invalid::UnknownTool(m) => Err(McpError::invalid_params(m, None)),
            Invalid::Arguments(m) => Ok(CallToolResult::error(vec![ContentBlock::text(m)])),
        }
    }
}

/// Check a call's tool and arguments and turn them into a `Call`.
pub fn parse(name: &str, args: Option<JsonObject>) -> Result<Call, Invalid> {
    if !SPECS.iter().any(|s| s.name == name) {
        return Err(Invalid::UnknownTool(format!(
            "no tool `{name}`; the tools are {}",
            SPECS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
        )));
    }
    parse_arguments(name, args).map_err(Invalid::Arguments)
}

/// A known tool's arguments, checked; the error says what to send instead.
fn parse_arguments(name: &str, args: Option<JsonObject>) -> Result<Call, String> {
    let value = serde_json::Value::Object(args.unwrap_or_default());
    fn de<T: for<'de> Deserialize<'de>>(name: &str, v: serde_json::Value) -> Result<T, String> {
        serde_json::from_value(v).map_err(|e| format!("{name}: bad arguments: {e}"))
    }
    let call = match name {
        "memory_search" => {
            let a: MemorySearchArgs = de(name, value)?;
            Call::MemorySearch {
                query: query(name, "query", a.query)?,
                limit: limit(name, a.limit, 8)?,
                kinds: a
                    .kinds
                    .unwrap_or_default()
                    .into_iter()
                    .map(Into::into)
                    .collect(),
                paths: paths(name, a.paths.unwrap_or_default())?,
                since: a.since.map(|s| since(name, &s)).transpose()?,
            }
        }
        "memory_write" => {
            let a: MemoryWriteArgs = de(name, value)?;
            let text = a.text.trim().to_string();
            if text.is_empty() {
                return Err(format!(
                    "{name}: `text` is empty; write what the next agent should know"
                ));
            }
            bounded(name, "text", &text, MAX_MEMORY_CHARS)?;
            let tags = a.tags.unwrap_or_default();
            if tags.len() > MAX_TAGS {
                return Err(format!("{name}: {} tags, at most {MAX_TAGS}", tags.len()));
            }
            for t in &tags {
                bounded(name, "a tag", t, MAX_TAG_CHARS)?;
                no_controls(name, "a tag", t)?;
            }
            Call::MemoryWrite {
                kind: a.kind.into(),
                text,
                paths: paths(name, a.paths.unwrap_or_default())?,
                tags,
            }
        }
        "trace_search" => {
            let a: TraceSearchArgs = de(name, value)?;
            if let Some(agent) = &a.agent {
                bounded(name, "agent", agent, 128)?;
            }
            Call::TraceSearch {
                query: query(name, "query", a.query)?,
                run: a.run,
                agent: a.agent,
                limit: limit(name, a.limit, 10)?,
            }
        }
        "trace_step" => {
            let a: TraceStepArgs = de(name, value)?;
            Call::TraceStep {
                run: a.run,
                step: a.step,
            }
        }
        "wip" => {
            let _: WipArgs = de(name, value)?;
            Call::Wip
        }
        "lease" => {
            let a: LeaseArgs = de(name, value)?;
            if a.paths.is_empty() {
                return Err(format!(
                    "{name}: `paths` is empty; name the paths or globs you will change"
                ));
            }
            let ttl = a.ttl_s.unwrap_or(DEFAULT_LEASE_TTL_S);
            if ttl == 0 || ttl > MAX_LEASE_TTL_S {
                return Err(format!(
                    "{name}: `ttl_s` must be 1..={MAX_LEASE_TTL_S} seconds, not {ttl}"
                ));
            }
            Call::Lease {
                paths: paths(name, a.paths)?,
                ttl: SignedDuration::from_secs(ttl as i64),
            }
        }
        "release" => {
            let a: ReleaseArgs = de(name, value)?;
            if a.paths.is_empty() {
                return Err(format!(
                    "{name}: `paths` is empty; name the paths you leased"
                ));
            }
            Call::Release {
                paths: paths(name, a.paths)?,
            }
        }
        "ticket_get" => {
            let a: TicketGetArgs = de(name, value)?;
            Call::TicketGet { id: a.id }
        }
        "review_submit" => {
            let a: ReviewSubmitArgs = de(name, value)?;
            if a.summary.trim().is_empty() {
                return Err(format!("{name}: `summary` is empty; say what you found"));
            }
            if a.summary.chars().count() > MAX_SUMMARY_CHARS {
                return Err(format!(
                    "{name}: `summary` is at most {MAX_SUMMARY_CHARS} characters"
                ));
            }
            if a.comments.len() > crate::mergeq::MAX_COMMENTS {
                return Err(format!(
                    "{name}: at most {} comments",
                    crate::mergeq::MAX_COMMENTS
                ));
            }
            let mut comments = Vec::with_capacity(a.comments.len());
            for c in a.comments {
                let path = crate::mergeq::check_comment(&c.path, c.line, &c.text)
                    .map_err(|e| format!("{name}: {e}"))?;
                comments.push((path, c.line, c.text));
            }
            Call::ReviewSubmit {
                verdict: match a.verdict {
                    VerdictArg::Approve => crate::model::ReviewVerdict::Approve,
                    VerdictArg::RequestChanges => crate::model::ReviewVerdict::RequestChanges,
                },
                summary: a.summary,
                comments,
            }
        }
        other => {
            return Err(format!(
                "no tool `{other}`; the tools are {}",
                SPECS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
            ));
        }
    };
    Ok(call)
}

fn bounded(tool: &str, what: &str, s: &str, max: usize) -> Result<(), String> {
    let n = s.chars().count();
    if n > max {
        return Err(format!(
            "{tool}: {what} is {n} characters, at most {max}; shorten it"
        ));
    }
    Ok(())
}

fn no_controls(tool: &str, what: &str, s: &str) -> Result<(), String> {
    if s.chars().any(|c| c.is_control()) {
        return Err(format!("{tool}: {what} holds control characters"));
    }
    Ok(())
}

fn query(tool: &str, what: &str, q: String) -> Result<String, String> {
    let q = q.trim().to_string();
    if q.is_empty() {
        return Err(format!("{tool}: `{what}` is empty; say what to look for"));
    }
    bounded(tool, &format!("`{what}`"), &q, MAX_QUERY_CHARS)?;
    Ok(q)
}

fn limit(tool: &str, l: Option<usize>, default: usize) -> Result<usize, String> {
    match l {
        None => Ok(default),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(format!("{tool}: `limit` must be 1..={MAX_LIMIT}, not {n}")),
    }
}

/// Repository-relative paths or globs (see [`crate::model::repo_paths`]).
fn paths(tool: &str, paths: Vec<String>) -> Result<Vec<String>, String> {
    crate::model::repo_paths(paths).map_err(|e| format!("{tool}: {e}"))
}

/// An RFC 3339 time, or an age before now: `90s`, `30m`, `24h`, `7d`, `2w`.
/// A `since` argument as the CLI reads it too; the message names the tool and the argument.
fn since(tool: &str, s: &str) -> Result<Timestamp, String> {
    crate::since::parse_since(s, Timestamp::now()).map_err(|e| format!("{tool}: `since`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: serde_json::Value) -> Option<JsonObject> {
        match v {
            serde_json::Value::Object(o) => Some(o),
            _ => None,
        }
    }

    #[test]
    fn every_tool_has_an_object_schema_and_a_description() {
        let tools = definitions();
        assert_eq!(tools.len(), SPECS.len());
        for t in &tools {
            assert_eq!(
                t.input_schema.get("type").and_then(|v| v.as_str()),
                Some("object"),
                "{}",
                t.name
            );
            assert!(t.description.as_ref().is_some_and(|d| d.len() > 20));
        }
        let search = tools.iter().find(|t| t.name == "memory_search").unwrap();
        let props = search.input_schema["properties"].as_object().unwrap();
        for k in ["query", "limit", "kinds", "paths", "since"] {
            assert!(props.contains_key(k), "{k}");
        }
        assert_eq!(
            search.input_schema["required"],
            serde_json::json!(["query"])
        );
    }

    #[test]
    fn arguments_are_checked() {
        let bad = |name: &str, v: serde_json::Value| match parse(name, obj(v)).unwrap_err() {
            Invalid::Arguments(m) => m,
            Invalid::UnknownTool(m) => panic!("{name} is a tool: {m}"),
        };
        assert!(
            bad(
                "memory_search",
                serde_json::json!({"query": "x", "bogus": 1})
            )
            .contains("unknown field")
        );
        assert!(bad("memory_search", serde_json::json!({})).contains("missing field `query`"));
        assert!(bad("memory_search", serde_json::json!({"query": "  "})).contains("empty"));
        let huge = "x".repeat(MAX_QUERY_CHARS + 1);
        assert!(bad("memory_search", serde_json::json!({"query": huge})).contains("at most"));
        assert!(
            bad(
                "memory_search",
                serde_json::json!({"query": "x", "limit": 0})
            )
            .contains("limit")
        );
        assert!(
            bad(
                "memory_search",
                serde_json::json!({"query": "x", "since": "yesterday"})
            )
            .contains("since")
        );
        assert!(
            bad(
                "memory_write",
                serde_json::json!({"kind": "lesson", "text": "t", "paths": ["../etc/passwd"]})
            )
            .contains("climbs out")
        );
        assert!(
            bad(
                "memory_write",
                serde_json::json!({"kind": "lesson", "text": "t", "paths": ["/etc/passwd"]})
            )
            .contains("repository-relative")
        );
        assert!(
            bad(
                "memory_write",
                serde_json::json!({"kind": "gossip", "text": "t"})
            )
            .contains("unknown variant")
        );
        assert!(
            bad(
                "lease",
                serde_json::json!({"paths": ["src/**"], "ttl_s": 0})
            )
            .contains("ttl_s")
        );
        assert!(bad("lease", serde_json::json!({"paths": []})).contains("empty"));
        let review = |v: serde_json::Value| bad("review_submit", v);
        assert!(
            review(serde_json::json!({"verdict": "ok", "summary": "s"}))
                .contains("unknown variant")
        );
        assert!(
            review(serde_json::json!({"verdict": "approve", "summary": " "})).contains("empty")
        );
        assert!(
            review(serde_json::json!({"verdict": "approve", "summary": "s",
                "comments": [{"path": "/etc/passwd", "line": 1, "text": "t"}]}))
            .contains("repository-relative")
        );
        assert!(
            review(serde_json::json!({"verdict": "approve", "summary": "s",
                "comments": [{"path": "a/../../x", "line": 1, "text": "t"}]}))
            .contains("leaves the repository")
        );
        assert!(
            review(serde_json::json!({"verdict": "approve", "summary": "s",
                "comments": [{"path": "a.py", "line": 0, "text": "t"}]}))
            .contains("start at 1")
        );
        let many: Vec<_> = (0..201)
            .map(|i| serde_json::json!({"path": "a.py", "line": i + 1, "text": "t"}))
            .collect();
        assert!(
            review(serde_json::json!({"verdict": "approve", "summary": "s", "comments": many}))
                .contains("at most 200")
        );
        match parse(
            "review_submit",
            obj(
                serde_json::json!({"verdict": "request-changes", "summary": "s",
                "comments": [{"path": "a.py", "line": 2, "text": "fix"}]}),
            ),
        )
        .unwrap()
        {
            Call::ReviewSubmit {
                verdict, comments, ..
            } => {
                assert_eq!(verdict, crate::model::ReviewVerdict::RequestChanges);
                assert_eq!(comments, vec![("a.py".to_string(), 2, "fix".to_string())]);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            bad("trace_step", serde_json::json!({"run": -1, "step": 0})).contains("bad arguments")
        );
        match parse("nope", None).unwrap_err() {
            Invalid::UnknownTool(m) => assert!(m.contains("the tools are"), "{m}"),
            other => panic!("{other:?}"),
        }
        // Bad arguments answer as a tool error the model reads; an unknown tool is a
        // protocol error.
        let r = Invalid::Arguments("memory_search: `query` is empty".into())
            .into_result()
            .unwrap();
        assert_eq!(r.is_error, Some(true));
        assert!(Invalid::UnknownTool("x".into()).into_result().is_err());

        match parse("memory_search", obj(serde_json::json!({"query": "pool size", "kinds": ["decision"], "paths": ["./src/db/**"], "since": "7d"}))).unwrap() {
            Call::MemorySearch { kinds, paths, since, limit, .. } => {
                assert_eq!(kinds, vec![MemoryKind::Decision]);
                assert_eq!(paths, vec!["src/db/**".to_string()]);
                assert!(since.unwrap() < Timestamp::now());
                assert_eq!(limit, 8);
            }
            c => panic!("{c:?}"),
        }
        assert!(matches!(parse("wip", None).unwrap(), Call::Wip));
    }
}

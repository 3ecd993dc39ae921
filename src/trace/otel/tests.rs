//! Unit tests of the span tree and its OTLP encoding: names, attributes, content, ids and bounds.

use opentelemetry_proto::tonic::trace::v1::{Span, status::StatusCode};
use prost::Message;

use super::*;
use crate::model::{Lifecycle, Run, RunState, Step, StepKind, Usage};
use crate::safe_text::clip_bytes as clip;

fn opts(content: bool) -> SpanOptions {
    SpanOptions {
        content,
        workspace: "shop".into(),
        id_key: "shop@2026-01-01T00:00:00Z".into(),
    }
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn step(seq: u64, secs: i64, parent: Option<u64>, kind: StepKind) -> Step {
    Step {
        run: 7,
        seq,
        ts: at(secs),
        agent: "claude".into(),
        parent,
        kind,
    }
}

fn run(state: RunState) -> Run {
    Run {
        id: 7,
        ticket: Some(3),
        agent: "claude".into(),
        state,
        started: at(0),
        ended: Some(at(60)),
        steps: 9,
        source: "worktree".into(),
        attempt: 1,
        branch: Some("shopfloor/3-1".into()),
        usage: Usage {
            input_tokens: 1200,
            output_tokens: 340,
            cost_usd: Some(0.04),
            ..Default::default()
        },
        files_changed: vec!["a.py".into()],
        sandbox: Some("worktree".into()),
        outcome: Some("the agent exited with code 1".into()),
        recalled: vec![],
        review_of: None,
        host: None,
    }
}

const SECRET: &str = "the-prompt-says-SECRET-WORD";

fn steps() -> Vec<Step> {
    vec![
        step(
            0,
            0,
            None,
            StepKind::Lifecycle {
                event: Lifecycle::Started {
                    model: Some("claude-sonnet-4-5".into()),
                    session: Some("sess-1".into()),
                    cwd: None,
                },
            },
        ),
        step(
            1,
            1,
            None,
            StepKind::UserMessage {
                text: SECRET.into(),
            },
        ),
        step(
            2,
            2,
            None,
            StepKind::AgentMessage {
                text: "reply SECRET-REPLY".into(),
            },
        ),
        step(
            3,
            3,
            None,
            StepKind::ToolCall {
                call_id: Some("toolu_1".into()),
                name: "Bash".into(),
                input: r#"{"command":"exit 3 # SECRET-ARG"}"#.into(),
            },
        ),
        step(
            4,
            5,
            Some(3),
            StepKind::ToolResult {
                call_id: Some("toolu_1".into()),
                output: "Exit code 3 SECRET-OUT".into(),
                is_error: true,
            },
        ),
        step(
            5,
            5,
            Some(3),
            StepKind::Command {
                argv: vec!["bash".into(), "-c".into(), "exit 3".into()],
                exit_code: Some(3),
                output: "SECRET-OUT".into(),
            },
        ),
        step(
            6,
            6,
            None,
            StepKind::ToolCall {
                call_id: Some("toolu_2".into()),
                name: "mcp__shopfloor__memory_search".into(),
                input: r#"{"query":"SECRET-QUERY pool size"}"#.into(),
            },
        ),
        // Answered by id only: the pairing falls back to the call id.
        step(
            7,
            8,
            None,
            StepKind::ToolResult {
                call_id: Some("toolu_2".into()),
                output: "no memories".into(),
                is_error: false,
            },
        ),
        step(
            8,
            9,
            None,
            StepKind::ToolCall {
                call_id: Some("toolu_3".into()),
                name: "Read".into(),
                input: "{}".into(),
            },
        ),
    ]
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn str_attr<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match attr(span, key) {
        Some(Value::StringValue(v)) => Some(v),
        _ => None,
    }
}

#[test]
fn a_run_is_an_agent_span_with_tool_and_memory_children() {
    let spans = run_spans(&run(RunState::Failed), &steps(), &opts(false));
    assert_eq!(spans.len(), 4);
    let root = &spans[0];
    assert_eq!(root.name, "invoke_agent claude");
    assert!(root.parent_span_id.is_empty());
    assert_eq!(
        str_attr(root, "gen_ai.operation.name"),
        Some("invoke_agent")
    );
    assert_eq!(str_attr(root, "gen_ai.provider.name"), Some("anthropic"));
    assert_eq!(
        str_attr(root, "gen_ai.request.model"),
        Some("claude-sonnet-4-5")
    );
    assert_eq!(
        attr(root, "gen_ai.usage.input_tokens"),
        Some(&Value::IntValue(1200))
    );
    assert_eq!(attr(root, "shopfloor.ticket.id"), Some(&Value::IntValue(3)));
    assert_eq!(str_attr(root, "shopfloor.workspace"), Some("shop"));
    let status = root.status.as_ref().unwrap();
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(status.message, "the agent exited with code 1");

    let bash = &spans[1];
    assert_eq!(bash.name, "execute_tool Bash");
    assert_eq!(bash.parent_span_id, root.span_id);
    assert_eq!(bash.trace_id, root.trace_id);
    assert_eq!(str_attr(bash, "gen_ai.tool.call.id"), Some("toolu_1"));
    assert_eq!(bash.end_time_unix_nano, nanos(at(5)));
    assert_eq!(bash.status.as_ref().unwrap().code, StatusCode::Error as i32);
    assert_eq!(attr(bash, "process.exit.code"), Some(&Value::IntValue(3)));

    let recall = &spans[2];
    assert_eq!(recall.name, "search_memory shop");
    assert_eq!(
        str_attr(recall, "gen_ai.operation.name"),
        Some("search_memory")
    );
    assert_eq!(recall.end_time_unix_nano, nanos(at(8)));
    assert!(recall.status.is_none());

    // Never answered: it lasts until the run's end.
    assert_eq!(spans[3].end_time_unix_nano, nanos(at(60)));
}

#[test]
fn no_message_text_without_content_and_all_of_it_with() {
    let encode = |content| {
        let spans = run_spans(&run(RunState::Succeeded), &steps(), &opts(content));
        let reqs = export_requests(
            spans,
            &Service {
                name: "shopfloor".into(),
                workspace: "shop".into(),
            },
        );
        serde_json::to_string(&reqs).unwrap()
    };
    let off = encode(false);
    assert!(!off.contains("SECRET"), "{off}");
    let on = encode(true);
    for s in [
        SECRET,
        "SECRET-REPLY",
        "SECRET-ARG",
        "SECRET-OUT",
        "SECRET-QUERY",
        "gen_ai.input.messages",
        "gen_ai.memory.query.text",
    ] {
        assert!(on.contains(s), "{s} missing: {on}");
    }
}

#[test]
fn ids_are_the_same_on_every_export_and_differ_between_runs() {
    let a = run_spans(&run(RunState::Succeeded), &steps(), &opts(false));
    let b = run_spans(&run(RunState::Succeeded), &steps(), &opts(false));
    let ids = |v: &[Span]| v.iter().map(|s| s.span_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(trace_id("k", 1), trace_id("k", 1));
    assert_ne!(trace_id("k", 1), trace_id("k", 2));
    assert_ne!(trace_id("k", 1), trace_id("j", 1));
    assert_ne!(span_id("k", 1, None), span_id("k", 1, Some(0)));
}

#[test]
fn an_imported_run_lasts_as_long_as_its_steps() {
    let mut r = run(RunState::Imported);
    (r.started, r.ended) = (at(1000), Some(at(1001)));
    let spans = run_spans(&r, &steps(), &opts(false));
    let root = &spans[0];
    assert_eq!(
        (root.start_time_unix_nano, root.end_time_unix_nano),
        (nanos(at(0)), nanos(at(9)))
    );
    assert!(root.status.is_none(), "neither failed nor succeeded");
}

#[test]
fn memory_recall_names() {
    for yes in [
        "memory_search",
        "mcp__shopfloor__memory_search",
        "shopfloor/memory_search",
        "memory_recall",
    ] {
        assert!(is_memory_recall(yes), "{yes}");
    }
    for no in ["memory_write", "xmemory_search", "Bash", "memory_searches"] {
        assert!(!is_memory_recall(no), "{no}");
    }
}

#[test]
fn big_runs_split_into_bounded_requests_and_text_is_clipped() {
    let mut steps = vec![];
    for i in 0..1200u64 {
        steps.push(step(
            i,
            i as i64,
            None,
            StepKind::ToolCall {
                call_id: None,
                name: "Read".into(),
                input: "x".repeat(40_000).into(),
            },
        ));
    }
    let spans = run_spans(&run(RunState::Succeeded), &steps, &opts(true));
    assert_eq!(spans.len(), 1201);
    let reqs = export_requests(
        spans,
        &Service {
            name: "s".into(),
            workspace: "w".into(),
        },
    );
    assert!(reqs.len() >= 3, "{} requests", reqs.len());
    let mut total = 0;
    for r in &reqs {
        assert!(r.encoded_len() <= MAX_REQUEST_BYTES + (32 << 10));
        total += r.resource_spans[0].scope_spans[0].spans.len();
    }
    assert_eq!(total, 1201);
    assert_eq!(clip("héllo", 2), "h…[5 more bytes]");
}

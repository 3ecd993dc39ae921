//! A stored run as OpenTelemetry spans under the GenAI semantic conventions: the run is an
//! `invoke_agent {agent}` span, each tool call an `execute_tool {tool}` child, each memory
//! recall through shopfloor's MCP server a `search_memory {workspace}` child. The same span
//! tree feeds the live OTLP/HTTP export (`crate::telemetry`) and `trace export --format otlp`.
//!
//! Ids are derived, not random: the trace id from (workspace, run), a span id from
//! (workspace, run, step), both blake3. Exporting a run twice gives the same ids, so a
//! receiver sees the same spans again rather than a second copy of the run.
//!
//! Message text (prompts, replies, thinking, tool arguments and results, memory queries)
//! goes into attributes only when `content` is on (`[telemetry] content = true`): traces
//! often leave the machine, and an agent's conversation holds the repository's code and
//! whatever secrets the redaction missed. With it off, a span says what happened (names,
//! counts, ids, timings, exit codes, error flags), never what was said.

use std::collections::HashMap;
use std::io::Write;

use jiff::Timestamp;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span::Event, span::SpanKind, status::StatusCode,
};
use prost::Message;

use super::TraceError;
use crate::model::{Lifecycle, Payload, Run, RunId, RunState, Step, StepKind};
use crate::safe_text::clip_bytes as clip;
use crate::store::{Store, StoreError};

/// What a run's spans are made with.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanOptions {
    /// Message text in attributes (see the module's doc).
    pub content: bool,
    /// The workspace's name: `shopfloor.workspace`, and the memory store's id.
    pub workspace: String,
    /// What trace and span ids are derived from, with the run and the step: the workspace's
    /// name and creation time, so two machines' workspaces of the same name differ.
    pub id_key: String,
}

/// Who sent the spans: the OTLP resource and instrumentation scope.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    /// `service.name` (`[telemetry] service_name`).
    pub name: String,
    pub workspace: String,
}

/// A text attribute longer than this is cut (at a character boundary) and says so: one
/// 10 MB tool result must not make a request every receiver refuses.
pub const MAX_TEXT_BYTES: usize = 16 << 10;
/// All the message parts of a run's `invoke_agent` span together stop at about this much.
pub const MAX_MESSAGES_BYTES: usize = 256 << 10;
/// The run's span carries at most this many error events; `shopfloor.run.errors` counts
/// them all.
pub const MAX_EVENTS: usize = 128;
/// A request holds at most this many spans and about this many encoded bytes, under the
/// 4 MiB that gRPC-based collectors and many HTTP receivers accept by default.
pub const MAX_REQUEST_SPANS: usize = 512;
pub const MAX_REQUEST_BYTES: usize = 3 << 20;

const SCOPE: &str = "shopfloor";

/// The run's trace id: 16 bytes of blake3 over the id key and the run.
pub fn trace_id(id_key: &str, run: RunId) -> [u8; 16] {
    let h = id_hash(id_key, run, "trace");
    let mut id = [0u8; 16];
    id.copy_from_slice(&h[..16]);
    nonzero(&mut id);
    id
}

/// A span id: the run's root span (`step` None) or the span a step opened.
pub fn span_id(id_key: &str, run: RunId, step: Option<u64>) -> [u8; 8] {
    let what = match step {
        Some(seq) => format!("step {seq}"),
        None => "run".to_string(),
    };
    let h = id_hash(id_key, run, &what);
    let mut id = [0u8; 8];
    id.copy_from_slice(&h[..8]);
    nonzero(&mut id);
    id
}

fn id_hash(id_key: &str, run: RunId, what: &str) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("shopfloor otel ids v1");
    // Lengths first, so no two (key, run, what) triples hash the same bytes.
    h.update(&(id_key.len() as u64).to_le_bytes());
    h.update(id_key.as_bytes());
    h.update(&run.to_le_bytes());
    h.update(what.as_bytes());
    *h.finalize().as_bytes()
}

/// An all-zero id is invalid in OTLP; a hash giving one is astronomically unlikely, but
/// cheap to rule out.
fn nonzero(id: &mut [u8]) {
    if id.iter().all(|&b| b == 0) {
        id[id.len() - 1] = 1;
    }
}

fn nanos(ts: Timestamp) -> u64 {
    u64::try_from(ts.as_nanosecond().max(0)).unwrap_or(u64::MAX)
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(key: &str, v: impl Into<String>) -> KeyValue {
    kv(key, Value::StringValue(v.into()))
}

fn int(key: &str, v: u64) -> KeyValue {
    kv(key, Value::IntValue(i64::try_from(v).unwrap_or(i64::MAX)))
}

/// Whether a tool call is a memory recall: shopfloor's `memory_search` (or a
/// `memory_recall`), by itself or behind an MCP prefix (Claude Code's
/// `mcp__shopfloor__memory_search`, Codex's `shopfloor/memory_search`).
pub fn is_memory_recall(tool: &str) -> bool {
    ["memory_search", "memory_recall"].iter().any(|t| {
        tool.strip_suffix(t)
            .is_some_and(|head| head.is_empty() || head.ends_with(['_', '/', '.', ':']))
    })
}

/// The GenAI provider a model or agent name points at, where it is plain.
fn provider(model: Option<&str>, agent: &str) -> Option<&'static str> {
    let guess = |name: &str| {
        let n = name.to_ascii_lowercase();
        if n.starts_with("claude") || n.contains("anthropic") {
            Some("anthropic")
        } else if n.starts_with("gpt")
            || n.starts_with("codex")
            || n.starts_with("o1")
            || n.starts_with("o3")
            || n.starts_with("o4")
            || n.contains("openai")
        {
            Some("openai")
        } else if n.starts_with("gemini") {
            Some("gcp.gemini")
        } else {
            None
        }
    };
    model.and_then(guess).or_else(|| guess(agent))
}

/// Builds a run's spans one step at a time, so a run of 100,000 steps is never held whole.
pub struct RunSpans {
    opts: SpanOptions,
    run: Run,
    trace: [u8; 16],
    root: [u8; 8],
    /// Finished and open child spans, in the order their steps came.
    spans: Vec<Span>,
    /// Index in `spans` of each tool span, by the seq of the step that opened it.
    by_seq: HashMap<u64, usize>,
    /// The tool spans awaiting their result: call step seq to the agent's call id.
    open: HashMap<u64, Option<String>>,
    /// Call step seq by the agent's call id, for results that name only the id.
    by_call_id: HashMap<String, u64>,
    model: Option<String>,
    session: Option<String>,
    /// The earliest and latest step times seen.
    first_ts: Option<u64>,
    last_ts: Option<u64>,
    tool_calls: u64,
    errors: u64,
    events: Vec<Event>,
    /// Message parts (content on only): user messages, and the assistant's text and
    /// reasoning, with the bytes they hold so far.
    inputs: Vec<serde_json::Value>,
    outputs: Vec<serde_json::Value>,
    message_bytes: usize,
    messages_cut: bool,
}

impl RunSpans {
    pub fn new(run: &Run, opts: &SpanOptions) -> RunSpans {
        RunSpans {
            trace: trace_id(&opts.id_key, run.id),
            root: span_id(&opts.id_key, run.id, None),
            opts: opts.clone(),
            run: run.clone(),
            spans: Vec::new(),
            by_seq: HashMap::new(),
            open: HashMap::new(),
            by_call_id: HashMap::new(),
            model: None,
            session: None,
            first_ts: None,
            last_ts: None,
            tool_calls: 0,
            errors: 0,
            events: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            message_bytes: 0,
            messages_cut: false,
        }
    }

    /// The next step of the run (steps come in order). With `content` on, its payloads
    /// must be inline (`Store::inline_step`); a blob's preview is all a span would get.
    pub fn push(&mut self, step: &Step) {
        let ts = nanos(step.ts);
        self.first_ts = Some(self.first_ts.map_or(ts, |t| t.min(ts)));
        self.last_ts = Some(self.last_ts.map_or(ts, |t| t.max(ts)));
        match &step.kind {
            StepKind::Lifecycle {
                event: Lifecycle::Started { model, session, .. },
            } => {
                self.model = self.model.take().or_else(|| model.clone());
                self.session = self.session.take().or_else(|| session.clone());
            }
            StepKind::ToolCall {
                call_id,
                name,
                input,
            } => self.tool_call(step, ts, call_id.as_deref(), name, input),
            StepKind::ToolResult {
                call_id,
                output,
                is_error,
            } => {
                let seq = step.parent.or_else(|| {
                    call_id
                        .as_ref()
                        .and_then(|c| self.by_call_id.get(c).copied())
                });
                if let Some((seq, call_id)) = seq.and_then(|q| self.open.remove_entry(&q)) {
                    if let Some(c) = &call_id {
                        self.by_call_id.remove(c);
                    }
                    let content = self.opts.content;
                    let span = &mut self.spans[self.by_seq[&seq]];
                    span.end_time_unix_nano = ts.max(span.start_time_unix_nano);
                    if content {
                        span.attributes.push(s(
                            "gen_ai.tool.call.result",
                            clip(output.preview(), MAX_TEXT_BYTES),
                        ));
                    }
                    if *is_error {
                        fail(span, "tool_error", "the tool reported an error");
                    }
                }
            }
            StepKind::Command {
                argv,
                exit_code,
                output,
            } => {
                // A command answering a tool call (Claude Code's Bash) describes that call;
                // one on its own (Codex's shell) is a tool execution of its own.
                let span = match step.parent.and_then(|p| self.by_seq.get(&p).copied()) {
                    Some(i) => i,
                    None => {
                        let args = serde_json::to_string(argv).unwrap_or_default();
                        let i = self.tool_span(step, ts, None, "shell", &Payload::Text(args));
                        if self.opts.content {
                            self.spans[i].attributes.push(s(
                                "gen_ai.tool.call.result",
                                clip(output.preview(), MAX_TEXT_BYTES),
                            ));
                        }
                        i
                    }
                };
                let span = &mut self.spans[span];
                if let Some(code) = exit_code {
                    span.attributes
                        .push(kv("process.exit.code", Value::IntValue(i64::from(*code))));
                    if *code != 0 {
                        fail(
                            span,
                            "exit_code",
                            &format!("the command exited with {code}"),
                        );
                    }
                }
            }
            StepKind::UserMessage { text } => self.message(true, "text", text),
            StepKind::AgentMessage { text } => self.message(false, "text", text),
            StepKind::Thinking { text } => self.message(false, "reasoning", text),
            StepKind::Error { message } => {
                self.errors += 1;
                if self.events.len() >= MAX_EVENTS {
                    // A run that failed a hundred thousand times says so in the count.
                    return;
                }
                let mut attrs = vec![
                    s("exception.type", "agent_error"),
                    int("shopfloor.step", step.seq),
                ];
                if self.opts.content {
                    attrs.push(s(
                        "exception.message",
                        clip(message.preview(), MAX_TEXT_BYTES),
                    ));
                }
                self.events.push(Event {
                    time_unix_nano: ts,
                    name: "exception".into(),
                    attributes: attrs,
                    ..Default::default()
                });
            }
            _ => {}
        }
    }

    fn tool_call(
        &mut self,
        step: &Step,
        ts: u64,
        call_id: Option<&str>,
        name: &str,
        input: &Payload,
    ) {
        self.tool_span(step, ts, call_id, name, input);
        self.open.insert(step.seq, call_id.map(str::to_string));
        if let Some(c) = call_id {
            self.by_call_id.insert(c.to_string(), step.seq);
        }
    }

    /// A child span for a tool execution (or a memory recall) starting at `step`; it ends
    /// there too until a result moves its end.
    fn tool_span(
        &mut self,
        step: &Step,
        ts: u64,
        call_id: Option<&str>,
        name: &str,
        input: &Payload,
    ) -> usize {
        self.tool_calls += 1;
        let recall = is_memory_recall(name);
        let mut attrs = vec![
            s(
                "gen_ai.operation.name",
                if recall {
                    "search_memory"
                } else {
                    "execute_tool"
                },
            ),
            s("gen_ai.tool.name", name),
            s("gen_ai.tool.type", "function"),
            int("shopfloor.step", step.seq),
        ];
        if let Some(c) = call_id {
            attrs.push(s("gen_ai.tool.call.id", c));
        }
        if recall {
            attrs.push(s("gen_ai.memory.store.id", self.opts.workspace.as_str()));
        }
        if self.opts.content {
            attrs.push(s(
                "gen_ai.tool.call.arguments",
                clip(input.preview(), MAX_TEXT_BYTES),
            ));
            if recall
                && let Ok(args) = serde_json::from_str::<serde_json::Value>(input.preview())
                && let Some(q) = args.get("query").and_then(|q| q.as_str())
            {
                attrs.push(s("gen_ai.memory.query.text", clip(q, MAX_TEXT_BYTES)));
            }
        }
        let (span_name, kind) = if recall {
            // The recall is a call to the factory's MCP server: a client span.
            (
                format!("search_memory {}", self.opts.workspace),
                SpanKind::Client,
            )
        } else {
            (format!("execute_tool {name}"), SpanKind::Internal)
        };
        self.spans.push(Span {
            trace_id: self.trace.to_vec(),
            span_id: span_id(&self.opts.id_key, self.run.id, Some(step.seq)).to_vec(),
            parent_span_id: self.root.to_vec(),
            name: span_name,
            kind: kind as i32,
            start_time_unix_nano: ts,
            end_time_unix_nano: ts,
            attributes: attrs,
            ..Default::default()
        });
        self.by_seq.insert(step.seq, self.spans.len() - 1);
        self.spans.len() - 1
    }

    fn message(&mut self, input: bool, kind: &str, text: &Payload) {
        if !self.opts.content || text.is_empty() {
            return;
        }
        if self.message_bytes >= MAX_MESSAGES_BYTES {
            self.messages_cut = true;
            return;
        }
        let t = clip(text.preview(), MAX_TEXT_BYTES);
        self.message_bytes += t.len();
        let part = serde_json::json!({"type": kind, "content": t});
        if input {
            self.inputs
                .push(serde_json::json!({"role": "user", "parts": [part]}));
        } else {
            self.outputs.push(part);
        }
    }

    /// The spans, the run's `invoke_agent` span first.
    pub fn finish(mut self) -> Vec<Span> {
        let run = &self.run;
        let (start, end) = match (self.first_ts, self.last_ts) {
            // An imported run was started and ended by the import; its steps keep the
            // times the agent worked at, and those are the run's.
            (Some(first), Some(last))
                if matches!(run.state, RunState::Imported | RunState::PartialImport) =>
            {
                (first, last)
            }
            // The factory's run spans its steps, whose times come from the agent's own
            // lines and may fall a little outside what the factory saw.
            (first, last) => {
                let start = first.map_or(nanos(run.started), |f| f.min(nanos(run.started)));
                let end = run.ended.map(nanos).into_iter().chain(last).max();
                (start, end.unwrap_or(start).max(start))
            }
        };
        // A call never answered (the run was stopped mid-call) lasted until the run ended.
        for seq in self.open.keys() {
            let span = &mut self.spans[self.by_seq[seq]];
            span.end_time_unix_nano = end.max(span.start_time_unix_nano);
        }
        let mut attrs = vec![
            s("gen_ai.operation.name", "invoke_agent"),
            s("gen_ai.agent.name", run.agent.as_str()),
            int("gen_ai.usage.input_tokens", run.usage.input_tokens),
            int("gen_ai.usage.output_tokens", run.usage.output_tokens),
            int("shopfloor.run.id", run.id),
            s("shopfloor.workspace", self.opts.workspace.as_str()),
            s("shopfloor.run.state", run.state.name()),
            int("shopfloor.run.steps", run.steps),
            int("shopfloor.run.tool_calls", self.tool_calls),
            int(
                "shopfloor.run.files_changed",
                run.files_changed.len() as u64,
            ),
        ];
        if let Some(p) = provider(self.model.as_deref(), &run.agent) {
            // `gen_ai.provider.name` is the current name; `gen_ai.system` the one receivers
            // built on semconv before 1.37 still read.
            attrs.push(s("gen_ai.provider.name", p));
            attrs.push(s("gen_ai.system", p));
        }
        if let Some(m) = &self.model {
            attrs.push(s("gen_ai.request.model", m.as_str()));
            attrs.push(s("gen_ai.response.model", m.as_str()));
        }
        if let Some(session) = &self.session {
            attrs.push(s("gen_ai.conversation.id", session.as_str()));
        }
        let u = &run.usage;
        if u.cache_read_tokens > 0 {
            attrs.push(int(
                "gen_ai.usage.cache_read.input_tokens",
                u.cache_read_tokens,
            ));
        }
        if u.cache_write_tokens > 0 {
            attrs.push(int(
                "gen_ai.usage.cache_creation.input_tokens",
                u.cache_write_tokens,
            ));
        }
        if let Some(c) = u.cost_usd {
            attrs.push(kv("shopfloor.usage.cost_usd", Value::DoubleValue(c)));
        }
        if let Some(t) = run.ticket {
            attrs.push(int("shopfloor.ticket.id", t));
        }
        if run.attempt > 0 {
            attrs.push(int("shopfloor.run.attempt", u64::from(run.attempt)));
        }
        if let Some(b) = &run.branch {
            attrs.push(s("shopfloor.run.branch", b.as_str()));
        }
        if let Some(sb) = &run.sandbox {
            attrs.push(s("shopfloor.sandbox", sb.as_str()));
        }
        if let Some(o) = &run.outcome {
            // The factory's own words on how the run ended, never the agent's.
            attrs.push(s("shopfloor.run.outcome", o.as_str()));
        }
        if self.errors > 0 {
            attrs.push(int("shopfloor.run.errors", self.errors));
        }
        if self.opts.content {
            if !self.inputs.is_empty() {
                attrs.push(s(
                    "gen_ai.input.messages",
                    serde_json::Value::Array(std::mem::take(&mut self.inputs)).to_string(),
                ));
            }
            if !self.outputs.is_empty() {
                let finish = if run.state == RunState::Succeeded {
                    "stop"
                } else {
                    "error"
                };
                let msg = serde_json::json!([{
                    "role": "assistant",
                    "parts": std::mem::take(&mut self.outputs),
                    "finish_reason": finish,
                }]);
                attrs.push(s("gen_ai.output.messages", msg.to_string()));
            }
            if self.messages_cut {
                attrs.push(kv("shopfloor.messages.truncated", Value::BoolValue(true)));
            }
        }
        let mut root = Span {
            trace_id: self.trace.to_vec(),
            span_id: self.root.to_vec(),
            name: format!("invoke_agent {}", run.agent),
            // The agent runs on this machine, as a process the factory supervises.
            kind: SpanKind::Internal as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes: attrs,
            dropped_events_count: u32::try_from(self.errors)
                .unwrap_or(u32::MAX)
                .saturating_sub(self.events.len() as u32),
            events: std::mem::take(&mut self.events),
            ..Default::default()
        };
        match run.state {
            RunState::Failed | RunState::Interrupted => {
                let why = run.outcome.clone().unwrap_or_else(|| run.state.to_string());
                fail(&mut root, run.state.name(), &why);
            }
            RunState::Succeeded => {
                root.status = Some(Status {
                    code: StatusCode::Ok as i32,
                    ..Default::default()
                })
            }
            _ => {}
        }
        let mut out = Vec::with_capacity(self.spans.len() + 1);
        out.push(root);
        out.append(&mut self.spans);
        out
    }
}

/// Mark a span failed: error status with `message`, `error.type` set (once).
fn fail(span: &mut Span, error_type: &str, message: &str) {
    if span.attributes.iter().all(|a| a.key != "error.type") {
        span.attributes.push(s("error.type", error_type));
    }
    span.status = Some(Status {
        code: StatusCode::Error as i32,
        message: message.to_string(),
    });
}

/// A run's spans from its steps: the pure form of [`read_run_spans`].
pub fn run_spans<'a>(
    run: &Run,
    steps: impl IntoIterator<Item = &'a Step>,
    opts: &SpanOptions,
) -> Vec<Span> {
    let mut b = RunSpans::new(run, opts);
    for step in steps {
        b.push(step);
    }
    b.finish()
}

/// A stored run's spans, its steps read one at a time; payloads are brought inline only
/// when content is on (with it off no payload is read at all).
pub fn read_run_spans(
    store: &Store,
    run: RunId,
    opts: &SpanOptions,
) -> Result<Vec<Span>, TraceError> {
    let r = store.run(run)?.ok_or(TraceError::RunNotFound(run))?;
    let mut b = RunSpans::new(&r, opts);
    store.for_each_step(run, |mut step| {
        if opts.content {
            store.inline_step(&mut step)?;
        }
        b.push(&step);
        Ok(())
    })?;
    Ok(b.finish())
}

/// Spans as OTLP export requests, each under the span and byte bounds above, every one
/// carrying the resource (`service.name`, `service.version`, `shopfloor.workspace`).
pub fn export_requests(spans: Vec<Span>, service: &Service) -> Vec<ExportTraceServiceRequest> {
    let resource = Resource {
        attributes: vec![
            s("service.name", service.name.as_str()),
            s("service.version", env!("CARGO_PKG_VERSION")),
            s("shopfloor.workspace", service.workspace.as_str()),
        ],
        ..Default::default()
    };
    let scope = InstrumentationScope {
        name: SCOPE.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    };
    let wrap = |spans: Vec<Span>| ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource.clone()),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope.clone()),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut out = Vec::new();
    let mut batch = Vec::new();
    let mut bytes = 0usize;
    for span in spans {
        let len = span.encoded_len();
        if !batch.is_empty()
            && (batch.len() >= MAX_REQUEST_SPANS || bytes + len > MAX_REQUEST_BYTES)
        {
            out.push(wrap(std::mem::take(&mut batch)));
            bytes = 0;
        }
        bytes += len;
        batch.push(span);
    }
    if !batch.is_empty() {
        out.push(wrap(batch));
    }
    out
}

/// Write a run as OTLP/JSON: one `ExportTraceServiceRequest` a line, the form the
/// OpenTelemetry Collector's `file` exporter writes and its `otlpjsonfile` receiver reads.
/// Returns the number of lines.
pub fn export_otlp_json(
    store: &Store,
    run: RunId,
    opts: &SpanOptions,
    service: &Service,
    out: &mut dyn Write,
) -> Result<u64, TraceError> {
    let spans = read_run_spans(store, run, opts)?;
    let mut n = 0u64;
    for req in export_requests(spans, service) {
        let mut line = serde_json::to_vec(&req).map_err(|e| {
            TraceError::Store(StoreError::Invalid(format!(
                "cannot encode run {run}'s spans as JSON: {e}"
            )))
        })?;
        line.push(b'\n');
        out.write_all(&line).map_err(TraceError::Write)?;
        n += 1;
    }
    out.flush().map_err(TraceError::Write)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Usage;

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
}

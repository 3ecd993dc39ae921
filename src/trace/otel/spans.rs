//! A run's span tree from its steps: the agent span, tool and memory-recall children, errors.

use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{
    Span, Status, span::Event, span::SpanKind, status::StatusCode,
};

use super::{
    MAX_EVENTS, MAX_MESSAGES_BYTES, MAX_TEXT_BYTES, SpanOptions, int, is_memory_recall, kv, nanos,
    provider, s, span_id, trace_id,
};
use crate::model::{Lifecycle, Payload, Run, RunId, RunState, Step, StepKind};
use crate::safe_text::clip_bytes as clip;
use crate::store::Store;
use crate::trace::TraceError;

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

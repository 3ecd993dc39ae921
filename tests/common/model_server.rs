//! Scripted model servers: the vendors' APIs, played from a script, for running the real
//! Claude Code and Codex CLIs offline.
//!
//! - [`Api::Anthropic`]: the Messages API as Claude Code calls it (`POST /v1/messages`,
//!   always streamed): `message_start`, `ping`, per content block `content_block_start` /
//!   `content_block_delta` (`text_delta`, `input_json_delta`) / `content_block_stop`, then
//!   `message_delta` (stop reason, usage) and `message_stop`.
//! - [`Api::OpenAi`]: the Responses API as Codex calls it (`POST /v1/responses`, streamed):
//!   `response.created`, per output item `response.output_item.added`, its deltas
//!   (`output_text.delta`, `function_call_arguments.delta`, `custom_tool_call_input.delta`)
//!   and `response.output_item.done`, then `response.completed` with usage.
//!
//! Each scripted request is answered with the script's next [`Turn`]; a turn may check the
//! request it answers (say, that it carries the previous tool's result) with
//! [`Turn::expect`]. Failures are collected, not panicked in the server's thread, and
//! [`ModelServer::finish`] reports them with the whole request log. Requests that are not
//! the agent's loop (Claude's token counts, or a request without tools such as a title or a
//! quota probe) are answered with a short text without consuming a turn, and logged as side
//! requests. Every request is logged with the instant it arrived.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    Anthropic,
    OpenAi,
}

type Check = Box<dyn Fn(&Request) -> Result<(), String> + Send + Sync>;

/// One answer of the model.
pub struct Turn {
    /// Text said before the call (or the whole answer when `call` is None).
    text: Option<String>,
    call: Option<Call>,
    checks: Vec<Check>,
}

enum Call {
    /// A tool call with JSON input: Anthropic `tool_use`, OpenAI `function_call`. A name
    /// `mcp__SERVER__TOOL` is sent to Codex as tool TOOL in namespace `mcp__SERVER`, the way
    /// Codex lists MCP tools to the model.
    Tool { name: String, input: Value },
    /// An OpenAI freeform tool call (Codex's `apply_patch`).
    Custom { name: String, input: String },
    /// An OpenAI client-side `tool_search_call` (Codex's `tool_search`).
    ToolSearch { arguments: Value },
}

impl Turn {
    /// The final answer: text, and the turn ends.
    pub fn text(text: &str) -> Turn {
        Turn {
            text: Some(text.to_string()),
            call: None,
            checks: vec![],
        }
    }

    /// A call of tool `name` with `input`.
    pub fn tool(name: &str, input: Value) -> Turn {
        Turn {
            text: None,
            call: Some(Call::Tool {
                name: name.to_string(),
                input,
            }),
            checks: vec![],
        }
    }

    /// A freeform tool call (OpenAI only), e.g. Codex's `apply_patch` with a patch.
    pub fn custom(name: &str, input: &str) -> Turn {
        Turn {
            text: None,
            call: Some(Call::Custom {
                name: name.to_string(),
                input: input.to_string(),
            }),
            checks: vec![],
        }
    }

    /// Codex's client-side tool search (OpenAI only).
    pub fn tool_search(query: &str) -> Turn {
        Turn {
            text: None,
            call: Some(Call::ToolSearch {
                arguments: json!({ "query": query, "limit": 8 }),
            }),
            checks: vec![],
        }
    }

    /// Say something before the call.
    pub fn saying(mut self, text: &str) -> Turn {
        self.text = Some(text.to_string());
        self
    }

    /// Check the request this turn answers.
    pub fn expect(
        mut self,
        check: impl Fn(&Request) -> Result<(), String> + Send + Sync + 'static,
    ) -> Turn {
        self.checks.push(Box::new(check));
        self
    }

    /// Check that the request carries the previous tool's result and that it contains
    /// `needle`.
    pub fn after_result_containing(self, needle: &str) -> Turn {
        let needle = needle.to_string();
        self.expect(move |r| match r.last_tool_result() {
            Some(out) if out.contains(&needle) => Ok(()),
            Some(out) => Err(format!(
                "the last tool result lacks {needle:?}: {}",
                cut(&out, 600)
            )),
            None => Err(format!("no tool result in the request (wanted {needle:?})")),
        })
    }
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Request {
    pub api: Api,
    pub at: Instant,
    /// The same moment on the wall clock, to compare with the factory's timestamps.
    pub wall: std::time::SystemTime,
    pub method: String,
    pub path: String,
    pub body: Value,
    /// Not part of the agent's loop: answered without a turn.
    pub side: bool,
}

impl Request {
    /// The text of the newest tool result in the conversation sent: Anthropic's last
    /// `tool_result` block, OpenAI's last `*_output` input item.
    pub fn last_tool_result(&self) -> Option<String> {
        match self.api {
            Api::Anthropic => {
                let msgs = self.body["messages"].as_array()?;
                msgs.iter()
                    .flat_map(|m| m["content"].as_array().into_iter().flatten())
                    .rfind(|b| b["type"] == "tool_result")
                    .map(|b| text_of(&b["content"]))
            }
            Api::OpenAi => {
                let items = self.body["input"].as_array()?;
                items
                    .iter()
                    .rfind(|i| i["type"].as_str().is_some_and(|t| t.ends_with("_output")))
                    .map(|i| {
                        if i["type"] == "tool_search_output" {
                            i["tools"].to_string()
                        } else {
                            text_of(&i["output"])
                        }
                    })
            }
        }
    }

    /// The names of the tools the request offers the model.
    pub fn tool_names(&self) -> Vec<String> {
        self.body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                t["name"]
                    .as_str()
                    .or(t["type"].as_str())
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    }
}

/// Text from a tool result's content: a string, or blocks with `text`, or anything else
/// as JSON.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .map(|b| {
                b["text"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or(b.to_string())
            })
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

fn cut(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

struct Shared {
    api: Api,
    turns: Mutex<std::collections::VecDeque<Turn>>,
    log: Mutex<Vec<Request>>,
    failures: Mutex<Vec<String>>,
}

/// A running scripted server on 127.0.0.1; it stops when dropped.
pub struct ModelServer {
    shared: Arc<Shared>,
    port: u16,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl ModelServer {
    pub fn anthropic(turns: Vec<Turn>) -> ModelServer {
        ModelServer::start(Api::Anthropic, turns)
    }

    pub fn openai(turns: Vec<Turn>) -> ModelServer {
        ModelServer::start(Api::OpenAi, turns)
    }

    pub fn start(api: Api, turns: Vec<Turn>) -> ModelServer {
        let shared = Arc::new(Shared {
            api,
            turns: Mutex::new(turns.into()),
            log: Mutex::default(),
            failures: Mutex::default(),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = shared.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = Router::new().fallback(answer).with_state(state);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
            });
        });
        ModelServer {
            shared,
            port,
            _shutdown: tx,
        }
    }

    /// `http://127.0.0.1:PORT`: Claude's `ANTHROPIC_BASE_URL`; Codex's provider base URL
    /// is this plus `/v1`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every request so far, side requests included.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.log.lock().unwrap().clone()
    }

    /// The agent loop's requests (those that took a turn).
    pub fn scripted(&self) -> Vec<Request> {
        self.requests().into_iter().filter(|r| !r.side).collect()
    }

    /// When the first request arrived.
    pub fn first_request_at(&self) -> Option<Instant> {
        self.shared.log.lock().unwrap().first().map(|r| r.at)
    }

    pub fn turns_left(&self) -> usize {
        self.shared.turns.lock().unwrap().len()
    }

    /// Panic, with the request log, if a check failed or turns were left unplayed.
    pub fn finish(&self) {
        let failures = self.shared.failures.lock().unwrap().clone();
        let left = self.turns_left();
        if failures.is_empty() && left == 0 {
            return;
        }
        let log: Vec<String> = self
            .requests()
            .iter()
            .map(|r| {
                format!(
                    "{} {}{} last tool result: {:?}",
                    r.method,
                    r.path,
                    if r.side { " (side)" } else { "" },
                    r.last_tool_result().map(|t| cut(&t, 300))
                )
            })
            .collect();
        panic!(
            "the model server's script did not play out: {failures:#?}; {left} turns left\nrequests:\n{}",
            log.join("\n")
        );
    }
}

async fn answer(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    _headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri.path().to_string();
    let mut req = Request {
        api: s.api,
        at: Instant::now(),
        wall: std::time::SystemTime::now(),
        method: method.to_string(),
        path: uri.to_string(),
        body,
        side: true,
    };
    let ours = match s.api {
        Api::Anthropic => path == "/v1/messages",
        Api::OpenAi => path == "/v1/responses",
    };
    if method != Method::POST || !(ours || path == "/v1/messages/count_tokens") {
        s.log.lock().unwrap().push(req);
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::from(
                r#"{"type":"error","error":{"type":"not_found_error","message":"not scripted"}}"#,
            ))
            .unwrap();
    }
    if path == "/v1/messages/count_tokens" {
        s.log.lock().unwrap().push(req);
        return json_response(json!({ "input_tokens": 100 }));
    }
    // The agent's loop streams and offers tools; anything else (a title, a summary, a quota
    // probe) is a side request.
    let streams = req.body["stream"] == true;
    let has_tools = req.body["tools"].as_array().is_some_and(|t| !t.is_empty());
    req.side = !(streams && has_tools);
    let turn = if req.side {
        Turn::text("ok")
    } else {
        let next = s.turns.lock().unwrap().pop_front();
        match next {
            Some(t) => {
                for check in &t.checks {
                    if let Err(e) = check(&req) {
                        let n = s.log.lock().unwrap().iter().filter(|r| !r.side).count() + 1;
                        s.failures
                            .lock()
                            .unwrap()
                            .push(format!("request {n} ({}): {e}", req.path));
                    }
                }
                t
            }
            None => {
                s.failures
                    .lock()
                    .unwrap()
                    .push(format!("a request beyond the script: {}", req.path));
                Turn::text("(the script is over)")
            }
        }
    };
    let n = s.log.lock().unwrap().len() + 1;
    let model = req.body["model"].as_str().unwrap_or("model").to_string();
    let streams = req.body["stream"] == true;
    s.log.lock().unwrap().push(req);
    match (s.api, streams) {
        (Api::Anthropic, true) => sse(anthropic_events(&turn, n, &model)),
        (Api::Anthropic, false) => json_response(anthropic_message(&turn, n, &model)),
        (Api::OpenAi, _) => sse(openai_events(&turn, n, &model)),
    }
}

fn json_response(v: Value) -> Response {
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(v.to_string()))
        .unwrap()
}

/// Server-sent events, one chunk per event, as the APIs send them.
fn sse(events: Vec<(String, Value)>) -> Response {
    let chunks: Vec<Result<Bytes, Infallible>> = events
        .into_iter()
        .map(|(name, data)| Ok(Bytes::from(format!("event: {name}\ndata: {data}\n\n"))))
        .collect();
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap()
}

/// A string cut in two, so clients see more than one delta.
fn halves(s: &str) -> Vec<String> {
    let mid = s
        .char_indices()
        .map(|(i, _)| i)
        .nth(s.chars().count() / 2)
        .unwrap_or(0);
    [&s[..mid], &s[mid..]]
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

const INPUT_TOKENS: u64 = 120;
const OUTPUT_TOKENS: u64 = 30;

fn anthropic_blocks(turn: &Turn, n: usize) -> Vec<Value> {
    let mut blocks = vec![];
    if let Some(t) = &turn.text {
        blocks.push(json!({ "type": "text", "text": t }));
    }
    match &turn.call {
        Some(Call::Tool { name, input }) => {
            blocks.push(json!({ "type": "tool_use", "id": format!("toolu_{n:04}"), "name": name, "input": input }))
        }
        Some(_) => panic!("Anthropic's API has no freeform tools or client tool search"),
        None => {}
    }
    blocks
}

fn stop_reason(turn: &Turn) -> &'static str {
    if turn.call.is_some() {
        "tool_use"
    } else {
        "end_turn"
    }
}

fn anthropic_message(turn: &Turn, n: usize, model: &str) -> Value {
    json!({
        "id": format!("msg_{n:04}"), "type": "message", "role": "assistant", "model": model,
        "content": anthropic_blocks(turn, n), "stop_reason": stop_reason(turn), "stop_sequence": null,
        "usage": { "input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS },
    })
}

fn anthropic_events(turn: &Turn, n: usize, model: &str) -> Vec<(String, Value)> {
    let mut ev = vec![];
    let mut push = |v: Value| ev.push((v["type"].as_str().unwrap().to_string(), v));
    push(json!({ "type": "message_start", "message": {
        "id": format!("msg_{n:04}"), "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": { "input_tokens": INPUT_TOKENS, "cache_creation_input_tokens": 0,
                   "cache_read_input_tokens": 0, "output_tokens": 1 },
    }}));
    push(json!({ "type": "ping" }));
    for (index, block) in anthropic_blocks(turn, n).into_iter().enumerate() {
        let (start, deltas) = if block["type"] == "text" {
            let text = block["text"].as_str().unwrap();
            (
                json!({ "type": "text", "text": "" }),
                halves(text)
                    .into_iter()
                    .map(|t| json!({ "type": "text_delta", "text": t }))
                    .collect::<Vec<_>>(),
            )
        } else {
            (
                json!({ "type": "tool_use", "id": block["id"], "name": block["name"], "input": {} }),
                halves(&block["input"].to_string())
                    .into_iter()
                    .map(|j| json!({ "type": "input_json_delta", "partial_json": j }))
                    .collect(),
            )
        };
        push(json!({ "type": "content_block_start", "index": index, "content_block": start }));
        for d in deltas {
            push(json!({ "type": "content_block_delta", "index": index, "delta": d }));
        }
        push(json!({ "type": "content_block_stop", "index": index }));
    }
    push(json!({ "type": "message_delta",
        "delta": { "stop_reason": stop_reason(turn), "stop_sequence": null },
        "usage": { "output_tokens": OUTPUT_TOKENS } }));
    push(json!({ "type": "message_stop" }));
    ev
}

fn openai_events(turn: &Turn, n: usize, model: &str) -> Vec<(String, Value)> {
    let resp_id = format!("resp_{n:04}");
    let mut ev: Vec<Value> = vec![];
    ev.push(json!({ "type": "response.created", "response": {
        "id": resp_id, "object": "response", "status": "in_progress", "model": model, "output": [] } }));
    let mut output = vec![];
    let mut index = 0;
    if let Some(text) = &turn.text {
        let id = format!("msg_{n:04}");
        ev.push(json!({ "type": "response.output_item.added", "output_index": index,
            "item": { "type": "message", "id": id, "role": "assistant", "status": "in_progress", "content": [] } }));
        ev.push(
            json!({ "type": "response.content_part.added", "item_id": id, "output_index": index,
            "content_index": 0, "part": { "type": "output_text", "text": "", "annotations": [] } }),
        );
        for d in halves(text) {
            ev.push(
                json!({ "type": "response.output_text.delta", "item_id": id, "output_index": index,
                "content_index": 0, "delta": d }),
            );
        }
        ev.push(
            json!({ "type": "response.output_text.done", "item_id": id, "output_index": index,
            "content_index": 0, "text": text }),
        );
        let item = json!({ "type": "message", "id": id, "role": "assistant", "status": "completed",
            "content": [{ "type": "output_text", "text": text, "annotations": [] }] });
        ev.push(
            json!({ "type": "response.output_item.done", "output_index": index, "item": item }),
        );
        output.push(item);
        index += 1;
    }
    let call_id = format!("call_{n:04}");
    match &turn.call {
        Some(Call::Tool { name, input }) => {
            let id = format!("fc_{n:04}");
            let args = input.to_string();
            let mut item = json!({ "type": "function_call", "id": id, "call_id": call_id,
                "name": name, "arguments": "", "status": "in_progress" });
            if let Some((ns, tool)) = name
                .strip_prefix("mcp__")
                .and_then(|rest| rest.split_once("__"))
            {
                item["namespace"] = json!(format!("mcp__{ns}"));
                item["name"] = json!(tool);
            }
            ev.push(json!({ "type": "response.output_item.added", "output_index": index, "item": item }));
            for d in halves(&args) {
                ev.push(
                    json!({ "type": "response.function_call_arguments.delta", "item_id": id,
                    "output_index": index, "delta": d }),
                );
            }
            ev.push(
                json!({ "type": "response.function_call_arguments.done", "item_id": id,
                "output_index": index, "arguments": args }),
            );
            item["arguments"] = json!(args);
            item["status"] = json!("completed");
            ev.push(
                json!({ "type": "response.output_item.done", "output_index": index, "item": item }),
            );
            output.push(item);
        }
        Some(Call::Custom { name, input }) => {
            let id = format!("ctc_{n:04}");
            let mut item = json!({ "type": "custom_tool_call", "id": id, "call_id": call_id,
                "name": name, "input": "", "status": "in_progress" });
            ev.push(json!({ "type": "response.output_item.added", "output_index": index, "item": item }));
            for d in halves(input) {
                ev.push(
                    json!({ "type": "response.custom_tool_call_input.delta", "item_id": id,
                    "call_id": call_id, "output_index": index, "delta": d }),
                );
            }
            ev.push(
                json!({ "type": "response.custom_tool_call_input.done", "item_id": id,
                "output_index": index, "input": input }),
            );
            item["input"] = json!(input);
            item["status"] = json!("completed");
            ev.push(
                json!({ "type": "response.output_item.done", "output_index": index, "item": item }),
            );
            output.push(item);
        }
        Some(Call::ToolSearch { arguments }) => {
            let item = json!({ "type": "tool_search_call", "id": format!("tsc_{n:04}"),
                "call_id": call_id, "execution": "client", "status": "completed", "arguments": arguments });
            ev.push(json!({ "type": "response.output_item.added", "output_index": index, "item": item }));
            ev.push(
                json!({ "type": "response.output_item.done", "output_index": index, "item": item }),
            );
            output.push(item);
        }
        None => {}
    }
    ev.push(json!({ "type": "response.completed", "response": {
        "id": resp_id, "object": "response", "status": "completed", "model": model, "output": output,
        "usage": { "input_tokens": INPUT_TOKENS, "input_tokens_details": { "cached_tokens": 0 },
                   "output_tokens": OUTPUT_TOKENS, "output_tokens_details": { "reasoning_tokens": 0 },
                   "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS } } }));
    ev.into_iter()
        .enumerate()
        .map(|(i, mut v)| {
            v["sequence_number"] = json!(i);
            (v["type"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

//! OpenTelemetry export, end to end with the real binary: a fixture agent's run exported
//! with `trace export --format otlp` (parents, names, GenAI attributes; no message text
//! unless `[telemetry] content = true`), and `shopfloor serve` posting each finished run
//! to a real OTLP/HTTP receiver: `tests/otlp_receiver.py`, which decodes every request with
//! the OpenTelemetry project's own Python protobuf bindings (installed from PyPI by
//! scripts/install-otlp-receiver.sh; absent, that test skips, and fails under CI=true).

use crate::common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Env;
use common::serve::Serve;
use common::wait_for;
use serde_json::Value;

/// Every message the scenario and its prompt carry holds `SECRET`: with content off, the
/// word must appear nowhere in what is exported.
const SCENARIO: &str = r#"
name = "otel"
model = "fixture-1"

[[step]]
say = "SECRET-SAY I will read the stock module first."

[[step]]
think = "SECRET-THINK reservations live in _levels"

[[step]]
read = "inventory/stock.py"

[[step]]
run = "echo SECRET-RUN; exit 3"

[[step]]
memory_search = "SECRET-QUERY stock reservations"

[[step]]
say = "SECRET-DONE"
"#;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The demo project with `shopfloor.toml` and the scenario committed, as workspace `name`.
fn project(name: &str, config: &str) -> Env {
    let env = Env::new();
    let root = env.repo.path();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/repo"),
        root,
    );
    std::fs::write(root.join("shopfloor.toml"), config).unwrap();
    std::fs::write(root.join("otel.toml"), SCENARIO).unwrap();
    common::commit_all(root, "otel fixture");
    env.ok(&["workspace", "create", name]);
    env
}

/// The spans of OTLP/JSON export lines, each with its resource's attributes beside it.
fn otlp_spans(text: &str) -> Vec<(Value, Value)> {
    let mut out = vec![];
    for line in text.lines() {
        let req: Value = serde_json::from_str(line).unwrap();
        for rs in req["resourceSpans"].as_array().unwrap() {
            for ss in rs["scopeSpans"].as_array().unwrap() {
                assert_eq!(ss["scope"]["name"], "shopfloor");
                for span in ss["spans"].as_array().unwrap() {
                    out.push((span.clone(), rs["resource"]["attributes"].clone()));
                }
            }
        }
    }
    out
}

/// An OTLP/JSON attribute's value, unwrapped: strings as strings, ints as numbers (OTLP/JSON
/// writes them as strings), booleans and doubles as they are.
fn attr(attrs: &Value, key: &str) -> Option<Value> {
    let kv = attrs.as_array()?.iter().find(|kv| kv["key"] == key)?;
    let v = &kv["value"];
    if let Some(s) = v.get("stringValue") {
        return Some(s.clone());
    }
    if let Some(i) = v.get("intValue") {
        let n: i64 = match i {
            Value::String(s) => s.parse().unwrap(),
            n => n.as_i64().unwrap(),
        };
        return Some(n.into());
    }
    v.get("boolValue").or(v.get("doubleValue")).cloned()
}

fn by_name<'a>(spans: &'a [(Value, Value)], name: &str) -> &'a Value {
    &spans
        .iter()
        .find(|(s, _)| s["name"] == name)
        .unwrap_or_else(|| {
            panic!(
                "no span `{name}` among {:?}",
                spans.iter().map(|(s, _)| &s["name"]).collect::<Vec<_>>()
            )
        })
        .0
}

#[test]
fn trace_export_otlp_writes_the_span_tree_and_keeps_text_out_unless_asked() {
    let env = project("otel-file", "");
    // A real fixture agent run, imported as Claude Code stream-json.
    let out = Command::new(assert_cmd::cargo::cargo_bin("shopfloor"))
        .current_dir(env.repo.path())
        .env("SHOPFLOOR_PROMPT", "SECRET-PROMPT add release()")
        .env_remove("SHOPFLOOR_MCP_URL")
        .env_remove("SHOPFLOOR_MODEL")
        .args(["fixture-agent", "otel.toml"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = env.repo.path().join("agent.jsonl");
    std::fs::write(&log, &out.stdout).unwrap();
    env.ok(&[
        "trace",
        "import",
        log.to_str().unwrap(),
        "--format",
        "claude-stream",
    ]);

    let text = env.ok(&["trace", "export", "1", "--format", "otlp"]);
    assert!(!text.contains("SECRET"), "message text leaked:\n{text}");
    let spans = otlp_spans(&text);

    let root = by_name(&spans, "invoke_agent claude-code");
    let trace_id = root["traceId"].as_str().unwrap();
    assert!(
        trace_id.len() == 32 && trace_id.chars().all(|c| c.is_ascii_hexdigit()),
        "OTLP/JSON ids are hex: {trace_id}"
    );
    assert_eq!(root["parentSpanId"], "");
    assert_eq!(root["kind"], 1, "internal");
    let a = &root["attributes"];
    assert_eq!(attr(a, "gen_ai.operation.name").unwrap(), "invoke_agent");
    assert_eq!(attr(a, "gen_ai.agent.name").unwrap(), "claude-code");
    assert_eq!(attr(a, "gen_ai.request.model").unwrap(), "fixture-1");
    assert_eq!(attr(a, "gen_ai.response.model").unwrap(), "fixture-1");
    assert!(
        attr(a, "gen_ai.usage.input_tokens")
            .unwrap()
            .as_i64()
            .unwrap()
            > 0
    );
    assert!(
        attr(a, "gen_ai.usage.output_tokens")
            .unwrap()
            .as_i64()
            .unwrap()
            > 0
    );
    assert_eq!(attr(a, "shopfloor.run.id").unwrap(), 1);
    assert_eq!(attr(a, "shopfloor.workspace").unwrap(), "otel-file");
    assert_eq!(attr(a, "shopfloor.run.state").unwrap(), "imported");
    assert!(attr(a, "gen_ai.input.messages").is_none());
    let resource = &spans[0].1;
    assert_eq!(attr(resource, "service.name").unwrap(), "shopfloor");

    // Every other span is a child of the run's, in its trace.
    for (s, _) in &spans {
        assert_eq!(s["traceId"], root["traceId"]);
        if s["spanId"] != root["spanId"] {
            assert_eq!(s["parentSpanId"], root["spanId"], "{}", s["name"]);
        }
    }
    let read = by_name(&spans, "execute_tool Read");
    assert_eq!(
        attr(&read["attributes"], "gen_ai.operation.name").unwrap(),
        "execute_tool"
    );
    assert_eq!(
        attr(&read["attributes"], "gen_ai.tool.name").unwrap(),
        "Read"
    );
    assert!(attr(&read["attributes"], "gen_ai.tool.call.id").is_some());
    assert!(
        read["endTimeUnixNano"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= read["startTimeUnixNano"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
    );

    let bash = by_name(&spans, "execute_tool Bash");
    assert_eq!(
        bash["status"]["code"], 2,
        "a command that exits 3 is an error"
    );
    assert_eq!(attr(&bash["attributes"], "process.exit.code").unwrap(), 3);

    let recall = by_name(&spans, "search_memory otel-file");
    let ra = &recall["attributes"];
    assert_eq!(attr(ra, "gen_ai.operation.name").unwrap(), "search_memory");
    assert_eq!(
        attr(ra, "gen_ai.tool.name").unwrap(),
        "mcp__shopfloor__memory_search"
    );
    assert!(attr(ra, "gen_ai.memory.query.text").is_none());
    assert_eq!(
        recall["kind"], 3,
        "client: a call to the factory's MCP server"
    );

    // The same ids on every export.
    let again = env.ok(&["trace", "export", "1", "--format", "otlp"]);
    assert_eq!(span_ids(&otlp_spans(&again)), span_ids(&spans));

    // With content on, the conversation is there: prompt, reply, reasoning, arguments,
    // results, the memory query.
    std::fs::write(
        env.repo.path().join("shopfloor.toml"),
        "[telemetry]\ncontent = true\nservice_name = \"factory-a\"\n",
    )
    .unwrap();
    let file = env.repo.path().join("run1.otlp.jsonl");
    let out = env
        .cmd()
        .args(["trace", "export", "1", "--format", "otlp", "-o"])
        .arg(&file)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("as OpenTelemetry spans"), "{said}");
    let with = std::fs::read_to_string(&file).unwrap();
    let spans_on = otlp_spans(&with);
    assert_eq!(span_ids(&spans_on), span_ids(&spans));
    let root = by_name(&spans_on, "invoke_agent claude-code");
    let input = attr(&root["attributes"], "gen_ai.input.messages").unwrap();
    let input: Value = serde_json::from_str(input.as_str().unwrap()).unwrap();
    assert_eq!(input[0]["role"], "user");
    assert!(
        input[0]["parts"][0]["content"]
            .as_str()
            .unwrap()
            .contains("SECRET-PROMPT")
    );
    let output = attr(&root["attributes"], "gen_ai.output.messages").unwrap();
    for s in ["SECRET-SAY", "SECRET-THINK", "SECRET-DONE", "\"reasoning\""] {
        assert!(output.as_str().unwrap().contains(s), "{s} in {output}");
    }
    let bash = by_name(&spans_on, "execute_tool Bash");
    for key in ["gen_ai.tool.call.arguments", "gen_ai.tool.call.result"] {
        let v = attr(&bash["attributes"], key).unwrap();
        assert!(v.as_str().unwrap().contains("SECRET-RUN"), "{key}: {v}");
    }
    let recall = by_name(&spans_on, "search_memory otel-file");
    assert_eq!(
        attr(&recall["attributes"], "gen_ai.memory.query.text").unwrap(),
        "SECRET-QUERY stock reservations"
    );
    assert_eq!(attr(&spans_on[0].1, "service.name").unwrap(), "factory-a");

    // JSONL is still the default, and an unknown format is refused by name.
    let jsonl = env.ok(&["trace", "export", "1"]);
    assert!(jsonl.lines().next().unwrap().contains("\"type\""));
    let (_, err) = env.fails(&["trace", "export", "1", "--format", "zipkin"]);
    assert!(err.contains("otlp"), "{err}");
}

#[test]
fn a_bad_telemetry_config_names_the_key_and_what_to_write() {
    let env = project("otel-bad", "");
    for (toml, says) in [
        (
            "[telemetry]\nendpoint = \"localhost:4318\"\n",
            "shopfloor.toml:2: [telemetry] endpoint = \"localhost:4318\" is not an http:// URL",
        ),
        (
            "[telemetry]\nendpoint = \"https://otel.example.com\"\n",
            "run an OpenTelemetry Collector on this machine",
        ),
        (
            "[telemetry]\nendpiont = \"http://x\"\n",
            "unknown field `endpiont`",
        ),
        (
            "[telemetry]\nheaders = { host = \"x\" }\n",
            "set by the exporter itself",
        ),
    ] {
        std::fs::write(env.repo.path().join("shopfloor.toml"), toml).unwrap();
        let (_, err) = env.fails(&["trace", "list"]);
        assert!(err.contains(says), "{toml}: {err}");
    }
}

fn span_ids(spans: &[(Value, Value)]) -> BTreeSet<String> {
    spans
        .iter()
        .map(|(s, _)| s["spanId"].as_str().unwrap().to_string())
        .collect()
}

/// `tests/otlp_receiver.py` running in the venv `scripts/install-otlp-receiver.sh` made,
/// writing what it decodes to `out`. Killed on drop.
struct Receiver {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl Receiver {
    /// The receiver, started; None after one line saying why when the venv is missing (a
    /// failure under CI=true, which installs it).
    fn start(dir: &Path, args: &[&str]) -> Option<Receiver> {
        let venv = std::env::var_os("SHOPFLOOR_OTLP_PY")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                    .join(".cache/shopfloor/otlp-py")
            });
        let python = venv.join("bin/python");
        if !(python.is_file() && venv.join(".installed").is_file()) {
            let why = format!(
                "the OTLP receiver's Python packages are not installed in {}; run scripts/install-otlp-receiver.sh",
                venv.display()
            );
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
            eprintln!("skipping: {why}");
            return None;
        }
        let out = dir.join("received.jsonl");
        let mut child = Command::new(python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/otlp_receiver.py"))
            .arg(&out)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the receiver did not start: {line:?}"));
        Some(Receiver { child, port, out })
    }

    /// Every line it has written so far.
    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_posts_each_finished_run_to_a_real_otlp_receiver() {
    let dir = tempfile::tempdir().unwrap();
    // The first request is answered 503: the exporter must try again.
    let Some(rx) = Receiver::start(dir.path(), &["--fail-first", "1"]) else {
        return;
    };
    let config = format!(
        r#"
[factory]
default_agent = "otel"
concurrency = 1
max_attempts = 1
timeout_s = 120

[sandbox]
backend = "worktree"

[agents.otel]
adapter = "fixture"
scenario = "otel.toml"

[telemetry]
endpoint = "http://127.0.0.1:{}"
headers = {{ x-test = "from-shopfloor" }}
"#,
        rx.port
    );
    let env = project("otel-live", &config);
    let serve = Serve::start(&env);
    env.ok(&["ticket", "add", "SECRET-TITLE add Stock.release()"]);

    let run = wait_for("the run to end", Duration::from_secs(120), || {
        let runs = env.json(&["run", "list", "--json"]);
        runs.as_array()
            .unwrap()
            .iter()
            .find(|r| r["state"] != "running" && r["state"] != "preparing")
            .cloned()
    });
    let ended_seen = Instant::now();
    assert_eq!(run["state"], "succeeded", "{run}");
    let run_id = run["id"].as_u64().unwrap();

    let spans = wait_for(
        "the run's spans at the receiver",
        Duration::from_secs(60),
        || {
            let got = rx.received();
            if let Some(e) = got.iter().find(|l| l.get("error").is_some()) {
                panic!("the receiver could not decode a request: {e}");
            }
            got.iter()
                .any(|s| s["name"] == "invoke_agent otel")
                .then_some(got)
        },
    );
    let latency = ended_seen.elapsed();
    let ended_ns = run["ended"]
        .as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_nanosecond();
    let received_ns = spans[0]["received"].as_u64().unwrap();
    eprintln!(
        "received {} spans of run {run_id} in {} request(s): {} ms after the run ended (seen by the test {} ms after it saw the end; the first try was refused with 503)",
        spans.len(),
        spans
            .iter()
            .map(|s| s["request"].as_u64().unwrap())
            .collect::<BTreeSet<_>>()
            .len(),
        (received_ns as i128 - ended_ns) / 1_000_000,
        latency.as_millis()
    );

    let text = serde_json::to_string(&spans).unwrap();
    assert!(!text.contains("SECRET"), "message text leaked: {text}");
    let find = |name: &str| {
        spans
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no span `{name}` in {text}"))
    };
    let root = find("invoke_agent otel");
    assert_eq!(root["parent_span_id"], "");
    let a = &root["attributes"];
    assert_eq!(a["gen_ai.operation.name"], "invoke_agent");
    assert_eq!(a["gen_ai.agent.name"], "otel");
    assert_eq!(a["gen_ai.request.model"], "fixture-1");
    assert_eq!(a["shopfloor.run.id"], run_id);
    assert_eq!(a["shopfloor.ticket.id"], 1);
    assert_eq!(a["shopfloor.workspace"], "otel-live");
    assert_eq!(a["shopfloor.run.state"], "succeeded");
    assert_eq!(a["shopfloor.sandbox"], "worktree");
    assert_eq!(
        a["gen_ai.usage.input_tokens"], run["usage"]["input_tokens"],
        "the run's own token counts"
    );
    assert!(a["gen_ai.usage.output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(root["status"]["code"], 1, "ok");
    assert_eq!(root["resource"]["service.name"], "shopfloor");
    assert_eq!(root["headers"]["x-test"], "from-shopfloor");

    for s in &spans {
        assert_eq!(s["trace_id"], root["trace_id"]);
        if s["span_id"] != root["span_id"] {
            assert_eq!(s["parent_span_id"], root["span_id"], "{}", s["name"]);
            assert!(s["attributes"]["gen_ai.tool.call.id"].is_string(), "{s}");
            assert!(s["start"].as_u64() >= root["start"].as_u64());
            assert!(s["end"].as_u64() <= root["end"].as_u64());
        }
    }
    let bash = find("execute_tool Bash");
    assert_eq!(bash["attributes"]["gen_ai.operation.name"], "execute_tool");
    assert_eq!(bash["status"]["code"], 2, "error");
    assert_eq!(bash["attributes"]["process.exit.code"], 3);
    assert_eq!(find("execute_tool Read")["status"]["code"], 0);
    // A real recall through the factory's MCP server.
    let recall = find("search_memory otel-live");
    assert_eq!(
        recall["attributes"]["gen_ai.operation.name"],
        "search_memory"
    );
    assert_eq!(recall["attributes"]["gen_ai.memory.store.id"], "otel-live");
    assert_eq!(recall["status"]["code"], 0, "the recall answered");

    // `trace export --format otlp` through the running factory gives the same spans.
    let exported =
        otlp_spans(&env.ok(&["trace", "export", &run_id.to_string(), "--format", "otlp"]));
    let received: BTreeSet<String> = spans
        .iter()
        .map(|s| s["span_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(span_ids(&exported), received);
    // Sent once: nothing more arrives for the same run.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(rx.received().len(), spans.len());
    drop(serve);
}

/// A workspace opened in this process (no factory), with `config` as its shopfloor.toml,
/// holding `n` finished runs of two steps each (a tool call and its result).
fn workspace_with_runs(
    env: &Env,
    name: &str,
    config: &str,
    n: usize,
) -> std::sync::Arc<shopfloor::workspace::Workspace> {
    use shopfloor::model::{Run, RunState, Step, StepKind};
    std::fs::write(env.repo.path().join("shopfloor.toml"), config).unwrap();
    let home = shopfloor::workspace::Home::at(env.home.path().to_path_buf());
    let info = home.create(name, env.repo.path()).unwrap();
    let ws = shopfloor::workspace::Workspace::open(info).unwrap();
    for _ in 0..n {
        let now = jiff::Timestamp::now();
        let run = ws
            .store
            .create_run(Run {
                source: "test".into(),
                ..Run::new("claude", RunState::Running, now)
            })
            .unwrap();
        let step = |seq, parent, kind| Step {
            run: run.id,
            seq,
            ts: now,
            agent: "claude".into(),
            parent,
            kind,
        };
        ws.store
            .append_steps(
                run.id,
                vec![
                    step(
                        0,
                        None,
                        StepKind::ToolCall {
                            call_id: Some(format!("call-{}", run.id)),
                            name: "Read".into(),
                            input: "{}".into(),
                        },
                    ),
                    step(
                        1,
                        Some(0),
                        StepKind::ToolResult {
                            call_id: Some(format!("call-{}", run.id)),
                            output: "ok".into(),
                            is_error: false,
                        },
                    ),
                ],
            )
            .unwrap();
        ws.store
            .update_run(run.id, |r| {
                r.state = RunState::Succeeded;
                r.ended = Some(jiff::Timestamp::now());
            })
            .unwrap();
    }
    std::sync::Arc::new(ws)
}

fn run_ended(run: u64) -> shopfloor::wire::FactoryEvent {
    shopfloor::wire::FactoryEvent::RunState {
        run,
        ticket: None,
        agent: "claude".into(),
        state: shopfloor::model::RunState::Succeeded,
        sandbox: "worktree".into(),
        detail: None,
    }
}

/// The exporter reads a broadcast stream it can fall behind: the runs whose events it
/// missed are found again in the store and sent, each once.
#[tokio::test(flavor = "current_thread")]
async fn an_exporter_that_fell_behind_rescans_and_sends_every_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let Some(rx) = Receiver::start(dir.path(), &[]) else {
        return;
    };
    let env = Env::new();
    let config = format!("[telemetry]\nendpoint = \"http://127.0.0.1:{}\"\n", rx.port);
    // Runs end after the exporter starts (it exports what ends from then on).
    let (tx, events) = tokio::sync::broadcast::channel(2);
    let ws = workspace_with_runs(&env, "lag", &config, 0);
    let exporter = shopfloor::telemetry::start(ws.clone(), events).expect("an endpoint is set");
    let ws_for_runs = ws.clone();
    let runs: Vec<u64> = tokio::task::spawn_blocking(move || {
        (0..10)
            .map(|_| {
                let now = jiff::Timestamp::now();
                let r = ws_for_runs
                    .store
                    .create_run(shopfloor::model::Run {
                        ended: Some(now),
                        source: "test".into(),
                        ..shopfloor::model::Run::new(
                            "claude",
                            shopfloor::model::RunState::Succeeded,
                            now,
                        )
                    })
                    .unwrap();
                r.id
            })
            .collect()
    })
    .await
    .unwrap();
    // Ten ends on a channel of two, before the exporter's task gets a turn: it lags by 8.
    for id in &runs {
        tx.send(run_ended(*id)).unwrap();
    }
    let started = Instant::now();
    let roots = loop {
        let got: Vec<Value> = rx
            .received()
            .into_iter()
            .filter(|s| s["name"] == "invoke_agent claude")
            .collect();
        if got.len() >= runs.len() || started.elapsed() > Duration::from_secs(30) {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    exporter.finish(Duration::from_secs(5)).await;
    let mut ids: Vec<u64> = roots
        .iter()
        .map(|s| s["attributes"]["shopfloor.run.id"].as_u64().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, runs, "every run once, the 8 missed events included");
    eprintln!(
        "after a lag of 8 events: {} runs exported in {} ms",
        ids.len(),
        started.elapsed().as_millis()
    );
}

/// A receiver that is not there costs the factory nothing: the exporter logs, retries in
/// its own task, and its shutdown is bounded by the grace it is given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_never_holds_up_the_stream_or_the_shutdown() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = Env::new();
    let ws = workspace_with_runs(
        &env,
        "dead",
        &format!("[telemetry]\nendpoint = \"http://127.0.0.1:{port}\"\n"),
        3,
    );
    let (tx, events) = tokio::sync::broadcast::channel(16);
    let exporter = shopfloor::telemetry::start(ws, events).unwrap();
    for id in 1..=3 {
        tx.send(run_ended(id)).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    exporter.finish(Duration::from_secs(1)).await;
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "finish took {:?}",
        t.elapsed()
    );
}

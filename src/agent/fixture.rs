//! The fixture agent: `shopfloor fixture-agent SCENARIO.toml`, a deterministic stand-in for
//! a coding agent. It prints real Claude Code stream-json (`system/init`, `assistant`
//! messages with text/thinking/tool_use blocks, `user` messages with tool_result blocks and
//! the `tool_use_result` sidecar, a final `result` with usage and `total_cost_usd`) while it
//! really does what it says in its working directory: writes and edits files, runs commands
//! with `sh -c`, fails, hangs, or floods. The factory, the TUI and the tests run it exactly
//! like `claude`, without an API key or a network.
//!
//! # Scenario format
//!
//! ```toml
//! name = "add-release"        # required
//! model = "fixture-1"         # optional; $SHOPFLOOR_MODEL overrides it
//! echo_prompt = true          # optional (default true): print the prompt as the first user message
//!
//! [[step]]
//! say = "I will add release() for: {prompt}"   # assistant text; {prompt} is the prompt
//! [[step]]
//! think = "read the file first"                # a thinking block
//! [[step]]
//! read = "inventory/stock.py"                  # Read tool
//! [[step]]
//! write = { path = "inventory/stock.py", content = "..." }     # Write tool: create or overwrite
//! [[step]]
//! append = { path = "inventory/stock.py", content = "..." }    # Write tool with old + new content
//! [[step]]
//! replace = { path = "inventory/stock.py", old = "a", new = "b" }  # Edit tool (first match)
//! [[step]]
//! run = "python3 -m unittest discover -s tests"  # Bash tool: `sh -c` in the working directory
//! expect_exit = 0             # optional: another exit code stops the agent with an error result, exit 1
//! [[step]]
//! memory_write = { kind = "lesson", text = "..." }  # MCP tool `mcp__shopfloor__memory_write`
//! [[step]]
//! memory_search = "why is the pool size 8"     # MCP tool `mcp__shopfloor__memory_search`
//! [[step]]
//! lease = ["src/db/**"]                        # MCP tools `lease` / `release`: paths to claim or give back
//! [[step]]
//! review_submit = { verdict = "approve", summary = "...", comments = [{ path = "a.py", line = 3, text = "..." }] }
//! [[step]]
//! sleep_ms = 200              # go quiet for a while
//! [[step]]
//! flood = { per_second = 1000, seconds = 5 }   # or `lines = 1000`; $SHOPFLOOR_FLOOD_SECONDS overrides `seconds`
//! [[step]]
//! fail = 3                    # print an error result and exit with this code (1..=255)
//! [[step]]
//! hang = true                 # stop printing and sleep until killed
//! ```
//!
//! Each `[[step]]` has exactly one action, and may be conditional on the prompt:
//! `when_prompt_contains = "Lesson:"` runs it only if the prompt has the text,
//! `unless_prompt_contains = "Lesson:"` only if it does not (so a scenario can fail first and
//! pass on the retry whose prompt carries the lesson). Paths are relative to the working
//! directory and may not leave it. Unknown keys, a step with no or two actions, and bad
//! values are errors naming the line.
//!
//! Tool failures behave like Claude Code's: a missing file or an `old` text not found is an
//! error tool_result and the agent goes on; a command's non-zero exit is an error
//! tool_result starting `Exit code N`.
//!
//! MCP steps (`memory_write`, `memory_search`, `lease`, `release`) are real calls: like
//! Claude Code, the agent reads `--mcp-config FILE`, spawns the `shopfloor` stdio server it
//! names (`shopfloor mcp --socket ... --token-file ...`, written by the factory) on first
//! use, and prints the call and its real result. With no config the result is an error
//! saying no server is configured, and the agent goes on.
//!
//! A scenario path that does not exist but names a built-in (`success`, `hang`, ...; see
//! [`BUILTIN`]) plays that one, so the binary works anywhere, in a container too.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::AgentError;
use super::mcp_client::McpClient;

mod scenario;
#[cfg(test)]
mod tests;

pub use scenario::{BUILTIN, Move, Scenario, ScenarioStep};

/// Play `scenario` in the current directory, printing stream-json to `out` (and what a
/// real CLI prints to stderr to `err`). The prompt is the file `$SHOPFLOOR_PROMPT_FILE`, or
/// `$SHOPFLOOR_PROMPT` without one. Returns the exit code the process should end with;
/// a `hang` step never returns.
pub fn run_fixture_agent(
    scenario: &Path,
    mcp_config: Option<&Path>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, AgentError> {
    let sc = Scenario::load(scenario)?;
    let cwd = std::env::current_dir().map_err(AgentError::Output)?;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let opts = Options {
        // The whole prompt: a long one is only in its file (see `agent::INLINE_PROMPT_MAX`).
        prompt: env("SHOPFLOOR_PROMPT_FILE")
            .and_then(|f| std::fs::read_to_string(f).ok())
            .or_else(|| env("SHOPFLOOR_PROMPT")),
        model: env("SHOPFLOOR_MODEL"),
        run: env("SHOPFLOOR_RUN"),
        mcp_config: mcp_config.map(|p| cwd.join(p)),
        flood_seconds: env("SHOPFLOOR_FLOOD_SECONDS").and_then(|s| s.parse().ok()),
    };
    play(&sc, &cwd, &opts, out, err)
}

/// What the environment tells the agent (kept apart so tests need not set env vars).
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub prompt: Option<String>,
    pub model: Option<String>,
    pub run: Option<String>,
    /// Claude Code's `--mcp-config`: where the `shopfloor` MCP server is named.
    pub mcp_config: Option<PathBuf>,
    pub flood_seconds: Option<f64>,
}

struct Agent<'a> {
    out: &'a mut dyn Write,
    cwd: PathBuf,
    session: String,
    model: String,
    ids: u64,
    turns: u64,
    input_tokens: u64,
    output_tokens: u64,
    last_text: String,
    started: Instant,
}

/// A UUID-shaped id, the same for the same inputs.
fn det_uuid(seed: &str) -> String {
    let h = blake3::hash(seed.as_bytes()).to_hex();
    let h = h.as_str();
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// Rough token count for usage figures: ~4 characters a token.
fn tokens(s: &str) -> u64 {
    (s.len() as u64).div_ceil(4)
}

impl Agent<'_> {
    fn emit(&mut self, v: &Value) -> Result<(), AgentError> {
        let mut line = serde_json::to_vec(v).map_err(|e| AgentError::Output(e.into()))?;
        line.push(b'\n');
        self.out.write_all(&line).map_err(AgentError::Output)?;
        // Flushed per line: a live reader (the factory, a test) sees each event as it
        // happens, which is what hang and slow scenarios are for.
        self.out.flush().map_err(AgentError::Output)
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.ids += 1;
        format!("{prefix}_fixture_{:04}", self.ids)
    }

    fn uuid(&mut self) -> String {
        self.ids += 1;
        det_uuid(&format!("{}/{}", self.session, self.ids))
    }

    fn assistant(&mut self, content: Value) -> Result<(), AgentError> {
        self.turns += 1;
        let out_tokens = tokens(&content.to_string());
        // The context grows with every turn, like a real conversation's.
        let in_tokens = 1500 + self.output_tokens;
        self.input_tokens += in_tokens;
        self.output_tokens += out_tokens;
        let id = self.next_id("msg");
        let uuid = self.uuid();
        let v = json!({
            "type": "assistant",
            "message": {
                "id": id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": content,
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {
                    "input_tokens": in_tokens,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": out_tokens,
                    "service_tier": "standard"
                }
            },
            "parent_tool_use_id": null,
            "session_id": self.session,
            "uuid": uuid
        });
        self.emit(&v)
    }

    fn say(&mut self, text: &str) -> Result<(), AgentError> {
        self.last_text = text.to_string();
        self.assistant(json!([{ "type": "text", "text": text }]))
    }

    fn user(&mut self, content: Value, sidecar: Option<Value>) -> Result<(), AgentError> {
        let uuid = self.uuid();
        let mut v = json!({
            "type": "user",
            "message": { "role": "user", "content": content },
            "parent_tool_use_id": null,
            "session_id": self.session,
            "uuid": uuid
        });
        if let Some(s) = sidecar {
            v["tool_use_result"] = s;
        }
        self.emit(&v)
    }

    /// A tool call and its result, as two lines. `exec` does the work and returns the
    /// result text, whether it failed, and Claude Code's structured sidecar.
    fn tool(
        &mut self,
        name: &str,
        input: Value,
        exec: impl FnOnce() -> (String, bool, Option<Value>),
    ) -> Result<bool, AgentError> {
        let id = self.next_id("toolu");
        self.assistant(json!([{ "type": "tool_use", "id": id, "name": name, "input": input }]))?;
        let (text, is_error, sidecar) = exec();
        let sidecar = sidecar.or_else(|| is_error.then(|| json!(format!("Error: {text}"))));
        self.user(
            json!([{ "tool_use_id": id, "type": "tool_result", "content": text, "is_error": is_error }]),
            sidecar,
        )?;
        Ok(!is_error)
    }

    fn result(&mut self, is_error: bool, text: &str) -> Result<(), AgentError> {
        let ms = self.started.elapsed().as_millis() as u64;
        let cost = self.input_tokens as f64 * 3e-6 + self.output_tokens as f64 * 15e-6;
        let uuid = self.uuid();
        let v = json!({
            "type": "result",
            "subtype": if is_error { "error_during_execution" } else { "success" },
            "is_error": is_error,
            "duration_ms": ms,
            "duration_api_ms": ms,
            "num_turns": self.turns,
            "result": text,
            "session_id": self.session,
            "total_cost_usd": (cost * 1e6).round() / 1e6,
            "usage": {
                "input_tokens": self.input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": self.output_tokens,
                "server_tool_use": { "web_search_requests": 0 },
                "service_tier": "standard"
            },
            "permission_denials": [],
            "uuid": uuid
        });
        self.emit(&v)
    }

    fn abs(&self, p: &str) -> String {
        self.cwd.join(p).display().to_string()
    }
}

/// `cat -n`-style numbering, as Claude Code's Read tool shows a file.
fn numbered(text: &str) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| format!("{:>6}\t{l}", i + 1))
        .collect::<Vec<_>>()
        .join("\n")
}

fn tool_error(msg: &str) -> String {
    format!("<tool_use_error>{msg}</tool_use_error>")
}

/// Play a parsed scenario in `cwd`.
pub fn play(
    sc: &Scenario,
    cwd: &Path,
    opts: &Options,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, AgentError> {
    let prompt = opts.prompt.clone().unwrap_or_default();
    let session = det_uuid(&format!(
        "{}/{}",
        sc.name,
        opts.run.as_deref().unwrap_or("")
    ));
    let mut a = Agent {
        out,
        cwd: cwd.to_path_buf(),
        model: opts.model.clone().unwrap_or_else(|| sc.model.clone()),
        session,
        ids: 0,
        turns: 0,
        input_tokens: 0,
        output_tokens: 0,
        last_text: String::new(),
        started: Instant::now(),
    };
    let mut mcp = McpClient::new(opts.mcp_config.clone());
    let mcp_servers = if mcp.configured() {
        json!([{ "name": "shopfloor", "status": "pending" }])
    } else {
        json!([])
    };
    let uuid = a.uuid();
    let init = json!({
        "type": "system",
        "subtype": "init",
        "cwd": a.cwd.display().to_string(),
        "session_id": a.session,
        "tools": ["Bash", "Read", "Edit", "Write", "mcp__shopfloor__memory_write", "mcp__shopfloor__memory_search", "mcp__shopfloor__lease", "mcp__shopfloor__release"],
        "mcp_servers": mcp_servers,
        "model": a.model,
        "permissionMode": "bypassPermissions",
        "slash_commands": [],
        "apiKeySource": "none",
        "claude_code_version": concat!("shopfloor-fixture-", env!("CARGO_PKG_VERSION")),
        "output_style": "default",
        "agents": [],
        "skills": [],
        "plugins": [],
        "uuid": uuid
    });
    a.emit(&init)?;
    if sc.echo_prompt && !prompt.is_empty() {
        a.user(json!([{ "type": "text", "text": prompt }]), None)?;
    }
    for step in &sc.steps {
        if step
            .when_prompt_contains
            .as_ref()
            .is_some_and(|t| !prompt.contains(t.as_str()))
            || step
                .unless_prompt_contains
                .as_ref()
                .is_some_and(|t| prompt.contains(t.as_str()))
        {
            continue;
        }
        let fill = |s: &str| s.replace("{prompt}", &prompt);
        match &step.action {
            Move::Say(t) => a.say(&fill(t))?,
            Move::Think(t) => {
                let t = fill(t);
                a.assistant(json!([{ "type": "thinking", "thinking": t, "signature": "fixture" }]))?
            }
            Move::Read(p) => {
                let abs = a.abs(p);
                let file = a.cwd.join(p);
                a.tool(
                    "Read",
                    json!({ "file_path": abs }),
                    || match std::fs::read_to_string(&file) {
                        Ok(t) => {
                            let n = t.lines().count();
                            let side = json!({ "type": "text", "file": {
                                "filePath": abs, "content": t, "numLines": n,
                                "startLine": 1, "totalLines": n } });
                            (numbered(&t), false, Some(side))
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
                            tool_error(&format!(
                                "File does not exist. Current working directory: {}",
                                file.parent()
                                    .map(|d| d.display().to_string())
                                    .unwrap_or_default()
                            )),
                            true,
                            None,
                        ),
                        Err(e) => (tool_error(&e.to_string()), true, None),
                    },
                )?;
            }
            Move::Write {
                path,
                content,
                append,
            } => {
                let abs = a.abs(path);
                let file = a.cwd.join(path);
                let before = std::fs::read_to_string(&file).ok();
                let after = match (&before, append) {
                    (Some(b), true) => format!("{b}{content}"),
                    _ => content.clone(),
                };
                let input = json!({ "file_path": abs, "content": after });
                a.tool("Write", input, || {
                    let written = file
                        .parent()
                        .map_or(Ok(()), std::fs::create_dir_all)
                        .and_then(|()| std::fs::write(&file, &after));
                    match written {
                        Ok(()) => {
                            let side = json!({
                                "type": if before.is_some() { "update" } else { "create" },
                                "filePath": abs,
                                "content": after,
                                "structuredPatch": [],
                                "originalFile": before,
                            });
                            let msg = if before.is_some() {
                                format!("The file {abs} has been updated successfully.")
                            } else {
                                format!("File created successfully at: {abs}")
                            };
                            (msg, false, Some(side))
                        }
                        Err(e) => (tool_error(&format!("cannot write {abs}: {e}")), true, None),
                    }
                })?;
            }
            Move::Replace { path, old, new } => {
                let abs = a.abs(path);
                let file = a.cwd.join(path);
                let input = json!({ "file_path": abs, "old_string": old, "new_string": new, "replace_all": false });
                a.tool("Edit", input, || match std::fs::read_to_string(&file) {
                    Err(_) => (tool_error("File does not exist."), true, None),
                    Ok(t) if !t.contains(old.as_str()) => (
                        tool_error(&format!(
                            "String to replace not found in file.\nString: {old}"
                        )),
                        true,
                        None,
                    ),
                    Ok(t) => {
                        let after = t.replacen(old.as_str(), new, 1);
                        match std::fs::write(&file, &after) {
                            Ok(()) => {
                                let side = json!({
                                    "filePath": abs, "oldString": old, "newString": new,
                                    "originalFile": t, "structuredPatch": [],
                                    "userModified": false, "replaceAll": false
                                });
                                (
                                    format!("The file {abs} has been updated successfully."),
                                    false,
                                    Some(side),
                                )
                            }
                            Err(e) => (tool_error(&format!("cannot write {abs}: {e}")), true, None),
                        }
                    }
                })?;
            }
            Move::Run {
                command,
                expect_exit,
            } => {
                let mut code = 0;
                let cwd = a.cwd.clone();
                let input = json!({ "command": command, "description": format!("Run {command}") });
                a.tool("Bash", input, || {
                    let (c, stdout, stderr) = run_sh(command, &cwd);
                    code = c;
                    let side = json!({ "stdout": stdout, "stderr": stderr,
                        "interrupted": false, "isImage": false });
                    let both = match (stdout.is_empty(), stderr.is_empty()) {
                        (_, true) => stdout.clone(),
                        (true, false) => stderr.clone(),
                        (false, false) => format!("{stdout}\n{stderr}"),
                    };
                    if c == 0 {
                        (both, false, Some(side))
                    } else {
                        (format!("Exit code {c}\n{both}"), true, Some(side))
                    }
                })?;
                if let Some(want) = expect_exit
                    && *want != code
                {
                    let msg = format!(
                        "`{command}` exited with {code}, expected {want}; stopping (step at line {})",
                        step.line
                    );
                    a.say(&msg)?;
                    a.result(true, &msg)?;
                    let _ = writeln!(err, "Error: {msg}");
                    return Ok(1);
                }
            }
            Move::Mcp { tool, args } => {
                let args = fill_strings(args, &fill);
                let name = format!("mcp__shopfloor__{tool}");
                a.tool(&name, args.clone(), || match mcp.call(tool, args) {
                    Ok((text, is_error)) => (text, is_error, None),
                    Err(message) => (message, true, None),
                })?;
            }
            Move::Sleep(d) => std::thread::sleep(*d),
            Move::Flood {
                lines,
                seconds,
                per_second,
            } => {
                let n = match (opts.flood_seconds.or(*seconds), lines) {
                    (Some(s), _) if s.is_finite() && s >= 0.0 => {
                        (s * (*per_second).max(1) as f64).round() as u64
                    }
                    (_, Some(l)) => *l,
                    _ => 0,
                };
                flood(&mut a, n, *per_second)?;
            }
            Move::Fail(code) => {
                let msg = format!(
                    "scenario `{}` fails here with exit code {code} (step at line {})",
                    sc.name, step.line
                );
                a.say(&format!("I could not finish: {msg}"))?;
                a.result(true, &msg)?;
                let _ = writeln!(err, "Error: {msg}");
                return Ok(*code);
            }
            Move::Hang => {
                a.out.flush().map_err(AgentError::Output)?;
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
        }
    }
    let last = a.last_text.clone();
    a.result(false, &last)?;
    Ok(0)
}

/// `args` with `fill` applied to every string in it.
fn fill_strings(args: &Value, fill: &dyn Fn(&str) -> String) -> Value {
    match args {
        Value::String(s) => Value::String(fill(s)),
        Value::Array(v) => Value::Array(v.iter().map(|x| fill_strings(x, fill)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), fill_strings(v, fill)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `n` assistant lines at `per_second` (0: as fast as possible), paced against the clock
/// so the rate holds even when writing is slow at first.
fn flood(a: &mut Agent<'_>, n: u64, per_second: u64) -> Result<(), AgentError> {
    let start = Instant::now();
    for i in 1..=n {
        if per_second > 0 {
            let due = Duration::from_secs_f64((i - 1) as f64 / per_second as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        a.assistant(json!([{ "type": "text", "text": format!("flood line {i}/{n}: the quick brown fox jumps over the lazy dog") }]))?;
    }
    Ok(())
}

/// Run `sh -c command` in `cwd`: (exit code, stdout, stderr). A command killed by a signal
/// reports 128 + the signal, as a shell would; one that cannot start reports 127.
fn run_sh(command: &str, cwd: &Path) -> (i32, String, String) {
    match Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
    {
        Ok(o) => {
            let code = o.status.code().unwrap_or_else(|| {
                use std::os::unix::process::ExitStatusExt;
                128 + o.status.signal().unwrap_or(0)
            });
            let text = |b: &[u8]| String::from_utf8_lossy(b).trim_end().to_string();
            (code, text(&o.stdout), text(&o.stderr))
        }
        Err(e) => (127, String::new(), format!("cannot run sh: {e}")),
    }
}

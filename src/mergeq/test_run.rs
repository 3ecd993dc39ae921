//! Running the test command on checked-out candidates, inside the workspace's sandbox:
//! code an agent wrote is never executed with the factory's own user, environment and
//! network. With Docker, each candidate is tested in a container with the same hardening
//! as an agent's run (no capabilities, read-only root, no network unless `[test] network`),
//! labelled so a restarted factory reaps it; on the worktree backend, `sh -c COMMAND` runs
//! in its own process group with the scrubbed environment and the sandbox labels of an
//! agent's run, dies with the factory (`PR_SET_PDEATHSIG`), and whatever it started is
//! reaped on restart. Several candidates (speculative mode) are tested at once. Output is
//! captured (its tail kept), and a run is killed whole at the timeout.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use git2::{Oid, Repository};

use super::driver::{TestJob, Tester};
use super::{QueueError, git};
use crate::model::TestRecord;
use crate::sandbox::{self, BackendKind, LaunchSpec, Output, Sandbox, SandboxConfig};

/// The most of a test run's output kept with its record.
const LOG_TAIL: usize = 32 * 1024;

/// Where candidates are tested.
#[derive(Clone, Debug, PartialEq)]
pub enum TestBackend {
    /// A scrubbed process group on the host (the worktree backend).
    Host,
    /// A hardened container; the config's `network` is what the tests get.
    Docker(SandboxConfig),
}

impl TestBackend {
    /// The backend for a workspace whose agents run in `kind`: tests get the same
    /// sandbox, with the network only if `[test] network = true`.
    pub fn for_sandbox(kind: BackendKind, cfg: &SandboxConfig, network: bool) -> TestBackend {
        match kind {
            BackendKind::Worktree => TestBackend::Host,
            BackendKind::Docker => TestBackend::Docker(SandboxConfig {
                network: if network { "bridge" } else { "none" }.into(),
                ..cfg.clone()
            }),
        }
    }
}

/// The label key a merge-test container carries besides the workspace's (its entries),
/// and the environment variable a merge-test process does.
pub const LABEL_MERGE_TEST: &str = "shopfloor.merge-test";

pub struct TestOutcome {
    pub ok: bool,
    pub exit_code: Option<i32>,
    pub seconds: f64,
    pub log: String,
}

pub(super) struct SandboxTester {
    pub repo_path: PathBuf,
    pub scratch: PathBuf,
    pub command: Option<String>,
    pub timeout: Duration,
    pub flaky_retries: u32,
    pub backend: TestBackend,
    /// The workspace's sandbox label, which a restarted factory reaps by.
    pub label: String,
    pub allowed_env: Vec<String>,
}

impl Tester for SandboxTester {
    fn has_command(&self) -> bool {
        self.command
            .as_deref()
            .is_some_and(|c| !c.trim().is_empty())
    }

    fn test(&self, jobs: &[TestJob]) -> Result<Vec<Vec<TestRecord>>, QueueError> {
        // Checked out one after another (one repository handle); tested at once.
        let dirs: Vec<PathBuf> = jobs
            .iter()
            .map(|j| self.scratch.join(&j.candidate))
            .collect();
        // Each candidate checked out and tested on a thread of its own (a repository
        // handle each: git2's is not shared across threads), so a round of speculation
        // pays one checkout's time, not K.
        let checked: Vec<Result<(), QueueError>> = std::thread::scope(|s| {
            let handles: Vec<_> = jobs
                .iter()
                .zip(&dirs)
                .map(|(j, d)| s.spawn(move || self.checkout(&j.candidate, d)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(QueueError::Invalid("a checkout panicked".into())))
                })
                .collect()
        });
        checked
            .into_iter()
            .collect::<Result<Vec<()>, QueueError>>()?;
        let out = match &self.backend {
            TestBackend::Host => std::thread::scope(|s| {
                let handles: Vec<_> = jobs
                    .iter()
                    .zip(&dirs)
                    .map(|(j, d)| s.spawn(move || self.tries(j, |c| self.on_host(c, d, j))))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_default())
                    .collect()
            }),
            TestBackend::Docker(cfg) => self.in_docker(cfg, jobs, &dirs)?,
        };
        for d in dirs {
            let _ = std::fs::remove_dir_all(d);
        }
        Ok(out)
    }
}

impl SandboxTester {
    fn checkout(&self, candidate: &str, dir: &Path) -> Result<(), QueueError> {
        let repo = Repository::open(&self.repo_path)?;
        let _ = std::fs::remove_dir_all(dir);
        git::checkout(&repo, Oid::from_str(candidate)?, dir)?;
        Ok(())
    }

    /// Run `once` until green or the flaky retries are spent; every try is kept.
    fn tries(
        &self,
        job: &TestJob,
        mut once: impl FnMut(Option<&str>) -> TestOutcome,
    ) -> Vec<TestRecord> {
        let mut out: Vec<TestRecord> = Vec::new();
        for retry in 0..=self.flaky_retries {
            out.push(record(job, once(self.command.as_deref()), retry));
            if out.last().is_some_and(|r| r.ok) {
                break;
            }
        }
        out
    }

    fn env(&self, job: &TestJob) -> Vec<(String, String)> {
        let spec = self.spec(job, Path::new("/"));
        sandbox::build_env(&self.allowed_env, &[], &spec, BackendKind::Worktree)
    }

    fn spec(&self, job: &TestJob, dir: &Path) -> LaunchSpec {
        LaunchSpec {
            argv: vec![
                "sh".into(),
                "-c".into(),
                self.command.clone().unwrap_or_default(),
            ],
            env: vec![("SHOPFLOOR_MERGE_TEST".into(), entries_label(&job.entries))],
            workdir: dir.to_path_buf(),
            labels: sandbox::Labels {
                workspace: self.label.clone(),
                // A merge test belongs to no run: run 0, with the entries in its own label.
                run: 0,
            },
            socket: None,
            read_only: Vec::new(),
            workdir_read_only: false,
        }
    }

    fn on_host(&self, command: Option<&str>, dir: &Path, job: &TestJob) -> TestOutcome {
        run(command, dir, self.timeout, &self.env(job))
    }

    fn in_docker(
        &self,
        cfg: &SandboxConfig,
        jobs: &[TestJob],
        dirs: &[PathBuf],
    ) -> Result<Vec<Vec<TestRecord>>, QueueError> {
        let work = async {
            let sandbox = sandbox::DockerSandbox::connect(cfg)
                .await
                .map_err(|e| QueueError::Invalid(format!("the tests' sandbox: {e}")))?;
            let runs = jobs.iter().zip(dirs).map(|(j, d)| {
                let sandbox = &sandbox;
                async move {
                    let mut out = Vec::new();
                    for retry in 0..=self.flaky_retries {
                        let o = in_container(sandbox, self.spec(j, d), self.timeout, j).await;
                        out.push(record(j, o, retry));
                        if out.last().is_some_and(|r| r.ok) {
                            break;
                        }
                    }
                    out
                }
            });
            Ok(futures_util::future::join_all(runs).await)
        };
        // On a factory's blocking thread the factory's runtime drives it; elsewhere (a
        // test, the bench) a runtime of its own.
        match tokio::runtime::Handle::try_current() {
            Ok(h) => h.block_on(work),
            Err(_) => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| QueueError::Invalid(format!("cannot start a runtime: {e}")))?
                .block_on(work),
        }
    }
}

/// One try of `job`, as the entries record it.
fn record(job: &TestJob, o: TestOutcome, retry: u32) -> TestRecord {
    TestRecord {
        commit: job.candidate.clone(),
        ok: o.ok,
        exit_code: o.exit_code,
        seconds: o.seconds,
        log: o.log,
        batch: job.entries.clone(),
        retry,
    }
}

fn entries_label(ids: &[u64]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// One try in a hardened container, labelled as a merge test of `job`'s entries.
async fn in_container(
    sandbox: &sandbox::DockerSandbox,
    spec: LaunchSpec,
    timeout: Duration,
    job: &TestJob,
) -> TestOutcome {
    let started = Instant::now();
    if spec.argv[2].trim().is_empty() {
        return no_command();
    }
    let sandbox =
        sandbox.clone_with_labels([(LABEL_MERGE_TEST.to_string(), entries_label(&job.entries))]);
    let mut p = match sandbox.launch(spec).await {
        Ok(p) => p,
        Err(e) => {
            return TestOutcome {
                ok: false,
                exit_code: None,
                seconds: started.elapsed().as_secs_f64(),
                log: format!("could not start the test container: {e}"),
            };
        }
    };
    let mut log = String::new();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut timed_out = false;
    loop {
        match tokio::time::timeout_at(deadline, p.output.recv()).await {
            Ok(Some(Output::Stdout(l) | Output::Stderr(l))) => {
                log.push_str(&String::from_utf8_lossy(&l));
                log.push('\n');
                keep_tail(&mut log);
            }
            Ok(None) => break,
            Err(_) => {
                timed_out = true;
                let _ = p.control.kill().await;
                break;
            }
        }
    }
    let exit = p.control.wait().await.ok();
    finish(started, log, timed_out, timeout, exit.and_then(|e| e.code))
}

fn no_command() -> TestOutcome {
    TestOutcome {
        ok: true,
        exit_code: None,
        seconds: 0.0,
        log: "no [test] command is configured: nothing was run".into(),
    }
}

fn keep_tail(log: &mut String) {
    if log.len() > 2 * LOG_TAIL {
        let mut cut = log.len() - LOG_TAIL;
        while !log.is_char_boundary(cut) {
            cut += 1;
        }
        log.drain(..cut);
    }
}

fn finish(
    started: Instant,
    mut log: String,
    timed_out: bool,
    timeout: Duration,
    exit_code: Option<i32>,
) -> TestOutcome {
    if timed_out {
        log.push_str(&format!(
            "\n[killed after the {} s test timeout]\n",
            timeout.as_secs()
        ));
    }
    if log.len() > LOG_TAIL {
        let mut cut = log.len() - LOG_TAIL;
        while !log.is_char_boundary(cut) {
            cut += 1;
        }
        log = format!("[... {cut} bytes cut]\n{}", &log[cut..]);
    }
    TestOutcome {
        ok: !timed_out && exit_code == Some(0),
        exit_code,
        seconds: started.elapsed().as_secs_f64(),
        log,
    }
}

/// Run `command` in `dir` with exactly `env`, as the leader of its own process group that
/// dies with the thread that started it; no command configured counts as green, and says so.
pub fn run(
    command: Option<&str>,
    dir: &Path,
    timeout: Duration,
    env: &[(String, String)],
) -> TestOutcome {
    let started = Instant::now();
    let Some(command) = command.filter(|c| !c.trim().is_empty()) else {
        return no_command();
    };
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: prctl and getppid are async-signal-safe; nothing is allocated between fork
    // and exec. A factory killed with SIGKILL takes its test's shell with it; whatever the
    // shell started is in the group, labelled, and reaped when the factory starts again.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the prctl: then go at once.
            if libc::getppid() == 1 {
                libc::_exit(137);
            }
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return TestOutcome {
                ok: false,
                exit_code: None,
                seconds: started.elapsed().as_secs_f64(),
                log: format!("could not start `sh -c {command}`: {e}"),
            };
        }
    };
    // Both pipes drained on threads so a chatty test never blocks on a full pipe.
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let pgid = child.id() as i32;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if started.elapsed() >= timeout => {
                timed_out = true;
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    // Whatever the test left running in its group goes with it (a server it started, a
    // hung child holding the pipes open).
    // SAFETY: kill(2) on the process group we made.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    let status = status.or_else(|| child.wait().ok());
    let mut log = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
    let err = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    if !err.is_empty() {
        log.push_str(&err);
    }
    let mut o = finish(
        started,
        log,
        timed_out,
        timeout,
        status.and_then(|s| s.code()),
    );
    o.seconds = started.elapsed().as_secs_f64();
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn green_red_timeout_and_a_scrubbed_environment() {
        let dir = tempfile::tempdir().unwrap();
        let t = Duration::from_secs(10);
        let env = vec![("PATH".to_string(), std::env::var("PATH").unwrap())];
        let g = run(Some("echo fine"), dir.path(), t, &env);
        assert!(g.ok && g.log.contains("fine"));
        let r = run(Some("echo broken >&2; exit 3"), dir.path(), t, &env);
        assert!(!r.ok && r.exit_code == Some(3) && r.log.contains("broken"));
        let slow = run(
            Some("sleep 30"),
            dir.path(),
            Duration::from_millis(300),
            &env,
        );
        assert!(!slow.ok && slow.log.contains("killed after") && slow.seconds < 5.0);
        assert!(run(None, dir.path(), t, &env).ok);
        let seen = run(Some("env"), dir.path(), t, &env);
        assert!(
            !seen.log.contains("CARGO") && seen.log.contains("PATH="),
            "only what it was given: {}",
            seen.log
        );
    }
}

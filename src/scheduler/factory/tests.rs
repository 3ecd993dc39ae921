//! The run supervisor against a fake sandbox: what an agent prints, how it exits and a
//! person's stop become a `RunEnded` value, with no Docker, no agent CLI and no schedule
//! loop involved.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::finish::RunEnded;
use super::*;
use crate::agent::Adapter;
use crate::sandbox::{Exit, ProcessControl, SandboxError};

/// What the fake agent does once launched.
#[derive(Clone)]
enum Script {
    /// Print these lines on stdout, then exit with this code.
    Print(Vec<&'static str>, i32),
    /// Print nothing and run until killed.
    Hang,
}

struct FakeSandbox {
    script: Script,
    launched: Mutex<Vec<LaunchSpec>>,
}

struct FakeProcess {
    killed: Arc<AtomicBool>,
    done: Arc<Notify>,
    code: Option<i32>,
    /// The output's sender, dropped on kill so the output ends as a killed process's does.
    out: Mutex<Option<mpsc::Sender<Output>>>,
}

#[async_trait]
impl ProcessControl for FakeProcess {
    fn id(&self) -> String {
        "fake".into()
    }
    async fn kill(&self) -> Result<(), SandboxError> {
        self.killed.store(true, Ordering::SeqCst);
        self.out.lock().unwrap().take();
        self.done.notify_waiters();
        Ok(())
    }
    async fn wait(&self) -> Result<Exit, SandboxError> {
        loop {
            if self.killed.load(Ordering::SeqCst) {
                return Ok(Exit {
                    code: None,
                    signal: Some(9),
                });
            }
            if let Some(code) = self.code {
                return Ok(Exit {
                    code: Some(code),
                    signal: None,
                });
            }
            let notified = self.done.notified();
            if self.killed.load(Ordering::SeqCst) {
                continue;
            }
            notified.await;
        }
    }
}

#[async_trait]
impl Sandbox for FakeSandbox {
    fn kind(&self) -> BackendKind {
        BackendKind::Worktree
    }
    async fn launch(&self, spec: LaunchSpec) -> Result<sandbox::Process, SandboxError> {
        self.launched.lock().unwrap().push(spec);
        let (tx, rx) = mpsc::channel(64);
        let control = match &self.script {
            Script::Print(lines, code) => {
                for l in lines {
                    tx.send(Output::Stdout(l.as_bytes().to_vec()))
                        .await
                        .unwrap();
                }
                drop(tx);
                FakeProcess {
                    killed: Arc::default(),
                    done: Arc::default(),
                    code: Some(*code),
                    out: Mutex::new(None),
                }
            }
            Script::Hang => FakeProcess {
                killed: Arc::default(),
                done: Arc::default(),
                code: None,
                out: Mutex::new(Some(tx)),
            },
        };
        Ok(sandbox::Process {
            output: rx,
            control: Box::new(control),
        })
    }
    async fn reap_orphans(&self, _workspace: &str) -> Result<usize, SandboxError> {
        Ok(0)
    }
}

/// A workspace over a fresh repository with one commit on main, and a factory on it
/// whose every run goes to `script`.
async fn factory(script: Script) -> (tempfile::TempDir, Arc<Factory>, Arc<FakeSandbox>) {
    let dir = tempfile::tempdir().unwrap();
    let repo_dir = dir.path().join("repo");
    std::fs::create_dir_all(&repo_dir).unwrap();
    let repo = git2::Repository::init(&repo_dir).unwrap();
    std::fs::write(repo_dir.join("README"), "hello\n").unwrap();
    let mut index = repo.index().unwrap();
    index.add_path(Path::new("README")).unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("t", "t@example.com").unwrap();
    let c = repo.commit(None, &sig, &sig, "init", &tree, &[]).unwrap();
    repo.reference("refs/heads/main", c, true, "init").unwrap();
    repo.set_head("refs/heads/main").unwrap();
    let home = crate::layout::Home::at(dir.path().join("home"));
    let info = home.create("t", &repo_dir).unwrap();
    let ws = Arc::new(Workspace::open(info).unwrap());
    let mut cfg = FactorySettings::from_config(&ws.config);
    let mut fake = AgentProfile::new(Adapter::Plain);
    fake.command = Some("fake-agent".into());
    cfg.agents.insert("fake".into(), fake);
    cfg.default_agent = "fake".into();
    cfg.learning = false;
    let sandbox = Arc::new(FakeSandbox {
        script,
        launched: Mutex::default(),
    });
    let f = Factory::start_with(ws, cfg, sandbox.clone()).await.unwrap();
    (dir, f, sandbox)
}

/// Claim a new ticket as the schedule loop does and supervise its run; `stop` may be
/// sent while it runs.
async fn supervise(f: &Arc<Factory>, stop_after: Option<(Duration, Stop)>) -> RunEnded {
    let ws = f.workspace().clone();
    let t = ws
        .store
        .add_ticket(Ticket {
            id: 0,
            title: "say hello".into(),
            body: String::new(),
            priority: 0,
            agent: None,
            paths: vec![],
            labels: vec![],
            state: TicketState::Queued,
            created: now(),
            updated: now(),
            runs: vec![],
        })
        .unwrap();
    let run = ws
        .store
        .create_run(Run {
            ticket: Some(t.id),
            attempt: 1,
            branch: Some(format!("shopfloor/{}-1", t.id)),
            ..Run::new("fake", RunState::Preparing, now())
        })
        .unwrap();
    ws.store
        .apply_ticket(t.id, TicketEvent::Claim { run: run.id })
        .unwrap();
    // The sender lives as long as the run, as the factory's live table keeps it.
    let (stop, stop_rx) = watch::channel(Stop::No);
    let stop = Arc::new(stop);
    if let Some((after, why)) = stop_after {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = stop.send(why);
        });
    }
    let ended = f.clone().drive(run, t, "fake".into(), stop_rx).await;
    drop(stop);
    ended.expect("the supervisor runs the run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_exits_zero_ends_for_review_with_its_output_as_steps() {
    let (_dir, f, sandbox) = factory(Script::Print(vec!["hello", "done"], 0)).await;
    let ended = supervise(&f, None).await;
    assert_eq!(ended.run.state, RunState::Succeeded);
    assert_eq!(ended.next, Next::Review);
    assert_eq!(ended.ticket.state, TicketState::Review);
    let steps = f.workspace().store.steps(ended.run.id, 0, 100).unwrap();
    let text = format!("{steps:?}");
    assert!(text.contains("hello") && text.contains("done"), "{text}");
    assert!(
        matches!(
            steps.last().map(|s| &s.kind),
            Some(StepKind::Lifecycle {
                event: Lifecycle::Exited { code: Some(0), .. }
            })
        ),
        "the last step records the exit: {steps:?}"
    );
    // The agent ran in its own checkout on the run's branch, under its run's labels.
    let launched = sandbox.launched.lock().unwrap();
    assert_eq!(launched.len(), 1);
    assert_eq!(launched[0].labels.run, ended.run.id);
    assert!(
        launched[0]
            .workdir
            .starts_with(f.workspace().info.worktrees_dir())
    );
    assert!(
        launched[0].argv.iter().any(|a| a == "fake-agent"),
        "{:?}",
        launched[0].argv
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_fails_ends_with_a_retry_and_says_why() {
    let (_dir, f, _) = factory(Script::Print(vec!["error: no"], 3)).await;
    let ended = supervise(&f, None).await;
    assert_eq!(ended.run.state, RunState::Failed);
    assert_eq!(
        ended.run.outcome.as_deref(),
        Some("the agent exited with code 3")
    );
    assert!(
        matches!(ended.next, Next::Retry { attempt: 2, .. }),
        "{:?}",
        ended.next
    );
    assert_eq!(ended.ticket.state, TicketState::Queued);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_cancel_stops_a_hanging_agent_and_holds() {
    let (_dir, f, _) = factory(Script::Hang).await;
    let started = std::time::Instant::now();
    let ended = supervise(&f, Some((Duration::from_millis(300), Stop::Cancel))).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(ended.run.state, RunState::Cancelled);
    assert_eq!(ended.next, Next::Cancel);
    assert_eq!(ended.ticket.state, TicketState::Cancelled);
}

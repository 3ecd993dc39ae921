//! The Docker sandbox against the real engine, in the registry-free test image built by
//! `scripts/build-test-image.sh`. Without an engine or the image these tests fail under CI
//! (`CI=true` or `SHOPFLOOR_REQUIRE_DOCKER=1`) and skip with a note elsewhere.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::ListContainersOptions;
use shopfloor::sandbox::{
    self, BackendChoice, BackendKind, DockerSandbox, Labels, LaunchSpec, Output, PrepareSpec,
    Process, Sandbox, SandboxConfig,
};

const TEST_IMAGE: &str = "shopfloor-test-base:bookworm-v2";

fn test_config() -> SandboxConfig {
    SandboxConfig {
        backend: BackendChoice::Docker,
        image: TEST_IMAGE.into(),
        ..Default::default()
    }
}

fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("SHOPFLOOR_REQUIRE_DOCKER").is_ok_and(|v| v == "1")
}

/// The sandbox, or None (skip) when there is no engine or image outside CI.
async fn docker_sandbox() -> Option<DockerSandbox> {
    match DockerSandbox::connect(&test_config()).await {
        Ok(d) => Some(d.with_binary(PathBuf::from(env!("CARGO_BIN_EXE_shopfloor")))),
        Err(e) if required() => panic!("Docker tests are required here: {e}"),
        Err(e) => {
            eprintln!("SKIPPED: Docker sandbox tests need an engine and {TEST_IMAGE}: {e}");
            None
        }
    }
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=T", "-c", "user.email=t@t"])
        .args(args)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

/// A clone with one commit on main and a prepared worktree of it.
fn worktree(tmp: &Path, ticket: u64) -> sandbox::Prepared {
    let repo = tmp.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README.md"), "hi\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    let spec = PrepareSpec {
        workspace: "dock-ws".into(),
        run: 1,
        ticket,
        attempt: 1,
        repo: repo.clone(),
        base: "main".into(),
        user_checkout: repo,
        root: tmp.join("worktrees"),
    };
    sandbox::prepare(&spec, &[]).unwrap()
}

fn spec(dir: &Path, workspace: &str, run: u64, script: &str) -> LaunchSpec {
    LaunchSpec {
        argv: vec!["sh".into(), "-c".into(), script.into()],
        env: vec![],
        workdir: dir.to_path_buf(),
        labels: Labels {
            workspace: workspace.into(),
            run,
        },
        socket: None,
        read_only: vec![],
        workdir_read_only: false,
    }
}

async fn collect(p: &mut Process) -> (Vec<String>, Vec<String>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some(o) = tokio::time::timeout(Duration::from_secs(30), p.output.recv())
        .await
        .expect("output within 30 s")
    {
        match o {
            Output::Stdout(l) => out.push(String::from_utf8_lossy(&l).into_owned()),
            Output::Stderr(l) => err.push(String::from_utf8_lossy(&l).into_owned()),
        }
    }
    (out, err)
}

async fn labelled(docker: &Docker, workspace: &str) -> Vec<HashMap<String, String>> {
    let opts = ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([(
            "label".to_string(),
            vec![format!("shopfloor.workspace={workspace}")],
        )])),
        ..Default::default()
    };
    docker
        .list_containers(Some(opts))
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.labels.unwrap_or_default())
        .collect()
}

async fn engine() -> Docker {
    Docker::connect_with_local_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_container_is_locked_down_and_writes_reach_the_worktree() {
    let Some(sb) = docker_sandbox().await else {
        return;
    };
    assert_eq!(sb.kind(), BackendKind::Docker);
    let tmp = tempfile::tempdir().unwrap();
    let p = worktree(tmp.path(), 1);
    let script = "id -u; id -g; cat /proc/self/status | grep CapEff; touch /root-test 2>&1; \
        echo ok > /workspace/out.txt; ls /usr/local/bin/shopfloor; /usr/local/bin/shopfloor --version; \
        pwd; echo \"home=$HOME\"; echo oops >&2; exit 4";
    let mut proc = sb.launch(spec(&p.dir, "dock-ws", 1, script)).await.unwrap();
    let (out, err) = collect(&mut proc).await;
    let exit = proc.control.wait().await.unwrap();
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    assert_eq!(out[0], uid.to_string(), "{out:?}");
    assert_eq!(out[1], gid.to_string(), "{out:?}");
    assert_eq!(
        out[2].split_whitespace().collect::<Vec<_>>(),
        ["CapEff:", "0000000000000000"]
    );
    assert!(
        out[3].contains("Read-only file system"),
        "root fs is read-only: {out:?}"
    );
    assert_eq!(out[4], "/usr/local/bin/shopfloor");
    assert!(
        out[5].starts_with("shopfloor "),
        "the host binary runs in the image: {out:?}"
    );
    assert_eq!(out[6], "/workspace");
    assert_eq!(out[7], "home=/tmp");
    assert_eq!(err, vec!["oops"]);
    assert_eq!(exit.code, Some(4));
    assert_eq!(
        std::fs::read_to_string(p.dir.join("out.txt")).unwrap(),
        "ok\n"
    );
}

#[tokio::test]
async fn there_is_no_network_and_the_environment_is_scrubbed() {
    let Some(sb) = docker_sandbox().await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let p = worktree(tmp.path(), 2);
    // SAFETY: set before anything in this test reads the environment.
    unsafe { std::env::set_var("SECRET_DOCKER_X", "leaked") };
    let script = "ls /sys/class/net; getent hosts deb.debian.org || echo no-dns; \
        echo \"secret=${SECRET_DOCKER_X:-absent}\"; echo \"label=$SHOPFLOOR_WORKSPACE/$SHOPFLOOR_RUN\"";
    let mut proc = sb.launch(spec(&p.dir, "dock-ws", 2, script)).await.unwrap();
    let (out, _) = collect(&mut proc).await;
    assert_eq!(proc.control.wait().await.unwrap().code, Some(0));
    assert_eq!(
        out,
        vec!["lo", "no-dns", "secret=absent", "label=dock-ws/2"]
    );
}

#[tokio::test]
async fn containers_are_labelled_and_kill_stops_and_removes_them() {
    let Some(sb) = docker_sandbox().await else {
        return;
    };
    let docker = engine().await;
    let tmp = tempfile::tempdir().unwrap();
    let p = worktree(tmp.path(), 3);
    let mut proc = sb
        .launch(spec(&p.dir, "dock-kill", 77, "echo started; sleep 60"))
        .await
        .unwrap();
    assert!(matches!(proc.output.recv().await, Some(Output::Stdout(l)) if l == b"started"));
    let labels = labelled(&docker, "dock-kill").await;
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0]["shopfloor.run"], "77");
    let started = Instant::now();
    proc.control.kill().await.unwrap();
    let exit = proc.control.wait().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "kill took {:?}",
        started.elapsed()
    );
    assert_eq!(exit.signal, Some(9));
    assert!(
        labelled(&docker, "dock-kill").await.is_empty(),
        "removed after it ended"
    );
}

#[tokio::test]
async fn reap_orphans_removes_leftover_containers_of_its_workspace_only() {
    let Some(sb) = docker_sandbox().await else {
        return;
    };
    let docker = engine().await;
    // A leftover of a crashed factory: labelled, running, nobody attached.
    let leftover = |ws: &str| ContainerCreateBody {
        image: Some(TEST_IMAGE.into()),
        cmd: Some(vec!["sleep".into(), "60".into()]),
        labels: Some(HashMap::from([
            ("shopfloor.workspace".to_string(), ws.to_string()),
            ("shopfloor.run".to_string(), "5".to_string()),
        ])),
        host_config: Some(bollard::models::HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut ids = Vec::new();
    for ws in ["dock-reap", "dock-reap-other"] {
        let id = docker
            .create_container(None, leftover(ws))
            .await
            .unwrap()
            .id;
        docker.start_container(&id, None).await.unwrap();
        ids.push(id);
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = worktree(tmp.path(), 4);
    let live = sb
        .launch(spec(&p.dir, "dock-reap", 6, "sleep 60"))
        .await
        .unwrap();

    assert_eq!(sb.reap_orphans("dock-reap").await.unwrap(), 1);
    let left = labelled(&docker, "dock-reap").await;
    assert_eq!(left.len(), 1, "only the live run's container remains");
    assert_eq!(left[0]["shopfloor.run"], "6");
    assert_eq!(labelled(&docker, "dock-reap-other").await.len(), 1);

    live.control.kill().await.unwrap();
    let force = bollard::query_parameters::RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    docker.remove_container(&ids[1], Some(force)).await.unwrap();
}

#[tokio::test]
async fn choose_explains_a_missing_image_and_auto_falls_back() {
    if docker_sandbox().await.is_none() {
        return;
    }
    let missing = SandboxConfig {
        image: "shopfloor-no-such-image:never".into(),
        ..test_config()
    };
    let err = sandbox::choose(&missing)
        .await
        .err()
        .expect("explicit docker without image fails");
    assert!(err.to_string().contains("docker build"), "{err}");
    let auto = SandboxConfig {
        backend: BackendChoice::Auto,
        ..missing
    };
    assert_eq!(
        sandbox::choose(&auto).await.unwrap().kind(),
        BackendKind::Worktree
    );
    let auto_with_image = SandboxConfig {
        backend: BackendChoice::Auto,
        ..test_config()
    };
    assert_eq!(
        sandbox::choose(&auto_with_image).await.unwrap().kind(),
        BackendKind::Docker
    );
}

/// An agent commits in its checkout as in any repository, reading the clone's objects
/// through a read-only mount; it cannot write those objects, and the clone's refs (main,
/// other runs' branches) are not in its container at all. Its work comes back to the
/// clone when the run ends.
#[tokio::test]
async fn an_agent_commits_in_its_checkout_and_reaches_nothing_else_of_the_clone() {
    let Some(sb) = docker_sandbox().await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let p = worktree(tmp.path(), 5);
    let objects = p.clone_objects();
    let refs = p.clone.join(".git/refs/heads");
    let script = format!(
        "cd /workspace && echo hi > new.txt && git add new.txt && git commit -qm agent && \
         git rev-parse --abbrev-ref HEAD && git log --oneline | wc -l; \
         touch {o}/planted 2>&1 | grep -o 'Read-only file system'; \
         echo x 2>&1 > {r}/main | grep -o 'Directory nonexistent'; \
         git update-ref refs/heads/main HEAD && git rev-parse main",
        o = objects.display(),
        r = refs.display()
    );
    let mut launch = spec(&p.dir, "dock-ws", 5, &script);
    launch.read_only = vec![objects.clone()];
    let mut proc = sb.launch(launch).await.unwrap();
    let (out, err) = collect(&mut proc).await;
    assert_eq!(proc.control.wait().await.unwrap().code, Some(0), "{err:?}");
    assert_eq!(
        out[..4],
        [
            "shopfloor/5-1",
            "2",
            "Read-only file system",
            "Directory nonexistent"
        ],
        "{out:?} {err:?}"
    );
    let clone = git2::Repository::open(&p.clone).unwrap();
    let main_before = clone.refname_to_id("refs/heads/main").unwrap();
    assert_ne!(
        out[4],
        main_before.to_string(),
        "the agent moved only its own copy of main"
    );
    let left = sandbox::commit_leftovers(&p, "leftovers", "bot").unwrap();
    assert_eq!(left.files_changed, vec!["new.txt"]);
    let branch = clone.refname_to_id("refs/heads/shopfloor/5-1").unwrap();
    assert_eq!(
        clone.find_commit(branch).unwrap().summary().unwrap(),
        Some("agent"),
        "the agent's commit came back"
    );
    assert_eq!(clone.refname_to_id("refs/heads/main").unwrap(), main_before);
    assert!(!objects.join("planted").exists());
}

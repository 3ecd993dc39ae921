//! A running `shopfloor serve` for tests: started in the env's repository, waited on until
//! it has printed where it listens and which sandbox it chose, then its output drained so
//! it never blocks on a full pipe. SIGTERM and reaped on drop.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::Env;

pub struct Serve {
    pub child: Child,
    /// The lines it printed up to and including the `sandbox:` line.
    pub banner: Vec<String>,
    /// The lines it printed after the banner, as they come.
    later: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Serve {
    /// `shopfloor serve`.
    pub fn start(env: &Env) -> Serve {
        Serve::start_with(env, &[])
    }

    /// `shopfloor serve --paused`: holds the workspace and serves the API, runs nothing.
    pub fn paused(env: &Env) -> Serve {
        Serve::start_with(env, &["--paused"])
    }

    pub fn start_with(env: &Env, args: &[&str]) -> Serve {
        Serve::start_with_env(env, args, &[])
    }

    /// `shopfloor serve ARGS` with extra environment (say, a PATH holding agent CLIs).
    pub fn start_with_env(env: &Env, args: &[&str], vars: &[(&str, String)]) -> Serve {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("shopfloor"))
            .arg("serve")
            .args(args)
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .env("SHOPFLOOR_HOME", env.home.path())
            .env("SHOPFLOOR_LOG", "shopfloor=debug")
            .env_remove("SHOPFLOOR_WORKSPACE")
            .current_dir(env.repo.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut banner = vec![];
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            let done = line.starts_with("sandbox:");
            banner.push(line);
            if done {
                break;
            }
        }
        assert!(
            banner.iter().any(|l| l.starts_with("sandbox:")),
            "serve did not start (its error is above): {banner:?}"
        );
        let later = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = later.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                keep.lock().unwrap().push(line);
            }
        });
        Serve {
            child,
            banner,
            later,
        }
    }

    /// What it has printed since its banner.
    pub fn said(&self) -> Vec<String> {
        self.later.lock().unwrap().clone()
    }

    /// The socket it said it listens on.
    pub fn socket(&self) -> &str {
        self.banner
            .iter()
            .find_map(|l| l.split(" listening on ").nth(1))
            .expect("a listening line")
    }

    /// The loopback TCP address, when `[api] listen` is set.
    pub fn tcp(&self) -> Option<String> {
        self.banner.iter().find_map(|l| {
            l.strip_prefix("also listening on ")
                .map(|r| r.split(' ').next().unwrap_or("").to_string())
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// SIGTERM and wait: how it exited.
    pub fn stop(mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.child.wait().unwrap()
    }

    /// SIGKILL and wait: a crash.
    pub fn kill9(mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal(libc::SIGTERM);
            let _ = self.child.wait();
        }
    }
}

/// Wait until something answers on `socket`.
pub fn wait_for_socket(socket: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while UnixStream::connect(socket).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing answered on {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

//! A terminal for end-to-end tests of the control room: a tmux server of the test's own,
//! driven with send-keys and read with capture-pane.

use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of the test's own, so nothing else's sessions are touched.
pub struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    /// A server for this test process and `session`; nothing runs until `start`.
    pub fn new(session: &str) -> Tmux {
        Tmux {
            socket: format!("shopfloor-test-{}-{session}", std::process::id()),
            session: session.to_string(),
        }
    }

    /// Run `cmd` (a shell command line) in a `width` x `height` terminal.
    pub fn start(&self, cmd: &str, width: u16, height: u16) {
        self.run(&[
            "new-session",
            "-d",
            "-s",
            &self.session,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            cmd,
        ]);
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs (apt-get install tmux)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", &self.session])
    }

    pub fn keys(&self, keys: &str) {
        self.run(&["send-keys", "-t", &self.session, keys]);
    }

    /// Wait for the screen to satisfy `ok`; on timeout, fail with the screen.
    pub fn wait(&self, what: &str, secs: u64, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            if start.elapsed() > Duration::from_secs(secs) {
                panic!("waited {secs}s for {what}; the screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

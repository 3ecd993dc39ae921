//! Running the test command on a checked-out candidate: `sh -c COMMAND` in its own
//! process group, output captured (its tail kept), killed whole at the timeout.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The most of a test run's output kept with its record.
const LOG_TAIL: usize = 32 * 1024;

pub struct Outcome {
    pub ok: bool,
    pub exit_code: Option<i32>,
    pub seconds: f64,
    pub log: String,
}

/// Run `command` in `dir`; no command configured counts as green, and says so.
pub fn run(command: Option<&str>, dir: &Path, timeout: Duration) -> Outcome {
    let started = Instant::now();
    let Some(command) = command.filter(|c| !c.trim().is_empty()) else {
        return Outcome {
            ok: true,
            exit_code: None,
            seconds: 0.0,
            log: "no [test] command is configured: nothing was run".into(),
        };
    };
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
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
                // SAFETY: kill(2) on the process group we made.
                unsafe {
                    libc::kill(-pgid, libc::SIGKILL);
                }
                timed_out = true;
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let mut log = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
    let err = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    if !err.is_empty() {
        log.push_str(&err);
    }
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
    let exit_code = status.and_then(|s| s.code());
    Outcome {
        ok: !timed_out && exit_code == Some(0),
        exit_code,
        seconds: started.elapsed().as_secs_f64(),
        log,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn green_red_and_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let t = Duration::from_secs(10);
        let g = run(Some("echo fine"), dir.path(), t);
        assert!(g.ok && g.log.contains("fine"));
        let r = run(Some("echo broken >&2; exit 3"), dir.path(), t);
        assert!(!r.ok && r.exit_code == Some(3) && r.log.contains("broken"));
        let slow = run(Some("sleep 30"), dir.path(), Duration::from_millis(300));
        assert!(!slow.ok && slow.log.contains("killed after") && slow.seconds < 5.0);
        assert!(run(None, dir.path(), t).ok);
    }
}

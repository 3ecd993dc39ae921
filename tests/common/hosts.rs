//! Other machines, made on this one: a network namespace per host, joined to this one by a
//! veth pair with an address each side, running its own `sshd` (its own host key, config
//! and authorized key) on its own address. The factory reaches it only through that
//! address, as it would a machine across a network. Needs root (namespaces) and
//! `openssh-server` (`.ci/run` installs it): without them a test skips with one line, and
//! fails under `CI=true`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// A host in a namespace; torn down on drop.
pub struct NetnsHost {
    pub ns: String,
    /// The host's address, as the factory reaches it.
    pub addr: String,
    /// The key the factory logs in with.
    pub identity: PathBuf,
    sshd: Child,
    veth: String,
    _dir: tempfile::TempDir,
}

/// How a test host differs from a full one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lacks {
    /// Its sessions' PATH has no git.
    pub git: bool,
    /// Its sshd allows only this many sessions on one connection (`MaxSessions`, 10 by
    /// default).
    pub sessions: Option<u8>,
}

fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn skip(why: &str) -> Option<NetnsHost> {
    assert!(!required(), "{why}");
    eprintln!("skipping: {why}");
    None
}

fn sh(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetnsHost {
    /// The next host of this test process, number `n` (1-200, one counter for the whole
    /// process, since every test shares it), at 10.(77+pid%100).n.2; None when this machine
    /// cannot make one.
    pub fn start(lacks: Lacks) -> Option<NetnsHost> {
        let sshd = Path::new("/usr/sbin/sshd");
        if !sshd.exists() {
            return skip(
                "no /usr/sbin/sshd: install openssh-server (the hosts tests run sshd in network namespaces)",
            );
        }
        static NEXT: AtomicU8 = AtomicU8::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(
            (1..=200).contains(&n),
            "more than 200 test hosts in one process"
        );
        let pid = std::process::id();
        let ns = format!("sf{pid}h{n}");
        if let Err(e) = sh(&["ip", "netns", "add", &ns]) {
            return skip(&format!(
                "cannot make a network namespace (root is needed): {e}"
            ));
        }
        let net = 77 + (pid % 100) as u8;
        let (outer, inner) = (
            format!("sf{}o{n}", pid % 100_000),
            format!("sf{}i{n}", pid % 100_000),
        );
        let host_ip = format!("10.{net}.{n}.1");
        let addr = format!("10.{net}.{n}.2");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let setup = || -> Result<(), String> {
            sh(&[
                "ip", "link", "add", &outer, "type", "veth", "peer", "name", &inner,
            ])?;
            sh(&["ip", "link", "set", &inner, "netns", &ns])?;
            sh(&["ip", "addr", "add", &format!("{host_ip}/24"), "dev", &outer])?;
            sh(&["ip", "link", "set", &outer, "up"])?;
            let inside = |args: &[&str]| {
                let mut v = vec!["ip", "netns", "exec", &ns];
                v.extend_from_slice(args);
                sh(&v)
            };
            inside(&["ip", "addr", "add", &format!("{addr}/24"), "dev", &inner])?;
            inside(&["ip", "link", "set", &inner, "up"])?;
            inside(&["ip", "link", "set", "lo", "up"])?;
            for key in ["host_key", "client_key"] {
                sh(&[
                    "ssh-keygen",
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-f",
                    &d.join(key).display().to_string(),
                ])?;
            }
            std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys"))
                .map_err(|e| e.to_string())?;
            std::fs::create_dir_all("/run/sshd").map_err(|e| e.to_string())?;
            let path = if lacks.git {
                // A PATH with what a shell needs and no git.
                let bin = d.join("bin");
                std::fs::create_dir_all(&bin).unwrap();
                for tool in ["sh", "mkdir", "test", "pwd", "rm", "echo", "cat"] {
                    for src in [format!("/usr/bin/{tool}"), format!("/bin/{tool}")] {
                        if Path::new(&src).exists() {
                            let _ = std::os::unix::fs::symlink(&src, bin.join(tool));
                            break;
                        }
                    }
                }
                bin.display().to_string()
            } else {
                "/usr/local/bin:/usr/bin:/bin".to_string()
            };
            // SHLVL=1: bash reads ~/.bashrc for every SSH session unless nested, and root's
            // on this machine runs `pyenv init` (150 ms a session); a build host's login
            // shell starts in milliseconds, and so do these hosts'.
            let config = format!(
                "Port 22\nListenAddress {addr}\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
                 StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nAllowStreamLocalForwarding yes\n\
                 StreamLocalBindUnlink yes\nSetEnv PATH={path} SHLVL=1\n",
                d.join("host_key").display(),
                d.join("sshd.pid").display(),
                d.join("authorized_keys").display(),
            );
            let config = match lacks.sessions {
                Some(n) => format!("{config}MaxSessions {n}\n"),
                None => config,
            };
            std::fs::write(d.join("sshd_config"), config).map_err(|e| e.to_string())?;
            Ok(())
        };
        if let Err(e) = setup() {
            let _ = sh(&["ip", "netns", "del", &ns]);
            let _ = sh(&["ip", "link", "del", &outer]);
            panic!("setting up host {n}: {e}");
        }
        let sshd = Command::new("ip")
            .args(["netns", "exec", &ns, "/usr/sbin/sshd", "-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let host = NetnsHost {
            ns,
            addr: addr.clone(),
            identity: d.join("client_key"),
            sshd,
            veth: outer,
            _dir: dir,
        };
        let start = Instant::now();
        while TcpStream::connect_timeout(
            &format!("{addr}:22").parse().unwrap(),
            Duration::from_millis(200),
        )
        .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "sshd did not listen on {addr}:22"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(host)
    }

    /// `[[hosts]]` for it, as user root with its key.
    pub fn config(&self, name: &str, extra: &str) -> String {
        format!(
            "[[hosts]]\nname = \"{name}\"\nssh = \"root@{}\"\nidentity = \"{}\"\nslots = 2\nwork_dir = \"/tmp/{}-work\"\n{extra}\n",
            self.addr,
            self.identity.display(),
            self.ns
        )
    }

    /// Cut its link, as a network that fails would.
    pub fn cut(&self) {
        sh(&["ip", "link", "set", &self.veth, "down"]).unwrap();
    }
}

impl Drop for NetnsHost {
    fn drop(&mut self) {
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
        let _ = sh(&["ip", "netns", "del", &self.ns]);
        let _ = sh(&["ip", "link", "del", &self.veth]);
        let _ = std::fs::remove_dir_all(format!("/tmp/{}-work", self.ns));
    }
}

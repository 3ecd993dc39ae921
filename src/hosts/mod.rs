//! Hosts: the machines a factory's runs may go to over SSH (`[[hosts]]` in shopfloor.toml),
//! and what the factory knows of each (drained by a person, down after a failed check).
//! The local machine is a host too, `local`, with the factory's own slots.
//!
//! This room declares hosts and checks them through the engines that already run there
//! (OpenSSH, git, the Docker engine): `shopfloor host check NAME` says, with what to install,
//! whether a host answers, has git (and Docker and the image, where asked), can write its
//! work directory, and can reach the factory back through a forwarded Unix socket (`ssh
//! -R`), the only way an agent there will ever reach it: nothing listens on a port.
//! [`link`] holds one open SSH connection per host for the factory, and
//! [`crate::sandbox::remote`] runs agents through it.

pub mod link;

use link::Done;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use crate::config::hosts::{HostBackend, HostConfig};
use crate::layout::WorkspaceInfo;

use crate::model::{LOCAL, is_label};

/// How long one SSH command of a check may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// Where `ssh` connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl SshTarget {
    /// Parse `user@host[:port]`. Nothing that `ssh` could read as an option gets through
    /// (a host or user starting with `-`, spaces, quotes): the value goes on its command line.
    pub fn parse(s: &str) -> Result<SshTarget, String> {
        let bad = |why: &str| {
            Err(format!(
                "ssh = \"{s}\" is not user@host[:port] ({why}); e.g. \"ci@10.0.0.7\" or \"ci@build-1:2222\""
            ))
        };
        let (user, rest) = match s.rsplit_once('@') {
            Some((u, r)) => (Some(u), r),
            None => (None, s),
        };
        if let Some(u) = user
            && (u.is_empty()
                || u.starts_with('-')
                || !u
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))
        {
            return bad("the user may hold letters, digits, `.`, `_` and `-`");
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            match v6.split_once(']') {
                Some((h, "")) => (h, None),
                Some((h, p)) => match p.strip_prefix(':') {
                    Some(p) => (h, Some(p)),
                    None => return bad("after `]` comes `:port`"),
                },
                None => return bad("an unclosed `[`"),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h, Some(p)),
                Some(_) => return bad("an IPv6 address goes in brackets: [::1]:22"),
                None => (rest, None),
            }
        };
        if host.is_empty()
            || host.starts_with('-')
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c))
        {
            return bad("the host is a name or an address");
        }
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => return bad("the port is 1 to 65535"),
            },
        };
        Ok(SshTarget {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
        })
    }

    /// `user@host` as `ssh` takes it.
    pub fn destination(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }
}

/// Check `[[hosts]]`: unique names (none `local`), SSH targets, slots, labels. The error
/// names the host and says what to change.
pub fn validate(hosts: &[HostConfig]) -> Result<(), String> {
    for (i, h) in hosts.iter().enumerate() {
        let name_ok = !h.name.is_empty()
            && h.name.len() <= 64
            && h.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
        if !name_ok {
            return Err(format!(
                "[[hosts]] name = \"{}\": a host's name is 1 to 64 letters, digits, `-` or `_`",
                h.name
            ));
        }
        if h.name == LOCAL {
            return Err(format!(
                "[[hosts]] name = \"{LOCAL}\" is the factory's own machine; name the host otherwise"
            ));
        }
        if hosts[..i].iter().any(|o| o.name == h.name) {
            return Err(format!("[[hosts]] `{}` is listed twice", h.name));
        }
        SshTarget::parse(&h.ssh).map_err(|e| format!("[[hosts]] `{}`: {e}", h.name))?;
        if h.slots == 0 {
            return Err(format!(
                "[[hosts]] `{}`: slots must be at least 1 (runs at once there); drain it with `shopfloor host drain {}` to send it none",
                h.name, h.name
            ));
        }
        if h.work_dir.trim().is_empty() || h.work_dir.contains(['\'', '"', '\n', '$', '`']) {
            return Err(format!(
                "[[hosts]] `{}`: work_dir = \"{}\" must be a plain path",
                h.name, h.work_dir
            ));
        }
        if let Some(l) = h.labels.iter().find(|l| !is_label(l)) {
            return Err(format!(
                "[[hosts]] `{}`: label \"{l}\" is not a word (letters, digits, `-`, `_`, `.`)",
                h.name
            ));
        }
    }
    Ok(())
}

/// What the factory knows of a host besides its config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "why")]
pub enum HostState {
    Up,
    /// A person drained it: no new run goes there.
    Drained,
    /// Its last check failed, with why; down until `host check` passes.
    Down(String),
}

fn marker(info: &WorkspaceInfo, name: &str, what: &str) -> PathBuf {
    info.hosts_dir().join(format!("{name}.{what}"))
}

/// A host's state: drained before down (a person's word first).
pub fn state(info: &WorkspaceInfo, name: &str) -> HostState {
    if marker(info, name, "drained").exists() {
        return HostState::Drained;
    }
    match std::fs::read_to_string(marker(info, name, "down")) {
        Ok(why) => HostState::Down(why.trim().to_string()),
        Err(_) => HostState::Up,
    }
}

pub(crate) fn write_marker(
    info: &WorkspaceInfo,
    name: &str,
    what: &str,
    text: &str,
) -> std::io::Result<()> {
    crate::private::private_dir(&info.hosts_dir())?;
    std::fs::write(marker(info, name, what), text)
}

pub(crate) fn remove_marker(info: &WorkspaceInfo, name: &str, what: &str) -> std::io::Result<()> {
    match std::fs::remove_file(marker(info, name, what)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A person drains (or undrains) a host: no new run goes there; live ones finish.
pub fn set_drained(info: &WorkspaceInfo, name: &str, drained: bool) -> std::io::Result<()> {
    if drained {
        write_marker(info, name, "drained", "")
    } else {
        remove_marker(info, name, "drained")
    }
}

/// One thing a check looked at, and what it found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub what: String,
    pub ok: bool,
    /// What was found, or what to do about it.
    pub detail: String,
}

/// Check `host` as the factory will use it: it answers over SSH, has git (and Docker and
/// the image, for a Docker host), can write its work directory, and can forward a Unix
/// socket back to this machine. Stops at the first thing that fails when the rest depends
/// on it. The host is marked down (or up again) by what it finds.
pub fn check(info: &WorkspaceInfo, host: &HostConfig, default_image: &str) -> Vec<Finding> {
    let ssh = Ssh::new(info, host);
    let mut out = Vec::new();
    let mut find = |what: &str, r: Result<String, String>| {
        let ok = r.is_ok();
        out.push(Finding {
            what: what.into(),
            ok,
            detail: r.unwrap_or_else(|e| e),
        });
        ok
    };
    let name = &host.name;
    let answers = match ssh.run("echo shopfloor-host-ok") {
        Ok(o) if o.ok() && o.stdout.contains("shopfloor-host-ok") => {
            Ok(format!("{} answers", ssh.target.host))
        }
        Ok(o) => Err(format!(
            "`{name}` does not answer over SSH ({}): check the address, that sshd runs there, and that the key{} is authorized for the user",
            o.said(),
            host.identity
                .as_ref()
                .map(|p| format!(" {}", p.display()))
                .unwrap_or_default()
        )),
        Err(e) => Err(format!("`{name}`: {e}")),
    };
    if find("ssh", answers) {
        let git = match ssh.run("git --version") {
            Ok(o) if o.ok() => Ok(o.stdout.trim().to_string()),
            Ok(o) => Err(format!(
                "git is not installed on `{name}` ({}): install it there (Debian/Ubuntu: `apt install git`)",
                o.said()
            )),
            Err(e) => Err(e),
        };
        find("git", git);
        let wd = &host.work_dir;
        let work_dir = match ssh.run(&format!(
            "mkdir -p '{wd}' && test -w '{wd}' && cd '{wd}' && pwd"
        )) {
            Ok(o) if o.ok() => Ok(o.stdout.trim().to_string()),
            Ok(o) => Err(format!(
                "`{name}` cannot write its work directory `{wd}` ({}): set [[hosts]] work_dir to a directory its user owns",
                o.said()
            )),
            Err(e) => Err(e),
        };
        let work_dir = if find("work dir", work_dir.clone()) {
            work_dir.ok()
        } else {
            None
        };
        if host.backend == HostBackend::Docker {
            let engine = match ssh.run("docker version --format '{{.Server.Version}}'") {
                Ok(o) if o.ok() => Ok(format!("Docker Engine {}", o.stdout.trim())),
                Ok(o) => Err(format!(
                    "Docker does not answer on `{name}` ({}): install Docker Engine there and let the user reach it (the `docker` group)",
                    o.said()
                )),
                Err(e) => Err(e),
            };
            if find("docker", engine) {
                let image = host.image.as_deref().unwrap_or(default_image);
                let has = match ssh.run(&format!(
                    "docker image inspect --format '{{{{.Id}}}}' '{image}'"
                )) {
                    Ok(o) if o.ok() => Ok(format!("{image} is there")),
                    Ok(_) => Err(format!(
                        "the image `{image}` is not on `{name}`: build it there, or copy it (`docker save {image} | ssh {} docker load`)",
                        ssh.target.destination()
                    )),
                    Err(e) => Err(e),
                };
                find("image", has);
            }
        }
        if let Some(wd) = work_dir {
            find("reach back", ssh.reach_back(info, &wd));
        }
    }
    let failed: Vec<&Finding> = out.iter().filter(|f| !f.ok).collect();
    let marked = match failed.first() {
        Some(f) => write_marker(info, &host.name, "down", &f.detail),
        None => remove_marker(info, &host.name, "down"),
    };
    if let Err(e) = marked {
        tracing::warn!(host = %host.name, error = %e, "could not record the host's state");
    }
    out
}

/// `ssh` to one host, as the factory runs it: batch mode (never a password prompt), a
/// known-hosts file of the workspace's own (a host's key is trusted on first use and held
/// to after), a bounded connect.
pub(crate) struct Ssh {
    pub(crate) target: SshTarget,
    identity: Option<PathBuf>,
    known_hosts: PathBuf,
}

impl Ssh {
    pub(crate) fn new(info: &WorkspaceInfo, host: &HostConfig) -> Ssh {
        Ssh {
            // Validated with the config: a bad one never gets here.
            target: SshTarget::parse(&host.ssh).unwrap_or(SshTarget {
                user: None,
                host: host.ssh.clone(),
                port: None,
            }),
            identity: host.identity.clone(),
            known_hosts: info.hosts_dir().join("known_hosts"),
        }
    }

    /// The options every `ssh` to the host takes, before the destination: batch mode,
    /// the workspace's known hosts, keepalives, the identity and port.
    pub(crate) fn options(&self) -> Vec<String> {
        let _ = crate::private::private_dir(self.known_hosts.parent().unwrap_or(Path::new(".")));
        let mut o: Vec<String> = [
            "BatchMode=yes",
            "ConnectTimeout=8",
            "StrictHostKeyChecking=accept-new",
            "ServerAliveInterval=5",
            "ServerAliveCountMax=2",
        ]
        .iter()
        .flat_map(|v| ["-o".to_string(), v.to_string()])
        .collect();
        o.push("-o".into());
        o.push(format!("UserKnownHostsFile={}", self.known_hosts.display()));
        if let Some(id) = &self.identity {
            o.extend(["-o".into(), "IdentitiesOnly=yes".into(), "-i".into()]);
            o.push(id.display().to_string());
        }
        if let Some(p) = self.target.port {
            o.extend(["-p".into(), p.to_string()]);
        }
        o
    }

    fn command(&self) -> Command {
        let mut c = Command::new("ssh");
        c.args(self.options());
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Run `script` on the host with a bounded wait.
    fn run(&self, script: &str) -> Result<Done, String> {
        let mut c = self.command();
        c.arg("--").arg(self.target.destination()).arg(script);
        run_bounded(c)
    }

    /// Forward a Unix socket of this machine to `work_dir` on the host (`ssh -R`, as runs
    /// there will reach the factory's MCP) and see it there.
    fn reach_back(&self, info: &WorkspaceInfo, work_dir: &str) -> Result<String, String> {
        let local_dir = info.hosts_dir();
        crate::private::private_dir(&local_dir).map_err(|e| e.to_string())?;
        let local = local_dir.join(format!("check-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&local);
        let listener = std::os::unix::net::UnixListener::bind(&local)
            .map_err(|e| format!("could not open a socket to forward ({e})"))?;
        let remote = format!("{work_dir}/check-{}.sock", std::process::id());
        let mut c = self.command();
        c.args([
            "-o",
            "ExitOnForwardFailure=yes",
            "-o",
            "StreamLocalBindUnlink=yes",
        ]);
        c.arg("-R").arg(format!("{remote}:{}", local.display()));
        c.arg("--").arg(self.target.destination()).arg(format!(
            "test -S '{remote}' && rm -f '{remote}' && echo forwarded"
        ));
        let ran = run_bounded(c);
        drop(listener);
        let _ = std::fs::remove_file(&local);
        match ran {
            Ok(o) if o.ok() && o.stdout.contains("forwarded") => {
                Ok("a Unix socket forwarded back over SSH (ssh -R)".into())
            }
            Ok(o) => Err(format!(
                "`{}` cannot forward a Unix socket back to the factory ({}): set `AllowStreamLocalForwarding yes` in its sshd_config",
                self.target.host,
                o.said()
            )),
            Err(e) => Err(e),
        }
    }
}

/// Run `c`, killing it after [`COMMAND_TIMEOUT`].
fn run_bounded(mut c: Command) -> Result<Done, String> {
    let mut child = c.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            "`ssh` is not installed on this machine: install the OpenSSH client (Debian/Ubuntu: `apt install openssh-client`)".to_string()
        }
        _ => format!("could not start ssh: {e}"),
    })?;
    // Read both pipes on threads so a chatty command cannot block on a full pipe.
    let mut so = child.stdout.take();
    let mut se = child.stderr.take();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = so.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = se.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if start.elapsed() > COMMAND_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for ssh: {e}")),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    match status {
        Some(s) => Ok(Done {
            code: s.code(),
            stdout,
            stderr,
        }),
        None => Err(format!(
            "no answer within {} s over SSH",
            COMMAND_TIMEOUT.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_targets_parse_and_nothing_reads_as_an_option() {
        assert_eq!(
            SshTarget::parse("ci@10.0.0.7:2222").unwrap(),
            SshTarget {
                user: Some("ci".into()),
                host: "10.0.0.7".into(),
                port: Some(2222)
            }
        );
        assert_eq!(
            SshTarget::parse("build-1").unwrap().destination(),
            "build-1"
        );
        assert_eq!(
            SshTarget::parse("root@[::1]:22").unwrap().host,
            "::1".to_string()
        );
        for bad in [
            "-oProxyCommand=sh",
            "ci@-oProxyCommand=sh",
            "-x@host",
            "ci@host:0",
            "ci@host:99999",
            "ci@ho st",
            "ci@host;rm",
            "ci@::1",
            "@host",
            "ci@",
            "ci@[::1",
        ] {
            assert!(SshTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts_are_validated_with_what_to_change() {
        let h = |name: &str, ssh: &str| HostConfig {
            name: name.into(),
            ssh: ssh.into(),
            identity: None,
            slots: 2,
            backend: HostBackend::Worktree,
            work_dir: crate::config::hosts::default_work_dir(),
            labels: vec!["gpu".into()],
            image: None,
        };
        assert!(validate(&[h("a", "ci@a"), h("b", "ci@b:2222")]).is_ok());
        assert!(
            validate(&[h("local", "ci@a")])
                .unwrap_err()
                .contains("own machine")
        );
        assert!(
            validate(&[h("a", "x"), h("a", "y")])
                .unwrap_err()
                .contains("twice")
        );
        assert!(validate(&[h("a b", "x")]).unwrap_err().contains("letters"));
        assert!(
            validate(&[h("a", "-oProxyCommand=x")])
                .unwrap_err()
                .contains("user@host")
        );
        let mut z = h("a", "x");
        z.slots = 0;
        assert!(validate(&[z]).unwrap_err().contains("drain"));
        let mut w = h("a", "x");
        w.work_dir = "$(reboot)".into();
        assert!(validate(&[w]).unwrap_err().contains("plain path"));
        let mut l = h("a", "x");
        l.labels = vec!["g p u".into()];
        assert!(validate(&[l]).unwrap_err().contains("not a word"));
    }
}

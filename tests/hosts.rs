//! `shopfloor host` against real sshd hosts, each in a network namespace of its own (see
//! common::hosts): a full host checks up; one without git, or without the Docker image
//! asked for, fails its check with what to install; a host whose link is cut is marked
//! down; drain and undrain; an `ssh` value made to smuggle an option is refused; a host
//! whose sshd allows fewer sessions than the factory holds is named with what to change.

use crate::common;

use std::time::{Duration, Instant};

use common::Env;
use common::hosts::{Lacks, NetnsHost};

#[test]
fn hosts_check_up_or_say_what_to_install_and_a_cut_link_marks_one_down() {
    let Some(full) = NetnsHost::start(Lacks::default()) else {
        return;
    };
    let Some(bare) = NetnsHost::start(Lacks {
        git: true,
        ..Lacks::default()
    }) else {
        return;
    };
    let config = format!(
        "{}{}{}",
        full.config("alpha", "labels = [\"linux\", \"gpu\"]"),
        bare.config("nogit", ""),
        full.config(
            "dock",
            "backend = \"docker\"\nimage = \"shopfloor-no-such-image:1\""
        ),
    );
    let env = Env::project("ho", &[("shopfloor.toml", &config)]);

    let listed = env.ok(&["host", "list"]);
    for want in ["local", "alpha", "linux,gpu", "nogit", "dock", "docker"] {
        assert!(listed.contains(want), "{want} in:\n{listed}");
    }

    let started = Instant::now();
    let checked = env.ok(&["host", "check", "alpha"]);
    eprintln!("host check alpha: {:?}\n{checked}", started.elapsed());
    for want in [
        "ok  ssh",
        "ok  git",
        "ok  work dir",
        "ok  reach back",
        "host `alpha` is up",
    ] {
        assert!(checked.contains(want), "{want} in:\n{checked}");
    }

    let (code, err) = env.fails(&["host", "check", "nogit"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("git is not installed on `nogit`") && err.contains("apt install git"),
        "{err}"
    );
    let (_, err) = env.fails(&["host", "check", "dock"]);
    assert!(
        err.contains("the image `shopfloor-no-such-image:1` is not on `dock`")
            && err.contains("docker load"),
        "{err}"
    );
    let hosts = env.json(&["host", "list", "--json"]);
    let state = |name: &str| {
        hosts
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(state("alpha")["state"], "up");
    assert_eq!(state("nogit")["state"], "down");
    assert!(
        state("nogit")["why"]
            .as_str()
            .unwrap()
            .contains("git is not installed")
    );

    // A person's drain holds until undrain; `local` is paused, not drained.
    env.ok(&["host", "drain", "alpha"]);
    assert!(env.ok(&["host", "list"]).contains("drained"));
    env.ok(&["host", "undrain", "alpha"]);
    assert!(!env.ok(&["host", "list"]).contains("drained"));
    let (_, err) = env.fails(&["host", "drain", "local"]);
    assert!(err.contains("--paused"), "{err}");
    let (_, err) = env.fails(&["host", "check", "nope"]);
    assert!(
        err.contains("no host `nope`") && err.contains("alpha"),
        "{err}"
    );

    // The link cut: the check fails within its bound, and the host is down.
    full.cut();
    let started = Instant::now();
    let (_, err) = env.fails(&["host", "check", "alpha"]);
    let took = started.elapsed();
    assert!(err.contains("does not answer over SSH"), "{err}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert!(
        env.ok(&["host", "list"])
            .contains("down: `alpha` does not answer")
    );
}

#[test]
fn an_ssh_value_made_to_pass_an_option_is_refused_with_its_line() {
    let env = Env::project("hx", &[("README", "x\n")]);
    let config = env.repo.path().join("shopfloor.toml");
    std::fs::write(
        &config,
        "[[hosts]]\nname = \"evil\"\nssh = \"-oProxyCommand=touch /tmp/shopfloor-pwned\"\n",
    )
    .unwrap();
    let (code, err) = env.fails(&["host", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("is not user@host[:port]"), "{err}");
    assert!(!std::path::Path::new("/tmp/shopfloor-pwned").exists());
    std::fs::write(
        &config,
        "[[hosts]]\nname = \"local\"\nssh = \"ci@10.0.0.1\"\n",
    )
    .unwrap();
    let (_, err) = env.fails(&["host", "list"]);
    assert!(err.contains("own machine"), "{err}");
}

/// The factory's link opens as many sessions as it will hold (slots + 2) when it comes up.
/// sshd refuses those past its `MaxSessions` on one connection, and ssh opens each of
/// those on a connection of its own: the run goes on, and the factory's log says what to
/// change. A host that allows exactly enough gets no warning.
#[test]
fn a_host_that_allows_too_few_ssh_sessions_is_named_with_what_to_change() {
    let Some(tight) = NetnsHost::start(Lacks {
        sessions: Some(3),
        ..Lacks::default()
    }) else {
        return;
    };
    let Some(fits) = NetnsHost::start(Lacks {
        sessions: Some(4),
        ..Lacks::default()
    }) else {
        return;
    };
    let warning = "allows 3 sessions on one connection and the factory holds 4";
    for (host, name) in [(&tight, "tight"), (&fits, "fits")] {
        let env = Env::project(
            name,
            &[
                (
                    "shopfloor.toml",
                    &format!(
                        "[factory]\ndefault_agent = \"ok\"\nlocal_slots = 0\nquiet_timeout_s = 60\n\n\
                         [test]\ncommand = \"true\"\n\n[agents.ok]\nadapter = \"fixture\"\nscenario = \"ok.toml\"\n\n{}",
                        host.config(name, "")
                    ),
                ),
                (
                    "ok.toml",
                    "name = \"ok\"\n[[step]]\nwrite = { path = \"ok.txt\", content = \"ok\\n\" }\n[[step]]\nsay = \"done\"\n",
                ),
            ],
        );
        let _serve = common::serve::Serve::start(&env);
        env.ok(&["ticket", "add", "Anything"]);
        env.wait_merged(1, Duration::from_secs(90));
        assert_eq!(env.runs()[0]["host"], name);
        let log = env.dump();
        if name == "tight" {
            assert!(
                log.contains(warning) && log.contains("raise `MaxSessions`"),
                "{log}"
            );
        } else {
            assert!(!log.contains("MaxSessions"), "{log}");
        }
    }
}

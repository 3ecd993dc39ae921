//! `shopfloor up` as the real binary: attached to a running `serve`, in a real terminal
//! (tmux), following the factory's events; and the errors when it cannot run.

use crate::common;

use common::Env;
use common::serve::Serve;
use common::tmux::Tmux;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_shopfloor")
}

#[test]
fn up_attaches_to_serve_follows_its_events_and_gives_the_terminal_back() {
    let env = Env::new();
    env.ok(&["workspace", "create", "att"]);
    // Paused: tickets stay queued, so the board shows what the CLI adds.
    let serve = Serve::paused(&env);
    let tmux = Tmux::new("up");
    let cmd = format!(
        "cd {} && env SHOPFLOOR_HOME={} {} up; echo UP-EXIT=$?; sleep 600",
        env.repo.path().display(),
        env.home.path().display(),
        bin()
    );
    tmux.start(&cmd, 140, 40);
    tmux.wait("the status bar", 30, |s| s.contains(" att │ main"));
    tmux.keys("2");
    tmux.wait("the ticket board", 10, |s| s.contains("queued (0)"));
    // A ticket added from the CLI reaches the board through the event stream.
    env.ok(&["ticket", "add", "Write the changelog", "--priority", "3"]);
    tmux.wait("the new ticket", 20, |s| {
        s.contains("queued (1)") && s.contains("#1 Write the change")
    });
    // `p` sets its priority through the API.
    tmux.keys("p");
    tmux.wait("the priority prompt", 10, |s| {
        s.contains("Priority of ticket 1")
    });
    tmux.keys("BSpace");
    tmux.keys("9");
    tmux.keys("Enter");
    tmux.wait("the new priority", 20, |s| s.contains("p9"));
    let t = env.json(&["ticket", "show", "1", "--json"]);
    assert_eq!(t["priority"], 9, "{t}");
    // The help overlay is the live keymap of the screen.
    tmux.keys("?");
    tmux.wait("the help", 10, |s| s.contains("change its priority"));
    tmux.keys("Escape");
    tmux.keys("q");
    let s = tmux.wait("up to exit", 30, |s| s.contains("UP-EXIT="));
    assert!(s.contains("UP-EXIT=0"), "{s}");
    // Attached, quitting the control room leaves the factory running.
    env.ok(&["ticket", "list"]);
    assert!(serve.stop().success());
}

#[test]
fn up_says_what_to_do_when_it_cannot_run() {
    let env = Env::new();
    env.ok(&["workspace", "create", "lone"]);
    let (code, err) = env.fails(&["up", "--attach"]);
    assert_eq!(code, 1);
    assert!(err.contains("no factory answers"), "{err}");
    assert!(err.contains("shopfloor serve"), "{err}");
    // Without a terminal, `up` says so rather than drawing into a pipe.
    let (code, err) = env.fails(&["up"]);
    assert_eq!(code, 1);
    assert!(err.contains("needs a terminal"), "{err}");
}

#[test]
fn ctrl_z_gives_the_shell_back_and_fg_resumes_the_control_room() {
    let env = Env::new();
    env.ok(&["workspace", "create", "sus"]);
    let serve = Serve::paused(&env);
    let tmux = Tmux::new("sus");
    // An interactive shell, so there is job control to stop and resume the program.
    tmux.start("env PS1='$ ' bash --norc --noprofile -i", 120, 30);
    tmux.wait("the shell", 10, |s| s.contains('$'));
    let line = format!(
        "cd {} && SHOPFLOOR_HOME={} {} up --attach",
        env.repo.path().display(),
        env.home.path().display(),
        bin()
    );
    tmux.keys(&line);
    tmux.keys("Enter");
    tmux.wait("the control room", 30, |s| s.contains(" sus │ main"));
    tmux.keys("C-z");
    tmux.wait("the shell back, the program stopped", 10, |s| {
        s.contains("Stopped") && !s.contains(" sus │ main")
    });
    tmux.keys("fg");
    tmux.keys("Enter");
    tmux.wait("the control room again", 10, |s| s.contains(" sus │ main"));
    tmux.keys("q");
    tmux.wait("the shell after quitting", 10, |s| {
        !s.contains(" sus │ main") && s.trim_end().ends_with('$')
    });
    assert!(serve.stop().success());
}

/// The factory inside the control room: the day's budget spent, the status bar says so,
/// and nothing is printed over the screen (the factory used to `println!` it, drawing
/// over whatever the control room had there).
#[test]
fn a_spent_budget_shows_in_the_status_bar_and_nothing_prints_over_the_screen() {
    let env = Env::new();
    let root = env.repo.path();
    std::fs::write(
        root.join("shopfloor.toml"),
        "[factory]\ndefault_agent = \"ok\"\nconcurrency = 1\nbudget_usd_per_day = 0.000001\n\n\
         [agents.ok]\nadapter = \"fixture\"\nscenario = \"ok.toml\"\n",
    )
    .unwrap();
    std::fs::write(
        root.join("ok.toml"),
        "name = \"ok\"\n[[step]]\nwrite = { path = \"ok.txt\", content = \"ok\\n\" }\n[[step]]\nsay = \"done\"\n",
    )
    .unwrap();
    common::commit_all(root, "config");
    env.ok(&["workspace", "create", "bud"]);
    env.ok(&["ticket", "add", "Spend the day's budget"]);
    env.ok(&["ticket", "add", "Wait for tomorrow"]);
    let tmux = Tmux::new("budget");
    let cmd = format!(
        "cd {} && env SHOPFLOOR_HOME={} {} up; echo UP-EXIT=$?; sleep 600",
        root.display(),
        env.home.path().display(),
        bin()
    );
    tmux.start(&cmd, 140, 40);
    let screen = tmux.wait("the budget held", 60, |s| s.contains("day's budget spent"));
    // Past the next scheduler passes, where the notice used to be printed.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let screen = format!("{screen}\n{}", tmux.screen());
    assert!(!screen.contains("today's budget of"), "{screen}");
    tmux.keys("q");
    let s = tmux.wait("up to exit", 30, |s| s.contains("UP-EXIT="));
    assert!(s.contains("UP-EXIT=0"), "{s}");
}

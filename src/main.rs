//! The `shopfloor` binary: parses the command line and hands off to the CLI views.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`shopfloor trace list | head`) like other Unix tools,
    // instead of Rust's default of failing the next write to stdout.
    // SAFETY: called before any thread starts; restoring a default disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Before anything is created: every file in a data directory is private (0600/0700).
    shopfloor::private::restrict_process();
    cli::main()
}

//! Everything in a workspace's data directory is private to its user (invariant 11): 0700
//! directories and 0600 files. The files there are made by many hands (redb, tantivy,
//! libgit2, the log appender, the agents themselves), so the one place that holds for all
//! of them is the process's umask: the binary sets it to 077 first thing. Files made for
//! the user outside the data directory (`shopfloor init`, an export) are given the mode
//! the user's own umask would have given them.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

/// The umask the process started with (the user's choice), before [`restrict_process`].
static USER_UMASK: AtomicU32 = AtomicU32::new(0o022);

/// Make every file and directory this process (and its children) creates private. Call
/// first thing in `main`, before any thread starts.
pub fn restrict_process() {
    // SAFETY: umask cannot fail; called before threads exist, so nothing races it.
    let old = unsafe { libc::umask(0o077) };
    USER_UMASK.store(old as u32, Ordering::SeqCst);
}

/// Give a file made for the user (outside the data directory) the mode their umask
/// would have: readable by others if they say so, as any other tool's output.
pub fn as_user_file(path: &Path) -> std::io::Result<()> {
    let mode = 0o666 & !USER_UMASK.load(Ordering::SeqCst);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Make `dir` (and its missing parents) and restrict it to its owner, mending one an
/// older shopfloor or another tool made with looser permissions.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

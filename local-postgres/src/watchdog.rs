//! The watchdog: a tiny detached shell process that removes a throwaway cluster when its owner
//! dies without dropping it (SIGKILL, abort, or the normal exit of a test binary, which never
//! drops statics such as a cluster held in a `OnceLock`).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};

use crate::ClusterError;
use crate::process::ServerUser;

/// Waits for end-of-file on stdin, then stops the server and deletes the cluster directory.
///
/// Its stdin is a pipe whose only writer is the owning process, so end-of-file arrives exactly
/// when the owner is gone, however it went: the kernel closes the pipe even on SIGKILL. That
/// beats polling the owner's pid, which can be reused. It ignores the terminal's signals
/// (and runs in its own process group, out of reach of Ctrl-C), so a Ctrl-C that kills the
/// owner is followed by the cleanup rather than interrupting it.
///
/// Arguments: $1 = pg_ctl, $2 = data directory, $3 = cluster directory to delete.
const SCRIPT: &str = r#"
trap '' HUP INT QUIT
while read -r _; do :; done
"$1" stop -D "$2" -m immediate -w >/dev/null 2>&1
rm -rf "$3"
"#;

/// The running watchdog of one throwaway cluster.
pub(crate) struct Watchdog {
    child: Child,
}

impl Watchdog {
    /// Starts the watchdog for a cluster living in `cluster_dir`.
    ///
    /// It runs as the server's user so that its `pg_ctl stop` is accepted (pg_ctl refuses root)
    /// and can only ever signal that user's processes; that user owns `cluster_dir`, and the
    /// temp directory's sticky bit lets an owner delete its own directory.
    pub(crate) fn spawn(
        user: ServerUser,
        pg_ctl: &Path,
        data_dir: &Path,
        cluster_dir: &Path,
    ) -> Result<Watchdog, ClusterError> {
        let child = user
            .command("/bin/sh", cluster_dir)
            .args(["-c", SCRIPT, "nexacore-pg-watchdog"])
            .arg(pg_ctl)
            .arg(data_dir)
            .arg(cluster_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|source| ClusterError::Spawn { program: "sh (watchdog)".to_owned(), source })?;
        Ok(Watchdog { child })
    }

    /// Ends the watchdog without it doing anything: the owner has cleaned up itself.
    pub(crate) fn dismiss(mut self) {
        // Errors mean it is already gone, which is what we want; `wait` reaps it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Lets the watchdog do the cleanup now, in the background (closing its stdin is the signal).
    pub(crate) fn trigger(mut self) {
        drop(self.child.stdin.take());
    }
}

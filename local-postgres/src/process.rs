//! Running PostgreSQL's own tools as the right user, and keeping what they said when they fail.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use crate::ClusterError;

/// The account that runs `initdb`, `pg_ctl` and the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ServerUser {
    /// We are not root: the tools run as we are and the files are ours.
    Current,
    /// We are root, which PostgreSQL refuses to run as: the tools run as the `postgres`
    /// account, which must own the cluster's directories and be able to reach them.
    Postgres { uid: u32, gid: u32 },
}

impl ServerUser {
    /// Works out, once per process, whether we have to switch to the `postgres` account.
    pub(crate) fn detect() -> Result<ServerUser, ClusterError> {
        static DETECTED: OnceLock<ServerUser> = OnceLock::new();
        if let Some(user) = DETECTED.get() {
            return Ok(*user);
        }
        // `id` rather than libc: it keeps this crate free of unsafe code, and it is asked once.
        let user = if id(&["-u"])? == 0 {
            let no_user = |e: ClusterError| ClusterError::NoServerUser { detail: e.to_string() };
            ServerUser::Postgres {
                uid: id(&["-u", "postgres"]).map_err(no_user)?,
                gid: id(&["-g", "postgres"]).map_err(no_user)?,
            }
        } else {
            ServerUser::Current
        };
        Ok(*DETECTED.get_or_init(|| user))
    }

    pub(crate) fn name(self) -> String {
        match self {
            ServerUser::Current => "current".to_owned(),
            ServerUser::Postgres { .. } => "postgres".to_owned(),
        }
    }

    /// A command that runs `program` as this user, in `cwd`, with no stdin.
    ///
    /// `cwd` matters as root: the inherited working directory may be one the `postgres` account
    /// cannot enter, which makes the PostgreSQL tools fail oddly; the cluster's own directory
    /// always works. `LC_ALL=C` keeps messages (which we search for "Address already in use")
    /// in English.
    pub(crate) fn command(self, program: impl AsRef<OsStr>, cwd: &Path) -> Command {
        let mut command = Command::new(program);
        command.current_dir(cwd).stdin(Stdio::null()).env("LC_ALL", "C");
        if let ServerUser::Postgres { uid, gid } = self {
            // std drops supplementary groups before setuid, so nothing of root's remains. Nor
            // its home: the server's own libpq (a subscription connecting to another server)
            // would look for a client certificate under /root/.postgresql and fail on the
            // permission instead of finding none.
            command.uid(uid).gid(gid).env("HOME", cwd);
        }
        command
    }

    /// Hands a directory we created to this user (a no-op when that is us).
    pub(crate) fn take_ownership(self, path: &Path) -> Result<(), ClusterError> {
        match self {
            ServerUser::Current => Ok(()),
            ServerUser::Postgres { uid, gid } => std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|e| ClusterError::io("hand over to the postgres user", path, e)),
        }
    }

    /// Checks that this user can create files in `dir`. As root that is not a given: a
    /// directory under a private home (mode 0700) is unreachable for `postgres` even when it
    /// owns the directory itself, and initdb's own error for it is cryptic.
    pub(crate) fn ensure_can_write(self, dir: &Path) -> Result<(), ClusterError> {
        if self == ServerUser::Current {
            return Ok(());
        }
        let status = self
            .command("/bin/sh", Path::new("/"))
            .args(["-c", r#"test -d "$1" && test -w "$1" && test -x "$1""#, "sh"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|source| ClusterError::Spawn { program: "sh".to_owned(), source })?;
        if status.success() {
            Ok(())
        } else {
            Err(ClusterError::DirNotAccessible { dir: dir.to_owned(), user: self.name() })
        }
    }
}

/// Runs `id ARGS` and parses the number it prints.
fn id(args: &[&str]) -> Result<u32, ClusterError> {
    let output = run(Command::new("id").args(args).stdin(Stdio::null()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim().parse().map_err(|_| ClusterError::UnexpectedOutput {
        command: describe(Command::new("id").args(args)),
        output: text.into_owned(),
    })
}

/// Runs a command to completion; a non-zero exit becomes an error carrying everything it printed.
pub(crate) fn run(command: &mut Command) -> Result<Output, ClusterError> {
    let output = command.output().map_err(|source| ClusterError::Spawn {
        program: command.get_program().to_string_lossy().into_owned(),
        source,
    })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(ClusterError::CommandFailed { command: describe(command), status: output.status, output: printed(&output) })
    }
}

/// What a finished command wrote, stderr first since that is where the reason usually is.
pub(crate) fn printed(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    format!("{}\n{}", stderr.trim(), stdout.trim()).trim().to_owned()
}

/// `program arg arg …`, for error messages.
pub(crate) fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes `value` for `/bin/sh`. Needed because `pg_ctl -o` hands its options to a shell.
pub(crate) fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn shell_quote_survives_spaces_and_quotes() {
        for value in ["", "plain", "with space", "it's", "$HOME `x` \"y\""] {
            let output = std::process::Command::new("sh")
                .args(["-c", &format!("printf %s {}", shell_quote(value))])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&output.stdout), value);
        }
    }
}

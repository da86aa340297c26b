//! The one error type of this crate: everything that can go wrong finding, starting or using a local server.

use std::path::PathBuf;
use std::process::ExitStatus;

/// Why a local PostgreSQL server could not be found, started, stopped or used.
///
/// Messages are meant for a developer at a terminal: they say what to install or change,
/// and failed server starts carry the tail of the server log, which is where PostgreSQL
/// explains itself.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH nor in \
         /usr/lib/postgresql/*/bin; install them: Debian/Ubuntu `apt install postgresql`, \
         Fedora `dnf install postgresql-server`, macOS `brew install postgresql` \
         (or point NEXACORE_PG_BINDIR at the directory holding them)"
    )]
    BinariesNotFound,

    #[error(
        "pg_dump and pg_restore were not found in /usr/lib/postgresql/*/bin nor on PATH; install \
         them: Debian/Ubuntu `apt install postgresql-client`, Fedora `dnf install postgresql`, \
         macOS `brew install postgresql` (or point NEXACORE_PG_BINDIR at the directory holding them)"
    )]
    DumpToolsNotFound,

    #[error(
        "running as root, and PostgreSQL refuses to run as root, but there is no `postgres` \
         user to run it as ({detail}); installing the PostgreSQL package creates that user"
    )]
    NoServerUser { detail: String },

    #[error(
        "the `{user}` user cannot write to `{}`: every parent directory must be traversable \
         by it (e.g. `chmod o+x` on each), or choose a directory elsewhere",
        dir.display()
    )]
    DirNotAccessible { dir: PathBuf, user: String },

    #[error("could not {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("could not run `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },

    #[error("`{command}` failed ({status}):\n{output}")]
    CommandFailed { command: String, status: ExitStatus, output: String },

    #[error("`{command}` printed something unexpected: {output:?}")]
    UnexpectedOutput { command: String, output: String },

    #[error(
        "`{}` holds a PostgreSQL {data_version} cluster, but the server binaries in `{}` are \
         version {binaries_version}; install PostgreSQL {data_version} (and set \
         NEXACORE_PG_BINDIR to its bin directory) or move the directory away",
        data_dir.display(),
        bin_dir.display()
    )]
    VersionMismatch { data_dir: PathBuf, data_version: String, bin_dir: PathBuf, binaries_version: u32 },

    #[error("port {port} on 127.0.0.1 is already in use")]
    PortInUse { port: u16 },

    #[error(
        "PostgreSQL in `{}` did not start on port {port} ({reason})\n\
         --- last lines of {} ---\n{log_tail}",
        data_dir.display(),
        log_file.display()
    )]
    StartFailed { data_dir: PathBuf, port: u16, reason: String, log_file: PathBuf, log_tail: String },

    #[error("invalid database name prefix {prefix:?}: use at most {max_len} characters from [a-z0-9_]")]
    InvalidDatabasePrefix { prefix: String, max_len: usize },

    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl ClusterError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ClusterError::Io { action, path: path.into(), source }
    }
}

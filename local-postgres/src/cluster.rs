//! `LocalCluster`: a PostgreSQL server this process created with `initdb` and started with
//! `pg_ctl`, either a throwaway one for tests or a persistent one for the dev stack.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::process::{ServerUser, describe, printed, run, shell_quote};
use crate::watchdog::Watchdog;
use crate::{ClusterError, PgBinaries, find_binaries, port, scratch};

/// Settings that trade crash safety for speed; a throwaway cluster has no data worth keeping.
/// `max_connections` is raised because tests open many pools against one shared server.
/// Every cluster also gets [`EVERY_CLUSTER_SETTINGS`].
const THROWAWAY_SETTINGS: &[(&str, &str)] =
    &[("fsync", "off"), ("synchronous_commit", "off"), ("full_page_writes", "off"), ("max_connections", "400")];

/// Settings of every cluster started here: `wal_level = logical`, so a tenant can be moved off
/// the server by logical replication (`ops tenants move`).
const EVERY_CLUSTER_SETTINGS: &[(&str, &str)] = &[("wal_level", "logical")];

/// How often to pick another port when the one we chose was taken before the server bound it.
const START_ATTEMPTS: u32 = 5;

/// Layout of a cluster directory. PGDATA is a subdirectory so that the log, the socket and our
/// port file sit next to it, not inside it (initdb wants an empty directory).
const DATA_DIR: &str = "data";
const LOG_FILE: &str = "server.log";
const SOCKET_DIR: &str = "socket";
const PORT_FILE: &str = "port";
/// Where a first initdb of a persistent cluster happens, renamed to `data` once complete, so an
/// interrupted first start never leaves a half-made `data` behind that later starts would trust.
const STAGING_DATA_DIR: &str = "data.initdb";
/// The server's copy of its TLS certificate and key.
const SSL_DIR: &str = "ssl";

/// A TLS certificate (chain) and its private key, PEM files, for a cluster to serve `ssl=on`.
#[derive(Debug, Clone)]
pub struct SslFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// A Unix socket path must fit in `sockaddr_un.sun_path` (104 bytes on macOS, 108 on Linux).
const MAX_SOCKET_PATH: usize = 100;

/// A running PostgreSQL server that this process started.
///
/// Throwaway clusters are stopped and deleted on drop (and by a watchdog if this process dies
/// first); persistent clusters keep their directory and are stopped on drop or by [`stop`].
///
/// [`stop`]: LocalCluster::stop
pub struct LocalCluster {
    binaries: PgBinaries,
    user: ServerUser,
    dir: PathBuf,
    data_dir: PathBuf,
    port: u16,
    kind: Kind,
    /// Whether a server may be running that we still have to stop.
    running: bool,
}

enum Kind {
    Throwaway {
        /// Taken when the cluster is removed (and `None` if spawning it failed).
        watchdog: Option<Watchdog>,
        removed: bool,
    },
    Persistent,
}

/// Which port a start may use.
#[derive(Clone, Copy)]
enum PortChoice {
    /// The caller asked for this one: taken means failure.
    Exactly(u16),
    /// Use this one if it is free (a persistent cluster's previous port), else any free port.
    Prefer(Option<u16>),
}

impl LocalCluster {
    /// A private throwaway cluster in a new temp dir, on a free 127.0.0.1 port, tuned for tests
    /// (fsync=off, synchronous_commit=off, full_page_writes=off, max_connections=400).
    ///
    /// The temp dir is in /dev/shm (RAM) when that has 2 GiB free and neither
    /// `NEXACORE_PG_TMPDIR` nor `TMPDIR` says otherwise; on disk, creating files is most of
    /// the cost of initdb and of `CREATE DATABASE`.
    ///
    /// Stopped (`pg_ctl stop -m immediate`) and its directory removed on drop, and by a watchdog
    /// process if this process dies without dropping it (kill -9, a panic, or the exit of a test
    /// binary, which never drops statics: the watchdog is what cleans up a cluster in a `OnceLock`).
    pub fn start_throwaway() -> Result<LocalCluster, ClusterError> {
        Self::start_throwaway_with(&[])
    }

    /// [`start_throwaway`](Self::start_throwaway) with server settings of the caller's on top
    /// of the throwaway ones (a later `-c` wins), e.g. a benchmark's higher `max_connections`.
    pub fn start_throwaway_with(extra_settings: &[(&str, &str)]) -> Result<LocalCluster, ClusterError> {
        Self::throwaway(extra_settings, None)
    }

    /// [`start_throwaway`](Self::start_throwaway) serving TLS (`ssl=on`) with this certificate
    /// and key; clients may still connect without TLS unless they ask for it (`sslmode`).
    pub fn start_throwaway_with_ssl(ssl: &SslFiles) -> Result<LocalCluster, ClusterError> {
        Self::throwaway(&[], Some(ssl))
    }

    fn throwaway(extra_settings: &[(&str, &str)], ssl: Option<&SslFiles>) -> Result<LocalCluster, ClusterError> {
        let started = Instant::now();
        let binaries = find_binaries()?;
        let user = ServerUser::detect()?;
        let parent = scratch::throwaway_parent_dir();
        let temp = tempfile::Builder::new()
            .prefix("nexacore-pg-")
            // Private to the server's user (it becomes the owner below), like PGDATA itself.
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(&parent)
            .map_err(|e| ClusterError::io("create a directory in", &parent, e))?;
        user.take_ownership(temp.path())?;
        user.ensure_can_write(temp.path())?;
        // From here on the cluster value owns the directory: its drop removes it, so every
        // early return below cleans up.
        let dir = temp.keep();
        let mut cluster = LocalCluster {
            data_dir: dir.join(DATA_DIR),
            dir,
            binaries,
            user,
            port: 0,
            kind: Kind::Throwaway { watchdog: None, removed: false },
            running: false,
        };
        // Before initdb, so that even a death during initdb leaves nothing behind.
        let watchdog = Watchdog::spawn(user, &cluster.binaries.pg_ctl(), &cluster.data_dir, &cluster.dir)?;
        cluster.kind = Kind::Throwaway { watchdog: Some(watchdog), removed: false };
        cluster.initdb(&cluster.data_dir)?;
        let ssl_settings = match ssl {
            Some(ssl) => cluster.install_ssl(ssl)?,
            None => Vec::new(),
        };
        let settings: Vec<(&str, &str)> = EVERY_CLUSTER_SETTINGS
            .iter()
            .chain(THROWAWAY_SETTINGS)
            .chain(extra_settings)
            .copied()
            .chain(ssl_settings.iter().map(|(k, v)| (*k, v.as_str())))
            .collect();
        cluster.start(PortChoice::Prefer(None), &settings)?;
        tracing::info!(
            port = cluster.port,
            dir = %cluster.dir.display(),
            elapsed_ms = started.elapsed().as_millis(),
            "started throwaway PostgreSQL {}",
            cluster.binaries.major_version(),
        );
        Ok(cluster)
    }

    /// A persistent cluster in `dir`: created with initdb on first use and reused afterwards
    /// (data kept), default durability settings, listening on 127.0.0.1:`port`, or when `None`
    /// on the port it had last time if that is free, else on a free one. The port is
    /// remembered in `dir/port`.
    ///
    /// A server that a previous run left running in `dir` (its owner crashed, or it outlived a
    /// Ctrl-C, which it is meant to) is stopped first, so the cluster always runs with the
    /// settings asked for here. The directory is never removed; [`stop`] or dropping the
    /// value stops the server (fast mode: sessions are ended, data is checkpointed).
    ///
    /// [`stop`]: LocalCluster::stop
    pub fn start_persistent(dir: &Path, port: Option<u16>) -> Result<LocalCluster, ClusterError> {
        Self::start_persistent_with_ssl(dir, port, None)
    }

    /// [`start_persistent`](Self::start_persistent), serving TLS (`ssl=on`) with `ssl`'s
    /// certificate and key when given (copied into the cluster directory at every start).
    pub fn start_persistent_with_ssl(
        dir: &Path,
        port: Option<u16>,
        ssl: Option<&SslFiles>,
    ) -> Result<LocalCluster, ClusterError> {
        let started = Instant::now();
        // Port 0 means "any", as it does for a listener.
        let port = port.filter(|&port| port != 0);
        let binaries = find_binaries()?;
        let user = ServerUser::detect()?;
        // Absolute, because the tools run with the cluster directory as working directory.
        let dir = std::path::absolute(dir).map_err(|e| ClusterError::io("resolve the path", dir, e))?;
        fs::create_dir_all(&dir).map_err(|e| ClusterError::io("create", &dir, e))?;
        user.take_ownership(&dir)?;
        user.ensure_can_write(&dir)?;
        let mut cluster = LocalCluster {
            data_dir: dir.join(DATA_DIR),
            dir,
            binaries,
            user,
            port: 0,
            kind: Kind::Persistent,
            running: false,
        };
        let initialized = cluster.data_dir.join("PG_VERSION").is_file();
        if initialized {
            cluster.check_data_version()?;
            cluster.stop_leftover_server()?;
        }
        // Checked before the (slower) initdb so that a taken port fails fast.
        if let Some(port) = port
            && !port::is_free(port)
        {
            return Err(ClusterError::PortInUse { port });
        }
        if !initialized {
            cluster.initdb_durably()?;
        }
        let choice = match port {
            Some(port) => PortChoice::Exactly(port),
            None => PortChoice::Prefer(cluster.remembered_port()),
        };
        let ssl_settings = match ssl {
            Some(ssl) => cluster.install_ssl(ssl)?,
            None => Vec::new(),
        };
        let settings: Vec<(&str, &str)> =
            EVERY_CLUSTER_SETTINGS.iter().copied().chain(ssl_settings.iter().map(|(k, v)| (*k, v.as_str()))).collect();
        cluster.start(choice, &settings)?;
        cluster.remember_port();
        tracing::info!(
            port = cluster.port,
            dir = %cluster.dir.display(),
            created = !initialized,
            elapsed_ms = started.elapsed().as_millis(),
            "started persistent PostgreSQL {}",
            cluster.binaries.major_version(),
        );
        Ok(cluster)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:{port}/postgres`: the superuser, which needs no password
    /// because the cluster trusts connections, and listens on the loopback interface only.
    pub fn superuser_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The server's data directory (PGDATA), inside [`dir`](LocalCluster::dir).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The cluster directory: PGDATA (`data/`), the server log, the Unix socket directory and,
    /// for persistent clusters, the remembered port.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server log, the place to look when something about the server is odd.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    pub fn binaries(&self) -> &PgBinaries {
        &self.binaries
    }

    /// Stops the server (a throwaway cluster immediately, then deletes its directory; a
    /// persistent one in fast mode, keeping its data).
    pub fn stop(mut self) -> Result<(), ClusterError> {
        // Drop runs afterwards and finds nothing left to do.
        self.shutdown()
    }

    /// Stops the server and, for a throwaway cluster, deletes it. Safe to call twice.
    fn shutdown(&mut self) -> Result<(), ClusterError> {
        let mut result = Ok(());
        if std::mem::take(&mut self.running) {
            let mode = match self.kind {
                // Nothing in a throwaway cluster is worth a shutdown checkpoint.
                Kind::Throwaway { .. } => "immediate",
                Kind::Persistent => "fast",
            };
            result = self.pg_ctl_stop(mode);
        }
        if let Kind::Throwaway { watchdog, removed } = &mut self.kind
            && !std::mem::replace(removed, true)
        {
            match fs::remove_dir_all(&self.dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    // Let the watchdog try as well; it runs as the server's user.
                    if let Some(watchdog) = watchdog.take() {
                        watchdog.trigger();
                    }
                    result = result.and(Err(ClusterError::io("remove", &self.dir, e)));
                }
                _ => {
                    if let Some(watchdog) = watchdog.take() {
                        watchdog.dismiss();
                    }
                }
            }
        }
        result
    }

    /// Copies the certificate and key into the cluster directory, owned by the server's user
    /// with mode 0600 (the server refuses a key others can read), and returns the settings
    /// that turn TLS on with them.
    fn install_ssl(&self, ssl: &SslFiles) -> Result<Vec<(&'static str, String)>, ClusterError> {
        let dir = self.dir.join(SSL_DIR);
        fs::create_dir_all(&dir).map_err(|e| ClusterError::io("create", &dir, e))?;
        self.user.take_ownership(&dir)?;
        let mut installed = Vec::new();
        for (from, name) in [(&ssl.cert_file, "server.crt"), (&ssl.key_file, "server.key")] {
            let to = dir.join(name);
            let bytes = fs::read(from).map_err(|e| ClusterError::io("read", from, e))?;
            let _ = fs::remove_file(&to);
            fs::write(&to, bytes).map_err(|e| ClusterError::io("write", &to, e))?;
            fs::set_permissions(&to, fs::Permissions::from_mode(0o600))
                .map_err(|e| ClusterError::io("restrict", &to, e))?;
            self.user.take_ownership(&to)?;
            installed.push(shell_quote(&to.to_string_lossy()));
        }
        let key = installed.pop().expect("two files");
        let cert = installed.pop().expect("two files");
        Ok(vec![("ssl", "on".to_owned()), ("ssl_cert_file", cert), ("ssl_key_file", key)])
    }

    /// A PostgreSQL tool run as the server's user, in the cluster directory.
    fn tool(&self, program: PathBuf) -> Command {
        self.user.command(program, &self.dir)
    }

    /// Creates a cluster in `target`, without fsyncing each file (the slow part of initdb).
    ///
    /// Trust authentication is safe only because the server listens on 127.0.0.1 and its
    /// socket lives in a directory only the server's user can enter. UTF8 and the C locale make
    /// every machine sort and compare text the same way.
    fn initdb(&self, target: &Path) -> Result<(), ClusterError> {
        let mut initdb = self.tool(self.binaries.initdb());
        initdb
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
            .args(["--no-sync", "--no-instructions", "-D"])
            .arg(target);
        run(&mut initdb).map(drop)
    }

    /// First start of a persistent cluster: initdb into a staging directory, flush it to disk,
    /// then rename it into place.
    fn initdb_durably(&self) -> Result<(), ClusterError> {
        let staging = self.dir.join(STAGING_DATA_DIR);
        if staging.exists() {
            // Left by a first start that was interrupted; it never became `data`.
            fs::remove_dir_all(&staging).map_err(|e| ClusterError::io("remove", &staging, e))?;
        }
        self.initdb(&staging)?;
        // One syncfs (`sync -f`, Linux) flushes it all in ≈ 0.1 s; initdb's own per-file
        // fsyncs take ≈ 3 s. Where `sync -f` is missing, fall back to initdb's way.
        let synced = Command::new("sync").arg("-f").arg(&staging).output().is_ok_and(|output| output.status.success());
        if !synced {
            let mut sync_only = self.tool(self.binaries.initdb());
            sync_only.args(["--sync-only", "-D"]).arg(&staging);
            run(&mut sync_only)?;
        }
        fs::rename(&staging, &self.data_dir).map_err(|e| ClusterError::io("move into place", &staging, e))
    }

    /// A data directory only works with the major version that created it; say so plainly
    /// rather than let the server fail with a log message.
    fn check_data_version(&self) -> Result<(), ClusterError> {
        let path = self.data_dir.join("PG_VERSION");
        let data_version = fs::read_to_string(&path).map_err(|e| ClusterError::io("read", &path, e))?.trim().to_owned();
        if data_version == self.binaries.major_version().to_string() {
            Ok(())
        } else {
            Err(ClusterError::VersionMismatch {
                data_dir: self.data_dir.clone(),
                data_version,
                bin_dir: self.binaries.bin_dir().to_owned(),
                binaries_version: self.binaries.major_version(),
            })
        }
    }

    /// Stops a server still running in this data directory from an earlier run.
    ///
    /// `pg_ctl status` checks that the pid in `postmaster.pid` is alive (a stale file from a
    /// dead server is fine: the server removes it when it starts).
    fn stop_leftover_server(&self) -> Result<(), ClusterError> {
        let mut status = self.tool(self.binaries.pg_ctl());
        status.arg("status").arg("-D").arg(&self.data_dir);
        let output = status.output().map_err(|source| ClusterError::Spawn { program: describe(&status), source })?;
        // Exit code 0: running; 3: not running; anything else is a real problem.
        match output.status.code() {
            Some(3) => Ok(()),
            Some(0) => {
                tracing::info!(
                    dir = %self.dir.display(),
                    "stopping the PostgreSQL server a previous run left running"
                );
                self.pg_ctl_stop("fast")
            }
            _ => Err(ClusterError::CommandFailed {
                command: describe(&status),
                status: output.status,
                output: printed(&output),
            }),
        }
    }

    fn pg_ctl_stop(&self, mode: &str) -> Result<(), ClusterError> {
        let mut stop = self.tool(self.binaries.pg_ctl());
        stop.args(["stop", "-w", "-m", mode, "-D"]).arg(&self.data_dir);
        run(&mut stop).map(drop)
    }

    /// Starts the server, retrying on another port when ours was taken in the meantime (the
    /// free port is found by binding and releasing it, so another process can get there first).
    fn start(&mut self, choice: PortChoice, settings: &[(&str, &str)]) -> Result<(), ClusterError> {
        let socket_dir = self.socket_dir()?;
        for attempt in 1..=START_ATTEMPTS {
            let port = match choice {
                PortChoice::Exactly(port) => port,
                PortChoice::Prefer(Some(port)) if attempt == 1 && port::is_free(port) => port,
                PortChoice::Prefer(_) => port::free()?,
            };
            match self.pg_ctl_start(port, &socket_dir, settings) {
                Ok(()) => {
                    self.port = port;
                    self.running = true;
                    return Ok(());
                }
                Err(failure) if failure.port_taken => match choice {
                    PortChoice::Exactly(port) => return Err(ClusterError::PortInUse { port }),
                    PortChoice::Prefer(_) if attempt < START_ATTEMPTS => {
                        tracing::debug!(port, "port was taken before PostgreSQL bound it, retrying");
                    }
                    PortChoice::Prefer(_) => return Err(failure.error),
                },
                Err(failure) => return Err(failure.error),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// The directory for the server's Unix socket: inside the cluster directory, so it never
    /// meets the system server's sockets (in /var/run/postgresql) and only the server's user
    /// can enter it. An empty string turns the socket off, for cluster paths too long for one;
    /// every client here uses TCP anyway.
    fn socket_dir(&self) -> Result<String, ClusterError> {
        let dir = self.dir.join(SOCKET_DIR);
        let longest_socket = dir.join(".s.PGSQL.65535");
        if longest_socket.as_os_str().len() > MAX_SOCKET_PATH {
            tracing::debug!(dir = %dir.display(), "path too long for a Unix socket; TCP only");
            return Ok(String::new());
        }
        if !dir.is_dir() {
            fs::create_dir(&dir).map_err(|e| ClusterError::io("create", &dir, e))?;
        }
        self.user.take_ownership(&dir)?;
        Ok(dir.to_string_lossy().into_owned())
    }

    fn pg_ctl_start(&self, port: u16, socket_dir: &str, settings: &[(&str, &str)]) -> Result<(), StartFailure> {
        let log_file = self.log_file();
        // The log is appended to; only what this attempt wrote explains its failure.
        let log_offset = fs::metadata(&log_file).map_or(0, |m| m.len());
        // `pg_ctl -o` passes these to the server through /bin/sh, hence the quoting.
        let mut options = format!("-p {port} -c listen_addresses=127.0.0.1 -k {}", shell_quote(socket_dir));
        for (name, value) in settings {
            options.push_str(&format!(" -c {name}={value}"));
        }
        let mut start = self.tool(self.binaries.pg_ctl());
        start
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(&self.data_dir)
            .arg("-l")
            .arg(&log_file)
            .arg("-o")
            .arg(options)
            // pg_ctl already puts the server in a session of its own (setsid); this also keeps
            // pg_ctl itself out of our process group, so a Ctrl-C meant for us (the dev stack
            // stops its services first and PostgreSQL last) never reaches the server's side.
            .process_group(0);
        let fail = |reason: String| {
            let log_tail = log_tail(&log_file, log_offset);
            StartFailure {
                port_taken: log_tail.contains("Address already in use"),
                error: ClusterError::StartFailed {
                    data_dir: self.data_dir.clone(),
                    port,
                    reason,
                    log_file: log_file.clone(),
                    log_tail,
                },
            }
        };
        match start.output() {
            Ok(output) if output.status.success() => Ok(()),
            Ok(output) => Err(fail(format!("pg_ctl {}: {}", output.status, printed(&output)))),
            Err(e) => Err(fail(format!("could not run {}: {e}", describe(&start)))),
        }
    }

    fn remembered_port(&self) -> Option<u16> {
        fs::read_to_string(self.dir.join(PORT_FILE)).ok()?.trim().parse().ok()
    }

    fn remember_port(&self) {
        let path = self.dir.join(PORT_FILE);
        if let Err(e) = fs::write(&path, format!("{}\n", self.port)) {
            // Only a convenience for the next start: worth a warning, not a failure.
            tracing::warn!(path = %path.display(), error = %e, "could not remember the port");
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not stop local PostgreSQL cleanly");
        }
    }
}

struct StartFailure {
    /// The server could not bind its port: worth trying another one.
    port_taken: bool,
    error: ClusterError,
}

/// The last lines the server wrote to its log since `offset`.
fn log_tail(log_file: &Path, offset: u64) -> String {
    const LINES: usize = 30;
    let mut bytes = Vec::new();
    let read = fs::File::open(log_file).and_then(|mut file| {
        file.seek(SeekFrom::Start(offset))?;
        file.read_to_end(&mut bytes)
    });
    if let Err(e) = read {
        return format!("(could not read the server log: {e})");
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LINES)..].join("\n")
}

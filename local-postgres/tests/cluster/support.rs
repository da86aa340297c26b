//! Helpers shared by the tests: real connections, polling, and directories the server can use.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

pub async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url).await.unwrap_or_else(|e| panic!("could not connect to {url}: {e}"))
}

/// Runs `select 1` over a new connection.
pub async fn select_one(url: &str) -> i32 {
    let mut connection = connect(url).await;
    let one = sqlx::query_scalar("select 1").fetch_one(&mut connection).await.unwrap();
    connection.close().await.unwrap();
    one
}

/// A setting as the server reports it (`SHOW`), e.g. "off".
pub async fn setting(url: &str, name: &str) -> String {
    let mut connection = connect(url).await;
    sqlx::query_scalar("select current_setting($1)").bind(name).fetch_one(&mut connection).await.unwrap()
}

pub fn accepts_connections(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_ok()
}

/// Polls `condition` until it holds, failing the test after `timeout`.
pub fn eventually(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {timeout:?}: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A temp directory for a persistent cluster, which the `postgres` user can reach when the
/// tests run as root whatever the umask. In RAM when possible: on a busy disk, the fsyncs of
/// a durable cluster take seconds, and these tests are about keeping data across restarts,
/// not across power cuts.
pub fn reachable_tempdir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

pub fn running_as_root() -> bool {
    let output = std::process::Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

//! Persistent clusters: kept between starts, on a remembered port, and robust to a crashed owner.

use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use local_postgres::{ClusterError, LocalCluster};
use sqlx::Connection;

use crate::child::{self, Role};

use crate::support::{accepts_connections, connect, reachable_tempdir, running_as_root, select_one, setting};

#[tokio::test]
async fn persistent_cluster_keeps_data_between_starts() {
    let temp = reachable_tempdir();
    let dir = temp.path().join("pg");

    let first = LocalCluster::start_persistent(&dir, None).unwrap();
    let port = first.port();
    assert_eq!(setting(&first.superuser_url(), "fsync").await, "on");
    let mut connection = connect(&first.superuser_url()).await;
    sqlx::query("create table notes (body text not null)").execute(&mut connection).await.unwrap();
    sqlx::query("insert into notes values ('kept')").execute(&mut connection).await.unwrap();
    connection.close().await.unwrap();
    first.stop().unwrap();
    assert!(!accepts_connections(port), "port {port} still open");
    assert!(dir.join("data/PG_VERSION").is_file(), "data kept after stop");

    let second = LocalCluster::start_persistent(&dir, None).unwrap();
    assert_eq!(second.port(), port, "the remembered port is reused");
    let mut connection = connect(&second.superuser_url()).await;
    let body: String = sqlx::query_scalar("select body from notes").fetch_one(&mut connection).await.unwrap();
    assert_eq!(body, "kept");
    connection.close().await.unwrap();
    second.stop().unwrap();
}

#[test]
fn persistent_cluster_on_a_taken_port_reports_port_in_use() {
    let temp = reachable_tempdir();
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = taken.local_addr().unwrap().port();

    let result = LocalCluster::start_persistent(&temp.path().join("pg"), Some(port));

    assert!(matches!(result, Err(ClusterError::PortInUse { port: p }) if p == port), "{:?}", result.err());
}

#[tokio::test]
async fn persistent_cluster_survives_ctrl_c_to_its_owner_and_is_taken_over_by_the_next_start() {
    let temp = reachable_tempdir();
    let dir = temp.path().join("pg");
    let mut owner = child::spawn(Role::PersistentThenWait, Some(&dir));
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", owner.port);
    let first_start = postmaster_start_time(&url).await;

    // What a terminal does on Ctrl-C: SIGINT to the whole foreground process group. Had it
    // reached the server, the postmaster would take it as "fast shutdown".
    let status =
        std::process::Command::new("kill").args(["-INT", "--", &format!("-{}", owner.process.id())]).status().unwrap();
    assert!(status.success());
    // The owner dies of it, unless it inherited SIGINT as ignored (as commands started in the
    // background by a non-interactive shell do); then stand in for its death with SIGKILL.
    let deadline = Instant::now() + Duration::from_secs(2);
    while owner.process.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            owner.process.kill().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Give a server that got the signal time to be visibly shutting down.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(select_one(&url).await, 1, "the server outlives its owner");
    assert_eq!(postmaster_start_time(&url).await, first_start);

    // The next start finds the orphaned server, replaces it, and keeps the port.
    let cluster = LocalCluster::start_persistent(&dir, None).unwrap();
    assert_eq!(cluster.port(), owner.port);
    assert!(postmaster_start_time(&cluster.superuser_url()).await > first_start);
    cluster.stop().unwrap();
    assert!(!accepts_connections(owner.port));
}

#[test]
fn a_persistent_directory_the_server_user_cannot_reach_is_refused_only_when_running_as_root() {
    // Like a home directory: reachable for its owner, not for anyone else.
    let private = tempfile::Builder::new().permissions(std::fs::Permissions::from_mode(0o700)).tempdir().unwrap();
    let dir = private.path().join("pg");

    let result = LocalCluster::start_persistent(&dir, None);

    if running_as_root() {
        // As root, the server runs as `postgres`, which cannot enter a private root directory.
        assert!(
            matches!(&result, Err(ClusterError::DirNotAccessible { dir: d, .. }) if *d == dir),
            "{:?}",
            result.err()
        );
    } else {
        // Otherwise the server runs as us, the directory's owner.
        result.unwrap().stop().unwrap();
    }
}

/// When the server process started, in seconds since the epoch: tells one server from its successor.
async fn postmaster_start_time(url: &str) -> f64 {
    let mut connection = connect(url).await;
    sqlx::query_scalar("select extract(epoch from pg_postmaster_start_time())::float8")
        .fetch_one(&mut connection)
        .await
        .unwrap()
}

//! Throwaway clusters: private, fast, and gone afterwards.

use local_postgres::{LocalCluster, PgServer, second_test_server};

use crate::support::{accepts_connections, select_one, setting};

#[tokio::test]
async fn throwaway_cluster_accepts_superuser_connections_and_is_removed_on_drop() {
    let cluster = LocalCluster::start_throwaway().unwrap();
    let (port, dir) = (cluster.port(), cluster.dir().to_owned());
    assert!(cluster.data_dir().join("PG_VERSION").is_file());
    assert_eq!(cluster.superuser_url(), format!("postgres://postgres@127.0.0.1:{port}/postgres"));
    assert_eq!(select_one(&cluster.superuser_url()).await, 1);

    drop(cluster);

    assert!(!accepts_connections(port), "port {port} still open");
    assert!(!dir.exists(), "{} still exists", dir.display());
}

#[tokio::test]
async fn stopping_a_throwaway_cluster_removes_it_at_once() {
    let cluster = LocalCluster::start_throwaway().unwrap();
    let (port, dir) = (cluster.port(), cluster.dir().to_owned());
    assert_eq!(select_one(&cluster.superuser_url()).await, 1);

    cluster.stop().unwrap();

    assert!(!accepts_connections(port), "port {port} still open");
    assert!(!dir.exists(), "{} still exists", dir.display());
}

#[tokio::test]
async fn throwaway_cluster_is_tuned_for_tests_and_listens_on_loopback_only() {
    // The second test server is always a throwaway cluster, never DATABASE_URL.
    let server = second_test_server();
    let PgServer::Local(cluster) = server else {
        panic!("the second test server is local");
    };
    let url = server.superuser_url();
    for (name, expected) in [
        ("fsync", "off"),
        ("synchronous_commit", "off"),
        ("full_page_writes", "off"),
        ("max_connections", "400"),
        ("listen_addresses", "127.0.0.1"),
        ("server_encoding", "UTF8"),
        ("lc_collate", "C"),
    ] {
        assert_eq!(setting(&url, name).await, expected, "setting {name}");
    }
    let socket_dir = setting(&url, "unix_socket_directories").await;
    assert_eq!(socket_dir, cluster.dir().join("socket").to_string_lossy());
}

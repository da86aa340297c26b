//! Test servers and fresh databases on them.

use local_postgres::{ClusterError, PgServer, create_fresh_database, second_test_server, shared_test_server};
use sqlx::Connection;

use crate::support::connect;

async fn database_exists(server: &PgServer, name: &str) -> bool {
    let mut connection = connect(&server.superuser_url()).await;
    let found: bool = sqlx::query_scalar("select exists (select from pg_database where datname = $1)")
        .bind(name)
        .fetch_one(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
    found
}

#[tokio::test]
async fn two_test_servers_are_independent() {
    let (shared, second) = (shared_test_server(), second_test_server());
    assert_ne!(shared.superuser_url(), second.superuser_url());

    let (name, _) = create_fresh_database(second, "placement").await.unwrap();

    assert!(database_exists(second, &name).await);
    assert!(!database_exists(shared, &name).await);
}

#[tokio::test]
async fn fresh_databases_have_unique_names() {
    let server = shared_test_server();
    let mut creations = tokio::task::JoinSet::new();
    for _ in 0..8 {
        creations.spawn(create_fresh_database(server, "tenant"));
    }
    let mut names = std::collections::BTreeSet::new();
    while let Some(created) = creations.join_next().await {
        let (name, url) = created.unwrap().unwrap();
        assert!(name.starts_with("tenant_"), "{name}");
        assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{name}");
        let mut connection = connect(&url).await;
        let current: String = sqlx::query_scalar("select current_database()").fetch_one(&mut connection).await.unwrap();
        assert_eq!(current, name);
        let tables: i64 = sqlx::query_scalar(
            "select count(*) from pg_tables where schemaname not in ('pg_catalog', 'information_schema')",
        )
        .fetch_one(&mut connection)
        .await
        .unwrap();
        assert_eq!(tables, 0, "a fresh database is empty");
        connection.close().await.unwrap();
        names.insert(name);
    }
    assert_eq!(names.len(), 8);
}

#[tokio::test]
async fn database_prefixes_outside_lowercase_digits_and_underscore_are_refused() {
    async fn check(prefix: &str, accepted: bool) {
        let result = create_fresh_database(shared_test_server(), prefix).await;
        match (accepted, result) {
            (true, Ok((name, _))) => assert!(name.starts_with(prefix), "{name}"),
            (false, Err(ClusterError::InvalidDatabasePrefix { prefix: p, .. })) => {
                assert_eq!(p, prefix)
            }
            (_, other) => panic!("prefix {prefix:?}: unexpected {other:?}"),
        }
    }
    check("", true).await;
    check("t_", true).await;
    check(&"a".repeat(50), true).await;
    check(&"a".repeat(51), false).await;
    check("Tenant", false).await;
    check("has-dash", false).await;
    check("quote\"", false).await;
    check("ünï", false).await;
}

#[test]
fn url_for_database_replaces_only_the_database_name() {
    fn check(url: &str, expected: &str) {
        let server = PgServer::External { url: url.to_owned() };
        assert_eq!(server.url_for_database("other"), expected, "from {url}");
    }
    check("postgres://postgres@127.0.0.1:5432/postgres", "postgres://postgres@127.0.0.1:5432/other");
    check(
        "postgres://u:secret@db.example:6543/app?sslmode=disable&application_name=x",
        "postgres://u:secret@db.example:6543/other?sslmode=disable&application_name=x",
    );
    check("postgres://u@localhost", "postgres://u@localhost/other");
    check("postgres://u@localhost/", "postgres://u@localhost/other");
    check("postgres://u@localhost?sslmode=require", "postgres://u@localhost/other?sslmode=require");
    check("postgresql:///app?host=/var/run/postgresql", "postgresql:///other?host=/var/run/postgresql");
}

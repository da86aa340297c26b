//! Placement of tenants over several Postgres servers.

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

use crate::helpers::{TestApp, unique};

#[tokio::test]
async fn tenants_spread_over_two_servers_and_the_catalog_says_where() {
    let app = TestApp::spawn().await;
    let second = local_postgres::second_test_server();
    let name = unique("pg-two-");
    let registered = app
        .operator(Method::POST, "/servers")
        .json(&json!({"name": name, "admin_url": second.superuser_url(), "capacity": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 200, "{}", registered.text().await.unwrap());

    let mut slugs = Vec::new();
    for i in 0..6 {
        let slug = unique(&format!("place{i}-"));
        app.create_tenant(&slug).await;
        slugs.push(slug);
    }
    let servers: Value = app.operator(Method::GET, "/servers").send().await.unwrap().json().await.unwrap();
    let counts: Vec<i64> = servers.as_array().unwrap().iter().map(|s| s["tenants"].as_i64().unwrap()).collect();
    assert_eq!(counts, [3, 3], "least-loaded placement alternates: {servers}");

    // Each tenant's database exists on the server the catalog names, and only there.
    let mut catalog = app.catalog().await;
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT t.database_name, s.name, t.slug FROM tenants t JOIN database_servers s ON s.id = t.server_id",
    )
    .fetch_all(&mut catalog)
    .await
    .unwrap();
    let mut on_first = PgConnection::connect(&app.server.superuser_url()).await.unwrap();
    let mut on_second = PgConnection::connect(&second.superuser_url()).await.unwrap();
    for (db, server, slug) in rows {
        let (here, there) = (exists(&mut on_first, &db).await, exists(&mut on_second, &db).await);
        if server == name {
            assert!(!here && there, "{slug} should be on the second server");
        } else {
            assert!(here && !there, "{slug} should be on the primary server");
        }
    }

    let bad = app
        .operator(Method::POST, "/servers")
        .json(&json!({"name": unique("pg-bad-"), "admin_url": "postgres://nobody@127.0.0.1:1/postgres"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    assert_eq!(bad.json::<Value>().await.unwrap()["field"], "admin_url");
}

async fn exists(conn: &mut PgConnection, db: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(db)
        .fetch_one(conn)
        .await
        .unwrap()
}

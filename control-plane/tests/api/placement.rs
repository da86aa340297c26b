//! Placement of tenants over several Postgres servers.

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

use crate::helpers::{TestApp, unique};

#[tokio::test]
async fn tenants_spread_over_two_servers_and_the_catalog_says_where() {
    let app = TestApp::spawn().await;
    spread_over_two_servers(&app).await;
}

#[tokio::test]
async fn with_spare_databases_each_server_keeps_its_own_and_signups_adopt_the_right_ones() {
    let app = TestApp::spawn_with(|c| {
        c.spare_databases_per_server = 1;
        c.spare_refill_interval = std::time::Duration::from_millis(200);
    })
    .await;
    let adopted = spread_over_two_servers(&app).await;
    // `spread_over_two_servers` checked that every database is on the server its tenant names;
    // with spares, some of those databases were built before their tenant existed.
    assert!(adopted >= 2, "signups on both servers adopted spares, got {adopted}");
    let servers = crate::helpers::eventually(std::time::Duration::from_secs(30), || async {
        let servers: Value = app.operator(Method::GET, "/servers").send().await.unwrap().json().await.unwrap();
        servers.as_array().unwrap().iter().all(|s| s["spares_ready"] == 1)
    })
    .await;
    assert!(servers, "each server's pool refilled to one");
}

/// Registers a second server, signs six companies up, and checks where they landed. Returns
/// how many of them adopted a spare database (0 with the pool off).
async fn spread_over_two_servers(app: &TestApp) -> usize {
    let second = local_postgres::second_test_server();
    let name = unique("pg-two-");
    let registered = app
        .operator(Method::POST, "/servers")
        .json(&json!({"name": name, "admin_url": second.superuser_url(), "capacity": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 200, "{}", registered.text().await.unwrap());
    let spares = ready_spares(app).await;

    let mut ids = Vec::new();
    for i in 0..6 {
        let slug = unique(&format!("place{i}-"));
        let body = app.create_tenant(&slug).await;
        ids.push(body["tenant"]["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap());
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
    ids.iter().filter(|id| spares.contains(id)).count()
}

/// The ids of the ready spares, once every active server has as many as the pool size (none
/// when the pool is off).
async fn ready_spares(app: &TestApp) -> Vec<uuid::Uuid> {
    let full = crate::helpers::eventually(std::time::Duration::from_secs(30), || async {
        let mut catalog = app.catalog().await;
        let short: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM database_servers s WHERE (SELECT count(*) FROM spare_databases p
                 WHERE p.server_id = s.id AND p.status = 'ready') < $1)",
        )
        .bind(i64::from(app.spare_databases_per_server))
        .fetch_one(&mut catalog)
        .await
        .unwrap();
        !short
    })
    .await;
    assert!(full, "every server's pool filled");
    let mut catalog = app.catalog().await;
    sqlx::query_scalar("SELECT id FROM spare_databases WHERE status = 'ready'").fetch_all(&mut catalog).await.unwrap()
}

async fn exists(conn: &mut PgConnection, db: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(db)
        .fetch_one(conn)
        .await
        .unwrap()
}

//! Crash safety of moves: the real binary aborts right after each step of a move (the
//! `NEXACORE_FAULT_MOVE_CRASH_AFTER` hook, as `kill -9` would leave it), then restarts. Whatever
//! the step, the tenant ends on exactly one server, its route names that copy, the copy holds
//! every row, and no replication is left behind: before the switch the move is undone, from
//! the switch on it is finished.

use std::time::Duration;

use control_plane::app::PRIMARY_SERVER;
use control_plane::moves::MoveStep;
use control_plane::secrets::MasterKey;
use local_postgres::LocalCluster;
use serde_json::json;
use sqlx::{Connection, PgConnection};

use crate::crash::Stack;
use crate::helpers::{signup_body, unique};

/// `(server name, database)` of every database of the tenant the tenant's role can still
/// connect to, over both clusters; and slots plus subscriptions left on either.
async fn copies(clusters: &[(&str, String)], simple: &str) -> (Vec<(String, String)>, i64) {
    let mut open = Vec::new();
    let mut replication = 0;
    for (name, url) in clusters {
        let mut admin = PgConnection::connect(url).await.unwrap();
        let dbs: Vec<String> = sqlx::query_scalar(
            "SELECT datname::text FROM pg_database WHERE datname LIKE $1 AND has_database_privilege($2, datname, 'CONNECT')",
        )
        .bind(format!("t\\_{simple}%"))
        .bind(format!("t_{simple}"))
        .fetch_all(&mut admin)
        .await
        .unwrap_or_default();
        open.extend(dbs.into_iter().map(|db| (name.to_string(), db)));
        let left: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_subscription)",
        )
        .fetch_one(&mut admin)
        .await
        .unwrap();
        replication += left;
        admin.close().await.ok();
    }
    (open, replication)
}

/// A superuser URL with its database replaced.
fn in_database(url: &str, database: &str) -> String {
    let (server, _) = url.rsplit_once('/').expect("a URL with a database");
    format!("{server}/{database}")
}

#[tokio::test]
async fn a_move_killed_after_any_step_ends_on_exactly_one_server_with_every_row() {
    let (a, b) = tokio::join!(
        tokio::task::spawn_blocking(LocalCluster::start_throwaway),
        tokio::task::spawn_blocking(LocalCluster::start_throwaway)
    );
    let (a, b) = (a.unwrap().expect("a private cluster"), b.unwrap().expect("a second private cluster"));
    let stack = Stack {
        admin_url: a.superuser_url(),
        master_key: MasterKey::generate_base64(),
        operator_token: format!("op-{}", uuid::Uuid::new_v4().simple()),
    };
    let dir = tempfile::tempdir().unwrap();
    let env = vec![("NEXACORE_BACKUP_DIR", dir.path().display().to_string())];
    let http = reqwest::Client::new();

    let (mut first, base) = stack.start_with_env(None, 0, &env).await;
    let registered = http
        .post(format!("{base}/servers"))
        .bearer_auth(&stack.operator_token)
        .json(&json!({"name": "second", "admin_url": b.superuser_url()}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 200);
    let slug = unique("crashmove-");
    let created = http.post(format!("{base}/tenants")).json(&signup_body(&slug)).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let tenant: uuid::Uuid =
        created.json::<serde_json::Value>().await.unwrap()["tenant"]["id"].as_str().unwrap().parse().unwrap();
    let simple = tenant.simple().to_string();
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    // Rows to carry along (written here as superuser: test data, not the product's path).
    let mut db = PgConnection::connect(&in_database(&a.superuser_url(), &format!("t_{simple}"))).await.unwrap();
    sqlx::query(
        "INSERT INTO employees (first_name, last_name, email, hire_date)
         SELECT 'Row', 'Number' || g, 'r' || g || '@crash.example.com', date '2024-01-15' FROM generate_series(1, 300) g",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM employees").fetch_one(&mut db).await.unwrap();
    db.close().await.ok();

    let clusters = [(PRIMARY_SERVER, a.superuser_url()), ("second", b.superuser_url())];
    let mut catalog = PgConnection::connect(&stack.catalog_url()).await.unwrap();
    for step in MoveStep::ALL {
        let (here, database): (String, String) = sqlx::query_as(
            "SELECT s.name, t.database_name FROM tenants t JOIN database_servers s ON s.id = t.server_id WHERE t.id = $1",
        )
        .bind(tenant)
        .fetch_one(&mut catalog)
        .await
        .unwrap();
        let there = if here == "second" { PRIMARY_SERVER } else { "second" };
        let mut crash_env = env.clone();
        crash_env.push(("NEXACORE_FAULT_MOVE_CRASH_AFTER", step.as_str().to_owned()));
        let (mut crashing, base) = stack.start_with_env(None, 0, &crash_env).await;
        // After `recorded` the process dies inside the request; later, in the background.
        let _ = http
            .post(format!("{base}/tenants/{tenant}/moves"))
            .bearer_auth(&stack.operator_token)
            .json(&json!({"to": there}))
            .send()
            .await;
        let exit = tokio::time::timeout(Duration::from_secs(60), crashing.wait()).await;
        assert!(exit.is_ok_and(|e| !e.unwrap().success()), "the process aborted after {step:?}");

        let (mut restarted, _) = stack.start_with_env(None, 0, &env).await;
        let (state, server, now_db, maintenance): (String, String, String, bool) = sqlx::query_as(
            "SELECT m.state, s.name, t.database_name, t.maintenance_mode FROM moves m
             JOIN tenants t ON t.id = m.tenant_id JOIN database_servers s ON s.id = t.server_id
             WHERE m.tenant_id = $1 ORDER BY m.started_at DESC LIMIT 1",
        )
        .bind(tenant)
        .fetch_one(&mut catalog)
        .await
        .unwrap();
        let (open, replication) = copies(&clusters, &simple).await;
        if step == MoveStep::Switched {
            assert_eq!((state.as_str(), server.as_str()), ("done", there), "finished after {step:?}");
        } else {
            assert_eq!(
                (state.as_str(), server.as_str(), now_db.as_str()),
                ("failed", here.as_str(), database.as_str()),
                "undone after {step:?}"
            );
        }
        assert!(!maintenance, "unfenced after {step:?}");
        assert_eq!(open, vec![(server.clone(), now_db.clone())], "exactly one writable copy after {step:?}");
        assert_eq!(replication, 0, "no slot or subscription left after {step:?}");
        let url = clusters.iter().find(|(n, _)| *n == server).unwrap().1.clone();
        let mut copy = PgConnection::connect(&in_database(&url, &now_db)).await.unwrap();
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM employees").fetch_one(&mut copy).await.unwrap();
        assert_eq!(count, rows, "every row after {step:?}");
        copy.close().await.ok();
        restarted.start_kill().unwrap();
        restarted.wait().await.unwrap();
    }
    for cluster in [a, b] {
        tokio::task::spawn_blocking(move || cluster.stop()).await.unwrap().unwrap();
    }
}

//! Bulk migrations against real Postgres: tenants are created at the current schema version N
//! through the real signup path, then the control plane is restarted with a fixture migration
//! N+1 added to its migration set (a new deployment), and runs are driven through the API.

mod canary;
mod controls;
mod crash;
mod drift;
mod failures;
mod fleet;

use std::time::Duration;

use control_plane::migrations::MigrationSet;
use refinery::Migration;
use serde_json::Value;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::helpers::{TestApp, unique};

/// The version the tenants are created at (the embedded schema's latest).
pub fn n() -> i32 {
    tenant_schema::latest_version()
}

/// Fixture migration N+1: a column with a default, an index, a constraint checked against the
/// existing rows, a small backfill, and a mark row that counts how often it was applied
/// (`IF NOT EXISTS` would let a second application pass silently, so the count tells).
pub fn next_migration_sql(sleep_ms: u64) -> String {
    let sleep = if sleep_ms > 0 { format!("SELECT pg_sleep({});\n", sleep_ms as f64 / 1000.0) } else { String::new() };
    format!(
        "{sleep}CREATE TABLE IF NOT EXISTS schema_marks (version integer NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
INSERT INTO schema_marks (version) VALUES ({v});
ALTER TABLE employees ADD COLUMN nickname text NOT NULL DEFAULT '';
CREATE INDEX employees_nickname_idx ON employees (nickname);
ALTER TABLE employees ADD CONSTRAINT employees_hired_since_1900 CHECK (hire_date >= DATE '1900-01-01');
UPDATE departments SET name = btrim(name);
",
        v = n() + 1
    )
}

pub fn next_migration_name() -> String {
    format!("V{}__nicknames", n() + 1)
}

/// The embedded migrations plus fixture N+1.
pub fn with_next(sleep_ms: u64) -> MigrationSet {
    let mut list = tenant_schema::migrations();
    list.push(Migration::unapplied(&next_migration_name(), &next_migration_sql(sleep_ms)).unwrap());
    MigrationSet::new(list).unwrap()
}

/// A tenant created through signup.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: Uuid,
    pub slug: String,
    pub database: String,
}

/// Creates `count` tenants, a few at a time, in order (their ids sort in creation order).
pub async fn create_tenants(app: &TestApp, prefix: &str, count: usize) -> Vec<Tenant> {
    let mut tenants = Vec::with_capacity(count);
    let run = unique("");
    for chunk in (0..count).collect::<Vec<_>>().chunks(6) {
        let created = futures::future::join_all(chunk.iter().map(|i| {
            let slug = format!("{prefix}-{run}-{i}");
            async move {
                let body = app.create_tenant(&slug).await;
                (slug, body)
            }
        }))
        .await;
        for (slug, body) in created {
            let id: Uuid = body["tenant"]["id"].as_str().unwrap().parse().unwrap();
            tenants.push(Tenant { id, database: format!("t_{}", id.simple()), slug });
        }
    }
    tenants.sort_by_key(|t| t.id);
    tenants
}

/// A superuser connection to a tenant's (or any) database on the test server.
pub async fn connect(app: &TestApp, database: &str) -> PgConnection {
    PgConnection::connect(&app.server.url_for_database(database)).await.expect("a connection to the database")
}

/// The versions recorded in a database's migration history, with repeats if any.
pub async fn history(app: &TestApp, database: &str) -> Vec<i32> {
    let mut conn = connect(app, database).await;
    let versions = sqlx::query_scalar("SELECT version FROM refinery_schema_history ORDER BY version")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
    versions
}

/// How many times fixture N+1 ran in a database (0 when its table does not exist).
pub async fn marks(app: &TestApp, database: &str) -> i64 {
    let mut conn = connect(app, database).await;
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('schema_marks') IS NOT NULL").fetch_one(&mut conn).await.unwrap();
    let count = if exists {
        sqlx::query_scalar("SELECT count(*) FROM schema_marks").fetch_one(&mut conn).await.unwrap()
    } else {
        0
    };
    conn.close().await.ok();
    count
}

/// Everything about a database's schema a migration could change: tables, columns, indexes,
/// constraints, owners.
pub async fn schema_fingerprint(app: &TestApp, database: &str) -> Vec<String> {
    let mut conn = connect(app, database).await;
    let rows = sqlx::query_scalar(
        "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || coalesce(column_default, '')
         FROM information_schema.columns WHERE table_schema = 'public'
         UNION ALL
         SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
         UNION ALL
         SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
         FROM pg_constraint WHERE connamespace = 'public'::regnamespace
         UNION ALL
         SELECT 'owner ' || c.relname || ' ' || pg_get_userbyid(c.relowner)
         FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
         ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.ok();
    rows
}

/// Makes fixture N+1 fail on this tenant: an employee hired before 1900 violates its check.
pub async fn poison(app: &TestApp, tenant: &Tenant) {
    let mut conn = connect(app, &tenant.database).await;
    sqlx::query(
        "INSERT INTO employees (first_name, last_name, email, hire_date)
         VALUES ('Ada', 'Early', 'ada.early@example.com', DATE '1850-06-01')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.ok();
}

pub async fn cure(app: &TestApp, tenant: &Tenant) {
    let mut conn = connect(app, &tenant.database).await;
    sqlx::query("DELETE FROM employees WHERE hire_date < DATE '1900-01-01'").execute(&mut conn).await.unwrap();
    conn.close().await.ok();
}

/// `POST /migrations/runs`; panics unless it answers 200.
pub async fn start_run(app: &TestApp, body: Value) -> Value {
    let response = app.operator(reqwest::Method::POST, "/migrations/runs").json(&body).send().await.unwrap();
    let status = response.status();
    let run: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "creating a run: {run}");
    run
}

pub async fn get_run(app: &TestApp, id: &str) -> Value {
    let response = app.operator(reqwest::Method::GET, &format!("/migrations/runs/{id}")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// `POST /migrations/runs/{id}/{action}`, returning the status and the body.
pub async fn act(app: &TestApp, id: &str, action: &str) -> (u16, Value) {
    let response =
        app.operator(reqwest::Method::POST, &format!("/migrations/runs/{id}/{action}")).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Polls the run until `done` says so (or panics after `timeout`).
pub async fn wait_run(app: &TestApp, id: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let run = get_run(app, id).await;
        if done(&run) {
            return run;
        }
        assert!(tokio::time::Instant::now() < deadline, "the run did not get there in time: {run:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the run is in a state where nothing moves (not running, not cancelling).
pub async fn wait_settled(app: &TestApp, id: &str) -> Value {
    wait_run(app, id, Duration::from_secs(120), |r| !matches!(r["state"].as_str(), Some("running" | "cancelling")))
        .await
}

/// The run's tenants, optionally in one status.
pub async fn run_tenants(app: &TestApp, id: &str, status: Option<&str>) -> Vec<Value> {
    let mut path = format!("/migrations/runs/{id}/tenants?limit=1000");
    if let Some(s) = status {
        path.push_str(&format!("&status={s}"));
    }
    let response = app.operator(reqwest::Method::GET, &path).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    page["items"].as_array().unwrap().clone()
}

pub async fn attempts(app: &TestApp, id: &str, tenant: Option<Uuid>) -> Vec<Value> {
    let mut path = format!("/migrations/runs/{id}/attempts?limit=5000");
    if let Some(t) = tenant {
        path.push_str(&format!("&tenant={t}"));
    }
    let response = app.operator(reqwest::Method::GET, &path).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap().as_array().unwrap().clone()
}

/// `(schema_version, migrating)` of every tenant in the catalog, by id.
pub async fn catalog_versions(app: &TestApp) -> Vec<(Uuid, Option<i32>, bool)> {
    let mut catalog = app.catalog().await;
    sqlx::query_as("SELECT id, schema_version, migrating FROM tenants ORDER BY id")
        .fetch_all(&mut catalog)
        .await
        .unwrap()
}

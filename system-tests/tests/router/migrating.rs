//! What the tenant router sees: a tenant is refused (503 with a retry hint) exactly while its
//! own migration runs, other tenants are served meanwhile, and a tenant whose schema is beyond
//! what the router's build serves gets a fast 503 instead of SQL errors.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

use crate::helpers::{eventually_within, unique};

/// The embedded migrations plus N+1, which takes `employees`' exclusive lock: a test holding a
/// share lock on it keeps the migration "in progress" for as long as it likes.
fn with_next() -> stack::control::MigrationSet {
    let mut list = tenant_schema::migrations();
    let next = format!("V{}__nicknames", tenant_schema::latest_version() + 1);
    let sql = "ALTER TABLE employees ADD COLUMN nickname text NOT NULL DEFAULT ''";
    list.push(refinery::Migration::unapplied(&next, sql).unwrap());
    stack::control::MigrationSet::new(list).unwrap()
}

/// Polls a migration run until `done` says so (or panics after `timeout`).
async fn wait_run(platform: &stack::Platform, id: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let url = format!("{}/migrations/runs/{id}", platform.control_plane.url);
        let run: Value =
            platform.http.get(url).bearer_auth(&platform.operator_token).send().await.unwrap().json().await.unwrap();
        if done(&run) {
            return run;
        }
        assert!(tokio::time::Instant::now() < deadline, "the run did not get there in time: {run:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn while_a_tenant_migrates_the_router_answers_it_503_with_a_retry_hint_and_serves_the_others() {
    let mut platform = stack::Platform::builder_for_tests()
        .routers(0)
        .control_plane(|c| c.spare_databases_per_server = 0)
        .start()
        .await
        .unwrap();
    let (x, y) =
        (platform.signup(&unique("routed-")).await.unwrap(), platform.signup(&unique("routed-")).await.unwrap());
    // A new deployment: the control plane now knows migration N+1.
    platform.restart_control_plane(|c| c.tenant_migrations = with_next()).await.unwrap();
    // Long, so that only the catalog's notification can explain a quick reaction.
    let serving = platform.start_router(|c| c.route_ttl = Duration::from_secs(300)).await.unwrap();
    let router = serving.url.clone();
    let http = reqwest::Client::new();
    let employees = |t: &stack::Company| http.get(format!("{router}/employees")).bearer_auth(&t.token).send();
    assert_eq!(employees(&x).await.unwrap().status(), 200, "served before the run");

    // X's migration will wait on a lock held here, so it is "in progress" for as long as we like.
    let mut holder =
        PgConnection::connect(&platform.database_url(&format!("t_{}", x.id.simple())).unwrap()).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE employees IN ACCESS SHARE MODE").execute(&mut holder).await.unwrap();
    let response = platform
        .http
        .post(format!("{}/migrations/runs", platform.control_plane.url))
        .bearer_auth(&platform.operator_token)
        .json(&json!({ "tenants": [x.slug], "lock_timeout_ms": 60000 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let run: Value = response.json().await.unwrap();
    let id = run["id"].as_str().unwrap().to_owned();
    wait_run(&platform, &id, Duration::from_secs(30), |r| r["totals"]["running"] == 1).await;

    let refused = eventually_within(Duration::from_secs(5), || {
        let request = employees(&x);
        async move { request.await.is_ok_and(|r| r.status() == 503) }
    })
    .await;
    assert!(refused, "X is refused while it migrates");
    let response = employees(&x).await.unwrap();
    assert_eq!(response.status(), 503);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 0);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "migrating", "{body}");
    for _ in 0..5 {
        assert_eq!(employees(&y).await.unwrap().status(), 200, "Y is served meanwhile");
    }

    sqlx::raw_sql("COMMIT").execute(&mut holder).await.unwrap();
    let run = wait_run(&platform, &id, Duration::from_secs(120), |r| {
        !matches!(r["state"].as_str(), Some("running" | "cancelling"))
    })
    .await;
    assert_eq!(run["state"], "completed", "{run:#}");
    assert_eq!(run["totals"]["succeeded"], 1);
    let mut catalog = PgConnection::connect(&platform.catalog_url).await.unwrap();
    let (version, migrating): (Option<i32>, bool) =
        sqlx::query_as("SELECT schema_version, migrating FROM tenants WHERE id = $1")
            .bind(x.id)
            .fetch_one(&mut catalog)
            .await
            .unwrap();
    assert_eq!((version, migrating), (Some(tenant_schema::latest_version() + 1), false), "X unlocked, at N+1");

    // X is now beyond what this router build serves (its newest migration is N): a fast 503
    // with a retry hint, not a SQL error. Y, still at N, is served.
    let skewed = eventually_within(Duration::from_secs(5), || {
        let request = employees(&x);
        async move {
            match request.await {
                Ok(r) if r.status() == 503 => {
                    r.json::<serde_json::Value>().await.is_ok_and(|b| b["error"] == "schema_version_unsupported")
                }
                _ => false,
            }
        }
    })
    .await;
    assert!(skewed, "X gets the version-skew answer");
    assert!(employees(&x).await.unwrap().headers().contains_key("retry-after"));
    assert_eq!(employees(&y).await.unwrap().status(), 200);
}

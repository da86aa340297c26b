//! A tenant on which N+1 fails: it stays exactly at N, with the database's error recorded;
//! "stop after 1" stops the run, "continue" migrates everyone else; retry finishes the job once
//! the cause is fixed.

use serde_json::json;

use super::*;
use crate::helpers::TestApp;

const CHECK_VIOLATED: &str =
    "check constraint \"employees_hired_since_1900\" of relation \"employees\" is violated by some row";

#[tokio::test]
async fn a_poisoned_tenant_stays_at_n_with_the_database_error_and_the_failure_policy_decides_the_rest() {
    let app = TestApp::spawn().await;
    let tenants = create_tenants(&app, "poison", 12).await;
    let poisoned = &tenants[1];
    poison(&app, poisoned).await;
    let before = schema_fingerprint(&app, &poisoned.database).await;
    let app = app.restart_with(|config| config.tenant_migrations = with_next(0)).await;

    // Stop after 1 failure, one tenant at a time: the first succeeds, the second fails, the
    // run stops there.
    let run = start_run(&app, json!({ "concurrency": 1, "failure_policy": "stop", "max_failures": 1 })).await;
    let stopped_id = run["id"].as_str().unwrap().to_owned();
    let run = wait_settled(&app, &stopped_id).await;
    assert_eq!(run["state"], "stopped", "{run:#}");
    assert!(run["stop_reason"].as_str().unwrap().contains("failure policy stops after 1"), "{run:#}");
    assert_eq!(run["totals"]["succeeded"], 1);
    assert_eq!(run["totals"]["failed"], 1);
    assert_eq!(run["totals"]["pending"], 10, "no tenant started after the failure");
    assert_eq!(run["reached_target"], false);
    let failed = run_tenants(&app, &stopped_id, Some("failed")).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["slug"], poisoned.slug.as_str());
    let error = failed[0]["error"].as_str().unwrap();
    assert!(error.contains(CHECK_VIOLATED) && error.contains("SQLSTATE 23514"), "{error}");
    assert_eq!(failed[0]["from_version"], n());
    assert_eq!(failed[0]["to_version"], n());
    let recorded = attempts(&app, &stopped_id, Some(poisoned.id)).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["status"], "failed");
    assert_eq!(recorded[0]["version"], n() + 1);
    assert!(recorded[0]["error"].as_str().unwrap().contains(CHECK_VIOLATED));

    // The poisoned tenant is exactly at N: history, schema, catalog, no lock left.
    assert_eq!(history(&app, &poisoned.database).await.last(), Some(&n()));
    assert_eq!(schema_fingerprint(&app, &poisoned.database).await, before, "schema unchanged");
    assert_eq!(marks(&app, &poisoned.database).await, 0);
    let catalog = catalog_versions(&app).await;
    let row = catalog.iter().find(|(id, ..)| *id == poisoned.id).unwrap();
    assert_eq!((row.1, row.2), (Some(n()), false));

    // Continue: everyone else reaches N+1, the poisoned tenant fails again, still at N.
    let run = start_run(&app, json!({ "concurrency": 4, "failure_policy": "continue" })).await;
    let id = run["id"].as_str().unwrap().to_owned();
    let run = wait_settled(&app, &id).await;
    assert_eq!(run["state"], "completed", "{run:#}");
    assert_eq!(run["totals"]["succeeded"], 11);
    assert_eq!(run["totals"]["failed"], 1);
    assert_eq!(run["reached_target"], false, "one tenant did not get there");
    for t in tenants.iter().filter(|t| t.id != poisoned.id) {
        assert_eq!(history(&app, &t.database).await.last(), Some(&(n() + 1)), "{}", t.slug);
        assert_eq!(marks(&app, &t.database).await, 1);
    }
    assert_eq!(schema_fingerprint(&app, &poisoned.database).await, before, "schema unchanged");
    assert!(catalog_versions(&app).await.iter().all(|(_, _, migrating)| !migrating));

    // Fixed, then retried: the failed tenant gets a second attempt and reaches N+1.
    cure(&app, poisoned).await;
    let (status, retried) = act(&app, &id, "retry").await;
    assert_eq!(status, 200, "{retried}");
    let run = wait_settled(&app, &id).await;
    assert_eq!(run["state"], "completed", "{run:#}");
    assert_eq!(run["totals"]["succeeded"], 12);
    assert_eq!(run["reached_target"], true);
    assert_eq!(history(&app, &poisoned.database).await.last(), Some(&(n() + 1)));
    let recorded = attempts(&app, &id, Some(poisoned.id)).await;
    let story: Vec<(i64, &str)> =
        recorded.iter().map(|a| (a["attempt"].as_i64().unwrap(), a["status"].as_str().unwrap())).collect();
    assert_eq!(story, [(1, "failed"), (2, "succeeded")]);

    // The stopped run can be retried too (no other run is open): its tenants are found at N+1.
    let (status, body) = act(&app, &stopped_id, "retry").await;
    assert_eq!(status, 200, "{body}");
    let run = wait_settled(&app, &stopped_id).await;
    assert_eq!(run["state"], "completed");
    assert_eq!(run["reached_target"], true);
}

#[tokio::test]
async fn a_long_lock_on_one_tenant_fails_that_tenant_within_the_lock_timeout_instead_of_hanging_the_run() {
    let app = TestApp::spawn().await;
    let tenants = create_tenants(&app, "locked", 4).await;
    let app = app.restart_with(|config| config.tenant_migrations = with_next(0)).await;
    // Someone holds a lock on the table N+1 alters, and does not let go.
    let mut holder = connect(&app, &tenants[2].database).await;
    sqlx::raw_sql("BEGIN; LOCK TABLE employees IN ACCESS SHARE MODE").execute(&mut holder).await.unwrap();

    let started = std::time::Instant::now();
    let run = start_run(&app, json!({ "failure_policy": "continue", "lock_timeout_ms": 300 })).await;
    let run = wait_settled(&app, run["id"].as_str().unwrap()).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "the run did not hang");
    assert_eq!(run["state"], "completed", "{run:#}");
    assert_eq!(run["totals"]["succeeded"], 3);
    assert_eq!(run["totals"]["failed"], 1);
    assert_eq!(run["lock_timeout_ms"], 300);
    let failed = run_tenants(&app, run["id"].as_str().unwrap(), Some("failed")).await;
    assert_eq!(failed[0]["slug"], tenants[2].slug.as_str());
    let error = failed[0]["error"].as_str().unwrap();
    assert!(error.contains("lock timeout") && error.contains("55P03"), "{error}");
    sqlx::raw_sql("ROLLBACK").execute(&mut holder).await.unwrap();
    assert_eq!(history(&app, &tenants[2].database).await.last(), Some(&n()));
    assert!(catalog_versions(&app).await.iter().all(|(_, _, migrating)| !migrating));
}

#[tokio::test]
async fn a_statement_running_past_the_statement_timeout_fails_its_tenant_and_leaves_it_at_n() {
    let app = TestApp::spawn().await;
    let tenants = create_tenants(&app, "slow", 2).await;
    // N+1 sleeps half a second before its DDL.
    let app = app.restart_with(|config| config.tenant_migrations = with_next(500)).await;

    let run = start_run(&app, json!({ "failure_policy": "continue", "statement_timeout_ms": 200 })).await;
    let run = wait_settled(&app, run["id"].as_str().unwrap()).await;
    assert_eq!(run["totals"]["failed"], 2, "{run:#}");
    for row in run_tenants(&app, run["id"].as_str().unwrap(), Some("failed")).await {
        let error = row["error"].as_str().unwrap();
        assert!(error.contains("statement timeout") && error.contains("57014"), "{error}");
    }
    for t in &tenants {
        assert_eq!(history(&app, &t.database).await.last(), Some(&n()));
    }
    assert!(catalog_versions(&app).await.iter().all(|(_, _, migrating)| !migrating));
}

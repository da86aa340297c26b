//! One run at a time; pause and resume; cancel.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::helpers::TestApp;

/// Waits until a paused run's tenants in flight have finished: nothing running, and the totals
/// unchanged over half a second (a tenant the engine had already started shows as pending while
/// it connects).
async fn wait_quiet(app: &TestApp, id: &str) -> serde_json::Value {
    let mut last = get_run(app, id).await;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = get_run(app, id).await;
        if now["totals"]["running"] == 0 && now["totals"] == last["totals"] {
            return now;
        }
        last = now;
    }
    panic!("the paused run did not come to rest: {last:#}");
}

#[tokio::test]
async fn a_second_run_is_refused_while_one_is_open_and_pause_then_resume_finishes_it() {
    let app = TestApp::spawn().await;
    let tenants = create_tenants(&app, "pause", 8).await;
    // Slow enough (150 ms per tenant, one at a time) to act on it mid-way.
    let app = app.restart_with(|config| config.tenant_migrations = with_next(150)).await;

    let run = start_run(&app, json!({ "concurrency": 1 })).await;
    let id = run["id"].as_str().unwrap().to_owned();

    let response = app.operator(reqwest::Method::POST, "/migrations/runs").json(&json!({})).send().await.unwrap();
    assert_eq!(response.status(), 409);
    let refused: serde_json::Value = response.json().await.unwrap();
    assert_eq!(refused["error"], "run_in_progress");
    assert!(refused["message"].as_str().unwrap().contains(&id), "names the open run: {refused}");
    // A dry run changes nothing and may look at the fleet meanwhile.
    let plan = start_run(&app, json!({ "dry_run": true })).await;
    wait_settled(&app, plan["id"].as_str().unwrap()).await;

    wait_run(&app, &id, Duration::from_secs(30), |r| r["totals"]["succeeded"].as_i64() >= Some(2)).await;
    let (status, paused) = act(&app, &id, "pause").await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["state"], "paused");
    // The tenant in flight finishes; then nothing moves.
    let settled = wait_quiet(&app, &id).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let still = get_run(&app, &id).await;
    assert_eq!(still["totals"], settled["totals"], "no tenant started while paused");
    assert_eq!(still["state"], "paused");
    assert!(still["totals"]["pending"].as_i64().unwrap() > 0);
    assert!(catalog_versions(&app).await.iter().all(|(_, _, migrating)| !migrating), "nobody locked while paused");
    let (status, _) = act(&app, &id, "retry").await;
    assert_eq!(status, 200, "a paused run may also be retried (it resumes)");

    let run = wait_settled(&app, &id).await;
    assert_eq!(run["state"], "completed", "{run:#}");
    assert_eq!(run["totals"]["succeeded"], 8);
    for t in &tenants {
        assert_eq!(marks(&app, &t.database).await, 1, "{}", t.slug);
    }
    let (status, body) = act(&app, &id, "pause").await;
    assert_eq!((status, body["error"].as_str()), (409, Some("wrong_state")));
}

#[tokio::test]
async fn resume_continues_a_paused_run_and_cancel_lets_the_tenants_in_flight_finish() {
    let app = TestApp::spawn().await;
    create_tenants(&app, "cancel", 10).await;
    let app = app.restart_with(|config| config.tenant_migrations = with_next(150)).await;

    let run = start_run(&app, json!({ "concurrency": 2 })).await;
    let id = run["id"].as_str().unwrap().to_owned();
    wait_run(&app, &id, Duration::from_secs(30), |r| r["totals"]["succeeded"].as_i64() >= Some(2)).await;
    assert_eq!(act(&app, &id, "pause").await.0, 200);
    wait_quiet(&app, &id).await;
    let (status, resumed) = act(&app, &id, "resume").await;
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(resumed["state"], "running");
    wait_run(&app, &id, Duration::from_secs(30), |r| r["totals"]["succeeded"].as_i64() >= Some(5)).await;

    let (status, cancelled) = act(&app, &id, "cancel").await;
    assert_eq!(status, 200, "{cancelled}");
    let run = wait_settled(&app, &id).await;
    assert_eq!(run["state"], "cancelled", "{run:#}");
    assert_eq!(run["totals"]["running"], 0);
    assert_eq!(run["totals"]["failed"], 0, "tenants in flight finished rather than being cut off");
    assert!(run["totals"]["pending"].as_i64().unwrap() > 0, "no tenant started after the cancel: {run:#}");
    assert!(catalog_versions(&app).await.iter().all(|(_, _, migrating)| !migrating));
    // Every succeeded tenant is fully at N+1, every pending one fully at N.
    for row in run_tenants(&app, &id, None).await {
        let database = format!("t_{}", row["tenant_id"].as_str().unwrap().replace('-', ""));
        let expected = if row["status"] == "succeeded" { n() + 1 } else { n() };
        assert_eq!(history(&app, &database).await.last(), Some(&expected), "{row}");
    }
    // Cancelled is final; a new run may start and finishes the job.
    let next = start_run(&app, json!({})).await;
    let next = wait_settled(&app, next["id"].as_str().unwrap()).await;
    assert_eq!(next["reached_target"], true, "{next:#}");
}

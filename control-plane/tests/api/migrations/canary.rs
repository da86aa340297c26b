//! The canary wave must succeed before anyone else starts.

use serde_json::json;

use super::*;
use crate::helpers::TestApp;

#[tokio::test]
async fn a_failed_canary_stops_the_run_before_any_other_tenant_starts() {
    let app = TestApp::spawn().await;
    let tenants = create_tenants(&app, "canary", 8).await;
    let bad = &tenants[5];
    poison(&app, bad).await;
    let app = app.restart_with(|config| config.tenant_migrations = with_next(0)).await;

    // Named canaries (one good, one poisoned), and a policy that would otherwise carry on.
    let run = start_run(
        &app,
        json!({ "canary_tenants": [tenants[0].id, bad.slug], "failure_policy": "continue", "concurrency": 4 }),
    )
    .await;
    let id = run["id"].as_str().unwrap().to_owned();
    assert_eq!(run["canary_count"], 2);
    let run = wait_settled(&app, &id).await;

    assert_eq!(run["state"], "stopped", "{run:#}");
    let reason = run["stop_reason"].as_str().unwrap();
    assert!(reason.contains("canary") && reason.contains(&bad.slug), "{reason}");
    assert_eq!(run["totals"]["succeeded"], 1);
    assert_eq!(run["totals"]["failed"], 1);
    assert_eq!(run["totals"]["pending"], 6);
    let rows = run_tenants(&app, &id, None).await;
    let canaries: Vec<&str> =
        rows.iter().filter(|r| r["canary"] == true).map(|r| r["slug"].as_str().unwrap()).collect();
    assert_eq!(canaries, [tenants[0].slug.as_str(), bad.slug.as_str()], "canaries come first, in the order given");
    for row in rows.iter().filter(|r| r["canary"] == false) {
        assert_eq!(row["status"], "pending", "{row}");
        assert_eq!(row["attempts"], 0, "{row}");
    }
    let recorded = attempts(&app, &id, None).await;
    let touched: Vec<&str> = recorded.iter().filter_map(|a| a["tenant_id"].as_str()).collect();
    let canary_ids = [tenants[0].id.to_string(), bad.id.to_string()];
    assert!(touched.iter().all(|t| canary_ids.contains(&t.to_string())), "only canaries were attempted: {touched:?}");
    for t in tenants.iter().skip(1).filter(|t| t.id != bad.id) {
        assert_eq!(history(&app, &t.database).await.last(), Some(&n()), "{} untouched", t.slug);
    }

    // Once the cause is fixed, a retry runs the canaries again, then everyone else.
    cure(&app, bad).await;
    let (status, body) = act(&app, &id, "retry").await;
    assert_eq!(status, 200, "{body}");
    let run = wait_settled(&app, &id).await;
    assert_eq!(run["state"], "completed", "{run:#}");
    assert_eq!(run["reached_target"], true);
}

#[tokio::test]
async fn a_canary_count_takes_the_first_tenants_and_unknown_canaries_are_refused() {
    let app = TestApp::spawn().await;
    let tenants = create_tenants(&app, "cancount", 3).await;
    let app = app.restart_with(|config| config.tenant_migrations = with_next(0)).await;

    let response = app
        .operator(reqwest::Method::POST, "/migrations/runs")
        .json(&json!({ "canary_tenants": ["no-such-tenant"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["field"], "canary_tenants", "{body}");

    let run = start_run(&app, json!({ "canary_count": 2 })).await;
    let id = run["id"].as_str().unwrap().to_owned();
    let run = wait_settled(&app, &id).await;
    assert_eq!(run["state"], "completed", "{run:#}");
    let rows = run_tenants(&app, &id, None).await;
    let canaries: Vec<&str> =
        rows.iter().filter(|r| r["canary"] == true).map(|r| r["slug"].as_str().unwrap()).collect();
    assert_eq!(canaries, [tenants[0].slug.as_str(), tenants[1].slug.as_str()]);
}

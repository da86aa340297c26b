//! A tenant whose history departs from the code is detected, reported with a clear reason, and
//! never touched.

use serde_json::json;

use super::*;
use crate::helpers::TestApp;

#[tokio::test]
async fn a_drifted_tenant_is_detected_by_the_plan_and_skipped_by_the_run_with_a_clear_reason() {
    let app = TestApp::spawn().await;
    let tenants = create_tenants(&app, "drift", 4).await;
    let drifted = &tenants[1];
    // Someone edited migration N after it was applied here: its checksum no longer matches.
    let mut conn = connect(&app, &drifted.database).await;
    sqlx::query("UPDATE refinery_schema_history SET checksum = '42' WHERE version = $1")
        .bind(n())
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
    let before = schema_fingerprint(&app, &drifted.database).await;
    let app = app.restart_with(|config| config.tenant_migrations = with_next(0)).await;

    let plan = start_run(&app, json!({ "dry_run": true })).await;
    let plan = wait_settled(&app, plan["id"].as_str().unwrap()).await;
    assert_eq!(plan["totals"]["planned"], 3);
    assert_eq!(plan["totals"]["drifted"], 1);
    let found = run_tenants(&app, plan["id"].as_str().unwrap(), Some("drifted")).await;
    assert_eq!(found[0]["slug"], drifted.slug.as_str());
    assert_eq!(found[0]["pending"], json!([]));

    let run = start_run(&app, json!({ "failure_policy": "stop" })).await;
    let id = run["id"].as_str().unwrap().to_owned();
    let run = wait_settled(&app, &id).await;
    assert_eq!(run["state"], "completed", "drift is skipped, not a failure that stops the run: {run:#}");
    assert_eq!(run["totals"]["succeeded"], 3);
    assert_eq!(run["totals"]["drifted"], 1);
    assert_eq!(run["reached_target"], false);
    let skipped = run_tenants(&app, &id, Some("drifted")).await;
    assert_eq!(skipped.len(), 1);
    let reason = skipped[0]["error"].as_str().unwrap();
    let name = tenant_schema::migrations().last().unwrap().name().to_owned();
    let expected = format!("V{}__{name} is applied with a different checksum than the code's", n());
    assert!(reason.contains("history departs from the code") && reason.contains(&expected), "{reason}");
    assert_eq!(skipped[0]["attempts"], 0);
    assert!(attempts(&app, &id, Some(drifted.id)).await.is_empty(), "nothing was attempted");
    assert_eq!(history(&app, &drifted.database).await.last(), Some(&n()));
    assert_eq!(schema_fingerprint(&app, &drifted.database).await, before);
    for t in tenants.iter().filter(|t| t.id != drifted.id) {
        assert_eq!(history(&app, &t.database).await.last(), Some(&(n() + 1)));
    }
}

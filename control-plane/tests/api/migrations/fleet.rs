//! The whole fleet: 60 tenants at N, a deployment adding N+1, one run; and the plan before it.

use serde_json::json;

use super::*;
use crate::helpers::TestApp;

/// Undoes fixture N+1 on a template database, as if the start-up pass that migrates templates
/// had not reached its server: the run must then bring the template along itself.
async fn roll_template_back(app: &TestApp) {
    let mut conn = connect(app, &app.template_database).await;
    sqlx::raw_sql(
        "DROP TABLE schema_marks;
         DROP INDEX employees_nickname_idx;
         ALTER TABLE employees DROP CONSTRAINT employees_hired_since_1900, DROP COLUMN nickname;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query("DELETE FROM refinery_schema_history WHERE version = $1")
        .bind(n() + 1)
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
}

#[tokio::test]
async fn sixty_tenants_at_n_all_reach_n_plus_1_with_the_template_and_every_attempt_recorded() {
    let app = TestApp::spawn().await;
    let tenants = create_tenants(&app, "fleet", 60).await;
    for t in &tenants[..3] {
        assert_eq!(history(&app, &t.database).await.last(), Some(&n()));
    }
    let app = app.restart_with(|config| config.tenant_migrations = with_next(0)).await;
    roll_template_back(&app).await;
    assert_eq!(history(&app, &app.template_database).await.last(), Some(&n()));

    // The plan first: every tenant at N with N+1 pending, nothing changed.
    let plan = start_run(&app, json!({ "dry_run": true, "concurrency": 8 })).await;
    let plan = wait_settled(&app, plan["id"].as_str().unwrap()).await;
    assert_eq!(plan["state"], "completed", "{plan:#}");
    assert_eq!(plan["totals"]["planned"], 60, "{plan:#}");
    assert_eq!(plan["reached_target"], false);
    let planned = run_tenants(&app, plan["id"].as_str().unwrap(), Some("planned")).await;
    assert_eq!(planned.len(), 60);
    for row in &planned {
        assert_eq!(row["from_version"], n());
        assert_eq!(row["pending"], json!([{ "version": n() + 1, "name": "nicknames" }]));
    }
    assert_eq!(plan["templates"][0]["status"], "planned");
    assert_eq!(marks(&app, &tenants[0].database).await, 0, "a dry run changes nothing");
    assert_eq!(history(&app, &app.template_database).await.last(), Some(&n()));

    let run = start_run(&app, json!({ "concurrency": 8, "per_server_concurrency": 4 })).await;
    let id = run["id"].as_str().unwrap().to_owned();
    assert_eq!(run["target_version"], n() + 1);
    assert_eq!(run["totals"]["tenants"], 60);
    let run = wait_settled(&app, &id).await;

    assert_eq!(run["state"], "completed", "{run:#}");
    assert_eq!(run["reached_target"], true);
    assert_eq!(run["totals"]["succeeded"], 60);
    assert_eq!(run["timings"]["tenants"], 60, "every tenant's time is accounted for: {run:#}");
    // Every tenant database at N+1, exactly once; the catalog agrees; nobody left locked.
    for t in &tenants {
        let versions = history(&app, &t.database).await;
        assert_eq!(versions.last(), Some(&(n() + 1)), "{}", t.slug);
        assert_eq!(versions.iter().filter(|v| **v == n() + 1).count(), 1);
        assert_eq!(marks(&app, &t.database).await, 1, "{} migrated once", t.slug);
    }
    for (id, version, migrating) in catalog_versions(&app).await {
        assert_eq!(version, Some(n() + 1), "catalog version of {id}");
        assert!(!migrating, "{id} left locked");
    }
    // The template too, so tenants created from now on are born at N+1.
    assert_eq!(history(&app, &app.template_database).await.last(), Some(&(n() + 1)));
    assert_eq!(run["templates"][0]["from_version"], n());
    assert_eq!(run["templates"][0]["to_version"], n() + 1);
    let born = create_tenants(&app, "born", 1).await;
    assert_eq!(history(&app, &born[0].database).await.last(), Some(&(n() + 1)));

    // Bounded concurrency: never more than 4 tenants of the (one) server between their begin
    // and end records at once, and more than one at a time.
    let rows = run_tenants(&app, &id, None).await;
    let at = |v: &serde_json::Value| {
        time::OffsetDateTime::parse(v.as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap()
    };
    let mut edges: Vec<(time::OffsetDateTime, i32)> = Vec::new();
    for row in &rows {
        edges.push((at(&row["started_at"]), 1));
        edges.push((at(&row["finished_at"]), -1));
    }
    // At equal instants, ends come first.
    edges.sort();
    let (mut now, mut most) = (0, 0);
    for (_, delta) in &edges {
        now += delta;
        most = most.max(now);
    }
    assert!((2..=4).contains(&most), "at most 4 at once on one server, and in parallel: {most}");

    // Each attempt recorded: tenant, version, status, start, end, duration.
    let recorded = attempts(&app, &id, None).await;
    let tenant_attempts: Vec<_> = recorded.iter().filter(|a| a["tenant_id"].is_string()).collect();
    assert_eq!(tenant_attempts.len(), 60, "one attempt per tenant");
    for a in &tenant_attempts {
        assert_eq!(a["version"], n() + 1);
        assert_eq!(a["name"], "nicknames");
        assert_eq!(a["status"], "succeeded");
        assert_eq!(a["attempt"], 1);
        assert!(a["started_at"].is_string() && a["finished_at"].is_string(), "{a}");
        assert!(a["duration_ms"].as_f64().unwrap() > 0.0, "{a}");
        assert!(a["error"].is_null());
    }
    let template_attempts: Vec<_> = recorded.iter().filter(|a| a["tenant_id"].is_null()).collect();
    assert_eq!(template_attempts.len(), 1, "{recorded:#?}");
    assert_eq!(template_attempts[0]["database"], app.template_database.as_str());
    assert_eq!(template_attempts[0]["status"], "succeeded");

    // Running again finds nothing to do.
    let again = start_run(&app, json!({})).await;
    let again = wait_settled(&app, again["id"].as_str().unwrap()).await;
    assert_eq!(again["state"], "completed");
    assert_eq!(again["totals"]["succeeded"], 61);
    assert_eq!(attempts(&app, again["id"].as_str().unwrap(), None).await.len(), 0, "nothing applied twice");
}

//! `ops deploy`: a failing migration stops the deploy with maintenance still on and a report;
//! `ops deploy --resume` after the fix migrates everyone and turns maintenance off.

use serde_json::Value;
use sqlx::{Connection, PgConnection};
use stack::Platform;

use crate::migrate::next_build;

async fn ops(platform: &Platform, args: &[&str]) -> (i32, String, String) {
    crate::ops_on(platform, args).await
}

async fn status(platform: &Platform) -> Value {
    let response = platform.http.get(format!("{}/system/status", platform.control_plane.url)).send().await.unwrap();
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_failed_deploy_keeps_maintenance_on_and_resume_finishes_it() {
    let mut platform = Platform::builder_for_tests().routers(0).start().await.unwrap();
    let suffix = stack::unique("");
    let ok = platform.signup(&format!("dep-{suffix}-a")).await.unwrap();
    let bad = platform.signup(&format!("dep-{suffix}-b")).await.unwrap();
    let mut poisoned =
        PgConnection::connect(&platform.database_url(&format!("t_{}", bad.id.simple())).unwrap()).await.unwrap();
    sqlx::query("INSERT INTO employees (first_name, last_name, email, hire_date) VALUES ('A', 'B', 'a@b.example', DATE '1850-01-01')")
        .execute(&mut poisoned)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let next = next_build(dir.path());
    platform.restart_control_plane(move |c| c.tenant_migrations = next).await.unwrap();

    let (code, out, err) = ops(&platform, &["deploy", "--drain-secs", "0", "--message", "Deploying"]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("maintenance still ON") && err.contains("ops deploy --resume"), "{err}");
    assert!(out.contains(&bad.slug) && out.contains("employees_hired_since_1900"), "{out}");
    let now = status(&platform).await;
    assert_eq!(now["maintenance_mode"], true);
    assert_eq!(now["message"], "Deploying");

    sqlx::query("DELETE FROM employees").execute(&mut poisoned).await.unwrap();
    poisoned.close().await.ok();
    let (code, out, err) = ops(&platform, &["deploy", "--resume"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(status(&platform).await["maintenance_mode"], false);
    let mut catalog = PgConnection::connect(&platform.catalog_url).await.unwrap();
    let versions: Vec<Option<i32>> = sqlx::query_scalar("SELECT schema_version FROM tenants WHERE id = ANY($1)")
        .bind(vec![ok.id, bad.id])
        .fetch_all(&mut catalog)
        .await
        .unwrap();
    assert_eq!(versions, vec![Some(tenant_schema::latest_version() + 1); 2]);
    platform.stop().await.unwrap();
}

//! `ops migrate` against a real control plane (in this process, on the shared test server):
//! the plan, a run with a failing tenant (exit code 1 and the database's error in the summary),
//! and a retry that brings everyone to the target (exit code 0).

use serde_json::Value;
use sqlx::{Connection, PgConnection};
use stack::Platform;
use stack::control::MigrationSet;

/// The next build's migrations: the embedded ones plus N+1, whose check fails on employees
/// hired before 1900.
pub fn next_build(dir: &std::path::Path) -> MigrationSet {
    for m in tenant_schema::migrations() {
        std::fs::write(dir.join(format!("V{}__{}.sql", m.version(), m.name())), m.sql().unwrap_or_default()).unwrap();
    }
    let next = tenant_schema::latest_version() + 1;
    std::fs::write(
        dir.join(format!("V{next}__hire_dates.sql")),
        "ALTER TABLE employees ADD CONSTRAINT employees_hired_since_1900 CHECK (hire_date >= DATE '1900-01-01');",
    )
    .unwrap();
    MigrationSet::from_dir(dir).unwrap()
}

/// Runs `ops migrate …` against the control plane; returns the exit code, stdout and stderr.
async fn ops(base: &str, token: &str, args: &[&str]) -> (i32, String, String) {
    crate::ops_at(base, token, &[&["migrate"], args].concat()).await
}

#[tokio::test]
async fn ops_migrate_plans_runs_reports_failures_with_exit_1_and_retries_to_exit_0() {
    // Three companies at N.
    let mut platform = Platform::builder_for_tests().routers(0).start().await.unwrap();
    let suffix = stack::unique("");
    let mut databases = Vec::new();
    for i in 0..3 {
        let company = platform.signup(&format!("opsmig-{suffix}-{i}")).await.unwrap();
        databases.push((company.slug, format!("t_{}", company.id.simple())));
    }
    // One of them has an employee N+1's check refuses.
    let mut poisoned = PgConnection::connect(&platform.database_url(&databases[1].1).unwrap()).await.unwrap();
    sqlx::query("INSERT INTO employees (first_name, last_name, email, hire_date) VALUES ('A', 'B', 'a@b.example', DATE '1850-01-01')")
        .execute(&mut poisoned)
        .await
        .unwrap();

    // The next deployment brings N+1.
    let dir = tempfile::tempdir().unwrap();
    let next = next_build(dir.path());
    platform.restart_control_plane(move |c| c.tenant_migrations = next).await.unwrap();
    let (base, token) = (platform.control_plane.url.clone(), platform.operator_token.clone());

    let (code, out, err) = ops(&base, &token, &["plan", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["run"]["totals"]["planned"], 3, "{plan:#}");
    assert_eq!(plan["tenants"][0]["pending"][0]["name"], "hire_dates");

    // The summary table names the failed tenant with the database's error; the exit code says
    // not everyone got there.
    let (code, out, err) = ops(&base, &token, &["run", "--continue-on-failure"]).await;
    assert_eq!(code, 1, "a tenant did not reach the target: {out}{err}");
    assert!(out.contains(&databases[1].0) && out.contains("employees_hired_since_1900"), "{out}");
    assert!(err.contains("1 tenant(s) did not reach version"), "{err}");
    let run_id = out.split("run ").nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap().to_owned();

    sqlx::query("DELETE FROM employees").execute(&mut poisoned).await.unwrap();
    poisoned.close().await.ok();
    let (code, out, err) = ops(&base, &token, &["retry", &run_id]).await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = ops(&base, &token, &["status", &run_id, "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["run"]["reached_target"], true, "{status:#}");
    platform.stop().await.unwrap();
}

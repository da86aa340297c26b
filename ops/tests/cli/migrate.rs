//! `ops migrate` against a real control plane (in this process, on the shared test server):
//! the plan, a run with a failing tenant (exit code 1 and the database's error in the summary),
//! and a retry that brings everyone to the target (exit code 0).

use control_plane::migrations::MigrationSet;
use control_plane::secrets::MasterKey;
use control_plane::{App, Config};
use local_postgres::{create_fresh_database, shared_test_server};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tokio::sync::oneshot;

/// The next build's migrations: the embedded ones plus N+1, whose check fails on employees
/// hired before 1900.
fn next_build(dir: &std::path::Path) -> MigrationSet {
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

struct Running {
    base: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(config: Config) -> Running {
    let app = App::build(config).await.expect("the control plane starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    Running { base, stop, task }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// Runs `ops migrate …` against the control plane; returns the exit code, stdout and stderr.
async fn ops(base: &str, token: &str, args: &[&str]) -> (i32, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_ops"))
        .arg("migrate")
        .args(args)
        .arg("--url")
        .arg(base)
        .env("NEXACORE_OPERATOR_TOKEN", token)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), stdout, stderr)
}

#[tokio::test]
async fn ops_migrate_plans_runs_reports_failures_with_exit_1_and_retries_to_exit_0() {
    let server = shared_test_server();
    let (catalog, _) = create_fresh_database(server, "ops_migrate").await.unwrap();
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let token = format!("op-{suffix}-{}", uuid::Uuid::new_v4().simple());
    let master = MasterKey::generate_base64();
    let config = |set: MigrationSet| {
        let mut config = Config::new(server.superuser_url().into(), master.clone().into(), token.clone().into());
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.catalog_database = control_plane::domain::DbName::parse(&catalog).unwrap();
        config.template_database = control_plane::domain::DbName::parse(&format!("tpl_{suffix}")).unwrap();
        config.signup_limit_per_hour = 10_000;
        config.tenant_migrations = set;
        config
    };

    // Three companies at N.
    let app = start(config(MigrationSet::embedded())).await;
    let http = reqwest::Client::new();
    let mut databases = Vec::new();
    for i in 0..3 {
        let slug = format!("opsmig-{suffix}-{i}");
        let body = json!({
            "company_name": format!("Company {slug}"), "slug": slug, "timezone": "UTC", "currency": "EUR",
            "admin": { "email": format!("admin@{slug}.example.com"), "password": "Str0ng&Secret!", "full_name": "Ada" },
        });
        let created: Value =
            http.post(format!("{}/tenants", app.base)).json(&body).send().await.unwrap().json().await.unwrap();
        let id: uuid::Uuid = created["tenant"]["id"].as_str().expect("created").parse().unwrap();
        databases.push((slug, format!("t_{}", id.simple())));
    }
    app.stop().await;
    // One of them has an employee N+1's check refuses.
    let mut poisoned = PgConnection::connect(&server.url_for_database(&databases[1].1)).await.unwrap();
    sqlx::query("INSERT INTO employees (first_name, last_name, email, hire_date) VALUES ('A', 'B', 'a@b.example', DATE '1850-01-01')")
        .execute(&mut poisoned)
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let app = start(config(next_build(dir.path()))).await;

    let (code, out, err) = ops(&app.base, &token, &["plan", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["run"]["totals"]["planned"], 3, "{plan:#}");
    assert_eq!(plan["tenants"][0]["pending"][0]["name"], "hire_dates");

    // The summary table names the failed tenant with the database's error; the exit code says
    // not everyone got there.
    let (code, out, err) = ops(&app.base, &token, &["run", "--continue-on-failure"]).await;
    assert_eq!(code, 1, "a tenant did not reach the target: {out}{err}");
    assert!(out.contains(&databases[1].0) && out.contains("employees_hired_since_1900"), "{out}");
    assert!(err.contains("1 tenant(s) did not reach version"), "{err}");
    let run_id = out.split("run ").nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap().to_owned();

    sqlx::query("DELETE FROM employees").execute(&mut poisoned).await.unwrap();
    poisoned.close().await.ok();
    let (code, out, err) = ops(&app.base, &token, &["retry", &run_id]).await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = ops(&app.base, &token, &["status", &run_id, "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["run"]["reached_target"], true, "{status:#}");
    app.stop().await;
}

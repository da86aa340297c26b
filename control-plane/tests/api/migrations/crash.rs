//! The control plane killed mid-run (the real binary: aborted at the worst moment by a test
//! hook, or `kill -9`ed from outside), then restarted: recovery leaves no tenant locked, the run
//! is `interrupted`, resume finishes it, and no migration is applied twice.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use control_plane::secrets::MasterKey;
use local_postgres::shared_test_server;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tokio::process::{Child, Command};

use super::*;
use crate::helpers::{eventually, signup_body, unique};

/// One control plane deployment on the shared test server, started as the real binary.
struct Deployment {
    admin_url: String,
    catalog: String,
    template: String,
    master_key: String,
    operator_token: String,
    dir: PathBuf,
    http: reqwest::Client,
}

impl Deployment {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(unique("nexacore-migrate-crash-"));
        std::fs::create_dir_all(dir.join("migrations")).unwrap();
        Self {
            admin_url: shared_test_server().superuser_url(),
            catalog: unique("mcrash_catalog_"),
            template: unique("tpl_"),
            master_key: MasterKey::generate_base64(),
            operator_token: format!("op-{}", uuid::Uuid::new_v4().simple()),
            dir,
            http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
        }
    }

    /// Writes the embedded migrations plus fixture N+1 where `NEXACORE_TENANT_MIGRATIONS_DIR`
    /// will point: the next build's migration set.
    fn write_next_migrations(&self, sleep_ms: u64) -> PathBuf {
        let dir = self.dir.join("migrations");
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tenant-schema/migrations");
        for entry in std::fs::read_dir(source).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
        std::fs::write(dir.join(format!("{}.sql", next_migration_name())), next_migration_sql(sleep_ms)).unwrap();
        dir
    }

    async fn start(&self, name: &str, env: &[(&str, String)]) -> (Child, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_control-plane"));
        command
            .env("NEXACORE_ADMIN_DATABASE_URL", &self.admin_url)
            .env("NEXACORE_CATALOG_DATABASE", &self.catalog)
            .env("NEXACORE_TEMPLATE_DATABASE", &self.template)
            .env("NEXACORE_MASTER_KEY", &self.master_key)
            .env("NEXACORE_OPERATOR_TOKEN", &self.operator_token)
            .env("NEXACORE_LISTEN", format!("127.0.0.1:{port}"))
            .env("NEXACORE_SIGNUP_LIMIT_PER_HOUR", "100000")
            .env("RUST_LOG", "info,sqlx=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("the control-plane binary starts");
        let base = format!("http://127.0.0.1:{port}");
        let up = eventually(Duration::from_secs(60), || {
            let request = self.http.get(format!("{base}/health")).send();
            async move { request.await.is_ok_and(|r| r.status() == 200) }
        })
        .await;
        assert!(up, "the control plane ({name}) did not become healthy; see {}", self.dir.display());
        (child, base)
    }

    async fn catalog(&self) -> PgConnection {
        let mut url = url::Url::parse(&self.admin_url).unwrap();
        url.set_path(&format!("/{}", self.catalog));
        PgConnection::connect(url.as_str()).await.unwrap()
    }

    /// A superuser session of the test's own, its search path pinned (the databases may hold
    /// planted code, see `kill_9_mid_run…`): the checks must not run it themselves.
    async fn tenant_db(&self, database: &str) -> PgConnection {
        let options: sqlx::postgres::PgConnectOptions =
            shared_test_server().url_for_database(database).parse().unwrap();
        PgConnection::connect_with(&options.options([("search_path", "pg_catalog, public")])).await.unwrap()
    }

    async fn call(&self, base: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{base}{path}")).bearer_auth(&self.operator_token);
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    /// Tenants created at N through signup: their database names.
    async fn create_tenants(&self, base: &str, count: usize) -> Vec<String> {
        let prefix = unique("crash-");
        let mut databases = Vec::new();
        for chunk in (0..count).collect::<Vec<_>>().chunks(6) {
            let created = futures::future::join_all(chunk.iter().map(|i| {
                let body = signup_body(&format!("{prefix}-{i}"));
                let request = self.http.post(format!("{base}/tenants")).json(&body).send();
                async move { request.await.unwrap().json::<Value>().await.unwrap() }
            }))
            .await;
            for body in created {
                let id: uuid::Uuid = body["tenant"]["id"].as_str().expect("signed up").parse().unwrap();
                databases.push(format!("t_{}", id.simple()));
            }
        }
        databases
    }

    /// After the restart: the run is interrupted and nobody is locked; resume finishes it;
    /// every database has N+1 exactly once and the catalog agrees.
    async fn resume_and_check(&self, base: &str, run: &str, databases: &[String]) {
        let (_, after) = self.call(base, reqwest::Method::GET, &format!("/migrations/runs/{run}"), None).await;
        assert_eq!(after["state"], "interrupted", "{after:#}");
        assert_eq!(after["totals"]["running"], 0, "settled at start-up: {after:#}");
        let mut catalog = self.catalog().await;
        let locked: i64 =
            sqlx::query_scalar("SELECT count(*) FROM tenants WHERE migrating").fetch_one(&mut catalog).await.unwrap();
        assert_eq!(locked, 0, "no tenant stays locked after the restart");
        let interrupted: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM migration_attempts WHERE run_id = $1::uuid AND status = 'running'",
        )
        .bind(run)
        .fetch_one(&mut catalog)
        .await
        .unwrap();
        assert_eq!(interrupted, 0, "no attempt is left 'running'");

        let (status, resumed) =
            self.call(base, reqwest::Method::POST, &format!("/migrations/runs/{run}/resume"), None).await;
        assert_eq!(status, 200, "{resumed}");
        let done = eventually(Duration::from_secs(120), || async {
            let (_, r) = self.call(base, reqwest::Method::GET, &format!("/migrations/runs/{run}"), None).await;
            r["state"] == "completed"
        })
        .await;
        let (_, after) = self.call(base, reqwest::Method::GET, &format!("/migrations/runs/{run}"), None).await;
        assert!(done, "resume finishes the run: {after:#}");
        assert_eq!(after["reached_target"], true, "{after:#}");
        assert_eq!(after["totals"]["succeeded"].as_u64(), Some(databases.len() as u64));

        for database in databases {
            let mut conn = self.tenant_db(database).await;
            let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM refinery_schema_history WHERE version = $1")
                .bind(n() + 1)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            let marks: i64 =
                sqlx::query_scalar("SELECT count(*) FROM schema_marks").fetch_one(&mut conn).await.unwrap();
            assert_eq!((applied, marks), (1, 1), "{database}: N+1 applied exactly once");
            conn.close().await.ok();
            let succeeded: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM migration_attempts
                 WHERE run_id = $1::uuid AND database_name = $2 AND status = 'succeeded'",
            )
            .bind(run)
            .bind(database)
            .fetch_one(&mut catalog)
            .await
            .unwrap();
            assert_eq!(succeeded, 1, "{database}: one successful attempt on record");
        }
        let wrong: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM tenants WHERE status = 'active' AND (migrating OR schema_version <> $1)",
        )
        .bind(n() + 1)
        .fetch_one(&mut catalog)
        .await
        .unwrap();
        assert_eq!(wrong, 0, "the catalog agrees with the databases");
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn stop(mut child: Child) {
    child.start_kill().ok();
    child.wait().await.ok();
}

#[tokio::test]
async fn a_crash_right_after_a_tenant_commits_is_settled_at_restart_and_resume_finishes_the_run() {
    let deployment = Deployment::new();
    let (old, base) = deployment.start("n", &[]).await;
    let databases = deployment.create_tenants(&base, 16).await;
    stop(old).await;

    let dir = deployment.write_next_migrations(50).display().to_string();
    let crash_env =
        [("NEXACORE_TENANT_MIGRATIONS_DIR", dir.clone()), ("NEXACORE_FAULT_MIGRATION_CRASH_AFTER", "5".to_owned())];
    let (mut crashing, base) = deployment.start("crashing", &crash_env).await;
    let (status, run) =
        deployment.call(&base, reqwest::Method::POST, "/migrations/runs", Some(json!({ "concurrency": 3 }))).await;
    assert_eq!(status, 200, "{run}");
    let run = run["id"].as_str().unwrap().to_owned();
    let exit = tokio::time::timeout(Duration::from_secs(60), crashing.wait()).await.expect("it crashed").unwrap();
    assert!(!exit.success(), "aborted after the 5th commit");

    // Left behind: the run `running`, the tenant that had just committed still flagged.
    let mut catalog = deployment.catalog().await;
    let (state,): (String,) = sqlx::query_as("SELECT state FROM migration_runs WHERE id = $1::uuid")
        .bind(&run)
        .fetch_one(&mut catalog)
        .await
        .unwrap();
    assert_eq!(state, "running");
    let flagged: Vec<String> =
        sqlx::query_scalar("SELECT database_name FROM tenants WHERE migrating").fetch_all(&mut catalog).await.unwrap();
    assert!(!flagged.is_empty(), "the crash left tenants locked");
    let mut committed_but_unrecorded = Vec::new();
    for database in &flagged {
        let mut conn = deployment.tenant_db(database).await;
        let version: Option<i32> =
            sqlx::query_scalar("SELECT max(version) FROM refinery_schema_history").fetch_one(&mut conn).await.unwrap();
        if version == Some(n() + 1) {
            committed_but_unrecorded.push(database.clone());
        }
    }
    // The 5th commit (and, rarely, one that raced it) is in the database but not in the catalog.
    assert!(!committed_but_unrecorded.is_empty(), "a commit the catalog does not know of");

    let (restarted, base) = deployment.start("restarted", &[("NEXACORE_TENANT_MIGRATIONS_DIR", dir)]).await;
    let settled: (String, Option<i32>) = sqlx::query_as(
        "SELECT r.status, t.schema_version FROM migration_run_tenants r JOIN tenants t ON t.id = r.tenant_id
                        WHERE r.run_id = $1::uuid AND t.database_name = $2",
    )
    .bind(&run)
    .bind(&committed_but_unrecorded[0])
    .fetch_one(&mut catalog)
    .await
    .unwrap();
    assert_eq!(settled, ("succeeded".to_owned(), Some(n() + 1)), "settled from the database itself");
    deployment.resume_and_check(&base, &run, &databases).await;
    stop(restarted).await;
}

#[tokio::test]
async fn kill_9_mid_run_leaves_no_tenant_locked_and_resume_applies_nothing_twice() {
    let deployment = Deployment::new();
    let (old, base) = deployment.start("n", &[]).await;
    let databases = deployment.create_tenants(&base, 20).await;
    stop(old).await;
    // Every tenant plants code that escalates if a superuser session runs it: the engine, and
    // the recovery that settles the tenants the killed engine left running, must never.
    let master = control_plane::secrets::MasterKey::from_base64(&deployment.master_key.clone().into()).unwrap();
    for database in &databases {
        let role = control_plane::domain::RoleName::parse(database).unwrap();
        let password = secrecy::ExposeSecret::expose_secret(&master.tenant_role_key().password_for(&role)).to_owned();
        crate::isolation::plant(&deployment.admin_url, database, &password).await;
    }

    let dir = deployment.write_next_migrations(100).display().to_string();
    let env = [("NEXACORE_TENANT_MIGRATIONS_DIR", dir)];
    let (mut running, base) = deployment.start("killed", &env).await;
    let (status, run) =
        deployment.call(&base, reqwest::Method::POST, "/migrations/runs", Some(json!({ "concurrency": 4 }))).await;
    assert_eq!(status, 200, "{run}");
    let run = run["id"].as_str().unwrap().to_owned();
    let midway = eventually(Duration::from_secs(60), || async {
        let (_, r) = deployment.call(&base, reqwest::Method::GET, &format!("/migrations/runs/{run}"), None).await;
        r["totals"]["succeeded"].as_i64() >= Some(6)
    })
    .await;
    assert!(midway);
    running.start_kill().unwrap(); // SIGKILL
    running.wait().await.unwrap();

    let mut catalog = deployment.catalog().await;
    let in_flight: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM migration_run_tenants WHERE run_id = $1::uuid AND status IN ('running', 'pending')",
    )
    .bind(&run)
    .fetch_one(&mut catalog)
    .await
    .unwrap();
    assert!(in_flight > 0, "killed before the end");

    let (restarted, base) = deployment.start("restarted", &env).await;
    deployment.resume_and_check(&base, &run, &databases).await;
    stop(restarted).await;
    for database in &databases {
        let ran = crate::isolation::planted_code_ran_as_superuser(&deployment.admin_url, database).await;
        assert_eq!(ran, (false, false), "{database}: planted code ran as superuser");
    }
}

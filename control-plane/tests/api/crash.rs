//! Crash safety of provisioning: the real control-plane binary is made to abort right after
//! each provisioning step (the `NEXACORE_FAULT_CRASH_AFTER` hook), then restarted. Whatever
//! the step, the restart ends with either a working tenant or nothing: no orphan database,
//! no orphan role, no tenant stuck in `provisioning`.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use control_plane::provision::ProvisionStep;
use control_plane::secrets::MasterKey;
use local_postgres::LocalCluster;
use sqlx::{Connection, PgConnection};
use tokio::process::{Child, Command};

use crate::helpers::{eventually, signup_body, unique};

pub(crate) struct Stack {
    pub admin_url: String,
    pub master_key: String,
    pub operator_token: String,
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Stack {
    pub fn catalog_url(&self) -> String {
        let mut url = url::Url::parse(&self.admin_url).unwrap();
        url.set_path("/nexacore_catalog");
        url.to_string()
    }

    /// Starts the binary with `spares` spare databases per server (0: every signup builds its
    /// own database, so every step is reached).
    async fn start(&self, crash_after: Option<ProvisionStep>, spares: u32) -> (Child, String) {
        self.start_with_env(crash_after, spares, &[]).await
    }

    /// [`Stack::start`] with more `NEXACORE_*` variables.
    pub async fn start_with_env(
        &self,
        crash_after: Option<ProvisionStep>,
        spares: u32,
        env: &[(&str, String)],
    ) -> (Child, String) {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_control-plane"));
        command
            .env("NEXACORE_ADMIN_DATABASE_URL", &self.admin_url)
            .env("NEXACORE_MASTER_KEY", &self.master_key)
            .env("NEXACORE_OPERATOR_TOKEN", &self.operator_token)
            .env("NEXACORE_LISTEN", format!("127.0.0.1:{port}"))
            .env("NEXACORE_SPARE_DATABASES", spares.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        command.envs(env.iter().map(|(k, v)| (*k, v)));
        if let Some(step) = crash_after {
            command.env("NEXACORE_FAULT_CRASH_AFTER", step.as_str());
        }
        let child = command.spawn().expect("the control-plane binary starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let up = eventually(Duration::from_secs(30), || {
            let request = http.get(format!("{base}/health")).send();
            async move { request.await.is_ok_and(|r| r.status() == 200) }
        })
        .await;
        assert!(up, "the control plane did not become healthy");
        (child, base)
    }

    /// Tenant databases and roles on the server, and the names the catalog accounts for.
    async fn accounting(&self) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>, i64) {
        let mut admin = PgConnection::connect(&self.admin_url).await.unwrap();
        let dbs = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 't\\_%'")
            .fetch_all(&mut admin)
            .await
            .unwrap();
        let roles = sqlx::query_scalar("SELECT rolname FROM pg_roles WHERE rolname LIKE 't\\_%'")
            .fetch_all(&mut admin)
            .await
            .unwrap();
        let catalog_url = self.catalog_url();
        let mut catalog = PgConnection::connect(&catalog_url).await.unwrap();
        let live = sqlx::query_scalar("SELECT database_name FROM tenants WHERE status NOT IN ('deleted')")
            .fetch_all(&mut catalog)
            .await
            .unwrap();
        let stuck: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants WHERE status = 'provisioning'")
            .fetch_one(&mut catalog)
            .await
            .unwrap();
        (dbs.into_iter().collect(), roles.into_iter().collect(), live.into_iter().collect(), stuck)
    }

    async fn spares(&self, status_filter: &str) -> i64 {
        let mut catalog = PgConnection::connect(&self.catalog_url()).await.unwrap();
        let sql = format!("SELECT count(*) FROM spare_databases WHERE {status_filter}");
        let n = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&mut catalog).await.unwrap();
        catalog.close().await.ok();
        n
    }
}

/// Every step of a signup that builds its database, then the steps of one that adopts a spare.
fn cases() -> Vec<(ProvisionStep, u32)> {
    let adopting = [ProvisionStep::Reserved, ProvisionStep::Seeded, ProvisionStep::Activated];
    ProvisionStep::ALL.into_iter().map(|step| (step, 0)).chain(adopting.into_iter().map(|step| (step, 1))).collect()
}

#[tokio::test]
async fn a_crash_after_any_provisioning_step_leaves_a_working_tenant_or_nothing() {
    let cluster = tokio::task::spawn_blocking(LocalCluster::start_throwaway).await.unwrap().expect("a private cluster");
    let stack = Stack {
        admin_url: cluster.superuser_url(),
        master_key: MasterKey::generate_base64(),
        operator_token: format!("op-{}", uuid::Uuid::new_v4().simple()),
    };
    let http = reqwest::Client::new();

    for (step, spares) in cases() {
        let (mut crashing, base) = stack.start(Some(step), spares).await;
        if spares > 0 {
            let ready =
                eventually(Duration::from_secs(30), || async { stack.spares("status = 'ready'").await > 0 }).await;
            assert!(ready, "a spare is ready before the signup");
        }
        let mut catalog = PgConnection::connect(&stack.catalog_url()).await.unwrap();
        let spare: Option<uuid::Uuid> =
            sqlx::query_scalar("SELECT id FROM spare_databases WHERE status = 'ready' ORDER BY created_at LIMIT 1")
                .fetch_optional(&mut catalog)
                .await
                .unwrap();
        let slug = unique("crash-");
        let key = unique("key-");
        let body = signup_body(&slug);
        let attempt = http.post(format!("{base}/tenants")).header("Idempotency-Key", &key).json(&body).send().await;
        assert!(attempt.is_err(), "the process should have died after {step:?} (spares: {spares})");
        let exit = tokio::time::timeout(Duration::from_secs(10), crashing.wait()).await.unwrap().unwrap();
        assert!(!exit.success(), "aborted after {step:?}");

        // Restarted without a pool: whatever the crash left of spares is dropped too, so every
        // tenant database and role on the server must belong to a live tenant.
        let (mut restarted, base) = stack.start(None, 0).await;
        let drained = eventually(Duration::from_secs(30), || async { stack.spares("true").await == 0 }).await;
        assert!(drained, "spares left after a crash after {step:?} are dropped");
        let (dbs, roles, live, stuck) = stack.accounting().await;
        assert_eq!(stuck, 0, "no tenant stuck in provisioning after a crash after {step:?}");
        assert_eq!(dbs, live, "no orphan database after a crash after {step:?}");
        assert_eq!(roles, live, "no orphan role after a crash after {step:?}");

        let found: Option<(uuid::Uuid, String)> = sqlx::query_as("SELECT id, status FROM tenants WHERE slug = $1")
            .bind(&slug)
            .fetch_optional(&mut catalog)
            .await
            .unwrap();
        let status = found.as_ref().map(|(_, status)| status.clone());
        if step == ProvisionStep::Activated {
            assert_eq!(status.as_deref(), Some("active"), "committed before the crash");
            if spares > 0 {
                assert_eq!(found.map(|(id, _)| id), spare, "the signup adopted the ready spare");
            }
        } else {
            assert_eq!(status, None, "undone after a crash after {step:?}");
        }

        // The client retries with the same key and gets its company, exactly once.
        let retry =
            http.post(format!("{base}/tenants")).header("Idempotency-Key", &key).json(&body).send().await.unwrap();
        assert_eq!(retry.status(), 201, "retry after a crash after {step:?}");
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants WHERE slug = $1")
            .bind(&slug)
            .fetch_one(&mut catalog)
            .await
            .unwrap();
        assert_eq!(count, 1);

        restarted.start_kill().unwrap();
        restarted.wait().await.unwrap();
    }
    tokio::task::spawn_blocking(move || cluster.stop()).await.unwrap().unwrap();
}

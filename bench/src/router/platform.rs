//! The router benchmark's platform: Postgres authentication as in production, the control
//! plane (through `stack`), routers started per phase, and the tenants: real ones signed up
//! through the API and catalog-only ones that make the catalog the size it would be.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use secrecy::ExposeSecret;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use stack::{Company, Platform, RouterHandle};
use tenancy::RoleName;
use uuid::Uuid;

use super::Settings;
use crate::harness::platform;

/// Tenant roles log in with SCRAM-SHA-256 as in production; the throwaway cluster trusts
/// everyone, which would make a cold tenant's connect cheaper than it is. The superuser keeps
/// trust. The file is written by the server itself (`COPY … TO` its own `hba_file`).
pub async fn require_scram_for_tenant_roles(admin: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::raw_sql(
        "CREATE TEMP TABLE bench_hba (line text);
         INSERT INTO bench_hba VALUES
             ('local all all trust'),
             ('host all postgres 127.0.0.1/32 trust'),
             ('host all postgres ::1/128 trust'),
             ('host all all 127.0.0.1/32 scram-sha-256'),
             ('host all all ::1/128 scram-sha-256');
         DO $$ BEGIN EXECUTE format('COPY bench_hba TO %L', current_setting('hba_file')); END $$;
         DROP TABLE bench_hba;",
    )
    .execute(&mut *admin)
    .await
    .context("writing pg_hba.conf")?;
    let bad: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL")
        .fetch_one(&mut *admin)
        .await?;
    if bad > 0 {
        bail!("the benchmark's pg_hba.conf has {bad} invalid lines");
    }
    let _: bool = sqlx::query_scalar("SELECT pg_reload_conf()").fetch_one(&mut *admin).await?;
    // The postmaster reloads asynchronously; `check_tenant_auth` confirms it took effect.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

/// How tenant roles authenticate, as observed: a wrong password must be refused.
pub async fn check_tenant_auth(platform: &BenchPlatform, tenant: &Company) -> anyhow::Result<String> {
    let options = platform.tenant_options(tenant.id).await?;
    let conn = PgConnection::connect_with(&options).await.context("connecting as the tenant role")?;
    conn.close().await.ok();
    Ok(match PgConnection::connect_with(&options.password("not-the-password")).await {
        Err(_) => "scram-sha-256 (as in production; a wrong password is refused)".to_owned(),
        Ok(conn) => {
            conn.close().await.ok();
            "trust (pg_hba.conf could not be changed: connects skip SCRAM, cheaper than production)".to_owned()
        }
    })
}

/// The platform (control plane in this process), what this run's names carry, and the
/// cluster's postmaster (to tell Postgres's CPU time from other processes').
pub struct BenchPlatform {
    pub stack: Platform,
    pub run_id: String,
    pub postmaster: Option<u32>,
}

impl BenchPlatform {
    pub async fn start(admin_url: &str, settings: &Settings, postmaster: Option<u32>) -> anyhow::Result<Self> {
        let stack = platform::start(platform::builder(admin_url, |config| {
            // Signup tokens are the load's tokens: they must outlive the run.
            config.token_ttl = Duration::from_secs(12 * 3600);
        }))
        .await?;
        // The server registers with room for 1,000 tenants; this run places more.
        platform::make_room(&stack.catalog_url, settings.registered + settings.active + 100).await?;
        Ok(Self { stack, run_id: format!("{:08x}", rand::random::<u32>()), postmaster })
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.stack.stop().await.context("stopping the control plane")
    }

    pub fn admin_url(&self) -> &str {
        &self.stack.admin_url
    }

    /// A router replica built through `App::build` like `main` does, on a free port; its
    /// connections carry `application_name`.
    pub async fn start_router(
        &self,
        application_name: String,
        tweak: impl FnOnce(&mut stack::RouterConfig),
    ) -> anyhow::Result<RouterHandle> {
        let router = self.stack.start_router(|config| {
            config.pool.application_name = application_name;
            tweak(config);
        });
        router.await.context("starting the router")
    }

    /// Signs a company up through `POST /tenants` with the operator token (a real database and
    /// role, seeded), and returns it with its admin's token.
    pub async fn provision(&self, tag: &str) -> anyhow::Result<Company> {
        Ok(self.stack.signup(&format!("rb-{}-{tag}", self.run_id)).await?)
    }

    /// `count` tenants through the API, `clients` at a time.
    pub async fn provision_many(&self, count: usize, clients: usize) -> anyhow::Result<Vec<Company>> {
        let slugs = (0..count).map(|n| format!("rb-{}-a{n}", self.run_id)).collect();
        platform::sign_up_many(&self.stack, slugs, clients, "provisioning (API)").await
    }

    /// Registers `count` active tenants as catalog rows only: their databases are never
    /// created, and no request ever names them. They make the catalog the size it would be.
    pub async fn register_catalog_only(&self, count: usize) -> anyhow::Result<()> {
        let mut catalog = PgConnection::connect(&self.stack.catalog_url).await.context("connecting to the catalog")?;
        sqlx::query(
            "INSERT INTO tenants (id, slug, name, status, server_id, database_name, role_name, schema_version,
                                  timezone, currency, chart_template, activated_at)
             SELECT u, 'idle-' || $2 || '-' || g, 'Idle company ' || g, 'active', s.id,
                    't_' || replace(u::text, '-', ''), 't_' || replace(u::text, '-', ''), $3,
                    'UTC', 'EUR', 'standard', now()
             FROM (SELECT gen_random_uuid() AS u, g FROM generate_series(1, $1) AS g) AS fresh,
                  (SELECT id FROM database_servers ORDER BY created_at LIMIT 1) AS s",
        )
        .bind(i32::try_from(count)?)
        .bind(&self.run_id)
        .bind(tenant_schema::latest_version())
        .execute(&mut catalog)
        .await
        .context("registering catalog-only tenants")?;
        catalog.close().await.ok();
        Ok(())
    }

    /// Every tenant id in the catalog.
    pub async fn all_tenant_ids(&self) -> anyhow::Result<Vec<Uuid>> {
        let mut catalog = PgConnection::connect(&self.stack.catalog_url).await.context("connecting to the catalog")?;
        let ids = sqlx::query_scalar("SELECT id FROM tenants").fetch_all(&mut catalog).await?;
        catalog.close().await.ok();
        Ok(ids)
    }

    /// How the router reaches a tenant's database: as its role, with the derived password.
    pub async fn tenant_options(&self, tenant: Uuid) -> anyhow::Result<PgConnectOptions> {
        let mut options = self.tenants_options(&[tenant]).await?;
        options.pop().ok_or_else(|| anyhow!("tenant {tenant} is not in the catalog"))
    }

    /// [`Self::tenant_options`] for many tenants, in their order, with one catalog query.
    pub async fn tenants_options(&self, tenants: &[Uuid]) -> anyhow::Result<Vec<PgConnectOptions>> {
        let mut catalog = PgConnection::connect(&self.stack.catalog_url).await.context("connecting to the catalog")?;
        let rows: Vec<(Uuid, String, i32, String, String)> = sqlx::query_as(
            "SELECT t.id, s.host, s.port, t.database_name, t.role_name
             FROM tenants t JOIN database_servers s ON s.id = t.server_id WHERE t.id = ANY($1)",
        )
        .bind(tenants)
        .fetch_all(&mut catalog)
        .await?;
        catalog.close().await.ok();
        let mut by_id = std::collections::HashMap::with_capacity(rows.len());
        for (id, host, port, database, role) in rows {
            let role = RoleName::parse(&role).map_err(|e| anyhow!(e))?;
            let password = self.stack.role_key.password_for(&role);
            let options = PgConnectOptions::new()
                .host(&host)
                .port(u16::try_from(port)?)
                .username(role.as_str())
                .password(password.expose_secret())
                .database(&database);
            by_id.insert(id, options);
        }
        tenants.iter().map(|id| by_id.remove(id).ok_or_else(|| anyhow!("tenant {id} is not in the catalog"))).collect()
    }
}

/// The tenants of the many-tenant phases.
pub struct Fleet {
    pub active: Vec<Company>,
    pub catalog_only: usize,
    pub provisioning_s: f64,
}

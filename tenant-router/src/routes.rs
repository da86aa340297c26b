//! Tenant routes: where a tenant's database lives and whether it may be served, read from the
//! catalog and cached in moka. Concurrent misses for one tenant share one catalog lookup
//! (`try_get_with`). Entries expire after the TTL, and the catalog listener drops them at once
//! when the catalog announces a change. Lookup failures are not cached; "no such tenant" is,
//! like any route, until the TTL or a notification.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::future::Cache;
use sqlx::PgPool;
use tenancy::{DbName, RoleName, TenantId, TenantStatus};
use uuid::Uuid;

use crate::catalog;
use crate::timing::micros;

/// What the router needs to know to serve one tenant.
#[derive(Debug, Clone)]
pub struct TenantRoute {
    pub id: TenantId,
    pub status: TenantStatus,
    pub server_id: Uuid,
    pub host: String,
    pub port: u16,
    pub database: DbName,
    pub role: RoleName,
    pub schema_version: Option<i32>,
    pub maintenance: Option<String>,
    pub migrating: bool,
}

/// A cached lookup: the tenant, or the fact that there is none.
#[derive(Debug, Clone)]
pub enum Lookup {
    Found(Arc<TenantRoute>),
    Unknown,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("catalog lookup failed: {0}")]
pub struct LookupError(String);

pub struct TenantRoutes {
    catalog: PgPool,
    cache: Cache<TenantId, Lookup>,
    lookups: AtomicU64,
    /// Every `get`, hit or miss (`/metrics`: hits = gets − lookups).
    gets: AtomicU64,
    /// Time spent in catalog lookups, in microseconds (operators and benchmarks divide it by
    /// the lookup count).
    lookup_micros: AtomicU64,
}

type RouteRow = (Uuid, String, Uuid, String, i32, String, String, Option<i32>, bool, Option<String>, bool);

impl TenantRoutes {
    pub fn new(catalog: PgPool, ttl: Duration) -> Self {
        Self {
            catalog,
            cache: Cache::builder().max_capacity(100_000).time_to_live(ttl).build(),
            lookups: AtomicU64::new(0),
            gets: AtomicU64::new(0),
            lookup_micros: AtomicU64::new(0),
        }
    }

    /// Catalog lookups made so far (hits do not count).
    pub fn lookup_count(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    /// Route requests so far, hits and misses.
    pub fn get_count(&self) -> u64 {
        self.gets.load(Ordering::Relaxed)
    }

    /// Microseconds spent in catalog lookups so far.
    pub fn lookup_micros(&self) -> u64 {
        self.lookup_micros.load(Ordering::Relaxed)
    }

    pub fn cached_count(&self) -> u64 {
        self.cache.entry_count()
    }

    pub async fn get(&self, tenant: TenantId) -> Result<Lookup, LookupError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        self.cache.try_get_with(tenant, self.load(tenant)).await.map_err(|e| (*e).clone())
    }

    pub async fn invalidate(&self, tenant: TenantId) {
        self.cache.invalidate(&tenant).await;
    }

    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }

    async fn load(&self, tenant: TenantId) -> Result<Lookup, LookupError> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let found = self.query(tenant).await;
        self.lookup_micros.fetch_add(micros(started.elapsed()), Ordering::Relaxed);
        found
    }

    async fn query(&self, tenant: TenantId) -> Result<Lookup, LookupError> {
        let row = catalog::retrying(|| self.fetch_route(tenant)).await.map_err(|e| LookupError(e.to_string()))?;
        let Some((id, status, server_id, host, port, db, role, schema_version, maintenance, message, migrating)) = row
        else {
            return Ok(Lookup::Unknown);
        };
        let status = TenantStatus::parse(&status).ok_or_else(|| LookupError(format!("unknown status {status}")))?;
        let database = DbName::parse(&db).map_err(LookupError)?;
        let role = RoleName::parse(&role).map_err(LookupError)?;
        Ok(Lookup::Found(Arc::new(TenantRoute {
            id: TenantId(id),
            status,
            server_id,
            host,
            port: u16::try_from(port).map_err(|_| LookupError("bad port".into()))?,
            database,
            role,
            schema_version,
            maintenance: maintenance.then(|| message.unwrap_or_else(|| "This company is under maintenance.".into())),
            migrating,
        })))
    }

    async fn fetch_route(&self, tenant: TenantId) -> Result<Option<RouteRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT t.id, t.status, t.server_id, s.host, s.port, t.database_name, t.role_name, t.schema_version,
                    t.maintenance_mode, t.maintenance_message, t.migrating
             FROM tenants t JOIN database_servers s ON s.id = t.server_id
             WHERE t.id = $1",
        )
        .bind(tenant.0)
        .fetch_optional(&self.catalog)
        .await
    }
}

/// Platform-wide settings the gates need, cached and refreshed on notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub maintenance: Option<String>,
    pub min_client_version: String,
    pub latest_version: String,
}

pub struct SettingsCache {
    catalog: PgPool,
    current: tokio::sync::RwLock<(Settings, std::time::Instant)>,
    ttl: Duration,
}

impl SettingsCache {
    pub async fn load(catalog: PgPool, ttl: Duration) -> Result<Self, sqlx::Error> {
        let settings = read_settings(&catalog).await?;
        Ok(Self { catalog, current: tokio::sync::RwLock::new((settings, std::time::Instant::now())), ttl })
    }

    pub async fn get(&self) -> Settings {
        {
            let current = self.current.read().await;
            if current.1.elapsed() < self.ttl {
                return current.0.clone();
            }
        }
        self.refresh().await;
        self.current.read().await.0.clone()
    }

    /// Re-reads the settings; on failure keeps the last known ones (and says so).
    pub async fn refresh(&self) {
        match read_settings(&self.catalog).await {
            Ok(s) => *self.current.write().await = (s, std::time::Instant::now()),
            Err(error) => tracing::warn!(%error, "reading platform settings failed; keeping the last known"),
        }
    }
}

async fn read_settings(pool: &PgPool) -> Result<Settings, sqlx::Error> {
    let (on, message, min, latest): (bool, Option<String>, String, String) = catalog::retrying(|| {
        sqlx::query_as(
            "SELECT maintenance_mode, maintenance_message, min_client_version, latest_version FROM system_settings",
        )
        .fetch_one(pool)
    })
    .await?;
    Ok(Settings {
        maintenance: on.then(|| message.unwrap_or_else(|| "NexaCore is under maintenance.".into())),
        min_client_version: min,
        latest_version: latest,
    })
}

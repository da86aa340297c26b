//! Per-tenant connection pools under a global budget.
//!
//! sqlx pools cannot share a limit across pools, so this is a small pool of our own:
//! - every open connection (idle or in use) holds a permit of its server's **budget**
//!   semaphore, so the connections this router holds to one Postgres server never exceed the
//!   budget;
//! - a tenant may hold at most `max_per_tenant` connections (its **share**, a second semaphore),
//!   so one busy tenant cannot starve the others; waiting on both semaphores is FIFO-fair;
//! - a closed connection keeps its permit until its backend has left `pg_stat_activity` (seen by
//!   the check each new connection starts, or by a waiting request) or [`BACKEND_EXIT_GRACE`] has
//!   passed, so Postgres itself never counts more than the budget;
//! - because that makes a reclaimed permit arrive late, the pool keeps a small **reserve**
//!   of free (or soon free) permits per server by closing idle connections (chosen as below)
//!   ahead of need, so a cold tenant's first request rarely waits out the whole grace;
//! - when the budget is spent anyway, a waiter closes an idle connection of any tenant (one per
//!   waiter not already covered by a closing connection), so idle pools never block active ones;
//!   with nothing idle it waits, and after `acquire_timeout` gets [`PoolError::BudgetExhausted`]
//!   (503 with `Retry-After`), never a hang;
//! - the idle connection to close is chosen by **frequency**: that of the tenant with the fewest
//!   recent requests (halved at every sweep), the oldest first among equals. Under a skewed load
//!   (a few busy tenants, a long tail) this keeps the busy tenants' connections, where closing the
//!   least recently used would close them as often as a tail tenant's;
//! - a tenant whose database refuses connections trips its **breaker**: for a while its
//!   requests fail fast with [`PoolError::DatabaseDown`] without taking budget;
//! - pools live in a moka cache with time-to-idle: an idle pool is evicted and its connections
//!   closed; a sweeper also closes connections idle longer than `idle_timeout`;
//! - tenant connections take their TLS settings (`sslmode`, `sslrootcert`, client certificate)
//!   from the catalog URL's options ([`PoolManager::connecting_like`]): servers are registered by
//!   host and port only, and one platform runs its servers under one TLS policy.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::future::Cache;
use secrecy::ExposeSecret;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, Row};
use tenancy::{TenantId, TenantRoleKey};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::config::PoolConfig;
use crate::routes::TenantRoute;
use crate::timing::micros;

mod budget;

use budget::{BudgetPermit, IdleConn, ServerBudget, close_connection};

#[derive(Debug, Clone, thiserror::Error)]
pub enum PoolError {
    #[error("the connection budget of this server is exhausted; retry shortly")]
    BudgetExhausted { retry_after: Duration },
    #[error("this company's database is busy; retry shortly")]
    TenantBusy { retry_after: Duration },
    #[error("this company's database is unavailable; retry shortly")]
    DatabaseDown { retry_after: Duration },
}

#[derive(Debug, Default)]
pub struct PoolStats {
    pub connects: AtomicU64,
    pub connect_failures: AtomicU64,
    /// Idle connections closed by a request waiting for a permit.
    pub reclaimed_idle: AtomicU64,
    /// Idle connections closed ahead of need to keep the reserve of free permits.
    pub reserve_reclaims: AtomicU64,
    /// Closed connections whose permits came back early because their backends were seen gone.
    pub exits_seen: AtomicU64,
    pub budget_timeouts: AtomicU64,
    pub pools_created: AtomicU64,
    /// Requests that found no free budget permit and had to wait for one.
    pub permit_waits: AtomicU64,
    /// Microseconds those requests waited, in total.
    pub permit_wait_micros: AtomicU64,
    /// Microseconds spent opening connections (successful ones), in total.
    pub connect_micros: AtomicU64,
}

struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

pub struct TenantPool {
    server: Uuid,
    /// Where the pool connects; a route that moved (another server or database) gets a new pool.
    location: (Uuid, String),
    options: PgConnectOptions,
    share: Arc<Semaphore>,
    idle: Mutex<VecDeque<IdleConn>>,
    retired: AtomicBool,
    breaker: Mutex<Breaker>,
    /// Requests for a connection, halved at every sweep: the tenant's recent demand.
    demand: AtomicU64,
}

impl TenantPool {
    fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
        let idle: Vec<IdleConn> = self.idle.lock().expect("idle lock").drain(..).collect();
        idle.into_iter().for_each(IdleConn::close);
    }

    fn oldest_idle_since(&self) -> Option<Instant> {
        self.idle.lock().expect("idle lock").front().map(|c| c.since)
    }

    /// Ages the recent demand, so a tenant that was busy long ago loses its protection.
    fn age_demand(&self) {
        let _ = self.demand.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| Some(d / 2));
    }
}

pub struct PoolManager {
    config: PoolConfig,
    role_key: TenantRoleKey,
    /// What every tenant connection starts from (TLS settings), before host, role and database.
    base_options: PgConnectOptions,
    budgets: Mutex<std::collections::HashMap<Uuid, Arc<ServerBudget>>>,
    pools: Cache<TenantId, Arc<TenantPool>>,
    pub stats: Arc<PoolStats>,
}

/// A connection checked out of a tenant's pool; back to the pool on drop.
pub struct PooledConnection {
    conn: Option<PgConnection>,
    permit: Option<BudgetPermit>,
    _share: OwnedSemaphorePermit,
    pool: Arc<TenantPool>,
    /// Close instead of returning to the pool on drop.
    discarded: bool,
}

impl PooledConnection {
    /// Closes the connection instead of returning it (after an I/O error, say).
    pub fn discard(mut self) {
        self.discarded = true;
    }
}

impl std::ops::Deref for PooledConnection {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        self.conn.as_ref().expect("present until drop")
    }
}

impl std::ops::DerefMut for PooledConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("present until drop")
    }
}

impl AsMut<PgConnection> for PooledConnection {
    fn as_mut(&mut self) -> &mut PgConnection {
        self
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        let (Some(conn), Some(permit)) = (self.conn.take(), self.permit.take()) else { return };
        if self.discarded || self.pool.retired.load(Ordering::SeqCst) {
            close_connection(conn, permit);
        } else {
            self.pool.idle.lock().expect("idle lock").push_back(IdleConn { conn, permit, since: Instant::now() });
        }
    }
}

/// Idle connections older than this are pinged before use: the server may have closed them.
const PING_AFTER: Duration = Duration::from_secs(30);

impl PoolManager {
    pub fn new(config: PoolConfig, role_key: TenantRoleKey) -> Self {
        let pools = Cache::builder()
            .max_capacity(100_000)
            .time_to_idle(config.idle_timeout)
            .eviction_listener(|_tenant, pool: Arc<TenantPool>, _cause| pool.retire())
            .build();
        let base_options = PgConnectOptions::new_without_pgpass();
        Self { config, role_key, base_options, budgets: Default::default(), pools, stats: Default::default() }
    }

    /// Tenant connections inherit `options`' settings (the catalog's: TLS mode, root and client
    /// certificates), with their own host, port, role, password and database.
    pub fn connecting_like(mut self, options: PgConnectOptions) -> Self {
        self.base_options = options;
        self
    }

    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    pub fn role_key(&self) -> &TenantRoleKey {
        &self.role_key
    }

    pub fn open_connections(&self, server: Uuid) -> usize {
        self.config.budget_per_server - self.budget(server).permits.available_permits()
    }

    /// Connections currently open to all servers.
    pub fn open_connections_total(&self) -> usize {
        let budgets = self.budgets.lock().expect("budget lock");
        budgets.values().map(|b| self.config.budget_per_server - b.permits.available_permits()).sum()
    }

    /// Connections currently open, per server this router has connected to.
    pub fn open_connections_by_server(&self) -> Vec<(Uuid, usize)> {
        let budgets = self.budgets.lock().expect("budget lock");
        budgets.iter().map(|(id, b)| (*id, self.config.budget_per_server - b.permits.available_permits())).collect()
    }

    pub fn pool_count(&self) -> u64 {
        self.pools.entry_count()
    }

    async fn pool_for(&self, route: &TenantRoute) -> Arc<TenantPool> {
        let location = (route.server_id, route.database.as_str().to_owned());
        if let Some(pool) = self.pools.get(&route.id).await
            && pool.location == location
            && !pool.retired.load(Ordering::SeqCst)
        {
            return pool;
        }
        let fresh = self
            .pools
            .get_with(route.id, async {
                self.stats.pools_created.fetch_add(1, Ordering::Relaxed);
                let password = self.role_key.password_for(&route.role);
                let options = self
                    .base_options
                    .clone()
                    .host(&route.host)
                    .port(route.port)
                    .username(route.role.as_str())
                    .password(password.expose_secret())
                    .database(route.database.as_str())
                    .application_name(&self.config.application_name);
                Arc::new(TenantPool {
                    server: route.server_id,
                    location: location.clone(),
                    options,
                    share: Arc::new(Semaphore::new(self.config.max_per_tenant)),
                    idle: Mutex::new(VecDeque::new()),
                    retired: AtomicBool::new(false),
                    breaker: Mutex::new(Breaker { failures: 0, open_until: None }),
                    demand: AtomicU64::new(0),
                })
            })
            .await;
        if fresh.location != location || fresh.retired.load(Ordering::SeqCst) {
            // The cached pool is stale (the tenant moved, or it was retired): replace it.
            self.pools.invalidate(&route.id).await;
            return Box::pin(self.pool_for(route)).await;
        }
        fresh
    }

    /// A connection to the tenant's database, as the tenant's own role.
    pub async fn acquire(&self, route: &TenantRoute) -> Result<PooledConnection, PoolError> {
        let deadline = Instant::now() + self.config.acquire_timeout;
        let pool = self.pool_for(route).await;
        pool.demand.fetch_add(1, Ordering::Relaxed);
        if let Some(until) = pool.breaker.lock().expect("breaker lock").open_until
            && until > Instant::now()
        {
            return Err(PoolError::DatabaseDown { retry_after: until - Instant::now() });
        }
        let share = tokio::time::timeout_at(deadline.into(), pool.share.clone().acquire_owned())
            .await
            .map_err(|_| PoolError::TenantBusy { retry_after: Duration::from_secs(1) })?
            .expect("share semaphores are never closed");

        loop {
            let idle = pool.idle.lock().expect("idle lock").pop_back();
            let Some(mut idle) = idle else { break };
            if idle.since.elapsed() > PING_AFTER && idle.conn.ping().await.is_err() {
                idle.close();
                continue;
            }
            return Ok(PooledConnection {
                conn: Some(idle.conn),
                permit: Some(idle.permit),
                _share: share,
                pool,
                discarded: false,
            });
        }

        let permit = self.budget_permit(pool.server, deadline).await?;
        let connecting = Instant::now();
        let connected =
            tokio::time::timeout(self.config.connect_timeout, PgConnection::connect_with(&pool.options)).await;
        // Work for the cold requests to come, once this one's backend has started rather than
        // before: a closed backend's exit and the exit check are Postgres work that would run
        // beside this connect and slow it.
        // - Close idle connections to keep the reserve of permits.
        self.keep_reserve(&permit.budget, pool.server);
        // - Connections closed earlier (for the reserve, mostly) have had a moment to exit: look
        //   now, so their permits are free again for the next cold request instead of after the
        //   whole grace. In the background: this request has its permit.
        drop(self.check_exited(pool.server, &permit.budget));
        match connected {
            Ok(Ok(conn)) => {
                self.stats.connects.fetch_add(1, Ordering::Relaxed);
                self.stats.connect_micros.fetch_add(micros(connecting.elapsed()), Ordering::Relaxed);
                *pool.breaker.lock().expect("breaker lock") = Breaker { failures: 0, open_until: None };
                Ok(PooledConnection { conn: Some(conn), permit: Some(permit), _share: share, pool, discarded: false })
            }
            outcome => {
                self.stats.connect_failures.fetch_add(1, Ordering::Relaxed);
                let reason = match outcome {
                    Ok(Err(e)) => e.to_string(),
                    _ => "connect timed out".to_owned(),
                };
                tracing::warn!(tenant = %route.id, %reason, "cannot connect to the tenant database");
                let mut breaker = pool.breaker.lock().expect("breaker lock");
                breaker.failures += 1;
                if breaker.failures >= self.config.breaker_threshold {
                    breaker.open_until = Some(Instant::now() + self.config.breaker_open_for);
                }
                Err(PoolError::DatabaseDown { retry_after: Duration::from_secs(2) })
            }
        }
    }

    /// Drops a tenant's pool and closes its idle connections (suspended, deleted, moved).
    pub async fn retire_tenant(&self, tenant: TenantId) {
        if let Some(pool) = self.pools.remove(&tenant).await {
            pool.retire();
        }
    }

    /// Closes idle connections older than the idle timeout and lets moka evict idle pools.
    /// Called periodically by the app's sweeper task.
    pub async fn sweep(&self) {
        let cutoff = self.config.idle_timeout;
        for (_, pool) in self.pools.iter() {
            pool.age_demand();
            let expired: Vec<IdleConn> = {
                let mut idle = pool.idle.lock().expect("idle lock");
                // Oldest first: connections return to the back.
                let count = idle.iter().take_while(|c| c.since.elapsed() >= cutoff).count();
                idle.drain(..count).collect()
            };
            expired.into_iter().for_each(IdleConn::close);
        }
        self.pools.run_pending_tasks().await;
    }
}

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
//!   closed; a sweeper also closes connections idle longer than `idle_timeout`.

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

/// One Postgres server's connection budget, as this router spends it.
struct ServerBudget {
    permits: Arc<Semaphore>,
    /// Connections closed whose permits have not come back yet (see [`close_connection`]).
    closing: AtomicUsize,
    /// The closed connections' backends, until seen gone or their grace has passed.
    exiting: Mutex<Vec<Exiting>>,
    /// Set while one request checks `pg_stat_activity` for `exiting` backends.
    reaping: AtomicBool,
    /// Requests waiting for a permit.
    waiting: AtomicUsize,
}

/// A closed connection whose backend may still be exiting, and the permit it keeps till then.
struct Exiting {
    pid: i32,
    permit: Arc<Mutex<Option<BudgetPermit>>>,
}

impl ServerBudget {
    /// Hands a closed connection's permit back, once: whoever takes it from the slot (the
    /// grace timer or a `pg_stat_activity` check) returns it and counts it.
    fn release(&self, slot: &Mutex<Option<BudgetPermit>>) {
        let taken = slot.lock().expect("permit slot lock").take();
        if let Some(permit) = taken {
            // The permit first, then the count: a reader may briefly see both, never neither.
            drop(permit);
            self.closing.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A budget permit: one open connection to the server.
struct BudgetPermit {
    _permit: OwnedSemaphorePermit,
    budget: Arc<ServerBudget>,
}

struct IdleConn {
    conn: PgConnection,
    permit: BudgetPermit,
    since: Instant,
}

/// Clears a flag when dropped (also on cancellation of the future holding it).
struct ResetOnDrop<'a>(&'a AtomicBool);

impl Drop for ResetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Decrements a counter when dropped (also on cancellation of the future holding it).
struct CountGuard<'a>(&'a AtomicUsize);

impl<'a> CountGuard<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for CountGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts a wait for a budget permit and adds its duration when dropped, however it ended.
struct WaitTimer<'a> {
    stats: &'a PoolStats,
    started: Instant,
}

impl<'a> WaitTimer<'a> {
    fn start(stats: &'a PoolStats) -> Self {
        stats.permit_waits.fetch_add(1, Ordering::Relaxed);
        Self { stats, started: Instant::now() }
    }
}

impl Drop for WaitTimer<'_> {
    fn drop(&mut self) {
        self.stats.permit_wait_micros.fetch_add(micros(self.started.elapsed()), Ordering::Relaxed);
    }
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

/// How long a closed connection keeps its budget permit after `Terminate` was sent, unless a
/// check of `pg_stat_activity` sees its backend gone sooner.
///
/// Postgres counts a backend (in `max_connections` and `pg_stat_activity`) until the process
/// has run its exit hooks, a moment after the client hung up — under load, tens of
/// milliseconds. Handing the permit on at once would let the next connection overlap the
/// departing one, so the server would briefly see budget + 1.
const BACKEND_EXIT_GRACE: Duration = Duration::from_millis(100);

/// Closes `conn` politely and returns its budget `permit` only once the backend is gone: when a
/// check ([`PoolManager::check_exited`], started by every new connection and every waiting
/// request) sees its pid leave `pg_stat_activity`, or after [`BACKEND_EXIT_GRACE`] at the latest.
/// Off the caller's path: in a task when a runtime is around, else by a plain drop.
///
/// The backend's pid is asked for here, on the way out, rather than when the connection opens:
/// a cold tenant's first request then pays no extra round trip. A connection that cannot
/// answer (broken) keeps its permit for the whole grace.
fn close_connection(mut conn: PgConnection, permit: BudgetPermit) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            let budget = permit.budget.clone();
            budget.closing.fetch_add(1, Ordering::SeqCst);
            let slot = Arc::new(Mutex::new(Some(permit)));
            runtime.spawn(async move {
                let closed = tokio::time::timeout(Duration::from_secs(1), async {
                    // The simple protocol: one round trip, no statement to prepare.
                    let pid = match sqlx::raw_sql("SELECT pg_catalog.pg_backend_pid()").fetch_one(&mut conn).await {
                        Ok(row) => row.try_get::<i32, _>(0).ok(),
                        Err(_) => None,
                    };
                    let _ = conn.close().await;
                    pid
                })
                .await;
                // Only now may a check find the backend gone: it was there until `Terminate`.
                if let Ok(Some(pid)) = closed {
                    budget.exiting.lock().expect("exiting lock").push(Exiting { pid, permit: slot.clone() });
                }
                tokio::time::sleep(BACKEND_EXIT_GRACE).await;
                budget.release(&slot);
                budget.exiting.lock().expect("exiting lock").retain(|e| !Arc::ptr_eq(&e.permit, &slot));
            });
        }
        Err(_) => drop((conn, permit)),
    }
}

impl IdleConn {
    fn close(self) {
        close_connection(self.conn, self.permit);
    }
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
        Self { config, role_key, budgets: Default::default(), pools, stats: Default::default() }
    }

    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    pub fn role_key(&self) -> &TenantRoleKey {
        &self.role_key
    }

    fn budget(&self, server: Uuid) -> Arc<ServerBudget> {
        let mut budgets = self.budgets.lock().expect("budget lock");
        budgets
            .entry(server)
            .or_insert_with(|| {
                Arc::new(ServerBudget {
                    permits: Arc::new(Semaphore::new(self.config.budget_per_server)),
                    closing: AtomicUsize::new(0),
                    exiting: Mutex::new(Vec::new()),
                    reaping: AtomicBool::new(false),
                    waiting: AtomicUsize::new(0),
                })
            })
            .clone()
    }

    /// Connections currently open to `server` by this router (idle, in use and closing).
    pub fn open_connections(&self, server: Uuid) -> usize {
        self.config.budget_per_server - self.budget(server).permits.available_permits()
    }

    /// Connections currently open to all servers.
    pub fn open_connections_total(&self) -> usize {
        let budgets = self.budgets.lock().expect("budget lock");
        budgets.values().map(|b| self.config.budget_per_server - b.permits.available_permits()).sum()
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
                let options = PgConnectOptions::new()
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

    /// A budget permit for `server`: at once if free; else by closing another tenant's idle
    /// connection ([`Self::reclaim_one_idle`]) and taking the first permit that comes back
    /// (sooner when [`Self::reap_exited`] sees a backend gone); else by waiting in line until
    /// `deadline`.
    async fn budget_permit(&self, server: Uuid, deadline: Instant) -> Result<BudgetPermit, PoolError> {
        let budget = self.budget(server);
        let permit = |p| BudgetPermit { _permit: p, budget: budget.clone() };
        if let Ok(free) = budget.permits.clone().try_acquire_owned() {
            return Ok(permit(free));
        }
        let _waiting = CountGuard::enter(&budget.waiting);
        let _timed = WaitTimer::start(&self.stats);
        // Keep our place in the semaphore's FIFO queue while we free idle connections.
        let acquire = budget.permits.clone().acquire_owned();
        tokio::pin!(acquire);
        loop {
            self.reap_exited(server, &budget).await;
            // A reclaimed connection returns its permit only after BACKEND_EXIT_GRACE. Every
            // waiter is owed one closing connection; closing more would throw away connections
            // nobody is waiting for.
            if budget.closing.load(Ordering::SeqCst) < budget.waiting.load(Ordering::SeqCst)
                && self.reclaim_one_idle(server)
            {
                self.stats.reclaimed_idle.fetch_add(1, Ordering::Relaxed);
            }
            tokio::select! {
                free = &mut acquire => return Ok(permit(free.expect("budget semaphores are never closed"))),
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                _ = tokio::time::sleep_until(deadline.into()) => {
                    self.stats.budget_timeouts.fetch_add(1, Ordering::Relaxed);
                    return Err(PoolError::BudgetExhausted { retry_after: Duration::from_secs(1) });
                }
            }
        }
    }

    /// Closes idle connections until the configured reserve of permits is free or on its way
    /// back, so the next cold request need not wait out a backend's exit. Permits still in their
    /// exit grace count: not counting them would keep closing more connections at a high connect
    /// rate, leaving fewer to reuse and so raising the connect rate further (measured: 73 % of
    /// requests connected instead of 52 %).
    fn keep_reserve(&self, budget: &ServerBudget, server: Uuid) {
        let reserve = self.config.reserve();
        while budget.permits.available_permits() + budget.closing.load(Ordering::SeqCst) < reserve {
            if !self.reclaim_one_idle(server) {
                break;
            }
            self.stats.reserve_reclaims.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Hands back the permits of closed connections whose backends have left
    /// `pg_stat_activity`, instead of holding them for the whole [`BACKEND_EXIT_GRACE`].
    ///
    /// The check borrows an idle connection of any tenant on the server: `pg_stat_activity`
    /// lists every backend's pid to every role, the query reads no tenant data, and the router
    /// holds no other login there. One request checks at a time; without an idle connection, or
    /// if the check fails, the permits wait for their grace as before.
    async fn reap_exited(&self, server: Uuid, budget: &Arc<ServerBudget>) {
        if let Some(check) = self.check_exited(server, budget) {
            let _ = check.await;
        }
    }

    /// Starts [`Self::reap_exited`]'s check in a task, if there is anything to check, nobody
    /// else is checking and an idle connection can be borrowed.
    fn check_exited(&self, server: Uuid, budget: &Arc<ServerBudget>) -> Option<tokio::task::JoinHandle<()>> {
        let pids: Vec<i32> = budget.exiting.lock().expect("exiting lock").iter().map(|e| e.pid).collect();
        if pids.is_empty() || budget.reaping.swap(true, Ordering::SeqCst) {
            return None;
        }
        let Some((pool, borrowed)) = self.borrow_idle(server) else {
            budget.reaping.store(false, Ordering::SeqCst);
            return None;
        };
        // In its own task: a waiter that gives up (timeout, client gone) must not drop the
        // borrowed connection midway, which would hand its permit on with no exit grace.
        let (budget, stats) = (budget.clone(), self.stats.clone());
        Some(tokio::spawn(async move {
            let _reaping = ResetOnDrop(&budget.reaping);
            let mut borrowed = borrowed;
            // The backend slots' pids alone, not `pg_stat_activity`: the view's function also
            // clips every backend's query text, which costs the server far more than this needs
            // (it showed in profiles at 200 calls a second), and this runs on every connect.
            let alive: Result<Vec<i32>, sqlx::Error> = sqlx::query_scalar(
                "SELECT pid FROM (SELECT pg_catalog.pg_stat_get_backend_pid(b) AS pid
                                  FROM pg_catalog.pg_stat_get_backend_idset() AS b) AS backends
                 WHERE pid = ANY($1)",
            )
            .bind(&pids)
            .fetch_all(&mut borrowed.conn)
            .await;
            let Ok(alive) = alive.inspect_err(|error| {
                tracing::debug!(%error, "cannot check pg_stat_activity for exited backends");
            }) else {
                borrowed.close();
                return;
            };
            let gone: Vec<Arc<Mutex<Option<BudgetPermit>>>> = {
                let mut exiting = budget.exiting.lock().expect("exiting lock");
                let (gone, still): (Vec<Exiting>, Vec<Exiting>) =
                    exiting.drain(..).partition(|e| pids.contains(&e.pid) && !alive.contains(&e.pid));
                *exiting = still;
                gone.into_iter().map(|e| e.permit).collect()
            };
            for slot in &gone {
                budget.release(slot);
            }
            stats.exits_seen.fetch_add(gone.len() as u64, Ordering::Relaxed);
            if pool.retired.load(Ordering::SeqCst) {
                borrowed.close();
            } else {
                pool.idle.lock().expect("idle lock").push_back(borrowed);
            }
        }))
    }

    /// Takes the most recently used idle connection of any tenant on `server` out of its pool.
    fn borrow_idle(&self, server: Uuid) -> Option<(Arc<TenantPool>, IdleConn)> {
        self.pools.iter().filter(|(_, p)| p.server == server).find_map(|(_, pool)| {
            let conn = pool.idle.lock().expect("idle lock").pop_back();
            conn.map(|conn| (pool, conn))
        })
    }

    /// Closes an idle connection on `server`: the oldest of the tenant with the least recent
    /// demand among those holding idle connections.
    fn reclaim_one_idle(&self, server: Uuid) -> bool {
        let victim = self
            .pools
            .iter()
            .filter(|(_, p)| p.server == server)
            .filter_map(|(_, p)| p.oldest_idle_since().map(|since| ((p.demand.load(Ordering::Relaxed), since), p)))
            .min_by_key(|(key, _)| *key);
        match victim {
            Some((_, pool)) => {
                let victim = pool.idle.lock().expect("idle lock").pop_front();
                victim.map(IdleConn::close).is_some()
            }
            None => false,
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

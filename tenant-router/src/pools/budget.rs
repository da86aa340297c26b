//! A server's connection budget as this router spends it: permits held by open connections,
//! handed back only once a closed connection's backend has left (see the crate doc of
//! [`super`]), the reserve kept free, and idle connections reclaimed for waiters.

use super::*;

/// One Postgres server's connection budget, as this router spends it.
pub(super) struct ServerBudget {
    pub(super) permits: Arc<Semaphore>,
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
    pub(super) fn release(&self, slot: &Mutex<Option<BudgetPermit>>) {
        let taken = slot.lock().expect("permit slot lock").take();
        if let Some(permit) = taken {
            // The permit first, then the count: a reader may briefly see both, never neither.
            drop(permit);
            self.closing.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A budget permit: one open connection to the server.
pub(super) struct BudgetPermit {
    pub(super) _permit: OwnedSemaphorePermit,
    pub(super) budget: Arc<ServerBudget>,
}

pub(super) struct IdleConn {
    pub(super) conn: PgConnection,
    pub(super) permit: BudgetPermit,
    pub(super) since: Instant,
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
pub(super) fn close_connection(mut conn: PgConnection, permit: BudgetPermit) {
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
    pub(super) fn close(self) {
        close_connection(self.conn, self.permit);
    }
}

impl PoolManager {
    pub(super) fn budget(&self, server: Uuid) -> Arc<ServerBudget> {
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
    /// A budget permit for `server`: at once if free; else by closing another tenant's idle
    /// connection ([`Self::reclaim_one_idle`]) and taking the first permit that comes back
    /// (sooner when [`Self::reap_exited`] sees a backend gone); else by waiting in line until
    /// `deadline`.
    pub(super) async fn budget_permit(&self, server: Uuid, deadline: Instant) -> Result<BudgetPermit, PoolError> {
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
    pub(super) fn keep_reserve(&self, budget: &ServerBudget, server: Uuid) {
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
    pub(super) fn check_exited(&self, server: Uuid, budget: &Arc<ServerBudget>) -> Option<tokio::task::JoinHandle<()>> {
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
}

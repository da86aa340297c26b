//! The cold path's floor: the many-tenant open loop served with no router at all.
//!
//! A cold tenant's first request must, whatever serves it, start a Postgres backend in the
//! tenant's database as the tenant's role (SCRAM), run the query on that backend's empty
//! caches, and, with the budget spent, end another tenant's backend to make room. On two cores
//! those costs collide with the rest of the load. The floor does only that, in this process,
//! for the same arrivals as the router's open loop, so the two figures side by side tell what
//! the router adds from what the machine and the server cost.
//!
//! What the floor leaves out, so that it is cheaper than any router could be: HTTP, the token,
//! the catalog lookup (the tenants' connect options are known in advance), the reserve of free
//! permits, and the wait for a closed backend to exit before its permit is reused (so the
//! server may briefly count more than the budget, which the router never allows).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tenant_schema::data::employees::{self, ListQuery};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections to the tenants' databases under a budget, one small idle list per tenant.
pub struct FloorPool {
    /// How to reach each tenant's database, by tenant index.
    options: Vec<PgConnectOptions>,
    /// One permit per open connection, `capacity` in all.
    budget: Arc<Semaphore>,
    capacity: usize,
    idle: Mutex<Vec<VecDeque<Idle>>>,
    /// Requests per tenant so far: the least-demanded tenant's idle connection is closed first,
    /// as the router chooses.
    demand: Vec<AtomicU64>,
    /// Requests waiting for a budget permit while no idle connection was there to close.
    waiting: AtomicUsize,
    pub connects: AtomicU64,
}

struct Idle {
    conn: PgConnection,
    permit: OwnedSemaphorePermit,
}

impl FloorPool {
    pub fn new(options: Vec<PgConnectOptions>, budget: usize) -> Self {
        let tenants = options.len();
        Self {
            options,
            budget: Arc::new(Semaphore::new(budget)),
            capacity: budget,
            idle: Mutex::new((0..tenants).map(|_| VecDeque::new()).collect()),
            demand: (0..tenants).map(|_| AtomicU64::new(0)).collect(),
            waiting: AtomicUsize::new(0),
            connects: AtomicU64::new(0),
        }
    }

    /// The first page of the tenant's employees, as the router's `GET /employees?limit=…`
    /// fetches it; returns the number of rows.
    pub async fn list_employees(&self, tenant: usize, limit: u32) -> anyhow::Result<usize> {
        self.demand[tenant].fetch_add(1, Ordering::Relaxed);
        let reused = self.idle.lock().expect("idle lock")[tenant].pop_back();
        let Idle { mut conn, permit } = match reused {
            Some(idle) => idle,
            None => {
                let permit = self.permit().await;
                let conn = PgConnection::connect_with(&self.options[tenant]).await.context("connecting")?;
                self.connects.fetch_add(1, Ordering::Relaxed);
                Idle { conn, permit }
            }
        };
        let query = ListQuery { limit, cursor: None, search: None, department_id: None, status: None };
        let page = employees::list(&mut conn, &query).await.context("listing employees")?;
        if self.waiting.load(Ordering::SeqCst) > 0 {
            // Someone waits for a permit and nothing idle was there to close: hand this one on.
            close(Idle { conn, permit });
        } else {
            self.idle.lock().expect("idle lock")[tenant].push_back(Idle { conn, permit });
        }
        Ok(page.items.len())
    }

    /// A budget permit: a free one, else the one of the least-demanded tenant's oldest idle
    /// connection (closed at once), else the next one handed on by a finishing request.
    async fn permit(&self) -> OwnedSemaphorePermit {
        if let Ok(free) = self.budget.clone().try_acquire_owned() {
            return free;
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        // Polled first after the close below, so a permit freed by our own close is ours.
        let acquire = self.budget.clone().acquire_owned();
        tokio::pin!(acquire);
        let permit = loop {
            // A close hands its permit to the longest waiter at once, so while we wait each
            // close serves a waiter (at worst a finishing request hands one on at the same
            // moment, and a permit stays free for the next cold request). Nothing idle: every
            // connection is in use, and the first to finish hands its permit on (see
            // `list_employees`), or a later look finds one idle.
            if let Some(victim) = self.least_demanded_idle() {
                close(victim);
            }
            tokio::select! {
                permit = &mut acquire => break permit.expect("the budget is never closed"),
                _ = tokio::time::sleep(Duration::from_millis(1)) => {}
            }
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        permit
    }

    /// The oldest idle connection of the tenant with the fewest requests, taken out of its list.
    fn least_demanded_idle(&self) -> Option<Idle> {
        let mut idle = self.idle.lock().expect("idle lock");
        let tenant =
            (0..idle.len()).filter(|&t| !idle[t].is_empty()).min_by_key(|&t| self.demand[t].load(Ordering::Relaxed))?;
        idle[tenant].pop_front()
    }

    /// Connections open now (idle and in use), by the budget's count.
    pub fn open_connections(&self) -> usize {
        self.capacity - self.budget.available_permits()
    }

    /// Closes every idle connection (the end of a run).
    pub async fn close_all(&self) {
        let idle: Vec<Idle> = self.idle.lock().expect("idle lock").iter_mut().flat_map(|list| list.drain(..)).collect();
        for Idle { conn, permit: _permit } in idle {
            conn.close().await.ok();
        }
    }
}

/// Hands the permit on at once and says goodbye to the server in the background: the floor
/// does not wait for the backend to exit (see the module's notes).
fn close(idle: Idle) {
    let Idle { conn, permit } = idle;
    drop(permit);
    tokio::spawn(async move {
        conn.close().await.ok();
    });
}

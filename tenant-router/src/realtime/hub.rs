//! The per-tenant hubs of one router replica.
//!
//! The outbox is the truth; wake-ups are hints. A wake-up (`{tenant, seq}` on the catalog's
//! `nexacore_events` channel, or a local write) makes the tenant's hub read every event after
//! the last one it delivered — always `seq > last`, so a lost wake-up only delays events until
//! the next wake-up or the periodic re-check, never loses them. Each event is serialised once
//! and broadcast (tokio `broadcast`, bounded) to the tenant's sockets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::messages::{Event, Item};
use crate::pools::PoolManager;
use crate::routes::{Lookup, TenantRoutes};

/// The catalog channel wake-ups travel on: one listener connection per replica hears all.
pub const EVENTS_CHANNEL: &str = "nexacore_events";

/// A tenant's outbox is pruned after every this many events…
const PRUNE_EVERY_EVENTS: i64 = 1000;
/// …and, for tenants with sockets, this often.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    pub max_connections_per_tenant: usize,
    /// Events buffered per tenant; a socket further behind than this is cut off (too slow).
    pub queue_capacity: usize,
    /// How often tenants with sockets are checked for events whose wake-up was lost.
    pub recheck_interval: Duration,
    pub ping_interval: Duration,
    pub idle_timeout: Duration,
    /// How long one send to a socket may block before the client counts as too slow.
    pub send_timeout: Duration,
    /// `token_expiring` is sent this long before the token expires.
    pub token_warning: Duration,
    /// Outbox events older than this are pruned.
    pub retention: Duration,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            max_connections_per_tenant: 500,
            queue_capacity: 1024,
            recheck_interval: Duration::from_secs(2),
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(5),
            token_warning: Duration::from_secs(60),
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

pub struct TenantHub {
    pub id: Uuid,
    tx: broadcast::Sender<Item>,
    /// The last seq broadcast; -1 until read from the outbox.
    last_seq: AtomicI64,
    /// One outbox reader per tenant at a time.
    reading: tokio::sync::Mutex<()>,
    connections: AtomicUsize,
    maintenance: Mutex<Option<String>>,
}

impl TenantHub {
    pub fn subscribe(&self) -> broadcast::Receiver<Item> {
        self.tx.subscribe()
    }

    pub fn send(&self, item: Item) {
        // No receivers is fine: nobody is listening right now.
        let _ = self.tx.send(item);
    }

    pub fn last_seq(&self) -> i64 {
        self.last_seq.load(Ordering::SeqCst)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Counts a socket against its tenant's limit for as long as it lives.
pub struct ConnectionSlot(Arc<TenantHub>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("this company has too many live connections ({0}); close some and retry")]
    TooManyConnections(usize),
    #[error("this company's database is unavailable")]
    Unavailable,
}

pub struct Hub {
    pub config: RealtimeConfig,
    catalog: PgPool,
    routes: Arc<TenantRoutes>,
    pools: Arc<PoolManager>,
    tenants: Mutex<HashMap<Uuid, Arc<TenantHub>>>,
}

impl Hub {
    pub fn new(config: RealtimeConfig, catalog: PgPool, routes: Arc<TenantRoutes>, pools: Arc<PoolManager>) -> Self {
        Self { config, catalog, routes, pools, tenants: Mutex::new(HashMap::new()) }
    }

    fn tenant(&self, id: Uuid) -> Arc<TenantHub> {
        let mut tenants = self.tenants.lock().expect("hub lock");
        tenants
            .entry(id)
            .or_insert_with(|| {
                let (tx, _) = broadcast::channel(self.config.queue_capacity);
                Arc::new(TenantHub {
                    id,
                    tx,
                    last_seq: AtomicI64::new(-1),
                    reading: tokio::sync::Mutex::new(()),
                    connections: AtomicUsize::new(0),
                    maintenance: Mutex::new(None),
                })
            })
            .clone()
    }

    pub fn existing(&self, id: Uuid) -> Option<Arc<TenantHub>> {
        self.tenants.lock().expect("hub lock").get(&id).cloned()
    }

    fn all(&self) -> Vec<Arc<TenantHub>> {
        self.tenants.lock().expect("hub lock").values().cloned().collect()
    }

    /// Takes a connection slot of the tenant, or refuses when it is at its limit.
    pub fn join(&self, id: Uuid, maintenance: Option<String>) -> Result<(Arc<TenantHub>, ConnectionSlot), HubError> {
        let hub = self.tenant(id);
        let previous = hub.connections.fetch_add(1, Ordering::SeqCst);
        let slot = ConnectionSlot(hub.clone());
        if previous >= self.config.max_connections_per_tenant {
            return Err(HubError::TooManyConnections(self.config.max_connections_per_tenant));
        }
        *hub.maintenance.lock().expect("maintenance lock") = maintenance;
        Ok((hub, slot))
    }

    /// A write committed event `seq` for `tenant`: wake this replica's hub at once and every
    /// other replica through the catalog. Failing to publish loses nothing (the re-check
    /// finds the event), so it is logged, not returned.
    pub async fn published(self: &Arc<Self>, tenant: Uuid, seq: i64) {
        self.wake(tenant, seq);
        // Every thousandth event, prune the tenant's outbox: bounded retention for every tenant
        // that writes, whether or not anyone is connected.
        if seq % PRUNE_EVERY_EVENTS == 0 {
            let this = self.clone();
            tokio::spawn(async move { this.prune(tenant).await });
        }
        let payload = serde_json::json!({ "t": tenant, "s": seq }).to_string();
        if let Err(error) =
            sqlx::query("SELECT pg_notify($1, $2)").bind(EVENTS_CHANNEL).bind(payload).execute(&self.catalog).await
        {
            tracing::warn!(%error, %tenant, "publishing a wake-up failed; the periodic re-check will deliver");
        }
    }

    /// A wake-up: read the tenant's new events if anyone here listens.
    pub fn wake(self: &Arc<Self>, tenant: Uuid, seq: i64) {
        if let Some(hub) = self.existing(tenant)
            && hub.tx.receiver_count() > 0
            && seq > hub.last_seq()
        {
            let this = self.clone();
            tokio::spawn(async move { this.catch_up(&hub).await });
        }
    }

    /// Parses a wake-up payload from the catalog channel.
    pub fn wake_from_payload(self: &Arc<Self>, payload: &str) {
        #[derive(serde::Deserialize)]
        struct Wake {
            t: Uuid,
            s: i64,
        }
        match serde_json::from_str::<Wake>(payload) {
            Ok(w) => self.wake(w.t, w.s),
            Err(_) => tracing::debug!(payload, "ignoring a malformed wake-up"),
        }
    }

    /// Reads and broadcasts every event after the hub's last one. Returns the new last seq.
    pub async fn catch_up(&self, hub: &Arc<TenantHub>) -> Result<i64, HubError> {
        let _reading = hub.reading.lock().await;
        let route = match self.routes.get(hub.id).await {
            Ok(Lookup::Found(route)) => route,
            _ => return Err(HubError::Unavailable),
        };
        let mut conn = self.pools.acquire(&route).await.map_err(|_| HubError::Unavailable)?;
        if hub.last_seq() < 0 {
            // The hub starts at the outbox's end: sockets that joined before this read their
            // earlier events themselves (they fixed their start point first, see `http::ws`).
            let last = tenant_schema::outbox::last_seq(&mut conn).await.map_err(|_| HubError::Unavailable)?;
            hub.last_seq.store(last, Ordering::SeqCst);
            return Ok(last);
        }
        loop {
            let after = hub.last_seq();
            let events =
                tenant_schema::outbox::events_after(&mut conn, after, 500).await.map_err(|_| HubError::Unavailable)?;
            let n = events.len();
            for e in &events {
                hub.send(Item::Event(Arc::new(Event::from_outbox(e))));
                hub.last_seq.store(e.seq, Ordering::SeqCst);
            }
            if n < 500 {
                return Ok(hub.last_seq());
            }
        }
    }

    /// Makes sure the hub knows its last seq (first socket of a tenant): where live starts.
    pub async fn ensure_started(&self, hub: &Arc<TenantHub>) -> Result<i64, HubError> {
        if hub.last_seq() >= 0 {
            return Ok(hub.last_seq());
        }
        self.catch_up(hub).await
    }

    /// The periodic re-check and clean-up; returns on shutdown. Tenants with sockets are read
    /// for events whose wake-up was lost; hubs without sockets are dropped; outboxes of tenants
    /// with sockets are pruned now and then.
    pub async fn run_maintenance(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(self.config.recheck_interval);
        let mut last_prune = std::time::Instant::now();
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.changed() => return,
            }
            let prune = last_prune.elapsed() >= PRUNE_EVERY;
            if prune {
                last_prune = std::time::Instant::now();
            }
            self.tenants
                .lock()
                .expect("hub lock")
                .retain(|_, hub| hub.tx.receiver_count() > 0 || hub.connections() > 0);
            for hub in self.all() {
                if let Err(error) = self.catch_up(&hub).await {
                    tracing::debug!(tenant = %hub.id, %error, "re-check skipped");
                }
                if prune {
                    self.prune(hub.id).await;
                }
            }
        }
    }

    async fn prune(&self, tenant: Uuid) {
        let Ok(Lookup::Found(route)) = self.routes.get(tenant).await else { return };
        let Ok(mut conn) = self.pools.acquire(&route).await else { return };
        match tenant_schema::outbox::prune_older_than(&mut conn, self.config.retention).await {
            Ok(n) if n > 0 => tracing::info!(%tenant, pruned = n, "pruned the outbox"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%tenant, %error, "pruning the outbox failed"),
        }
    }

    /// The catalog announced a change to a tenant: close its sockets if it is no longer
    /// served, and tell them when its maintenance starts or ends.
    pub async fn tenant_changed(&self, id: Uuid) {
        let Some(hub) = self.existing(id) else { return };
        match self.routes.get(id).await {
            Ok(Lookup::Found(route)) if route.status == tenancy::TenantStatus::Active => {
                let mut current = hub.maintenance.lock().expect("maintenance lock");
                if *current != route.maintenance {
                    *current = route.maintenance.clone();
                    hub.send(Item::System(maintenance_message(&route.maintenance)));
                }
            }
            Ok(_) => {
                hub.send(Item::Close(super::messages::close::TENANT_UNAVAILABLE, "this company is no longer available"))
            }
            Err(_) => {}
        }
    }

    /// Platform maintenance started or ended: tell every socket.
    pub fn platform_maintenance(&self, maintenance: &Option<String>) {
        let message = maintenance_message(maintenance);
        for hub in self.all() {
            hub.send(Item::System(message.clone()));
        }
    }

    pub fn socket_count(&self) -> usize {
        self.all().iter().map(|h| h.connections()).sum()
    }
}

fn maintenance_message(maintenance: &Option<String>) -> Arc<str> {
    super::messages::system(
        "maintenance",
        serde_json::json!({ "maintenance_mode": maintenance.is_some(), "message": maintenance }),
    )
}

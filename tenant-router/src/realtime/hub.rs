//! The per-tenant hubs of one router replica.
//!
//! The outbox is the truth; wake-ups are hints. After a write commits, its replica delivers the
//! event to its own sockets and publishes a wake-up on the catalog's `nexacore_events` channel:
//! `{tenant, seq}` plus, when it fits in a NOTIFY, the event itself, sealed (AEAD, tenant, seq
//! and channel bound to it) with a key derived from the routers' role key, so the catalog's
//! channel carries no readable tenant data. A replica delivers a carried event only if it opens
//! and it is exactly the next `seq` of that tenant; anything else (a gap, an event too big to carry, a
//! hub that has not started) makes the hub read every event after its last one from the
//! tenant's outbox. So the common case costs no connection to the tenant's database (with
//! thousands of active tenants and a bounded connection budget, reading each outbox on every
//! change would churn connections), and a lost wake-up only delays events: the next wake-up
//! shows the gap, and every tenant with sockets is re-read from its outbox each
//! `recheck_interval` and whenever the catalog listener reconnects. Each event is serialised
//! once and broadcast (tokio `broadcast`, bounded) to the tenant's sockets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api_types::live::{Maintenance, Resync, SystemNotice};
use api_types::system::ClientVersions;
use sqlx::PgPool;
use tenancy::TenantId;
use tenant_schema::outbox::OutboxEvent;
use tokio::sync::broadcast;

pub use crate::config::RealtimeConfig;
use uuid::Uuid;

use super::messages::{Event, Item};
use crate::catalog;
use crate::pools::PoolManager;
use crate::routes::{Lookup, TenantRoutes};

/// The catalog channel wake-ups travel on: one listener connection per replica hears all.
pub const EVENTS_CHANNEL: &str = "nexacore_events";

/// A tenant's outbox is pruned after every this many events…
const PRUNE_EVERY_EVENTS: i64 = 1000;
/// …and, for tenants with sockets, this often.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Events larger than this travel without their body (NOTIFY payloads stop at 8000 bytes; a
/// sealed event grows by its nonce and tag, then by a third in base64).
const MAX_CARRIED_EVENT_BYTES: usize = 5600;
/// How often the maintenance loop looks for hubs due for a re-check.
const MAINTENANCE_TICK: Duration = Duration::from_millis(500);

pub struct TenantHub {
    pub id: TenantId,
    tx: broadcast::Sender<Item>,
    /// The last seq broadcast; -1 until read from the outbox.
    last_seq: AtomicI64,
    /// One writer of `last_seq` (outbox reader or carried-event delivery) at a time.
    reading: tokio::sync::Mutex<()>,
    /// When the outbox was last read for this hub: paces the periodic re-check.
    last_read: Mutex<Instant>,
    connections: AtomicUsize,
    maintenance: Mutex<Option<String>>,
    /// The database the hub's seqs come from: when the catalog points the tenant at another one
    /// (an in-place restore), those seqs mean nothing any more (see [`Hub::tenant_changed`]).
    database: Mutex<Option<String>>,
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

    /// Broadcasts `event` if it is exactly the next one; the caller holds `reading`.
    fn deliver_next(&self, seq: i64, event: &Option<Arc<Event>>) -> bool {
        match event {
            Some(event) if self.last_seq() >= 0 && seq == self.last_seq() + 1 => {
                self.send(Item::Event(event.clone()));
                self.last_seq.store(seq, Ordering::SeqCst);
                true
            }
            _ => false,
        }
    }
}

/// What a carried event is sealed with besides its text: everything else a replica delivers.
fn carried_associated_data(tenant: TenantId, seq: i64, channel: &str) -> Vec<u8> {
    format!("{tenant}\n{seq}\n{channel}").into_bytes()
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
    tenants: Mutex<HashMap<TenantId, Arc<TenantHub>>>,
    pub stats: super::stats::RealtimeStats,
}

impl Hub {
    pub fn new(config: RealtimeConfig, catalog: PgPool, routes: Arc<TenantRoutes>, pools: Arc<PoolManager>) -> Self {
        Self { config, catalog, routes, pools, tenants: Mutex::new(HashMap::new()), stats: Default::default() }
    }

    /// The tenant's hub, created if missing. Callers that need it to stay in the map must count
    /// themselves in while `tenants` is still locked (see [`Self::join`]).
    fn tenant_locked(&self, tenants: &mut HashMap<TenantId, Arc<TenantHub>>, id: TenantId) -> Arc<TenantHub> {
        tenants
            .entry(id)
            .or_insert_with(|| {
                let (tx, _) = broadcast::channel(self.config.queue_capacity);
                Arc::new(TenantHub {
                    id,
                    tx,
                    last_seq: AtomicI64::new(-1),
                    reading: tokio::sync::Mutex::new(()),
                    last_read: Mutex::new(Instant::now()),
                    connections: AtomicUsize::new(0),
                    maintenance: Mutex::new(None),
                    database: Mutex::new(None),
                })
            })
            .clone()
    }

    pub fn existing(&self, id: TenantId) -> Option<Arc<TenantHub>> {
        self.tenants.lock().expect("hub lock").get(&id).cloned()
    }

    fn all(&self) -> Vec<Arc<TenantHub>> {
        self.tenants.lock().expect("hub lock").values().cloned().collect()
    }

    /// Takes a connection slot of the tenant, or refuses when it is at its limit.
    pub fn join(
        &self,
        id: TenantId,
        maintenance: Option<String>,
    ) -> Result<(Arc<TenantHub>, ConnectionSlot), HubError> {
        // Counted in under the map's lock: [`Self::drop_unused_hubs`] removes hubs with no
        // connections under the same lock, and a hub dropped between its creation and this
        // count would leave the socket on a hub that no wake-up reaches (a benchmark run lost
        // every event of one such socket).
        let (hub, previous) = {
            let mut tenants = self.tenants.lock().expect("hub lock");
            let hub = self.tenant_locked(&mut tenants, id);
            let previous = hub.connections.fetch_add(1, Ordering::SeqCst);
            (hub, previous)
        };
        let slot = ConnectionSlot(hub.clone());
        if previous >= self.config.max_connections_per_tenant {
            return Err(HubError::TooManyConnections(self.config.max_connections_per_tenant));
        }
        *hub.maintenance.lock().expect("maintenance lock") = maintenance;
        Ok((hub, slot))
    }

    /// A write committed `event` for `tenant`: deliver it here at once and wake every other
    /// replica through the catalog. Failing to publish loses nothing (the re-check finds the
    /// event), so it is logged, not returned.
    pub async fn published(self: &Arc<Self>, tenant: TenantId, event: &OutboxEvent) {
        let event = Arc::new(Event::from_outbox(event));
        let seq = event.seq;
        self.offer(tenant, seq, Some(event.clone()));
        // Every thousandth event, prune the tenant's outbox: bounded retention for every tenant
        // that writes, whether or not anyone is connected.
        if seq % PRUNE_EVERY_EVENTS == 0 {
            let this = self.clone();
            tokio::spawn(async move { this.prune(tenant).await });
        }
        let payload = self.wake_payload(tenant, &event);
        let notified = catalog::retrying(|| {
            sqlx::query("SELECT pg_notify($1, $2)").bind(EVENTS_CHANNEL).bind(&payload).execute(&self.catalog)
        })
        .await;
        if let Err(error) = notified {
            tracing::warn!(%error, %tenant, "publishing a wake-up failed; the periodic re-check will deliver");
        }
    }

    fn wake_payload(&self, tenant: TenantId, event: &Event) -> String {
        if event.text.len() > MAX_CARRIED_EVENT_BYTES {
            return serde_json::json!({ "t": tenant, "s": event.seq }).to_string();
        }
        let associated = carried_associated_data(tenant, event.seq, &event.channel);
        let sealed = self.pools.role_key().seal_event(&associated, event.text.as_bytes());
        serde_json::json!({ "t": tenant, "s": event.seq, "c": event.channel, "x": sealed }).to_string()
    }

    /// A wake-up for `tenant` at `seq`, maybe with the event itself. Delivered inline when it
    /// is the next event and nobody else is updating the hub; otherwise in a task that takes
    /// its turn and reads the outbox if the carried event does not fit.
    fn offer(self: &Arc<Self>, tenant: TenantId, seq: i64, event: Option<Arc<Event>>) {
        let Some(hub) = self.existing(tenant) else { return };
        if hub.tx.receiver_count() == 0 || seq <= hub.last_seq() {
            return;
        }
        if let Ok(_turn) = hub.reading.try_lock()
            && hub.deliver_next(seq, &event)
        {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            {
                let _turn = hub.reading.lock().await;
                if seq <= hub.last_seq() || hub.deliver_next(seq, &event) {
                    return;
                }
            }
            if let Err(error) = this.catch_up(&hub).await {
                tracing::debug!(%tenant, %error, "reading the outbox after a wake-up failed; the re-check retries");
            }
        });
    }

    /// A wake-up (`{tenant, seq}`, maybe with a sealed event) from the catalog channel.
    pub fn wake_from_payload(self: &Arc<Self>, payload: &str) {
        #[derive(serde::Deserialize)]
        struct Wake {
            t: TenantId,
            s: i64,
            c: Option<String>,
            x: Option<String>,
        }
        let Ok(wake) = serde_json::from_str::<Wake>(payload) else {
            tracing::debug!("ignoring a malformed wake-up");
            return;
        };
        let event = match (wake.c, wake.x) {
            (Some(channel), Some(sealed)) => {
                let associated = carried_associated_data(wake.t, wake.s, &channel);
                match self.pools.role_key().open_event(&associated, &sealed).map(String::from_utf8) {
                    Some(Ok(text)) => Some(Arc::new(Event { seq: wake.s, channel, text: text.into() })),
                    _ => {
                        tracing::warn!(tenant = %wake.t, "a wake-up's event does not open; reading the outbox instead");
                        None
                    }
                }
            }
            _ => None,
        };
        self.offer(wake.t, wake.s, event);
    }

    /// Reads and broadcasts every event after the hub's last one. Returns the new last seq.
    pub async fn catch_up(&self, hub: &Arc<TenantHub>) -> Result<i64, HubError> {
        let _reading = hub.reading.lock().await;
        let route = match self.routes.get(hub.id).await {
            Ok(Lookup::Found(route)) => route,
            _ => return Err(HubError::Unavailable),
        };
        let mut conn = self.pools.acquire(&route).await.map_err(|_| HubError::Unavailable)?;
        hub.database.lock().expect("database lock").get_or_insert_with(|| route.database.as_str().to_owned());
        *hub.last_read.lock().expect("last read lock") = Instant::now();
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

    /// The periodic re-check and clean-up; returns on shutdown. Each tenant with sockets is
    /// re-read from its outbox once its last read is `recheck_interval` old (so the reads are
    /// spread out rather than all at once); hubs without sockets are dropped; outboxes of
    /// tenants with sockets are pruned now and then.
    pub async fn run_maintenance(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(MAINTENANCE_TICK.min(self.config.recheck_interval));
        let mut last_prune = Instant::now();
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.changed() => return,
            }
            let prune = last_prune.elapsed() >= PRUNE_EVERY;
            if prune {
                last_prune = Instant::now();
            }
            self.drop_unused_hubs();
            for hub in self.all() {
                let due = hub.last_read.lock().expect("last read lock").elapsed() >= self.config.recheck_interval;
                if due && let Err(error) = self.catch_up(&hub).await {
                    tracing::debug!(tenant = %hub.id, %error, "re-check skipped");
                }
                if prune {
                    self.prune(hub.id).await;
                }
            }
        }
    }

    /// Forgets hubs that no socket uses (nor is about to: see [`Self::join`]).
    pub(crate) fn drop_unused_hubs(&self) {
        self.tenants.lock().expect("hub lock").retain(|_, hub| hub.tx.receiver_count() > 0 || hub.connections() > 0);
    }

    /// Wake-ups may have been missed (the catalog listener reconnected): re-read every
    /// tenant with sockets from its outbox.
    pub fn recheck_all(self: &Arc<Self>) {
        for hub in self.all() {
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(error) = this.catch_up(&hub).await {
                    tracing::debug!(tenant = %hub.id, %error, "re-check after a listener reconnect failed");
                }
            });
        }
    }

    async fn prune(&self, tenant: TenantId) {
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
    pub async fn tenant_changed(&self, id: TenantId) {
        let Some(hub) = self.existing(id) else { return };
        match self.routes.get(id).await {
            Ok(Lookup::Found(route)) if route.status == tenancy::TenantStatus::Active => {
                {
                    let mut current = hub.maintenance.lock().expect("maintenance lock");
                    if *current != route.maintenance {
                        *current = route.maintenance.clone();
                        hub.send(Item::System(maintenance_message(&route.maintenance)));
                    }
                }
                let replaced = {
                    let mut known = hub.database.lock().expect("database lock");
                    let replaced = known.as_deref().is_some_and(|db| db != route.database.as_str());
                    *known = Some(route.database.as_str().to_owned());
                    replaced
                };
                if replaced {
                    // Another database now holds the tenant's data (restored from a backup): its
                    // seqs start again. Every socket is told to reload and closed, so none keeps
                    // counting from the old seqs; the hub starts afresh from the new outbox.
                    let _reading = hub.reading.lock().await;
                    let last = match self.pools.acquire(&route).await {
                        Ok(mut conn) => tenant_schema::outbox::last_seq(&mut conn).await.unwrap_or(0),
                        Err(_) => 0,
                    };
                    hub.last_seq.store(-1, Ordering::SeqCst);
                    let reason = "the company's data was restored from a backup".to_owned();
                    hub.send(Item::System(super::messages::system(SystemNotice::Resync(Resync { reason, seq: last }))));
                    hub.send(Item::Close(
                        super::messages::close::GOING_AWAY,
                        "the company's data was replaced: reconnect",
                    ));
                }
            }
            Ok(_) => {
                hub.send(Item::Close(super::messages::close::TENANT_UNAVAILABLE, "this company is no longer available"))
            }
            Err(_) => {}
        }
    }

    /// A user's membership in `tenant` changed: that user's sockets there whose token has
    /// another epoch than `current` (`None`: removed) close with 4001 (sign in again).
    pub fn membership_changed(&self, tenant: TenantId, user: Uuid, current: Option<i64>) {
        if let Some(hub) = self.existing(tenant) {
            hub.send(Item::MembershipChanged { user, epoch: current });
        }
    }

    /// Platform maintenance started or ended: tell every socket.
    pub fn platform_maintenance(&self, maintenance: &Option<String>) {
        let message = maintenance_message(maintenance);
        for hub in self.all() {
            hub.send(Item::System(message.clone()));
        }
    }

    /// The client versions served changed: tell every socket, so outdated clients can act now.
    pub fn client_versions(&self, min_client_version: &str, latest_version: &str) {
        let versions = ClientVersions {
            min_client_version: min_client_version.to_owned(),
            latest_version: latest_version.to_owned(),
        };
        let message = super::messages::system(SystemNotice::ClientVersions(versions));
        for hub in self.all() {
            hub.send(Item::System(message.clone()));
        }
    }

    pub fn socket_count(&self) -> usize {
        self.all().iter().map(|h| h.connections()).sum()
    }
}

fn maintenance_message(maintenance: &Option<String>) -> Arc<str> {
    let notice = Maintenance { maintenance_mode: maintenance.is_some(), message: maintenance.clone() };
    super::messages::system(SystemNotice::Maintenance(notice))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::PoolConfig;
    use sqlx::postgres::PgPoolOptions;
    use std::sync::atomic::AtomicBool;
    use tenancy::TenantRoleKey;

    /// A hub, and its pools, whose catalog is a closed port (127.0.0.1:1): nothing here may
    /// need a database that answers.
    pub(crate) fn offline_hub() -> (Hub, Arc<PoolManager>) {
        let catalog = PgPoolOptions::new().connect_lazy("postgres://nobody@127.0.0.1:1/none").expect("a lazy pool");
        let routes = Arc::new(TenantRoutes::new(catalog.clone(), Duration::from_secs(30)));
        let pools = Arc::new(PoolManager::new(PoolConfig::default(), TenantRoleKey::from_bytes([7; 32])));
        (Hub::new(RealtimeConfig::default(), catalog, routes, pools.clone()), pools)
    }

    #[tokio::test]
    async fn a_socket_that_joins_while_unused_hubs_are_dropped_keeps_the_hub_that_wake_ups_reach() {
        let hub = Arc::new(offline_hub().0);
        let stop = Arc::new(AtomicBool::new(false));
        let dropper = {
            let (hub, stop) = (hub.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    hub.drop_unused_hubs();
                }
            })
        };
        let mut orphaned = 0;
        for _ in 0..200_000 {
            let id = TenantId(Uuid::new_v4());
            let (joined, slot) = hub.join(id, None).expect("under the limit");
            // What `offer` finds for the tenant must be the hub the socket listens on.
            if !hub.existing(id).is_some_and(|found| Arc::ptr_eq(&found, &joined)) {
                orphaned += 1;
            }
            drop(slot);
        }
        stop.store(true, Ordering::Relaxed);
        dropper.join().expect("the dropper thread");
        assert_eq!(orphaned, 0, "sockets left on hubs no longer in the map");
    }
}

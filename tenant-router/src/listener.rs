//! The catalog listener: one `LISTEN nexacore_catalog` connection per router replica, never one
//! per tenant. Each notification drops what it names from the caches, applied off the listening
//! loop, coalesced, key fetches paced; after a reconnect (when notifications may have been
//! missed) every cached route, membership and key is dropped.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tenancy::TenantId;
use tenancy::notify::{CHANNEL, CatalogEvent};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::access::MembershipEpochs;
use crate::auth::TokenVerifier;
use crate::pools::PoolManager;
use crate::routes::{SettingsCache, TenantRoutes};

pub struct Caches {
    pub routes: Arc<TenantRoutes>,
    pub memberships: Arc<MembershipEpochs>,
    pub settings: Arc<SettingsCache>,
    pub verifier: Arc<TokenVerifier>,
    pub pools: Arc<PoolManager>,
    pub realtime: Arc<crate::realtime::Hub>,
    /// Whether the catalog listener is connected now (readiness).
    pub listening: Arc<std::sync::atomic::AtomicBool>,
}

/// Notices not applied yet. Coalesced: a tenant or membership named many times is dropped
/// once; past [`MAX_PENDING`] names everything is dropped at once instead.
#[derive(Default)]
struct Pending {
    tenants: HashSet<TenantId>,
    memberships: HashSet<(Uuid, TenantId)>,
    keys: bool,
    settings: bool,
    everything: bool,
}

/// Names kept apart before a flood of notices turns into one "drop everything".
const MAX_PENDING: usize = 10_000;

/// The least time between two JWKS fetches caused by key notices (each costs the control
/// plane a request): a burst of notices, or a flood, is one fetch per interval.
const KEYS_MIN_INTERVAL: Duration = Duration::from_millis(500);

struct Notices {
    pending: Mutex<Pending>,
    wake: Notify,
}

impl Notices {
    fn add(&self, change: impl FnOnce(&mut Pending)) {
        {
            let mut pending = self.pending.lock().expect("pending notices");
            change(&mut pending);
            if pending.tenants.len() + pending.memberships.len() > MAX_PENDING {
                pending.tenants.clear();
                pending.memberships.clear();
                pending.everything = true;
            }
        }
        self.wake.notify_one();
    }

    fn take(&self) -> Pending {
        std::mem::take(&mut *self.pending.lock().expect("pending notices"))
    }
}

/// Listens until `shutdown` fires; reconnects with a pause on errors. On shutdown: returns,
/// and so does the worker that applies the notices.
///
/// The loop only reads: wake-ups go to the hubs at once (they are the realtime path), catalog
/// notices are queued for [`apply_pending`] on a task of its own, so a burst of them (or anyone
/// able to `NOTIFY` in a loop) neither stalls the wake-ups nor costs more than one cache drop
/// per name, and key fetches are paced.
pub async fn run(catalog: PgConnectOptions, caches: Caches, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let caches = Arc::new(caches);
    let notices = Arc::new(Notices { pending: Mutex::new(Pending::default()), wake: Notify::new() });
    let worker = tokio::spawn(apply_pending(caches.clone(), notices.clone(), shutdown.clone()));
    // No key is cached before the first connection; after a reconnect any may be stale.
    let mut first = true;
    loop {
        let mut listener = match connect(&catalog).await {
            Ok(l) => l,
            Err(error) => {
                tracing::warn!(%error, "catalog listener cannot connect; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.changed() => break,
                }
            }
        };
        // Whatever happened while we were not listening is unknown: start from scratch. Routes
        // and memberships at once (cheap, and the next request must not use them); settings
        // and keys (a query, an HTTP fetch) through the worker.
        caches.routes.invalidate_all();
        caches.memberships.invalidate_all();
        caches.realtime.recheck_all();
        notices.add(|p| {
            p.settings = true;
            p.keys = !first;
        });
        first = false;
        caches.listening.store(true, std::sync::atomic::Ordering::Relaxed);
        let stop = loop {
            tokio::select! {
                received = listener.try_recv() => match received {
                    Ok(Some(n)) if n.channel() == crate::realtime::hub::EVENTS_CHANNEL => caches.realtime.wake_from_payload(n.payload()),
                    Ok(Some(n)) => queue(&notices, n.payload()),
                    // The connection dropped: sqlx reconnects on the next call; drop the caches.
                    Ok(None) => {
                        caches.routes.invalidate_all();
                        caches.memberships.invalidate_all();
                        notices.add(|p| p.everything = true);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "catalog listener failed; reconnecting");
                        break false;
                    }
                },
                _ = shutdown.changed() => break true,
            }
        };
        caches.listening.store(false, std::sync::atomic::Ordering::Relaxed);
        if stop {
            break;
        }
    }
    let _ = worker.await;
}

fn queue(notices: &Notices, payload: &str) {
    match CatalogEvent::parse(payload) {
        Some(CatalogEvent::Tenant { id }) => notices.add(|p| {
            p.tenants.insert(TenantId(id));
        }),
        Some(CatalogEvent::Membership { user, tenant }) => notices.add(|p| {
            p.memberships.insert((user, TenantId(tenant)));
        }),
        Some(CatalogEvent::Keys) => notices.add(|p| p.keys = true),
        Some(CatalogEvent::Settings) => notices.add(|p| p.settings = true),
        None => tracing::debug!(payload, "ignoring an unknown catalog notification"),
    }
}

/// Applies queued notices until shutdown (then returns): each batch in one pass, key fetches
/// at most once per [`KEYS_MIN_INTERVAL`].
async fn apply_pending(caches: Arc<Caches>, notices: Arc<Notices>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    use tokio::time::{Instant, sleep_until};
    let mut last_keys: Option<Instant> = None;
    // A key fetch put off by the pacing, and when it is due.
    let mut keys_due: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = notices.wake.notified() => {}
            _ = sleep_until(keys_due.unwrap_or_else(Instant::now)), if keys_due.is_some() => {
                keys_due = None;
                notices.add(|p| p.keys = true);
                continue;
            }
            _ = shutdown.changed() => return,
        }
        let batch = notices.take();
        let wants_keys = batch.keys || batch.everything;
        let keys_now = wants_keys && last_keys.is_none_or(|at| at.elapsed() >= KEYS_MIN_INTERVAL);
        if keys_now {
            last_keys = Some(Instant::now());
        } else if wants_keys && keys_due.is_none() {
            keys_due = last_keys.map(|at| at + KEYS_MIN_INTERVAL);
        }
        apply(&caches, batch, keys_now).await;
    }
}

async fn apply(caches: &Caches, batch: Pending, keys: bool) {
    if batch.everything {
        caches.routes.invalidate_all();
        caches.memberships.invalidate_all();
        caches.settings.refresh().await;
        caches.realtime.recheck_all();
    }
    if keys {
        caches.verifier.keys_changed().await;
    }
    for id in batch.tenants {
        caches.routes.invalidate(id).await;
        // A suspended or deleted tenant's connections must not linger.
        caches.pools.retire_tenant(id).await;
        caches.realtime.tenant_changed(id).await;
    }
    for (user, tenant) in batch.memberships {
        caches.memberships.invalidate(user, tenant).await;
        // The user's live sockets in that company whose token no longer matches end (the
        // client signs in again); a membership added or left as it was ends nothing.
        if caches.realtime.existing(tenant).is_some() {
            match caches.memberships.current(user, tenant).await {
                Ok(current) => caches.realtime.membership_changed(tenant, user, current),
                Err(error) => tracing::warn!(%error, %tenant, "cannot read a changed membership; its sockets stay"),
            }
        }
    }
    if batch.settings && !batch.everything {
        let before = caches.settings.get().await;
        caches.settings.refresh().await;
        let after = caches.settings.get().await;
        if before.maintenance != after.maintenance {
            caches.realtime.platform_maintenance(&after.maintenance);
        }
        if (&before.min_client_version, &before.latest_version) != (&after.min_client_version, &after.latest_version) {
            caches.realtime.client_versions(&after.min_client_version, &after.latest_version);
        }
    }
}

async fn connect(catalog: &PgConnectOptions) -> Result<PgListener, sqlx::Error> {
    // A pool of one, for the listener alone: it reconnects through it after a failure.
    let pool = PgPoolOptions::new().max_connections(1).connect_lazy_with(catalog.clone());
    let mut listener = PgListener::connect_with(&pool).await?;
    // One connection hears both catalog changes and event wake-ups of every tenant.
    listener.listen_all([CHANNEL, crate::realtime::hub::EVENTS_CHANNEL]).await?;
    Ok(listener)
}

//! The catalog listener: one `LISTEN nexacore_catalog` connection per router replica, never one
//! per tenant. Each notification drops what it names from the caches; after a reconnect (when
//! notifications may have been missed) every cached route is dropped.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tenancy::notify::{CHANNEL, CatalogEvent};

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
}

/// Listens until `shutdown` fires; reconnects with a pause on errors. On shutdown: returns.
pub async fn run(catalog: PgConnectOptions, caches: Caches, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        let mut listener = match connect(&catalog).await {
            Ok(l) => l,
            Err(error) => {
                tracing::warn!(%error, "catalog listener cannot connect; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        };
        // Whatever happened while we were not listening is unknown: start from scratch.
        caches.routes.invalidate_all();
        caches.memberships.invalidate_all();
        caches.verifier.keys_changed().await;
        caches.settings.refresh().await;
        caches.realtime.recheck_all();
        loop {
            tokio::select! {
                received = listener.try_recv() => match received {
                    Ok(Some(n)) if n.channel() == crate::realtime::hub::EVENTS_CHANNEL => caches.realtime.wake_from_payload(n.payload()),
                    Ok(Some(n)) => apply(&caches, n.payload()).await,
                    // The connection dropped: sqlx reconnects on the next call; drop the caches.
                    Ok(None) => {
                        caches.routes.invalidate_all();
                        caches.memberships.invalidate_all();
                        caches.verifier.keys_changed().await;
                        caches.settings.refresh().await;
                        caches.realtime.recheck_all();
                    }
                    Err(error) => {
                        tracing::warn!(%error, "catalog listener failed; reconnecting");
                        break;
                    }
                },
                _ = shutdown.changed() => return,
            }
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

async fn apply(caches: &Caches, payload: &str) {
    match CatalogEvent::parse(payload) {
        Some(CatalogEvent::Tenant { id }) => {
            caches.routes.invalidate(id).await;
            // A suspended or deleted tenant's connections must not linger.
            caches.pools.retire_tenant(id).await;
            caches.realtime.tenant_changed(id).await;
        }
        Some(CatalogEvent::Keys) => caches.verifier.keys_changed().await,
        Some(CatalogEvent::Settings) => {
            let before = caches.settings.get().await.maintenance;
            caches.settings.refresh().await;
            let after = caches.settings.get().await.maintenance;
            if before != after {
                caches.realtime.platform_maintenance(&after);
            }
        }
        Some(CatalogEvent::Membership { user, tenant }) => {
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
        None => tracing::debug!(payload, "ignoring an unknown catalog notification"),
    }
}

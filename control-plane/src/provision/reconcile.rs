//! The reconciler: finishes what crashed processes left half done. Tenants stuck in
//! `provisioning` whose provisioner is gone are undone; tenants stuck in `deleting` are
//! dropped and marked `deleted`. Runs at start-up and then periodically.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use crate::catalog::tenants;
use crate::domain::TenantStatus;
use crate::fleet::Fleet;
use crate::lifecycle;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileReport {
    pub undone: usize,
    pub deleted: usize,
    /// Tenants in `provisioning` whose provisioner is still alive.
    pub in_progress: usize,
    pub failed: usize,
}

pub async fn reconcile_once(catalog: &PgPool, fleet: &Fleet) -> Result<ReconcileReport, sqlx::Error> {
    let mut report = ReconcileReport::default();
    for tenant in tenants::in_status(catalog, TenantStatus::Provisioning).await? {
        let id = tenant.tenant_id();
        let mut lock = catalog.begin().await?;
        let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(id.lock_key())
            .fetch_one(&mut *lock)
            .await?;
        if !free {
            report.in_progress += 1;
            continue;
        }
        let outcome = async {
            let server = fleet.server(tenant.server_id).await?;
            super::undo(fleet, catalog, &server, id).await
        }
        .await;
        lock.commit().await?;
        match outcome {
            Ok(()) => {
                tracing::warn!(tenant = %id, slug = %tenant.slug, "undid an interrupted provisioning");
                report.undone += 1;
            }
            Err(error) => {
                tracing::error!(tenant = %id, %error, "cannot undo an interrupted provisioning yet");
                report.failed += 1;
            }
        }
    }
    for tenant in tenants::in_status(catalog, TenantStatus::Deleting).await? {
        match lifecycle::finish_delete(catalog, fleet, &tenant).await {
            Ok(()) => report.deleted += 1,
            Err(error) => {
                tracing::error!(tenant = %tenant.id, %error, "cannot finish deleting a tenant yet");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

/// Runs [`reconcile_once`] every `interval` until `shutdown` fires.
pub async fn run_periodically(
    catalog: PgPool,
    fleet: Arc<Fleet>,
    interval: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the start-up pass already ran
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if let Err(error) = reconcile_once(&catalog, &fleet).await {
                    tracing::error!(%error, "reconcile pass failed");
                }
            }
            // On shutdown: stop. A pass cut off midway is harmless: undoing a tenant is
            // idempotent and the next start-up pass finishes it.
            _ = shutdown.changed() => break,
        }
    }
}

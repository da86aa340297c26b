//! The reconciler: finishes what crashed processes left half done. Tenants stuck in
//! `provisioning` whose provisioner is gone are undone; tenants stuck in `deleting` are
//! dropped and marked `deleted`. Runs at start-up and then periodically.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use super::error::ProvisionError;
use crate::catalog::tenants::{self, TenantRow};
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
    /// Spare databases dropped: retired ones, and ones whose creator died (see `spares`).
    pub spares_dropped: usize,
}

pub async fn reconcile_once(catalog: &PgPool, fleet: &Fleet) -> Result<ReconcileReport, sqlx::Error> {
    let mut report = ReconcileReport::default();
    for tenant in tenants::in_status(catalog, TenantStatus::Provisioning).await? {
        let id = tenant.tenant_id();
        match undo_if_abandoned(catalog, fleet, &tenant).await {
            Ok(Abandoned::Undone) => {
                tracing::warn!(tenant = %id, slug = %tenant.slug, "undid an interrupted provisioning");
                report.undone += 1;
            }
            Ok(Abandoned::No) => report.in_progress += 1,
            Err(error) => {
                tracing::error!(tenant = %id, %error, "cannot undo an interrupted provisioning yet");
                report.failed += 1;
            }
        }
    }
    report.spares_dropped = super::spares::drop_unfinished(catalog, fleet).await?;
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

/// What [`undo_if_abandoned`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abandoned {
    /// Its provisioner was gone: the database, role and catalog row were removed.
    Undone,
    /// Its provisioner is still at work, or finished since `tenant` was read: left alone.
    No,
}

/// Undoes the provisioning of `tenant` (a row read in state `provisioning`) if its provisioner
/// is gone.
///
/// The row may be stale: the provisioner may have activated the tenant and released its lock
/// between the read and now. So the status is read again *under* the tenant's lock — the
/// provisioner holds that lock until its activation is committed, so what is read then is
/// final. (Without the re-read, a pass racing a signup dropped the database and role of a
/// tenant that had just become active.)
pub async fn undo_if_abandoned(
    catalog: &PgPool,
    fleet: &Fleet,
    tenant: &TenantRow,
) -> Result<Abandoned, ProvisionError> {
    let id = tenant.tenant_id();
    let mut lock = catalog.begin().await?;
    let free: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)").bind(id.lock_key()).fetch_one(&mut *lock).await?;
    if !free {
        return Ok(Abandoned::No);
    }
    let still_provisioning =
        tenants::get(&mut *lock, id.0).await?.is_some_and(|row| row.status() == TenantStatus::Provisioning);
    if !still_provisioning {
        return Ok(Abandoned::No);
    }
    let server = fleet.server(tenant.server_id).await?;
    let outcome = super::undo(fleet, catalog, &server, id).await;
    lock.commit().await?;
    outcome.map(|()| Abandoned::Undone)
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

//! Spare tenant databases: copies of each server's template made ahead of need, so that a
//! signup adopts a finished database instead of waiting for `CREATE ROLE`, `CREATE DATABASE`
//! and the hand-over of every object to the new role (together most of a signup's time).
//!
//! A spare is built exactly like a tenant's database (role with its derived password, copy of
//! the template, `CONNECT` revoked from `PUBLIC`, objects reassigned to the role) under an id
//! minted up front; a signup that claims it becomes the tenant with that id, so nothing is
//! renamed. Then the signup only writes the company's seed rows and activates.
//!
//! Invariants:
//! - **Every spare is a copy of its server's current template.** A spare is copied and marked
//!   `ready` while its creator holds the template lock in shared mode; whoever migrates a
//!   template holds it exclusively and retires every ready spare of that server before
//!   releasing it (`catalog::spares::retire_all`); a signup claims a spare while holding the
//!   lock shared. So no signup adopts a spare of an older template.
//! - **No orphan database or role.** The spare's catalog row (`creating`) is committed before
//!   anything is created, and its creator holds the id's advisory lock until the row says
//!   `ready`; a `creating` row whose lock is free lost its creator, and
//!   [`drop_unfinished`] drops whatever exists of it, as it does for `retired` spares.
//!   Claiming deletes the spare's row in the transaction that inserts the tenant's row, so the
//!   tenant's own crash safety (see `provision`) takes over from there.
//! - **One refiller per server at a time**, whatever the number of control-plane replicas: a
//!   pass holds the server's refill lock (a try-lock: a busy server is skipped, not waited for).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::{Connection, PgPool};
use tokio::sync::Notify;
use uuid::Uuid;

use super::error::ProvisionError;
use crate::catalog::{servers, spares};
use crate::domain::TenantId;
use crate::fleet::{self, Fleet, FleetError, ServerHandle};

/// The pool of spare databases, and its refiller.
pub struct SparePool {
    catalog: PgPool,
    fleet: Arc<Fleet>,
    per_server: u32,
    wake: Notify,
    adopted: AtomicU64,
}

/// Counters since start.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SpareStats {
    /// Signups that adopted a spare.
    pub adopted: u64,
}

/// What one refill pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RefillReport {
    pub built: usize,
    pub dropped: usize,
    pub failed: usize,
}

impl SparePool {
    pub fn new(catalog: PgPool, fleet: Arc<Fleet>, per_server: u32) -> Self {
        Self { catalog, fleet, per_server, wake: Notify::new(), adopted: AtomicU64::new(0) }
    }

    /// Spare databases kept ready per active server.
    pub fn per_server(&self) -> u32 {
        self.per_server
    }

    /// Whether signups look for spares at all (`per_server > 0`).
    pub fn enabled(&self) -> bool {
        self.per_server > 0
    }

    pub fn stats(&self) -> SpareStats {
        SpareStats { adopted: self.adopted.load(Ordering::Relaxed) }
    }

    /// A signup claimed a spare: let the refiller replace it now rather than at its next tick.
    pub(crate) fn claimed_one(&self) {
        self.wake.notify_one();
    }

    /// A signup that claimed a spare finished.
    pub(crate) fn adopted_one(&self) {
        self.adopted.fetch_add(1, Ordering::Relaxed);
    }

    /// One pass over every server: drops retired and abandoned spares, retires spares beyond
    /// the pool size (and every spare of a server that no longer takes tenants), and builds
    /// what is missing (see [`Self::fill`]).
    pub async fn refill_once(&self) -> Result<RefillReport, sqlx::Error> {
        let mut report =
            RefillReport { dropped: drop_unfinished(&self.catalog, &self.fleet).await?, ..Default::default() };
        for server in servers::all(&self.catalog).await? {
            let keep = if server.status == "active" { i64::from(self.per_server) } else { 0 };
            let mut guard = self.catalog.begin().await?;
            let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                .bind(refill_lock_key(server.id))
                .fetch_one(&mut *guard)
                .await?;
            if !mine {
                continue;
            }
            spares::retire_surplus(&self.catalog, server.id, keep).await?;
            if spares::ready_count(&self.catalog, server.id).await? < keep {
                match self.fleet.server(server.id).await {
                    Ok(handle) => self.fill(&handle, keep, &mut report).await?,
                    Err(error) => {
                        tracing::warn!(server = %server.name, %error, "cannot reach a server to build spares");
                        report.failed += 1;
                    }
                }
            }
            guard.commit().await?;
        }
        // What the pass retired is dropped now, not a tick later.
        report.dropped += drop_unfinished(&self.catalog, &self.fleet).await?;
        Ok(report)
    }

    /// Builds spares on one server, one after another, until it has `keep` ready. Counts again
    /// after every build, so spares claimed meanwhile are replaced in the same pass. One at a
    /// time on purpose: measured here, two copies side by side made signups slower, not faster
    /// (BENCHMARKS.md). Stops at the first failure (typically the server is down or its
    /// template missing: the next tick tries again rather than hammering it now).
    async fn fill(&self, server: &ServerHandle, keep: i64, report: &mut RefillReport) -> Result<(), sqlx::Error> {
        while spares::ready_count(&self.catalog, server.id).await? < keep {
            match self.build_one(server).await {
                Ok(_) => report.built += 1,
                Err(error) => {
                    tracing::warn!(server = %server.name, %error, "building a spare database failed");
                    report.failed += 1;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Builds one spare on `server` and marks it ready.
    async fn build_one(&self, server: &ServerHandle) -> Result<TenantId, ProvisionError> {
        let id = TenantId::new();
        let (db, role) = (id.database_name(), id.role_name());
        // Held until the row says `ready`: the id's lock tells the reconciler the creator is
        // alive; the template's (shared) keeps the copy and the `ready` mark on one template
        // version (see the module docs).
        let mut lock = self.catalog.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1), pg_advisory_xact_lock_shared($2)")
            .bind(id.lock_key())
            .bind(fleet::template_lock_key(server.id))
            .execute(&mut *lock)
            .await?;
        spares::insert_creating(&self.catalog, id, server.id).await?;
        let built = async {
            self.fleet.create_role(server, &role).await?;
            self.fleet.create_database(server, &db, &role).await?;
            self.fleet.revoke_public_access(server, &db).await?;
            let mut conn = server.connect_to(&db).await?;
            let handed = async {
                let mut tx = conn.begin().await?;
                fleet::hand_over(&mut tx, &role).await?;
                tx.commit().await
            }
            .await;
            conn.close().await.ok();
            handed?;
            Ok::<_, ProvisionError>(())
        }
        .await;
        match built {
            Ok(()) => {
                spares::mark_ready(&mut *lock, id).await?;
                lock.commit().await?;
                tracing::debug!(server = %server.name, spare = %id, "spare database ready");
                Ok(id)
            }
            Err(error) => {
                // Undone while the id's lock is still held, so no reconciler races it.
                self.fleet.drop_tenant(server, &db, &role).await?;
                spares::delete(&self.catalog, id).await?;
                lock.commit().await?;
                Err(error)
            }
        }
    }

    /// Refills at start-up, then every `interval` and whenever a signup adopts a spare, until
    /// `shutdown` fires. A pass cut off by shutdown is harmless: see the module docs.
    pub async fn run_periodically(
        self: Arc<Self>,
        interval: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            match self.refill_once().await {
                Ok(report) if report != RefillReport::default() => tracing::debug!(?report, "spare refill pass"),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "spare refill pass failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => break,
            }
        }
    }
}

/// Drops retired spares and spares whose creator is gone (database, role, then row). Returns
/// how many were dropped. Shared by the refiller and the reconciler.
pub async fn drop_unfinished(catalog: &PgPool, fleet: &Fleet) -> Result<usize, sqlx::Error> {
    let mut dropped = 0;
    for spare in spares::unfinished(catalog).await? {
        let id = spare.tenant_id();
        let mut lock = catalog.begin().await?;
        let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(id.lock_key())
            .fetch_one(&mut *lock)
            .await?;
        if !free {
            continue; // its creator is at work
        }
        // Re-read under the lock: the creator may have finished (now `ready`) since the list.
        let Some(row) = spares::get(&mut *lock, id).await? else { continue };
        if row.status == "ready" {
            continue;
        }
        let outcome = async {
            let server = fleet.server(row.server_id).await?;
            fleet.drop_tenant(&server, &id.database_name(), &id.role_name()).await?;
            spares::delete(catalog, id).await?;
            Ok::<_, FleetError>(())
        }
        .await;
        lock.commit().await?;
        match outcome {
            Ok(()) => dropped += 1,
            Err(error) => tracing::warn!(spare = %id, %error, "cannot drop a spare database yet"),
        }
    }
    Ok(dropped)
}

/// The catalog advisory-lock key of one server's refiller.
fn refill_lock_key(server: Uuid) -> i64 {
    let bytes = server.as_bytes();
    i64::from_be_bytes(bytes[8..16].try_into().expect("16-byte uuid")) ^ 0x7370_6172_6573_2121
}

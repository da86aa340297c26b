//! Whether a verified token still grants access: its membership exists and has the epoch the
//! token was issued with (claim `ep`). The control plane deletes a removed membership and gives
//! a changed one (role, password) a new epoch; the catalog's trigger announces each change and
//! the listener drops the cached epoch, so every router refuses the old tokens within the
//! notification's delay. The TTL is the backstop for a notification lost while the listener
//! reconnects (which drops every entry anyway).
//!
//! Epochs live in moka, keyed by (user, tenant); concurrent misses share one catalog lookup
//! (`try_get_with`); "no membership" is cached like an epoch; lookup failures are not.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::future::Cache;
use sqlx::PgPool;
use tenancy::TenantId;
use uuid::Uuid;

use crate::catalog;

#[derive(Debug, Clone, thiserror::Error)]
#[error("membership lookup failed: {0}")]
pub struct AccessLookupError(String);

/// What a token's membership says now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Granted,
    /// The membership is gone: the user was removed from the company.
    Removed,
    /// The membership changed since the token was issued (role, password): sign in again.
    Changed,
}

pub struct MembershipEpochs {
    catalog: PgPool,
    cache: Cache<(Uuid, TenantId), Option<i64>>,
    lookups: AtomicU64,
}

impl MembershipEpochs {
    pub fn new(catalog: PgPool, ttl: Duration) -> Self {
        Self {
            catalog,
            cache: Cache::builder().max_capacity(200_000).time_to_live(ttl).build(),
            lookups: AtomicU64::new(0),
        }
    }

    /// Catalog lookups made so far (hits do not count).
    pub fn lookup_count(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    /// Whether a token of `user` in `tenant` issued at `epoch` still grants access.
    pub async fn check(&self, user: Uuid, tenant: TenantId, epoch: i64) -> Result<Access, AccessLookupError> {
        Ok(match self.current(user, tenant).await? {
            None => Access::Removed,
            Some(current) if current == epoch => Access::Granted,
            Some(_) => Access::Changed,
        })
    }

    /// The membership's epoch now; `None` when there is no membership.
    pub async fn current(&self, user: Uuid, tenant: TenantId) -> Result<Option<i64>, AccessLookupError> {
        self.cache.try_get_with((user, tenant), self.load(user, tenant)).await.map_err(|e| (*e).clone())
    }

    pub async fn invalidate(&self, user: Uuid, tenant: TenantId) {
        self.cache.invalidate(&(user, tenant)).await;
    }

    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }

    async fn load(&self, user: Uuid, tenant: TenantId) -> Result<Option<i64>, AccessLookupError> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        catalog::retrying(|| {
            sqlx::query_scalar("SELECT token_epoch FROM memberships WHERE user_id = $1 AND tenant_id = $2")
                .bind(user)
                .bind(tenant.0)
                .fetch_optional(&self.catalog)
        })
        .await
        .map_err(|e| AccessLookupError(e.to_string()))
    }
}

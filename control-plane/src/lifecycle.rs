//! Operator actions on existing tenants: suspend, resume, feature flags, maintenance, delete.
//! Every action is written to the audit log in the same transaction as the change.

use sqlx::PgPool;
use uuid::Uuid;

use crate::catalog::audit::{self, Actor};
use crate::catalog::tenants::{self, TenantRow};
use crate::domain::TenantStatus;
use crate::fleet::{Fleet, FleetError};

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("no tenant with this id")]
    NotFound,
    #[error("a tenant that is {0} cannot be changed this way")]
    WrongState(&'static str),
    #[error("database server: {0}")]
    Fleet(#[from] FleetError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

async fn live(catalog: &PgPool, id: Uuid) -> Result<TenantRow, LifecycleError> {
    tenants::get(catalog, id).await?.ok_or(LifecycleError::NotFound)
}

/// Sets a tenant `active` or `suspended`.
pub async fn set_status(
    catalog: &PgPool,
    actor: &Actor,
    id: Uuid,
    to: TenantStatus,
) -> Result<TenantRow, LifecycleError> {
    let current = live(catalog, id).await?;
    let from = match to {
        TenantStatus::Suspended => [TenantStatus::Active, TenantStatus::Suspended],
        TenantStatus::Active => [TenantStatus::Suspended, TenantStatus::Active],
        _ => return Err(LifecycleError::WrongState(current.status().as_str())),
    };
    let mut tx = catalog.begin().await?;
    if !tenants::transition(&mut *tx, id, &from, to).await? {
        return Err(LifecycleError::WrongState(current.status().as_str()));
    }
    if current.status() != to {
        let action = if to == TenantStatus::Suspended { "tenant.suspended" } else { "tenant.resumed" };
        audit::record(&mut *tx, actor, action, Some(id), serde_json::json!({ "from": current.status })).await?;
    }
    tx.commit().await?;
    live(catalog, id).await
}

pub async fn set_feature_flags(
    catalog: &PgPool,
    actor: &Actor,
    id: Uuid,
    flags: &serde_json::Map<String, serde_json::Value>,
) -> Result<TenantRow, LifecycleError> {
    let current = live(catalog, id).await?;
    if matches!(current.status(), TenantStatus::Deleted | TenantStatus::Deleting) {
        return Err(LifecycleError::WrongState(current.status().as_str()));
    }
    let value = serde_json::Value::Object(flags.clone());
    let mut tx = catalog.begin().await?;
    tenants::merge_feature_flags(&mut *tx, id, &value).await?;
    audit::record(&mut *tx, actor, "tenant.feature_flags", Some(id), value).await?;
    tx.commit().await?;
    live(catalog, id).await
}

pub async fn set_maintenance(
    catalog: &PgPool,
    actor: &Actor,
    id: Uuid,
    on: bool,
    message: Option<&str>,
) -> Result<(), LifecycleError> {
    let mut tx = catalog.begin().await?;
    if !tenants::set_maintenance(&mut *tx, id, on, message).await? {
        return Err(LifecycleError::NotFound);
    }
    audit::record(&mut *tx, actor, "tenant.maintenance", Some(id), serde_json::json!({ "on": on, "message": message }))
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes a tenant: marks it `deleting` (so no one can sign in), drops its database and
/// role, and keeps the row as `deleted` for audit. If dropping fails, the tenant stays
/// `deleting` and the reconciler retries.
pub async fn delete(catalog: &PgPool, fleet: &Fleet, actor: &Actor, id: Uuid) -> Result<TenantRow, LifecycleError> {
    let current = live(catalog, id).await?;
    match current.status() {
        TenantStatus::Deleted => return Ok(current),
        TenantStatus::Provisioning => return Err(LifecycleError::WrongState("provisioning")),
        _ => {}
    }
    let mut tx = catalog.begin().await?;
    tenants::transition(&mut *tx, id, &[TenantStatus::Active, TenantStatus::Suspended], TenantStatus::Deleting).await?;
    audit::record(&mut *tx, actor, "tenant.deleted", Some(id), serde_json::json!({ "slug": current.slug })).await?;
    tx.commit().await?;
    let row = live(catalog, id).await?;
    finish_delete(catalog, fleet, &row).await?;
    live(catalog, id).await
}

pub(crate) async fn finish_delete(catalog: &PgPool, fleet: &Fleet, tenant: &TenantRow) -> Result<(), LifecycleError> {
    let (db, role) = tenant.database().map_err(|_| LifecycleError::WrongState("corrupt"))?;
    let server = fleet.server(tenant.server_id).await?;
    fleet.drop_tenant(&server, &db, &role).await?;
    tenants::transition(catalog, tenant.id, &[TenantStatus::Deleting], TenantStatus::Deleted).await?;
    tracing::info!(tenant = %tenant.id, slug = %tenant.slug, "tenant deleted");
    Ok(())
}

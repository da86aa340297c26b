//! Catalog rows of tenants: where each company's database lives and in what state it is.

use serde_json::Value;
use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{DbName, RoleName, TenantId, TenantStatus};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantRow {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub status: String,
    pub server_id: Uuid,
    pub database_name: String,
    pub role_name: String,
    pub schema_version: Option<i32>,
    pub feature_flags: Value,
    pub maintenance_mode: bool,
    pub maintenance_message: Option<String>,
    pub timezone: String,
    pub currency: String,
    pub chart_template: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub activated_at: Option<OffsetDateTime>,
    pub deleted_at: Option<OffsetDateTime>,
}

impl TenantRow {
    pub fn tenant_id(&self) -> TenantId {
        TenantId(self.id)
    }

    pub fn status(&self) -> TenantStatus {
        TenantStatus::parse(&self.status).expect("the catalog's CHECK constraint limits status")
    }

    /// The database and role names, re-checked: catalog rows are data, not trusted identifiers.
    pub fn database(&self) -> Result<(DbName, RoleName), String> {
        Ok((DbName::parse(&self.database_name)?, RoleName::parse(&self.role_name)?))
    }
}

const COLUMNS: &str = "id, slug, name, status, server_id, database_name, role_name, schema_version, \
    feature_flags, maintenance_mode, maintenance_message, timezone, currency, chart_template, \
    created_at, updated_at, activated_at, deleted_at";

/// A new tenant's row, written in state `provisioning` before anything is created.
#[derive(Debug, Clone)]
pub struct NewTenantRow<'a> {
    pub id: TenantId,
    pub slug: &'a str,
    pub name: &'a str,
    pub server_id: Uuid,
    pub timezone: &'a str,
    pub currency: &'a str,
    pub chart_template: &'a str,
}

pub async fn insert_provisioning(db: impl PgExecutor<'_>, t: &NewTenantRow<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO tenants (id, slug, name, status, server_id, database_name, role_name, timezone, currency, chart_template)
         VALUES ($1, $2, $3, 'provisioning', $4, $5, $6, $7, $8, $9)",
    )
    .bind(t.id.0)
    .bind(t.slug)
    .bind(t.name)
    .bind(t.server_id)
    .bind(t.id.database_name().as_str())
    .bind(t.id.role_name().as_str())
    .bind(t.timezone)
    .bind(t.currency)
    .bind(t.chart_template)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<TenantRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM tenants WHERE id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn get_live_by_slug(db: impl PgExecutor<'_>, slug: &str) -> Result<Option<TenantRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tenants WHERE slug = $1 AND status <> 'deleted'"
    )))
    .bind(slug)
    .fetch_optional(db)
    .await
}

pub async fn slug_taken(db: impl PgExecutor<'_>, slug: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tenants WHERE slug = $1 AND status <> 'deleted')")
        .bind(slug)
        .fetch_one(db)
        .await
}

/// Filters for the operator's tenant list. `after` is the last id of the previous page.
#[derive(Debug, Default, Clone)]
pub struct TenantFilter {
    pub status: Option<TenantStatus>,
    pub server_id: Option<Uuid>,
    /// Case-insensitive substring of the slug or the name.
    pub search: Option<String>,
    pub after: Option<Uuid>,
    pub limit: i64,
}

pub async fn list(db: impl PgExecutor<'_>, f: &TenantFilter) -> Result<Vec<TenantRow>, sqlx::Error> {
    let pattern = f.search.as_ref().map(|s| format!("%{}%", escape_like(&s.to_lowercase())));
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tenants
         WHERE ($1::text IS NULL OR status = $1)
           AND ($2::uuid IS NULL OR server_id = $2)
           AND ($3::text IS NULL OR slug LIKE $3 OR lower(name) LIKE $3)
           AND ($4::uuid IS NULL OR id > $4)
         ORDER BY id LIMIT $5"
    )))
    .bind(f.status.map(|s| s.as_str()))
    .bind(f.server_id)
    .bind(pattern)
    .bind(f.after)
    .bind(f.limit)
    .fetch_all(db)
    .await
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

pub async fn in_status(db: impl PgExecutor<'_>, status: TenantStatus) -> Result<Vec<TenantRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM tenants WHERE status = $1 ORDER BY id")))
        .bind(status.as_str())
        .fetch_all(db)
        .await
}

/// Moves a tenant from one status to another; false when it was not in `from` (a concurrent
/// change won), so callers never overwrite each other's transitions.
pub async fn transition(
    db: impl PgExecutor<'_>,
    id: Uuid,
    from: &[TenantStatus],
    to: TenantStatus,
) -> Result<bool, sqlx::Error> {
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let done = sqlx::query(
        "UPDATE tenants SET status = $3, updated_at = now(),
             activated_at = CASE WHEN $3 = 'active' THEN coalesce(activated_at, now()) ELSE activated_at END,
             deleted_at = CASE WHEN $3 = 'deleted' THEN now() ELSE deleted_at END
         WHERE id = $1 AND status = ANY($2)",
    )
    .bind(id)
    .bind(&from)
    .bind(to.as_str())
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn activate(db: impl PgExecutor<'_>, id: Uuid, schema_version: i32) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE tenants SET status = 'active', schema_version = $2, activated_at = now(), updated_at = now()
         WHERE id = $1 AND status = 'provisioning'",
    )
    .bind(id)
    .bind(schema_version)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Merges flags into the tenant's feature flags (a JSON object of booleans).
pub async fn merge_feature_flags(db: impl PgExecutor<'_>, id: Uuid, flags: &Value) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tenants SET feature_flags = feature_flags || $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(flags)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn set_maintenance(
    db: impl PgExecutor<'_>,
    id: Uuid,
    on: bool,
    message: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE tenants SET maintenance_mode = $2, maintenance_message = $3, updated_at = now()
         WHERE id = $1 AND status <> 'deleted'",
    )
    .bind(id)
    .bind(on)
    .bind(message)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes the row of a tenant whose provisioning is being undone (its idempotency key and
/// memberships go with it through `ON DELETE CASCADE`).
pub async fn delete_provisioning(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM tenants WHERE id = $1 AND status = 'provisioning'").bind(id).execute(db).await?;
    Ok(())
}

//! Catalog rows of users (global, one per e-mail address) and their memberships in tenants.

use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    pub password_hash: String,
}

pub async fn by_email(db: impl PgExecutor<'_>, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, email, full_name, password_hash FROM users WHERE lower(email) = lower($1)")
        .bind(email)
        .fetch_optional(db)
        .await
}

pub async fn by_id(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, email, full_name, password_hash FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn insert(db: impl PgExecutor<'_>, user: &UserRow) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO users (id, email, full_name, password_hash) VALUES ($1, $2, $3, $4)")
        .bind(user.id)
        .bind(&user.email)
        .bind(&user.full_name)
        .bind(&user.password_hash)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn touch_login(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET last_login_at = now() WHERE id = $1").bind(id).execute(db).await?;
    Ok(())
}

/// Adds a membership; returns its token epoch (see the catalog's V5 migration).
pub async fn add_membership(db: impl PgExecutor<'_>, user: Uuid, tenant: Uuid, role: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("INSERT INTO memberships (user_id, tenant_id, role) VALUES ($1, $2, $3) RETURNING token_epoch")
        .bind(user)
        .bind(tenant)
        .bind(role)
        .fetch_one(db)
        .await
}

/// The membership's token epoch, `None` when there is no such membership.
pub async fn token_epoch(db: impl PgExecutor<'_>, user: Uuid, tenant: Uuid) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT token_epoch FROM memberships WHERE user_id = $1 AND tenant_id = $2")
        .bind(user)
        .bind(tenant)
        .fetch_optional(db)
        .await
}

/// One of a user's companies, as login shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MembershipView {
    pub tenant_id: Uuid,
    pub slug: String,
    pub name: String,
    pub status: String,
    pub role: String,
    pub token_epoch: i64,
}

/// The user's memberships in tenants that are not deleted or being deleted.
pub async fn memberships(db: impl PgExecutor<'_>, user: Uuid) -> Result<Vec<MembershipView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.id AS tenant_id, t.slug, t.name, t.status, m.role, m.token_epoch
         FROM memberships m JOIN tenants t ON t.id = m.tenant_id
         WHERE m.user_id = $1 AND t.status IN ('active', 'suspended')
         ORDER BY t.name, t.id",
    )
    .bind(user)
    .fetch_all(db)
    .await
}

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

/// The membership's token epoch if its tenant is active; `None` otherwise (no membership, or a
/// suspended or deleted company): what a signed-in call to the control plane is checked against.
pub async fn active_token_epoch(db: impl PgExecutor<'_>, user: Uuid, tenant: Uuid) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT m.token_epoch FROM memberships m JOIN tenants t ON t.id = m.tenant_id
         WHERE m.user_id = $1 AND m.tenant_id = $2 AND t.status = 'active'",
    )
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

/// One member of a tenant, as `GET /users` lists them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    pub role: String,
    pub created_at: time::OffsetDateTime,
    pub last_login_at: Option<time::OffsetDateTime>,
}

const MEMBER_COLUMNS: &str = "u.id, u.email, u.full_name, m.role, m.created_at, u.last_login_at";

pub async fn members(db: impl PgExecutor<'_>, tenant: Uuid) -> Result<Vec<MemberRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {MEMBER_COLUMNS} FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.tenant_id = $1 ORDER BY lower(u.full_name), u.id"
    )))
    .bind(tenant)
    .fetch_all(db)
    .await
}

pub async fn member(db: impl PgExecutor<'_>, tenant: Uuid, user: Uuid) -> Result<Option<MemberRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {MEMBER_COLUMNS} FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.tenant_id = $1 AND m.user_id = $2"
    )))
    .bind(tenant)
    .bind(user)
    .fetch_optional(db)
    .await
}

/// Whether `email` is a member of `tenant`.
pub async fn is_member_by_email(db: impl PgExecutor<'_>, tenant: Uuid, email: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id
                        WHERE m.tenant_id = $1 AND lower(u.email) = lower($2))",
    )
    .bind(tenant)
    .bind(email)
    .fetch_one(db)
    .await
}

/// Locks the tenant's admin memberships and counts them: a removal or demotion that checks
/// "not the last admin" under this lock cannot race another.
pub async fn lock_admins(db: impl PgExecutor<'_>, tenant: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_id FROM memberships WHERE tenant_id = $1 AND role = 'admin' FOR UPDATE")
        .bind(tenant)
        .fetch_all(db)
        .await
}

/// A new role, and a new token epoch: tokens issued with the old role stop working.
pub async fn set_role(db: impl PgExecutor<'_>, tenant: Uuid, user: Uuid, role: &str) -> Result<bool, sqlx::Error> {
    let changed = sqlx::query(
        "UPDATE memberships SET role = $3, token_epoch = nextval('membership_token_epochs')
         WHERE tenant_id = $1 AND user_id = $2",
    )
    .bind(tenant)
    .bind(user)
    .bind(role)
    .execute(db)
    .await?;
    Ok(changed.rows_affected() == 1)
}

pub async fn remove_membership(db: impl PgExecutor<'_>, tenant: Uuid, user: Uuid) -> Result<bool, sqlx::Error> {
    let removed = sqlx::query("DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2")
        .bind(tenant)
        .bind(user)
        .execute(db)
        .await?;
    Ok(removed.rows_affected() == 1)
}

/// A new password hash, and a new epoch on every membership: every token issued before ends.
pub async fn set_password(db: impl PgExecutor<'_>, user: Uuid, password_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH u AS (UPDATE users SET password_hash = $2 WHERE id = $1)
         UPDATE memberships SET token_epoch = nextval('membership_token_epochs') WHERE user_id = $1",
    )
    .bind(user)
    .bind(password_hash)
    .execute(db)
    .await?;
    Ok(())
}

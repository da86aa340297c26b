//! Invitations to join a company (`invitations`); codes are stored as keyed hashes only.

use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub role: String,
    pub full_name: Option<String>,
    pub status: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

const COLUMNS: &str = "id, tenant_id, email, role, full_name, status, created_at, expires_at";

pub struct NewInvitation<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: &'a str,
    pub role: &'a str,
    pub full_name: Option<&'a str>,
    pub code_hash: &'a [u8],
    pub invited_by: Option<Uuid>,
    pub expires_at: OffsetDateTime,
}

/// Inserts a pending invitation; a unique violation means one is pending for the address.
pub async fn insert(db: impl PgExecutor<'_>, new: NewInvitation<'_>) -> Result<InvitationRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO invitations (id, tenant_id, email, role, full_name, code_hash, invited_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    )))
    .bind(new.id)
    .bind(new.tenant_id)
    .bind(new.email)
    .bind(new.role)
    .bind(new.full_name)
    .bind(new.code_hash)
    .bind(new.invited_by)
    .bind(new.expires_at)
    .fetch_one(db)
    .await
}

/// Pending invitations of a tenant, newest first (expired ones included, marked by the caller).
pub async fn pending(db: impl PgExecutor<'_>, tenant: Uuid) -> Result<Vec<InvitationRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM invitations WHERE tenant_id = $1 AND status = 'pending' ORDER BY created_at DESC, id"
    )))
    .bind(tenant)
    .fetch_all(db)
    .await
}

pub async fn get_for_update(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    id: Uuid,
) -> Result<Option<InvitationRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM invitations WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The invitation a code belongs to, locked: whatever its state (the caller says why it fails).
pub async fn by_code_for_update(
    db: impl PgExecutor<'_>,
    code_hash: &[u8],
) -> Result<Option<InvitationRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM invitations WHERE code_hash = $1 FOR UPDATE")))
        .bind(code_hash)
        .fetch_optional(db)
        .await
}

pub async fn set_status(db: impl PgExecutor<'_>, id: Uuid, status: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE invitations SET status = $2 WHERE id = $1").bind(id).bind(status).execute(db).await?;
    Ok(())
}

pub async fn mark_accepted(db: impl PgExecutor<'_>, id: Uuid, user: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE invitations SET status = 'accepted', accepted_at = now(), accepted_by = $2 WHERE id = $1")
        .bind(id)
        .bind(user)
        .execute(db)
        .await?;
    Ok(())
}

/// A new code and expiry (resend): the old code stops working.
pub async fn renew(
    db: impl PgExecutor<'_>,
    id: Uuid,
    code_hash: &[u8],
    expires_at: OffsetDateTime,
) -> Result<InvitationRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE invitations SET code_hash = $2, expires_at = $3 WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(code_hash)
    .bind(expires_at)
    .fetch_one(db)
    .await
}

/// Pending invitations past their expiry stop blocking a new one for the same address.
pub async fn expire_stale(db: impl PgExecutor<'_>, tenant: Uuid, email: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE invitations SET status = 'revoked'
         WHERE tenant_id = $1 AND lower(email) = lower($2) AND status = 'pending' AND expires_at <= now()",
    )
    .bind(tenant)
    .bind(email)
    .execute(db)
    .await?;
    Ok(())
}

//! Refresh tokens (`refresh_tokens`), one family per sign-in, kept as keyed hashes.

use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshRow {
    pub id: Uuid,
    pub family: Uuid,
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    family: Uuid,
    user: Uuid,
    tenant: Uuid,
    token_hash: &[u8],
    expires_at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, family, user_id, tenant_id, token_hash, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::new_v4())
    .bind(family)
    .bind(user)
    .bind(tenant)
    .bind(token_hash)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// The token's row, with every row of its family locked first, in `id` order: a refresh, a
/// reuse and a sign-out of the same sign-in then queue one behind the other instead of each
/// locking its own token and deadlocking over the rest of the family.
pub async fn by_hash_for_update(
    db: &mut sqlx::PgConnection,
    token_hash: &[u8],
) -> Result<Option<RefreshRow>, sqlx::Error> {
    sqlx::query(
        "SELECT id FROM refresh_tokens
         WHERE family = (SELECT family FROM refresh_tokens WHERE token_hash = $1)
         ORDER BY id FOR UPDATE",
    )
    .bind(token_hash)
    .execute(&mut *db)
    .await?;
    sqlx::query_as(
        "SELECT id, family, user_id, tenant_id, expires_at, used_at, revoked_at
         FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(token_hash)
    .fetch_optional(&mut *db)
    .await
}

pub async fn mark_used(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE refresh_tokens SET used_at = now() WHERE id = $1").bind(id).execute(db).await?;
    Ok(())
}

pub async fn revoke_family(db: impl PgExecutor<'_>, family: Uuid) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("UPDATE refresh_tokens SET revoked_at = now() WHERE family = $1 AND revoked_at IS NULL")
        .bind(family)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Every sign-in of `user` (in `tenant`, or everywhere) ends: removals, role and password changes.
pub async fn revoke_user(db: impl PgExecutor<'_>, user: Uuid, tenant: Option<Uuid>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now()
         WHERE user_id = $1 AND ($2::uuid IS NULL OR tenant_id = $2) AND revoked_at IS NULL",
    )
    .bind(user)
    .bind(tenant)
    .execute(db)
    .await?;
    Ok(())
}

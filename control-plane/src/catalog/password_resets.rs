//! Password reset codes (`password_resets`), stored as keyed hashes, single use.

use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

pub async fn insert(
    db: impl PgExecutor<'_>,
    user: Uuid,
    code_hash: &[u8],
    expires_at: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO password_resets (id, user_id, code_hash, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(Uuid::new_v4())
        .bind(user)
        .bind(code_hash)
        .bind(expires_at)
        .execute(db)
        .await?;
    Ok(())
}

/// Uses the code if it is unused and unexpired: returns its user, or `None` (and nothing changes).
pub async fn take(db: impl PgExecutor<'_>, code_hash: &[u8]) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE password_resets SET used_at = now()
         WHERE code_hash = $1 AND used_at IS NULL AND expires_at > now() RETURNING user_id",
    )
    .bind(code_hash)
    .fetch_optional(db)
    .await
}

/// Any other codes of the user stop working (after a reset or a change).
pub async fn void_for_user(db: impl PgExecutor<'_>, user: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE password_resets SET used_at = now() WHERE user_id = $1 AND used_at IS NULL")
        .bind(user)
        .execute(db)
        .await?;
    Ok(())
}

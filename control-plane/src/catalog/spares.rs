//! Catalog rows of spare tenant databases (see `provision::spares`).

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::domain::TenantId;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SpareRow {
    pub id: Uuid,
    pub server_id: Uuid,
    pub status: String,
}

impl SpareRow {
    /// The tenant id the spare is adopted under; its database and role carry this id's names.
    pub fn tenant_id(&self) -> TenantId {
        TenantId(self.id)
    }
}

pub async fn insert_creating(db: impl PgExecutor<'_>, id: TenantId, server_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO spare_databases (id, server_id, status) VALUES ($1, $2, 'creating')")
        .bind(id.0)
        .bind(server_id)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn mark_ready(db: impl PgExecutor<'_>, id: TenantId) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE spare_databases SET status = 'ready', ready_at = now() WHERE id = $1 AND status = 'creating'")
        .bind(id.0)
        .execute(db)
        .await?;
    Ok(())
}

/// Takes the oldest ready spare of a server, deleting its row: call it in the transaction that
/// inserts the adopting tenant's row, so the database changes hands atomically. `SKIP LOCKED`
/// lets concurrent signups take different spares instead of queueing on one.
pub async fn claim(db: impl PgExecutor<'_>, server_id: Uuid) -> Result<Option<TenantId>, sqlx::Error> {
    let id: Option<Uuid> = sqlx::query_scalar(
        "DELETE FROM spare_databases WHERE id = (
             SELECT id FROM spare_databases WHERE server_id = $1 AND status = 'ready'
             ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id",
    )
    .bind(server_id)
    .fetch_optional(db)
    .await?;
    Ok(id.map(TenantId))
}

/// Retires every ready spare of a server. Called while the server's template lock is held
/// exclusively, right after its template changed: the spares are copies of the old template.
pub async fn retire_all(db: impl PgExecutor<'_>, server_id: Uuid) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("UPDATE spare_databases SET status = 'retired' WHERE server_id = $1 AND status = 'ready'")
        .bind(server_id)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Retires the newest ready spares of a server beyond `keep` (the pool was made smaller).
pub async fn retire_surplus(db: impl PgExecutor<'_>, server_id: Uuid, keep: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE spare_databases SET status = 'retired' WHERE id IN (
             SELECT id FROM spare_databases WHERE server_id = $1 AND status = 'ready'
             ORDER BY created_at, id OFFSET $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(server_id)
    .bind(keep)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// How many ready spares a server has.
pub async fn ready_count(db: impl PgExecutor<'_>, server_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM spare_databases WHERE server_id = $1 AND status = 'ready'")
        .bind(server_id)
        .fetch_one(db)
        .await
}

/// Spares to drop: retired ones, and ones still `creating` (the caller checks their creator
/// is gone).
pub async fn unfinished(db: impl PgExecutor<'_>) -> Result<Vec<SpareRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, server_id, status FROM spare_databases
         WHERE status IN ('creating', 'retired') ORDER BY created_at, id",
    )
    .fetch_all(db)
    .await
}

pub async fn get(db: impl PgExecutor<'_>, id: TenantId) -> Result<Option<SpareRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, server_id, status FROM spare_databases WHERE id = $1")
        .bind(id.0)
        .fetch_optional(db)
        .await
}

pub async fn delete(db: impl PgExecutor<'_>, id: TenantId) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM spare_databases WHERE id = $1").bind(id.0).execute(db).await?;
    Ok(())
}

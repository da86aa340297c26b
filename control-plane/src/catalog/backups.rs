//! Catalog rows of tenant backups (table `backups`).

use serde_json::Value;
use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BackupRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub kind: String,
    pub status: String,
    pub actor: String,
    pub file: String,
    pub manifest: Option<Value>,
    pub error: Option<String>,
    pub started_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
}

const COLUMNS: &str = "id, tenant_id, kind, status, actor, file, manifest, error, started_at, finished_at";

pub async fn insert_running(
    db: impl PgExecutor<'_>,
    id: Uuid,
    tenant_id: Uuid,
    kind: &str,
    actor: &str,
    file: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO backups (id, tenant_id, kind, status, actor, file) VALUES ($1, $2, $3, 'running', $4, $5)",
    )
    .bind(id)
    .bind(tenant_id)
    .bind(kind)
    .bind(actor)
    .bind(file)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<BackupRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM backups WHERE id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// A tenant's backups, newest first.
pub async fn for_tenant(db: impl PgExecutor<'_>, tenant_id: Uuid, limit: i64) -> Result<Vec<BackupRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM backups WHERE tenant_id = $1 ORDER BY started_at DESC, id DESC LIMIT $2"
    )))
    .bind(tenant_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

pub async fn running(db: impl PgExecutor<'_>) -> Result<Vec<BackupRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM backups WHERE status = 'running'")))
        .fetch_all(db)
        .await
}

/// Records a finished backup; false when it was no longer running (settled by recovery).
pub async fn finish_done(db: impl PgExecutor<'_>, id: Uuid, manifest: &Value) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE backups SET status = 'done', manifest = $2, finished_at = now() WHERE id = $1 AND status = 'running'",
    )
    .bind(id)
    .bind(manifest)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn finish_failed(db: impl PgExecutor<'_>, id: Uuid, error: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE backups SET status = 'failed', error = $2, finished_at = now() WHERE id = $1 AND status = 'running'",
    )
    .bind(id)
    .bind(error)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

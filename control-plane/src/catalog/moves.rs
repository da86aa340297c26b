//! Catalog rows of tenant moves between servers (table `moves`, see `crate::moves`).

use serde_json::Value;
use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MoveRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub source_server: Uuid,
    pub target_server: Uuid,
    pub source_database: String,
    pub target_database: String,
    pub state: String,
    pub steps: Value,
    pub drop_source: bool,
    pub was_in_maintenance: bool,
    pub maintenance_message: Option<String>,
    pub actor: String,
    pub error: Option<String>,
    pub fence_ms: Option<i32>,
    pub source_dropped_at: Option<OffsetDateTime>,
    pub started_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
}

const COLUMNS: &str = "id, tenant_id, source_server, target_server, source_database, target_database, state, \
    steps, drop_source, was_in_maintenance, maintenance_message, actor, error, fence_ms, source_dropped_at, \
    started_at, finished_at";

/// What a new move records before anything is created.
pub struct NewMove<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub target_server: Uuid,
    pub target_database: &'a str,
    pub drop_source: bool,
    pub actor: &'a str,
}

/// Inserts a move in state `copying`, taking the tenant's current route and maintenance from
/// its row in the same statement. A unique violation means another move of the tenant runs.
pub async fn insert(db: impl PgExecutor<'_>, m: &NewMove<'_>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO moves (id, tenant_id, source_server, target_server, source_database, target_database, state,
                            steps, drop_source, was_in_maintenance, maintenance_message, actor)
         SELECT $1, id, server_id, $3, database_name, $4, 'copying',
                jsonb_build_array(jsonb_build_object('step', 'recorded', 'at', now())), $5,
                maintenance_mode, maintenance_message, $6
         FROM tenants WHERE id = $2 AND status IN ('active', 'suspended')",
    )
    .bind(m.id)
    .bind(m.tenant_id)
    .bind(m.target_server)
    .bind(m.target_database)
    .bind(m.drop_source)
    .bind(m.actor)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<MoveRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM moves WHERE id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn for_tenant(db: impl PgExecutor<'_>, tenant: Uuid, limit: i64) -> Result<Vec<MoveRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM moves WHERE tenant_id = $1 ORDER BY started_at DESC LIMIT $2"
    )))
    .bind(tenant)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Moves not yet settled (`copying`, `fenced`, `switched`).
pub async fn unsettled(db: impl PgExecutor<'_>) -> Result<Vec<MoveRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM moves WHERE state IN ('copying', 'fenced', 'switched') ORDER BY started_at"
    )))
    .fetch_all(db)
    .await
}

/// Done moves whose source database is still kept and which finished before `before`.
pub async fn sources_kept_before(db: impl PgExecutor<'_>, before: OffsetDateTime) -> Result<Vec<MoveRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM moves WHERE state = 'done' AND source_dropped_at IS NULL AND finished_at < $1"
    )))
    .bind(before)
    .fetch_all(db)
    .await
}

/// Appends a step (and optionally a new state) to a move.
pub async fn step(db: impl PgExecutor<'_>, id: Uuid, step: &str, state: Option<&str>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE moves SET steps = steps || jsonb_build_array(jsonb_build_object('step', $2::text, 'at', now())),
                          state = coalesce($3, state)
         WHERE id = $1",
    )
    .bind(id)
    .bind(step)
    .bind(state)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn finish(db: impl PgExecutor<'_>, id: Uuid, state: &str, error: Option<&str>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE moves SET state = $2, error = coalesce($3, error), finished_at = now(),
                          steps = steps || jsonb_build_array(jsonb_build_object('step', $2::text, 'at', now()))
         WHERE id = $1 AND state IN ('copying', 'fenced', 'switched')",
    )
    .bind(id)
    .bind(state)
    .bind(error)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn set_fence_ms(db: impl PgExecutor<'_>, id: Uuid, ms: i32) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE moves SET fence_ms = $2 WHERE id = $1").bind(id).bind(ms).execute(db).await?;
    Ok(())
}

pub async fn source_dropped(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE moves SET source_dropped_at = now() WHERE id = $1").bind(id).execute(db).await?;
    Ok(())
}

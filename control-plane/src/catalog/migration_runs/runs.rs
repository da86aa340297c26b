//! A run's own row (`migration_runs`): created, read, moved from state to state.

use serde_json::Value;
use sqlx::{PgExecutor, PgPool, Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::migrations::status::RunState;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunRow {
    pub id: Uuid,
    pub state: RunState,
    pub dry_run: bool,
    pub target_version: i32,
    pub concurrency: i32,
    pub per_server_concurrency: i32,
    pub canary_count: i32,
    pub failure_policy: String,
    pub max_failures: i32,
    pub lock_timeout_ms: i32,
    pub statement_timeout_ms: i32,
    pub stop_reason: Option<String>,
    pub templates: Value,
    pub created_by: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
}

const RUN_COLUMNS: &str = "id, state, dry_run, target_version, concurrency, per_server_concurrency, canary_count, \
    failure_policy, max_failures, lock_timeout_ms, statement_timeout_ms, stop_reason, templates, created_by, \
    created_at, updated_at, finished_at";

/// A run as created: its parameters.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub id: Uuid,
    pub dry_run: bool,
    pub target_version: i32,
    pub concurrency: i32,
    pub per_server_concurrency: i32,
    pub canary_count: i32,
    pub failure_policy: &'a str,
    pub max_failures: i32,
    pub lock_timeout_ms: i32,
    pub statement_timeout_ms: i32,
    pub created_by: &'a str,
}

/// Serialises run creation across control-plane replicas (with the unique index on open runs).
const CREATE_LOCK_KEY: i64 = 0x6d69_6772_6174_6531;

pub async fn lock_creation(tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(CREATE_LOCK_KEY).execute(&mut **tx).await?;
    Ok(())
}

pub async fn insert_run(db: impl PgExecutor<'_>, run: &NewRun<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO migration_runs (id, state, dry_run, target_version, concurrency, per_server_concurrency,
             canary_count, failure_policy, max_failures, lock_timeout_ms, statement_timeout_ms, created_by)
         VALUES ($1, 'running', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(run.id)
    .bind(run.dry_run)
    .bind(run.target_version)
    .bind(run.concurrency)
    .bind(run.per_server_concurrency)
    .bind(run.canary_count)
    .bind(run.failure_policy)
    .bind(run.max_failures)
    .bind(run.lock_timeout_ms)
    .bind(run.statement_timeout_ms)
    .bind(run.created_by)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get_run(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<RunRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {RUN_COLUMNS} FROM migration_runs WHERE id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The open run that changes databases, if any (there is at most one).
pub async fn open_run(db: impl PgExecutor<'_>) -> Result<Option<RunRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM migration_runs
         WHERE NOT dry_run AND state IN ('running', 'paused', 'cancelling', 'interrupted')"
    )))
    .fetch_optional(db)
    .await
}

/// Runs in `states`, oldest first.
pub async fn runs_in(db: impl PgExecutor<'_>, states: &[RunState]) -> Result<Vec<RunRow>, sqlx::Error> {
    let states: Vec<&str> = states.iter().map(RunState::as_str).collect();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM migration_runs WHERE state = ANY($1) ORDER BY created_at, id"
    )))
    .bind(&states)
    .fetch_all(db)
    .await
}

/// The newest runs first; `before` pages back (a run id).
pub async fn list_runs(db: &PgPool, before: Option<Uuid>, limit: i64) -> Result<Vec<RunRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM migration_runs
         WHERE $1::uuid IS NULL OR (created_at, id) < (SELECT created_at, id FROM migration_runs WHERE id = $1)
         ORDER BY created_at DESC, id DESC LIMIT $2"
    )))
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Moves a run from one of `from` to `to`; false when it was in none of them (someone else
/// moved it first). A final state stamps `finished_at`; `reason` replaces the stop reason when
/// given; going (back) to `running` clears both.
pub async fn transition(
    db: impl PgExecutor<'_>,
    id: Uuid,
    from: &[RunState],
    to: RunState,
    reason: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let from: Vec<&str> = from.iter().map(RunState::as_str).collect();
    let done = sqlx::query(
        "UPDATE migration_runs SET state = $3, updated_at = now(),
             stop_reason = CASE WHEN $3 = 'running' THEN NULL ELSE coalesce($4, stop_reason) END,
             finished_at = CASE WHEN $3 IN ('cancelled', 'stopped', 'completed') THEN now() ELSE NULL END
         WHERE id = $1 AND state = ANY($2)",
    )
    .bind(id)
    .bind(&from)
    .bind(to.as_str())
    .bind(reason)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn state_of(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<RunState>, sqlx::Error> {
    sqlx::query_scalar("SELECT state FROM migration_runs WHERE id = $1").bind(id).fetch_optional(db).await
}

pub async fn set_templates(db: impl PgExecutor<'_>, id: Uuid, templates: &Value) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE migration_runs SET templates = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(templates)
        .execute(db)
        .await?;
    Ok(())
}

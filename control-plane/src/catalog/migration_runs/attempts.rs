//! Every attempt of every migration on every database (`migration_attempts`).

use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::migrations::status::AttemptStatus;

/// One migration of an attempt, as it is recorded.
#[derive(Debug, Clone)]
pub struct AttemptStep {
    pub version: i32,
    pub name: String,
    pub status: AttemptStatus,
    pub started_at: Option<OffsetDateTime>,
    pub duration_ms: Option<f64>,
    pub error: Option<String>,
}

/// Where an attempt ran.
#[derive(Debug, Clone)]
pub struct AttemptTarget {
    pub run: Uuid,
    pub tenant: Option<Uuid>,
    pub server: Uuid,
    pub database: String,
    pub attempt: i32,
}

/// Records the migrations of an attempt as `running`; returns their ids, in order.
pub async fn start_attempts(
    db: impl PgExecutor<'_>,
    at: &AttemptTarget,
    steps: &[(i32, String)],
) -> Result<Vec<i64>, sqlx::Error> {
    let versions: Vec<i32> = steps.iter().map(|s| s.0).collect();
    let names: Vec<&str> = steps.iter().map(|s| s.1.as_str()).collect();
    sqlx::query_scalar(
        "INSERT INTO migration_attempts (run_id, tenant_id, server_id, database_name, attempt, version, name, status)
         SELECT $1, $2, $3, $4, $5, s.version, s.name, 'running'
         FROM unnest($6::int[], $7::text[]) WITH ORDINALITY AS s (version, name, ord)
         ORDER BY s.ord
         RETURNING id",
    )
    .bind(at.run)
    .bind(at.tenant)
    .bind(at.server)
    .bind(&at.database)
    .bind(at.attempt)
    .bind(&versions)
    .bind(&names)
    .fetch_all(db)
    .await
}

/// Records the outcome of attempts started with [`start_attempts`] (`ids[i]` ↔ `steps[i]`).
pub async fn finish_attempts(db: impl PgExecutor<'_>, ids: &[i64], steps: &[AttemptStep]) -> Result<(), sqlx::Error> {
    let statuses: Vec<&str> = steps.iter().map(|s| s.status.as_str()).collect();
    let started: Vec<Option<OffsetDateTime>> = steps.iter().map(|s| s.started_at).collect();
    let durations: Vec<Option<f64>> = steps.iter().map(|s| s.duration_ms).collect();
    let errors: Vec<Option<&str>> = steps.iter().map(|s| s.error.as_deref()).collect();
    sqlx::query(
        "UPDATE migration_attempts a SET status = s.status, started_at = coalesce(s.started_at, a.started_at),
                finished_at = now(), duration_ms = s.duration_ms, error = s.error
         FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::float8[], $5::text[])
              AS s (id, status, started_at, duration_ms, error)
         WHERE a.id = s.id",
    )
    .bind(ids)
    .bind(&statuses)
    .bind(&started)
    .bind(&durations)
    .bind(&errors)
    .execute(db)
    .await?;
    Ok(())
}

/// Records finished attempts in one go (template databases: known only afterwards).
pub async fn record_attempts(
    conn: &mut sqlx::PgConnection,
    at: &AttemptTarget,
    steps: &[AttemptStep],
) -> Result<(), sqlx::Error> {
    let pairs: Vec<(i32, String)> = steps.iter().map(|s| (s.version, s.name.clone())).collect();
    let ids = start_attempts(&mut *conn, at, &pairs).await?;
    finish_attempts(&mut *conn, &ids, steps).await
}

/// Attempts still `running` of one tenant in one run (left by a dead engine): (id, version).
pub async fn running_attempts(
    db: impl PgExecutor<'_>,
    run: Uuid,
    tenant: Uuid,
) -> Result<Vec<(i64, i32)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, version FROM migration_attempts
         WHERE run_id = $1 AND tenant_id = $2 AND status = 'running' ORDER BY id",
    )
    .bind(run)
    .bind(tenant)
    .fetch_all(db)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub id: i64,
    pub tenant_id: Option<Uuid>,
    pub server_id: Uuid,
    pub database_name: String,
    pub attempt: i32,
    pub version: i32,
    pub name: String,
    pub status: AttemptStatus,
    pub started_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
    pub duration_ms: Option<f64>,
    pub error: Option<String>,
}

/// A run's attempts in order, optionally for one tenant, after attempt id `after`.
pub async fn attempts(
    db: impl PgExecutor<'_>,
    run: Uuid,
    tenant: Option<Uuid>,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<AttemptRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, tenant_id, server_id, database_name, attempt, version, name, status, started_at, finished_at,
                duration_ms, error
         FROM migration_attempts
         WHERE run_id = $1 AND ($2::uuid IS NULL OR tenant_id = $2) AND ($3::bigint IS NULL OR id > $3)
         ORDER BY id LIMIT $4",
    )
    .bind(run)
    .bind(tenant)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

//! What a run amounts to: its tenants counted by status, and where their time went.

use sqlx::PgExecutor;
use uuid::Uuid;

/// How many of a run's tenants are in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct RunTotals {
    pub tenants: i64,
    pub pending: i64,
    pub running: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub drifted: i64,
    pub skipped: i64,
    pub planned: i64,
}

pub async fn totals(db: impl PgExecutor<'_>, run: Uuid) -> Result<RunTotals, sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*) AS tenants,
                count(*) FILTER (WHERE status = 'pending') AS pending,
                count(*) FILTER (WHERE status = 'running') AS running,
                count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
                count(*) FILTER (WHERE status = 'failed') AS failed,
                count(*) FILTER (WHERE status = 'drifted') AS drifted,
                count(*) FILTER (WHERE status = 'skipped') AS skipped,
                count(*) FILTER (WHERE status = 'planned') AS planned
         FROM migration_run_tenants WHERE run_id = $1",
    )
    .bind(run)
    .fetch_one(db)
    .await
}

/// Where the time of a run's tenant attempts went: per phase, the sum and the median (ms).
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct TimingSummary {
    pub tenants_timed: i64,
    pub connect_total: Option<f64>,
    pub connect_p50: Option<f64>,
    pub lock_total: Option<f64>,
    pub lock_p50: Option<f64>,
    pub flag_total: Option<f64>,
    pub flag_p50: Option<f64>,
    pub ddl_total: Option<f64>,
    pub ddl_p50: Option<f64>,
    pub commit_total: Option<f64>,
    pub commit_p50: Option<f64>,
    pub attempt_total: Option<f64>,
    pub attempt_p50: Option<f64>,
    pub attempt_p95: Option<f64>,
}

pub async fn timing_summary(db: impl PgExecutor<'_>, run: Uuid) -> Result<TimingSummary, sqlx::Error> {
    sqlx::query_as(
        "WITH t AS (
             SELECT (timings->>'connect_ms')::float8 AS connect, (timings->>'lock_ms')::float8 AS lock,
                    (timings->>'flag_ms')::float8 AS flag, (timings->>'ddl_ms')::float8 AS ddl,
                    (timings->>'commit_ms')::float8 AS commit, duration_ms AS total
             FROM migration_run_tenants WHERE run_id = $1 AND timings IS NOT NULL)
         SELECT count(*) AS tenants_timed,
                sum(connect) AS connect_total, percentile_cont(0.5) WITHIN GROUP (ORDER BY connect) AS connect_p50,
                sum(lock) AS lock_total, percentile_cont(0.5) WITHIN GROUP (ORDER BY lock) AS lock_p50,
                sum(flag) AS flag_total, percentile_cont(0.5) WITHIN GROUP (ORDER BY flag) AS flag_p50,
                sum(ddl) AS ddl_total, percentile_cont(0.5) WITHIN GROUP (ORDER BY ddl) AS ddl_p50,
                sum(commit) AS commit_total, percentile_cont(0.5) WITHIN GROUP (ORDER BY commit) AS commit_p50,
                sum(total) AS attempt_total, percentile_cont(0.5) WITHIN GROUP (ORDER BY total) AS attempt_p50,
                percentile_cont(0.95) WITHIN GROUP (ORDER BY total) AS attempt_p95
         FROM t",
    )
    .bind(run)
    .fetch_one(db)
    .await
}

//! Catalog rows of bulk migration runs (`migration_runs`), of each tenant's place in a run
//! (`migration_run_tenants`) and of every attempt of every migration (`migration_attempts`).
//! The tenant-side flag the router honours (`tenants.migrating`) is set and cleared here too,
//! in the same transactions that record a tenant's attempt.

use serde_json::Value;
use sqlx::{PgExecutor, PgPool, Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::migrations::status::{AttemptStatus, RunState, RunTenantStatus};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunRow {
    pub id: Uuid,
    pub state: String,
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

/// Adds the run's tenants; `tenants[i]` gets position `i`.
pub async fn insert_run_tenants(
    db: impl PgExecutor<'_>,
    run: Uuid,
    tenants: &[(Uuid, Uuid, bool)],
) -> Result<(), sqlx::Error> {
    let ids: Vec<Uuid> = tenants.iter().map(|t| t.0).collect();
    let servers: Vec<Uuid> = tenants.iter().map(|t| t.1).collect();
    let canaries: Vec<bool> = tenants.iter().map(|t| t.2).collect();
    sqlx::query(
        "INSERT INTO migration_run_tenants (run_id, tenant_id, server_id, canary, position)
         SELECT $1, t.id, t.server, t.canary, (t.ord - 1)::int
         FROM unnest($2::uuid[], $3::uuid[], $4::bool[]) WITH ORDINALITY AS t (id, server, canary, ord)",
    )
    .bind(run)
    .bind(&ids)
    .bind(&servers)
    .bind(&canaries)
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

pub async fn state_of(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<String>, sqlx::Error> {
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

/// A tenant's row in a run, with the tenant's slug.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunTenantRow {
    pub tenant_id: Uuid,
    pub slug: String,
    pub position: i32,
    pub canary: bool,
    pub server_id: Uuid,
    pub status: String,
    pub from_version: Option<i32>,
    pub to_version: Option<i32>,
    pub pending: Value,
    pub attempts: i32,
    pub error: Option<String>,
    pub timings: Option<Value>,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub duration_ms: Option<f64>,
}

/// A run's tenants in position order, optionally in one status, after position `after`.
pub async fn run_tenants(
    db: impl PgExecutor<'_>,
    run: Uuid,
    status: Option<&str>,
    after: Option<i32>,
    limit: i64,
) -> Result<Vec<RunTenantRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.tenant_id, t.slug, r.position, r.canary, r.server_id, r.status, r.from_version, r.to_version,
                r.pending, r.attempts, r.error, r.timings, r.started_at, r.finished_at, r.duration_ms
         FROM migration_run_tenants r JOIN tenants t ON t.id = r.tenant_id
         WHERE r.run_id = $1 AND ($2::text IS NULL OR r.status = $2) AND ($3::int IS NULL OR r.position > $3)
         ORDER BY r.position LIMIT $4",
    )
    .bind(run)
    .bind(status)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// What the engine needs to migrate one tenant of a run.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WorkRow {
    pub tenant_id: Uuid,
    pub slug: String,
    pub tenant_status: String,
    pub server_id: Uuid,
    pub database_name: String,
    pub role_name: String,
    pub position: i32,
    pub canary: bool,
    pub attempts: i32,
}

/// The run's tenants in `status`, in position order; only canaries or only the rest.
pub async fn work(
    db: impl PgExecutor<'_>,
    run: Uuid,
    status: RunTenantStatus,
    canary: bool,
) -> Result<Vec<WorkRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.tenant_id, t.slug, t.status AS tenant_status, t.server_id, t.database_name, t.role_name,
                r.position, r.canary, r.attempts
         FROM migration_run_tenants r JOIN tenants t ON t.id = r.tenant_id
         WHERE r.run_id = $1 AND r.status = $2 AND r.canary = $3
         ORDER BY r.position",
    )
    .bind(run)
    .bind(status.as_str())
    .bind(canary)
    .fetch_all(db)
    .await
}

/// Rows left `running` (by a dead engine), in any run or in one.
pub async fn running_rows(db: impl PgExecutor<'_>, run: Option<Uuid>) -> Result<Vec<(Uuid, WorkRow)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        run_id: Uuid,
        #[sqlx(flatten)]
        work: WorkRow,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT r.run_id, r.tenant_id, t.slug, t.status AS tenant_status, t.server_id, t.database_name, t.role_name,
                r.position, r.canary, r.attempts
         FROM migration_run_tenants r JOIN tenants t ON t.id = r.tenant_id
         WHERE r.status = 'running' AND ($1::uuid IS NULL OR r.run_id = $1)
         ORDER BY r.run_id, r.position",
    )
    .bind(run)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.run_id, r.work)).collect())
}

/// The non-succeeded canaries of a run: (slug, status, error).
pub async fn unsuccessful_canaries(
    db: impl PgExecutor<'_>,
    run: Uuid,
) -> Result<Vec<(String, String, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.slug, r.status, r.error FROM migration_run_tenants r JOIN tenants t ON t.id = r.tenant_id
         WHERE r.run_id = $1 AND r.canary AND r.status NOT IN ('succeeded', 'skipped') ORDER BY r.position",
    )
    .bind(run)
    .fetch_all(db)
    .await
}

/// Failed tenants go back to `pending` (their attempts stay recorded); returns how many.
pub async fn reset_failed(db: impl PgExecutor<'_>, run: Uuid) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE migration_run_tenants SET status = 'pending', error = NULL WHERE run_id = $1 AND status = 'failed'",
    )
    .bind(run)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

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
    pub status: String,
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

// ---------------------------------------------------------------------------------------------
// A tenant's attempt, as the engine records it: one statement (one round trip, one commit) to
// begin, one to end.

/// The tenant's migration begins: the router lock (`tenants.migrating`, announced by the
/// catalog trigger), the run row `running`, and its migrations' attempts `running`, committed
/// together. Returns the attempts' ids, in order.
pub async fn begin_tenant(
    db: impl PgExecutor<'_>,
    at: &AttemptTarget,
    from_version: Option<i32>,
    steps: &[(i32, String)],
) -> Result<Vec<i64>, sqlx::Error> {
    let tenant = at.tenant.expect("a tenant's attempt");
    let versions: Vec<i32> = steps.iter().map(|s| s.0).collect();
    let names: Vec<&str> = steps.iter().map(|s| s.1.as_str()).collect();
    sqlx::query_scalar(
        "WITH flag AS (
             UPDATE tenants SET migrating = true, updated_at = now() WHERE id = $2
         ), run AS (
             UPDATE migration_run_tenants
             SET status = 'running', attempts = attempts + 1, from_version = $6, to_version = NULL, error = NULL,
                 started_at = now(), finished_at = NULL, duration_ms = NULL, timings = NULL
             WHERE run_id = $1 AND tenant_id = $2
         )
         INSERT INTO migration_attempts (run_id, tenant_id, server_id, database_name, attempt, version, name, status)
         SELECT $1, $2, $3, $4, $5, s.version, s.name, 'running'
         FROM unnest($7::int[], $8::text[]) WITH ORDINALITY AS s (version, name, ord)
         ORDER BY s.ord
         RETURNING id",
    )
    .bind(at.run)
    .bind(tenant)
    .bind(at.server)
    .bind(&at.database)
    .bind(at.attempt)
    .bind(from_version)
    .bind(&versions)
    .bind(&names)
    .fetch_all(db)
    .await
}

/// How a tenant's turn in a run ended.
#[derive(Debug, Clone)]
pub struct TenantEnd {
    pub status: RunTenantStatus,
    pub from_version: Option<i32>,
    pub to_version: Option<i32>,
    pub error: Option<String>,
    pub timings: Option<Value>,
    pub duration_ms: Option<f64>,
    /// The schema version to record on the tenant (its database's actual version), if known.
    pub schema_version: Option<i32>,
    /// Counts as an attempt (the tenant was not `begin_tenant`ed).
    pub count_attempt: bool,
}

/// The tenant's turn ends: its run row, the outcome of its attempts (`ids[i]` ↔ `steps[i]`),
/// its catalog schema version, and the router lock cleared, in one statement.
pub async fn end_tenant(
    db: impl PgExecutor<'_>,
    run: Uuid,
    tenant: Uuid,
    end: &TenantEnd,
    ids: &[i64],
    steps: &[AttemptStep],
) -> Result<(), sqlx::Error> {
    let statuses: Vec<&str> = steps.iter().map(|s| s.status.as_str()).collect();
    let started: Vec<Option<OffsetDateTime>> = steps.iter().map(|s| s.started_at).collect();
    let durations: Vec<Option<f64>> = steps.iter().map(|s| s.duration_ms).collect();
    let errors: Vec<Option<&str>> = steps.iter().map(|s| s.error.as_deref()).collect();
    sqlx::query(
        "WITH unflag AS (
             UPDATE tenants SET migrating = false, schema_version = coalesce($9, schema_version), updated_at = now()
             WHERE id = $2 AND (migrating OR schema_version IS DISTINCT FROM coalesce($9, schema_version))
         ), attempts AS (
             UPDATE migration_attempts a
             SET status = s.status, started_at = coalesce(s.started_at, a.started_at), finished_at = now(),
                 duration_ms = s.duration_ms, error = s.error
             FROM unnest($11::bigint[], $12::text[], $13::timestamptz[], $14::float8[], $15::text[])
                  AS s (id, status, started_at, duration_ms, error)
             WHERE a.id = s.id
         )
         UPDATE migration_run_tenants
         SET status = $3, from_version = coalesce($4, from_version), to_version = $5, error = $6, timings = $7,
             duration_ms = $8, finished_at = now(), started_at = coalesce(started_at, now()),
             attempts = attempts + CASE WHEN $10 THEN 1 ELSE 0 END
         WHERE run_id = $1 AND tenant_id = $2",
    )
    .bind(run)
    .bind(tenant)
    .bind(end.status.as_str())
    .bind(end.from_version)
    .bind(end.to_version)
    .bind(&end.error)
    .bind(&end.timings)
    .bind(end.duration_ms)
    .bind(end.schema_version)
    .bind(end.count_attempt)
    .bind(ids)
    .bind(&statuses)
    .bind(&started)
    .bind(&durations)
    .bind(&errors)
    .execute(db)
    .await?;
    Ok(())
}

/// A dry run's finding for one tenant.
pub async fn record_plan(
    db: impl PgExecutor<'_>,
    run: Uuid,
    tenant: Uuid,
    status: RunTenantStatus,
    from_version: Option<i32>,
    pending: &Value,
    reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE migration_run_tenants
         SET status = $3, from_version = $4, to_version = NULL, pending = $5, error = $6,
             started_at = coalesce(started_at, now()), finished_at = now()
         WHERE run_id = $1 AND tenant_id = $2",
    )
    .bind(run)
    .bind(tenant)
    .bind(status.as_str())
    .bind(from_version)
    .bind(pending)
    .bind(reason)
    .execute(db)
    .await?;
    Ok(())
}

/// Tenants flagged `migrating` (the router refuses them).
pub async fn migrating_tenants(db: impl PgExecutor<'_>) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM tenants WHERE migrating ORDER BY id").fetch_all(db).await
}

/// Clears a tenant's router lock, recording its schema version when known.
pub async fn clear_migrating(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    schema_version: Option<i32>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE tenants SET migrating = false, schema_version = coalesce($2, schema_version), updated_at = now()
         WHERE id = $1",
    )
    .bind(tenant)
    .bind(schema_version)
    .execute(db)
    .await?;
    Ok(())
}

/// A tenant a run may include: (id, slug, server).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Candidate {
    pub id: Uuid,
    pub slug: String,
    pub server_id: Uuid,
}

/// Every tenant whose database a run migrates: active and suspended ones, oldest first.
pub async fn candidates(db: impl PgExecutor<'_>) -> Result<Vec<Candidate>, sqlx::Error> {
    sqlx::query_as("SELECT id, slug, server_id FROM tenants WHERE status IN ('active', 'suspended') ORDER BY id")
        .fetch_all(db)
        .await
}

//! Each tenant's place in a run (`migration_run_tenants`): which tenants a run takes, the
//! engine's work lists, and what the API pages through.

use serde_json::Value;
use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::migrations::status::RunTenantStatus;

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

/// A tenant's row in a run, with the tenant's slug.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunTenantRow {
    pub tenant_id: Uuid,
    pub slug: String,
    pub position: i32,
    pub canary: bool,
    pub server_id: Uuid,
    pub status: RunTenantStatus,
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
    status: Option<RunTenantStatus>,
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
    .bind(status.map(|s| s.as_str()))
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
) -> Result<Vec<(String, RunTenantStatus, Option<String>)>, sqlx::Error> {
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

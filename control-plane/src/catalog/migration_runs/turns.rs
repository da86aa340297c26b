//! A tenant's turn in a run, as the engine records it: one statement (one round trip, one
//! commit) to begin, one to end, each setting or clearing the router lock (`tenants.migrating`)
//! with the records; a dry run's finding; and the lock cleared by recovery.

use serde_json::Value;
use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

use super::attempts::{AttemptStep, AttemptTarget};
use crate::migrations::status::RunTenantStatus;

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

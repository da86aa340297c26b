//! Crash recovery of bulk migrations: what an engine that died (`kill -9`, a crash, a lost
//! server) left behind is settled from the tenant databases themselves.
//!
//! Whoever holds the engine lock knows no engine is executing, so every tenant still `running`
//! in a run was being migrated by a dead one. Its database either committed (the history shows
//! the attempt's versions: the attempt succeeded) or rolled back (the attempt was interrupted,
//! the tenant goes back to `pending`). Either way its router lock (`tenants.migrating`) is
//! cleared and its catalog schema version is set to what the database holds. Runs still
//! `running` become `interrupted`, for an operator to resume.
//!
//! It runs at start-up, every reconcile interval, and at the start of every engine pass.

use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};

use super::database::error_text;
use super::locks::{ENGINE_LOCK_KEY, PLANNER_LOCK_KEY};
use super::status::{AttemptStatus, RunState, RunTenantStatus};
use crate::catalog::migration_runs::{self as runs, AttemptStep, RunRow, TenantEnd, WorkRow};
use crate::domain::{DbName, RoleName};
use crate::fleet::Fleet;

/// What one recovery pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Tenants left `running` by a dead engine, settled from their databases.
    pub settled: usize,
    /// Tenants flagged `migrating` with no attempt behind them, unflagged.
    pub unlocked: usize,
    /// Runs whose engine died, now `interrupted` (or `cancelled` when a cancel was pending).
    pub interrupted: usize,
    /// An engine is executing somewhere: nothing was touched.
    pub engine_busy: bool,
}

async fn try_exclusive(catalog: &PgPool, key: i64) -> Result<Option<PgConnection>, sqlx::Error> {
    let mut conn = catalog.acquire().await?.detach();
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(&mut conn).await?;
    if got {
        Ok(Some(conn))
    } else {
        conn.close().await.ok();
        Ok(None)
    }
}

pub async fn recover(catalog: &PgPool, fleet: &Fleet) -> Result<RecoveryReport, sqlx::Error> {
    let mut report = RecoveryReport::default();
    match try_exclusive(catalog, ENGINE_LOCK_KEY).await? {
        Some(mut lock) => {
            // A run set `running` after this instant belongs to an engine that is waiting for
            // the lock we hold (see `engine`), not to a dead one.
            let outcome = match sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(&mut lock).await {
                Ok(locked_at) => recover_locked(catalog, fleet, &mut report, locked_at).await,
                Err(error) => Err(error),
            };
            // Closing the session releases the lock.
            lock.close().await.ok();
            outcome?;
        }
        None => report.engine_busy = true,
    }
    // Dry runs change nothing; they only need their state corrected.
    if let Some(lock) = try_exclusive(catalog, PLANNER_LOCK_KEY).await? {
        let outcome = async {
            for run in runs::runs_in(catalog, &[RunState::Running, RunState::Cancelling]).await? {
                if run.dry_run {
                    let reason = "the control plane stopped during the dry run; resume it or plan again";
                    runs::transition(catalog, run.id, &[RunState::Running], RunState::Interrupted, Some(reason))
                        .await?;
                    runs::transition(catalog, run.id, &[RunState::Cancelling], RunState::Cancelled, None).await?;
                    report.interrupted += 1;
                }
            }
            Ok::<_, sqlx::Error>(())
        }
        .await;
        lock.close().await.ok();
        outcome?;
    }
    Ok(report)
}

async fn recover_locked(
    catalog: &PgPool,
    fleet: &Fleet,
    report: &mut RecoveryReport,
    locked_at: time::OffsetDateTime,
) -> Result<(), sqlx::Error> {
    for (run_id, row) in runs::running_rows(catalog, None).await? {
        let Some(run) = runs::get_run(catalog, run_id).await? else { continue };
        settle_tenant(catalog, fleet, &run, &row).await?;
        report.settled += 1;
    }
    for tenant in runs::migrating_tenants(catalog).await? {
        tracing::warn!(%tenant, "cleared a migration lock no engine holds");
        runs::clear_migrating(catalog, tenant, None).await?;
        report.unlocked += 1;
    }
    for run in runs::runs_in(catalog, &[RunState::Running, RunState::Cancelling]).await? {
        if run.dry_run || run.updated_at >= locked_at {
            continue;
        }
        let reason = "the control plane stopped while the run was in progress; resume it";
        runs::transition(catalog, run.id, &[RunState::Running], RunState::Interrupted, Some(reason)).await?;
        runs::transition(catalog, run.id, &[RunState::Cancelling], RunState::Cancelled, None).await?;
        tracing::warn!(run = %run.id, "marked an orphaned migration run interrupted");
        report.interrupted += 1;
    }
    Ok(())
}

/// Settles one tenant left `running` by a dead engine (the caller holds the engine lock).
pub async fn settle_tenant(catalog: &PgPool, fleet: &Fleet, run: &RunRow, row: &WorkRow) -> Result<(), sqlx::Error> {
    let attempts = runs::running_attempts(catalog, run.id, row.tenant_id).await?;
    let newest = attempts.iter().map(|(_, version)| *version).max();
    let lock_timeout = Duration::from_millis(u64::try_from(run.lock_timeout_ms).unwrap_or(5000));
    let found = applied_version(fleet, row, lock_timeout).await;
    let (committed, current, why) = match &found {
        Ok(current) => {
            let committed = newest.is_some() && current.is_some() && current >= &newest;
            (committed, *current, None)
        }
        Err(error) => (false, None, Some(format!("its database could not be checked after the restart: {error}"))),
    };
    let interrupted = why.clone().unwrap_or_else(|| {
        "the control plane stopped during this attempt; the database rolled its transaction back".to_owned()
    });
    let steps: Vec<AttemptStep> = attempts
        .iter()
        .map(|(_, version)| AttemptStep {
            version: *version,
            name: String::new(),
            status: if committed { AttemptStatus::Succeeded } else { AttemptStatus::Interrupted },
            started_at: None,
            duration_ms: None,
            error: (!committed).then(|| interrupted.clone()),
        })
        .collect();
    let ids: Vec<i64> = attempts.iter().map(|(id, _)| *id).collect();
    let error = (!committed).then(|| format!("interrupted: {interrupted}"));
    let end = TenantEnd {
        status: if committed { RunTenantStatus::Succeeded } else { RunTenantStatus::Pending },
        from_version: None,
        to_version: current,
        error,
        timings: None,
        duration_ms: None,
        schema_version: current,
        count_attempt: false,
    };
    runs::end_tenant(catalog, run.id, row.tenant_id, &end, &ids, &steps).await?;
    tracing::warn!(
        run = %run.id,
        tenant = %row.slug,
        committed,
        version = ?current,
        "settled a tenant migration left running by a stopped control plane"
    );
    Ok(())
}

/// The database's applied version, read under its migration lock, so a transaction the dead
/// engine left open has ended (committed or rolled back) before we look.
async fn applied_version(fleet: &Fleet, row: &WorkRow, lock_timeout: Duration) -> Result<Option<i32>, String> {
    let db = DbName::parse(&row.database_name)?;
    let role = RoleName::parse(&row.role_name)?;
    let server = fleet.server(row.server_id).await.map_err(|e| e.to_string())?;
    // As the tenant's own role: the history it reads may be a view of the tenant's making.
    let mut conn = fleet.connect_as_tenant(&server, &db, &role).await.map_err(|e| error_text(&e))?;
    let read = async {
        let mut tx = conn.begin().await?;
        let sql = format!("SET LOCAL lock_timeout = {}", lock_timeout.as_millis().max(1));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await?;
        tenant_schema::lock_for_transaction(&mut tx).await?;
        let version = tenant_schema::applied_version(&mut tx).await?;
        tx.rollback().await?;
        Ok::<_, tenant_schema::SchemaError>(version)
    }
    .await;
    conn.close().await.ok();
    read.map_err(|e| error_text(&e))
}

/// Runs [`recover`] every `interval` until `shutdown` fires.
pub async fn run_periodically(
    catalog: PgPool,
    fleet: std::sync::Arc<Fleet>,
    interval: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the start-up pass already ran
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                match recover(&catalog, &fleet).await {
                    Ok(report) if report.settled + report.unlocked + report.interrupted > 0 => {
                        tracing::warn!(?report, "migration recovery pass");
                    }
                    Ok(_) => {}
                    Err(error) => tracing::error!(%error, "migration recovery pass failed"),
                }
            }
            // On shutdown: stop. A pass cut off midway is harmless; the next one redoes it.
            _ = shutdown.changed() => break,
        }
    }
}

//! One database, migrated step by step inside one transaction: the session settings every
//! migration runs under, each pending migration applied and timed on its own, and the text of
//! what failed.
//!
//! The caller owns the transaction (`conn.begin()`); [`prepare_tenant`] (or
//! [`prepare_template`]) and [`apply_pending`] run in it, so a failure anywhere rolls the whole
//! database back to its previous version. A tenant's database is migrated on a session logged
//! in as the tenant's own role, never as superuser: see `fleet`.

use std::time::{Duration, Instant};

use sqlx::PgConnection;
use sqlx::postgres::PgDatabaseError;
use tenant_schema::{PendingMigration, SchemaError};
use time::OffsetDateTime;

use super::set::MigrationSet;
use super::status::AttemptStatus;
use crate::catalog::migration_runs::AttemptStep;
use crate::domain::RoleName;

/// Bounds on one database's migration: a long lock or a runaway statement fails that database
/// instead of hanging the run.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub lock: Duration,
    pub statement: Duration,
}

/// What [`prepare_template`] changed that [`finish`] must put back.
#[derive(Debug, Clone, Copy)]
#[must_use = "pass it to `finish` before committing"]
pub struct Prepared {
    /// `CREATE` on schema `public` was granted to the owner for this transaction only.
    granted_create: bool,
}

/// The statements every migration transaction starts with: its timeouts and tenant-schema's
/// migration lock (a concurrent migrator of the same database makes us wait, within
/// `lock_timeout`). Integers only; every function schema-qualified.
fn session_prelude(timeouts: Timeouts) -> String {
    format!(
        "SET LOCAL lock_timeout = {}; SET LOCAL statement_timeout = {}; SELECT pg_catalog.pg_advisory_xact_lock({});",
        timeouts.lock.as_millis().max(1),
        timeouts.statement.as_millis().max(1),
        tenant_schema::migration_lock_key(),
    )
}

/// Starts a tenant's migration transaction on a session logged in **as the tenant's own role**
/// (see `fleet`): timeouts and the migration lock. Returns whether the role can create objects
/// in schema `public`; one that cannot (provisioned before tenants were given `CREATE`) needs
/// `Fleet::grant_schema_create` before its migrations run.
///
/// One simple-protocol batch: on a connection opened for one migration, every prepared
/// statement would cost an extra round trip.
pub async fn prepare_tenant(tx: &mut PgConnection, timeouts: Timeouts) -> Result<bool, SchemaError> {
    let sql = format!("{} SELECT pg_catalog.has_schema_privilege('public', 'CREATE')", session_prelude(timeouts));
    let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *tx).await?;
    Ok(match rows.last() {
        Some(row) => sqlx::Row::try_get(row, 0)?,
        None => false,
    })
}

/// Starts a template's migration transaction on a superuser session (no tenant can reach a
/// template): timeouts and the migration lock, then becomes `owner`, so that the objects the
/// migrations create belong to the role that owns the template's other objects, with
/// `search_path` set to `public` for the migrations (superuser sessions start pinned to
/// `pg_catalog`).
///
/// The schema owner is `NOLOGIN` and does not own the database: `CREATE` on schema `public` is
/// granted here, inside the transaction, and revoked again by [`finish`].
pub async fn prepare_template(
    tx: &mut PgConnection,
    owner: &RoleName,
    timeouts: Timeouts,
) -> Result<Prepared, SchemaError> {
    // A checked identifier (`[a-z0-9_]`, safe between quotes) only.
    let sql = format!(
        "{} SELECT pg_catalog.has_schema_privilege('{}', 'public', 'CREATE')",
        session_prelude(timeouts),
        owner.as_str(),
    );
    let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *tx).await?;
    let can_create: bool = match rows.last() {
        Some(row) => sqlx::Row::try_get(row, 0)?,
        None => false,
    };
    let grant =
        if can_create { String::new() } else { format!("GRANT CREATE ON SCHEMA public TO {}; ", owner.quoted()) };
    let sql = format!("{grant}SET LOCAL ROLE {}; SET LOCAL search_path = public", owner.quoted());
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await?;
    Ok(Prepared { granted_create: !can_create })
}

/// Undoes what [`prepare_template`] granted; call it after the migrations, before committing.
pub async fn finish(tx: &mut PgConnection, owner: &RoleName, prepared: Prepared) -> Result<(), sqlx::Error> {
    if prepared.granted_create {
        let sql = format!("RESET ROLE; REVOKE CREATE ON SCHEMA public FROM {}", owner.quoted());
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await?;
    }
    Ok(())
}

/// One pending migration's outcome.
#[derive(Debug, Clone)]
pub struct Step {
    pub version: i32,
    pub name: String,
    pub started_at: OffsetDateTime,
    pub duration: Duration,
    pub error: Option<String>,
}

/// Applies `pending` in order in the caller's transaction (one round trip each), stopping at
/// the first failure. Returns the steps run and the failure, if any; on failure the caller
/// must roll back.
pub async fn apply_pending(
    tx: &mut PgConnection,
    set: &MigrationSet,
    pending: &[PendingMigration],
) -> (Vec<Step>, Option<SchemaError>) {
    let mut steps = Vec::with_capacity(pending.len());
    for migration in pending {
        let started_at = OffsetDateTime::now_utc();
        let clock = Instant::now();
        let outcome = tenant_schema::apply_one(tx, set.as_slice(), migration.version).await;
        let mut step = Step {
            version: migration.version,
            name: migration.name.clone(),
            started_at,
            duration: clock.elapsed(),
            error: None,
        };
        match outcome {
            Ok(_) => steps.push(step),
            Err(error) => {
                step.error = Some(error_text(&error));
                steps.push(step);
                return (steps, Some(error));
            }
        }
    }
    (steps, None)
}

/// The attempt records of a transaction's steps: all `succeeded` when it committed; otherwise
/// the failed one `failed`, the ones before it `rolled_back`, those not reached `skipped`.
pub fn attempt_records(pending: &[PendingMigration], steps: &[Step], committed: bool) -> Vec<AttemptStep> {
    pending
        .iter()
        .enumerate()
        .map(|(i, migration)| match steps.get(i) {
            Some(step) => AttemptStep {
                version: step.version,
                name: step.name.clone(),
                status: match (&step.error, committed) {
                    (Some(_), _) => AttemptStatus::Failed,
                    (None, true) => AttemptStatus::Succeeded,
                    (None, false) => AttemptStatus::RolledBack,
                },
                started_at: Some(step.started_at),
                duration_ms: Some(millis(step.duration)),
                error: step.error.clone(),
            },
            None => AttemptStep {
                version: migration.version,
                name: migration.name.clone(),
                status: AttemptStatus::Skipped,
                started_at: None,
                duration_ms: None,
                error: None,
            },
        })
        .collect()
}

/// The database's own words when it refused something (message, detail, SQLSTATE), else the
/// error's text. For operators: it may name tables and constraints of the tenant's schema.
pub fn error_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(sqlx::Error::Database(db)) = e.downcast_ref::<sqlx::Error>() {
            let mut text = db.message().to_owned();
            if let Some(detail) = db.try_downcast_ref::<PgDatabaseError>().and_then(PgDatabaseError::detail) {
                text.push_str(&format!(" — {detail}"));
            }
            if let Some(code) = db.code() {
                text.push_str(&format!(" (SQLSTATE {code})"));
            }
            return text;
        }
        source = e.source();
    }
    error.to_string()
}

pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(versions: &[i32]) -> Vec<PendingMigration> {
        versions.iter().map(|&v| PendingMigration { version: v, name: format!("m{v}") }).collect()
    }

    fn step(version: i32, error: Option<&str>) -> Step {
        Step {
            version,
            name: format!("m{version}"),
            started_at: OffsetDateTime::now_utc(),
            duration: Duration::from_millis(3),
            error: error.map(str::to_owned),
        }
    }

    fn statuses(records: &[AttemptStep]) -> Vec<&str> {
        records.iter().map(|r| r.status.as_str()).collect()
    }

    #[test]
    fn attempt_records_say_what_happened_to_each_migration() {
        let all = pending(&[3, 4, 5]);
        let done = [step(3, None), step(4, None), step(5, None)];
        assert_eq!(statuses(&attempt_records(&all, &done, true)), ["succeeded"; 3]);
        let failed = [step(3, None), step(4, Some("boom"))];
        assert_eq!(statuses(&attempt_records(&all, &failed, false)), ["rolled_back", "failed", "skipped"]);
        // A failed commit: every step ran, none stayed.
        assert_eq!(statuses(&attempt_records(&all, &done, false)), ["rolled_back"; 3]);
    }
}

//! Running the tenant migrations: the embedded list, the applied version, and the grouped run.

use std::sync::LazyLock;

use refinery::{Migration, Runner, Target};
use refinery_core::AsyncMigrate;
use sqlx::postgres::PgAdvisoryLock;
use sqlx::{AssertSqlSafe, PgConnection, Row};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::SchemaError;
use crate::refinery_driver::SqlxConnection;

mod embedded {
    // Embeds `tenant-schema/migrations/V*__*.sql` into the binary (see build.rs for rebuilds).
    refinery::embed_migrations!("migrations");
}

/// The table where refinery records applied migrations (refinery's default name).
pub const HISTORY_TABLE: &str = "refinery_schema_history";

/// Session-level advisory lock held while migrating one database, so that two migrators (say,
/// a bulk run and a template refresh) never interleave their read-history / apply steps.
static MIGRATION_LOCK: LazyLock<PgAdvisoryLock> =
    LazyLock::new(|| PgAdvisoryLock::new("nexacore.tenant-schema.migrate"));

static MIGRATIONS: LazyLock<Vec<Migration>> = LazyLock::new(|| {
    let mut migrations = embedded::migrations::runner().get_migrations().clone();
    migrations.sort();
    migrations
});

/// The tenant schema's migrations, in version order.
pub fn migrations() -> Vec<Migration> {
    MIGRATIONS.clone()
}

/// The highest migration version compiled into this binary: the version a database reaches
/// with [`migrate_to_latest`].
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, Migration::version)
}

/// One migration applied by a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    /// Its version (`V<version>__...`).
    pub version: i32,
    /// Its name (the part of the file name after `__`).
    pub name: String,
}

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The highest applied version before the run; `None` for an empty database.
    pub previous_version: Option<i32>,
    /// The highest applied version after the run.
    pub current_version: Option<i32>,
    /// The migrations this run applied, in order; empty when the database was up to date.
    pub applied: Vec<AppliedMigration>,
}

/// Brings a tenant (or template) database to the latest schema, in ONE transaction (grouped),
/// refusing divergent or missing history.
///
/// See [`migrate_with`] for the details.
pub async fn migrate_to_latest(conn: &mut PgConnection) -> Result<MigrationReport, SchemaError> {
    migrate_with(conn, &MIGRATIONS).await
}

/// Runs the given migrations the way [`migrate_to_latest`] runs the tenant ones.
///
/// - All pending migrations and their history rows are applied in one transaction: either the
///   database reaches the last version or it stays at its previous version. (refinery creates
///   its empty history table beforehand, in a transaction of its own.)
/// - A database whose history diverges from `migrations` (same version, different name or
///   checksum; or versions missing on either side) is left untouched and reported as
///   [`SchemaError::DivergentHistory`] or [`SchemaError::MissingMigration`].
/// - A session advisory lock serialises concurrent migrators of the same database.
///
/// Public so that tests and tools can run an ad-hoc migration list through the same path.
pub async fn migrate_with(conn: &mut PgConnection, migrations: &[Migration]) -> Result<MigrationReport, SchemaError> {
    let mut guard = MIGRATION_LOCK.acquire(conn).await?;
    let outcome = run_locked(guard.as_mut(), migrations).await;
    // Release before returning; on failure the connection is still usable for the caller.
    let released = guard.release_now().await;
    let report = outcome?;
    released?;
    Ok(report)
}

async fn run_locked(conn: &mut PgConnection, migrations: &[Migration]) -> Result<MigrationReport, SchemaError> {
    let previous_version = applied_version(conn).await?;
    let runner = Runner::new(migrations)
        .set_grouped(true)
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .set_target(Target::Latest);
    let report = runner.run_async(&mut SqlxConnection(&mut *conn)).await?;
    let applied: Vec<AppliedMigration> = report
        .applied_migrations()
        .iter()
        .map(|m| AppliedMigration { version: m.version(), name: m.name().to_owned() })
        .collect();
    let current_version = applied.last().map(|m| m.version).or(previous_version);
    if !applied.is_empty() {
        tracing::info!(
            from = ?previous_version,
            to = ?current_version,
            count = applied.len(),
            "migrated database"
        );
    }
    Ok(MigrationReport { previous_version, current_version, applied })
}

/// The highest migration version recorded in the database, or `None` if it has never been
/// migrated (no history table, or an empty one).
pub async fn applied_version(conn: &mut PgConnection) -> Result<Option<i32>, SchemaError> {
    // to_regclass resolves the name like refinery's unqualified statements do (search_path).
    let has_history: bool = sqlx::query_scalar("SELECT pg_catalog.to_regclass($1) IS NOT NULL")
        .bind(HISTORY_TABLE)
        .fetch_one(&mut *conn)
        .await?;
    if !has_history {
        return Ok(None);
    }
    let version: Option<i32> =
        sqlx::query_scalar("SELECT max(version)::int4 FROM refinery_schema_history").fetch_one(&mut *conn).await?;
    Ok(version)
}

// ---------------------------------------------------------------------------------------------
// Step by step, inside the caller's transaction: what a bulk migrator needs to plan a run,
// detect drift, and time and attribute each migration.

/// A migration of the code not yet applied to a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMigration {
    pub version: i32,
    pub name: String,
}

/// How a database's history departs from the code's migrations. A drifted database must not
/// be migrated: someone edited an applied migration, migrated it with another build, or skipped
/// a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// The database records `version` with another name or checksum than the code's.
    Divergent {
        version: i32,
        /// The name recorded in the database.
        in_database: String,
        /// The name in the code.
        in_code: String,
        /// True when only the checksum differs (same name, edited SQL).
        same_name: bool,
    },
    /// The database records a migration the code does not know: it is newer than this build.
    UnknownToCode { version: i32, name: String },
    /// The code has a migration older than the database's version that was never applied.
    NeverApplied { version: i32, name: String },
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Drift::Divergent { version, in_database, same_name: true, .. } => write!(
                f,
                "V{version}__{in_database} is applied with a different checksum than the code's (the migration was edited after it was applied)"
            ),
            Drift::Divergent { version, in_database, in_code, same_name: false } => {
                write!(f, "V{version} is applied as {in_database:?} but the code's V{version} is {in_code:?}")
            }
            Drift::UnknownToCode { version, name } => {
                write!(
                    f,
                    "V{version}__{name} is applied but unknown to this build (the database is newer than the code)"
                )
            }
            Drift::NeverApplied { version, name } => {
                write!(f, "V{version}__{name} was never applied although later versions were")
            }
        }
    }
}

/// A database's history compared with a list of migrations, up to a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryCheck {
    /// The highest applied version; `None` for a database never migrated.
    pub applied_version: Option<i32>,
    /// What a run to the target would apply, in order (empty when drifted).
    pub pending: Vec<PendingMigration>,
    /// The first departure from the code found, if any.
    pub drift: Option<Drift>,
}

/// Compares the database's migration history with `migrations`, considering versions up to
/// `target` (all when `None`). Reads only (two simple-protocol round trips); call it under
/// [`lock_for_transaction`] when the answer decides what to apply.
pub async fn check_history(
    conn: &mut PgConnection,
    migrations: &[Migration],
    target: Option<i32>,
) -> Result<HistoryCheck, SchemaError> {
    // to_regclass resolves the name like refinery's unqualified statements do (search_path).
    let sql = format!("SELECT pg_catalog.to_regclass('{HISTORY_TABLE}') IS NOT NULL");
    let has_history: bool = sqlx::raw_sql(AssertSqlSafe(sql)).fetch_one(&mut *conn).await?.try_get(0)?;
    let applied =
        if has_history { SqlxConnection(&mut *conn).get_applied_migrations(HISTORY_TABLE).await? } else { Vec::new() };
    let mut code: Vec<&Migration> = migrations.iter().collect();
    code.sort();
    let applied_version = applied.iter().map(Migration::version).max();
    let drift = applied.iter().find_map(|app| match code.iter().find(|m| m.version() == app.version()) {
        None => Some(Drift::UnknownToCode { version: app.version(), name: app.name().to_owned() }),
        Some(m) if m.name() != app.name() || m.checksum() != app.checksum() => Some(Drift::Divergent {
            version: app.version(),
            in_database: app.name().to_owned(),
            in_code: m.name().to_owned(),
            same_name: m.name() == app.name(),
        }),
        Some(_) => None,
    });
    let not_applied = code.iter().filter(|m| !applied.iter().any(|a| a.version() == m.version()));
    let mut pending = Vec::new();
    let mut drift = drift;
    for m in not_applied {
        if applied_version.is_some_and(|current| m.version() <= current) {
            drift = drift.or(Some(Drift::NeverApplied { version: m.version(), name: m.name().to_owned() }));
        } else if target.is_none_or(|t| m.version() <= t) {
            pending.push(PendingMigration { version: m.version(), name: m.name().to_owned() });
        }
    }
    if drift.is_some() {
        pending.clear();
    }
    Ok(HistoryCheck { applied_version, pending, drift })
}

/// The advisory-lock key [`migrate_with`] and [`lock_for_transaction`] take, for callers that
/// batch the lock with other statements.
pub fn migration_lock_key() -> i64 {
    MIGRATION_LOCK.key().as_bigint().expect("a lock made from a string has a bigint key")
}

/// Takes, for the rest of the caller's transaction, the same lock [`migrate_with`] holds while
/// it migrates, so a step-by-step migrator and `migrate_with` never interleave on one database.
/// Waits subject to the session's `lock_timeout`.
pub async fn lock_for_transaction(conn: &mut PgConnection) -> Result<(), SchemaError> {
    sqlx::query("SELECT pg_catalog.pg_advisory_xact_lock($1)").bind(migration_lock_key()).execute(conn).await?;
    Ok(())
}

/// Applies one migration of `migrations` (by version) inside the caller's transaction: its SQL
/// and its history row (as refinery writes it: version, name, RFC 3339 time, checksum) sent
/// together, in one round trip. It trusts the caller's reading of the history: call it for the
/// versions [`check_history`] found pending, in order, while holding [`lock_for_transaction`].
/// The caller's commit or rollback decides; one call per version times each migration and tells
/// which one failed.
pub async fn apply_one(
    conn: &mut PgConnection,
    migrations: &[Migration],
    version: i32,
) -> Result<AppliedMigration, SchemaError> {
    let migration = migrations
        .iter()
        .find(|m| m.version() == version)
        .ok_or_else(|| SchemaError::MissingMigration { version, name: "(not in the code)".into() })?;
    let sql = migration.sql().unwrap_or_default();
    let applied_on = OffsetDateTime::now_utc().format(&Rfc3339).expect("the current time formats as RFC 3339");
    let insert = format!(
        "INSERT INTO {HISTORY_TABLE} (version, name, applied_on, checksum) VALUES ({version}, '{}', '{applied_on}', '{}')",
        migration.name().replace('\'', "''"),
        migration.checksum()
    );
    // The SQL is a migration compiled into (or configured for) this binary, never user input;
    // a newline ends any trailing comment before the history row.
    sqlx::raw_sql(AssertSqlSafe(format!("{sql}\n;\n{insert}"))).execute(conn).await?;
    Ok(AppliedMigration { version, name: migration.name().to_owned() })
}

//! `nexacore-bench migrate-one` (hidden): one database migrated by one process, the way an
//! operator without the control plane would do it. The migration benchmark's baseline starts
//! one of these per database and reads the timings it prints.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use serde_json::json;
use sqlx::Connection as _;
use stack::control::MigrationSet;
use tenancy::RoleName;

#[derive(Args)]
pub struct MigrateOneArgs {
    /// Superuser URL of the database to migrate.
    #[arg(long, env = "NEXACORE_MIGRATE_DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// The role that owns the database's objects; migrations run as it.
    #[arg(long)]
    role: Option<String>,
    /// `V<n>__<name>.sql` files to apply (default: the tenant schema compiled in).
    #[arg(long)]
    migrations_dir: Option<PathBuf>,
}

/// Migrates one database in this process: connect, become the owner, `migrate_with` (one
/// transaction, tenant-schema's advisory lock), done. Prints its own timings as JSON.
pub async fn run(args: MigrateOneArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let set = match &args.migrations_dir {
        Some(dir) => MigrationSet::from_dir(dir).map_err(anyhow::Error::msg)?,
        None => MigrationSet::embedded(),
    };
    let role = args.role.as_deref().map(RoleName::parse).transpose().map_err(anyhow::Error::msg)?;
    let mut conn = sqlx::PgConnection::connect(&args.database_url).await.context("connecting")?;
    let connected = started.elapsed();
    // A tenant role is NOINHERIT, so owning the database does not let it create in `public`:
    // granted for the migration, revoked after, as the control plane does.
    if let Some(role) = &role {
        let sql = format!("GRANT CREATE ON SCHEMA public TO {r}; SET ROLE {r}", r = role.quoted());
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await?;
    }
    let report = tenant_schema::migrate_with(&mut conn, set.as_slice()).await.context("migrating")?;
    if let Some(role) = &role {
        let sql = format!("RESET ROLE; REVOKE CREATE ON SCHEMA public FROM {}", role.quoted());
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await?;
    }
    let migrated = started.elapsed();
    conn.close().await.ok();
    println!(
        "{}",
        json!({
            "connect_ms": connected.as_secs_f64() * 1000.0,
            "migrate_ms": (migrated - connected).as_secs_f64() * 1000.0,
            "total_ms": started.elapsed().as_secs_f64() * 1000.0,
            "from": report.previous_version,
            "to": report.current_version,
            "applied": report.applied.len(),
        })
    );
    Ok(())
}

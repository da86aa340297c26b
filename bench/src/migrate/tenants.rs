//! Preparing the migration benchmark: tenants copied straight from the template (three sides'
//! worth, interleaved), the next build's migration files, and the check that every tenant
//! ended at the new version.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt as _;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use stack::control::SCHEMA_OWNER_ROLE;
use stack::control::{self as catalog, NewTenantRow};
use tenancy::{DbName, TenantId};

use super::{BENCH_MIGRATION_NAME, BENCH_MIGRATION_SQL, catalog_name, template_name};
use crate::harness::output::progress;

/// Employees written into each benchmark company, so the index has rows to build.
const EMPLOYEES_PER_TENANT: u32 = 25;
/// Tenants created at once while preparing.
const CREATE_CONCURRENCY: usize = 4;
/// The engine, the floor and the baseline each migrate their own `--tenants` tenants.
pub const SIDES: usize = 3;

/// A migration as a file of the next build's migration directory: `V<n>__<name>.sql`.
struct BenchMigration {
    file_name: String,
    sql: String,
}

/// A benchmark tenant: its database and role.
#[derive(Clone)]
pub struct BenchTenant {
    pub id: TenantId,
}

/// Turns fsync and synchronous commits off (while preparing) or back on; back on, it also
/// checkpoints (fsyncing every file written meanwhile), so the measurement starts from durable,
/// clean state.
pub async fn set_durability(admin: &PgConnectOptions, on: bool) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect_with(admin).await?;
    let statements: [&'static str; 3] = if on {
        ["ALTER SYSTEM RESET fsync", "ALTER SYSTEM RESET synchronous_commit", "SELECT pg_reload_conf()"]
    } else {
        ["ALTER SYSTEM SET fsync = off", "ALTER SYSTEM SET synchronous_commit = off", "SELECT pg_reload_conf()"]
    };
    // One at a time: ALTER SYSTEM refuses to run in the implicit transaction of a batch.
    for sql in statements {
        sqlx::raw_sql(sql).execute(&mut conn).await?;
    }
    // A reload is asynchronous: wait until this session sees it.
    let wanted = if on { "on" } else { "off" };
    for _ in 0..100 {
        let now: String = sqlx::query_scalar("SHOW fsync").fetch_one(&mut conn).await?;
        if now == wanted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if on {
        sqlx::query("CHECKPOINT").execute(&mut conn).await?;
    }
    conn.close().await.ok();
    Ok(())
}

pub async fn create(
    admin: &PgConnectOptions,
    id: &str,
    per_side: u32,
    version: i32,
    file_copy: bool,
) -> anyhow::Result<[Vec<BenchTenant>; SIDES]> {
    let catalog_options = admin.clone().database(catalog_name(id).as_str());
    let catalog = sqlx::postgres::PgPoolOptions::new().max_connections(4).connect_with(catalog_options).await?;
    let server_id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM database_servers ORDER BY created_at LIMIT 1").fetch_one(&catalog).await?;
    sqlx::query("UPDATE database_servers SET capacity = greatest(capacity, $1)")
        .bind(i32::try_from(SIDES as u32 * per_side + 10).unwrap_or(i32::MAX))
        .execute(&catalog)
        .await?;
    let total = SIDES as u32 * per_side;
    let bar = progress(u64::from(total), "creating tenants (template copies)");
    let prep = Prep { admin, catalog: &catalog, server_id, template: template_name(id), run: id, version, file_copy };
    let created: Vec<anyhow::Result<BenchTenant>> = futures::stream::iter(0..total)
        .map(|i| {
            let (prep, bar) = (&prep, &bar);
            async move {
                let tenant = create_tenant(prep, i).await?;
                bar.inc(1);
                Ok(tenant)
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .collect()
        .await;
    bar.finish_and_clear();
    catalog.close().await;
    let mut all = created.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    all.sort_by_key(|t| t.id.0);
    // Interleaved, so no side gets the older (or newer) files on disk.
    let mut sides: [Vec<BenchTenant>; SIDES] = Default::default();
    for (i, tenant) in all.into_iter().enumerate() {
        sides[i % SIDES].push(tenant);
    }
    Ok(sides)
}

/// What creating one benchmark tenant needs.
struct Prep<'a> {
    admin: &'a PgConnectOptions,
    catalog: &'a sqlx::PgPool,
    server_id: uuid::Uuid,
    template: DbName,
    run: &'a str,
    version: i32,
    file_copy: bool,
}

async fn create_tenant(prep: &Prep<'_>, n: u32) -> anyhow::Result<BenchTenant> {
    let Prep { admin, catalog, server_id, template, run, version, file_copy } = prep;
    let (admin, catalog, server_id, version, file_copy) = (*admin, *catalog, *server_id, *version, *file_copy);
    let id = TenantId::new();
    let (db, role) = (id.database_name(), id.role_name());
    let slug = format!("bench-{run}-{n}");
    let row = NewTenantRow {
        id,
        slug: &slug,
        name: &slug,
        server_id,
        timezone: "Europe/Berlin",
        currency: "EUR",
        chart_template: "standard",
    };
    catalog::insert_provisioning(catalog, &row).await?;
    let mut conn = PgConnection::connect_with(admin).await?;
    // FILE_COPY with fsync off: a file copy and two cheap checkpoints, instead of the whole
    // template through the WAL.
    let ddl = format!(
        "CREATE ROLE {role} LOGIN NOINHERIT; \
         CREATE DATABASE {db} OWNER {role} TEMPLATE {template} STRATEGY {strategy}; \
         REVOKE ALL ON DATABASE {db} FROM PUBLIC",
        role = role.quoted(),
        db = db.quoted(),
        template = template.quoted(),
        strategy = if file_copy { "FILE_COPY" } else { "WAL_LOG" },
    );
    // One statement at a time: CREATE DATABASE refuses to run inside a multi-statement batch.
    for statement in ddl.split("; ") {
        sqlx::raw_sql(AssertSqlSafe(statement.to_owned())).execute(&mut conn).await?;
    }
    conn.close().await.ok();
    let mut conn = PgConnection::connect_with(&admin.clone().database(db.as_str())).await?;
    let mut tx = conn.begin().await?;
    let sql = format!(
        "REASSIGN OWNED BY {SCHEMA_OWNER_ROLE} TO {role}; REVOKE ALL ON SCHEMA public FROM {SCHEMA_OWNER_ROLE}",
        role = role.quoted()
    );
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await?;
    let departments: Vec<String> = tenant_schema::seed::default_departments().iter().map(|d| d.to_string()).collect();
    let chart = tenant_schema::seed::chart_template("standard").context("the standard chart")?;
    let seed = tenant_schema::seed::CompanySeed {
        company_name: &slug,
        timezone: "Europe/Berlin",
        currency: "EUR",
        chart_template: chart,
        departments: &departments,
    };
    tenant_schema::seed::seed_company(&mut tx, &seed).await?;
    sqlx::query(
        "INSERT INTO employees (first_name, last_name, email, hire_date)
         SELECT 'Given' || i, 'Family' || i, 'person' || i || '@example.com', DATE '2020-01-01' + i
         FROM generate_series(1, $1) AS i",
    )
    .bind(i32::try_from(EMPLOYEES_PER_TENANT).unwrap_or(1))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    conn.close().await.ok();
    catalog::activate(catalog, id.0, version).await?;
    Ok(BenchTenant { id })
}

/// The next build's migrations, as files of a migration directory: the tenant schema's up to
/// `n`, and the benchmark's as `n + 1`.
pub fn write_migrations(dir: &Path, n: i32) -> anyhow::Result<()> {
    let migrations = bench_migrations(n);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for m in migrations {
        std::fs::write(dir.join(&m.file_name), &m.sql)?;
    }
    Ok(())
}

fn bench_migrations(n: i32) -> Vec<BenchMigration> {
    let mut out: Vec<BenchMigration> = tenant_schema::migrations()
        .iter()
        .map(|m| BenchMigration {
            file_name: format!("V{}__{}.sql", m.version(), m.name()),
            sql: m.sql().unwrap_or_default().to_owned(),
        })
        .collect();
    out.push(BenchMigration {
        file_name: format!("V{}__{BENCH_MIGRATION_NAME}.sql", n + 1),
        sql: BENCH_MIGRATION_SQL.to_owned(),
    });
    out
}

/// Every tenant of the run, on both sides, at the new version.
pub async fn verify(admin: &PgConnectOptions, id: &str, version: i32) -> anyhow::Result<()> {
    let mut catalog = PgConnection::connect_with(&admin.clone().database(catalog_name(id).as_str())).await?;
    let databases: Vec<String> =
        sqlx::query_scalar("SELECT database_name FROM tenants ORDER BY id").fetch_all(&mut catalog).await?;
    catalog.close().await.ok();
    for db in databases {
        let mut conn = PgConnection::connect_with(&admin.clone().database(&db)).await?;
        let at: Option<i32> =
            sqlx::query_scalar("SELECT max(version) FROM refinery_schema_history").fetch_one(&mut conn).await?;
        conn.close().await.ok();
        if at != Some(version) {
            bail!("{db} is at version {at:?}, expected {version}");
        }
    }
    Ok(())
}

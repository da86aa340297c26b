//! `ops bench migrate`: a bulk migration of many tenants by the control plane's engine, next to
//! the loop an operator would otherwise write (one fresh `ops migrate-one` process per
//! database, one after the other), on the same server, with the same migration, in one run.
//!
//! A third side, the **floor**, migrates as many tenants again with nothing but what any
//! migrator must do per database: a connection, one transaction with the migration and its
//! history row, and the close, at the engine's concurrency, with no catalog, locks or records.
//! Its speed-up over the loop is the most any engine can reach on this server and machine.
//!
//! The tenants (three times `--tenants`: one third for each side) are created by copying the template
//! directly (`CREATE ROLE` + `CREATE DATABASE … TEMPLATE` + the same hand-over and seed data as
//! provisioning + the catalog row), not through the signup API: the benchmark is about
//! migrating them. The figures are reported, never asserted.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use comfy_table::{CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use control_plane::catalog::tenants::{self, NewTenantRow};
use control_plane::domain::{DbName, TenantId};
use control_plane::fleet::SCHEMA_OWNER_ROLE;
use control_plane::migrations::MigrationSet;
use control_plane::secrets::MasterKey;
use control_plane::{App, Config};
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use local_postgres::LocalCluster;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tokio::sync::oneshot;

/// The migration both sides apply: a column with a default, an index, a backfill of a small
/// table (the chart of accounts, ~40 rows per company).
const BENCH_MIGRATION_NAME: &str = "employment_types";
const BENCH_MIGRATION_SQL: &str = "\
ALTER TABLE employees ADD COLUMN employment_type text NOT NULL DEFAULT 'full_time';
CREATE INDEX employees_employment_type_idx ON employees (employment_type, last_name);
ALTER TABLE accounts ADD COLUMN normal_balance text;
UPDATE accounts SET normal_balance = CASE WHEN type IN ('asset', 'expense') THEN 'debit' ELSE 'credit' END;
";
/// Employees written into each benchmark company, so the index has rows to build.
const EMPLOYEES_PER_TENANT: u32 = 25;
/// Tenants created at once while preparing.
const CREATE_CONCURRENCY: usize = 4;
/// The engine, the floor and the baseline each migrate their own `--tenants` tenants.
const SIDES: usize = 3;

/// A migration as a file of the next build's migration directory: `V<n>__<name>.sql`.
struct BenchMigration {
    file_name: String,
    sql: String,
}

#[derive(Args)]
pub struct MigrateBenchArgs {
    /// Tenants migrated by the engine; as many again by the floor and by the baseline loop.
    #[arg(long, default_value_t = 500)]
    tenants: u32,
    /// The engine's concurrency (with one server, also its per-server limit).
    #[arg(long, default_value_t = 8)]
    concurrency: u32,
    /// Bench this server (a superuser URL) instead of a private durable cluster. Everything the
    /// run creates there is dropped at the end.
    #[arg(long)]
    database_url: Option<String>,
    /// Use a throwaway cluster tuned for tests (fsync=off, …): quick, but not representative.
    #[arg(long, conflicts_with = "database_url")]
    fsync_off: bool,
    /// Print a machine-readable JSON summary on stdout instead of tables.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: MigrateBenchArgs) -> anyhow::Result<()> {
    if args.tenants == 0 || !(1..=256).contains(&args.concurrency) {
        bail!("--tenants must be at least 1 and --concurrency between 1 and 256");
    }
    let started = Instant::now();
    let id = format!("{:08x}", rand::random::<u32>());
    let server = Server::start(args.database_url.clone(), args.fsync_off).await?;
    let server_s = started.elapsed().as_secs_f64();
    let outcome = tokio::select! {
        outcome = bench(&args, &server, &id) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    let cleaning = Instant::now();
    let cleaned = server.clean_up(&id).await;
    let mut report = outcome?;
    cleaned.context("cleaning up after the benchmark")?;
    report.stages.insert(0, ("start Postgres", server_s));
    report.stages.push(("clean up", cleaning.elapsed().as_secs_f64()));
    report.elapsed_s = started.elapsed().as_secs_f64();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

fn catalog_name(id: &str) -> DbName {
    DbName::parse(&format!("bench_mcatalog_{id}")).expect("a valid name")
}

fn template_name(id: &str) -> DbName {
    DbName::parse(&format!("bench_mtpl_{id}")).expect("a valid name")
}

async fn bench(args: &MigrateBenchArgs, server: &Server, id: &str) -> anyhow::Result<Report> {
    let admin_url = server.admin_url();
    let admin = PgConnectOptions::from_str(&admin_url).context("not a postgres:// URL")?;
    let master_key = MasterKey::generate_base64();
    let token = format!("{:032x}", rand::random::<u128>());
    let config = |set: MigrationSet| {
        let mut config = Config::new(admin_url.clone().into(), master_key.clone().into(), token.clone().into());
        config.listen = ([127, 0, 0, 1], 0).into();
        config.catalog_database = catalog_name(id);
        config.template_database = template_name(id);
        config.tenant_migrations = set;
        config.migrations.concurrency = args.concurrency;
        config.migrations.per_server_concurrency = args.concurrency;
        // No spare databases: building them would run beside the measured migrations.
        config.spare_databases_per_server = 0;
        config
    };

    let mut stages: Vec<(&'static str, f64)> = Vec::new();
    let mut clock = Instant::now();
    let mut stage = |name: &'static str, stages: &mut Vec<(&'static str, f64)>| {
        stages.push((name, clock.elapsed().as_secs_f64()));
        clock = Instant::now();
    };
    // The catalog and a template at N, through the production start-up path.
    drop(App::build(config(MigrationSet::embedded())).await.context("starting the control plane")?);
    let mut conn = PgConnection::connect_with(&admin).await?;
    let info = ServerInfo {
        version: sqlx::query_scalar("SHOW server_version").fetch_one(&mut conn).await?,
        fsync: sqlx::query_scalar("SHOW fsync").fetch_one(&mut conn).await?,
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
    };
    conn.close().await.ok();
    stage("catalog and template", &mut stages);
    let n = tenant_schema::latest_version();
    // Preparing writes a thousand databases; on our own cluster it runs with fsync off (then on
    // again, and everything flushed, before anything is measured).
    let fast_prepare = server.is_private();
    let preparing = Instant::now();
    if fast_prepare {
        set_durability(&admin, false).await?;
    }
    let created = create_tenants(&admin, id, args.tenants, n, fast_prepare).await;
    if fast_prepare {
        set_durability(&admin, true).await?;
    }
    let [engine_tenants, floor_tenants, baseline_tenants] = created?;
    let prepare_s = preparing.elapsed().as_secs_f64();
    stage("create tenants (incl. CHECKPOINT)", &mut stages);

    // The next build: N + the benchmark migration, as files for the baseline too.
    let migrations = bench_migrations(n);
    let dir = std::env::temp_dir().join(format!("nexacore-bench-migrate-{id}"));
    write_migrations(&dir, &migrations)?;
    let set = MigrationSet::from_dir(&dir).map_err(anyhow::Error::msg)?;

    let app = RunningApp::start(config(set.clone())).await?;
    stage("start the next build", &mut stages);
    let pm = server.postmaster();
    let engine = measure_engine(&app, &token, &engine_tenants, args.concurrency, &admin, pm).await;
    app.stop().await?;
    let engine = engine?;
    stage("engine (incl. CHECKPOINT, stop)", &mut stages);
    let floor = measure_floor(&admin, &floor_tenants, &set, args.concurrency, pm).await?;
    stage("floor (incl. CHECKPOINT)", &mut stages);
    let baseline = measure_baseline(&admin_url, &admin, &baseline_tenants, &dir, pm).await;
    let _ = std::fs::remove_dir_all(&dir);
    let baseline = baseline?;
    stage("baseline (incl. CHECKPOINT)", &mut stages);
    verify(&admin, id, n + 1).await?;
    stage("verify every tenant", &mut stages);
    let mut report = Report::new(server.describe(), info, args, n, engine, floor, baseline);
    report.prepare_s = prepare_s;
    report.stages = stages;
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// Preparing: tenants copied from the template

/// A benchmark tenant: its database and role.
#[derive(Clone)]
struct BenchTenant {
    id: TenantId,
}

/// Turns fsync and synchronous commits off (while preparing) or back on; back on, it also
/// checkpoints (fsyncing every file written meanwhile), so the measurement starts from durable,
/// clean state.
async fn set_durability(admin: &PgConnectOptions, on: bool) -> anyhow::Result<()> {
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

async fn create_tenants(
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
    tenants::insert_provisioning(catalog, &row).await?;
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
    tenants::activate(catalog, id.0, version).await?;
    Ok(BenchTenant { id })
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

fn write_migrations(dir: &Path, migrations: &[BenchMigration]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for m in migrations {
        std::fs::write(dir.join(&m.file_name), &m.sql)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The engine

struct EngineResult {
    tenants: usize,
    /// From the request to the run's end, as the client saw it.
    wall: Duration,
    /// Inside the control plane: the run's creation to its end.
    server_elapsed_s: f64,
    run: Value,
    cpu: Option<Cpu>,
}

async fn measure_engine(
    app: &RunningApp,
    token: &str,
    tenants: &[BenchTenant],
    concurrency: u32,
    admin: &PgConnectOptions,
    postmaster: Option<u32>,
) -> anyhow::Result<EngineResult> {
    checkpoint(admin).await?;
    let cpu_before = Cpu::now(postmaster);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let ids: Vec<String> = tenants.iter().map(|t| t.id.0.to_string()).collect();
    let body = json!({
        "tenants": ids,
        "concurrency": concurrency,
        "per_server_concurrency": concurrency,
        "failure_policy": "continue",
    });
    let bar = progress(tenants.len() as u64, &format!("engine, concurrency {concurrency}"));
    let started = Instant::now();
    let response = http.post(format!("{}/migrations/runs", app.base_url)).bearer_auth(token).json(&body).send().await?;
    let status = response.status();
    let mut run: Value = response.json().await?;
    if !status.is_success() {
        bail!("starting the run failed: {status}: {run}");
    }
    let id = run["id"].as_str().context("a run id")?.to_owned();
    while matches!(run["state"].as_str(), Some("running" | "cancelling")) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        run =
            http.get(format!("{}/migrations/runs/{id}", app.base_url)).bearer_auth(token).send().await?.json().await?;
        bar.set_position(
            run["totals"]["succeeded"].as_u64().unwrap_or(0) + run["totals"]["failed"].as_u64().unwrap_or(0),
        );
    }
    let wall = started.elapsed();
    let cpu = Cpu::now(postmaster).zip(cpu_before).map(|(after, before)| after.since(before));
    bar.finish_and_clear();
    if run["reached_target"] != true {
        bail!("the engine's run did not reach its target: {run:#}");
    }
    let created = time::OffsetDateTime::parse(
        run["created_at"].as_str().unwrap_or(""),
        &time::format_description::well_known::Rfc3339,
    )?;
    let finished = time::OffsetDateTime::parse(
        run["finished_at"].as_str().unwrap_or(""),
        &time::format_description::well_known::Rfc3339,
    )?;
    Ok(EngineResult { tenants: tenants.len(), wall, server_elapsed_s: (finished - created).as_seconds_f64(), run, cpu })
}

// ---------------------------------------------------------------------------------------------
// The floor: the least any migrator does per database, at the engine's concurrency

struct FloorResult {
    tenants: usize,
    wall: Duration,
    cpu: Option<Cpu>,
}

/// Per database: connect (as the superuser, like the engine), `BEGIN`, the migration and its
/// history row in one round trip, `COMMIT`, close; `concurrency` databases at a time. No
/// catalog, no router lock, no advisory lock, no history check, no records: what is left is
/// what Postgres must do for any migrator, which bounds every engine's speed on this server.
async fn measure_floor(
    admin: &PgConnectOptions,
    tenants: &[BenchTenant],
    set: &MigrationSet,
    concurrency: u32,
    postmaster: Option<u32>,
) -> anyhow::Result<FloorResult> {
    let version = set.as_slice().last().map(|m| m.version()).context("the migration set is empty")?;
    checkpoint(admin).await?;
    let cpu_before = Cpu::now(postmaster);
    let bar = progress(tenants.len() as u64, &format!("floor, concurrency {concurrency}"));
    let started = Instant::now();
    let migrated: Vec<anyhow::Result<()>> = futures::stream::iter(tenants)
        .map(|tenant| {
            let (bar, options) = (&bar, admin.clone().database(tenant.id.database_name().as_str()));
            async move {
                let mut conn = PgConnection::connect_with(&options).await?;
                let mut tx = conn.begin().await?;
                tenant_schema::apply_one(&mut tx, set.as_slice(), version).await?;
                tx.commit().await?;
                conn.close().await?;
                bar.inc(1);
                Ok(())
            }
        })
        .buffer_unordered(concurrency as usize)
        .collect()
        .await;
    let wall = started.elapsed();
    let cpu = Cpu::now(postmaster).zip(cpu_before).map(|(after, before)| after.since(before));
    bar.finish_and_clear();
    migrated.into_iter().collect::<anyhow::Result<Vec<()>>>().context("the floor's migration")?;
    Ok(FloorResult { tenants: tenants.len(), wall, cpu })
}

// ---------------------------------------------------------------------------------------------
// The baseline: one fresh process per database, one after the other

struct BaselineResult {
    tenants: usize,
    wall: Duration,
    /// Per tenant: (process wall, connect, migrate) in ms.
    samples: Vec<(f64, f64, f64)>,
    cpu: Option<Cpu>,
}

async fn measure_baseline(
    admin_url: &str,
    admin: &PgConnectOptions,
    tenants: &[BenchTenant],
    dir: &Path,
    postmaster: Option<u32>,
) -> anyhow::Result<BaselineResult> {
    checkpoint(admin).await?;
    let cpu_before = Cpu::now(postmaster);
    let exe = std::env::current_exe().context("locating the ops binary")?;
    let bar = progress(tenants.len() as u64, "baseline, one process per database");
    let mut samples = Vec::with_capacity(tenants.len());
    let started = Instant::now();
    for tenant in tenants {
        let url = database_url(admin_url, &tenant.id.database_name())?;
        let spawned = Instant::now();
        let output = tokio::process::Command::new(&exe)
            .arg("migrate-one")
            .arg("--role")
            .arg(tenant.id.role_name().as_str())
            .arg("--migrations-dir")
            .arg(dir)
            .env("NEXACORE_MIGRATE_DATABASE_URL", &url)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .await
            .context("running ops migrate-one")?;
        let process_ms = spawned.elapsed().as_secs_f64() * 1000.0;
        if !output.status.success() {
            bail!("ops migrate-one failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let reported: Value = serde_json::from_slice(&output.stdout).context("ops migrate-one's report")?;
        if reported["applied"] != 1 {
            bail!("ops migrate-one applied {} migrations, expected 1", reported["applied"]);
        }
        samples.push((
            process_ms,
            reported["connect_ms"].as_f64().unwrap_or(0.0),
            reported["migrate_ms"].as_f64().unwrap_or(0.0),
        ));
        bar.inc(1);
    }
    let wall = started.elapsed();
    let cpu = Cpu::now(postmaster).zip(cpu_before).map(|(after, before)| after.since(before));
    bar.finish_and_clear();
    Ok(BaselineResult { tenants: tenants.len(), wall, samples, cpu })
}

/// The superuser URL for one database of the server.
fn database_url(admin_url: &str, db: &DbName) -> anyhow::Result<String> {
    let mut url = url::Url::parse(admin_url).context("the admin URL")?;
    url.set_path(db.as_str());
    Ok(url.to_string())
}

async fn checkpoint(admin: &PgConnectOptions) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect_with(admin).await?;
    sqlx::query("CHECKPOINT").execute(&mut conn).await?;
    conn.close().await.ok();
    Ok(())
}

/// Every tenant of the run, on both sides, at the new version.
async fn verify(admin: &PgConnectOptions, id: &str, version: i32) -> anyhow::Result<()> {
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

// ---------------------------------------------------------------------------------------------
// CPU accounting (Linux /proc): where the machine's cycles went during a phase

/// CPU seconds used so far by the Postgres server (postmaster, live backends, and reaped ones),
/// by this process, and by this process's reaped children.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    postgres: f64,
    own: f64,
    children: f64,
}

impl Cpu {
    fn now(postmaster: Option<u32>) -> Option<Self> {
        let tick = 100.0; // USER_HZ on Linux
        let fields = |pid: &str| -> Option<Vec<u64>> {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Fields after the command name (which may hold spaces): state is field 3.
            let rest = stat.rsplit_once(')')?.1;
            Some(rest.split_whitespace().skip(1).map(|f| f.parse().unwrap_or(0)).collect())
        };
        // After the state: ppid is [0]; utime [10], stime [11], cutime [12], cstime [13].
        let own = fields("self")?;
        let mut cpu =
            Cpu { own: (own[10] + own[11]) as f64 / tick, children: (own[12] + own[13]) as f64 / tick, postgres: 0.0 };
        if let Some(pm) = postmaster {
            let main = fields(&pm.to_string())?;
            cpu.postgres = (main[10] + main[11] + main[12] + main[13]) as f64 / tick;
            for entry in std::fs::read_dir("/proc").ok()?.flatten() {
                let name = entry.file_name();
                let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else { continue };
                if let Some(f) = fields(pid)
                    && f.first() == Some(&u64::from(pm))
                {
                    cpu.postgres += (f[10] + f[11]) as f64 / tick;
                }
            }
        }
        Some(cpu)
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            postgres: self.postgres - before.postgres,
            own: self.own - before.own,
            children: self.children - before.children,
        }
    }
}

/// The postmaster's pid, from the first line of `postmaster.pid`.
fn postmaster_pid(data_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?.lines().next()?.trim().parse().ok()
}

// ---------------------------------------------------------------------------------------------
// The server and the control plane

enum Server {
    Durable { cluster: Option<LocalCluster>, dir: PathBuf },
    Throwaway(LocalCluster),
    External(String),
}

impl Server {
    async fn start(url: Option<String>, fsync_off: bool) -> anyhow::Result<Self> {
        if let Some(url) = url {
            return Ok(Self::External(url));
        }
        if fsync_off {
            let cluster = tokio::task::spawn_blocking(LocalCluster::start_throwaway).await??;
            return Ok(Self::Throwaway(cluster));
        }
        let dir = std::env::temp_dir().join(format!("nexacore-bench-{:08x}", rand::random::<u32>()));
        let path = dir.clone();
        let cluster = tokio::task::spawn_blocking(move || LocalCluster::start_persistent(&path, None)).await?;
        match cluster {
            Ok(cluster) => Ok(Self::Durable { cluster: Some(cluster), dir }),
            Err(error) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(anyhow!(error).context("starting a durable Postgres cluster"))
            }
        }
    }

    /// The server's main process, when it runs on this machine and is ours.
    fn postmaster(&self) -> Option<u32> {
        match self {
            Self::Durable { cluster, .. } => cluster.as_ref().and_then(|c| postmaster_pid(c.data_dir())),
            Self::Throwaway(cluster) => postmaster_pid(cluster.data_dir()),
            Self::External(_) => None,
        }
    }

    fn admin_url(&self) -> String {
        match self {
            Self::Durable { cluster, .. } => cluster.as_ref().map(LocalCluster::superuser_url).unwrap_or_default(),
            Self::Throwaway(cluster) => cluster.superuser_url(),
            Self::External(url) => url.clone(),
        }
    }

    /// Our own cluster, whose settings we may change.
    fn is_private(&self) -> bool {
        matches!(self, Self::Durable { .. })
    }

    fn describe(&self) -> &'static str {
        match self {
            Self::Durable { .. } => "private durable cluster (fsync on)",
            Self::Throwaway(_) => "private throwaway cluster (tuned for tests, not representative)",
            Self::External(_) => "--database-url",
        }
    }

    async fn clean_up(self, id: &str) -> anyhow::Result<()> {
        if self.is_private()
            && let Ok(admin) = PgConnectOptions::from_str(&self.admin_url())
        {
            // The cluster is deleted next: its shutdown checkpoint need not fsync a thousand
            // databases.
            let _ = set_durability(&admin, false).await;
        }
        match self {
            Self::Durable { mut cluster, dir } => {
                if let Some(cluster) = cluster.take() {
                    tokio::task::spawn_blocking(move || cluster.stop()).await??;
                }
                std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))
            }
            Self::Throwaway(cluster) => Ok(tokio::task::spawn_blocking(move || cluster.stop()).await??),
            Self::External(url) => drop_run_objects(&url, id).await,
        }
    }
}

/// On someone else's server: drop exactly the databases and roles this run created.
async fn drop_run_objects(url: &str, id: &str) -> anyhow::Result<()> {
    let admin = PgConnectOptions::from_str(url)?;
    let mut conn = PgConnection::connect_with(&admin).await?;
    let catalog = catalog_name(id);
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(catalog.as_str())
        .fetch_one(&mut conn)
        .await?;
    if exists {
        let mut cat = PgConnection::connect_with(&admin.clone().database(catalog.as_str())).await?;
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT database_name, role_name FROM tenants").fetch_all(&mut cat).await?;
        cat.close().await.ok();
        for (db, role) in rows {
            let db = DbName::parse(&db).map_err(anyhow::Error::msg)?;
            let role = control_plane::domain::RoleName::parse(&role).map_err(anyhow::Error::msg)?;
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.quoted());
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
            sqlx::raw_sql(AssertSqlSafe(format!("DROP ROLE IF EXISTS {}", role.quoted()))).execute(&mut conn).await?;
        }
    }
    let template = template_name(id);
    let sql = format!("ALTER DATABASE {} IS_TEMPLATE false", template.quoted());
    let _ = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await;
    for db in [catalog, template] {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.quoted());
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
    }
    conn.close().await.ok();
    Ok(())
}

struct RunningApp {
    base_url: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningApp {
    async fn start(config: Config) -> anyhow::Result<Self> {
        let app = App::build(config).await.context("starting the control plane")?;
        let base_url = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        Ok(Self { base_url, stop, task })
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("the control plane panicked")?.context("the control plane failed")
    }
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len).with_prefix(what.to_owned());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>36} [{bar:30}] {pos}/{len} {per_sec:>12} eta {eta}")
            .expect("a valid progress template")
            .progress_chars("=> "),
    );
    bar
}

// ---------------------------------------------------------------------------------------------
// The report

/// The target: the engine at least this many times faster than the loop.
const TARGET_SPEED_UP: f64 = 5.0;

#[derive(Serialize)]
struct ServerInfo {
    version: String,
    fsync: String,
    cpus: usize,
}

#[derive(Serialize)]
struct Side {
    tenants: usize,
    total_s: f64,
    tenants_per_s: f64,
    per_tenant_ms: f64,
}

impl Side {
    fn new(tenants: usize, total: Duration) -> Self {
        let total_s = total.as_secs_f64();
        Self {
            tenants,
            total_s,
            tenants_per_s: tenants as f64 / total_s,
            per_tenant_ms: total_s * 1000.0 / tenants.max(1) as f64,
        }
    }
}

/// One phase: its share of the time and its median per tenant.
#[derive(Serialize)]
struct Phase {
    name: &'static str,
    total_ms: f64,
    p50_ms: f64,
    share: f64,
}

/// CPU used during a side's measurement, per tenant (ms), and the machine's share of it.
#[derive(Serialize)]
struct CpuView {
    postgres_ms_per_tenant: f64,
    migrator_ms_per_tenant: f64,
    total_ms_per_tenant: f64,
    /// CPU seconds used per wall second (2.0 = both cores of a 2-core machine busy).
    cores_busy: f64,
}

impl CpuView {
    /// `migrator`: the control plane (this process) or the `migrate-one` children.
    fn new(postgres: f64, migrator: f64, tenants: usize, wall: Duration) -> Self {
        let per = |s: f64| s * 1000.0 / tenants.max(1) as f64;
        Self {
            postgres_ms_per_tenant: per(postgres),
            migrator_ms_per_tenant: per(migrator),
            total_ms_per_tenant: per(postgres + migrator),
            cores_busy: (postgres + migrator) / wall.as_secs_f64(),
        }
    }
}

#[derive(Serialize)]
struct Report {
    server: &'static str,
    postgres: ServerInfo,
    from_version: i32,
    to_version: i32,
    migration: &'static str,
    tenants_created_by: &'static str,
    concurrency: u32,
    engine: Side,
    engine_server_elapsed_s: f64,
    engine_phases: Vec<Phase>,
    engine_attempt_p50_ms: f64,
    engine_attempt_p95_ms: f64,
    engine_cpu: Option<CpuView>,
    /// The least any migrator does, at the engine's concurrency (see [`measure_floor`]).
    floor: Side,
    floor_cpu: Option<CpuView>,
    /// Floor tenants/s ÷ baseline tenants/s: the most any engine can reach here.
    floor_speed_up: f64,
    /// Engine tenants/s ÷ floor tenants/s: how close the engine comes to that.
    engine_of_floor: f64,
    baseline: Side,
    baseline_phases: Vec<Phase>,
    baseline_cpu: Option<CpuView>,
    speed_up: f64,
    target_speed_up: f64,
    target_met: bool,
    /// Creating the tenants (not measured).
    prepare_s: f64,
    /// Where the benchmark's own time went, in seconds.
    stages: Vec<(&'static str, f64)>,
    elapsed_s: f64,
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

impl Report {
    fn new(
        server: &'static str,
        postgres: ServerInfo,
        args: &MigrateBenchArgs,
        n: i32,
        engine: EngineResult,
        floor: FloorResult,
        baseline: BaselineResult,
    ) -> Self {
        let t = &engine.run["timings"];
        let phase_total = |k: &str| t[k]["total_ms"].as_f64().unwrap_or(0.0);
        let attempt_total = phase_total("attempt").max(f64::MIN_POSITIVE);
        let engine_phases = [
            ("connect", "connect"),
            ("lock (begin, timeouts, role, advisory lock, history)", "lock"),
            ("flag tenant + record attempt (catalog)", "flag"),
            ("DDL (the migration)", "ddl"),
            ("commit", "commit"),
        ]
        .into_iter()
        .map(|(name, key)| Phase {
            name,
            total_ms: phase_total(key),
            p50_ms: t[key]["p50_ms"].as_f64().unwrap_or(0.0),
            share: phase_total(key) / attempt_total,
        })
        .collect();
        let process: Vec<f64> = baseline.samples.iter().map(|s| s.0).collect();
        let connect: Vec<f64> = baseline.samples.iter().map(|s| s.1).collect();
        let migrate: Vec<f64> = baseline.samples.iter().map(|s| s.2).collect();
        let spawn: Vec<f64> = baseline.samples.iter().map(|s| (s.0 - s.1 - s.2).max(0.0)).collect();
        let process_total: f64 = process.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        let phase = |name: &'static str, values: Vec<f64>| {
            let total: f64 = values.iter().sum();
            Phase { name, total_ms: total, p50_ms: median(values), share: total / process_total }
        };
        let baseline_phases = vec![
            phase("process start + exit (runtime, parsing)", spawn),
            phase("connect", connect),
            phase("lock + DDL + commit (migrate_with)", migrate),
        ];
        let engine_side = Side::new(engine.tenants, engine.wall);
        let baseline_side = Side::new(baseline.tenants, baseline.wall);
        let floor_side = Side::new(floor.tenants, floor.wall);
        let speed_up = engine_side.tenants_per_s / baseline_side.tenants_per_s;
        Self {
            server,
            postgres,
            from_version: n,
            to_version: n + 1,
            migration: BENCH_MIGRATION_SQL,
            tenants_created_by: "copying the template directly (CREATE ROLE + CREATE DATABASE … TEMPLATE + hand-over + seed + catalog row, with fsync off on a private cluster, then on again and CHECKPOINT before measuring), not the signup API",
            concurrency: args.concurrency,
            engine_cpu: engine.cpu.map(|c| CpuView::new(c.postgres, c.own, engine.tenants, engine.wall)),
            baseline_cpu: baseline.cpu.map(|c| CpuView::new(c.postgres, c.children, baseline.tenants, baseline.wall)),
            floor_cpu: floor.cpu.map(|c| CpuView::new(c.postgres, c.own, floor.tenants, floor.wall)),
            floor_speed_up: floor_side.tenants_per_s / baseline_side.tenants_per_s,
            engine_of_floor: engine_side.tenants_per_s / floor_side.tenants_per_s,
            floor: floor_side,
            engine: engine_side,
            engine_server_elapsed_s: engine.server_elapsed_s,
            engine_phases,
            engine_attempt_p50_ms: t["attempt"]["p50_ms"].as_f64().unwrap_or(0.0),
            engine_attempt_p95_ms: t["attempt_p95_ms"].as_f64().unwrap_or(0.0),
            baseline: baseline_side,
            baseline_phases,
            speed_up,
            target_speed_up: TARGET_SPEED_UP,
            target_met: speed_up >= TARGET_SPEED_UP,
            prepare_s: 0.0,
            stages: Vec::new(),
            elapsed_s: 0.0,
        }
    }
}

fn new_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(header.to_vec());
    for i in 1..header.len() {
        if let Some(column) = table.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

fn print_report(r: &Report) {
    println!(
        "Server: {} — PostgreSQL {}, fsync={}, {} CPU(s). Migration V{} → V{}:",
        r.server, r.postgres.version, r.postgres.fsync, r.postgres.cpus, r.from_version, r.to_version
    );
    for line in r.migration.lines() {
        println!("    {line}");
    }
    println!("Tenants were created by {}.", r.tenants_created_by);
    let mut sides = new_table(&["", "tenants", "total s", "tenants/s", "ms per tenant"]);
    let row = |name: String, s: &Side| {
        vec![
            name,
            s.tenants.to_string(),
            format!("{:.2}", s.total_s),
            format!("{:.1}", s.tenants_per_s),
            format!("{:.1}", s.per_tenant_ms),
        ]
    };
    sides.add_row(row(format!("engine (ops migrate run, concurrency {})", r.concurrency), &r.engine));
    sides.add_row(row(
        format!("floor (connect, one transaction, close; no records; concurrency {})", r.concurrency),
        &r.floor,
    ));
    sides.add_row(row("baseline (sequential, fresh `ops migrate-one` process per database)".into(), &r.baseline));
    println!("{sides}");
    let mut target = new_table(&["", "value", "target", "met"]);
    target.add_row(vec![
        "speed-up (engine tenants/s ÷ baseline tenants/s)".to_owned(),
        format!("{:.1}×", r.speed_up),
        format!("≥ {TARGET_SPEED_UP}×"),
        if r.target_met { "yes" } else { "no" }.to_owned(),
    ]);
    target.add_row(vec![
        "floor's speed-up (the most any engine reaches on this server)".to_owned(),
        format!("{:.1}×", r.floor_speed_up),
        String::new(),
        String::new(),
    ]);
    target.add_row(vec![
        "engine ÷ floor (tenants/s)".to_owned(),
        format!("{:.2}", r.engine_of_floor),
        String::new(),
        String::new(),
    ]);
    println!("{target}");
    let phases = |title: &str, phases: &[Phase]| {
        let mut table = new_table(&[title, "total ms", "share", "p50 ms per tenant"]);
        for p in phases {
            table.add_row(vec![
                p.name.to_owned(),
                format!("{:.0}", p.total_ms),
                format!("{:.0} %", p.share * 100.0),
                format!("{:.2}", p.p50_ms),
            ]);
        }
        table
    };
    println!(
        "{}",
        phases("engine: where a tenant's time goes (summed over tenants, run in parallel)", &r.engine_phases)
    );
    println!(
        "engine: a tenant takes {:.1} ms at the median ({:.1} ms p95) from connect to commit; the run took {:.2} s inside the control plane ({:.2} s as the client saw it).",
        r.engine_attempt_p50_ms, r.engine_attempt_p95_ms, r.engine_server_elapsed_s, r.engine.total_s
    );
    println!("{}", phases("baseline: where a tenant's time goes", &r.baseline_phases));
    if let (Some(e), Some(f), Some(b)) = (&r.engine_cpu, &r.floor_cpu, &r.baseline_cpu) {
        let mut cpu = new_table(&["CPU per tenant", "Postgres ms", "migrator ms", "total ms", "cores busy"]);
        for (name, c) in [
            ("engine (migrator: the control plane)", e),
            ("floor (migrator: this process)", f),
            ("baseline (migrator: the processes)", b),
        ] {
            cpu.add_row(vec![
                name.to_owned(),
                format!("{:.1}", c.postgres_ms_per_tenant),
                format!("{:.1}", c.migrator_ms_per_tenant),
                format!("{:.1}", c.total_ms_per_tenant),
                format!("{:.2} of {}", c.cores_busy, r.postgres.cpus),
            ]);
        }
        println!("{cpu}");
    }
    let stages: Vec<String> = r.stages.iter().map(|(name, s)| format!("{name} {s:.1} s")).collect();
    println!("The run took {:.0} s: {}.", r.elapsed_s, stages.join(", "));
}

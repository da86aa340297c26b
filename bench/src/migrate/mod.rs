//! `migrate`: a bulk migration of many tenants by the control plane's engine, next to the loop
//! an operator would otherwise write (one fresh `nexacore-bench migrate-one` process per
//! database, one after the other), on the same server, with the same migration, in one run.
//!
//! A third side, the **floor**, migrates as many tenants again with nothing but what any
//! migrator must do per database: a connection, one transaction with the migration and its
//! history row, and the close, at the engine's concurrency, with no catalog, locks or records.
//! Its speed-up over the loop is the most any engine can reach on this server and machine.
//!
//! The tenants (three times `--tenants`: one third for each side) are created by copying the
//! template directly (`CREATE ROLE` + `CREATE DATABASE … TEMPLATE` + the same hand-over and seed
//! data as provisioning + the catalog row), not through the signup API: the benchmark is about
//! migrating them. The figures are reported, never asserted.

pub mod one;
mod report;
mod sides;
mod tenants;

use std::str::FromStr;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use secrecy::SecretString;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use stack::PlatformBuilder;
use stack::control::MigrationSet;
use tenancy::DbName;

use crate::harness::postgres::{self, Server, ServerChoice, ServerInfo};
use crate::harness::{machine, output, platform, until_interrupted};
use report::Report;

/// The migration every side applies: a column with a default, an index, a backfill of a small
/// table (the chart of accounts, ~40 rows per company).
const BENCH_MIGRATION_NAME: &str = "employment_types";
const BENCH_MIGRATION_SQL: &str = "\
ALTER TABLE employees ADD COLUMN employment_type text NOT NULL DEFAULT 'full_time';
CREATE INDEX employees_employment_type_idx ON employees (employment_type, last_name);
ALTER TABLE accounts ADD COLUMN normal_balance text;
UPDATE accounts SET normal_balance = CASE WHEN type IN ('asset', 'expense') THEN 'debit' ELSE 'credit' END;
";

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
    let server = Server::start(&ServerChoice::from_flags(args.database_url.clone(), args.fsync_off)).await?;
    let server_s = started.elapsed().as_secs_f64();
    let outcome = until_interrupted(bench(&args, &server, &id)).await;
    let cleaning = Instant::now();
    if server.is_private_durable()
        && let Ok(admin) = PgConnectOptions::from_str(&server.admin_url())
    {
        // The cluster is deleted next: its shutdown checkpoint need not fsync a thousand
        // databases.
        let _ = tenants::set_durability(&admin, false).await;
    }
    let (catalog, template) = (catalog_name(&id), template_name(&id));
    let cleaned = server.clean_up(|url| async move { postgres::drop_platform(&url, &catalog, &template).await }).await;
    let mut report = outcome?;
    cleaned.context("cleaning up after the benchmark")?;
    report.stages.insert(0, ("start Postgres", server_s));
    report.stages.push(("clean up", cleaning.elapsed().as_secs_f64()));
    report.elapsed_s = started.elapsed().as_secs_f64();
    output::emit(args.json, &report, report::print)
}

fn catalog_name(id: &str) -> DbName {
    DbName::parse(&format!("bench_mcatalog_{id}")).expect("a valid name")
}

fn template_name(id: &str) -> DbName {
    DbName::parse(&format!("bench_mtpl_{id}")).expect("a valid name")
}

/// The platform of this run with tenant migrations `set`: the engine at `concurrency`, no
/// spare databases (building them would run beside the measured migrations).
fn builder(admin_url: &str, id: &str, set: MigrationSet, concurrency: u32) -> PlatformBuilder {
    let template = template_name(id);
    platform::builder(admin_url, move |config| {
        config.template_database = template;
        config.tenant_migrations = set;
        config.migrations.concurrency = concurrency;
        config.migrations.per_server_concurrency = concurrency;
        config.spare_databases_per_server = 0;
    })
    .catalog_database(catalog_name(id))
}

/// Where the benchmark's own time goes, stage by stage, in seconds.
struct Stages {
    done: Vec<(&'static str, f64)>,
    clock: Instant,
}

impl Stages {
    fn end(&mut self, name: &'static str) {
        self.done.push((name, self.clock.elapsed().as_secs_f64()));
        self.clock = Instant::now();
    }
}

async fn bench(args: &MigrateBenchArgs, server: &Server, id: &str) -> anyhow::Result<Report> {
    let admin_url = server.admin_url();
    let admin = PgConnectOptions::from_str(&admin_url).context("not a postgres:// URL")?;
    let mut stages = Stages { done: Vec::new(), clock: Instant::now() };
    // The catalog and a template at N, through the production start-up path.
    let prepared = platform::start(builder(&admin_url, id, MigrationSet::embedded(), args.concurrency)).await?;
    let secrets = (prepared.master_key.clone(), SecretString::from(prepared.operator_token.clone()));
    prepared.stop().await.context("stopping the control plane")?;
    let mut conn = PgConnection::connect_with(&admin).await?;
    let info = ServerInfo::read(&mut conn).await?;
    conn.close().await.ok();
    stages.end("catalog and template");
    let n = tenant_schema::latest_version();
    // Preparing writes a thousand databases; on our own cluster it runs with fsync off (then on
    // again, and everything flushed, before anything is measured).
    let fast_prepare = server.is_private_durable();
    let preparing = Instant::now();
    if fast_prepare {
        tenants::set_durability(&admin, false).await?;
    }
    let created = tenants::create(&admin, id, args.tenants, n, fast_prepare).await;
    if fast_prepare {
        tenants::set_durability(&admin, true).await?;
    }
    let [engine_tenants, floor_tenants, baseline_tenants] = created?;
    let prepare_s = preparing.elapsed().as_secs_f64();
    stages.end("create tenants (incl. CHECKPOINT)");

    // The next build: N + the benchmark migration, as files for the baseline too.
    let dir = std::env::temp_dir().join(format!("nexacore-bench-migrate-{id}"));
    tenants::write_migrations(&dir, n)?;
    let set = MigrationSet::from_dir(&dir).map_err(anyhow::Error::msg)?;

    let app =
        platform::start(builder(&admin_url, id, set.clone(), args.concurrency).secrets(secrets.0, secrets.1)).await?;
    stages.end("start the next build");
    let pm = server.postmaster();
    let engine = sides::measure_engine(&app, &engine_tenants, args.concurrency, &admin, pm).await;
    app.stop().await.context("stopping the control plane")?;
    let engine = engine?;
    stages.end("engine (incl. CHECKPOINT, stop)");
    let floor = sides::measure_floor(&admin, &floor_tenants, &set, args.concurrency, pm).await?;
    stages.end("floor (incl. CHECKPOINT)");
    let baseline = sides::measure_baseline(&admin_url, &admin, &baseline_tenants, &dir, pm).await;
    let _ = std::fs::remove_dir_all(&dir);
    let baseline = baseline?;
    stages.end("baseline (incl. CHECKPOINT)");
    tenants::verify(&admin, id, n + 1).await?;
    stages.end("verify every tenant");
    let info = report::Postgres { version: info.version, fsync: info.fsync, cpus: machine::cores() };
    let mut report = Report::new(server.describe(), info, args.concurrency, n, engine, floor, baseline);
    report.prepare_s = prepare_s;
    report.stages = stages.done;
    Ok(report)
}

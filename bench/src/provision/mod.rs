//! `provision`: tenant provisioning latency through the control plane's HTTP API, printed next
//! to a raw `CREATE ROLE` + `CREATE DATABASE … TEMPLATE` baseline measured on the same server in
//! the same run, and the argon2id hash time that provisioning spends on purpose.
//!
//! The figures are reported, never asserted: missing the target is a finding, not a failure.
//! The command fails only when something breaks (a provisioning error, an unreachable server).

mod api;
mod baseline;
mod report;

use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use sqlx::{Connection, PgConnection};
use tenancy::{DbName, RoleName};

use crate::harness::postgres::{self, Server, ServerChoice};
use crate::harness::{output, until_interrupted};
use report::Report;

/// Tenants provisioned before measuring, so connection set-up, first-use caches and the
/// first checkpoints do not land in the sample.
const WARM_UP_TENANTS: u32 = 2;

#[derive(Args)]
pub struct ProvisionBenchArgs {
    /// Tenants in the measured sample, provisioned one after another through the API.
    #[arg(long, default_value_t = 200)]
    tenants: u32,
    /// Keep provisioning up to this many tenants in total and report latency per block of
    /// `--tenants` (0 = skip).
    #[arg(long, default_value_t = 1000)]
    scale_to: u32,
    /// `CREATE DATABASE` samples per strategy (FILE_COPY, WAL_LOG) in the raw baseline.
    #[arg(long, default_value_t = 100)]
    baseline_samples: u32,
    /// Clients of the concurrent throughput phase, which provisions `--tenants` more tenants
    /// (0 = skip).
    #[arg(long, default_value_t = 4)]
    concurrency: u32,
    /// Bench this server (a superuser URL) instead of a private durable cluster. Everything the
    /// run creates there is dropped at the end.
    #[arg(long)]
    database_url: Option<String>,
    /// Use a throwaway cluster tuned for tests (fsync=off, …): quick, but not representative.
    #[arg(long, conflicts_with = "database_url")]
    fsync_off: bool,
    /// Spare databases per server (the control plane's `NEXACORE_SPARE_DATABASES`) while the
    /// API phases run; 0 = every signup builds its own database.
    #[arg(long, default_value_t = 2)]
    spares: u32,
    /// After the API phases, this many more signups with the spare pool off, for comparison
    /// (0 = skip).
    #[arg(long, default_value_t = 100)]
    without_spares: u32,
    /// Print a machine-readable JSON summary on stdout instead of tables.
    #[arg(long)]
    json: bool,
}

/// The flags, checked and resolved.
struct Settings {
    /// Size of the measured sample and of each scaling block.
    block: u32,
    /// Tenants provisioned sequentially in all (the sample plus the scaling blocks).
    sequential_total: u32,
    baseline_samples: u32,
    concurrency: u32,
    spares: u32,
    without_spares: u32,
    server: ServerChoice,
    json: bool,
}

impl Settings {
    fn resolve(args: ProvisionBenchArgs) -> anyhow::Result<Self> {
        if args.tenants == 0 || args.baseline_samples == 0 {
            bail!("--tenants and --baseline-samples must be at least 1");
        }
        if args.scale_to != 0 && args.scale_to < args.tenants {
            bail!("--scale-to must be 0 (skip) or at least --tenants ({})", args.tenants);
        }
        Ok(Self {
            block: args.tenants,
            sequential_total: args.scale_to.max(args.tenants),
            baseline_samples: args.baseline_samples,
            // More clients than tenants would leave some idle.
            concurrency: args.concurrency.min(args.tenants),
            spares: args.spares,
            // Without a pool in the main phases, the comparison would measure the same thing.
            without_spares: if args.spares == 0 { 0 } else { args.without_spares },
            server: ServerChoice::from_flags(args.database_url, args.fsync_off),
            json: args.json,
        })
    }

    /// Every tenant the run creates, so the server can be given room for them.
    fn tenants_created(&self) -> u32 {
        let concurrent = if self.concurrency > 0 { self.block } else { 0 };
        WARM_UP_TENANTS + self.sequential_total + concurrent + self.without_spares + self.spares
    }
}

pub async fn run(args: ProvisionBenchArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(args)?;
    let started = Instant::now();
    let names = RunNames::generate();
    let server = Server::start(&settings.server).await?;
    let outcome = until_interrupted(bench(&settings, &server, &names)).await;
    let cleaned = server.clean_up(|url| drop_run_objects(url, &names)).await;
    let mut report = outcome?;
    cleaned.context("cleaning up after the benchmark")?;
    report.elapsed_s = started.elapsed().as_secs_f64();
    output::emit(settings.json, &report, report::print)
}

/// Names of what this run creates on the server; the random part keeps runs against a shared
/// server apart.
struct RunNames {
    id: String,
    catalog: DbName,
    template: DbName,
}

impl RunNames {
    fn generate() -> Self {
        let id = format!("{:08x}", rand::random::<u32>());
        let db = |prefix: &str| DbName::parse(&format!("{prefix}_{id}")).expect("a valid database name");
        Self { catalog: db("bench_catalog"), template: db("bench_tpl"), id }
    }

    fn baseline(&self, n: u32) -> (DbName, RoleName) {
        let name = format!("bl_{}_{n}", self.id);
        (DbName::parse(&name).expect("a valid database name"), RoleName::parse(&name).expect("a valid role name"))
    }

    fn slug(&self, tag: &str) -> String {
        format!("bench-{}-{tag}", self.id)
    }
}

/// The whole measurement: baseline first (it decides the strategy the API runs with), then the
/// hash, then the API phases, then the baseline again.
async fn bench(settings: &Settings, server: &Server, names: &RunNames) -> anyhow::Result<Report> {
    let admin_url = server.admin_url();
    let secrets = api::prepare_catalog_and_template(&admin_url, names, settings.tenants_created()).await?;

    let (server_info, baseline) = baseline::measure_raw(&admin_url, names, settings.baseline_samples).await?;
    let strategy = baseline.faster();
    let hash = baseline::measure_hash().await?;

    let app = api::ControlPlane::start(&admin_url, names, &secrets, strategy, settings.spares).await?;
    let measured = api::measure(settings, &app, names).await;
    app.stop().await?;
    let (sequential, concurrent) = measured?;

    let without_spares = match settings.without_spares {
        0 => None,
        n => Some(api::measure_without_spares(&admin_url, names, &secrets, strategy, n).await?),
    };

    // Measured again after the API phases: the copy's cost drifts with the cluster's state
    // (checkpoints, WAL volume), and the ratio uses the lower of the two p50s (the stricter).
    let (_, baseline_after) = baseline::measure_raw(&admin_url, names, settings.baseline_samples).await?;
    // Likewise the hash; it is subtracted, so the lower p50 is the stricter.
    let hash_after = baseline::measure_hash().await?;

    Ok(Report::new(
        report::Run { server: server.describe(), block: settings.block, spares: settings.spares },
        server_info,
        strategy,
        sequential,
        concurrent,
        without_spares,
        [hash, hash_after],
        [baseline, baseline_after],
    ))
}

/// On someone else's server: this run's baseline leftovers (normally dropped at the end of the
/// baseline already; left only if it failed midway), then its tenants, catalog and template.
async fn drop_run_objects(admin_url: String, names: &RunNames) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(&admin_url).await.context("connecting to clean up")?;
    let pattern = format!("bl\\_{}\\_%", names.id);
    for databases in [true, false] {
        let sql = match databases {
            true => "SELECT datname FROM pg_database WHERE datname LIKE $1",
            false => "SELECT rolname FROM pg_roles WHERE rolname LIKE $1",
        };
        let leftovers: Vec<String> = sqlx::query_scalar(sql).bind(&pattern).fetch_all(&mut conn).await?;
        for name in leftovers {
            match databases {
                true => postgres::drop_database(&mut conn, &DbName::parse(&name).map_err(|e| anyhow!(e))?).await?,
                false => postgres::drop_role(&mut conn, &RoleName::parse(&name).map_err(|e| anyhow!(e))?).await?,
            }
        }
    }
    conn.close().await.ok();
    postgres::drop_platform(&admin_url, &names.catalog, &names.template).await
}

//! `router`: what the tenant router costs on top of a plain service, and how it
//! behaves with many tenants, measured in one process run on a private throwaway cluster:
//!
//! 1. **single tenant**: the same closed-loop `GET /employees?limit=50` workload against the
//!    router and against a baseline (a minimal poem + sqlx service over the same tenant
//!    database, as the same role, with a pool the size of the router's per-tenant share),
//!    alternated so drift cancels out; then what each of the router's steps costs alone;
//! 2. **many tenants**: real tenants (of many more registered) under a Zipf(1.0) access
//!    pattern and a connection budget, counted from `pg_stat_activity` while it runs;
//! 3. **thundering herd**: many concurrent first requests for one cold tenant;
//! 4. **memory** per cached tenant, from the resident set of a fresh process of this binary that holds
//!    only a router (`--memory-probe`, started by the benchmark itself).
//!
//! The load generator runs in this process but on a tokio runtime of its own
//! ([`load_runtime`]), so the services under test never queue behind their clients' tasks.
//!
//! Where the machine's CPU went during the measured runs (this process, Postgres, anything
//! else) is reported next to the figures: on a shared machine, other work skews them.
//!
//! Figures are reported next to their targets, never asserted: a missed target is a finding.
//! The command fails only when something breaks (provisioning, an unreachable server).

mod baseline;
mod connections;
mod cpu;
mod floor;
mod herd;
mod load;
mod many;
mod memory;
mod metrics_cost;
mod platform;
mod print;
mod report;
mod results;
mod single;

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use sqlx::{Connection, PgConnection};
use stack::router::PoolConfig;

use crate::harness::machine::{huge_pages_in_use, load_average, proc_stat};
use crate::harness::{output, postgres, until_interrupted};
use platform::{BenchPlatform, Fleet};
use report::Report;
use results::{Herd, ManyTenants, Memory, SingleTenant};

/// The benchmark's Postgres server settings, on top of the throwaway cluster's.
///
/// `shared_buffers`: each new backend reads 130–200 pages of its own database's catalogs, so a
/// server for a thousand tenant databases needs about 1.5 GB to keep them all in memory. With
/// the default 128 MB only a hundred or so fit, and every cold tenant's connect read its
/// catalogs back from the OS (perf: `mdread` took 6 % of Postgres's CPU in a Zipf run). No
/// server sized for a thousand databases runs on the default; Postgres's documentation
/// suggests a quarter of the RAM for a dedicated one.
const SERVER_SETTINGS: &[(&str, &str)] = &[("shared_buffers", "2GB")];

const ZIPF_EXPONENT: f64 = 1.0;
/// The page size of the workload: `GET /employees?limit=50`.
const PAGE_SIZE: u32 = 50;
/// First requests sent this soon after the many-tenant load starts meet a router where every
/// tenant is cold at once (a restart); they are also reported apart from the later ones.
const START_WINDOW: Duration = Duration::from_secs(2);
/// How often the connection sampler looks at `pg_stat_activity` and the router's count.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);
/// Tenants provisioned besides the active ones: the single-tenant phase's and the herd's.
const OTHER_REAL_TENANTS: usize = 2;

#[derive(Args)]
pub struct RouterBenchArgs {
    /// A smoke run: 100 active of 1,000 registered tenants, 3-second load phases.
    #[arg(long)]
    quick: bool,
    /// Print a machine-readable JSON report on stdout instead of tables.
    #[arg(long)]
    json: bool,
    /// Internal: run as the memory probe, a fresh process the benchmark starts for phase 4
    /// (reads its input as JSON on stdin, prints its figures as JSON on stdout).
    #[arg(long, hide = true)]
    memory_probe: bool,
    /// For profiling with an outside load generator (`wrk`, `perf`): set up phase 1 (a tenant
    /// with its employees, the router and the baseline), print both URLs and the token, and
    /// serve until Ctrl-C instead of measuring.
    #[arg(long)]
    serve: bool,
    /// Measure only what recording metrics costs: phase 1's closed loop against a router with
    /// metrics on and one with them off, alternated (goal: ≥ 0.97× the throughput).
    #[arg(long)]
    metrics_cost: bool,
}

/// The flags, resolved into the numbers each phase runs with.
struct Settings {
    quick: bool,
    json: bool,
    serve: bool,
    metrics_cost: bool,
    load_average_at_start: f64,
    /// Single tenant: closed-loop clients, warm-up and measured time per run, rounds of
    /// (router, baseline) pairs, employees in the tenant, and the pool size of both sides.
    clients: usize,
    warm_up: Duration,
    run: Duration,
    rounds: usize,
    /// The same with one client: its warm-up and measured time per run.
    light_warm_up: Duration,
    light_run: Duration,
    employees: usize,
    share: usize,
    /// Calls per step when timing the router's steps one by one.
    step_samples: usize,
    /// Many tenants: real (provisioned, Zipf-active) tenants, tenants in the catalog in all,
    /// concurrent provisioning clients, load clients and duration, the connection budget and
    /// per-tenant share.
    active: usize,
    registered: usize,
    provision_clients: usize,
    zipf_clients: usize,
    zipf_run: Duration,
    budget: usize,
    zipf_share: usize,
    /// Concurrent first requests for one cold tenant.
    herd: usize,
    /// Clients that touch every active tenant once in the memory phase.
    touch_clients: usize,
}

impl Settings {
    fn resolve(args: &RouterBenchArgs) -> Self {
        let quick = args.quick;
        let secs = |full: u64, smoke: u64| Duration::from_secs(if quick { smoke } else { full });
        Self {
            quick,
            json: args.json,
            serve: args.serve,
            metrics_cost: args.metrics_cost,
            load_average_at_start: load_average()[0],
            clients: 16,
            warm_up: secs(2, 1),
            run: secs(5, 3),
            // The machine may be shared: alternating often cancels load that comes and goes.
            rounds: if quick { 2 } else { 4 },
            light_warm_up: Duration::from_secs(1),
            light_run: secs(3, 2),
            employees: 200,
            share: PoolConfig::default().max_per_tenant,
            step_samples: if quick { 1_000 } else { 10_000 },
            active: if quick { 100 } else { 1_000 },
            registered: if quick { 1_000 } else { 10_000 },
            provision_clients: 4,
            zipf_clients: 32,
            zipf_run: secs(20, 3),
            budget: 100,
            zipf_share: 4,
            herd: 1_000,
            touch_clients: 8,
        }
    }
}

impl Settings {
    /// The pool of the many-tenant phases' routers: the connection budget and per-tenant share.
    fn many_tenant_pool(&self, config: &mut stack::RouterConfig) {
        config.pool.budget_per_server = self.budget;
        config.pool.max_per_tenant = self.zipf_share;
    }
}

pub async fn run(args: RouterBenchArgs) -> anyhow::Result<()> {
    if args.memory_probe {
        return memory::probe().await;
    }
    let settings = Settings::resolve(&args);
    let started = Instant::now();
    let server_settings = SERVER_SETTINGS.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let cluster = postgres::start_throwaway(server_settings).await?;
    if settings.metrics_cost {
        let outcome = until_interrupted(metrics_cost_only(&settings, &cluster.superuser_url())).await;
        let stopped = postgres::stop_throwaway(cluster).await;
        let cost = outcome?;
        stopped?;
        return output::emit(settings.json, &cost, metrics_cost::print);
    }
    // Ctrl-C ends the measurement; the cluster is stopped either way (and by its watchdog if
    // this process dies).
    let outcome = until_interrupted(bench(&settings, &cluster.superuser_url())).await;
    let stopped = postgres::stop_throwaway(cluster).await;
    let mut report = outcome?;
    stopped?;
    report.elapsed_s = started.elapsed().as_secs_f64();
    output::emit(settings.json, &report, print::report)
}

async fn bench(settings: &Settings, admin_url: &str) -> anyhow::Result<Report> {
    let mut admin = PgConnection::connect(admin_url).await.context("connecting as the superuser")?;
    let version: String = sqlx::query_scalar("SHOW server_version").fetch_one(&mut admin).await?;
    let shared_buffers: String = sqlx::query_scalar("SHOW shared_buffers").fetch_one(&mut admin).await?;
    let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut admin).await?;
    let postmaster = u32::try_from(backend).ok().and_then(proc_stat).map(|s| s.ppid);
    let huge_pages = match postmaster.and_then(huge_pages_in_use) {
        Some(true) => "in use",
        Some(false) => "not in use",
        None => "unknown",
    };
    let postgres = format!("{version} (shared_buffers {shared_buffers}, huge pages {huge_pages})");
    platform::require_scram_for_tenant_roles(&mut admin).await?;
    admin.close().await.ok();

    let platform = BenchPlatform::start(admin_url, settings, postmaster).await?;
    if settings.serve {
        single::serve(settings, &platform).await?;
    }
    let measured = measure(settings, &platform).await;
    platform.stop().await?;
    let (tenant_auth, single, many, herd, memory) = measured?;
    Ok(Report::new(settings.quick, settings.load_average_at_start, postgres, tenant_auth, single, many, herd, memory))
}

/// `--metrics-cost`: the platform, then only the metrics on / off comparison.
async fn metrics_cost_only(settings: &Settings, admin_url: &str) -> anyhow::Result<metrics_cost::MetricsCost> {
    let mut admin = PgConnection::connect(admin_url).await.context("connecting as the superuser")?;
    let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut admin).await?;
    let postmaster = u32::try_from(backend).ok().and_then(proc_stat).map(|s| s.ppid);
    platform::require_scram_for_tenant_roles(&mut admin).await?;
    admin.close().await.ok();
    let platform = BenchPlatform::start(admin_url, settings, postmaster).await?;
    let measured = metrics_cost::phase(settings, &platform).await;
    platform.stop().await?;
    measured
}

type Measured = (String, SingleTenant, ManyTenants, Herd, Memory);

async fn measure(settings: &Settings, platform: &BenchPlatform) -> anyhow::Result<Measured> {
    let single_tenant = platform.provision("single").await.context("provisioning the single tenant")?;
    let tenant_auth = platform::check_tenant_auth(platform, &single_tenant).await?;
    status(settings, "single tenant: router against baseline");
    let single = single::phase(settings, platform, &single_tenant).await?;

    status(settings, "provisioning the many-tenant fleet through the control plane API");
    let provisioning = Instant::now();
    let herd_tenant = platform.provision("herd").await.context("provisioning the herd tenant")?;
    let active = platform.provision_many(settings.active, settings.provision_clients).await?;
    let provisioning_s = provisioning.elapsed().as_secs_f64();
    let catalog_only = settings.registered.saturating_sub(active.len() + OTHER_REAL_TENANTS);
    platform.register_catalog_only(catalog_only).await?;
    let fleet = Fleet { active, catalog_only, provisioning_s };

    // Before the load phases, so that its router is the only one connected meanwhile.
    status(settings, "memory per cached tenant");
    let memory = memory::phase(settings, platform, &fleet.active, &single_tenant).await?;
    status(settings, "many tenants: Zipf(1.0) under the connection budget");
    let many = many::phase(settings, platform, &fleet, &single_tenant).await?;
    status(settings, "thundering herd on one cold tenant");
    let herd = herd::phase(settings, platform, &herd_tenant, &single_tenant).await?;
    Ok((tenant_auth, single, many, herd, memory))
}

fn status(settings: &Settings, message: &str) {
    if !settings.json {
        eprintln!("{message} …");
    }
}

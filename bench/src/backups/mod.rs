//! `backups`: backing up every tenant through the control plane (what `ops tenants backup
//! --all` does: `POST /tenants/{id}/backups` for each, `--parallel` at a time, each followed
//! until `done`, `pg_dump` as the tenant's role with a manifest and a SHA-256), next to the loop
//! an operator would otherwise write: `pg_dump --format=custom` of each database, one after the
//! other, as the superuser. Same server, same tenants, one run; the figures are reported,
//! never asserted.
//!
//! The tenants are signed up through the API (small: a seeded company, no employees), so they
//! are exactly what production holds.

use std::path::Path;
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use futures::StreamExt as _;
use serde::Serialize;
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use stack::{Company, Platform};
use tenancy::DbName;

use crate::harness::postgres::{self, Server, ServerChoice};
use crate::harness::{machine, output, platform, until_interrupted};

#[derive(Args)]
pub struct BackupsBenchArgs {
    /// Tenants signed up, then backed up by each side.
    #[arg(long, default_value_t = 200)]
    tenants: u32,
    /// Backups the control plane runs at once (`ops tenants backup --all --parallel N`).
    #[arg(long, default_value_t = 4)]
    parallel: u32,
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

/// One side's figures.
#[derive(Debug, Serialize)]
struct Side {
    name: &'static str,
    wall_s: f64,
    per_tenant_ms: f64,
    bytes: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    server: &'static str,
    cpus: usize,
    tenants: u32,
    parallel: u32,
    signup_s: f64,
    platform: Side,
    baseline: Side,
    /// Baseline wall time over the platform's: above 1, the platform is faster.
    speedup: f64,
}

pub async fn run(args: BackupsBenchArgs) -> anyhow::Result<()> {
    if args.tenants == 0 || !(1..=64).contains(&args.parallel) {
        bail!("--tenants must be at least 1 and --parallel between 1 and 64");
    }
    let id = format!("{:08x}", rand::random::<u32>());
    let server = Server::start(&ServerChoice::from_flags(args.database_url.clone(), args.fsync_off)).await?;
    let work = tempfile::tempdir().context("a directory for the dumps")?;
    let outcome = until_interrupted(bench(&args, &server, &id, work.path())).await;
    let (catalog, template) = (catalog_name(&id), template_name(&id));
    let cleaned = server.clean_up(|url| async move { postgres::drop_platform(&url, &catalog, &template).await }).await;
    let report = outcome?;
    cleaned.context("cleaning up after the benchmark")?;
    output::emit(args.json, &report, print)
}

fn catalog_name(id: &str) -> DbName {
    DbName::parse(&format!("bench_bcatalog_{id}")).expect("a valid name")
}

fn template_name(id: &str) -> DbName {
    DbName::parse(&format!("bench_btpl_{id}")).expect("a valid name")
}

async fn bench(args: &BackupsBenchArgs, server: &Server, id: &str, work: &Path) -> anyhow::Result<Report> {
    let admin_url = server.admin_url();
    let (template, dir, parallel) = (template_name(id), work.join("control-plane"), args.parallel as usize);
    let builder = platform::builder(&admin_url, move |config| {
        config.template_database = template;
        config.spare_databases_per_server = 0;
        config.backups.dir = dir;
        config.backups.concurrency = parallel;
    })
    .catalog_database(catalog_name(id));
    let app = platform::start(builder).await?;
    platform::make_room(&app.catalog_url, args.tenants as usize + 10).await?;
    let signing = Instant::now();
    let slugs = (0..args.tenants).map(|i| format!("bk-{id}-{i}")).collect();
    let companies = platform::sign_up_many(&app, slugs, 4, "signing tenants up").await?;
    let signup_s = signing.elapsed().as_secs_f64();

    // The platform first: whatever the first side leaves warm helps the loop, not the platform.
    let ours = through_the_platform(&app, &companies, parallel).await;
    let baseline = baseline(&admin_url, &companies, &work.join("loop")).await;
    app.stop().await.context("stopping the control plane")?;
    let (baseline, ours) = (baseline?, ours?);
    Ok(Report {
        server: server.describe(),
        cpus: machine::cores(),
        tenants: args.tenants,
        parallel: args.parallel,
        signup_s,
        speedup: baseline.wall_s / ours.wall_s.max(f64::EPSILON),
        platform: ours,
        baseline,
    })
}

/// `POST /tenants/{id}/backups` for each tenant, `parallel` at a time, each followed until done.
async fn through_the_platform(app: &Platform, companies: &[Company], parallel: usize) -> anyhow::Result<Side> {
    let bar = output::progress(companies.len() as u64, "backups through the control plane");
    let started = Instant::now();
    let sizes: Vec<anyhow::Result<u64>> = futures::stream::iter(companies)
        .map(|company| {
            let bar = &bar;
            async move {
                let size = back_up_one(app, company).await?;
                bar.inc(1);
                Ok(size)
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    let wall_s = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let bytes = sizes.into_iter().sum::<anyhow::Result<u64>>()?;
    Ok(side("control plane (ops tenants backup --all)", wall_s, companies.len(), bytes))
}

async fn back_up_one(app: &Platform, company: &Company) -> anyhow::Result<u64> {
    let base = &app.control_plane.url;
    let started: Value = app
        .http
        .post(format!("{base}/tenants/{}/backups", company.id))
        .bearer_auth(&app.operator_token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let backup = started["id"].as_str().context("a backup id")?.to_owned();
    loop {
        let view: Value = app
            .http
            .get(format!("{base}/backups/{backup}"))
            .bearer_auth(&app.operator_token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        match view["status"].as_str() {
            Some("done") => return view["manifest"]["size"].as_u64().context("a manifest with a size"),
            Some("running") => tokio::time::sleep(Duration::from_millis(10)).await,
            other => bail!("backup of {} ended {other:?}: {}", company.slug, view["error"]),
        }
    }
}

/// `pg_dump --format=custom` of each tenant database, one after the other, as the superuser.
async fn baseline(admin_url: &str, companies: &[Company], dir: &Path) -> anyhow::Result<Side> {
    let tools = tokio::task::spawn_blocking(local_postgres::find_dump_tools).await??;
    let admin = PgConnectOptions::from_str(admin_url).context("not a postgres:// URL")?;
    std::fs::create_dir_all(dir)?;
    let bar = output::progress(companies.len() as u64, "sequential pg_dump loop");
    let started = Instant::now();
    let mut bytes = 0;
    for company in companies {
        let out = dir.join(format!("{}.dump", company.id.simple()));
        let status = tokio::process::Command::new(tools.pg_dump())
            .arg("--format=custom")
            .arg("--no-password")
            .arg("--file")
            .arg(&out)
            .env("PGHOST", admin.get_host())
            .env("PGPORT", admin.get_port().to_string())
            .env("PGUSER", admin.get_username())
            .env("PGPASSWORD", admin_password(admin_url))
            .env("PGDATABASE", format!("t_{}", company.id.simple()))
            .stdin(std::process::Stdio::null())
            .status()
            .await
            .context("running pg_dump")?;
        if !status.success() {
            bail!("pg_dump of {} failed ({status})", company.slug);
        }
        bytes += std::fs::metadata(&out)?.len();
        bar.inc(1);
    }
    let wall_s = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    Ok(side("sequential pg_dump loop (superuser)", wall_s, companies.len(), bytes))
}

fn admin_password(admin_url: &str) -> String {
    url::Url::parse(admin_url).ok().and_then(|u| u.password().map(str::to_owned)).unwrap_or_default()
}

fn side(name: &'static str, wall_s: f64, tenants: usize, bytes: u64) -> Side {
    Side { name, wall_s, per_tenant_ms: wall_s * 1000.0 / tenants.max(1) as f64, bytes }
}

fn print(r: &Report) {
    println!("backups: {} tenants on a {} ({} cores)", r.tenants, r.server, r.cpus);
    println!("signed up in {:.1} s", r.signup_s);
    let mut table = output::new_table(&["side", "wall (s)", "per tenant (ms)", "dump bytes"]);
    for s in [&r.platform, &r.baseline] {
        table.add_row(vec![
            s.name.to_owned(),
            format!("{:.2}", s.wall_s),
            format!("{:.1}", s.per_tenant_ms),
            s.bytes.to_string(),
        ]);
    }
    println!("{table}");
    println!(
        "control plane, --parallel {}: {:.2}× the sequential loop's speed (loop {:.2} s / control plane {:.2} s)",
        r.parallel, r.speedup, r.baseline.wall_s, r.platform.wall_s
    );
}

//! The provisioning benchmark's measured side: companies signed up through the control plane's
//! `POST /tenants`, one after another (the sample and the scaling blocks), by concurrent
//! clients, and with the spare pool off.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use secrecy::SecretString;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use stack::control::CreateDatabaseStrategy;
use stack::{Platform, PlatformBuilder};

use super::{RunNames, Settings, WARM_UP_TENANTS};
use crate::harness::output::progress;
use crate::harness::platform;

/// The secrets of the run's control plane; every start must share them (the catalog holds the
/// server URL sealed with the master key).
pub struct Secrets {
    master_key: SecretString,
    operator_token: String,
}

fn builder(
    admin_url: &str,
    names: &RunNames,
    strategy: CreateDatabaseStrategy,
    spares: u32,
    secrets: Option<&Secrets>,
) -> PlatformBuilder {
    let template = names.template.clone();
    let builder = platform::builder(admin_url, move |config| {
        config.template_database = template;
        config.create_database_strategy = strategy;
        config.spare_databases_per_server = spares;
    })
    .catalog_database(names.catalog.clone());
    match secrets {
        Some(s) => builder.secrets(s.master_key.clone(), SecretString::from(s.operator_token.clone())),
        None => builder,
    }
}

/// Creates the catalog and the template through the platform's start-up, the same path
/// production uses, so the baseline copies exactly the template tenants are copied from. The
/// baseline has to run before the measured control plane is configured (it picks the
/// strategy), and the strategy is fixed at start, so this first one only prepares. Returns the
/// secrets it generated, for the later starts.
pub async fn prepare_catalog_and_template(admin_url: &str, names: &RunNames, tenants: u32) -> anyhow::Result<Secrets> {
    let prepared = platform::start(builder(admin_url, names, CreateDatabaseStrategy::FileCopy, 0, None)).await?;
    let secrets = Secrets { master_key: prepared.master_key.clone(), operator_token: prepared.operator_token.clone() };
    let catalog_url = prepared.catalog_url.clone();
    prepared.stop().await?;
    // The primary server registers with room for 1,000 tenants; a scaling run may want more.
    platform::make_room(&catalog_url, tenants as usize).await?;
    Ok(secrets)
}

/// The control plane, serving in this process, and a connection to its catalog to watch the
/// spare pool.
pub struct ControlPlane {
    platform: Platform,
    catalog: PgPool,
}

impl ControlPlane {
    pub async fn start(
        admin_url: &str,
        names: &RunNames,
        secrets: &Secrets,
        strategy: CreateDatabaseStrategy,
        spares: u32,
    ) -> anyhow::Result<Self> {
        let platform = platform::start(builder(admin_url, names, strategy, spares, Some(secrets))).await?;
        let catalog = PgPoolOptions::new().max_connections(1).connect_lazy(&platform.catalog_url)?;
        Ok(Self { platform, catalog })
    }

    /// Signups that adopted a spare database so far.
    fn adopted(&self) -> u64 {
        self.platform.control_plane.spare_pool.stats().adopted
    }

    /// Waits until the catalog holds exactly `count` spare databases, all ready (the pool at
    /// rest), so a phase starts from the state an idle platform is in.
    async fn wait_for_spares(&self, count: i64) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (ready, all): (i64, i64) =
                sqlx::query_as("SELECT count(*) FILTER (WHERE status = 'ready'), count(*) FROM spare_databases")
                    .fetch_one(&self.catalog)
                    .await?;
            if ready == count && all == count {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the spare pool did not settle at {count} (ready {ready}, all {all})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Provisions the company `slug` (operator token) and returns the request's round-trip
    /// time; anything but 201 is an error that ends the benchmark.
    async fn provision(&self, slug: &str) -> anyhow::Result<Duration> {
        let started = Instant::now();
        self.platform.signup(slug).await.with_context(|| format!("provisioning tenant {slug}"))?;
        Ok(started.elapsed())
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.catalog.close().await;
        self.platform.stop().await.context("stopping the control plane")
    }
}

/// Sequential latencies of every measured tenant, and the wall time of each block.
pub struct Sequential {
    pub latencies: Vec<Duration>,
    pub block_walls: Vec<Duration>,
    /// Signups (of all blocks) that adopted a spare database.
    pub adopted: u64,
}

pub struct Concurrent {
    pub clients: u32,
    pub latencies: Vec<Duration>,
    pub wall: Duration,
    pub adopted: u64,
}

/// The warm-up, the sequential sample and scaling blocks, then the concurrent phase, each
/// starting from a pool at rest.
pub async fn measure(
    settings: &Settings,
    app: &ControlPlane,
    names: &RunNames,
) -> anyhow::Result<(Sequential, Option<Concurrent>)> {
    for i in 0..WARM_UP_TENANTS {
        app.provision(&names.slug(&format!("w{i}"))).await.context("warm-up")?;
    }
    app.wait_for_spares(i64::from(settings.spares)).await?;
    let before = app.adopted();
    let mut sequential = provision_sequentially(app, names, settings.sequential_total, settings.block).await?;
    sequential.adopted = app.adopted() - before;
    let concurrent = match settings.concurrency {
        0 => None,
        clients => {
            app.wait_for_spares(i64::from(settings.spares)).await?;
            let before = app.adopted();
            let mut concurrent = provision_concurrently(app, names, clients, settings.block).await?;
            concurrent.adopted = app.adopted() - before;
            Some(concurrent)
        }
    };
    Ok((sequential, concurrent))
}

async fn provision_sequentially(
    app: &ControlPlane,
    names: &RunNames,
    total: u32,
    block: u32,
) -> anyhow::Result<Sequential> {
    let bar = progress(u64::from(total), "API, sequential");
    let mut latencies = Vec::with_capacity(total as usize);
    let mut block_walls = Vec::new();
    let mut block_started = Instant::now();
    for n in 1..=total {
        latencies.push(app.provision(&names.slug(&format!("s{n}"))).await?);
        bar.inc(1);
        if n.is_multiple_of(block) || n == total {
            block_walls.push(block_started.elapsed());
            block_started = Instant::now();
        }
    }
    bar.finish_and_clear();
    Ok(Sequential { latencies, block_walls, adopted: 0 })
}

/// `tenants` tenants split over `clients` clients that each provision one after another.
async fn provision_concurrently(
    app: &ControlPlane,
    names: &RunNames,
    clients: u32,
    tenants: u32,
) -> anyhow::Result<Concurrent> {
    let bar = progress(u64::from(tenants), &format!("API, {clients} concurrent"));
    let started = Instant::now();
    let runs = (0..clients).map(|client| {
        let count = tenants / clients + u32::from(client < tenants % clients);
        let bar = &bar;
        async move {
            let mut latencies = Vec::with_capacity(count as usize);
            for n in 1..=count {
                latencies.push(app.provision(&names.slug(&format!("c{client}-{n}"))).await?);
                bar.inc(1);
            }
            anyhow::Ok(latencies)
        }
    });
    let latencies = futures::future::try_join_all(runs).await?.concat();
    let wall = started.elapsed();
    bar.finish_and_clear();
    Ok(Concurrent { clients, latencies, wall, adopted: 0 })
}

/// `n` sequential signups on a control plane restarted with the pool off: its refiller retires
/// and drops the spares left, and the sample starts once they are gone.
pub async fn measure_without_spares(
    admin_url: &str,
    names: &RunNames,
    secrets: &Secrets,
    strategy: CreateDatabaseStrategy,
    n: u32,
) -> anyhow::Result<Vec<Duration>> {
    let app = ControlPlane::start(admin_url, names, secrets, strategy, 0).await?;
    let measured = async {
        app.wait_for_spares(0).await?;
        let bar = progress(u64::from(n), "API, spare pool off");
        let mut latencies = Vec::with_capacity(n as usize);
        for i in 1..=n {
            latencies.push(app.provision(&names.slug(&format!("n{i}"))).await?);
            bar.inc(1);
        }
        bar.finish_and_clear();
        anyhow::Ok(latencies)
    }
    .await;
    app.stop().await?;
    measured
}

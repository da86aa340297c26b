//! The migration benchmark's three sides, each on its own third of the tenants, each after a
//! CHECKPOINT and with the CPU time it cost: the engine (a run through the control plane's
//! API), the floor (the least any migrator does per database), and the baseline (one fresh
//! process per database, one after the other).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt as _;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use stack::Platform;
use stack::control::MigrationSet;

use super::tenants::BenchTenant;
use crate::harness::machine::{CLOCK_TICKS_PER_S, own_stat, postgres_ticks};
use crate::harness::output::progress;
use crate::harness::postgres::{checkpoint, database_url};

// ---------------------------------------------------------------------------------------------
// The engine

pub struct EngineResult {
    pub tenants: usize,
    /// From the request to the run's end, as the client saw it.
    pub wall: Duration,
    /// Inside the control plane: the run's creation to its end.
    pub server_elapsed_s: f64,
    pub run: Value,
    pub cpu: Option<Cpu>,
}

pub async fn measure_engine(
    app: &Platform,
    tenants: &[BenchTenant],
    concurrency: u32,
    admin: &PgConnectOptions,
    postmaster: Option<u32>,
) -> anyhow::Result<EngineResult> {
    checkpoint(admin).await?;
    let cpu_before = Cpu::now(postmaster);
    let (http, token, base_url) = (&app.http, &app.operator_token, &app.control_plane.url);
    let ids: Vec<String> = tenants.iter().map(|t| t.id.0.to_string()).collect();
    let body = json!({
        "tenants": ids,
        "concurrency": concurrency,
        "per_server_concurrency": concurrency,
        "failure_policy": "continue",
    });
    let bar = progress(tenants.len() as u64, &format!("engine, concurrency {concurrency}"));
    let started = Instant::now();
    let response = http.post(format!("{}/migrations/runs", base_url)).bearer_auth(token).json(&body).send().await?;
    let status = response.status();
    let mut run: Value = response.json().await?;
    if !status.is_success() {
        bail!("starting the run failed: {status}: {run}");
    }
    let id = run["id"].as_str().context("a run id")?.to_owned();
    while matches!(run["state"].as_str(), Some("running" | "cancelling")) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        run = http.get(format!("{}/migrations/runs/{id}", base_url)).bearer_auth(token).send().await?.json().await?;
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

pub struct FloorResult {
    pub tenants: usize,
    pub wall: Duration,
    pub cpu: Option<Cpu>,
}

/// Per database: connect (as the superuser, like the engine), `BEGIN`, the migration and its
/// history row in one round trip, `COMMIT`, close; `concurrency` databases at a time. No
/// catalog, no router lock, no advisory lock, no history check, no records: what is left is
/// what Postgres must do for any migrator, which bounds every engine's speed on this server.
pub async fn measure_floor(
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

pub struct BaselineResult {
    pub tenants: usize,
    pub wall: Duration,
    /// Per tenant: (process wall, connect, migrate) in ms.
    pub samples: Vec<(f64, f64, f64)>,
    pub cpu: Option<Cpu>,
}

pub async fn measure_baseline(
    admin_url: &str,
    admin: &PgConnectOptions,
    tenants: &[BenchTenant],
    dir: &Path,
    postmaster: Option<u32>,
) -> anyhow::Result<BaselineResult> {
    checkpoint(admin).await?;
    let cpu_before = Cpu::now(postmaster);
    let exe = std::env::current_exe().context("locating this executable")?;
    let bar = progress(tenants.len() as u64, "baseline, one process per database");
    let mut samples = Vec::with_capacity(tenants.len());
    let started = Instant::now();
    for tenant in tenants {
        let url = database_url(admin_url, tenant.id.database_name().as_str())?;
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
            .context("running migrate-one")?;
        let process_ms = spawned.elapsed().as_secs_f64() * 1000.0;
        if !output.status.success() {
            bail!("migrate-one failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let reported: Value = serde_json::from_slice(&output.stdout).context("migrate-one's report")?;
        if reported["applied"] != 1 {
            bail!("migrate-one applied {} migrations, expected 1", reported["applied"]);
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

// ---------------------------------------------------------------------------------------------
// CPU accounting: where the machine's cycles went during a side

/// CPU seconds used so far by the Postgres server (postmaster, live backends, and reaped ones),
/// by this process, and by this process's reaped children.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub postgres: f64,
    pub own: f64,
    pub children: f64,
}

impl Cpu {
    fn now(postmaster: Option<u32>) -> Option<Self> {
        let seconds = |ticks: u64| ticks as f64 / CLOCK_TICKS_PER_S;
        let own = own_stat()?;
        let postgres = match postmaster {
            Some(pm) => seconds(postgres_ticks(pm)?),
            None => 0.0,
        };
        Some(Cpu { postgres, own: seconds(own.utime + own.stime), children: seconds(own.cutime + own.cstime) })
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            postgres: self.postgres - before.postgres,
            own: self.own - before.own,
            children: self.children - before.children,
        }
    }
}

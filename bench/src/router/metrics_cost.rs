//! `--metrics-cost`: what recording Prometheus metrics costs the router. Phase 1's closed loop
//! (`GET /employees?limit=50`, one tenant) against two routers over the same tenant, one with
//! metrics on and one with them off (`NEXACORE_METRICS`), alternated in rounds so drift favours
//! neither. The goal is at least 0.97× the throughput with metrics on.

use anyhow::{Context, bail};
use serde::Serialize;

use super::Settings;
use super::load::{Arrivals, employees_url, http_client};
use super::platform::BenchPlatform;
use super::results::LoadStats;
use super::single::{Alternation, add_employees};

#[derive(Serialize)]
pub struct MetricsCost {
    pub clients: usize,
    pub rounds: usize,
    pub run_s: f64,
    /// Requests per second with metrics on ÷ with them off.
    pub throughput_ratio: f64,
    pub metrics_on: LoadStats,
    pub metrics_off: LoadStats,
    /// Requests the metrics-on router counted in `nexacore_http_requests_total` (all routes).
    pub requests_counted: u64,
}

pub async fn phase(settings: &Settings, platform: &BenchPlatform) -> anyhow::Result<MetricsCost> {
    let tenant = platform.provision("metrics").await.context("provisioning the tenant")?;
    let start = |name: &str, metrics: bool| {
        platform.start_router(format!("bench-router-{name}-{}", platform.run_id), move |c| {
            c.pool.max_per_tenant = settings.share;
            c.pool.budget_per_server = settings.budget;
            c.metrics = metrics;
        })
    };
    let on = start("metrics-on", true).await?;
    let off = start("metrics-off", false).await?;
    add_employees(&on.url, &tenant.token, settings.employees).await?;

    let (on_url, off_url) = (employees_url(&on.url), employees_url(&off.url));
    let on_clients: Vec<_> = (0..settings.clients).map(|_| http_client()).collect();
    let off_clients: Vec<_> = (0..settings.clients).map(|_| http_client()).collect();
    let alternation = Alternation {
        clients: (&on_clients, &off_clients),
        urls: (&on_url, &off_url),
        token: &tenant.token,
        rounds: settings.rounds,
        warm_up: settings.warm_up,
        run: settings.run,
        arrivals: Arrivals::ClosedLoop,
        postmaster: platform.postmaster,
    };
    let measured = alternation.run("metrics on / off runs").await;
    let counted = requests_counted(&on.url).await;
    let off_answer = reqwest::get(format!("{}/metrics", off.url)).await.map(|r| r.status().as_u16());
    off.stop().await?;
    on.stop().await?;
    let (on_runs, off_runs) = measured?;
    if off_answer? != 404 {
        bail!("the router with metrics off still serves /metrics");
    }
    let (metrics_on, metrics_off) =
        (LoadStats::of(&on_runs.tally, on_runs.wall), LoadStats::of(&off_runs.tally, off_runs.wall));
    Ok(MetricsCost {
        clients: settings.clients,
        rounds: settings.rounds,
        run_s: settings.run.as_secs_f64(),
        throughput_ratio: metrics_on.requests_per_s / metrics_off.requests_per_s,
        metrics_on,
        metrics_off,
        requests_counted: counted?,
    })
}

/// The sum of `nexacore_http_requests_total` over every series (the text format read by hand:
/// the benchmark only needs one sum).
async fn requests_counted(router_url: &str) -> anyhow::Result<u64> {
    let text = reqwest::get(format!("{router_url}/metrics")).await?.text().await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("nexacore_http_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

pub fn print(cost: &MetricsCost) {
    println!(
        "Metrics on vs off: {} closed-loop clients, {} rounds of {:.0} s each side",
        cost.clients, cost.rounds, cost.run_s
    );
    for (name, stats) in [("metrics on", &cost.metrics_on), ("metrics off", &cost.metrics_off)] {
        println!(
            "  {name:<12} {:>9.0} req/s   p50 {:>6} µs   p99 {:>6} µs   errors {}",
            stats.requests_per_s, stats.p50_us, stats.p99_us, stats.errors
        );
    }
    println!("  throughput ratio (on ÷ off): {:.3} (goal ≥ 0.97)", cost.throughput_ratio);
    println!("  requests counted by the metrics-on router: {}", cost.requests_counted);
}

//! `passwords`: login and signup throughput with the password throttle and the bounded hashing
//! pool in place, next to the same control plane with hashing unbounded (one blocking thread
//! per request, up to tokio's 512: how password checks ran before the pool), in the same run,
//! on one private Postgres cluster.
//!
//! Each side gets its own control plane and catalog. Logins use distinct users, so the throttle
//! does its bookkeeping on every attempt without refusing any (its per-client limit is raised:
//! the whole load comes from 127.0.0.1). Per side and per concurrency: successful logins per
//! second, answers refused as busy (503), the p50/p99 latency of the successful ones, and the
//! peak resident memory of this process while that phase ran (sampled every 10 ms).

mod report;

use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use serde::Serialize;
use serde_json::json;
use stack::control::HashingConfig;
use stack::{Platform, TEST_PASSWORD};
use tenancy::DbName;

use crate::harness::machine::PeakRss;
use crate::harness::output::progress;
use crate::harness::{platform, postgres};
use report::Phase;

#[derive(Args)]
pub struct PasswordsBenchArgs {
    /// Users (companies) to sign up per side; logins cycle through them.
    #[arg(long, default_value_t = 40)]
    users: u32,
    /// Logins per concurrency level and side.
    #[arg(long, default_value_t = 400)]
    logins: u32,
    /// Concurrency levels (requests in flight) to measure logins at.
    #[arg(long, value_delimiter = ',', default_value = "8,64,400")]
    concurrency: Vec<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// How the control plane runs password hashes.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
enum Hashing {
    /// The pool: one hash per core, a short queue, 503 past it.
    Bounded,
    /// One blocking thread per request (before the pool).
    Unbounded,
}

pub async fn run(args: PasswordsBenchArgs) -> anyhow::Result<()> {
    let cluster = postgres::start_throwaway(Vec::new()).await?;
    let admin_url = cluster.superuser_url();
    let mut phases = Vec::new();
    for side in [Hashing::Bounded, Hashing::Unbounded] {
        let app = start_control_plane(&admin_url, side).await?;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(300)).pool_max_idle_per_host(512).build()?;
        let emails = sign_up(&http, &app, side, args.users, 8, &mut phases).await?;
        for &concurrency in &args.concurrency {
            phases.push(logins(&http, &app, side, &emails, args.logins, concurrency).await?);
        }
        app.stop().await?;
    }
    postgres::stop_throwaway(cluster).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json!({ "phases": phases, "ratios": report::ratios(&phases) }))?);
    } else {
        report::print(&phases);
    }
    Ok(())
}

/// A control plane of its own per side, on a catalog of its own.
async fn start_control_plane(admin_url: &str, side: Hashing) -> anyhow::Result<Platform> {
    let tag = match side {
        Hashing::Bounded => "bounded",
        Hashing::Unbounded => "unbounded",
    };
    let catalog = DbName::parse(&format!("bench_pw_{tag}_catalog")).map_err(|e| anyhow::anyhow!(e))?;
    platform::start(platform::builder(admin_url, move |config| {
        config.catalog_database = catalog;
        config.spare_databases_per_server = 0;
        // The whole load comes from one address; the per-e-mail limits still apply.
        config.login_throttle.max_failures_per_client = 1_000_000;
        config.http.max_connections = 100_000;
        if side == Hashing::Unbounded {
            config.password_hashing =
                HashingConfig { threads: 512, queue: 1_000_000, max_wait: Duration::from_secs(600) };
        }
    }))
    .await
}

/// Signs `users` companies up, `concurrency` at a time, as public signups; returns their admins.
async fn sign_up(
    http: &reqwest::Client,
    app: &Platform,
    side: Hashing,
    users: u32,
    concurrency: u32,
    phases: &mut Vec<Phase>,
) -> anyhow::Result<Vec<String>> {
    let run = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let emails: Vec<String> = (0..users).map(|i| format!("admin{i}@pw{run}.example.com")).collect();
    let bar = progress(u64::from(users), &format!("{side:?} signups"));
    let sampler = PeakRss::start();
    let started = Instant::now();
    let outcomes = closed_loop(concurrency, users, |i| {
        let body = json!({
            "company_name": format!("Bench {run} {i}"),
            "slug": format!("pw-{run}-{i}"),
            "admin": {"email": emails[i as usize], "password": TEST_PASSWORD, "full_name": "Ada Admin"},
            "timezone": "UTC", "currency": "EUR",
        });
        timed(http.post(format!("{}/tenants", app.control_plane.url)).bearer_auth(&app.operator_token), body, &bar)
    })
    .await;
    bar.finish_and_clear();
    let phase = Phase::summarize(side, "signup", concurrency, &outcomes, started.elapsed(), sampler.stop().await, 201);
    if phase.succeeded != users {
        let statuses: Vec<u16> = outcomes.iter().map(|(s, _)| *s).collect();
        bail!("{side:?}: only {} of {users} signups succeeded: {statuses:?}", phase.succeeded);
    }
    phases.push(phase);
    Ok(emails)
}

async fn logins(
    http: &reqwest::Client,
    app: &Platform,
    side: Hashing,
    emails: &[String],
    total: u32,
    concurrency: u32,
) -> anyhow::Result<Phase> {
    let bar = progress(u64::from(total), &format!("{side:?} logins ×{concurrency}"));
    let sampler = PeakRss::start();
    let started = Instant::now();
    let outcomes = closed_loop(concurrency, total, |i| {
        let body = json!({"email": emails[i as usize % emails.len()], "password": TEST_PASSWORD});
        timed(http.post(format!("{}/auth/login", app.control_plane.url)), body, &bar)
    })
    .await;
    bar.finish_and_clear();
    Ok(Phase::summarize(side, "login", concurrency, &outcomes, started.elapsed(), sampler.stop().await, 200))
}

/// Sends `request` with the JSON `body`; its status (0 when it failed to send) and its
/// round-trip time, encoding the body included.
fn timed(
    request: reqwest::RequestBuilder,
    body: serde_json::Value,
    bar: &indicatif::ProgressBar,
) -> impl Future<Output = (u16, Duration)> + use<> {
    let bar = bar.clone();
    async move {
        let clock = Instant::now();
        let status = request.json(&body).send().await.map(|r| r.status().as_u16());
        bar.inc(1);
        (status.unwrap_or(0), clock.elapsed())
    }
}

/// Runs `make(i)` for i in 0..total, `concurrency` at a time (a closed loop).
async fn closed_loop<F, Fut>(concurrency: u32, total: u32, make: F) -> Vec<(u16, Duration)>
where
    F: Fn(u32) -> Fut,
    Fut: Future<Output = (u16, Duration)>,
{
    use futures::StreamExt;
    futures::stream::iter((0..total).map(make)).buffer_unordered(concurrency.max(1) as usize).collect().await
}

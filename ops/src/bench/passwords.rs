//! `ops bench passwords`: login and signup throughput with the password throttle and the bounded
//! hashing pool in place, next to the same control plane with hashing unbounded (one blocking
//! thread per request, up to tokio's 512: how password checks ran before the pool), in the same
//! run, on one private Postgres cluster.
//!
//! Each side gets its own control plane and catalog. Logins use distinct users, so the throttle
//! does its bookkeeping on every attempt without refusing any (its per-client limit is raised:
//! the whole load comes from 127.0.0.1). Per side and per concurrency: successful logins per
//! second, answers refused as busy (503), the p50/p99 latency of the successful ones, and the
//! peak resident memory of this process while that phase ran (sampled every 10 ms).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use control_plane::identity::hashing::HashingConfig;
use control_plane::secrets::MasterKey;
use control_plane::{App, Config};
use indicatif::{ProgressBar, ProgressStyle};
use local_postgres::LocalCluster;
use serde::Serialize;
use serde_json::json;
use tokio::sync::oneshot;

const PASSWORD: &str = "Str0ng&Secret!";

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

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
enum Side {
    /// The pool: one hash per core, a short queue, 503 past it.
    Bounded,
    /// One blocking thread per request (before the pool).
    Unbounded,
}

#[derive(Debug, Serialize)]
struct Phase {
    side: Side,
    what: &'static str,
    concurrency: u32,
    requests: u32,
    succeeded: u32,
    busy: u32,
    other: u32,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    peak_rss_mib: u64,
}

pub async fn run(args: PasswordsBenchArgs) -> anyhow::Result<()> {
    let cluster = tokio::task::spawn_blocking(LocalCluster::start_throwaway)
        .await?
        .context("starting a private PostgreSQL cluster")?;
    let admin_url = cluster.superuser_url();
    let mut phases = Vec::new();
    for side in [Side::Bounded, Side::Unbounded] {
        let app = RunningApp::start(&admin_url, side).await?;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(300)).pool_max_idle_per_host(512).build()?;
        let emails = sign_up(&http, &app, side, args.users, 8, &mut phases).await?;
        for &concurrency in &args.concurrency {
            phases.push(logins(&http, &app, side, &emails, args.logins, concurrency).await?);
        }
        app.stop().await;
    }
    tokio::task::spawn_blocking(move || cluster.stop()).await?.context("stopping PostgreSQL")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json!({ "phases": phases, "ratios": ratios(&phases) }))?);
    } else {
        print_report(&phases);
    }
    Ok(())
}

struct RunningApp {
    url: String,
    operator_token: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningApp {
    async fn start(admin_url: &str, side: Side) -> anyhow::Result<Self> {
        let operator_token = hex::encode(rand::random::<[u8; 24]>());
        let mut config = Config::new(
            admin_url.to_owned().into(),
            MasterKey::generate_base64().into(),
            operator_token.clone().into(),
        );
        let tag = match side {
            Side::Bounded => "bounded",
            Side::Unbounded => "unbounded",
        };
        config.listen = ([127, 0, 0, 1], 0).into();
        config.catalog_database =
            control_plane::domain::DbName::parse(&format!("bench_pw_{tag}_catalog")).map_err(|e| anyhow::anyhow!(e))?;
        config.signup_limit_per_hour = 1_000_000;
        config.spare_databases_per_server = 0;
        // The whole load comes from one address; the per-e-mail limits still apply.
        config.login_throttle.max_failures_per_client = 1_000_000;
        config.http.max_connections = 100_000;
        if side == Side::Unbounded {
            config.password_hashing =
                HashingConfig { threads: 512, queue: 1_000_000, max_wait: Duration::from_secs(600) };
        }
        let app = App::build(config).await.context("starting the control plane")?;
        let url = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        Ok(Self { url, operator_token, stop, task })
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Signs `users` companies up, `concurrency` at a time, as public signups; returns their admins.
async fn sign_up(
    http: &reqwest::Client,
    app: &RunningApp,
    side: Side,
    users: u32,
    concurrency: u32,
    phases: &mut Vec<Phase>,
) -> anyhow::Result<Vec<String>> {
    let run = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let emails: Vec<String> = (0..users).map(|i| format!("admin{i}@pw{run}.example.com")).collect();
    let bar = progress(users, &format!("{side:?} signups"));
    let sampler = RssSampler::start();
    let started = Instant::now();
    let outcomes = for_each(concurrency, users, |i| {
        let http = http.clone();
        let url = format!("{}/tenants", app.url);
        let token = app.operator_token.clone();
        let body = json!({
            "company_name": format!("Bench {run} {i}"),
            "slug": format!("pw-{run}-{i}"),
            "admin": {"email": emails[i as usize], "password": PASSWORD, "full_name": "Ada Admin"},
            "timezone": "UTC", "currency": "EUR",
        });
        let bar = bar.clone();
        async move {
            let clock = Instant::now();
            let status = http.post(url).bearer_auth(token).json(&body).send().await.map(|r| r.status().as_u16());
            bar.inc(1);
            (status.unwrap_or(0), clock.elapsed())
        }
    })
    .await;
    bar.finish_and_clear();
    let phase = summarize(side, "signup", concurrency, &outcomes, started.elapsed(), sampler.stop().await, 201);
    if phase.succeeded != users {
        let statuses: Vec<u16> = outcomes.iter().map(|(s, _)| *s).collect();
        bail!("{side:?}: only {} of {users} signups succeeded: {statuses:?}", phase.succeeded);
    }
    phases.push(phase);
    Ok(emails)
}

async fn logins(
    http: &reqwest::Client,
    app: &RunningApp,
    side: Side,
    emails: &[String],
    total: u32,
    concurrency: u32,
) -> anyhow::Result<Phase> {
    let bar = progress(total, &format!("{side:?} logins ×{concurrency}"));
    let sampler = RssSampler::start();
    let started = Instant::now();
    let outcomes = for_each(concurrency, total, |i| {
        let http = http.clone();
        let url = format!("{}/auth/login", app.url);
        let body = json!({"email": emails[i as usize % emails.len()], "password": PASSWORD});
        let bar = bar.clone();
        async move {
            let clock = Instant::now();
            let status = http.post(url).json(&body).send().await.map(|r| r.status().as_u16());
            bar.inc(1);
            (status.unwrap_or(0), clock.elapsed())
        }
    })
    .await;
    bar.finish_and_clear();
    Ok(summarize(side, "login", concurrency, &outcomes, started.elapsed(), sampler.stop().await, 200))
}

/// Runs `make(i)` for i in 0..total, `concurrency` at a time (a closed loop).
async fn for_each<F, Fut>(concurrency: u32, total: u32, make: F) -> Vec<(u16, Duration)>
where
    F: Fn(u32) -> Fut,
    Fut: std::future::Future<Output = (u16, Duration)>,
{
    use futures::StreamExt;
    futures::stream::iter((0..total).map(make)).buffer_unordered(concurrency.max(1) as usize).collect().await
}

fn summarize(
    side: Side,
    what: &'static str,
    concurrency: u32,
    outcomes: &[(u16, Duration)],
    elapsed: Duration,
    peak_rss_mib: u64,
    ok: u16,
) -> Phase {
    let mut ok_ms: Vec<f64> =
        outcomes.iter().filter(|(s, _)| *s == ok).map(|(_, d)| d.as_secs_f64() * 1000.0).collect();
    ok_ms.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        if ok_ms.is_empty() { 0.0 } else { ok_ms[((ok_ms.len() as f64 * q).ceil() as usize).clamp(1, ok_ms.len()) - 1] }
    };
    let count = |f: &dyn Fn(u16) -> bool| outcomes.iter().filter(|(s, _)| f(*s)).count() as u32;
    Phase {
        side,
        what,
        concurrency,
        requests: outcomes.len() as u32,
        succeeded: count(&|s| s == ok),
        busy: count(&|s| s == 503),
        other: count(&|s| s != ok && s != 503),
        per_second: f64::from(count(&|s| s == ok)) / elapsed.as_secs_f64(),
        p50_ms: pick(0.50),
        p99_ms: pick(0.99),
        peak_rss_mib,
    }
}

/// Samples this process's resident memory every 10 ms until stopped; returns the peak in MiB.
struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start() -> Self {
        let peak = Arc::new(AtomicU64::new(rss_kib()));
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn({
            let peak = peak.clone();
            async move {
                loop {
                    peak.fetch_max(rss_kib(), Ordering::Relaxed);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                        _ = &mut stopped => return,
                    }
                }
            }
        });
        Self { peak, stop, task }
    }

    async fn stop(self) -> u64 {
        let _ = self.stop.send(());
        let _ = self.task.await;
        self.peak.load(Ordering::Relaxed).max(rss_kib()) / 1024
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn progress(len: u32, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(u64::from(len)).with_prefix(what.to_owned());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>28} [{bar:30}] {pos}/{len} {per_sec:>10}")
            .expect("a valid progress template")
            .progress_chars("=> "),
    );
    bar
}

/// Bounded over unbounded, per phase: throughput and peak memory.
fn ratios(phases: &[Phase]) -> Vec<serde_json::Value> {
    phases
        .iter()
        .filter(|p| p.side == Side::Bounded)
        .filter_map(|b| {
            let u = phases
                .iter()
                .find(|u| u.side == Side::Unbounded && u.what == b.what && u.concurrency == b.concurrency)?;
            Some(json!({
                "what": b.what,
                "concurrency": b.concurrency,
                "throughput_ratio": b.per_second / u.per_second.max(f64::MIN_POSITIVE),
                "peak_rss_ratio": b.peak_rss_mib as f64 / (u.peak_rss_mib.max(1)) as f64,
            }))
        })
        .collect()
}

fn print_report(phases: &[Phase]) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "side",
        "what",
        "in flight",
        "requests",
        "ok",
        "busy (503)",
        "other",
        "ok/s",
        "p50 ms",
        "p99 ms",
        "peak RSS MiB",
    ]);
    for p in phases {
        table.add_row([
            format!("{:?}", p.side).to_lowercase(),
            p.what.to_owned(),
            p.concurrency.to_string(),
            p.requests.to_string(),
            p.succeeded.to_string(),
            p.busy.to_string(),
            p.other.to_string(),
            format!("{:.1}", p.per_second),
            format!("{:.1}", p.p50_ms),
            format!("{:.1}", p.p99_ms),
            p.peak_rss_mib.to_string(),
        ]);
    }
    println!("{table}");
    let mut ratios_table = Table::new();
    ratios_table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "what",
        "in flight",
        "ok/s bounded ÷ unbounded",
        "peak RSS bounded ÷ unbounded",
    ]);
    for r in ratios(phases) {
        ratios_table.add_row([
            r["what"].as_str().unwrap_or_default().to_owned(),
            r["concurrency"].to_string(),
            format!("{:.2}", r["throughput_ratio"].as_f64().unwrap_or_default()),
            format!("{:.2}", r["peak_rss_ratio"].as_f64().unwrap_or_default()),
        ]);
    }
    println!("{ratios_table}");
}

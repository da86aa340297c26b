//! Phase 2, many tenants: real tenants (of many more registered) under a Zipf(1.0) access
//! pattern and a connection budget, as a closed loop and as open loops each beside its floor,
//! and the cold path alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use hdrhistogram::Histogram;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sqlx::postgres::PgConnectOptions;
use stack::Company;
use uuid::Uuid;

use super::connections::{Sampler, settle};
use super::cpu::CpuTicks;
use super::floor;
use super::load::{
    Answer, PoissonArrivals, RequestTally, Zipf, connect_clients, employees_url, fetch, http_client, load_runtime,
};
use super::platform::{BenchPlatform, Fleet};
use super::results::{Counters, FloorRun, IsolatedCold, LatencyMs, LoadStats, ManyTenants, OpenLoop, ZipfRun};
use super::{OTHER_REAL_TENANTS, PAGE_SIZE, START_WINDOW, Settings, ZIPF_EXPONENT};
use crate::harness::stats::{histogram_us, record_us};

pub async fn phase(
    settings: &Settings,
    platform: &BenchPlatform,
    fleet: &Fleet,
    warm: &Company,
) -> anyhow::Result<ManyTenants> {
    let saturated = zipf_run(settings, platform, fleet, warm, ZipfArrivals::ClosedLoop).await?;
    // Shares of the saturated throughput: with headroom, what a cold tenant's first request
    // costs is the cold path itself more than the queue in front of it; two loads show how
    // that changes with load.
    let ids: Vec<Uuid> = fleet.active.iter().map(|t| t.id).collect();
    let floor_options = platform.tenants_options(&ids).await?;
    let mut open_loops = Vec::new();
    for share in OPEN_LOOP_SHARES {
        let rate = (saturated.load.requests_per_s * share).max(10.0);
        let run = zipf_run(settings, platform, fleet, warm, ZipfArrivals::OpenLoop { rate }).await?;
        let floor = floor_run(settings, platform, &floor_options, rate).await?;
        open_loops.push(OpenLoop { share, rate, run, floor });
    }
    let isolated = cold_one_at_a_time(settings, platform, fleet, warm).await?;
    Ok(ManyTenants {
        registered: fleet.active.len() + OTHER_REAL_TENANTS + fleet.catalog_only,
        real_databases: fleet.active.len() + OTHER_REAL_TENANTS,
        active: fleet.active.len(),
        catalog_only: fleet.catalog_only,
        provisioning_s: fleet.provisioning_s,
        clients: settings.zipf_clients,
        run_s: settings.zipf_run.as_secs_f64(),
        budget: settings.budget,
        share: settings.zipf_share,
        closed_loop: saturated,
        isolated,
        open_loops,
    })
}

/// Cold tenants touched one after another by one client in [`cold_one_at_a_time`]; more than
/// the budget, so the later ones also close another tenant's idle connection.
const ISOLATED_COLD_TENANTS: usize = 200;

/// Each of the first [`ISOLATED_COLD_TENANTS`] active tenants' first request, one at a time, on
/// a fresh router: what the cold path (token, route lookup, pool, connect, first query on a new
/// backend) costs when nothing else runs.
async fn cold_one_at_a_time(
    settings: &Settings,
    platform: &BenchPlatform,
    fleet: &Fleet,
    warm: &Company,
) -> anyhow::Result<IsolatedCold> {
    settle(platform.admin_url()).await?;
    let router = platform
        .start_router(format!("bench-router-isolated-{}", platform.run_id), |c| settings.many_tenant_pool(c))
        .await?;
    let outcome = async {
        let client = http_client();
        let url = employees_url(&router.url);
        fetch(&client, &url, &warm.token).await;
        let mut latencies = histogram_us();
        let before = Counters::read(&router.state);
        for tenant in fleet.active.iter().take(ISOLATED_COLD_TENANTS) {
            let sent = Instant::now();
            match fetch(&client, &url, &tenant.token).await {
                Answer::Ok { .. } => record_us(&mut latencies, sent.elapsed()),
                other => bail!("a cold request failed: {other:?}"),
            }
        }
        let counters = Counters::read(&router.state).since(before);
        anyhow::Ok(IsolatedCold { first_request: LatencyMs::of(&latencies), counters })
    }
    .await;
    router.stop().await?;
    outcome
}

/// Shares of the closed loop's throughput offered by the open-loop runs.
const OPEN_LOOP_SHARES: [f64; 2] = [0.5, 0.25];

#[derive(Clone, Copy)]
enum ZipfArrivals {
    /// `zipf_clients` clients, each sending its next request when the last one answered: the
    /// router runs flat out and latency is mostly queueing.
    ClosedLoop,
    /// Requests arrive on their own schedule (Poisson, `rate` per second), answered or not.
    OpenLoop { rate: f64 },
}
async fn zipf_run(
    settings: &Settings,
    platform: &BenchPlatform,
    fleet: &Fleet,
    warm: &Company,
    arrivals: ZipfArrivals,
) -> anyhow::Result<ZipfRun> {
    settle(platform.admin_url()).await?;
    let application_name = format!("bench-router-many-{}", platform.run_id);
    let router = platform.start_router(application_name, |c| settings.many_tenant_pool(c)).await?;
    let outcome = async {
        // The JWKS fetch and first-use costs are paid here, not by the first measured request.
        let clients: Vec<_> = (0..settings.zipf_clients).map(|_| http_client()).collect();
        connect_clients(&clients, &router.url).await;
        fetch(&clients[0], &employees_url(&router.url), &warm.token).await;
        let state = router.state.clone();
        let sampler =
            Sampler::start(platform.admin_url(), move || state.pools.open_connections_total(), settings.budget).await?;
        let before = Counters::read(&router.state);
        let cpu_before = CpuTicks::now(platform.postmaster);
        let load = match arrivals {
            ZipfArrivals::ClosedLoop => {
                zipf_load(&clients, &employees_url(&router.url), &fleet.active, settings.zipf_run).await
            }
            ZipfArrivals::OpenLoop { rate } => {
                zipf_open_loop_http(&clients, &employees_url(&router.url), &fleet.active, rate, settings.zipf_run).await
            }
        };
        let cpu = CpuTicks::now(platform.postmaster).minus(cpu_before).share();
        let counters = Counters::read(&router.state).since(before);
        let peaks = sampler.stop().await?;
        let load = load?;
        anyhow::Ok(ZipfRun {
            tenants_touched: load.first.len(),
            load: LoadStats::of(&load.tally, load.wall),
            first_request: LatencyMs::of(&load.first),
            first_request_after_start: LatencyMs::of(&load.first_later),
            connections: peaks,
            counters,
            cpu,
        })
    }
    .await;
    router.stop().await?;
    outcome
}

struct ZipfOutcome {
    tally: RequestTally,
    /// Each tenant's first request; of those, the ones sent after [`START_WINDOW`].
    first: Histogram<u64>,
    first_later: Histogram<u64>,
    wall: Duration,
}

/// The Zipf load: each request's tenant drawn from Zipf(1.0) over `tenants`. Returns the tally,
/// the latencies of each tenant's first request, and the wall time.
async fn zipf_load(
    clients: &[reqwest::Client],
    url: &str,
    tenants: &[Company],
    duration: Duration,
) -> anyhow::Result<ZipfOutcome> {
    let tokens: Arc<Vec<String>> = Arc::new(tenants.iter().map(|t| t.token.clone()).collect());
    let touched: Arc<Vec<AtomicBool>> = Arc::new(tenants.iter().map(|_| AtomicBool::new(false)).collect());
    let zipf = Arc::new(Zipf::new(tenants.len(), ZIPF_EXPONENT));
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(n, client)| {
            let (client, url) = (client.clone(), url.to_owned());
            let (tokens, touched, zipf) = (tokens.clone(), touched.clone(), zipf.clone());
            load_runtime().spawn(async move {
                let mut rng = StdRng::seed_from_u64(n as u64);
                let (mut tally, mut cold, mut later) = (RequestTally::new(), histogram_us(), histogram_us());
                while Instant::now() < deadline {
                    let tenant = zipf.sample(&mut rng);
                    let sent = Instant::now();
                    let outcome = fetch(&client, &url, &tokens[tenant]).await;
                    let latency = sent.elapsed();
                    tally.record(latency, &outcome);
                    if !touched[tenant].swap(true, Ordering::Relaxed) {
                        record_us(&mut cold, latency);
                        if sent - started >= START_WINDOW {
                            record_us(&mut later, latency);
                        }
                    }
                }
                (tally, cold, later)
            })
        })
        .collect();
    let (mut total, mut cold, mut later) = (RequestTally::new(), histogram_us(), histogram_us());
    for worker in workers {
        let (tally, first, first_later) = worker.await.context("a load worker panicked")?;
        total.merge(&tally);
        cold.add(&first).expect("histograms with the same bounds");
        later.add(&first_later).expect("histograms with the same bounds");
    }
    Ok(ZipfOutcome { tally: total, first: cold, first_later: later, wall: started.elapsed() })
}

/// The Zipf load as an open loop: requests start at Poisson arrival times at `rate` per second
/// for `duration`, however long earlier ones take. `request(tenant, n)` serves the `n`th
/// request, for the tenant of that index. A request's latency counts from its scheduled
/// start, so a late scheduler cannot hide queueing. The arrivals and tenants are drawn from a
/// fixed seed: every open loop with the same rate and tenants sends the same requests.
async fn zipf_open_loop<F, Fut>(
    tenants: usize,
    rate: f64,
    duration: Duration,
    request: F,
) -> anyhow::Result<ZipfOutcome>
where
    F: Fn(usize, usize) -> Fut,
    Fut: Future<Output = Answer> + Send + 'static,
{
    struct Shared {
        tally: RequestTally,
        cold: Histogram<u64>,
        later: Histogram<u64>,
    }
    let shared = Arc::new(std::sync::Mutex::new(Shared {
        tally: RequestTally::new(),
        cold: histogram_us(),
        later: histogram_us(),
    }));
    let touched: Arc<Vec<AtomicBool>> = Arc::new((0..tenants).map(|_| AtomicBool::new(false)).collect());
    let zipf = Zipf::new(tenants, ZIPF_EXPONENT);
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut arrivals = PoissonArrivals::new(rate, duration);
    let started = arrivals.started;
    let mut requests = Vec::new();
    let mut n = 0;
    while let Some(sent) = arrivals.next(&mut rng).await {
        let tenant = zipf.sample(&mut rng);
        let served = request(tenant, n);
        n += 1;
        let (shared, touched) = (shared.clone(), touched.clone());
        requests.push(load_runtime().spawn(async move {
            let outcome = served.await;
            let latency = sent.elapsed();
            let mut shared = shared.lock().expect("tally lock");
            shared.tally.record(latency, &outcome);
            if !touched[tenant].swap(true, Ordering::Relaxed) {
                record_us(&mut shared.cold, latency);
                if sent - started >= START_WINDOW {
                    record_us(&mut shared.later, latency);
                }
            }
        }));
    }
    for request in requests {
        request.await.context("a request task panicked")?;
    }
    let wall = started.elapsed();
    let shared = Arc::try_unwrap(shared).map_err(|_| anyhow!("request tasks still hold the tally"))?;
    let Shared { tally, cold, later } = shared.into_inner().expect("tally lock");
    Ok(ZipfOutcome { tally, first: cold, first_later: later, wall })
}

/// The router's open loop: each request on the next client in turn.
async fn zipf_open_loop_http(
    clients: &[reqwest::Client],
    url: &str,
    tenants: &[Company],
    rate: f64,
    duration: Duration,
) -> anyhow::Result<ZipfOutcome> {
    zipf_open_loop(tenants.len(), rate, duration, |tenant, n| {
        let (client, url, token) = (clients[n % clients.len()].clone(), url.to_owned(), tenants[tenant].token.clone());
        async move { fetch(&client, &url, &token).await }
    })
    .await
}

/// The cold path's floor (see [`floor`](super::floor)) at `rate`: the same arrivals as the router's open loop
/// at that rate, served straight from this process under the same budget, all tenants cold.
/// `options` reach the active tenants' databases, in the fleet's order.
async fn floor_run(
    settings: &Settings,
    platform: &BenchPlatform,
    options: &[PgConnectOptions],
    rate: f64,
) -> anyhow::Result<FloorRun> {
    settle(platform.admin_url()).await?;
    let tenants = options.len();
    let pool = Arc::new(floor::FloorPool::new(options.to_vec(), settings.budget));
    // Sampled like the router, so that both sides pay for the sampling.
    let counted = pool.clone();
    let sampler = Sampler::start(platform.admin_url(), move || counted.open_connections(), settings.budget).await?;
    let cpu_before = CpuTicks::now(platform.postmaster);
    let load = zipf_open_loop(tenants, rate, settings.zipf_run, |tenant, _| {
        let pool = pool.clone();
        async move {
            match pool.list_employees(tenant, PAGE_SIZE).await {
                Ok(rows) => Answer::Ok { bytes: rows },
                Err(error) => {
                    tracing::debug!(%error, "a floor request failed");
                    Answer::Database
                }
            }
        }
    })
    .await;
    let cpu = CpuTicks::now(platform.postmaster).minus(cpu_before).share();
    let connections = sampler.stop().await?;
    pool.close_all().await;
    let load = load?;
    Ok(FloorRun {
        load: LoadStats::of(&load.tally, load.wall),
        first_request: LatencyMs::of(&load.first),
        connects: pool.connects.load(Ordering::Relaxed),
        connections,
        cpu,
    })
}

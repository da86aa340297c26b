//! Phase 1, a single tenant: the same closed-loop workload against the router and the
//! baseline, alternated so drift cancels out, with one client, and as an open loop; then what
//! each of the router's steps costs alone.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use stack::router::AppState;
use stack::router::Lookup;
use stack::{Company, RouterHandle};
use tenant_schema::data::employees::{self, ListQuery};

use super::baseline::Baseline;
use super::cpu::CpuTicks;
use super::load::{Arrivals, RequestTally, closed_loop, employees_url, http_client, open_loop, open_loop_client};
use super::platform::BenchPlatform;
use super::results::{LoadStats, SingleTenant, StepCost};
use super::{PAGE_SIZE, Settings};
use crate::harness::output::progress;
use crate::harness::stats::{histogram_ns, record_ns};

/// The single-tenant open loop's rate, as a share of the baseline's saturated throughput.
const SINGLE_OPEN_LOOP_SHARE: f64 = 0.5;

/// The service a run loads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Service {
    Router,
    Baseline,
}

pub async fn phase(settings: &Settings, platform: &BenchPlatform, tenant: &Company) -> anyhow::Result<SingleTenant> {
    let (router, baseline) = start_single_tenant_services(settings, platform, tenant).await?;
    let outcome = compare(settings, platform, &router, &baseline, tenant).await;
    baseline.stop().await?;
    router.stop().await?;
    outcome
}

/// Phase 1's services: a router (the per-tenant share and budget of the settings) and the
/// baseline, over `tenant` with the settings' employees added through the router.
async fn start_single_tenant_services(
    settings: &Settings,
    platform: &BenchPlatform,
    tenant: &Company,
) -> anyhow::Result<(RouterHandle, Baseline)> {
    let router = platform
        .start_router(format!("bench-router-single-{}", platform.run_id), |c| {
            c.pool.max_per_tenant = settings.share;
            c.pool.budget_per_server = settings.budget;
        })
        .await?;
    add_employees(&router.url, &tenant.token, settings.employees).await?;
    let baseline = Baseline::start(platform, tenant, settings.share).await?;
    Ok((router, baseline))
}

/// `--serve`: phase 1's router and baseline over the same tenant, until Ctrl-C.
pub async fn serve(settings: &Settings, platform: &BenchPlatform) -> anyhow::Result<()> {
    let tenant = platform.provision("single").await.context("provisioning the single tenant")?;
    let (router, baseline) = start_single_tenant_services(settings, platform, &tenant).await?;
    println!("NEXACORE_BENCH_ROUTER_URL={}", employees_url(&router.url));
    println!("NEXACORE_BENCH_BASELINE_URL={}", baseline.employees_url());
    println!("NEXACORE_BENCH_TOKEN={}", tenant.token);
    println!("NEXACORE_BENCH_PID={}", std::process::id());
    // `run` ends this on Ctrl-C and stops the cluster.
    let _kept = (router, baseline);
    std::future::pending().await
}

/// Employees with varied names, through the router's API (each write commits its event).
pub(super) async fn add_employees(router_url: &str, token: &str, count: usize) -> anyhow::Result<()> {
    const FIRST: [&str; 8] = ["Ada", "Grace", "Alan", "Barbara", "Edsger", "Frances", "Niklaus", "Margaret"];
    const LAST: [&str; 10] =
        ["Lovelace", "Hopper", "Turing", "Liskov", "Dijkstra", "Allen", "Wirth", "Hamilton", "Knuth", "Ritchie"];
    let http = reqwest::Client::new();
    let url = format!("{router_url}/employees");
    let created: Vec<anyhow::Result<()>> = futures::stream::iter(0..count)
        .map(|n| {
            let body = json!({
                "first_name": FIRST[n % FIRST.len()],
                "last_name": format!("{}{}", LAST[(n / FIRST.len()) % LAST.len()], n),
                "email": format!("employee{n}@bench.example.com"),
                "job_title": "Engineer",
                "hire_date": "2024-01-15",
            });
            let request = http.post(&url).bearer_auth(token).json(&body);
            async move {
                let response = request.send().await?;
                if response.status() != reqwest::StatusCode::CREATED {
                    bail!("adding an employee: HTTP {}: {}", response.status(), response.text().await?);
                }
                Ok(())
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    created.into_iter().collect::<anyhow::Result<Vec<()>>>().context("adding employees")?;
    Ok(())
}

/// Items in one answer of `url`: the two sides must serve the same page.
async fn page_items(url: &str, token: &str) -> anyhow::Result<usize> {
    let response = reqwest::Client::new().get(url).bearer_auth(token).send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if status != reqwest::StatusCode::OK {
        bail!("GET {url}: HTTP {status}: {body}");
    }
    Ok(body["items"].as_array().map_or(0, Vec::len))
}

async fn compare(
    settings: &Settings,
    platform: &BenchPlatform,
    router: &RouterHandle,
    baseline: &Baseline,
    tenant: &Company,
) -> anyhow::Result<SingleTenant> {
    let (router_url, baseline_url) = (employees_url(&router.url), baseline.employees_url());
    let expected = settings.employees.min(PAGE_SIZE as usize);
    let (router_items, baseline_items) =
        (page_items(&router_url, &tenant.token).await?, page_items(&baseline_url, &tenant.token).await?);
    if router_items != expected || baseline_items != expected {
        bail!(
            "expected {expected} employees per page, the router served {router_items}, the baseline {baseline_items}"
        );
    }

    let router_clients: Vec<_> = (0..settings.clients).map(|_| http_client()).collect();
    let baseline_clients: Vec<_> = (0..settings.clients).map(|_| http_client()).collect();
    let loaded = Alternation {
        clients: (&router_clients, &baseline_clients),
        urls: (&router_url, &baseline_url),
        token: &tenant.token,
        rounds: settings.rounds,
        warm_up: settings.warm_up,
        run: settings.run,
        arrivals: Arrivals::ClosedLoop,
        postmaster: platform.postmaster,
    };
    let (router_runs, baseline_runs) = loaded.run("router / baseline runs").await?;
    // One client: no queue, so latency is the service time and the difference is what the
    // router adds to each request.
    let single = Alternation {
        clients: (&router_clients[..1], &baseline_clients[..1]),
        warm_up: settings.light_warm_up,
        run: settings.light_run,
        ..loaded
    };
    let (router_alone, baseline_alone) = single.run("1-client runs").await?;
    // Saturated, latency is the queue (Little's law: clients ÷ throughput), so the closed
    // loop's latency difference restates the throughput ratio. Half the baseline's throughput
    // as an open loop shows what the router adds to a request while both sides have headroom.
    let half_rate = LoadStats::of(&baseline_runs.tally, baseline_runs.wall).requests_per_s * SINGLE_OPEN_LOOP_SHARE;
    let open_clients = [open_loop_client(), open_loop_client()];
    let unsaturated = Alternation {
        clients: (&open_clients[..1], &open_clients[1..]),
        warm_up: settings.light_warm_up,
        run: settings.light_run,
        arrivals: Arrivals::OpenLoop { rate: half_rate },
        ..loaded
    };
    let (router_open, baseline_open) = unsaturated.run("open-loop runs").await?;

    let options = platform.tenant_options(tenant.id).await?;
    let steps = time_router_steps(&router.state, tenant, &options, settings.step_samples).await?;

    let router_stats = LoadStats::of(&router_runs.tally, router_runs.wall);
    let baseline_stats = LoadStats::of(&baseline_runs.tally, baseline_runs.wall);
    let router_alone = LoadStats::of(&router_alone.tally, router_alone.wall);
    let baseline_alone = LoadStats::of(&baseline_alone.tally, baseline_alone.wall);
    let added = |router: &LoadStats, baseline: &LoadStats| {
        (
            (router.p50_us as f64 - baseline.p50_us as f64) / 1000.0,
            (router.p99_us as f64 - baseline.p99_us as f64) / 1000.0,
        )
    };
    let (added_p50_ms, added_p99_ms) = added(&router_stats, &baseline_stats);
    let (alone_added_p50_ms, alone_added_p99_ms) = added(&router_alone, &baseline_alone);
    let router_open = LoadStats::of(&router_open.tally, router_open.wall);
    let baseline_open = LoadStats::of(&baseline_open.tally, baseline_open.wall);
    let (open_added_p50_ms, open_added_p99_ms) = added(&router_open, &baseline_open);
    Ok(SingleTenant {
        clients: settings.clients,
        pool_size: settings.share,
        employees: settings.employees,
        rounds: settings.rounds,
        warm_up_s: settings.warm_up.as_secs_f64(),
        run_s: settings.run.as_secs_f64(),
        light_run_s: settings.light_run.as_secs_f64(),
        throughput_ratio: router_stats.requests_per_s / baseline_stats.requests_per_s,
        added_p50_ms,
        added_p99_ms,
        router: router_stats,
        baseline: baseline_stats,
        router_cpu: router_runs.cpu.share(),
        baseline_cpu: baseline_runs.cpu.share(),
        one_client_router: router_alone,
        one_client_baseline: baseline_alone,
        one_client_added_p50_ms: alone_added_p50_ms,
        one_client_added_p99_ms: alone_added_p99_ms,
        open_loop_rate: half_rate,
        open_loop_router: router_open,
        open_loop_baseline: baseline_open,
        open_loop_added_p50_ms: open_added_p50_ms,
        open_loop_added_p99_ms: open_added_p99_ms,
        router_steps: steps,
    })
}

/// Closed-loop runs against the router and the baseline in turn: rounds of A B, then B A, so
/// that a linear drift over the run (or other load coming and going) favours neither side.
#[derive(Clone, Copy)]
pub(super) struct Alternation<'a> {
    /// Router's, baseline's.
    pub clients: (&'a [reqwest::Client], &'a [reqwest::Client]),
    pub urls: (&'a str, &'a str),
    pub token: &'a str,
    pub rounds: usize,
    pub warm_up: Duration,
    pub run: Duration,
    pub arrivals: Arrivals,
    pub postmaster: Option<u32>,
}

/// One side's measured runs together, and the CPU ticks spent meanwhile.
pub(super) struct SideRuns {
    pub tally: RequestTally,
    pub wall: Duration,
    cpu: CpuTicks,
}

impl Alternation<'_> {
    pub(super) async fn run(&self, what: &str) -> anyhow::Result<(SideRuns, SideRuns)> {
        let fresh = || SideRuns { tally: RequestTally::new(), wall: Duration::ZERO, cpu: CpuTicks::default() };
        let (mut router, mut baseline) = (fresh(), fresh());
        let bar = progress(2 * self.rounds as u64, what);
        for round in 0..self.rounds {
            let order = if round.is_multiple_of(2) {
                [Service::Router, Service::Baseline]
            } else {
                [Service::Baseline, Service::Router]
            };
            for side in order {
                let (clients, url, sink) = match side {
                    Service::Router => (self.clients.0, self.urls.0, &mut router),
                    Service::Baseline => (self.clients.1, self.urls.1, &mut baseline),
                };
                let load = |duration| async move {
                    match self.arrivals {
                        Arrivals::ClosedLoop => closed_loop(clients, url, self.token, duration).await,
                        Arrivals::OpenLoop { rate } => open_loop(&clients[0], url, self.token, rate, duration).await,
                    }
                };
                load(self.warm_up).await?;
                let before = CpuTicks::now(self.postmaster);
                let (tally, wall) = load(self.run).await?;
                sink.cpu = sink.cpu.plus(CpuTicks::now(self.postmaster).minus(before));
                sink.tally.merge(&tally);
                sink.wall += wall;
                bar.inc(1);
            }
        }
        bar.finish_and_clear();
        Ok((router, baseline))
    }
}

/// Each step the router takes for a request, timed alone from one task with no other load:
/// where the router's added time goes. The last steps are those of a cold tenant: a catalog
/// lookup, a new connection as the tenant's role, and its first query.
async fn time_router_steps(
    state: &AppState,
    tenant: &Company,
    options: &PgConnectOptions,
    samples: usize,
) -> anyhow::Result<Vec<StepCost>> {
    let token = tenant.token.as_str();
    let claims = state.verifier.verify(token).await.map_err(|e| anyhow!("verifying the token: {e}"))?;
    let route = match state.routes.get(claims.tid).await.map_err(|e| anyhow!(e))? {
        Lookup::Found(route) => route,
        Lookup::Unknown => bail!("the router does not know the benchmark tenant"),
    };
    let mut steps = Vec::new();

    let mut h = histogram_ns();
    for _ in 0..samples {
        let started = Instant::now();
        black_box(state.verifier.verify(black_box(token)).await.is_ok());
        record_ns(&mut h, started.elapsed());
    }
    steps.push(StepCost::of("JWT verify (EdDSA, cached key)", &h));

    let mut h = histogram_ns();
    for _ in 0..samples {
        let started = Instant::now();
        black_box(state.settings.get().await);
        record_ns(&mut h, started.elapsed());
    }
    steps.push(StepCost::of("platform settings (cached)", &h));

    let mut h = histogram_ns();
    for _ in 0..samples {
        let started = Instant::now();
        black_box(state.routes.get(claims.tid).await.is_ok());
        record_ns(&mut h, started.elapsed());
    }
    steps.push(StepCost::of("route lookup (moka hit)", &h));

    let mut h = histogram_ns();
    for _ in 0..samples {
        let started = Instant::now();
        black_box(stack::router::admit(state, token).await.is_ok());
        record_ns(&mut h, started.elapsed());
    }
    steps.push(StepCost::of("all gates (gates::admit)", &h));

    let mut h = histogram_ns();
    for _ in 0..samples {
        let started = Instant::now();
        let conn = state.pools.acquire(&route).await.map_err(|e| anyhow!(e))?;
        drop(conn);
        record_ns(&mut h, started.elapsed());
    }
    steps.push(StepCost::of("pool acquire + release (idle hit)", &h));

    let query = ListQuery { limit: PAGE_SIZE, ..ListQuery::default() };
    let mut conn = state.pools.acquire(&route).await.map_err(|e| anyhow!(e))?;
    let (mut h, mut encode) = (histogram_ns(), histogram_ns());
    for _ in 0..samples.div_ceil(10) {
        let started = Instant::now();
        let page = employees::list(&mut conn, &query).await.context("listing employees")?;
        record_ns(&mut h, started.elapsed());
        let started = Instant::now();
        black_box(serde_json::to_vec(&page)?);
        record_ns(&mut encode, started.elapsed());
    }
    drop(conn);
    steps.push(StepCost::of("employees::list, 50 rows (both sides)", &h));
    steps.push(StepCost::of("serde_json encode of the page (baseline)", &encode));

    // Cold-tenant steps, fewer samples: each costs milliseconds.
    let cold_samples = (samples / 100).max(20);
    let mut h = histogram_ns();
    for _ in 0..cold_samples {
        state.routes.invalidate(claims.tid).await;
        let started = Instant::now();
        black_box(state.routes.get(claims.tid).await.is_ok());
        record_ns(&mut h, started.elapsed());
    }
    steps.push(StepCost::of("route lookup (catalog query, miss)", &h));
    let (mut login, mut first) = (histogram_ns(), histogram_ns());
    for _ in 0..cold_samples {
        let started = Instant::now();
        let mut conn = PgConnection::connect_with(options).await.context("connecting as the tenant role")?;
        record_ns(&mut login, started.elapsed());
        let started = Instant::now();
        black_box(employees::list(&mut conn, &query).await.context("listing employees")?);
        record_ns(&mut first, started.elapsed());
        conn.close().await.ok();
    }
    steps.push(StepCost::of("new connection as the tenant role (SCRAM)", &login));
    steps.push(StepCost::of("employees::list on that new connection", &first));
    Ok(steps)
}

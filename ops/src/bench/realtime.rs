//! `ops bench realtime`: WebSocket fan-out across two router replicas on one catalog —
//! commit-to-client latency on the writing replica and across replicas, deliveries/s in a
//! fan-out burst, exactly-once delivery per client, router memory per idle connection, and the
//! most connections one replica held.
//!
//! Everything runs on this machine: a throwaway Postgres (fsync off); the control plane in this
//! process, which provisions the tenants through its API once for every phase; the two router
//! replicas as child processes of the release `tenant-router` binary (so each has a resident
//! set of its own to measure, and its own CPU time); the clients as tokio-tungstenite sockets
//! in this process, bound to several loopback source addresses.
//!
//! Phases, each on freshly started replicas so that memory figures start clean:
//! 1. per `--scale N/M`: N idle clients over M tenants, half on each replica (RSS before and
//!    after opening them: memory per idle connection); one change per tenant to warm up; then
//!    a writer makes `--rate` changes/s through replica A, the writing replica. Latency uses
//!    this process's monotonic clock, from the moment the writer's POST returned 201 to the
//!    moment a client read the event (also from when the POST was sent, an upper bound on
//!    commit-to-client, and from the event's `ts`, the outbox row's time, on the wall clock).
//! 2. a fan-out burst: many clients of one tenant; the events are committed in one transaction
//!    straight into the tenant's outbox, then one change through the API wakes both replicas,
//!    so the writer's speed does not limit the fan-out measured; deliveries/s over all clients.
//! 3. a ramp: sockets opened on one replica until the file limit (or `--max-connections`),
//!    then one change per tenant to show that every socket is still served.
//!
//! Every phase checks, per client, that the received seqs are exactly the tenant's written
//! seqs, in order, once. Figures are printed, never asserted: a missed target is a finding.
//! The command fails only when something breaks (Postgres, the control plane, a router).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use comfy_table::{CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use control_plane::domain::DbName;
use control_plane::secrets::MasterKey;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use local_postgres::LocalCluster;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Commit-to-client p99 on the writing replica, at 10,000 connections and 200 changes/s.
const TARGET_P99_LOCAL_MS: f64 = 10.0;
/// The same across replicas.
const TARGET_P99_REMOTE_MS: f64 = 25.0;
const TARGET_BURST_PER_S: f64 = 100_000.0;
const TARGET_KIB_PER_CONNECTION: f64 = 30.0;
/// The targets are stated at this many connections (the `N` of a scale).
const TARGET_CONNECTIONS: usize = 10_000;

/// Clients connect from 127.0.0.2, 127.0.0.3, …: each source address has its own ephemeral
/// port range, so the count is not capped by one range.
const SOURCE_ADDRESSES: u8 = 8;
/// WebSocket handshakes in flight at once.
const CONNECT_CONCURRENCY: usize = 64;
/// Writes in flight at once (paced phases rarely need more than a few).
const WRITE_CONCURRENCY: usize = 64;
/// Concurrent writers of the ramp's one change per tenant.
const RAMP_WRITERS: usize = 8;
/// Signups in flight at once; each hashes a password (argon2id) off the async workers.
const PROVISION_CONCURRENCY: usize = 4;
/// File descriptors kept for everything but client sockets (Postgres, HTTP, the runtime).
const FD_RESERVE: u64 = 300;
/// A client reads ~300-byte events: a small read buffer keeps 20,000 clients cheap (the
/// library's default is 128 KiB per socket).
const CLIENT_READ_BUFFER: usize = 8 * 1024;
/// How long a scale's sockets sit idle before writing starts (memory, idle cost).
const IDLE_WINDOW: Duration = Duration::from_secs(4);
/// Sockets per step of the connection ramp, and tenants the ramp spreads them over.
const RAMP_STEP: usize = 1000;
const RAMP_TENANTS: usize = 100;
/// Set in the environment when this process re-executed itself with a raised file limit.
const RAISED_GUARD: &str = "NEXACORE_BENCH_FILE_LIMIT_RAISED";
/// The admin password of every benchmark tenant; it passes the signup strength rules.
const TENANT_PASSWORD: &str = "Str0ng&Secret!";
/// `/proc/<pid>/stat` times are in clock ticks; Linux reports 100 per second on every
/// mainstream architecture (`getconf CLK_TCK`).
const CLOCK_TICKS_PER_S: f64 = 100.0;

#[derive(Args)]
pub struct RealtimeBenchArgs {
    /// A small smoke run: 200 clients over 20 tenants, short phases, a small burst and ramp.
    #[arg(long)]
    quick: bool,
    /// `N/M`: N subscribed clients over M tenants (repeatable). Default: 2000/200 and
    /// 10000/1000 (with --quick: 200/20).
    #[arg(long = "scale", value_name = "N/M")]
    scales: Vec<Scale>,
    /// Changes per second the writer makes through the writing replica.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Measured seconds of writing per scale, after a warm-up of one change per tenant
    /// [default: 20, with --quick 5].
    #[arg(long)]
    duration: Option<u64>,
    /// Clients of the one tenant that receives the fan-out burst (0 = skip) [default: the
    /// largest N].
    #[arg(long)]
    burst_clients: Option<usize>,
    /// Events in the fan-out burst [default: 50, with --quick 20].
    #[arg(long)]
    burst_events: Option<u32>,
    /// Open at most this many sockets on one replica in the connection ramp (0 = skip)
    /// [default: as many as the file limit allows, with --quick 2000].
    #[arg(long)]
    max_connections: Option<usize>,
    /// The router binary the replicas run [default: `tenant-router` next to this executable].
    #[arg(long, value_name = "PATH")]
    router_bin: Option<PathBuf>,
    /// Each replica's connection budget for the Postgres server [default: 1.5 × the largest M
    /// plus 50, so each replica can keep a connection per tenant it serves, with room for a tenant's
    /// concurrent writes and the pool's reserve; the router's own default is 100]. Postgres gets
    /// `max_connections` = 2 × budget + 100.
    #[arg(long)]
    budget: Option<usize>,
    /// An extra environment variable for the replicas, e.g. NEXACORE_POOL_RESERVE_PER_SERVER=0
    /// (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_env)]
    router_env: Vec<(String, String)>,
    /// Print a machine-readable JSON report on stdout instead of tables.
    #[arg(long)]
    json: bool,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    let (key, value) = s.split_once('=').ok_or("expected KEY=VALUE")?;
    Ok((key.to_owned(), value.to_owned()))
}

/// `N/M`: N clients over M tenants.
#[derive(Clone, Copy, Debug, Serialize)]
struct Scale {
    clients: usize,
    tenants: usize,
}

impl FromStr for Scale {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (n, m) = s.split_once('/').ok_or("expected N/M, e.g. 2000/200")?;
        let clients: usize = n.trim().parse().map_err(|_| format!("N in {s} is not a number"))?;
        let tenants: usize = m.trim().parse().map_err(|_| format!("M in {s} is not a number"))?;
        if tenants == 0 || clients < tenants {
            return Err(format!("{s}: need 1 ≤ M ≤ N (at least one client per tenant)"));
        }
        Ok(Self { clients, tenants })
    }
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.clients, self.tenants)
    }
}

/// The flags, checked and resolved against the file limit.
struct Settings {
    scales: Vec<Scale>,
    rate: u32,
    duration: Duration,
    burst_clients: usize,
    burst_events: u32,
    max_connections: usize,
    router_bin: Option<PathBuf>,
    router_env: Vec<(String, String)>,
    /// Each replica's connection budget (see [`RealtimeBenchArgs::budget`]).
    budget: usize,
    /// Tenants provisioned: the largest M, and enough for the burst and the ramp.
    tenants: usize,
    file_limit: FileLimit,
    json: bool,
}

impl Settings {
    fn resolve(args: RealtimeBenchArgs) -> anyhow::Result<Self> {
        let scales = match (args.scales.is_empty(), args.quick) {
            (false, _) => args.scales,
            (true, true) => vec![Scale { clients: 200, tenants: 20 }],
            (true, false) => vec![Scale { clients: 2000, tenants: 200 }, Scale { clients: 10_000, tenants: 1000 }],
        };
        if args.rate == 0 {
            bail!("--rate must be at least 1");
        }
        let largest = scales.iter().map(|s| s.clients).max().unwrap_or(0);
        let burst_clients = args.burst_clients.unwrap_or(if args.quick { 1000 } else { largest });
        let wanted_ramp = args.max_connections.unwrap_or(if args.quick { 2000 } else { usize::MAX });

        let file_limit = FileLimit::of_this_process()?;
        let needed = largest.max(burst_clients).max(wanted_ramp.min(1 << 20)) as u64 + FD_RESERVE;
        if file_limit.soft < needed && file_limit.soft < file_limit.hard && std::env::var_os(RAISED_GUARD).is_none() {
            // Never returns on success: this process becomes one with the hard limit as its soft one.
            return Err(reexec_with_raised_file_limit());
        }
        let usable = usize::try_from(file_limit.soft.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
        if let Some(too_big) = scales.iter().find(|s| s.clients > usable) {
            bail!(
                "--scale {too_big}: more sockets than the file limit allows ({usable}; `ulimit -n` is {})",
                file_limit.soft
            );
        }
        if burst_clients > usable {
            bail!("--burst-clients {burst_clients}: more sockets than the file limit allows ({usable})");
        }
        let max_connections = wanted_ramp.min(usable);
        let most_tenants = scales.iter().map(|s| s.tenants).max().unwrap_or(1);
        // Under a smaller budget the writer churns Postgres sessions, one per write to a tenant
        // whose connection was closed for another's; each costs ≈ 10 ms of server CPU here and
        // the machine saturates (measured at 2000/200: budget 220 → 127 new sessions/s, commit →
        // client p99 16–32 ms; budget 1000 → 1 new session in 20 s, p99 under 1 ms).
        let budget = args.budget.unwrap_or(most_tenants * 3 / 2 + 50);
        if budget == 0 {
            bail!("--budget must be at least 1");
        }
        Ok(Self {
            tenants: most_tenants.max(1),
            scales,
            rate: args.rate,
            duration: Duration::from_secs(args.duration.unwrap_or(if args.quick { 5 } else { 20 })),
            burst_clients,
            burst_events: args.burst_events.unwrap_or(if args.quick { 20 } else { 50 }),
            max_connections,
            router_bin: args.router_bin,
            router_env: args.router_env,
            budget,
            file_limit,
            json: args.json,
        })
    }
}

impl Settings {
    /// Both replicas may spend their whole budget; the rest is for the control plane and this
    /// process's own connections.
    fn postgres_max_connections(&self) -> usize {
        2 * self.budget + 100
    }
}

/// `RLIMIT_NOFILE` of this process, from /proc (setting it needs `unsafe` or a crate; raising
/// the soft limit to the hard one is done by re-executing through `sh -c 'ulimit -n …'`).
#[derive(Clone, Copy, Serialize)]
struct FileLimit {
    soft: u64,
    hard: u64,
}

impl FileLimit {
    fn of_this_process() -> anyhow::Result<Self> {
        let limits = std::fs::read_to_string("/proc/self/limits").context("reading /proc/self/limits")?;
        let line = limits.lines().find(|l| l.starts_with("Max open files")).context("no open-files limit")?;
        let mut numbers =
            line["Max open files".len()..].split_whitespace().map(|v| v.parse::<u64>().unwrap_or(u64::MAX));
        Ok(Self { soft: numbers.next().unwrap_or(1024), hard: numbers.next().unwrap_or(1024) })
    }
}

/// Replaces this process with itself under `ulimit -n <hard limit>`; returns only on failure.
fn reexec_with_raised_file_limit() -> anyhow::Error {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return anyhow!(e).context("finding this executable to raise the file limit"),
    };
    let error = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n "$(ulimit -Hn)" && exec "$0" "$@""#)
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(RAISED_GUARD, "1")
        .exec();
    anyhow!(error).context("re-executing with a raised file limit")
}

pub async fn run(args: RealtimeBenchArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(args)?;
    let started = Instant::now();
    let load_at_start = load_average();
    let router_bin = router_binary(settings.router_bin.clone())?;
    let max_connections = settings.postgres_max_connections().to_string();
    let cluster = tokio::task::spawn_blocking(move || {
        LocalCluster::start_throwaway_with(&[("max_connections", max_connections.as_str())])
    })
    .await
    .context("starting Postgres panicked")?
    .context("starting a throwaway Postgres cluster")?;
    let outcome = tokio::select! {
        outcome = bench(&settings, &cluster, router_bin) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    let stopped = tokio::task::spawn_blocking(move || cluster.stop()).await.context("stopping Postgres panicked")?;
    let mut report = outcome?;
    stopped.context("stopping the throwaway Postgres cluster")?;
    report.environment.load_average_at_start = load_at_start;
    report.environment.load_average_at_end = load_average();
    report.elapsed_s = started.elapsed().as_secs_f64();
    if settings.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// The router binary: given, or the one built next to this executable.
fn router_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let bin = match given {
        Some(bin) => bin,
        None => std::env::current_exe().context("finding this executable")?.with_file_name("tenant-router"),
    };
    if !bin.is_file() {
        bail!(
            "{} not found: the replicas run the router binary built next to `ops`; build both with \
             `cargo build --release -p ops -p tenant-router`",
            bin.display()
        );
    }
    Ok(bin)
}

async fn bench(settings: &Settings, cluster: &LocalCluster, router_bin: PathBuf) -> anyhow::Result<Report> {
    // The budget first: an explicit --router-env for the same variable comes later and wins.
    let router_env = std::iter::once(("NEXACORE_POOL_BUDGET_PER_SERVER".to_owned(), settings.budget.to_string()))
        .chain(settings.router_env.iter().cloned())
        .collect();
    let stack = Stack::start(cluster, router_bin, router_env).await?;
    let outcome = measure(settings, &stack).await;
    stack.stop().await;
    outcome
}

async fn measure(settings: &Settings, stack: &Stack) -> anyhow::Result<Report> {
    let provision_started = Instant::now();
    let tenants = Arc::new(stack.provision(settings.tenants).await?);
    let provisioning_s = provision_started.elapsed().as_secs_f64();

    let mut scales = Vec::new();
    for (i, scale) in settings.scales.iter().enumerate() {
        scales.push(scale_phase(settings, stack, &tenants, *scale, i).await?);
    }
    let burst = match settings.burst_clients {
        0 => None,
        clients => Some(burst_phase(stack, &tenants, clients, settings.burst_events).await?),
    };
    let ramp = match settings.max_connections {
        0 => None,
        cap => Some(ramp_phase(stack, &tenants, cap).await?),
    };
    let environment = Environment {
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average_at_start: [0.0; 3],
        load_average_at_end: [0.0; 3],
        file_limit: settings.file_limit,
        router_binary: stack.router_bin.display().to_string(),
        replicas: "two child processes of the router binary (A = the writing replica, B = the other)",
        postgres: format!(
            "private throwaway cluster (fsync=off, synchronous_commit=off, max_connections={})",
            settings.postgres_max_connections()
        ),
        tenants_provisioned: tenants.len(),
        provisioning_s,
        router_logs: stack.log_dir.display().to_string(),
        router_env: stack.router_env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
    };
    let targets = targets(&scales, burst.as_ref(), settings.rate);
    Ok(Report { environment, scales, burst, max_connections: ramp, targets, elapsed_s: 0.0 })
}

// ---------------------------------------------------------------------------------------------
// The stack: control plane in this process, routers as child processes

struct Stack {
    control_plane: String,
    stop_control_plane: oneshot::Sender<()>,
    control_plane_task: JoinHandle<std::io::Result<()>>,
    operator_token: String,
    catalog_url: String,
    /// What routers log in with: the control plane's least-privileged catalog role.
    router_catalog_url: String,
    /// The superuser URL of the server without a database, to reach tenant databases.
    server_url: String,
    role_key_hex: SecretString,
    jwks_url: String,
    router_bin: PathBuf,
    /// Extra environment of the replicas (`--router-env`).
    router_env: Vec<(String, String)>,
    log_dir: PathBuf,
    http: reqwest::Client,
}

#[derive(Clone)]
struct Tenant {
    id: String,
    token: Arc<str>,
}

impl Stack {
    async fn start(
        cluster: &LocalCluster,
        router_bin: PathBuf,
        router_env: Vec<(String, String)>,
    ) -> anyhow::Result<Self> {
        let master_key = MasterKey::generate_base64();
        let operator_token = hex::encode(rand::random::<[u8; 24]>());
        let catalog = DbName::parse("rt_bench_catalog").map_err(|e| anyhow!(e))?;
        let mut config = control_plane::Config::new(
            cluster.superuser_url().into(),
            master_key.clone().into(),
            operator_token.clone().into(),
        );
        config.listen = ([127, 0, 0, 1], 0).into();
        config.catalog_database = catalog.clone();
        config.template_database = DbName::parse("rt_bench_template").map_err(|e| anyhow!(e))?;
        config.signup_limit_per_hour = 1_000_000;
        // Tokens outlive the run: the router closes sockets whose token expires.
        config.token_ttl = Duration::from_secs(24 * 3600);
        let app = control_plane::App::build(config).await.context("starting the control plane")?;
        let control_plane = format!("http://127.0.0.1:{}", app.port());
        let (stop_control_plane, stopped) = oneshot::channel::<()>();
        let control_plane_task = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));

        let role_key = MasterKey::from_base64(&SecretString::from(master_key))
            .map_err(|e| anyhow!("{e}"))?
            .tenant_role_key()
            .to_hex();
        let log_dir = std::env::temp_dir().join(format!("nexacore-bench-realtime-{:08x}", rand::random::<u32>()));
        std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
        Ok(Self {
            jwks_url: format!("{control_plane}/.well-known/jwks.json"),
            control_plane,
            stop_control_plane,
            control_plane_task,
            operator_token,
            catalog_url: format!("postgres://postgres@127.0.0.1:{}/{}", cluster.port(), catalog.as_str()),
            router_catalog_url: control_plane::catalog::access::router_catalog_url(
                &format!("postgres://postgres@127.0.0.1:{}", cluster.port()),
                &catalog,
            )?,
            server_url: format!("postgres://postgres@127.0.0.1:{}", cluster.port()),
            role_key_hex: role_key,
            router_bin,
            router_env,
            log_dir,
            http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?,
        })
    }

    async fn stop(self) {
        let _ = self.stop_control_plane.send(());
        match self.control_plane_task.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "the control plane stopped with an error"),
            Err(error) => tracing::warn!(%error, "the control plane panicked"),
        }
    }

    /// Signs `count` companies up through `POST /tenants` with the operator token.
    async fn provision(&self, count: usize) -> anyhow::Result<Vec<Tenant>> {
        // The primary server registers with room for 1,000 tenants.
        let mut catalog = PgConnection::connect(&self.catalog_url).await.context("connecting to the catalog")?;
        sqlx::query("UPDATE database_servers SET capacity = greatest(capacity, $1)")
            .bind(i32::try_from(count + 100).unwrap_or(i32::MAX))
            .execute(&mut catalog)
            .await?;
        catalog.close().await.ok();

        let run = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        let bar = progress(count as u64, "provisioning tenants");
        let tenants = futures::stream::iter(0..count)
            .map(|i| {
                let slug = format!("rt-{run}-{i}");
                let bar = &bar;
                async move {
                    let tenant = self.signup(&slug).await?;
                    bar.inc(1);
                    anyhow::Ok((i, tenant))
                }
            })
            .buffer_unordered(PROVISION_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        bar.finish_and_clear();
        let mut tenants = tenants.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
        tenants.sort_by_key(|(i, _)| *i);
        Ok(tenants.into_iter().map(|(_, t)| t).collect())
    }

    async fn signup(&self, slug: &str) -> anyhow::Result<Tenant> {
        let body = json!({
            "company_name": format!("Company {slug}"),
            "slug": slug,
            "admin": {"email": format!("admin@{slug}.example.com"), "password": TENANT_PASSWORD, "full_name": "Ada Admin"},
            "timezone": "UTC",
            "currency": "EUR",
        });
        let response = self
            .http
            .post(format!("{}/tenants", self.control_plane))
            .bearer_auth(&self.operator_token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        if status != reqwest::StatusCode::CREATED {
            bail!("provisioning {slug} failed: HTTP {status}: {text}");
        }
        let created: Value = serde_json::from_str(&text)?;
        let token = created["access_token"].as_str().context("no access_token in the signup answer")?;
        let id = created["tenant"]["id"].as_str().context("no tenant id in the signup answer")?;
        Ok(Tenant { id: id.to_owned(), token: token.into() })
    }

    /// A fresh router replica on a free port, with the per-tenant socket limit lifted (the
    /// burst puts thousands of sockets on one tenant). Its log goes to the run's log directory.
    async fn start_router(&self, name: &'static str, phase: &str) -> anyhow::Result<Router> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log_path = self.log_dir.join(format!("{phase}-router-{name}.log"));
        let log = std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        // The soft file limit is raised to the hard one for the child alone.
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(r#"ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0""#)
            .arg(&self.router_bin)
            .env("NEXACORE_CATALOG_URL", &self.router_catalog_url)
            .env("NEXACORE_TENANT_ROLE_KEY", self.role_key_hex.expose_secret())
            .env("NEXACORE_JWKS_URL", &self.jwks_url)
            .env("NEXACORE_LISTEN", addr.to_string())
            .env("NEXACORE_WS_MAX_PER_TENANT", "1000000")
            .env("RUST_LOG", "warn")
            .envs(self.router_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting a router process")?;
        let pid = child.id().context("the router process exited at once")?;
        let router = Router { name, child, pid, addr, base: format!("http://{addr}") };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let health = self.http.get(format!("{}/health", router.base)).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return Ok(router);
            }
            if Instant::now() > deadline {
                bail!("router {name} did not become healthy in 30 s (log: {})", log_path.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A superuser connection to a tenant's own database.
    async fn tenant_database(&self, tenant: &Tenant) -> anyhow::Result<PgConnection> {
        let mut catalog = PgConnection::connect(&self.catalog_url).await.context("connecting to the catalog")?;
        let db: String = sqlx::query_scalar("SELECT database_name FROM tenants WHERE id = $1::uuid")
            .bind(&tenant.id)
            .fetch_one(&mut catalog)
            .await
            .context("looking up the tenant's database")?;
        catalog.close().await.ok();
        let db = DbName::parse(&db).map_err(|e| anyhow!(e))?;
        PgConnection::connect(&format!("{}/{}", self.server_url, db.as_str()))
            .await
            .context("connecting to a tenant database")
    }

    /// Sessions the server has started so far (all databases): new connections are what a
    /// router pool that cannot keep one per tenant pays for.
    async fn postgres_sessions(&self) -> anyhow::Result<i64> {
        let mut conn = PgConnection::connect(&format!("{}/postgres", self.server_url)).await?;
        let sessions = sqlx::query_scalar("SELECT coalesce(sum(sessions), 0)::bigint FROM pg_stat_database")
            .fetch_one(&mut conn)
            .await
            .context("reading pg_stat_database")?;
        conn.close().await.ok();
        Ok(sessions)
    }
}

/// A router replica: a child process (after `exec`, the pid is the router's own).
struct Router {
    name: &'static str,
    child: tokio::process::Child,
    pid: u32,
    addr: SocketAddr,
    base: String,
}

impl Router {
    fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .with_context(|| format!("router {} is gone", self.name))?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
        line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).context("unreadable VmRSS")
    }

    fn cpu_s(&self) -> f64 {
        process_cpu_s(self.pid).unwrap_or(0.0)
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// User + system CPU seconds of a process (`/proc/<pid>/stat` fields 14 and 15).
fn process_cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: count fields after it.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / CLOCK_TICKS_PER_S)
}

/// CPU seconds of the whole machine (every process, everyone's): busy, and available.
fn machine_cpu_s() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> =
        stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let total: f64 = ticks.iter().take(8).sum();
    // idle and iowait are not busy.
    let idle = ticks.get(3).copied().unwrap_or(0.0) + ticks.get(4).copied().unwrap_or(0.0);
    ((total - idle) / CLOCK_TICKS_PER_S, total / CLOCK_TICKS_PER_S)
}

fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut values = text.split_whitespace().map(|v| v.parse().unwrap_or(f64::NAN));
    [(); 3].map(|()| values.next().unwrap_or(f64::NAN))
}

/// CPU seconds spent by each party between two samples.
#[derive(Clone, Copy, Default, Serialize)]
struct Cpu {
    router_a_s: f64,
    router_b_s: f64,
    bench_s: f64,
    /// Every process's (ours, Postgres's, other people's builds), out of `machine_s`.
    machine_busy_s: f64,
    machine_s: f64,
}

impl Cpu {
    fn sample(a: &Router, b: Option<&Router>) -> Self {
        let (machine_busy_s, machine_s) = machine_cpu_s();
        Self {
            router_a_s: a.cpu_s(),
            router_b_s: b.map_or(0.0, Router::cpu_s),
            bench_s: process_cpu_s(std::process::id()).unwrap_or(0.0),
            machine_busy_s,
            machine_s,
        }
    }

    fn since(self, earlier: Self) -> Self {
        Self {
            router_a_s: self.router_a_s - earlier.router_a_s,
            router_b_s: self.router_b_s - earlier.router_b_s,
            bench_s: self.bench_s - earlier.bench_s,
            machine_busy_s: self.machine_busy_s - earlier.machine_busy_s,
            machine_s: self.machine_s - earlier.machine_s,
        }
    }

    /// `A/B/bench CPU s; machine busy %`.
    fn describe(&self, with_b: bool) -> String {
        let busy = 100.0 * self.machine_busy_s / self.machine_s.max(f64::EPSILON);
        match with_b {
            true => format!("{:.1}/{:.1}/{:.1}; {busy:.0}%", self.router_a_s, self.router_b_s, self.bench_s),
            false => format!("{:.1}/{:.1}; {busy:.0}%", self.router_a_s, self.bench_s),
        }
    }
}

/// How late a thread of this process that only sleeps 1 ms at a time wakes up: the machine's
/// scheduling stalls (others build and bench here too), which every process of the run —
/// routers, Postgres, clients — suffers alike and which land in the latency tail.
struct StallMeter {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<i64>>,
}

impl StallMeter {
    fn start() -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut late = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                let due = Instant::now() + Duration::from_millis(1);
                std::thread::sleep(Duration::from_millis(1));
                late.push(micros(Instant::now().saturating_duration_since(due)));
            }
            late
        });
        Self { stop, thread }
    }

    fn finish(self) -> Dist {
        self.stop.store(true, Ordering::Relaxed);
        Dist::of(self.thread.join().unwrap_or_default())
    }
}

// ---------------------------------------------------------------------------------------------
// Clients

type Ws = WebSocketStream<TcpStream>;

#[derive(Clone, Copy)]
struct ClientSpec {
    tenant: usize,
    /// 0 = A (the writing replica), 1 = B.
    replica: usize,
}

/// One event as a client read it.
struct Got {
    seq: i64,
    at: Instant,
    /// The event's `ts` in unix microseconds, when asked for.
    ts_us: Option<i64>,
}

#[derive(Default)]
struct ClientLog {
    events: Vec<Got>,
    /// System messages and anything else that is not an event.
    other: u32,
    /// How the socket ended, if it ended before the phase stopped it.
    ended: Option<String>,
}

/// The open clients of a phase: one reading task per socket.
struct Clients {
    open: Vec<(ClientSpec, JoinHandle<ClientLog>)>,
    stop: watch::Sender<bool>,
    /// Events read by all clients so far.
    delivered: Arc<AtomicU64>,
    failed: usize,
    first_error: Option<String>,
    keep_ts: bool,
}

impl Clients {
    fn new(keep_ts: bool) -> Self {
        Self {
            open: Vec::new(),
            stop: watch::channel(false).0,
            delivered: Arc::new(AtomicU64::new(0)),
            failed: 0,
            first_error: None,
            keep_ts,
        }
    }

    fn len(&self) -> usize {
        self.open.len()
    }

    fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Connects one socket per spec (`CONNECT_CONCURRENCY` handshakes at a time); failures are
    /// counted, not fatal. Returns how many of `specs` connected.
    async fn open(
        &mut self,
        specs: &[ClientSpec],
        routers: &[&Router],
        tenants: &[Tenant],
        bar: &ProgressBar,
    ) -> usize {
        let first = self.open.len();
        let mut connecting = futures::stream::iter(specs.iter().enumerate())
            .map(|(i, spec)| {
                let addr = routers[spec.replica].addr;
                let source = Ipv4Addr::new(127, 0, 0, 2 + ((first + i) % usize::from(SOURCE_ADDRESSES)) as u8);
                let token = tenants[spec.tenant].token.clone();
                async move { (*spec, connect(addr, IpAddr::V4(source), &token).await) }
            })
            .buffer_unordered(CONNECT_CONCURRENCY);
        let mut opened = 0;
        while let Some((spec, connected)) = connecting.next().await {
            match connected {
                Ok(ws) => {
                    let task =
                        tokio::spawn(read_events(ws, self.stop.subscribe(), self.delivered.clone(), self.keep_ts));
                    self.open.push((spec, task));
                    opened += 1;
                }
                Err(error) => {
                    self.failed += 1;
                    self.first_error.get_or_insert_with(|| format!("{error:#}"));
                }
            }
            bar.inc(1);
        }
        opened
    }

    /// Waits until `expected` events were read in all, or `patience` passed without progress.
    async fn wait_for(&self, expected: u64, patience: Duration) {
        let mut last = self.delivered();
        let mut last_progress = Instant::now();
        while self.delivered() < expected {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = self.delivered();
            if now != last {
                (last, last_progress) = (now, Instant::now());
            } else if last_progress.elapsed() > patience {
                return;
            }
        }
    }

    /// Stops every reader (closing its socket) and returns what each read.
    async fn close(self) -> anyhow::Result<Vec<(ClientSpec, ClientLog)>> {
        let _ = self.stop.send(true);
        let mut logs = Vec::with_capacity(self.open.len());
        for (spec, task) in self.open {
            logs.push((spec, task.await.context("a client task panicked")?));
        }
        Ok(logs)
    }
}

async fn connect(addr: SocketAddr, source: IpAddr, token: &str) -> anyhow::Result<Ws> {
    let socket = TcpSocket::new_v4().context("creating a socket")?;
    socket.bind(SocketAddr::new(source, 0)).with_context(|| format!("binding to {source}"))?;
    let stream = tokio::time::timeout(Duration::from_secs(30), socket.connect(addr))
        .await
        .context("TCP connect timed out")?
        .context("TCP connect")?;
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER);
    let url = format!("ws://{addr}/ws?token={token}");
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::client_async_with_config(url, stream, Some(config)),
    )
    .await
    .context("WebSocket handshake timed out")?
    .context("WebSocket handshake")?;
    Ok(ws)
}

/// Reads until stopped, recording each event's seq and the instant it was read. Pings are
/// answered by the library as the socket is read.
async fn read_events(
    mut ws: Ws,
    mut stop: watch::Receiver<bool>,
    delivered: Arc<AtomicU64>,
    keep_ts: bool,
) -> ClientLog {
    let mut log = ClientLog::default();
    loop {
        let message = tokio::select! {
            message = ws.next() => message,
            _ = stop.changed() => break,
        };
        match message {
            Some(Ok(Message::Text(text))) => {
                let at = Instant::now();
                match event_of(&text, keep_ts) {
                    Some((seq, ts_us)) => {
                        log.events.push(Got { seq, at, ts_us });
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    None => log.other += 1,
                }
            }
            Some(Ok(Message::Close(frame))) => {
                log.ended = Some(frame.map_or("closed by the router".into(), |f| {
                    format!("closed by the router: {} {}", u16::from(f.code), f.reason)
                }));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                log.ended = Some(format!("socket error: {error}"));
                break;
            }
            None => {
                log.ended = Some("socket closed".into());
                break;
            }
        }
    }
    // Best effort: the router is stopped next anyway.
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    log
}

/// The seq (and `ts`) of a change event; `None` for a system message. Events are
/// `{"action","channel","data","seq","ts"}` with `seq` after `data`, so the last `"seq":` is the
/// event's own: no JSON parse per message, which would cost more than the router's send.
fn event_of(text: &str, keep_ts: bool) -> Option<(i64, Option<i64>)> {
    if text.contains(r#""channel":"system""#) {
        return None;
    }
    let start = text.rfind(r#""seq":"#)? + r#""seq":"#.len();
    let digits = text[start..].split(|c: char| !c.is_ascii_digit()).next()?;
    let seq = digits.parse().ok()?;
    let ts = keep_ts.then(|| ts_micros(text)).flatten();
    Some((seq, ts))
}

fn ts_micros(text: &str) -> Option<i64> {
    let start = text.rfind(r#""ts":""#)? + r#""ts":""#.len();
    let end = start + text[start..].find('"')?;
    let ts = OffsetDateTime::parse(&text[start..end], &Rfc3339).ok()?;
    i64::try_from(ts.unix_timestamp_nanos() / 1000).ok()
}

// ---------------------------------------------------------------------------------------------
// Writes

/// A change made through the writing replica's API.
struct Write {
    tenant: usize,
    /// Warm-up writes are delivered and verified but not in the latency figures.
    measured: bool,
    outcome: Result<Committed, String>,
}

#[derive(Clone, Copy)]
struct Committed {
    seq: i64,
    sent: Instant,
    /// When the 201's headers arrived.
    returned: Instant,
}

struct Writer {
    http: reqwest::Client,
    base: Arc<str>,
    tenants: Arc<Vec<Tenant>>,
    tag: String,
}

impl Writer {
    fn new(router: &Router, tenants: &Arc<Vec<Tenant>>, tag: &str) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?,
            base: router.base.as_str().into(),
            tenants: tenants.clone(),
            tag: tag.to_owned(),
        })
    }

    /// One change per entry of `plan` (tenant, measured), at `rate` per second (open loop: a
    /// slow answer does not delay the next write) or, without a rate, as fast as
    /// `concurrency` writers go.
    async fn write(
        &self,
        plan: &[(usize, bool)],
        rate: Option<f64>,
        concurrency: usize,
        bar: &ProgressBar,
    ) -> anyhow::Result<Vec<Write>> {
        let permits = Arc::new(Semaphore::new(concurrency));
        let mut ticker = rate.map(|r| {
            let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / r));
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            t
        });
        let mut tasks = JoinSet::new();
        for (n, &(tenant, measured)) in plan.iter().enumerate() {
            if let Some(ticker) = ticker.as_mut() {
                ticker.tick().await;
            }
            let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
            let (http, base, token) = (self.http.clone(), self.base.clone(), self.tenants[tenant].token.clone());
            let email = format!("{}-{n}@bench.example.com", self.tag);
            let bar = bar.clone();
            tasks.spawn(async move {
                let outcome = post_employee(&http, &base, &token, &email).await;
                drop(permit);
                bar.inc(1);
                Write { tenant, measured, outcome }
            });
        }
        let mut writes = Vec::with_capacity(plan.len());
        while let Some(write) = tasks.join_next().await {
            writes.push(write.context("a writer task panicked")?);
        }
        Ok(writes)
    }
}

async fn post_employee(http: &reqwest::Client, base: &str, token: &str, email: &str) -> Result<Committed, String> {
    let body = json!({"first_name": "Live", "last_name": "Event", "email": email, "hire_date": "2024-01-15"});
    let sent = Instant::now();
    let response = http
        .post(format!("{base}/employees"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let returned = Instant::now();
    let status = response.status();
    let seq = response.headers().get("x-event-seq").and_then(|v| v.to_str().ok()?.parse().ok());
    let text = response.text().await.unwrap_or_default();
    match (status, seq) {
        (reqwest::StatusCode::CREATED, Some(seq)) => Ok(Committed { seq, sent, returned }),
        (reqwest::StatusCode::CREATED, None) => Err("201 without X-Event-Seq".into()),
        _ => Err(format!("HTTP {status}: {text}")),
    }
}

/// Every tenant's committed seqs, in order.
fn expected_seqs(writes: &[Write]) -> HashMap<usize, Vec<i64>> {
    let mut expected: HashMap<usize, Vec<i64>> = HashMap::new();
    for w in writes {
        if let Ok(c) = &w.outcome {
            expected.entry(w.tenant).or_default().push(c.seq);
        }
    }
    for seqs in expected.values_mut() {
        seqs.sort_unstable();
    }
    expected
}

fn failed_writes(writes: &[Write]) -> (usize, Option<String>) {
    let failed: Vec<&String> = writes.iter().filter_map(|w| w.outcome.as_ref().err()).collect();
    (failed.len(), failed.first().map(|e| (*e).clone()))
}

// ---------------------------------------------------------------------------------------------
// Phase 1: latency at a scale

async fn scale_phase(
    settings: &Settings,
    stack: &Stack,
    tenants: &Arc<Vec<Tenant>>,
    scale: Scale,
    index: usize,
) -> anyhow::Result<ScaleReport> {
    let phase = format!("scale{index}-{}-{}", scale.clients, scale.tenants);
    let a = stack.start_router("A", &phase).await?;
    let b = stack.start_router("B", &phase).await?;
    let outcome = scale_measure(settings, stack, tenants, scale, &phase, &a, &b).await;
    a.stop().await;
    b.stop().await;
    outcome
}

async fn scale_measure(
    settings: &Settings,
    stack: &Stack,
    tenants: &Arc<Vec<Tenant>>,
    scale: Scale,
    phase: &str,
    a: &Router,
    b: &Router,
) -> anyhow::Result<ScaleReport> {
    // Client i belongs to tenant i % M; a tenant's clients alternate between the replicas.
    let specs: Vec<ClientSpec> = (0..scale.clients)
        .map(|i| ClientSpec { tenant: i % scale.tenants, replica: (i / scale.tenants) % 2 })
        .collect();
    let rss_before = [a.rss_kib()?, b.rss_kib()?];
    let mut clients = Clients::new(true);
    let bar = progress(scale.clients as u64, &format!("{scale}: connecting"));
    clients.open(&specs, &[a, b], tenants, &bar).await;
    bar.finish_and_clear();
    if clients.failed > 0 {
        bail!(
            "{scale}: {} of {} clients could not connect: {}",
            clients.failed,
            scale.clients,
            clients.first_error.as_deref().unwrap_or("")
        );
    }
    // Let the handshakes' garbage settle before reading the resident sets; meanwhile, what
    // idle sockets cost the server (the hubs' periodic re-check reads every tenant's outbox).
    let idle_sessions_before = stack.postgres_sessions().await?;
    let idle_cpu_before = Cpu::sample(a, Some(b));
    tokio::time::sleep(IDLE_WINDOW).await;
    let idle_cpu = Cpu::sample(a, Some(b)).since(idle_cpu_before);
    let idle_sessions = stack.postgres_sessions().await? - idle_sessions_before;
    let per_replica = [0, 1].map(|r| specs.iter().filter(|s| s.replica == r).count());
    let memory = [Memory::new(a, per_replica[0], rss_before[0])?, Memory::new(b, per_replica[1], rss_before[1])?];

    // One warm-up change per tenant, then the measured ones, round robin, all at the rate.
    let measured = (f64::from(settings.rate) * settings.duration.as_secs_f64()).round() as usize;
    let plan: Vec<(usize, bool)> =
        (0..scale.tenants).map(|t| (t, false)).chain((0..measured).map(|i| (i % scale.tenants, true))).collect();
    let writer = Writer::new(a, tenants, phase)?;
    let load = load_average();
    let sessions_before = stack.postgres_sessions().await?;
    let cpu_before = Cpu::sample(a, Some(b));
    let stalls = StallMeter::start();
    let anchor = (Instant::now(), SystemTime::now());
    let bar = progress(plan.len() as u64, &format!("{scale}: writing {}/s", settings.rate));
    let writes = writer.write(&plan, Some(f64::from(settings.rate)), WRITE_CONCURRENCY, &bar).await?;
    bar.finish_and_clear();
    let expected = expected_seqs(&writes);
    let expected_total: u64 = specs.iter().map(|s| expected.get(&s.tenant).map_or(0, |seqs| seqs.len() as u64)).sum();
    clients.wait_for(expected_total, Duration::from_secs(10)).await;
    let cpu = Cpu::sample(a, Some(b)).since(cpu_before);
    let stalls = stalls.finish();
    // Room for a duplicate to show up (and for Postgres to flush its session counts).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let postgres_sessions = stack.postgres_sessions().await? - sessions_before;
    let logs = clients.close().await?;

    let timing = Timing::of(&writes);
    let latency = latencies(&logs, &writes, anchor);
    let verification = verify(&logs, &writes, &expected);
    let deliveries: u64 = logs.iter().map(|(_, log)| log.events.len() as u64).sum();
    let measured_deliveries: u64 =
        latency.iter().filter(|l| l.measure == MEASURE_FROM_201).map(|l| l.stats.samples as u64).sum();
    Ok(ScaleReport {
        scale,
        rate_target: settings.rate,
        rate_achieved: timing.rate,
        measured_s: timing.span_s,
        writes_ok: writes.iter().filter(|w| w.outcome.is_ok()).count(),
        write_p50_ms: timing.p50_ms,
        write_p99_ms: timing.p99_ms,
        deliveries,
        measured_deliveries_per_s: measured_deliveries as f64 / timing.span_s.max(f64::EPSILON),
        latency,
        memory,
        verification,
        cpu,
        stalls,
        postgres_sessions,
        idle: Idle {
            postgres_sessions_per_s: idle_sessions as f64 / IDLE_WINDOW.as_secs_f64(),
            router_a_cpu: idle_cpu.router_a_s / IDLE_WINDOW.as_secs_f64(),
            router_b_cpu: idle_cpu.router_b_s / IDLE_WINDOW.as_secs_f64(),
        },
        load_average: load,
    })
}

/// The writer's own figures over the measured writes.
struct Timing {
    rate: f64,
    span_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Timing {
    fn of(writes: &[Write]) -> Self {
        let measured: Vec<&Committed> =
            writes.iter().filter(|w| w.measured).filter_map(|w| w.outcome.as_ref().ok()).collect();
        let first = measured.iter().map(|c| c.sent).min();
        let last = measured.iter().map(|c| c.sent).max();
        let span_s = match (first, last) {
            (Some(first), Some(last)) => (last - first).as_secs_f64(),
            _ => 0.0,
        };
        let rate = if span_s > 0.0 { (measured.len() - 1) as f64 / span_s } else { 0.0 };
        let round_trips = Dist::of(measured.iter().map(|c| micros(c.returned - c.sent)).collect());
        Self { rate, span_s, p50_ms: round_trips.p50_ms, p99_ms: round_trips.p99_ms }
    }
}

const MEASURE_FROM_201: &str = "after the 201";
const MEASURE_FROM_SENT: &str = "after the POST was sent (upper bound)";
const MEASURE_FROM_TS: &str = "after the event's ts (wall clock)";

/// Latency of every measured delivery, per replica and measure.
fn latencies(logs: &[(ClientSpec, ClientLog)], writes: &[Write], anchor: (Instant, SystemTime)) -> Vec<Latency> {
    let commits: HashMap<(usize, i64), Committed> = writes
        .iter()
        .filter(|w| w.measured)
        .filter_map(|w| Some(((w.tenant, w.outcome.as_ref().ok()?.seq), *w.outcome.as_ref().ok()?)))
        .collect();
    let anchor_wall_us = anchor.1.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
    let mut rows = Vec::new();
    for replica in [0, 1] {
        let (mut from_201, mut from_sent, mut from_ts) = (Vec::new(), Vec::new(), Vec::new());
        for (spec, log) in logs.iter().filter(|(s, _)| s.replica == replica) {
            for got in &log.events {
                let Some(commit) = commits.get(&(spec.tenant, got.seq)) else { continue };
                from_201.push(signed_micros(got.at, commit.returned));
                from_sent.push(signed_micros(got.at, commit.sent));
                if let Some(ts) = got.ts_us {
                    from_ts.push(anchor_wall_us + signed_micros(got.at, anchor.0) - ts);
                }
            }
        }
        let clients = logs.iter().filter(|(s, _)| s.replica == replica).count();
        for (measure, values) in
            [(MEASURE_FROM_201, from_201), (MEASURE_FROM_SENT, from_sent), (MEASURE_FROM_TS, from_ts)]
        {
            rows.push(Latency { replica: replica_name(replica), clients, measure, stats: Dist::of(values) });
        }
    }
    rows
}

fn replica_name(replica: usize) -> &'static str {
    if replica == 0 { "A (writing)" } else { "B (other)" }
}

/// `later − earlier` in microseconds, negative when `later` came first.
fn signed_micros(later: Instant, earlier: Instant) -> i64 {
    match later.checked_duration_since(earlier) {
        Some(d) => micros(d),
        None => -micros(earlier - later),
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Per client: the received seqs must be exactly its tenant's committed seqs, in order, once.
fn verify(logs: &[(ClientSpec, ClientLog)], writes: &[Write], expected: &HashMap<usize, Vec<i64>>) -> Verification {
    let (writes_failed, first_failed_write) = failed_writes(writes);
    let mut v = Verification {
        clients: logs.len(),
        writes_failed,
        first_failed_write,
        tenants_with_seq_gaps: expected.values().filter(|s| s.windows(2).any(|w| w[1] != w[0] + 1)).count(),
        ..Verification::default()
    };
    let none = Vec::new();
    for (spec, log) in logs {
        let want = expected.get(&spec.tenant).unwrap_or(&none);
        let got: Vec<i64> = log.events.iter().map(|g| g.seq).collect();
        if log.ended.is_some() {
            v.closed_early += 1;
            v.first_problem.get_or_insert_with(|| log.ended.clone().unwrap_or_default());
        }
        if got == *want {
            v.exact += 1;
            continue;
        }
        let got_set: HashSet<i64> = got.iter().copied().collect();
        let want_set: HashSet<i64> = want.iter().copied().collect();
        let missing = want.iter().filter(|s| !got_set.contains(s)).count() as u64;
        let duplicated = (got.len() - got_set.len()) as u64;
        let unexpected = got_set.difference(&want_set).count() as u64;
        let out_of_order = !got.windows(2).all(|w| w[0] < w[1]);
        v.missing += missing;
        v.duplicated += duplicated;
        v.unexpected += unexpected;
        v.out_of_order += usize::from(out_of_order);
        v.first_problem.get_or_insert_with(|| {
            format!(
                "a client of tenant #{} on {}: {missing} missing, {duplicated} duplicated, {unexpected} unexpected{}",
                spec.tenant,
                replica_name(spec.replica),
                if out_of_order { ", out of order" } else { "" }
            )
        });
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Phase 2: fan-out burst

async fn burst_phase(
    stack: &Stack,
    tenants: &Arc<Vec<Tenant>>,
    clients: usize,
    events: u32,
) -> anyhow::Result<BurstReport> {
    let a = stack.start_router("A", "burst").await?;
    let b = stack.start_router("B", "burst").await?;
    let outcome = burst_measure(stack, tenants, clients, events, &a, &b).await;
    a.stop().await;
    b.stop().await;
    outcome
}

async fn burst_measure(
    stack: &Stack,
    tenants: &Arc<Vec<Tenant>>,
    count: usize,
    events: u32,
    a: &Router,
    b: &Router,
) -> anyhow::Result<BurstReport> {
    // Every client belongs to tenant #0, alternating between the replicas.
    let specs: Vec<ClientSpec> = (0..count).map(|i| ClientSpec { tenant: 0, replica: i % 2 }).collect();
    let rss_before = [a.rss_kib()?, b.rss_kib()?];
    let mut clients = Clients::new(false);
    let bar = progress(count as u64, "burst: connecting");
    clients.open(&specs, &[a, b], tenants, &bar).await;
    bar.finish_and_clear();
    if clients.failed > 0 {
        bail!(
            "burst: {} of {count} clients could not connect: {}",
            clients.failed,
            clients.first_error.unwrap_or_default()
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let per_replica = [0, 1].map(|r| specs.iter().filter(|s| s.replica == r).count());
    let memory = [Memory::new(a, per_replica[0], rss_before[0])?, Memory::new(b, per_replica[1], rss_before[1])?];

    // The burst: `events − 1` events committed straight into the outbox in one transaction,
    // then one change through the API, whose wake-up (local, and NOTIFY for B) makes both
    // replicas read them all at once. The writer's own speed (one tenant's writes serialise on
    // its seq counter) then does not limit the fan-out being measured.
    let mut conn = stack.tenant_database(&tenants[0]).await?;
    let mut tx = conn.begin().await?;
    let mut direct = Vec::new();
    for n in 1..events {
        let event = tenant_schema::outbox::append(&mut tx, "employees", "updated", None, &burst_payload(n)).await?;
        direct.push(event.seq);
    }
    let load = load_average();
    let cpu_before = Cpu::sample(a, Some(b));
    let stalls = StallMeter::start();
    // Conservative: the clock starts before the commit.
    let committing = Instant::now();
    tx.commit().await.context("committing the burst")?;
    conn.close().await.ok();
    let writer = Writer::new(a, tenants, "burst")?;
    let bar = ProgressBar::hidden();
    let mut writes = writer.write(&[(0, true)], None, 1, &bar).await?;
    writes.extend(direct.into_iter().map(|seq| Write {
        tenant: 0,
        measured: true,
        outcome: Ok(Committed { seq, sent: committing, returned: committing }),
    }));
    let expected = expected_seqs(&writes);
    let expected_total = expected.get(&0).map_or(0, |s| s.len() as u64) * clients.len() as u64;
    clients.wait_for(expected_total, Duration::from_secs(10)).await;
    let cpu = Cpu::sample(a, Some(b)).since(cpu_before);
    let stalls = stalls.finish();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logs = clients.close().await?;

    let commits: Vec<&Committed> = writes.iter().filter_map(|w| w.outcome.as_ref().ok()).collect();
    let first_sent = commits.iter().map(|c| c.sent).min().context("no burst write succeeded")?;
    let last_returned = commits.iter().map(|c| c.returned).max().unwrap_or(first_sent);
    let by_seq: HashMap<i64, &Committed> = commits.iter().map(|c| (c.seq, *c)).collect();
    let mut per_replica_report = Vec::new();
    for replica in [0, 1] {
        let mine: Vec<&ClientLog> = logs.iter().filter(|(s, _)| s.replica == replica).map(|(_, l)| l).collect();
        let deliveries: u64 = mine.iter().map(|l| l.events.len() as u64).sum();
        let last = mine.iter().flat_map(|l| l.events.iter().map(|g| g.at)).max().unwrap_or(first_sent);
        let first = mine.iter().flat_map(|l| l.events.iter().map(|g| g.at)).min().unwrap_or(first_sent);
        let wall = last.saturating_duration_since(first_sent).as_secs_f64();
        // For each event, from its commit to the last of this replica's clients reading it.
        let mut reached_all: HashMap<i64, Instant> = HashMap::new();
        for got in mine.iter().flat_map(|l| &l.events) {
            let entry = reached_all.entry(got.seq).or_insert(got.at);
            *entry = (*entry).max(got.at);
        }
        let spread =
            reached_all.iter().filter_map(|(seq, at)| Some(signed_micros(*at, by_seq.get(seq)?.returned))).collect();
        per_replica_report.push(BurstReplica {
            replica: replica_name(replica),
            clients: mine.len(),
            deliveries,
            first_read_ms: first.saturating_duration_since(first_sent).as_secs_f64() * 1000.0,
            wall_ms: wall * 1000.0,
            deliveries_per_s: deliveries as f64 / wall.max(f64::EPSILON),
            event_reaches_all_clients: Dist::of(spread),
        });
    }
    let deliveries: u64 = per_replica_report.iter().map(|r| r.deliveries).sum();
    let last = logs.iter().flat_map(|(_, l)| l.events.iter().map(|g| g.at)).max().unwrap_or(first_sent);
    let wall = last.saturating_duration_since(first_sent).as_secs_f64();
    Ok(BurstReport {
        clients: logs.len(),
        events,
        writes_ok: commits.len(),
        trigger_ms: last_returned.saturating_duration_since(first_sent).as_secs_f64() * 1000.0,
        deliveries,
        wall_ms: wall * 1000.0,
        deliveries_per_s: deliveries as f64 / wall.max(f64::EPSILON),
        per_replica: per_replica_report,
        memory,
        verification: verify(&logs, &writes, &expected),
        cpu,
        stalls,
        load_average: load,
    })
}

// ---------------------------------------------------------------------------------------------
// Phase 3: the most connections one replica holds

async fn ramp_phase(stack: &Stack, tenants: &Arc<Vec<Tenant>>, cap: usize) -> anyhow::Result<RampReport> {
    let a = stack.start_router("A", "ramp").await?;
    let outcome = ramp_measure(tenants, cap, &a).await;
    a.stop().await;
    outcome
}

async fn ramp_measure(tenants: &Arc<Vec<Tenant>>, cap: usize, a: &Router) -> anyhow::Result<RampReport> {
    let spread = RAMP_TENANTS.min(tenants.len());
    let mut clients = Clients::new(false);
    let mut steps = vec![RampStep { connections: 0, rss_kib: a.rss_kib()? }];
    let load = load_average();
    let cpu_before = Cpu::sample(a, None);
    let bar = progress(cap as u64, "ramp: connecting to A");
    let ramp_started = Instant::now();
    while clients.len() < cap {
        let from = clients.len();
        let step: Vec<ClientSpec> =
            (from..cap.min(from + RAMP_STEP)).map(|i| ClientSpec { tenant: i % spread, replica: 0 }).collect();
        clients.open(&step, &[a], tenants, &bar).await;
        let rss_kib = a.rss_kib()?;
        steps.push(RampStep { connections: clients.len(), rss_kib });
        if clients.failed > 0 {
            break;
        }
    }
    let ramp_s = ramp_started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let opened = clients.len();

    // Every socket still served: one change per tenant must reach every client.
    let writer = Writer::new(a, tenants, "ramp")?;
    let plan: Vec<(usize, bool)> = (0..spread).map(|t| (t, true)).collect();
    let bar = progress(spread as u64, "ramp: one change per tenant");
    let writes = writer.write(&plan, None, RAMP_WRITERS, &bar).await?;
    bar.finish_and_clear();
    let expected = expected_seqs(&writes);
    let expected_total = (0..opened).map(|i| expected.get(&(i % spread)).map_or(0, |s| s.len() as u64)).sum();
    clients.wait_for(expected_total, Duration::from_secs(20)).await;
    let cpu = Cpu::sample(a, None).since(cpu_before);
    let stopped_by = clients.first_error.clone();
    let failed = clients.failed;
    let logs = clients.close().await?;
    let verification = verify(&logs, &writes, &expected);
    let first = steps.first().map_or(0, |s| s.rss_kib);
    let last = steps.last().map_or(0, |s| s.rss_kib);
    Ok(RampReport {
        cap,
        opened,
        failed,
        stopped_by,
        held: verification.exact,
        tenants: spread,
        connect_per_s: opened as f64 / ramp_s.max(f64::EPSILON),
        per_connection_kib: (last as f64 - first as f64) / opened.max(1) as f64,
        steps,
        verification,
        cpu,
        load_average: load,
    })
}

// ---------------------------------------------------------------------------------------------
// The report

/// A distribution in milliseconds, from microsecond samples (negative: before the reference).
#[derive(Serialize, Default, Clone, Copy)]
struct Dist {
    samples: usize,
    min_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Dist {
    fn of(mut us: Vec<i64>) -> Self {
        if us.is_empty() {
            return Self::default();
        }
        us.sort_unstable();
        // Nearest rank.
        let at = |q: f64| us[((q * us.len() as f64).ceil() as usize).clamp(1, us.len()) - 1] as f64 / 1000.0;
        Self {
            samples: us.len(),
            min_ms: us[0] as f64 / 1000.0,
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: us[us.len() - 1] as f64 / 1000.0,
        }
    }
}

#[derive(Serialize)]
struct Report {
    environment: Environment,
    scales: Vec<ScaleReport>,
    burst: Option<BurstReport>,
    max_connections: Option<RampReport>,
    targets: Vec<TargetRow>,
    elapsed_s: f64,
}

#[derive(Serialize)]
struct Environment {
    cpus: usize,
    load_average_at_start: [f64; 3],
    load_average_at_end: [f64; 3],
    file_limit: FileLimit,
    router_binary: String,
    replicas: &'static str,
    postgres: String,
    tenants_provisioned: usize,
    provisioning_s: f64,
    router_logs: String,
    router_env: Vec<String>,
}

#[derive(Serialize)]
struct ScaleReport {
    scale: Scale,
    rate_target: u32,
    rate_achieved: f64,
    measured_s: f64,
    writes_ok: usize,
    /// The writer's POST round trip.
    write_p50_ms: f64,
    write_p99_ms: f64,
    /// Every event read by every client (warm-up included).
    deliveries: u64,
    measured_deliveries_per_s: f64,
    latency: Vec<Latency>,
    memory: [Memory; 2],
    verification: Verification,
    /// CPU used while writing and draining.
    cpu: Cpu,
    /// Scheduling stalls of the machine meanwhile (lateness of a 1 ms sleep).
    stalls: Dist,
    /// Postgres sessions started meanwhile (both replicas' pools, this process's few).
    postgres_sessions: i64,
    /// Before writing starts, with every socket open and idle.
    idle: Idle,
    load_average: [f64; 3],
}

/// What idle sockets cost: new Postgres sessions per second and the routers' CPU (cores).
#[derive(Serialize)]
struct Idle {
    postgres_sessions_per_s: f64,
    router_a_cpu: f64,
    router_b_cpu: f64,
}

#[derive(Serialize)]
struct Latency {
    replica: &'static str,
    clients: usize,
    measure: &'static str,
    #[serde(flatten)]
    stats: Dist,
}

/// Router RSS before and after opening a phase's idle sockets.
#[derive(Serialize)]
struct Memory {
    replica: &'static str,
    connections: usize,
    rss_before_kib: u64,
    rss_after_kib: u64,
    per_connection_kib: f64,
}

impl Memory {
    fn new(router: &Router, connections: usize, before: u64) -> anyhow::Result<Self> {
        let after = router.rss_kib()?;
        Ok(Self {
            replica: if router.name == "A" { replica_name(0) } else { replica_name(1) },
            connections,
            rss_before_kib: before,
            rss_after_kib: after,
            per_connection_kib: (after as f64 - before as f64) / connections.max(1) as f64,
        })
    }
}

#[derive(Serialize, Default)]
struct Verification {
    clients: usize,
    /// Clients that read exactly their tenant's committed seqs, in order, once.
    exact: usize,
    missing: u64,
    duplicated: u64,
    /// Seqs read that no successful write returned (a failed write that committed after all).
    unexpected: u64,
    out_of_order: usize,
    /// Sockets the router ended before the phase did.
    closed_early: usize,
    writes_failed: usize,
    first_failed_write: Option<String>,
    /// Tenants whose committed seqs in the phase were not contiguous (writes of one tenant
    /// are all the bench's, so a hole means a lost or foreign event).
    tenants_with_seq_gaps: usize,
    first_problem: Option<String>,
}

impl Verification {
    fn clean(&self) -> bool {
        self.exact == self.clients
            && self.closed_early == 0
            && self.writes_failed == 0
            && self.tenants_with_seq_gaps == 0
    }

    fn summary(&self) -> String {
        if self.clean() {
            return format!("{0}/{0} exact", self.clients);
        }
        format!(
            "{}/{} exact; {} missing, {} duplicated, {} unexpected, {} out of order, {} closed early, {} writes failed",
            self.exact,
            self.clients,
            self.missing,
            self.duplicated,
            self.unexpected,
            self.out_of_order,
            self.closed_early,
            self.writes_failed
        )
    }
}

#[derive(Serialize)]
struct BurstReport {
    clients: usize,
    events: u32,
    writes_ok: usize,
    /// From the burst's commit to the trigger's 201.
    trigger_ms: f64,
    deliveries: u64,
    /// From the burst's commit to the last event read by any client.
    wall_ms: f64,
    deliveries_per_s: f64,
    per_replica: Vec<BurstReplica>,
    memory: [Memory; 2],
    verification: Verification,
    cpu: Cpu,
    stalls: Dist,
    load_average: [f64; 3],
}

#[derive(Serialize)]
struct BurstReplica {
    replica: &'static str,
    clients: usize,
    deliveries: u64,
    /// From the burst's commit to the first event read by one of the replica's clients.
    first_read_ms: f64,
    wall_ms: f64,
    deliveries_per_s: f64,
    /// Per event: from its commit (the trigger's: its 201) to the last of the replica's
    /// clients reading it.
    event_reaches_all_clients: Dist,
}

#[derive(Serialize)]
struct RampReport {
    cap: usize,
    opened: usize,
    failed: usize,
    stopped_by: Option<String>,
    /// Sockets that then received their tenant's change, exactly once.
    held: usize,
    tenants: usize,
    connect_per_s: f64,
    per_connection_kib: f64,
    steps: Vec<RampStep>,
    verification: Verification,
    cpu: Cpu,
    load_average: [f64; 3],
}

#[derive(Serialize)]
struct RampStep {
    connections: usize,
    rss_kib: u64,
}

#[derive(Serialize)]
struct TargetRow {
    target: String,
    value: String,
    goal: String,
    met: bool,
}

/// Each target of the issue, judged at the scale with at least 10,000 clients (or the
/// largest one run, said in the row).
fn targets(scales: &[ScaleReport], burst: Option<&BurstReport>, rate: u32) -> Vec<TargetRow> {
    let mut rows = Vec::new();
    let at = scales
        .iter()
        .filter(|s| s.scale.clients >= TARGET_CONNECTIONS)
        .max_by_key(|s| s.scale.clients)
        .or_else(|| scales.iter().max_by_key(|s| s.scale.clients));
    if let Some(s) = at {
        let p99 = |replica: usize, measure: &str| {
            s.latency
                .iter()
                .find(|l| l.replica == replica_name(replica) && l.measure == measure && l.stats.samples > 0)
                .map_or(f64::NAN, |l| l.stats.p99_ms)
        };
        let context = format!("at {} clients/{} tenants, {rate} changes/s", s.scale.clients, s.scale.tenants);
        for (replica, goal, what) in
            [(0, TARGET_P99_LOCAL_MS, "writing replica"), (1, TARGET_P99_REMOTE_MS, "across replicas")]
        {
            for (measure, label) in
                [(MEASURE_FROM_201, "commit→client p99"), (MEASURE_FROM_SENT, "POST sent→client p99 (upper bound)")]
            {
                let value = p99(replica, measure);
                rows.push(TargetRow {
                    target: format!("{label}, {what}, {context}"),
                    value: format!("{value:.1} ms"),
                    goal: format!("≤ {goal} ms"),
                    met: value <= goal,
                });
            }
        }
        let worst = s.memory.iter().map(|m| m.per_connection_kib).fold(f64::NAN, f64::max);
        rows.push(TargetRow {
            target: format!(
                "router memory per idle connection (worse replica), {} clients/{} tenants",
                s.scale.clients, s.scale.tenants
            ),
            value: format!("{worst:.1} KiB"),
            goal: format!("≤ {TARGET_KIB_PER_CONNECTION} KiB"),
            met: worst <= TARGET_KIB_PER_CONNECTION,
        });
    }
    if let Some(b) = burst {
        rows.push(TargetRow {
            target: format!("fan-out burst: {} clients of one tenant, {} events", b.clients, b.events),
            value: format!("{:.0} deliveries/s", b.deliveries_per_s),
            goal: format!("≥ {TARGET_BURST_PER_S:.0}/s"),
            met: b.deliveries_per_s >= TARGET_BURST_PER_S,
        });
    }
    let verifications: Vec<&Verification> =
        scales.iter().map(|s| &s.verification).chain(burst.map(|b| &b.verification)).collect();
    let lost: u64 = verifications.iter().map(|v| v.missing).sum();
    let duplicated: u64 = verifications.iter().map(|v| v.duplicated).sum();
    let clean = verifications.iter().all(|v| v.clean());
    rows.push(TargetRow {
        target: "no lost or duplicated event (every client of every scale and the burst)".into(),
        value: format!(
            "{lost} lost, {duplicated} duplicated{}",
            if clean { String::new() } else { " — see the delivery table".into() }
        ),
        goal: "0, in order, once".into(),
        met: clean,
    });
    rows
}

/// An event shaped like an employee change, so messages have the size of real ones.
fn burst_payload(n: u32) -> Value {
    json!({
        "id": uuid::Uuid::new_v4(),
        "first_name": "Burst",
        "last_name": format!("Event {n}"),
        "email": format!("burst-{n}@bench.example.com"),
        "job_title": "Accountant",
        "department_id": null,
        "hire_date": "2024-01-15",
        "status": "active",
        "version": 2,
        "created_at": "2024-01-15T10:00:00Z",
        "updated_at": "2024-01-15T10:00:00Z",
    })
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len).with_prefix(what.to_owned());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>28} [{bar:30}] {pos}/{len} {per_sec:>10} eta {eta}")
            .expect("a valid progress template")
            .progress_chars("=> "),
    );
    bar
}

fn print_report(r: &Report) {
    let e = &r.environment;
    println!(
        "Realtime fan-out: {}; router binary {}; PostgreSQL: {}; control plane and clients in this process.",
        e.replicas, e.router_binary, e.postgres
    );
    println!(
        "Machine: {} CPUs, load average {} at the start and {} at the end (others build and bench here too); \
         file limit {} soft / {} hard. {} tenants provisioned through POST /tenants in {:.0} s.",
        e.cpus,
        load(&e.load_average_at_start),
        load(&e.load_average_at_end),
        e.file_limit.soft,
        e.file_limit.hard,
        e.tenants_provisioned,
        e.provisioning_s
    );
    if !e.router_env.is_empty() {
        println!("Replica environment (budget from --budget, then --router-env): {}", e.router_env.join(" "));
    }
    if !r.scales.is_empty() {
        println!(
            "\nCommit-to-client latency (this process's monotonic clock; negative = read before the writer saw its 201):"
        );
        println!("{}", latency_table(&r.scales));
        println!("{}", scale_table(&r.scales));
        println!(
            "RSS per idle conn: router RSS after opening the sockets minus before, per socket (per-tenant hubs and \
             pools included). CPU, new PG sessions: while writing and draining; machine busy = all CPUs, everyone's \
             processes. Stalls: how late a thread of this \
             process that sleeps 1 ms wakes — the machine's scheduling stalls, which routers, Postgres and clients \
             suffer alike. Idle: the sockets open, nothing written, for {} s (CPU in cores).",
            IDLE_WINDOW.as_secs()
        );
    }
    if let Some(b) = &r.burst {
        println!(
            "\nFan-out burst: {} clients of one tenant; {} events committed in one transaction straight into its \
             outbox, then one change through A's API whose wake-up makes both replicas read them all:",
            b.clients,
            b.events - 1
        );
        println!("{}", burst_table(b));
    }
    if let Some(m) = &r.max_connections {
        println!("\nMost connections one replica held (A alone, over {} tenants):", m.tenants);
        println!("{}", ramp_table(m));
    }
    println!("\nTargets:");
    println!("{}", target_table(&r.targets));
    let problems: Vec<String> = r
        .scales
        .iter()
        .map(|s| (s.scale.to_string(), &s.verification))
        .chain(r.burst.iter().map(|b| ("burst".to_owned(), &b.verification)))
        .chain(r.max_connections.iter().map(|m| ("ramp".to_owned(), &m.verification)))
        .filter_map(|(phase, v)| {
            let detail: Vec<&str> =
                [v.first_problem.as_deref(), v.first_failed_write.as_deref()].into_iter().flatten().collect();
            (!detail.is_empty()).then(|| format!("{phase}: {}", detail.join("; ")))
        })
        .collect();
    for problem in problems {
        println!("First problem seen in {problem}");
    }
    println!("Router logs: {}. The run took {:.0} s.", e.router_logs, r.elapsed_s);
}

fn load(l: &[f64; 3]) -> String {
    format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2])
}

fn new_table(header: &[&str], left: usize) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(header.to_vec());
    for i in left..header.len() {
        if let Some(column) = table.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

fn ms(v: f64) -> String {
    format!("{v:.2}")
}

fn latency_table(scales: &[ScaleReport]) -> Table {
    let mut table = new_table(
        &["N/M", "replica", "clients", "measured from", "deliveries", "min ms", "p50 ms", "p99 ms", "max ms"],
        4,
    );
    for s in scales {
        for l in &s.latency {
            table.add_row(vec![
                s.scale.to_string(),
                l.replica.to_owned(),
                l.clients.to_string(),
                l.measure.to_owned(),
                l.stats.samples.to_string(),
                ms(l.stats.min_ms),
                ms(l.stats.p50_ms),
                ms(l.stats.p99_ms),
                ms(l.stats.max_ms),
            ]);
        }
    }
    table
}

fn scale_table(scales: &[ScaleReport]) -> Table {
    let mut table = new_table(
        &[
            "N/M",
            "changes/s (asked/achieved)",
            "POST p50/p99 ms",
            "deliveries (all)",
            "measured deliveries/s",
            "exactly once",
            "RSS per idle conn A/B KiB",
            "CPU s A/B/bench; machine busy",
            "stalls p99/max ms",
            "new PG sessions",
            "idle: PG sessions/s, CPU A/B",
            "load avg",
        ],
        1,
    );
    for s in scales {
        table.add_row(vec![
            s.scale.to_string(),
            format!("{}/{:.1} over {:.1} s", s.rate_target, s.rate_achieved, s.measured_s),
            format!("{:.1}/{:.1}", s.write_p50_ms, s.write_p99_ms),
            s.deliveries.to_string(),
            format!("{:.0}", s.measured_deliveries_per_s),
            s.verification.summary(),
            format!(
                "{:.1}/{:.1} ({}→{} / {}→{} MiB)",
                s.memory[0].per_connection_kib,
                s.memory[1].per_connection_kib,
                s.memory[0].rss_before_kib / 1024,
                s.memory[0].rss_after_kib / 1024,
                s.memory[1].rss_before_kib / 1024,
                s.memory[1].rss_after_kib / 1024
            ),
            s.cpu.describe(true),
            format!("{:.1}/{:.1}", s.stalls.p99_ms, s.stalls.max_ms),
            s.postgres_sessions.to_string(),
            format!("{:.0}, {:.2}/{:.2}", s.idle.postgres_sessions_per_s, s.idle.router_a_cpu, s.idle.router_b_cpu),
            load(&s.load_average),
        ]);
    }
    table
}

fn burst_table(b: &BurstReport) -> Table {
    let mut table = new_table(
        &[
            "replica",
            "clients",
            "deliveries",
            "commit → first / last read ms",
            "deliveries/s",
            "event reaches all: p50/max ms",
            "RSS per idle conn KiB",
        ],
        1,
    );
    for (r, m) in b.per_replica.iter().zip(&b.memory) {
        table.add_row(vec![
            r.replica.to_owned(),
            r.clients.to_string(),
            r.deliveries.to_string(),
            format!("{:.0} / {:.0}", r.first_read_ms, r.wall_ms),
            format!("{:.0}", r.deliveries_per_s),
            format!("{:.1}/{:.1}", r.event_reaches_all_clients.p50_ms, r.event_reaches_all_clients.max_ms),
            format!("{:.1} ({}→{} MiB)", m.per_connection_kib, m.rss_before_kib / 1024, m.rss_after_kib / 1024),
        ]);
    }
    table.add_row(vec![
        "both".to_owned(),
        b.clients.to_string(),
        b.deliveries.to_string(),
        format!("{:.0}", b.wall_ms),
        format!("{:.0}", b.deliveries_per_s),
        format!("trigger's 201 {:.0} ms after the commit", b.trigger_ms),
        format!(
            "{}; CPU s A/B/bench, machine busy {}; stalls p99/max {:.1}/{:.1} ms; load {}",
            b.verification.summary(),
            b.cpu.describe(true),
            b.stalls.p99_ms,
            b.stalls.max_ms,
            load(&b.load_average)
        ),
    ]);
    table
}

fn ramp_table(m: &RampReport) -> Table {
    let mut table = new_table(&["", "value"], 1);
    let stopped = match &m.stopped_by {
        Some(error) => format!("{} connects failed, first: {error}", m.failed),
        None => format!("the cap ({}: file limit of this process minus {FD_RESERVE}, or --max-connections)", m.cap),
    };
    table.add_row(vec!["sockets opened on A".to_owned(), m.opened.to_string()]);
    table.add_row(vec!["…that then received their tenant's change exactly once".to_owned(), m.held.to_string()]);
    table.add_row(vec!["stopped by".to_owned(), stopped]);
    table.add_row(vec!["handshakes/s".to_owned(), format!("{:.0}", m.connect_per_s)]);
    let first = m.steps.first().map_or(0, |s| s.rss_kib);
    let last = m.steps.last().map_or(0, |s| s.rss_kib);
    table.add_row(vec![
        "router RSS".to_owned(),
        format!("{} → {} MiB: {:.1} KiB per connection", first / 1024, last / 1024, m.per_connection_kib),
    ]);
    table.add_row(vec![
        "CPU s A/bench; machine busy; load avg".to_owned(),
        format!("{}; {}", m.cpu.describe(false), load(&m.load_average)),
    ]);
    table
}

fn target_table(rows: &[TargetRow]) -> Table {
    let mut table = new_table(&["target", "value", "goal", "met"], 1);
    for row in rows {
        table.add_row(vec![
            row.target.clone(),
            row.value.clone(),
            row.goal.clone(),
            if row.met { "met" } else { "NOT met" }.to_owned(),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_without_a_json_parse_and_system_messages_are_not_events() {
        let event = r#"{"action":"created","channel":"employees","data":{"id":"x","version":3},"seq":42,"ts":"2024-01-15T10:00:00.123456Z"}"#;
        assert_eq!(event_of(event, false), Some((42, None)));
        assert_eq!(event_of(event, true), Some((42, Some(1_705_312_800_123_456))));
        let resync = r#"{"action":"resync","channel":"system","data":{"seq":7},"ts":"2024-01-15T10:00:00Z"}"#;
        assert_eq!(event_of(resync, true), None);
    }

    #[test]
    fn scales_parse_as_clients_over_tenants() {
        let s: Scale = "10000/1000".parse().unwrap();
        assert_eq!((s.clients, s.tenants), (10_000, 1000));
        assert!("10/0".parse::<Scale>().is_err());
        assert!("5/10".parse::<Scale>().is_err());
        assert!("many".parse::<Scale>().is_err());
    }

    #[test]
    fn percentiles_are_nearest_rank_and_keep_negative_values() {
        let d = Dist::of((1..=100).map(|v| v * 1000).chain([-500]).collect());
        assert_eq!((d.samples, d.min_ms, d.p50_ms, d.max_ms), (101, -0.5, 50.0, 100.0));
        assert_eq!(d.p99_ms, 99.0);
    }

    #[test]
    fn a_client_with_a_duplicate_and_a_hole_is_not_exact() {
        let at = Instant::now();
        let log = |seqs: &[i64]| ClientLog {
            events: seqs.iter().map(|&seq| Got { seq, at, ts_us: None }).collect(),
            ..ClientLog::default()
        };
        let spec = ClientSpec { tenant: 0, replica: 0 };
        let writes: Vec<Write> = (1..=3)
            .map(|seq| Write { tenant: 0, measured: true, outcome: Ok(Committed { seq, sent: at, returned: at }) })
            .collect();
        let expected = expected_seqs(&writes);
        let v = verify(&[(spec, log(&[1, 2, 3])), (spec, log(&[1, 1, 3]))], &writes, &expected);
        assert_eq!((v.clients, v.exact, v.missing, v.duplicated, v.out_of_order), (2, 1, 1, 1, 1));
        assert!(!v.clean());
    }
}

//! `realtime`: WebSocket fan-out across two router replicas on one catalog —
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

mod clients;
mod phases;
mod print;
mod replicas;
mod report;
mod writes;

use std::fmt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use serde::Serialize;

use crate::harness::machine::{cores, load_average};
use crate::harness::{output, postgres, until_interrupted};
use replicas::Stack;
use report::{Environment, Report};

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
    pub clients: usize,
    pub tenants: usize,
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
    pub soft: u64,
    pub hard: u64,
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
    let cluster = postgres::start_throwaway(vec![("max_connections".to_owned(), max_connections)]).await?;
    let outcome = until_interrupted(bench(&settings, &cluster.superuser_url(), router_bin)).await;
    let stopped = postgres::stop_throwaway(cluster).await;
    let mut report = outcome?;
    stopped?;
    report.environment.load_average_at_start = load_at_start;
    report.environment.load_average_at_end = load_average();
    report.elapsed_s = started.elapsed().as_secs_f64();
    output::emit(settings.json, &report, print::report)
}

/// The router binary: given, or the one built next to this executable.
fn router_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let bin = match given {
        Some(bin) => bin,
        None => std::env::current_exe().context("finding this executable")?.with_file_name("tenant-router"),
    };
    if !bin.is_file() {
        bail!(
            "{} not found: the replicas run the router binary built next to this one; build both with \
             `cargo build --release -p bench -p tenant-router`",
            bin.display()
        );
    }
    Ok(bin)
}

async fn bench(settings: &Settings, admin_url: &str, router_bin: PathBuf) -> anyhow::Result<Report> {
    // The budget first: an explicit --router-env for the same variable comes later and wins.
    let router_env = std::iter::once(("NEXACORE_POOL_BUDGET_PER_SERVER".to_owned(), settings.budget.to_string()))
        .chain(settings.router_env.iter().cloned())
        .collect();
    let stack = Stack::start(admin_url, router_bin, router_env).await?;
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
        scales.push(phases::scale(settings, stack, &tenants, *scale, i).await?);
    }
    let burst = match settings.burst_clients {
        0 => None,
        clients => Some(phases::burst(stack, &tenants, clients, settings.burst_events).await?),
    };
    let ramp = match settings.max_connections {
        0 => None,
        cap => Some(phases::ramp(stack, &tenants, cap).await?),
    };
    let environment = Environment {
        cpus: cores(),
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
    let targets = report::targets(&scales, burst.as_ref(), settings.rate);
    Ok(Report { environment, scales, burst, max_connections: ramp, targets, elapsed_s: 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_parse_as_clients_over_tenants() {
        let s: Scale = "10000/1000".parse().unwrap();
        assert_eq!((s.clients, s.tenants), (10_000, 1000));
        assert!("10/0".parse::<Scale>().is_err());
        assert!("5/10".parse::<Scale>().is_err());
        assert!("many".parse::<Scale>().is_err());
    }
}

//! The realtime benchmark's stack: the platform's control plane in this process (through
//! `stack`), router replicas as child processes of the router binary (each with a resident set
//! and CPU time of its own to measure), and readings of the machine while a phase runs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use secrecy::ExposeSecret;
use serde::Serialize;
use sqlx::{Connection, PgConnection};
use stack::Platform;
use tenancy::DbName;

use super::PROVISION_CONCURRENCY;
use super::report::Dist;
use super::writes::micros;
use crate::harness::machine::{CLOCK_TICKS_PER_S, machine_ticks, process_cpu_s, rss_kib};
use crate::harness::platform;
use crate::harness::postgres::database_url;

/// The control plane, serving in this process, and how replicas are started.
pub struct Stack {
    pub platform: Platform,
    pub router_bin: PathBuf,
    /// Extra environment of the replicas (`--router-env`).
    pub router_env: Vec<(String, String)>,
    pub log_dir: PathBuf,
}

/// A signed-up company, as the clients and writers use it.
#[derive(Clone)]
pub struct Tenant {
    pub id: String,
    pub token: Arc<str>,
}

impl Stack {
    pub async fn start(
        admin_url: &str,
        router_bin: PathBuf,
        router_env: Vec<(String, String)>,
    ) -> anyhow::Result<Self> {
        let catalog = DbName::parse("rt_bench_catalog").map_err(|e| anyhow!(e))?;
        let template = DbName::parse("rt_bench_template").map_err(|e| anyhow!(e))?;
        let platform = platform::start(
            platform::builder(admin_url, move |config| {
                config.template_database = template;
                // Tokens outlive the run: the router closes sockets whose token expires.
                config.token_ttl = Duration::from_secs(24 * 3600);
            })
            .catalog_database(catalog),
        )
        .await?;
        let log_dir = std::env::temp_dir().join(format!("nexacore-bench-realtime-{:08x}", rand::random::<u32>()));
        std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
        Ok(Self { platform, router_bin, router_env, log_dir })
    }

    pub async fn stop(self) {
        if let Err(error) = self.platform.stop().await {
            tracing::warn!(%error, "the control plane stopped with an error");
        }
    }

    /// Signs `count` companies up through `POST /tenants` with the operator token.
    pub async fn provision(&self, count: usize) -> anyhow::Result<Vec<Tenant>> {
        // The primary server registers with room for 1,000 tenants.
        platform::make_room(&self.platform.catalog_url, count + 100).await?;
        let run = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        let slugs = (0..count).map(|i| format!("rt-{run}-{i}")).collect();
        let companies =
            platform::sign_up_many(&self.platform, slugs, PROVISION_CONCURRENCY, "provisioning tenants").await?;
        Ok(companies.into_iter().map(|c| Tenant { id: c.id.to_string(), token: c.token.into() }).collect())
    }

    /// A fresh router replica on a free port, with the per-tenant socket limit lifted (the
    /// burst puts thousands of sockets on one tenant). Its log goes to the run's log directory.
    pub async fn start_router(&self, name: &'static str, phase: &str) -> anyhow::Result<Router> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log_path = self.log_dir.join(format!("{phase}-router-{name}.log"));
        let log = std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        // The soft file limit is raised to the hard one for the child alone.
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(r#"ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0""#)
            .arg(&self.router_bin)
            .env("NEXACORE_CATALOG_URL", &self.platform.router_catalog_url)
            .env("NEXACORE_TENANT_ROLE_KEY", self.platform.role_key.to_hex().expose_secret())
            .env("NEXACORE_JWKS_URL", &self.platform.jwks_url)
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
            let health = self.platform.http.get(format!("{}/health", router.base)).send().await;
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
    pub async fn tenant_database(&self, tenant: &Tenant) -> anyhow::Result<PgConnection> {
        let mut catalog =
            PgConnection::connect(&self.platform.catalog_url).await.context("connecting to the catalog")?;
        let db: String = sqlx::query_scalar("SELECT database_name FROM tenants WHERE id = $1::uuid")
            .bind(&tenant.id)
            .fetch_one(&mut catalog)
            .await
            .context("looking up the tenant's database")?;
        catalog.close().await.ok();
        let db = DbName::parse(&db).map_err(|e| anyhow!(e))?;
        PgConnection::connect(&database_url(&self.platform.admin_url, db.as_str())?)
            .await
            .context("connecting to a tenant database")
    }

    /// Sessions the server has started so far (all databases): new connections are what a
    /// router pool that cannot keep one per tenant pays for.
    pub async fn postgres_sessions(&self) -> anyhow::Result<i64> {
        let mut conn = PgConnection::connect(&database_url(&self.platform.admin_url, "postgres")?).await?;
        let sessions = sqlx::query_scalar("SELECT coalesce(sum(sessions), 0)::bigint FROM pg_stat_database")
            .fetch_one(&mut conn)
            .await
            .context("reading pg_stat_database")?;
        conn.close().await.ok();
        Ok(sessions)
    }
}

/// A router replica: a child process (after `exec`, the pid is the router's own).
pub struct Router {
    pub name: &'static str,
    child: tokio::process::Child,
    pid: u32,
    pub addr: SocketAddr,
    pub base: String,
}

impl Router {
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib(self.pid).with_context(|| format!("router {} is gone", self.name))
    }

    fn cpu_s(&self) -> f64 {
        process_cpu_s(self.pid).unwrap_or(0.0)
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// CPU seconds of the whole machine (every process, everyone's): busy, and available.
fn machine_cpu_s() -> (f64, f64) {
    let ticks = machine_ticks().unwrap_or_default();
    (ticks.busy as f64 / CLOCK_TICKS_PER_S, ticks.total as f64 / CLOCK_TICKS_PER_S)
}

/// CPU seconds spent by each party between two samples.
#[derive(Clone, Copy, Default, Serialize)]
pub struct Cpu {
    pub router_a_s: f64,
    pub router_b_s: f64,
    pub bench_s: f64,
    /// Every process's (ours, Postgres's, other people's builds), out of `machine_s`.
    pub machine_busy_s: f64,
    pub machine_s: f64,
}

impl Cpu {
    pub fn sample(a: &Router, b: Option<&Router>) -> Self {
        let (machine_busy_s, machine_s) = machine_cpu_s();
        Self {
            router_a_s: a.cpu_s(),
            router_b_s: b.map_or(0.0, Router::cpu_s),
            bench_s: process_cpu_s(std::process::id()).unwrap_or(0.0),
            machine_busy_s,
            machine_s,
        }
    }

    pub fn since(self, earlier: Self) -> Self {
        Self {
            router_a_s: self.router_a_s - earlier.router_a_s,
            router_b_s: self.router_b_s - earlier.router_b_s,
            bench_s: self.bench_s - earlier.bench_s,
            machine_busy_s: self.machine_busy_s - earlier.machine_busy_s,
            machine_s: self.machine_s - earlier.machine_s,
        }
    }

    /// `A/B/bench CPU s; machine busy %`.
    pub fn describe(&self, with_b: bool) -> String {
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
pub struct StallMeter {
    pub stop: Arc<std::sync::atomic::AtomicBool>,
    pub thread: std::thread::JoinHandle<Vec<i64>>,
}

impl StallMeter {
    pub fn start() -> Self {
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

    pub fn finish(self) -> Dist {
        self.stop.store(true, Ordering::Relaxed);
        Dist::of(self.thread.join().unwrap_or_default())
    }
}

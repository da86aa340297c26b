//! `ops bench router`: what the tenant router costs on top of a plain service, and how it
//! behaves with many tenants, measured in one process run on a private throwaway cluster:
//!
//! 1. **single tenant**: the same closed-loop `GET /employees?limit=50` workload against the
//!    router and against a baseline (a minimal poem + sqlx service over the same tenant
//!    database, as the same role, with a pool the size of the router's per-tenant share),
//!    alternated so drift cancels out; then what each of the router's steps costs alone;
//! 2. **many tenants**: real tenants (of many more registered) under a Zipf(1.0) access
//!    pattern and a connection budget, counted from `pg_stat_activity` while it runs;
//! 3. **thundering herd**: many concurrent first requests for one cold tenant;
//! 4. **memory** per cached tenant, from the resident set of a fresh `ops` process that holds
//!    only a router (`--memory-probe`, started by the benchmark itself).
//!
//! The load generator runs in this process but on a tokio runtime of its own
//! ([`load_runtime`]), so the services under test never queue behind their clients' tasks.
//!
//! Where the machine's CPU went during the measured runs (this process, Postgres, anything
//! else) is reported next to the figures: on a shared machine, other work skews them.
//!
//! Figures are reported next to their targets, never asserted: a missed target is a finding.
//! The command fails only when something breaks (provisioning, an unreachable server).

mod floor;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use comfy_table::{CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use control_plane::secrets::MasterKey;
use futures::StreamExt;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use local_postgres::LocalCluster;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Json, Query};
use poem::{EndpointExt, Route, get, handler, http::StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use tenancy::{RoleName, TenantRoleKey};
use tenant_router::config::PoolConfig;
use tenant_router::routes::Lookup;
use tenant_router::state::AppState;
use tenant_schema::data::employees::{self, ListQuery, Page};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Barrier, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Router throughput over baseline throughput, single tenant: at least this.
const TARGET_THROUGHPUT_RATIO: f64 = 0.90;
/// Router latency minus baseline latency, single tenant: at most this, in ms.
const TARGET_ADDED_P50_MS: f64 = 0.1;
const TARGET_ADDED_P99_MS: f64 = 0.5;
/// A cold tenant's first request under the many-tenant load, p99: at most this, in ms.
const TARGET_COLD_P99_MS: f64 = 30.0;
/// The benchmark's Postgres server settings, on top of the throwaway cluster's.
///
/// `shared_buffers`: each new backend reads 130–200 pages of its own database's catalogs, so a
/// server for a thousand tenant databases needs about 1.5 GB to keep them all in memory. With
/// the default 128 MB only a hundred or so fit, and every cold tenant's connect read its
/// catalogs back from the OS (perf: `mdread` took 6 % of Postgres's CPU in a Zipf run). No
/// server sized for a thousand databases runs on the default; Postgres's documentation
/// suggests a quarter of the RAM for a dedicated one.
const SERVER_SETTINGS: &[(&str, &str)] = &[("shared_buffers", "2GB")];

/// Catalog lookups caused by the herd of first requests for one cold tenant: exactly this.
const TARGET_HERD_LOOKUPS: u64 = 1;

const ZIPF_EXPONENT: f64 = 1.0;
/// The page size of the workload: `GET /employees?limit=50`.
const PAGE_SIZE: u32 = 50;
/// First requests sent this soon after the many-tenant load starts meet a router where every
/// tenant is cold at once (a restart); they are also reported apart from the later ones.
const START_WINDOW: Duration = Duration::from_secs(2);
/// How often the connection sampler looks at `pg_stat_activity` and the router's count.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);
/// The admin password of every benchmark tenant; it passes the signup strength rules.
const TENANT_PASSWORD: &str = "Str0ng&Secret!";
/// Tenants provisioned besides the active ones: the single-tenant phase's and the herd's.
const OTHER_REAL_TENANTS: usize = 2;

#[derive(Args)]
pub struct RouterBenchArgs {
    /// A smoke run: 100 active of 1,000 registered tenants, 3-second load phases.
    #[arg(long)]
    quick: bool,
    /// Print a machine-readable JSON report on stdout instead of tables.
    #[arg(long)]
    json: bool,
    /// Internal: run as the memory probe, a fresh process the benchmark starts for phase 4
    /// (reads its input as JSON on stdin, prints its figures as JSON on stdout).
    #[arg(long, hide = true)]
    memory_probe: bool,
    /// For profiling with an outside load generator (`wrk`, `perf`): set up phase 1 (a tenant
    /// with its employees, the router and the baseline), print both URLs and the token, and
    /// serve until Ctrl-C instead of measuring.
    #[arg(long)]
    serve: bool,
}

/// The flags, resolved into the numbers each phase runs with.
struct Settings {
    quick: bool,
    json: bool,
    serve: bool,
    load_average_at_start: f64,
    /// Single tenant: closed-loop clients, warm-up and measured time per run, rounds of
    /// (router, baseline) pairs, employees in the tenant, and the pool size of both sides.
    clients: usize,
    warm_up: Duration,
    run: Duration,
    rounds: usize,
    /// The same with one client: its warm-up and measured time per run.
    light_warm_up: Duration,
    light_run: Duration,
    employees: usize,
    share: usize,
    /// Calls per step when timing the router's steps one by one.
    step_samples: usize,
    /// Many tenants: real (provisioned, Zipf-active) tenants, tenants in the catalog in all,
    /// concurrent provisioning clients, load clients and duration, the connection budget and
    /// per-tenant share.
    active: usize,
    registered: usize,
    provision_clients: usize,
    zipf_clients: usize,
    zipf_run: Duration,
    budget: usize,
    zipf_share: usize,
    /// Concurrent first requests for one cold tenant.
    herd: usize,
    /// Clients that touch every active tenant once in the memory phase.
    touch_clients: usize,
}

impl Settings {
    fn resolve(args: &RouterBenchArgs) -> Self {
        let quick = args.quick;
        let secs = |full: u64, smoke: u64| Duration::from_secs(if quick { smoke } else { full });
        Self {
            quick,
            json: args.json,
            serve: args.serve,
            load_average_at_start: load_average(),
            clients: 16,
            warm_up: secs(2, 1),
            run: secs(5, 3),
            // The machine may be shared: alternating often cancels load that comes and goes.
            rounds: if quick { 2 } else { 4 },
            light_warm_up: Duration::from_secs(1),
            light_run: secs(3, 2),
            employees: 200,
            share: PoolConfig::default().max_per_tenant,
            step_samples: if quick { 1_000 } else { 10_000 },
            active: if quick { 100 } else { 1_000 },
            registered: if quick { 1_000 } else { 10_000 },
            provision_clients: 4,
            zipf_clients: 32,
            zipf_run: secs(20, 3),
            budget: 100,
            zipf_share: 4,
            herd: 1_000,
            touch_clients: 8,
        }
    }
}

impl Settings {
    /// The pool of the many-tenant phases' routers: the connection budget and per-tenant share.
    fn many_tenant_pool(&self, config: &mut tenant_router::Config) {
        config.pool.budget_per_server = self.budget;
        config.pool.max_per_tenant = self.zipf_share;
    }
}

pub async fn run(args: RouterBenchArgs) -> anyhow::Result<()> {
    if args.memory_probe {
        return memory_probe().await;
    }
    let settings = Settings::resolve(&args);
    let started = Instant::now();
    let cluster = tokio::task::spawn_blocking(|| LocalCluster::start_throwaway_with(SERVER_SETTINGS))
        .await
        .context("starting Postgres panicked")?
        .context("starting a throwaway Postgres cluster")?;
    // Ctrl-C ends the measurement; the cluster is stopped either way (and by its watchdog if
    // this process dies).
    let outcome = tokio::select! {
        outcome = bench(&settings, &cluster) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    let stopped = tokio::task::spawn_blocking(move || cluster.stop()).await.context("stopping Postgres panicked")?;
    let mut report = outcome?;
    stopped.context("stopping the throwaway Postgres cluster")?;
    report.elapsed_s = started.elapsed().as_secs_f64();
    if settings.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

async fn bench(settings: &Settings, cluster: &LocalCluster) -> anyhow::Result<Report> {
    let admin_url = cluster.superuser_url();
    let mut admin = PgConnection::connect(&admin_url).await.context("connecting as the superuser")?;
    let version: String = sqlx::query_scalar("SHOW server_version").fetch_one(&mut admin).await?;
    let shared_buffers: String = sqlx::query_scalar("SHOW shared_buffers").fetch_one(&mut admin).await?;
    let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut admin).await?;
    let postmaster = u32::try_from(backend).ok().and_then(proc_stat).map(|s| s.ppid);
    let huge_pages = match postmaster.and_then(huge_pages_in_use) {
        Some(true) => "in use",
        Some(false) => "not in use",
        None => "unknown",
    };
    let postgres = format!("{version} (shared_buffers {shared_buffers}, huge pages {huge_pages})");
    require_scram_for_tenant_roles(&mut admin).await?;
    admin.close().await.ok();

    let platform = Platform::start(cluster, settings, postmaster).await?;
    if settings.serve {
        serve(settings, &platform).await?;
    }
    let measured = measure(settings, &platform).await;
    platform.stop().await?;
    let (tenant_auth, single, many, herd, memory) = measured?;
    Ok(Report::new(settings, postgres, tenant_auth, single, many, herd, memory))
}

type Measured = (String, SingleTenant, ManyTenants, Herd, Memory);

async fn measure(settings: &Settings, platform: &Platform) -> anyhow::Result<Measured> {
    let single_tenant = platform.provision("single").await.context("provisioning the single tenant")?;
    let tenant_auth = check_tenant_auth(platform, &single_tenant).await?;
    status(settings, "single tenant: router against baseline");
    let single = single_tenant_phase(settings, platform, &single_tenant).await?;

    status(settings, "provisioning the many-tenant fleet through the control plane API");
    let provisioning = Instant::now();
    let herd_tenant = platform.provision("herd").await.context("provisioning the herd tenant")?;
    let active = platform.provision_many(settings.active, settings.provision_clients).await?;
    let provisioning_s = provisioning.elapsed().as_secs_f64();
    let catalog_only = settings.registered.saturating_sub(active.len() + OTHER_REAL_TENANTS);
    platform.register_catalog_only(catalog_only).await?;
    let fleet = Fleet { active, catalog_only, provisioning_s };

    // Before the load phases, so that its router is the only one connected meanwhile.
    status(settings, "memory per cached tenant");
    let memory = memory_phase(settings, platform, &fleet.active, &single_tenant).await?;
    status(settings, "many tenants: Zipf(1.0) under the connection budget");
    let many = many_tenants_phase(settings, platform, &fleet, &single_tenant).await?;
    status(settings, "thundering herd on one cold tenant");
    let herd = herd_phase(settings, platform, &herd_tenant, &single_tenant).await?;
    Ok((tenant_auth, single, many, herd, memory))
}

fn status(settings: &Settings, message: &str) {
    if !settings.json {
        eprintln!("{message} …");
    }
}

// ---------------------------------------------------------------------------------------------
// The platform: Postgres authentication, the control plane, tenants

/// Tenant roles log in with SCRAM-SHA-256 as in production; the throwaway cluster trusts
/// everyone, which would make a cold tenant's connect cheaper than it is. The superuser keeps
/// trust. The file is written by the server itself (`COPY … TO` its own `hba_file`).
async fn require_scram_for_tenant_roles(admin: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::raw_sql(
        "CREATE TEMP TABLE bench_hba (line text);
         INSERT INTO bench_hba VALUES
             ('local all all trust'),
             ('host all postgres 127.0.0.1/32 trust'),
             ('host all postgres ::1/128 trust'),
             ('host all all 127.0.0.1/32 scram-sha-256'),
             ('host all all ::1/128 scram-sha-256');
         DO $$ BEGIN EXECUTE format('COPY bench_hba TO %L', current_setting('hba_file')); END $$;
         DROP TABLE bench_hba;",
    )
    .execute(&mut *admin)
    .await
    .context("writing pg_hba.conf")?;
    let bad: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL")
        .fetch_one(&mut *admin)
        .await?;
    if bad > 0 {
        bail!("the benchmark's pg_hba.conf has {bad} invalid lines");
    }
    let _: bool = sqlx::query_scalar("SELECT pg_reload_conf()").fetch_one(&mut *admin).await?;
    // The postmaster reloads asynchronously; `check_tenant_auth` confirms it took effect.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

/// How tenant roles authenticate, as observed: a wrong password must be refused.
async fn check_tenant_auth(platform: &Platform, tenant: &Tenant) -> anyhow::Result<String> {
    let options = platform.tenant_options(tenant.id).await?;
    let conn = PgConnection::connect_with(&options).await.context("connecting as the tenant role")?;
    conn.close().await.ok();
    Ok(match PgConnection::connect_with(&options.password("not-the-password")).await {
        Err(_) => "scram-sha-256 (as in production; a wrong password is refused)".to_owned(),
        Ok(conn) => {
            conn.close().await.ok();
            "trust (pg_hba.conf could not be changed: connects skip SCRAM, cheaper than production)".to_owned()
        }
    })
}

/// A tenant and its admin's token.
struct Tenant {
    id: Uuid,
    token: String,
}

/// The control plane, serving in this process on a free port, and what routers need from it.
struct Platform {
    url: String,
    admin_url: String,
    catalog_url: String,
    /// What routers log in with: the control plane's least-privileged catalog role.
    router_catalog_url: String,
    operator_token: String,
    role_key: TenantRoleKey,
    run_id: String,
    /// The cluster's postmaster, to tell Postgres's CPU time from other processes'.
    postmaster: Option<u32>,
    http: reqwest::Client,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Platform {
    async fn start(cluster: &LocalCluster, settings: &Settings, postmaster: Option<u32>) -> anyhow::Result<Self> {
        let admin_url = cluster.superuser_url();
        let master = MasterKey::generate_base64();
        let token: [u8; 24] = rand::random();
        let operator_token = hex::encode(token);
        let mut config = control_plane::Config::new(
            SecretString::from(admin_url.clone()),
            SecretString::from(master.clone()),
            SecretString::from(operator_token.clone()),
        );
        config.listen = ([127, 0, 0, 1], 0).into();
        // Operator-token calls bypass it anyway; high so that nothing is ever throttled.
        config.signup_limit_per_hour = 1_000_000;
        // Signup tokens are the load's tokens: they must outlive the run.
        config.token_ttl = Duration::from_secs(12 * 3600);
        let catalog_url =
            format!("postgres://postgres@127.0.0.1:{}/{}", cluster.port(), config.catalog_database.as_str());
        let router_catalog_url =
            control_plane::catalog::access::router_catalog_url(&catalog_url, &config.catalog_database)?;
        let app = control_plane::App::build(config).await.context("starting the control plane")?;
        let url = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = oneshot::channel::<()>();
        // Also stops if `stop` is dropped (an interrupted run).
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        let role_key = MasterKey::from_base64(&SecretString::from(master))
            .map_err(|e| anyhow!("the generated master key: {e}"))?
            .tenant_role_key();

        // The server registers with room for 1,000 tenants; this run places more.
        let mut catalog = PgConnection::connect(&catalog_url).await.context("connecting to the catalog")?;
        sqlx::query("UPDATE database_servers SET capacity = greatest(capacity, $1)")
            .bind(i32::try_from(settings.registered + settings.active + 100).unwrap_or(i32::MAX))
            .execute(&mut catalog)
            .await?;
        catalog.close().await.ok();

        Ok(Self {
            url,
            admin_url,
            catalog_url,
            router_catalog_url,
            operator_token,
            role_key,
            run_id: format!("{:08x}", rand::random::<u32>()),
            postmaster,
            http: reqwest::Client::builder().timeout(Duration::from_secs(120)).build()?,
            stop,
            task,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("the control plane panicked")?.context("the control plane failed")
    }

    fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.url)
    }

    /// Signs a company up through `POST /tenants` with the operator token (a real database and
    /// role, seeded), and returns it with its admin's token.
    async fn provision(&self, tag: &str) -> anyhow::Result<Tenant> {
        let slug = format!("rb-{}-{tag}", self.run_id);
        let body = json!({
            "company_name": format!("Company {slug}"),
            "slug": slug,
            "admin": {"email": format!("admin@{slug}.example.com"), "password": TENANT_PASSWORD, "full_name": "Ada Admin"},
            "timezone": "Europe/Berlin",
            "currency": "EUR",
            "chart_template": "standard",
        });
        let response = self
            .http
            .post(format!("{}/tenants", self.url))
            .bearer_auth(&self.operator_token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        if status != reqwest::StatusCode::CREATED {
            bail!("provisioning tenant {slug} failed: HTTP {status}: {text}");
        }
        let created: Value = serde_json::from_str(&text)?;
        let id = created["tenant"]["id"].as_str().and_then(|id| id.parse().ok());
        let token = created["access_token"].as_str();
        match (id, token) {
            (Some(id), Some(token)) => Ok(Tenant { id, token: token.to_owned() }),
            _ => bail!("provisioning tenant {slug}: unexpected answer {text}"),
        }
    }

    /// `count` tenants through the API, `clients` at a time.
    async fn provision_many(&self, count: usize, clients: usize) -> anyhow::Result<Vec<Tenant>> {
        let bar = progress(count, "provisioning (API)");
        let next = AtomicUsize::new(0);
        let workers = (0..clients).map(|_| async {
            let mut made = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return anyhow::Ok(made);
                }
                made.push((n, self.provision(&format!("a{n}")).await?));
                bar.inc(1);
            }
        });
        let made = futures::future::try_join_all(workers).await;
        bar.finish_and_clear();
        let mut made: Vec<(usize, Tenant)> = made?.into_iter().flatten().collect();
        made.sort_by_key(|(n, _)| *n);
        Ok(made.into_iter().map(|(_, tenant)| tenant).collect())
    }

    /// Registers `count` active tenants as catalog rows only: their databases are never
    /// created, and no request ever names them. They make the catalog the size it would be.
    async fn register_catalog_only(&self, count: usize) -> anyhow::Result<()> {
        let mut catalog = PgConnection::connect(&self.catalog_url).await.context("connecting to the catalog")?;
        sqlx::query(
            "INSERT INTO tenants (id, slug, name, status, server_id, database_name, role_name, schema_version,
                                  timezone, currency, chart_template, activated_at)
             SELECT u, 'idle-' || $2 || '-' || g, 'Idle company ' || g, 'active', s.id,
                    't_' || replace(u::text, '-', ''), 't_' || replace(u::text, '-', ''), $3,
                    'UTC', 'EUR', 'standard', now()
             FROM (SELECT gen_random_uuid() AS u, g FROM generate_series(1, $1) AS g) AS fresh,
                  (SELECT id FROM database_servers ORDER BY created_at LIMIT 1) AS s",
        )
        .bind(i32::try_from(count)?)
        .bind(&self.run_id)
        .bind(tenant_schema::latest_version())
        .execute(&mut catalog)
        .await
        .context("registering catalog-only tenants")?;
        catalog.close().await.ok();
        Ok(())
    }

    /// Every tenant id in the catalog.
    async fn all_tenant_ids(&self) -> anyhow::Result<Vec<Uuid>> {
        let mut catalog = PgConnection::connect(&self.catalog_url).await.context("connecting to the catalog")?;
        let ids = sqlx::query_scalar("SELECT id FROM tenants").fetch_all(&mut catalog).await?;
        catalog.close().await.ok();
        Ok(ids)
    }

    /// How the router reaches a tenant's database: as its role, with the derived password.
    async fn tenant_options(&self, tenant: Uuid) -> anyhow::Result<PgConnectOptions> {
        let mut options = self.tenants_options(&[tenant]).await?;
        options.pop().ok_or_else(|| anyhow!("tenant {tenant} is not in the catalog"))
    }

    /// [`Self::tenant_options`] for many tenants, in their order, with one catalog query.
    async fn tenants_options(&self, tenants: &[Uuid]) -> anyhow::Result<Vec<PgConnectOptions>> {
        let mut catalog = PgConnection::connect(&self.catalog_url).await.context("connecting to the catalog")?;
        let rows: Vec<(Uuid, String, i32, String, String)> = sqlx::query_as(
            "SELECT t.id, s.host, s.port, t.database_name, t.role_name
             FROM tenants t JOIN database_servers s ON s.id = t.server_id WHERE t.id = ANY($1)",
        )
        .bind(tenants)
        .fetch_all(&mut catalog)
        .await?;
        catalog.close().await.ok();
        let mut by_id = std::collections::HashMap::with_capacity(rows.len());
        for (id, host, port, database, role) in rows {
            let role = RoleName::parse(&role).map_err(|e| anyhow!(e))?;
            let password = self.role_key.password_for(&role);
            let options = PgConnectOptions::new()
                .host(&host)
                .port(u16::try_from(port)?)
                .username(role.as_str())
                .password(password.expose_secret())
                .database(&database);
            by_id.insert(id, options);
        }
        tenants.iter().map(|id| by_id.remove(id).ok_or_else(|| anyhow!("tenant {id} is not in the catalog"))).collect()
    }
}

/// The tenants of the many-tenant phases.
struct Fleet {
    active: Vec<Tenant>,
    catalog_only: usize,
    provisioning_s: f64,
}

// ---------------------------------------------------------------------------------------------
// The services under test

/// A tenant router, built through `App::build` like `main` does, serving on a free port.
struct RunningRouter {
    url: String,
    state: Arc<AppState>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningRouter {
    async fn start(
        platform: &Platform,
        application_name: String,
        tweak: impl FnOnce(&mut tenant_router::Config),
    ) -> anyhow::Result<Self> {
        let config = tenant_router::Config::new(
            SecretString::from(platform.router_catalog_url.clone()),
            platform.role_key.to_hex(),
            platform.jwks_url(),
        );
        Self::start_with(config, application_name, tweak).await
    }

    async fn start_with(
        mut config: tenant_router::Config,
        application_name: String,
        tweak: impl FnOnce(&mut tenant_router::Config),
    ) -> anyhow::Result<Self> {
        config.listen = ([127, 0, 0, 1], 0).into();
        config.pool.application_name = application_name;
        tweak(&mut config);
        let app = tenant_router::App::build(config).await.context("starting the router")?;
        let url = format!("http://127.0.0.1:{}", app.port());
        let state = app.state();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        Ok(Self { url, state, stop, task })
    }

    fn employees_url(&self) -> String {
        format!("{}/employees?limit={PAGE_SIZE}", self.url)
    }

    /// Stops serving; dropping the last handle on the state closes the pools' connections.
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("the router panicked")?.context("the router failed")
    }
}

/// The baseline: the least a service can do for the same request. One route, a `PgPool`
/// connected as the tenant's role to its database, the same data-layer call, JSON out. No
/// token, no gates, no per-tenant anything.
struct Baseline {
    url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

#[derive(Deserialize)]
struct ListParams {
    limit: Option<u32>,
}

#[handler]
async fn baseline_list(pool: Data<&PgPool>, Query(params): Query<ListParams>) -> poem::Result<Json<Page>> {
    let query = ListQuery { limit: params.limit.unwrap_or(PAGE_SIZE), ..ListQuery::default() };
    let mut conn =
        pool.acquire().await.map_err(|e| poem::Error::from_string(e.to_string(), StatusCode::SERVICE_UNAVAILABLE))?;
    let page = employees::list(&mut conn, &query)
        .await
        .map_err(|e| poem::Error::from_string(e.to_string(), StatusCode::INTERNAL_SERVER_ERROR))?;
    Ok(Json(page))
}

impl Baseline {
    async fn start(platform: &Platform, tenant: &Tenant, pool_size: usize) -> anyhow::Result<Self> {
        let options = platform.tenant_options(tenant.id).await?.application_name("bench-baseline");
        let size = u32::try_from(pool_size)?;
        // As strong as the baseline can be: connections opened up front, and no ping before
        // each checkout (sqlx's default; the router pings only connections idle for 30 s).
        let pool = PgPoolOptions::new()
            .max_connections(size)
            .min_connections(size)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .context("connecting the baseline's pool")?;
        let app = Route::new().at("/employees", get(baseline_list)).data(pool);
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().map(|s| s.port()))
            .context("the baseline's port")?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(poem::Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
            app,
            async move {
                let _ = stopped.await;
            },
            Some(Duration::from_secs(5)),
        ));
        Ok(Self { url: format!("http://127.0.0.1:{port}"), stop, task })
    }

    fn employees_url(&self) -> String {
        format!("{}/employees?limit={PAGE_SIZE}", self.url)
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("the baseline panicked")?.context("the baseline failed")
    }
}

// ---------------------------------------------------------------------------------------------
// Load generation

/// One HTTP client per simulated user: one keep-alive connection each.
fn http_client() -> reqwest::Client {
    loopback_client(reqwest::Client::builder().pool_max_idle_per_host(1))
}

/// Plain HTTP to the loopback only: no proxy, and no TLS roots (loading them costs about half a
/// MiB per client).
fn loopback_client(builder: reqwest::ClientBuilder) -> reqwest::Client {
    builder
        .tcp_nodelay(true)
        .no_proxy()
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("an HTTP client")
}

/// The load generator's own runtime (two worker threads), apart from the one that runs the
/// router, the baseline and the control plane.
///
/// Sharing one scheduler would make the server's tasks queue behind the clients' on the same
/// worker threads, a cost no deployed router pays (its clients are other processes, other
/// machines); it also favoured the side with fewer await points per request. Separate
/// runtimes leave the sharing of the two cores to the kernel, as with separate processes.
/// Every client connection is opened from a task of this runtime, so its I/O is driven here.
fn load_runtime() -> &'static tokio::runtime::Runtime {
    static LOAD: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    LOAD.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bench-load")
            .enable_all()
            .build()
            .expect("the load generator's runtime")
    })
}

/// A client for an open loop: its pool keeps as many connections as were ever in flight, so
/// after the warm-up no request waits for a TCP connect.
fn open_loop_client() -> reqwest::Client {
    loopback_client(reqwest::Client::builder())
}

/// Opens each client's connection (`GET /health`) from the load runtime, so no measured
/// request pays a TCP connect and every connection's I/O runs there.
async fn connect_clients(clients: &[reqwest::Client], base_url: &str) {
    let url = format!("{base_url}/health");
    let opened: Vec<_> = clients
        .iter()
        .map(|client| {
            let (client, url) = (client.clone(), url.clone());
            load_runtime().spawn(async move {
                if let Ok(response) = client.get(&url).send().await {
                    let _ = response.bytes().await;
                }
            })
        })
        .collect();
    for connection in opened {
        let _ = connection.await;
    }
}

#[derive(Debug)]
enum Outcome {
    Ok {
        bytes: usize,
    },
    Status(u16),
    Transport,
    /// A request of the floor (no HTTP) failed at the database.
    Database,
}

async fn fetch(client: &reqwest::Client, url: &str, token: &str) -> Outcome {
    let Ok(response) = client.get(url).bearer_auth(token).send().await else {
        return Outcome::Transport;
    };
    let status = response.status();
    match response.bytes().await {
        Ok(body) if status == reqwest::StatusCode::OK => Outcome::Ok { bytes: body.len() },
        Ok(_) => Outcome::Status(status.as_u16()),
        Err(_) => Outcome::Transport,
    }
}

/// What one or more load workers saw: latency of successful requests, errors by kind.
struct Tally {
    latency: Histogram<u64>,
    requests: u64,
    errors: BTreeMap<String, u64>,
    bytes: u64,
}

impl Tally {
    fn new() -> Self {
        Self { latency: histogram_us(), requests: 0, errors: BTreeMap::new(), bytes: 0 }
    }

    fn record(&mut self, latency: Duration, outcome: &Outcome) {
        self.requests += 1;
        match outcome {
            Outcome::Ok { bytes } => {
                record_us(&mut self.latency, latency);
                self.bytes += *bytes as u64;
            }
            Outcome::Status(code) => *self.errors.entry(format!("HTTP {code}")).or_default() += 1,
            Outcome::Transport => *self.errors.entry("transport".to_owned()).or_default() += 1,
            Outcome::Database => *self.errors.entry("database".to_owned()).or_default() += 1,
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.latency.add(&other.latency).expect("histograms with the same bounds");
        self.requests += other.requests;
        self.bytes += other.bytes;
        for (kind, n) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += n;
        }
    }

    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// `clients` users each sending the request, waiting for the whole answer, and sending the
/// next (a closed loop), for `duration`. Returns the tally and the wall time.
async fn closed_loop(
    clients: &[reqwest::Client],
    url: &str,
    token: &str,
    duration: Duration,
) -> anyhow::Result<(Tally, Duration)> {
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = clients
        .iter()
        .map(|client| {
            let (client, url, token) = (client.clone(), url.to_owned(), token.to_owned());
            load_runtime().spawn(async move {
                let mut tally = Tally::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let outcome = fetch(&client, &url, &token).await;
                    tally.record(sent.elapsed(), &outcome);
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::new();
    for worker in workers {
        total.merge(&worker.await.context("a load worker panicked")?);
    }
    Ok((total, started.elapsed()))
}

/// Requests at Poisson times, `rate` per second for `duration`, each sent whether or not the
/// earlier ones have answered (an open loop), over one client whose pool opens as many
/// connections as are in flight. Latency counts from each request's scheduled start, so a late
/// scheduler cannot hide queueing. Runs wholly on the load runtime.
async fn open_loop(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<(Tally, Duration)> {
    let (client, url, token) = (client.clone(), url.to_owned(), token.to_owned());
    let generator = load_runtime().spawn(async move {
        let tally = Arc::new(std::sync::Mutex::new(Tally::new()));
        let mut rng = StdRng::seed_from_u64(0x0be7);
        let mut arrivals = PoissonArrivals::new(rate, duration);
        let mut requests = Vec::new();
        while let Some(sent) = arrivals.next(&mut rng).await {
            let (client, url, token, tally) = (client.clone(), url.clone(), token.clone(), tally.clone());
            requests.push(tokio::spawn(async move {
                let outcome = fetch(&client, &url, &token).await;
                tally.lock().expect("tally lock").record(sent.elapsed(), &outcome);
            }));
        }
        for request in requests {
            request.await.context("a request task panicked")?;
        }
        let wall = arrivals.started.elapsed();
        let tally = Arc::try_unwrap(tally).map_err(|_| anyhow!("request tasks still hold the tally"))?;
        anyhow::Ok((tally.into_inner().expect("tally lock"), wall))
    });
    generator.await.context("the open-loop generator panicked")?
}

/// Poisson arrival times: exponential gaps at `rate` per second from the start, for `duration`.
struct PoissonArrivals {
    rate: f64,
    duration: Duration,
    started: Instant,
    scheduled: Instant,
}

impl PoissonArrivals {
    fn new(rate: f64, duration: Duration) -> Self {
        let started = Instant::now();
        Self { rate, duration, started, scheduled: started }
    }

    /// Sleeps until the next arrival and returns its scheduled time; `None` once past the
    /// duration. The caller's `rng` may also draw other things between arrivals.
    async fn next(&mut self, rng: &mut impl Rng) -> Option<Instant> {
        // Exponential gaps: -ln(U) / rate, U in (0, 1].
        self.scheduled += Duration::from_secs_f64(-(1.0 - rng.random::<f64>()).ln() / self.rate);
        if self.scheduled - self.started >= self.duration {
            return None;
        }
        tokio::time::sleep_until(self.scheduled.into()).await;
        Some(self.scheduled)
    }
}

/// How requests arrive in an [`Alternation`].
#[derive(Clone, Copy)]
enum Arrivals {
    /// Each client sends its next request when the last one answered.
    ClosedLoop,
    /// Poisson arrivals at `rate` per second over the first client (see [`open_loop`]).
    OpenLoop { rate: f64 },
}

/// Zipf(s) over ranks 0..n: P(rank k) ∝ 1/(k+1)^s, sampled by binary search in the CDF.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, exponent: f64) -> Self {
        let mut sum = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|k| {
                sum += 1.0 / (k as f64).powf(exponent);
                sum
            })
            .collect();
        for c in &mut cdf {
            *c /= sum;
        }
        Self { cdf }
    }

    fn sample(&self, rng: &mut impl Rng) -> usize {
        let u: f64 = rng.random();
        self.cdf.partition_point(|&c| c <= u).min(self.cdf.len() - 1)
    }
}

// ---------------------------------------------------------------------------------------------
// Phase 1: single tenant

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Router,
    Baseline,
}

async fn single_tenant_phase(
    settings: &Settings,
    platform: &Platform,
    tenant: &Tenant,
) -> anyhow::Result<SingleTenant> {
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
    platform: &Platform,
    tenant: &Tenant,
) -> anyhow::Result<(RunningRouter, Baseline)> {
    let router = RunningRouter::start(platform, format!("bench-router-single-{}", platform.run_id), |c| {
        c.pool.max_per_tenant = settings.share;
        c.pool.budget_per_server = settings.budget;
    })
    .await?;
    add_employees(&router.url, &tenant.token, settings.employees).await?;
    let baseline = Baseline::start(platform, tenant, settings.share).await?;
    Ok((router, baseline))
}

/// `--serve`: phase 1's router and baseline over the same tenant, until Ctrl-C.
async fn serve(settings: &Settings, platform: &Platform) -> anyhow::Result<()> {
    let tenant = platform.provision("single").await.context("provisioning the single tenant")?;
    let (router, baseline) = start_single_tenant_services(settings, platform, &tenant).await?;
    println!("NEXACORE_BENCH_ROUTER_URL={}", router.employees_url());
    println!("NEXACORE_BENCH_BASELINE_URL={}", baseline.employees_url());
    println!("NEXACORE_BENCH_TOKEN={}", tenant.token);
    println!("NEXACORE_BENCH_PID={}", std::process::id());
    // `run` ends this on Ctrl-C and stops the cluster.
    let _kept = (router, baseline);
    std::future::pending().await
}

/// Employees with varied names, through the router's API (each write commits its event).
async fn add_employees(router_url: &str, token: &str, count: usize) -> anyhow::Result<()> {
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
    platform: &Platform,
    router: &RunningRouter,
    baseline: &Baseline,
    tenant: &Tenant,
) -> anyhow::Result<SingleTenant> {
    let (router_url, baseline_url) = (router.employees_url(), baseline.employees_url());
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
struct Alternation<'a> {
    /// Router's, baseline's.
    clients: (&'a [reqwest::Client], &'a [reqwest::Client]),
    urls: (&'a str, &'a str),
    token: &'a str,
    rounds: usize,
    warm_up: Duration,
    run: Duration,
    arrivals: Arrivals,
    postmaster: Option<u32>,
}

/// One side's measured runs together, and the CPU ticks spent meanwhile.
struct SideRuns {
    tally: Tally,
    wall: Duration,
    cpu: CpuTicks,
}

impl Alternation<'_> {
    async fn run(&self, what: &str) -> anyhow::Result<(SideRuns, SideRuns)> {
        let fresh = || SideRuns { tally: Tally::new(), wall: Duration::ZERO, cpu: CpuTicks::default() };
        let (mut router, mut baseline) = (fresh(), fresh());
        let bar = progress(2 * self.rounds, what);
        for round in 0..self.rounds {
            let order =
                if round.is_multiple_of(2) { [Side::Router, Side::Baseline] } else { [Side::Baseline, Side::Router] };
            for side in order {
                let (clients, url, sink) = match side {
                    Side::Router => (self.clients.0, self.urls.0, &mut router),
                    Side::Baseline => (self.clients.1, self.urls.1, &mut baseline),
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
    tenant: &Tenant,
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
        black_box(tenant_router::gates::admit(state, token).await.is_ok());
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

// ---------------------------------------------------------------------------------------------
// Phase 2: many tenants

/// The router's counters, to take differences around a phase.
#[derive(Clone, Copy, Default, Serialize)]
struct Counters {
    catalog_lookups: u64,
    pools_created: u64,
    connects: u64,
    connect_failures: u64,
    reclaimed_idle: u64,
    reserve_reclaims: u64,
    exits_seen: u64,
    budget_timeouts: u64,
    jwks_fetches: u64,
    lookup_micros: u64,
    permit_waits: u64,
    permit_wait_micros: u64,
    connect_micros: u64,
}

impl Counters {
    fn read(state: &AppState) -> Self {
        let stats = &state.pools.stats;
        Self {
            catalog_lookups: state.routes.lookup_count(),
            pools_created: stats.pools_created.load(Ordering::Relaxed),
            connects: stats.connects.load(Ordering::Relaxed),
            connect_failures: stats.connect_failures.load(Ordering::Relaxed),
            reclaimed_idle: stats.reclaimed_idle.load(Ordering::Relaxed),
            reserve_reclaims: stats.reserve_reclaims.load(Ordering::Relaxed),
            exits_seen: stats.exits_seen.load(Ordering::Relaxed),
            budget_timeouts: stats.budget_timeouts.load(Ordering::Relaxed),
            jwks_fetches: state.verifier.fetch_count(),
            lookup_micros: state.routes.lookup_micros(),
            permit_waits: stats.permit_waits.load(Ordering::Relaxed),
            permit_wait_micros: stats.permit_wait_micros.load(Ordering::Relaxed),
            connect_micros: stats.connect_micros.load(Ordering::Relaxed),
        }
    }

    fn since(self, before: Self) -> Self {
        Self {
            catalog_lookups: self.catalog_lookups - before.catalog_lookups,
            pools_created: self.pools_created - before.pools_created,
            connects: self.connects - before.connects,
            connect_failures: self.connect_failures - before.connect_failures,
            reclaimed_idle: self.reclaimed_idle - before.reclaimed_idle,
            reserve_reclaims: self.reserve_reclaims - before.reserve_reclaims,
            exits_seen: self.exits_seen - before.exits_seen,
            budget_timeouts: self.budget_timeouts - before.budget_timeouts,
            jwks_fetches: self.jwks_fetches - before.jwks_fetches,
            lookup_micros: self.lookup_micros - before.lookup_micros,
            permit_waits: self.permit_waits - before.permit_waits,
            permit_wait_micros: self.permit_wait_micros - before.permit_wait_micros,
            connect_micros: self.connect_micros - before.connect_micros,
        }
    }

    /// Mean milliseconds of a catalog lookup, of a wait for a budget permit (over the requests
    /// that waited) and of opening a connection.
    fn mean_lookup_ms(&self) -> f64 {
        mean_ms(self.lookup_micros, self.catalog_lookups)
    }

    fn mean_permit_wait_ms(&self) -> f64 {
        mean_ms(self.permit_wait_micros, self.permit_waits)
    }

    fn mean_connect_ms(&self) -> f64 {
        mean_ms(self.connect_micros, self.connects)
    }
}

fn mean_ms(total_micros: u64, count: u64) -> f64 {
    if count == 0 { 0.0 } else { total_micros as f64 / count as f64 / 1000.0 }
}

/// The router's connections, as the server sees them and as the router counts them.
#[derive(Default, Serialize)]
struct Peaks {
    samples: u64,
    peak_pg_stat_activity: u64,
    peak_router_count: u64,
    samples_over_budget: u64,
}

/// Counts the server's backends logged in as a tenant role: neither the superuser this
/// connection logs in as nor user 0 (Postgres's own processes: autovacuum, writers). It reads
/// the backend slots through `pg_stat_get_backend_idset()`, not `pg_stat_activity` (see
/// [`Sampler`]).
struct TenantBackends {
    conn: PgConnection,
    superuser: sqlx::postgres::types::Oid,
}

impl TenantBackends {
    async fn connect(admin_url: &str) -> anyhow::Result<Self> {
        let mut conn = PgConnection::connect(admin_url).await.context("connecting to count backends")?;
        let superuser = sqlx::query_scalar("SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user")
            .fetch_one(&mut conn)
            .await?;
        Ok(Self { conn, superuser })
    }

    async fn count(&mut self) -> anyhow::Result<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_catalog.pg_stat_get_backend_idset() AS b
             WHERE pg_catalog.pg_stat_get_backend_userid(b) NOT IN (0, $1)",
        )
        .bind(self.superuser)
        .fetch_one(&mut self.conn)
        .await?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    async fn close(self) {
        self.conn.close().await.ok();
    }
}

/// Waits (up to 5 s) until no backend of a tenant role is left on the server, so that a run
/// does not start while the previous one's hundred connections are still exiting: those exits
/// are Postgres work that would land on the next run's first requests.
async fn settle(admin_url: &str) -> anyhow::Result<()> {
    let mut backends = TenantBackends::connect(admin_url).await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while backends.count().await? > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    backends.close().await;
    Ok(())
}

/// Samples the router's connection count every [`SAMPLE_EVERY`] until stopped.
///
/// The server's count is every backend logged in as a tenant role: while a Zipf run lasts, only
/// its router logs in as one (the control plane and the sampler are the superuser), so this
/// counts the router's connections, and counts them high rather than low if anything else did.
/// It reads the backend slots through `pg_stat_get_backend_idset()`, not `pg_stat_activity`:
/// the view's function clips every backend's query text on every call, and at 200 calls a
/// second that was a tenth of Postgres's CPU in a Zipf run (perf), time taken from the router.
struct Sampler {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<Peaks>>,
}

impl Sampler {
    /// `own_count` is the serving side's own count of its open connections.
    async fn start(
        admin_url: &str,
        own_count: impl Fn() -> usize + Send + 'static,
        budget: usize,
    ) -> anyhow::Result<Self> {
        let mut backends = TenantBackends::connect(admin_url).await?;
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut peaks = Peaks::default();
            let mut ticker = tokio::time::interval(SAMPLE_EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticker.tick() => {}
                }
                let seen = backends.count().await?;
                let own = own_count() as u64;
                peaks.samples += 1;
                peaks.peak_pg_stat_activity = peaks.peak_pg_stat_activity.max(seen);
                peaks.peak_router_count = peaks.peak_router_count.max(own);
                if seen.max(own) > budget as u64 {
                    peaks.samples_over_budget += 1;
                }
            }
            backends.close().await;
            Ok(peaks)
        });
        Ok(Self { stop, task })
    }

    async fn stop(self) -> anyhow::Result<Peaks> {
        let _ = self.stop.send(());
        self.task.await.context("the sampler panicked")?
    }
}

async fn many_tenants_phase(
    settings: &Settings,
    platform: &Platform,
    fleet: &Fleet,
    warm: &Tenant,
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
    platform: &Platform,
    fleet: &Fleet,
    warm: &Tenant,
) -> anyhow::Result<IsolatedCold> {
    settle(&platform.admin_url).await?;
    let router = RunningRouter::start(platform, format!("bench-router-isolated-{}", platform.run_id), |c| {
        settings.many_tenant_pool(c)
    })
    .await?;
    let outcome = async {
        let client = http_client();
        let url = router.employees_url();
        fetch(&client, &url, &warm.token).await;
        let mut latencies = histogram_us();
        let before = Counters::read(&router.state);
        for tenant in fleet.active.iter().take(ISOLATED_COLD_TENANTS) {
            let sent = Instant::now();
            match fetch(&client, &url, &tenant.token).await {
                Outcome::Ok { .. } => record_us(&mut latencies, sent.elapsed()),
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

/// The single-tenant open loop's rate, as a share of the baseline's saturated throughput.
const SINGLE_OPEN_LOOP_SHARE: f64 = 0.5;

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

/// One Zipf load on a freshly started router (every tenant cold: no routes, no pools).
#[derive(Serialize)]
struct ZipfRun {
    tenants_touched: u64,
    load: LoadStats,
    /// Each tenant's first request: route lookup, pool, connect (and reclaiming another
    /// tenant's idle connection when the budget is spent).
    first_request: LatencyMs,
    /// The first requests sent after [`START_WINDOW`]: cold tenants among warm ones.
    first_request_after_start: LatencyMs,
    connections: Peaks,
    counters: Counters,
    cpu: CpuShare,
}

async fn zipf_run(
    settings: &Settings,
    platform: &Platform,
    fleet: &Fleet,
    warm: &Tenant,
    arrivals: ZipfArrivals,
) -> anyhow::Result<ZipfRun> {
    settle(&platform.admin_url).await?;
    let application_name = format!("bench-router-many-{}", platform.run_id);
    let router = RunningRouter::start(platform, application_name, |c| settings.many_tenant_pool(c)).await?;
    let outcome = async {
        // The JWKS fetch and first-use costs are paid here, not by the first measured request.
        let clients: Vec<_> = (0..settings.zipf_clients).map(|_| http_client()).collect();
        connect_clients(&clients, &router.url).await;
        fetch(&clients[0], &router.employees_url(), &warm.token).await;
        let state = router.state.clone();
        let sampler =
            Sampler::start(&platform.admin_url, move || state.pools.open_connections_total(), settings.budget).await?;
        let before = Counters::read(&router.state);
        let cpu_before = CpuTicks::now(platform.postmaster);
        let load = match arrivals {
            ZipfArrivals::ClosedLoop => {
                zipf_load(&clients, &router.employees_url(), &fleet.active, settings.zipf_run).await
            }
            ZipfArrivals::OpenLoop { rate } => {
                zipf_open_loop_http(&clients, &router.employees_url(), &fleet.active, rate, settings.zipf_run).await
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
    tally: Tally,
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
    tenants: &[Tenant],
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
                let (mut tally, mut cold, mut later) = (Tally::new(), histogram_us(), histogram_us());
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
    let (mut total, mut cold, mut later) = (Tally::new(), histogram_us(), histogram_us());
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
    Fut: Future<Output = Outcome> + Send + 'static,
{
    struct Shared {
        tally: Tally,
        cold: Histogram<u64>,
        later: Histogram<u64>,
    }
    let shared =
        Arc::new(std::sync::Mutex::new(Shared { tally: Tally::new(), cold: histogram_us(), later: histogram_us() }));
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
    tenants: &[Tenant],
    rate: f64,
    duration: Duration,
) -> anyhow::Result<ZipfOutcome> {
    zipf_open_loop(tenants.len(), rate, duration, |tenant, n| {
        let (client, url, token) = (clients[n % clients.len()].clone(), url.to_owned(), tenants[tenant].token.clone());
        async move { fetch(&client, &url, &token).await }
    })
    .await
}

/// The cold path's floor (see [`floor`]) at `rate`: the same arrivals as the router's open loop
/// at that rate, served straight from this process under the same budget, all tenants cold.
/// `options` reach the active tenants' databases, in the fleet's order.
async fn floor_run(
    settings: &Settings,
    platform: &Platform,
    options: &[PgConnectOptions],
    rate: f64,
) -> anyhow::Result<FloorRun> {
    settle(&platform.admin_url).await?;
    let tenants = options.len();
    let pool = Arc::new(floor::FloorPool::new(options.to_vec(), settings.budget));
    // Sampled like the router, so that both sides pay for the sampling.
    let counted = pool.clone();
    let sampler = Sampler::start(&platform.admin_url, move || counted.open_connections(), settings.budget).await?;
    let cpu_before = CpuTicks::now(platform.postmaster);
    let load = zipf_open_loop(tenants, rate, settings.zipf_run, |tenant, _| {
        let pool = pool.clone();
        async move {
            match pool.list_employees(tenant, PAGE_SIZE).await {
                Ok(rows) => Outcome::Ok { bytes: rows },
                Err(error) => {
                    tracing::debug!(%error, "a floor request failed");
                    Outcome::Database
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

/// [`floor_run`]'s figures.
#[derive(Serialize)]
struct FloorRun {
    load: LoadStats,
    /// Each tenant's first request: connect (SCRAM, a new backend) and the query on it.
    first_request: LatencyMs,
    connects: u64,
    /// Its connections as the server saw them: the floor does not wait for a closed backend to
    /// exit, so the server may count more than the budget for a moment.
    connections: Peaks,
    cpu: CpuShare,
}

// ---------------------------------------------------------------------------------------------
// Phase 3: thundering herd

async fn herd_phase(settings: &Settings, platform: &Platform, cold: &Tenant, warm: &Tenant) -> anyhow::Result<Herd> {
    let router = RunningRouter::start(platform, format!("bench-router-herd-{}", platform.run_id), |c| {
        settings.many_tenant_pool(c);
        // A queue of a thousand on a share of a few connections must not time out into 503s.
        c.pool.acquire_timeout = Duration::from_secs(120);
    })
    .await?;
    let outcome = async {
        let clients: Vec<_> = (0..settings.herd).map(|_| http_client()).collect();
        connect_clients(&clients, &router.url).await;
        fetch(&clients[0], &router.employees_url(), &warm.token).await;
        let before = Counters::read(&router.state);
        let barrier = Arc::new(Barrier::new(clients.len() + 1));
        let url = router.employees_url();
        let requests: Vec<_> = clients
            .into_iter()
            .map(|client| {
                let (barrier, url, token) = (barrier.clone(), url.clone(), cold.token.clone());
                load_runtime().spawn(async move {
                    barrier.wait().await;
                    let sent = Instant::now();
                    let outcome = fetch(&client, &url, &token).await;
                    (sent.elapsed(), outcome)
                })
            })
            .collect();
        barrier.wait().await;
        let released = Instant::now();
        let mut tally = Tally::new();
        for request in requests {
            let (latency, outcome) = request.await.context("a herd request panicked")?;
            tally.record(latency, &outcome);
        }
        let wall = released.elapsed();
        let counters = Counters::read(&router.state).since(before);
        anyhow::Ok(Herd {
            requests: tally.requests,
            errors: tally.error_count(),
            error_kinds: tally.errors.clone(),
            share: settings.zipf_share,
            latency: LatencyMs::of(&tally.latency),
            wall_ms: wall.as_secs_f64() * 1000.0,
            counters,
        })
    }
    .await;
    router.stop().await?;
    outcome
}

// ---------------------------------------------------------------------------------------------
// Phase 4: memory

/// CPU time in clock ticks (/proc): the machine's busy and total time over all cores, this
/// process's, and the Postgres cluster's (the postmaster, its live children and those it
/// reaped). The rest of the busy time is other work on the machine.
#[derive(Clone, Copy, Default)]
struct CpuTicks {
    busy: u64,
    total: u64,
    /// Time the hypervisor gave this machine's virtual CPUs to someone else (part of `busy`).
    steal: u64,
    own: u64,
    postgres: u64,
}

impl CpuTicks {
    fn now(postmaster: Option<u32>) -> Self {
        let MachineTicks { busy, total, steal } = machine_ticks().unwrap_or_default();
        let own = proc_stat(std::process::id()).map_or(0, |s| s.utime + s.stime);
        let postgres = postmaster.map_or(0, postgres_ticks);
        Self { busy, total, steal, own, postgres }
    }

    fn minus(self, before: Self) -> Self {
        Self {
            busy: self.busy.saturating_sub(before.busy),
            total: self.total.saturating_sub(before.total),
            steal: self.steal.saturating_sub(before.steal),
            own: self.own.saturating_sub(before.own),
            postgres: self.postgres.saturating_sub(before.postgres),
        }
    }

    fn plus(self, other: Self) -> Self {
        Self {
            busy: self.busy + other.busy,
            total: self.total + other.total,
            steal: self.steal + other.steal,
            own: self.own + other.own,
            postgres: self.postgres + other.postgres,
        }
    }

    /// In cores: ticks over the interval's ticks per core.
    fn share(self) -> CpuShare {
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        let per_core = self.total as f64 / cores;
        let as_cores = |ticks: u64| if per_core > 0.0 { ticks as f64 / per_core } else { f64::NAN };
        CpuShare {
            ops_cores: as_cores(self.own),
            postgres_cores: as_cores(self.postgres),
            other_cores: as_cores(self.busy.saturating_sub(self.own + self.postgres + self.steal)),
            stolen_cores: as_cores(self.steal),
            idle_cores: as_cores(self.total.saturating_sub(self.busy)),
        }
    }
}

/// Where the machine's cores went over an interval, on average.
#[derive(Serialize)]
struct CpuShare {
    /// This process: the services under test and the load generator.
    ops_cores: f64,
    postgres_cores: f64,
    /// Everything else on the machine.
    other_cores: f64,
    /// Taken by the hypervisor for other guests: on a shared host, the noise in every figure.
    stolen_cores: f64,
    idle_cores: f64,
}

/// Ticks over all cores, from the `cpu` line of /proc/stat.
#[derive(Default)]
struct MachineTicks {
    busy: u64,
    total: u64,
    steal: u64,
}

fn machine_ticks() -> Option<MachineTicks> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> =
        stat.lines().next()?.split_whitespace().skip(1).take(8).map(|v| v.parse().unwrap_or(0)).collect();
    // user nice system idle iowait irq softirq steal
    let [user, nice, system, idle, iowait, irq, softirq, steal] = fields[..] else { return None };
    let busy = user + nice + system + irq + softirq + steal;
    Some(MachineTicks { busy, total: busy + idle + iowait, steal })
}

/// The fields of /proc/<pid>/stat this benchmark reads.
struct ProcStat {
    ppid: u32,
    utime: u64,
    stime: u64,
    /// CPU time of children it has waited for.
    cutime: u64,
    cstime: u64,
}

fn proc_stat(pid: u32) -> Option<ProcStat> {
    parse_proc_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_proc_stat(stat: &str) -> Option<ProcStat> {
    // The command name, in parentheses, may contain spaces: fields are counted after it.
    let rest: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
    let field = |n: usize| rest.get(n).and_then(|v| v.parse::<u64>().ok());
    Some(ProcStat {
        ppid: u32::try_from(field(1)?).ok()?,
        utime: field(11)?,
        stime: field(12)?,
        cutime: field(13)?,
        cstime: field(14)?,
    })
}

/// The cluster's CPU ticks: the postmaster with the children it reaped, and its live children.
fn postgres_ticks(postmaster: u32) -> u64 {
    let Some(main) = proc_stat(postmaster) else { return 0 };
    let mut ticks = main.utime + main.stime + main.cutime + main.cstime;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Some(child) = proc_stat(pid)
            && child.ppid == postmaster
        {
            ticks += child.utime + child.stime;
        }
    }
    ticks
}

/// The 1-minute load average (/proc/loadavg), NaN if unreadable.
/// Whether the server's shared memory sits on huge pages (`huge_pages = try`, Postgres's
/// default, uses them when the kernel has some reserved): any mapping of the postmaster's with
/// pages larger than 4 kB. `None` if its memory map cannot be read.
fn huge_pages_in_use(postmaster: u32) -> Option<bool> {
    let smaps = std::fs::read_to_string(format!("/proc/{postmaster}/smaps")).ok()?;
    Some(smaps.lines().filter_map(|line| line.strip_prefix("KernelPageSize:")).any(|size| size.trim() != "4 kB"))
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// The resident set of this process, in KiB (`VmRSS` of /proc/self/status).
fn rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    parse_vm_rss(&status).context("no VmRSS in /proc/self/status")
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What the memory probe needs: how to build a router, and the tenants to touch.
#[derive(Serialize, Deserialize)]
struct ProbeInput {
    catalog_url: String,
    /// The tenant role key in hex; it travels over the probe's stdin only.
    role_key: String,
    jwks_url: String,
    application_name: String,
    budget: usize,
    share: usize,
    touch_clients: usize,
    warm_token: String,
    /// The active tenants, each touched once by a request with its token.
    active: Vec<(Uuid, String)>,
    /// Every other tenant in the catalog, whose route is looked up without a request.
    others: Vec<Uuid>,
}

/// Phase 4 runs in a fresh `ops` process: this one has run provisioning (argon2 allocates
/// 19 MiB per hash) and the allocator keeps what was freed, so its resident set barely moves
/// when a router grows. A fresh process holds only the router and a small client.
async fn memory_phase(
    settings: &Settings,
    platform: &Platform,
    active: &[Tenant],
    warm: &Tenant,
) -> anyhow::Result<Memory> {
    let touched: std::collections::HashSet<Uuid> = active.iter().map(|t| t.id).chain([warm.id]).collect();
    let others = platform.all_tenant_ids().await?.into_iter().filter(|id| !touched.contains(id)).collect();
    let input = ProbeInput {
        catalog_url: platform.router_catalog_url.clone(),
        role_key: platform.role_key.to_hex().expose_secret().to_owned(),
        jwks_url: platform.jwks_url(),
        application_name: format!("bench-router-memory-{}", platform.run_id),
        budget: settings.budget,
        share: settings.zipf_share,
        touch_clients: settings.touch_clients,
        warm_token: warm.token.clone(),
        active: active.iter().map(|t| (t.id, t.token.clone())).collect(),
        others,
    };
    let exe = std::env::current_exe().context("finding the ops binary")?;
    let mut child = tokio::process::Command::new(exe)
        .args(["bench", "router", "--memory-probe"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting the memory probe")?;
    let mut stdin = child.stdin.take().context("the memory probe's stdin")?;
    stdin.write_all(&serde_json::to_vec(&input)?).await?;
    drop(stdin);
    let output = child.wait_with_output().await.context("waiting for the memory probe")?;
    if !output.status.success() {
        bail!("the memory probe failed ({})", output.status);
    }
    serde_json::from_slice(&output.stdout).context("reading the memory probe's figures")
}

/// The memory probe's process: reads a [`ProbeInput`] on stdin, prints [`Memory`] on stdout.
async fn memory_probe() -> anyhow::Result<()> {
    let mut raw = Vec::new();
    tokio::io::stdin().read_to_end(&mut raw).await.context("reading the probe's input")?;
    let input: ProbeInput = serde_json::from_slice(&raw).context("parsing the probe's input")?;
    let config = tenant_router::Config::new(
        SecretString::from(input.catalog_url.clone()),
        SecretString::from(input.role_key.clone()),
        input.jwks_url.clone(),
    );
    let router = RunningRouter::start_with(config, input.application_name.clone(), |c| {
        c.pool.budget_per_server = input.budget;
        c.pool.max_per_tenant = input.share;
        // Nothing expires or is swept while measuring.
        c.route_ttl = Duration::from_secs(3600);
        c.pool.idle_timeout = Duration::from_secs(3600);
    })
    .await?;
    let measured = measure_memory(&router, &input).await;
    router.stop().await?;
    println!("{}", serde_json::to_string(&measured?)?);
    Ok(())
}

async fn measure_memory(router: &RunningRouter, input: &ProbeInput) -> anyhow::Result<Memory> {
    let state = &router.state;
    // Everything allocated for measuring is allocated before the first reading; the first
    // request pays the JWKS fetch and first-use initialisation.
    let clients: Vec<_> = (0..input.touch_clients).map(|_| http_client()).collect();
    connect_clients(&clients, &router.url).await;
    let url = router.employees_url();
    fetch(&clients[0], &url, &input.warm_token).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_before = rss_kib()?;

    // Every active tenant once: a route, a pool and (within the budget) an idle connection.
    let next = Arc::new(AtomicUsize::new(0));
    let tokens: Arc<Vec<String>> = Arc::new(input.active.iter().map(|(_, token)| token.clone()).collect());
    let workers: Vec<_> = clients
        .iter()
        .map(|client| {
            let (client, url, next, tokens) = (client.clone(), url.clone(), next.clone(), tokens.clone());
            tokio::spawn(async move {
                let mut tally = Tally::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(token) = tokens.get(n) else { return tally };
                    let sent = Instant::now();
                    let outcome = fetch(&client, &url, token).await;
                    tally.record(sent.elapsed(), &outcome);
                }
            })
        })
        .collect();
    let mut touched = Tally::new();
    for worker in workers {
        touched.merge(&worker.await.context("a touch worker panicked")?);
    }
    state.pools.sweep().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_touched = rss_kib()?;
    let routes_touched = state.routes.cached_count();
    let pools_touched = state.pools.pool_count();
    let connections_touched = state.pools.open_connections_total();

    // Routes alone: every other tenant in the catalog, looked up without a request.
    let lookups: Vec<_> = futures::stream::iter(input.others.iter().copied())
        .map(|id| async move { state.routes.get(tenancy::TenantId(id)).await.is_ok() })
        .buffer_unordered(8)
        .collect()
        .await;
    let lookup_failures = lookups.iter().filter(|ok| !**ok).count();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_routes = rss_kib()?;
    let routes_all = state.routes.cached_count();

    // Pools retired, as the sweeper does after the idle timeout: connections closed.
    for (id, _) in &input.active {
        state.pools.retire_tenant(tenancy::TenantId(*id)).await;
    }
    state.pools.sweep().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_retired = rss_kib()?;

    let per = |after: u64, before: u64, count: usize| {
        if count == 0 { f64::NAN } else { (after as f64 - before as f64) / count as f64 }
    };
    Ok(Memory {
        tenants_touched: input.active.len(),
        touch_clients: input.touch_clients,
        touch_errors: touched.error_count(),
        first_request_light_load: LatencyMs::of(&touched.latency),
        rss_before_kib: rss_before,
        rss_after_touch_kib: rss_touched,
        cached_routes_after_touch: routes_touched,
        pools_after_touch: pools_touched,
        open_connections_after_touch: connections_touched,
        kib_per_touched_tenant: per(rss_touched, rss_before, input.active.len()),
        extra_routes: input.others.len() as u64,
        cached_routes_after_lookups: routes_all,
        route_lookup_failures: lookup_failures,
        rss_after_routes_kib: rss_routes,
        kib_per_route_only: per(rss_routes, rss_touched, input.others.len()),
        rss_after_retire_kib: rss_retired,
        pools_after_retire: state.pools.pool_count(),
        open_connections_after_retire: state.pools.open_connections_total(),
    })
}

// ---------------------------------------------------------------------------------------------
// Measurements

/// Latencies in microseconds, 1 µs to 10 min, 3 significant digits.
fn histogram_us() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

fn record_us(h: &mut Histogram<u64>, latency: Duration) {
    h.saturating_record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1));
}

/// Step costs in nanoseconds, 1 ns to 10 s.
fn histogram_ns() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("valid histogram bounds")
}

fn record_ns(h: &mut Histogram<u64>, latency: Duration) {
    h.saturating_record(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX).max(1));
}

fn progress(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64).with_prefix(what.to_owned());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} {per_sec:>10} eta {eta}")
            .expect("a valid progress template")
            .progress_chars("=> "),
    );
    bar
}

// ---------------------------------------------------------------------------------------------
// The report

#[derive(Serialize)]
struct LoadStats {
    requests: u64,
    errors: u64,
    error_kinds: BTreeMap<String, u64>,
    seconds: f64,
    requests_per_s: f64,
    p50_us: u64,
    p90_us: u64,
    p99_us: u64,
    max_us: u64,
    bytes_per_response: u64,
}

impl LoadStats {
    fn of(tally: &Tally, wall: Duration) -> Self {
        let h = &tally.latency;
        let ok = h.len();
        Self {
            requests: tally.requests,
            errors: tally.error_count(),
            error_kinds: tally.errors.clone(),
            seconds: wall.as_secs_f64(),
            requests_per_s: tally.requests as f64 / wall.as_secs_f64(),
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
            bytes_per_response: tally.bytes.checked_div(ok).unwrap_or(0),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct LatencyMs {
    samples: u64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl LatencyMs {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            samples: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

#[derive(Serialize)]
struct StepCost {
    step: String,
    samples: u64,
    p50_us: f64,
    p99_us: f64,
}

impl StepCost {
    fn of(step: &str, ns: &Histogram<u64>) -> Self {
        let us = |q: f64| ns.value_at_quantile(q) as f64 / 1000.0;
        Self { step: step.to_owned(), samples: ns.len(), p50_us: us(0.5), p99_us: us(0.99) }
    }
}

#[derive(Serialize)]
struct SingleTenant {
    clients: usize,
    pool_size: usize,
    employees: usize,
    rounds: usize,
    warm_up_s: f64,
    run_s: f64,
    router: LoadStats,
    baseline: LoadStats,
    /// Where the machine's CPU went during each side's measured runs.
    router_cpu: CpuShare,
    baseline_cpu: CpuShare,
    /// The same alternation with one client: latency without queueing.
    light_run_s: f64,
    one_client_router: LoadStats,
    one_client_baseline: LoadStats,
    one_client_added_p50_ms: f64,
    one_client_added_p99_ms: f64,
    /// Poisson arrivals at half the baseline's saturated throughput: latency with headroom.
    open_loop_rate: f64,
    open_loop_router: LoadStats,
    open_loop_baseline: LoadStats,
    open_loop_added_p50_ms: f64,
    open_loop_added_p99_ms: f64,
    /// Router requests/s over baseline requests/s.
    throughput_ratio: f64,
    /// Router minus baseline.
    added_p50_ms: f64,
    added_p99_ms: f64,
    router_steps: Vec<StepCost>,
}

#[derive(Serialize)]
struct ManyTenants {
    registered: usize,
    real_databases: usize,
    active: usize,
    catalog_only: usize,
    provisioning_s: f64,
    clients: usize,
    run_s: f64,
    budget: usize,
    share: usize,
    /// `clients` closed-loop clients: the router runs flat out.
    closed_loop: ZipfRun,
    /// The same tenants on a fresh router at [`OPEN_LOOP_SHARES`] of the closed loop's
    /// throughput, each run on its own fresh router.
    open_loops: Vec<OpenLoop>,
    /// First requests one at a time on a fresh router: the cold path with nothing queued.
    isolated: IsolatedCold,
}

/// [`cold_one_at_a_time`]'s figures: the latency, and the router's counters over the same
/// requests (where the time went).
#[derive(Serialize)]
struct IsolatedCold {
    first_request: LatencyMs,
    counters: Counters,
}

#[derive(Serialize)]
struct OpenLoop {
    /// The offered rate as a share of the closed loop's throughput.
    share: f64,
    /// Offered requests per second (Poisson arrivals).
    rate: f64,
    #[serde(flatten)]
    run: ZipfRun,
    /// The same arrivals served with no router: what the machine and server cost at the least.
    floor: FloorRun,
}

#[derive(Serialize)]
struct Herd {
    requests: u64,
    errors: u64,
    error_kinds: BTreeMap<String, u64>,
    share: usize,
    latency: LatencyMs,
    wall_ms: f64,
    counters: Counters,
}

#[derive(Serialize, Deserialize)]
struct Memory {
    tenants_touched: usize,
    touch_clients: usize,
    touch_errors: u64,
    /// Every touch is a first request for its tenant, under a light load.
    first_request_light_load: LatencyMs,
    rss_before_kib: u64,
    rss_after_touch_kib: u64,
    cached_routes_after_touch: u64,
    pools_after_touch: u64,
    open_connections_after_touch: usize,
    /// ΔRSS over the routes the touch added: route + pool + share of idle connections.
    kib_per_touched_tenant: f64,
    extra_routes: u64,
    cached_routes_after_lookups: u64,
    route_lookup_failures: usize,
    rss_after_routes_kib: u64,
    /// ΔRSS over the routes looked up without a request: a route alone.
    kib_per_route_only: f64,
    rss_after_retire_kib: u64,
    pools_after_retire: u64,
    open_connections_after_retire: usize,
}

#[derive(Serialize)]
struct TargetCheck {
    what: String,
    value: String,
    target: String,
    met: bool,
}

#[derive(Serialize)]
struct Report {
    quick: bool,
    cores: usize,
    /// The machine's 1-minute load average when the run started: other work skews every figure.
    load_average_at_start: f64,
    postgres: String,
    tenant_auth: String,
    single_tenant: SingleTenant,
    many_tenants: ManyTenants,
    herd: Herd,
    memory: Memory,
    targets: Vec<TargetCheck>,
    elapsed_s: f64,
}

impl Report {
    fn new(
        settings: &Settings,
        postgres: String,
        tenant_auth: String,
        single: SingleTenant,
        many: ManyTenants,
        herd: Herd,
        memory: Memory,
    ) -> Self {
        let check = |what: &str, value: String, target: String, met: bool| TargetCheck {
            what: what.to_owned(),
            value,
            target,
            met,
        };
        let peak =
            many.closed_loop.connections.peak_pg_stat_activity.max(many.closed_loop.connections.peak_router_count);
        let mut targets = vec![check(
            "single tenant: throughput router / baseline",
            format!("{:.3}", single.throughput_ratio),
            format!("≥ {TARGET_THROUGHPUT_RATIO:.2}"),
            single.throughput_ratio >= TARGET_THROUGHPUT_RATIO,
        )];
        let added = [
            (format!("{} clients (saturated)", single.clients), single.added_p50_ms, single.added_p99_ms),
            ("1 client".to_owned(), single.one_client_added_p50_ms, single.one_client_added_p99_ms),
            (
                format!("open loop {:.0}/s", single.open_loop_rate),
                single.open_loop_added_p50_ms,
                single.open_loop_added_p99_ms,
            ),
        ];
        for (label, p50, p99) in added {
            for (quantile, value, target) in [("p50", p50, TARGET_ADDED_P50_MS), ("p99", p99, TARGET_ADDED_P99_MS)] {
                targets.push(check(
                    &format!("single tenant: added latency {quantile}, {label}"),
                    format!("{value:.3} ms"),
                    format!("≤ {target} ms"),
                    value <= target,
                ));
            }
        }
        targets.extend([
            check(
                "many tenants: errors",
                many.closed_loop.load.errors.to_string(),
                "0".to_owned(),
                many.closed_loop.load.errors == 0 && many.closed_loop.load.requests > 0,
            ),
            check(
                "many tenants: peak connections (pg_stat_activity / router)",
                format!(
                    "{} / {}",
                    many.closed_loop.connections.peak_pg_stat_activity, many.closed_loop.connections.peak_router_count
                ),
                format!("≤ {}", many.budget),
                peak <= many.budget as u64,
            ),
            check(
                "many tenants: cold tenant's first request p99 (closed loop, saturated)",
                format!("{:.2} ms", many.closed_loop.first_request.p99_ms),
                format!("≤ {TARGET_COLD_P99_MS} ms"),
                many.closed_loop.first_request.samples > 0
                    && many.closed_loop.first_request.p99_ms <= TARGET_COLD_P99_MS,
            ),
            check(
                &format!("herd: catalog lookups for {} first requests", herd.requests),
                herd.counters.catalog_lookups.to_string(),
                format!("= {TARGET_HERD_LOOKUPS}"),
                herd.counters.catalog_lookups == TARGET_HERD_LOOKUPS,
            ),
            check("herd: errors", herd.errors.to_string(), "0".to_owned(), herd.errors == 0),
        ]);
        let later = &many.closed_loop.first_request_after_start;
        if later.samples > 0 {
            let after_closed_loop = targets.iter().position(|t| t.what.contains("(closed loop")).map_or(0, |i| i + 1);
            targets.insert(
                after_closed_loop,
                check(
                    "many tenants: … closed loop, only first requests after the first 2 s",
                    format!("{:.2} ms", later.p99_ms),
                    format!("≤ {TARGET_COLD_P99_MS} ms"),
                    later.p99_ms <= TARGET_COLD_P99_MS,
                ),
            );
        }
        // The open loops after the closed loop's rows, before the herd's.
        let mut at = targets.iter().position(|t| t.what.starts_with("herd:")).unwrap_or(targets.len());
        for open in &many.open_loops {
            let (run, peak) =
                (&open.run, open.run.connections.peak_pg_stat_activity.max(open.run.connections.peak_router_count));
            let rows = [
                check(
                    &format!(
                        "many tenants: cold tenant's first request p99 (open loop, {:.0} req/s = {:.0} %)",
                        open.rate,
                        open.share * 100.0
                    ),
                    format!("{:.2} ms", run.first_request.p99_ms),
                    format!("≤ {TARGET_COLD_P99_MS} ms"),
                    run.first_request.samples > 0 && run.first_request.p99_ms <= TARGET_COLD_P99_MS,
                ),
                check(
                    &format!("… its floor: the same arrivals with no router ({:.0} %)", open.share * 100.0),
                    format!("{:.2} ms", open.floor.first_request.p99_ms),
                    format!("≤ {TARGET_COLD_P99_MS} ms"),
                    open.floor.first_request.samples > 0 && open.floor.first_request.p99_ms <= TARGET_COLD_P99_MS,
                ),
                check(
                    &format!("many tenants, open loop {:.0} %: errors / peak connections", open.share * 100.0),
                    format!("{} / {}", run.load.errors, peak),
                    format!("0 / ≤ {}", many.budget),
                    run.load.errors == 0 && run.load.requests > 0 && peak <= many.budget as u64,
                ),
            ];
            for row in rows {
                targets.insert(at, row);
                at += 1;
            }
        }
        Self {
            quick: settings.quick,
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            load_average_at_start: settings.load_average_at_start,
            postgres,
            tenant_auth,
            single_tenant: single,
            many_tenants: many,
            herd,
            memory,
            targets,
            elapsed_s: 0.0,
        }
    }
}

fn print_report(r: &Report) {
    println!(
        "Router benchmark{} — PostgreSQL {} on a private throwaway cluster (fsync=off); tenant roles authenticate with {}.",
        if r.quick { " (--quick smoke run)" } else { "" },
        r.postgres,
        r.tenant_auth
    );
    println!(
        "{} cores run everything: the load generator, the router or baseline, the control plane and Postgres \
         compete for them, so absolute figures are CPU-bound; the router/baseline comparison is what matters. \
         1-minute load average when the run started: {:.2} (other work on the machine skews every figure).",
        r.cores, r.load_average_at_start
    );
    println!();
    print_single(&r.single_tenant);
    print_many(&r.many_tenants);
    print_herd(&r.herd);
    print_memory(&r.memory);
    println!("Summary");
    let mut table = new_table(&["target", "value", "target", "met"]);
    for t in &r.targets {
        table.add_row(vec![t.what.clone(), t.value.clone(), t.target.clone(), yes_no(t.met)]);
    }
    println!("{table}");
    println!("The run took {:.0} s.", r.elapsed_s);
}

fn print_single(s: &SingleTenant) {
    println!(
        "Phase 1 — single tenant: GET /employees?limit={PAGE_SIZE} over {} employees; {} closed-loop keep-alive clients \
         (on a runtime of their own, apart from the servers'); \
         a pool of {} connections on both sides (the router's per-tenant share); {} rounds of (router, baseline) \
         in ABBA order, each run {:.0} s after {:.0} s of warm-up; then the same with 1 client ({:.0} s runs), \
         where nothing queues and the latency difference is what the router adds to a request; then the same as \
         an open loop (Poisson arrivals at half the baseline's saturated throughput, as many connections as are \
         in flight, latency from each request's scheduled start): concurrent requests with headroom on both sides.",
        s.employees, s.clients, s.pool_size, s.rounds, s.run_s, s.warm_up_s, s.light_run_s
    );
    println!(
        "Baseline: one poem route + sqlx PgPool as the tenant's role, the same employees::list call, serde JSON; \
         no token check, no gates, pool without per-checkout ping."
    );
    let mut table = new_table(&[
        "",
        "requests",
        "errors",
        "req/s",
        "p50 µs",
        "p90 µs",
        "p99 µs",
        "max µs",
        "bytes/response",
        "cores: ops / postgres / other / stolen / idle",
    ]);
    let rows = [
        (format!("router, {} clients", s.clients), &s.router, Some(&s.router_cpu)),
        (format!("baseline, {} clients", s.clients), &s.baseline, Some(&s.baseline_cpu)),
        ("router, 1 client".to_owned(), &s.one_client_router, None),
        ("baseline, 1 client".to_owned(), &s.one_client_baseline, None),
        (format!("router, open loop {:.0}/s", s.open_loop_rate), &s.open_loop_router, None),
        (format!("baseline, open loop {:.0}/s", s.open_loop_rate), &s.open_loop_baseline, None),
    ];
    for (name, l, cpu) in rows {
        table.add_row(vec![
            name,
            l.requests.to_string(),
            l.errors.to_string(),
            format!("{:.0}", l.requests_per_s),
            l.p50_us.to_string(),
            l.p90_us.to_string(),
            l.p99_us.to_string(),
            l.max_us.to_string(),
            l.bytes_per_response.to_string(),
            cpu.map_or_else(String::new, cpu_cell),
        ]);
    }
    println!("{table}");
    println!(
        "CPU per request (ops process + Postgres): router {:.0} µs, baseline {:.0} µs. \"other\" is work on the \
         machine outside this benchmark, \"stolen\" the time the host gave to other guests; both should be \
         similar on both sides.",
        cpu_per_request_us(&s.router, &s.router_cpu),
        cpu_per_request_us(&s.baseline, &s.baseline_cpu)
    );
    let mut table = new_table(&["router against baseline", "value", "target", "met"]);
    table.add_row(vec![
        "throughput ratio (router req/s ÷ baseline req/s)".to_owned(),
        format!("{:.3}", s.throughput_ratio),
        format!("≥ {TARGET_THROUGHPUT_RATIO:.2}"),
        yes_no(s.throughput_ratio >= TARGET_THROUGHPUT_RATIO),
    ]);
    let cost_ratio = cpu_per_request_us(&s.baseline, &s.baseline_cpu) / cpu_per_request_us(&s.router, &s.router_cpu);
    table.add_row(vec![
        "  the same from CPU cost (baseline µs/request ÷ router µs/request)".to_owned(),
        format!("{cost_ratio:.3}"),
        "(less sensitive to other load)".to_owned(),
        String::new(),
    ]);
    for (label, p50, p99) in [
        (format!("{} clients (saturated)", s.clients), s.added_p50_ms, s.added_p99_ms),
        ("1 client".to_owned(), s.one_client_added_p50_ms, s.one_client_added_p99_ms),
        (
            format!("open loop at half the baseline's throughput ({:.0}/s)", s.open_loop_rate),
            s.open_loop_added_p50_ms,
            s.open_loop_added_p99_ms,
        ),
    ] {
        table.add_row(vec![
            format!("added latency p50 (router − baseline), {label}"),
            format!("{p50:.3} ms"),
            format!("≤ {TARGET_ADDED_P50_MS} ms"),
            yes_no(p50 <= TARGET_ADDED_P50_MS),
        ]);
        table.add_row(vec![
            format!("added latency p99 (router − baseline), {label}"),
            format!("{p99:.3} ms"),
            format!("≤ {TARGET_ADDED_P99_MS} ms"),
            yes_no(p99 <= TARGET_ADDED_P99_MS),
        ]);
    }
    println!("{table}");
    println!("Where the router's time goes: each step alone, one task, no other load (CPU time on an idle core).");
    let mut table = new_table(&["step", "calls", "p50 µs", "p99 µs"]);
    for step in &s.router_steps {
        table.add_row(vec![
            step.step.clone(),
            step.samples.to_string(),
            format!("{:.1}", step.p50_us),
            format!("{:.1}", step.p99_us),
        ]);
    }
    println!("{table}");
    println!();
}

fn print_many(m: &ManyTenants) {
    println!(
        "Phase 2 — many tenants: {} registered in the catalog = {} real tenants provisioned through the control \
         plane API ({} active under load + {} others; took {:.0} s) + {} catalog rows only (status active, \
         pointing at databases that were never created and are never requested; 10,000 real databases do not fit \
         this machine's disk and time).",
        m.registered, m.real_databases, m.active, OTHER_REAL_TENANTS, m.provisioning_s, m.catalog_only
    );
    println!(
        "{} clients for {:.0} s, each request's tenant drawn from Zipf({ZIPF_EXPONENT:.1}) over the {} active \
         tenants; budget {} connections, share {} per tenant; connections sampled every {} ms. The active tenants' \
         databases hold only their signup seed (no employees).",
        m.clients,
        m.run_s,
        m.active,
        m.budget,
        m.share,
        SAMPLE_EVERY.as_millis()
    );
    let closed = &m.closed_loop;
    let mut rows = zipf_rows(closed, m.budget);
    // Only the closed loop sends every tenant's first request at once at the start.
    let later = match &closed.first_request_after_start {
        later if later.samples == 0 => "none: every tenant was touched in the first 2 s".to_owned(),
        later => format!(
            "{:.2} / {:.2} / {:.2} / {:.2} ms ({})",
            later.p50_ms, later.p90_ms, later.p99_ms, later.max_ms, later.samples
        ),
    };
    rows.push((
        "first requests sent in the first 2 s (all cold at once)",
        (closed.first_request.samples - closed.first_request_after_start.samples).to_string(),
        String::new(),
    ));
    rows.push(("first requests after that: p50 / p90 / p99 / max", later, format!("p99 ≤ {TARGET_COLD_P99_MS} ms")));
    print_rows(rows);
    print_open_loop(m);
}

/// One Zipf load's figures, as both loops report them.
fn zipf_rows(z: &ZipfRun, budget: usize) -> Vec<(&'static str, String, String)> {
    let (l, f, c, p) = (&z.load, &z.first_request, &z.counters, &z.connections);
    vec![
        ("requests (req/s)", format!("{} ({:.0})", l.requests, l.requests_per_s), String::new()),
        ("errors", format!("{} {}", l.errors, kinds(&l.error_kinds)), "0".to_owned()),
        (
            "latency p50 / p99 / max",
            format!("{:.2} / {:.2} / {:.2} ms", ms(l.p50_us), ms(l.p99_us), ms(l.max_us)),
            String::new(),
        ),
        ("tenants touched (first requests)", z.tenants_touched.to_string(), String::new()),
        (
            "first request p50 / p90 / p99 / max",
            format!("{:.2} / {:.2} / {:.2} / {:.2} ms", f.p50_ms, f.p90_ms, f.p99_ms, f.max_ms),
            format!("p99 ≤ {TARGET_COLD_P99_MS} ms"),
        ),
        (
            "peak connections, pg_stat_activity / router's own count",
            format!("{} / {}", p.peak_pg_stat_activity, p.peak_router_count),
            format!("≤ {budget}"),
        ),
        ("samples over budget", format!("{} of {}", p.samples_over_budget, p.samples), "0".to_owned()),
        ("catalog lookups / pools created", format!("{} / {}", c.catalog_lookups, c.pools_created), String::new()),
        (
            "connects / failures (share of requests that connected)",
            format!(
                "{} / {} ({:.1} %)",
                c.connects,
                c.connect_failures,
                100.0 * c.connects as f64 / l.requests.max(1) as f64
            ),
            String::new(),
        ),
        (
            "idle connections closed: by waiting requests / ahead of need (reserve)",
            format!("{} / {}", c.reclaimed_idle, c.reserve_reclaims),
            String::new(),
        ),
        ("closed connections' permits back early (backend seen gone)", c.exits_seen.to_string(), String::new()),
        (
            "mean catalog lookup / connect / permit wait (of those that waited)",
            format!(
                "{:.2} / {:.2} / {:.2} ms ({})",
                c.mean_lookup_ms(),
                c.mean_connect_ms(),
                c.mean_permit_wait_ms(),
                c.permit_waits
            ),
            String::new(),
        ),
        ("budget timeouts (503)", c.budget_timeouts.to_string(), String::new()),
        ("cores: ops / postgres / other / stolen / idle", cpu_cell(&z.cpu), String::new()),
    ]
}

fn print_rows(rows: Vec<(&str, String, String)>) {
    let mut table = new_table(&["", "value", "target"]);
    for (name, value, target) in rows {
        table.add_row(vec![name.to_owned(), value, target]);
    }
    println!("{table}");
    println!();
}

fn print_open_loop(m: &ManyTenants) {
    let (i, c) = (&m.isolated.first_request, &m.isolated.counters);
    println!(
        "The cold path alone (fresh router, one client, {} cold tenants one after another, budget {}): first request \
         p50 {:.2} / p90 {:.2} / p99 {:.2} / max {:.2} ms. Inside it, on average: catalog lookup {:.2} ms \
         ({} lookups), connect (SCRAM, backend start) {:.2} ms ({} connects), wait for a budget permit \
         {:.2} ms ({} of the requests waited).",
        i.samples,
        m.budget,
        i.p50_ms,
        i.p90_ms,
        i.p99_ms,
        i.max_ms,
        c.mean_lookup_ms(),
        c.catalog_lookups,
        c.mean_connect_ms(),
        c.connects,
        c.mean_permit_wait_ms(),
        c.permit_waits
    );
    for o in &m.open_loops {
        println!(
            "The same tenants on a fresh router (every tenant cold again), now as an open loop: requests arrive \
             at Poisson times, {:.0} per second ({:.0} % of the closed loop's throughput), whether or not earlier \
             ones have answered; latency counts from each request's scheduled start.",
            o.rate,
            o.share * 100.0
        );
        print_rows(zipf_rows(&o.run, m.budget));
        let (f, load) = (&o.floor.first_request, &o.floor.load);
        println!(
            "Its floor: the same requests at the same times, served with no router (connections straight from this \
             process as the tenants' roles, under the same budget, closed ones not waited for; no HTTP, token or \
             catalog): first request p50 {:.2} / p90 {:.2} / p99 {:.2} / max {:.2} ms ({} tenants); {} requests, {} \
             errors, {:.1} % connected; peak connections seen by the server {}; cores: ops / postgres / other / stolen \
             / idle {}.",
            f.p50_ms,
            f.p90_ms,
            f.p99_ms,
            f.max_ms,
            f.samples,
            load.requests,
            load.errors,
            100.0 * o.floor.connects as f64 / load.requests.max(1) as f64,
            o.floor.connections.peak_pg_stat_activity,
            cpu_cell(&o.floor.cpu)
        );
        println!();
    }
}

fn print_herd(h: &Herd) {
    println!(
        "Phase 3 — thundering herd: {} concurrent first requests (connections opened beforehand, released together) \
         for one tenant this router has never seen; share {} connections, acquire timeout raised to 120 s.",
        h.requests, h.share
    );
    let c = &h.counters;
    let mut table = new_table(&["", "value", "target"]);
    let rows: Vec<(&str, String, String)> = vec![
        ("catalog lookups", c.catalog_lookups.to_string(), format!("= {TARGET_HERD_LOOKUPS}")),
        ("pools created", c.pools_created.to_string(), "= 1".to_owned()),
        ("connects", c.connects.to_string(), format!("≤ {}", h.share)),
        ("errors", format!("{} {}", h.errors, kinds(&h.error_kinds)), "0".to_owned()),
        (
            "latency p50 / p90 / p99 / max",
            format!(
                "{:.1} / {:.1} / {:.1} / {:.1} ms",
                h.latency.p50_ms, h.latency.p90_ms, h.latency.p99_ms, h.latency.max_ms
            ),
            String::new(),
        ),
        ("all answered after", format!("{:.0} ms", h.wall_ms), String::new()),
    ];
    for (name, value, target) in rows {
        table.add_row(vec![name.to_owned(), value, target]);
    }
    println!("{table}");
    println!();
}

fn print_memory(m: &Memory) {
    println!(
        "Phase 4 — memory per cached tenant, measured in a fresh ops process holding only a router and {} HTTP \
         clients (this one keeps hundreds of MiB that provisioning's argon2 hashes freed, which would hide the \
         growth): its RSS (VmRSS) before and after touching each of the {} active tenants once, after looking up \
         the route of every other catalog tenant without a request, and after retiring every pool. The allocator \
         keeps freed memory and RSS moves in pages, so treat these as estimates.",
        m.touch_clients, m.tenants_touched
    );
    let mut table = new_table(&["", "value"]);
    let f = &m.first_request_light_load;
    let rows: Vec<(&str, String)> = vec![
        (
            "first request per tenant, light load (the touches)",
            format!(
                "p50 {:.2} / p90 {:.2} / p99 {:.2} / max {:.2} ms ({} clients)",
                f.p50_ms, f.p90_ms, f.p99_ms, f.max_ms, m.touch_clients
            ),
        ),
        ("RSS before", format!("{} KiB", m.rss_before_kib)),
        (
            "after touching every active tenant",
            format!(
                "{} KiB: {} routes, {} pools, {} open connections ({} errors)",
                m.rss_after_touch_kib,
                m.cached_routes_after_touch,
                m.pools_after_touch,
                m.open_connections_after_touch,
                m.touch_errors
            ),
        ),
        (
            "per touched tenant (route + pool + its part of the idle connections)",
            format!("{:.1} KiB", m.kib_per_touched_tenant),
        ),
        (
            "after looking up the other routes",
            format!(
                "{} KiB: {} more routes looked up ({} failed), {} cached in all",
                m.rss_after_routes_kib, m.extra_routes, m.route_lookup_failures, m.cached_routes_after_lookups
            ),
        ),
        ("per cached route alone", format!("{:.2} KiB", m.kib_per_route_only)),
        (
            "after retiring every pool",
            format!(
                "{} KiB: {} pools, {} open connections",
                m.rss_after_retire_kib, m.pools_after_retire, m.open_connections_after_retire
            ),
        ),
    ];
    for (name, value) in rows {
        table.add_row(vec![name.to_owned(), value]);
    }
    println!("{table}");
    println!();
}

fn cpu_cell(cpu: &CpuShare) -> String {
    format!(
        "{:.2} / {:.2} / {:.2} / {:.2} / {:.2}",
        cpu.ops_cores, cpu.postgres_cores, cpu.other_cores, cpu.stolen_cores, cpu.idle_cores
    )
}

/// Core-seconds of this process and Postgres per request, in µs.
fn cpu_per_request_us(load: &LoadStats, cpu: &CpuShare) -> f64 {
    (cpu.ops_cores + cpu.postgres_cores) / load.requests_per_s * 1e6
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn kinds(errors: &BTreeMap<String, u64>) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let list: Vec<String> = errors.iter().map(|(kind, n)| format!("{kind}: {n}")).collect();
    format!("({})", list.join(", "))
}

fn yes_no(met: bool) -> String {
    if met { "yes" } else { "NO" }.to_owned()
}

fn new_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(header.to_vec());
    for i in 1..header.len() {
        if let Some(column) = table.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_samples_follow_one_over_rank() {
        let zipf = Zipf::new(100, 1.0);
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = [0u32; 100];
        let draws = 200_000;
        for _ in 0..draws {
            counts[zipf.sample(&mut rng)] += 1;
        }
        let harmonic: f64 = (1..=100).map(|k| 1.0 / k as f64).sum();
        for rank in [0usize, 1, 9, 99] {
            let expected = f64::from(draws) / ((rank + 1) as f64 * harmonic);
            let seen = f64::from(counts[rank]);
            assert!((seen - expected).abs() < 0.1 * expected + 30.0, "rank {rank}: {seen} vs {expected}");
        }
    }

    #[test]
    fn proc_stat_fields_are_counted_after_the_command_name() {
        let stat = "4242 (tokio rt) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 75 30 12 20 0 9 0 1234";
        let s = parse_proc_stat(stat).expect("parses");
        assert_eq!((s.ppid, s.utime, s.stime, s.cutime, s.cstime), (17, 250, 75, 30, 12));
    }

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tops\nVmPeak:\t  2000 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(12345));
        assert_eq!(parse_vm_rss("Name:\tops\n"), None);
    }
}

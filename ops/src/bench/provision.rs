//! `ops bench provision`: tenant provisioning latency through the control plane's HTTP API,
//! printed next to a raw `CREATE ROLE` + `CREATE DATABASE … TEMPLATE` baseline measured on the
//! same server in the same run, and the argon2id hash time that provisioning spends on purpose.
//!
//! The figures are reported, never asserted: missing the target is a finding, not a failure.
//! The command fails only when something breaks (a provisioning error, an unreachable server).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use comfy_table::{CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use control_plane::domain::{DbName, RoleName};
use control_plane::fleet::CreateDatabaseStrategy;
use control_plane::identity::password;
use control_plane::provision::SparePool;
use control_plane::secrets::MasterKey;
use control_plane::{App, Config};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use local_postgres::LocalCluster;
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Tenants provisioned before measuring, so connection set-up, first-use caches and the
/// first checkpoints do not land in the sample.
const WARM_UP_TENANTS: u32 = 2;
/// argon2id hashes timed for the same-run hash figure.
const HASH_SAMPLES: u32 = 30;
/// `(API p50 − hash p50) / raw baseline p50` should be at most this.
const TARGET_RATIO: f64 = 1.5;
/// The admin password of every benchmark tenant; it passes the signup strength rules.
const TENANT_PASSWORD: &str = "Str0ng&Secret!";

#[derive(Args)]
pub struct ProvisionBenchArgs {
    /// Tenants in the measured sample, provisioned one after another through the API.
    #[arg(long, default_value_t = 200)]
    tenants: u32,
    /// Keep provisioning up to this many tenants in total and report latency per block of
    /// `--tenants` (0 = skip).
    #[arg(long, default_value_t = 1000)]
    scale_to: u32,
    /// `CREATE DATABASE` samples per strategy (FILE_COPY, WAL_LOG) in the raw baseline.
    #[arg(long, default_value_t = 100)]
    baseline_samples: u32,
    /// Clients of the concurrent throughput phase, which provisions `--tenants` more tenants
    /// (0 = skip).
    #[arg(long, default_value_t = 4)]
    concurrency: u32,
    /// Bench this server (a superuser URL) instead of a private durable cluster. Everything the
    /// run creates there is dropped at the end.
    #[arg(long)]
    database_url: Option<String>,
    /// Use a throwaway cluster tuned for tests (fsync=off, …): quick, but not representative.
    #[arg(long, conflicts_with = "database_url")]
    fsync_off: bool,
    /// Spare databases per server (the control plane's `NEXACORE_SPARE_DATABASES`) while the
    /// API phases run; 0 = every signup builds its own database.
    #[arg(long, default_value_t = 2)]
    spares: u32,
    /// After the API phases, this many more signups with the spare pool off, for comparison
    /// (0 = skip).
    #[arg(long, default_value_t = 100)]
    without_spares: u32,
    /// Print a machine-readable JSON summary on stdout instead of tables.
    #[arg(long)]
    json: bool,
}

/// The flags, checked and resolved.
struct Settings {
    /// Size of the measured sample and of each scaling block.
    block: u32,
    /// Tenants provisioned sequentially in all (the sample plus the scaling blocks).
    sequential_total: u32,
    baseline_samples: u32,
    concurrency: u32,
    spares: u32,
    without_spares: u32,
    server: ServerChoice,
    json: bool,
}

enum ServerChoice {
    Durable,
    Throwaway,
    External(String),
}

impl Settings {
    fn resolve(args: ProvisionBenchArgs) -> anyhow::Result<Self> {
        if args.tenants == 0 || args.baseline_samples == 0 {
            bail!("--tenants and --baseline-samples must be at least 1");
        }
        if args.scale_to != 0 && args.scale_to < args.tenants {
            bail!("--scale-to must be 0 (skip) or at least --tenants ({})", args.tenants);
        }
        let server = match (args.database_url, args.fsync_off) {
            (Some(url), _) => ServerChoice::External(url),
            (None, true) => ServerChoice::Throwaway,
            (None, false) => ServerChoice::Durable,
        };
        Ok(Self {
            block: args.tenants,
            sequential_total: args.scale_to.max(args.tenants),
            baseline_samples: args.baseline_samples,
            // More clients than tenants would leave some idle.
            concurrency: args.concurrency.min(args.tenants),
            spares: args.spares,
            // Without a pool in the main phases, the comparison would measure the same thing.
            without_spares: if args.spares == 0 { 0 } else { args.without_spares },
            server,
            json: args.json,
        })
    }

    /// Every tenant the run creates, so the server can be given room for them.
    fn tenants_created(&self) -> u32 {
        let concurrent = if self.concurrency > 0 { self.block } else { 0 };
        WARM_UP_TENANTS + self.sequential_total + concurrent + self.without_spares + self.spares
    }
}

pub async fn run(args: ProvisionBenchArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(args)?;
    let started = Instant::now();
    let names = RunNames::generate();
    let server = Server::start(&settings.server).await?;
    // Ctrl-C ends the measurement but not the clean-up: a durable cluster outlives a Ctrl-C
    // aimed at us by design, so only we can stop it.
    let outcome = tokio::select! {
        outcome = bench(&settings, &server, &names) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    let cleaned = server.clean_up(&names).await;
    let mut report = outcome?;
    cleaned.context("cleaning up after the benchmark")?;
    report.elapsed_s = started.elapsed().as_secs_f64();
    if settings.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// Names of what this run creates on the server; the random part keeps runs against a shared
/// server apart.
struct RunNames {
    id: String,
    catalog: DbName,
    template: DbName,
}

impl RunNames {
    fn generate() -> Self {
        let id = format!("{:08x}", rand::random::<u32>());
        let db = |prefix: &str| DbName::parse(&format!("{prefix}_{id}")).expect("a valid database name");
        Self { catalog: db("bench_catalog"), template: db("bench_tpl"), id }
    }

    fn baseline(&self, n: u32) -> (DbName, RoleName) {
        let name = format!("bl_{}_{n}", self.id);
        (DbName::parse(&name).expect("a valid database name"), RoleName::parse(&name).expect("a valid role name"))
    }

    fn slug(&self, tag: &str) -> String {
        format!("bench-{}-{tag}", self.id)
    }
}

/// The whole measurement: baseline first (it decides the strategy the API runs with), then the
/// hash, then the API phases, then the baseline again.
async fn bench(settings: &Settings, server: &Server, names: &RunNames) -> anyhow::Result<Report> {
    let admin_url = server.admin_url();
    let secrets = Secrets::generate();
    prepare_catalog_and_template(&admin_url, names, &secrets, settings.tenants_created()).await?;

    let (server_info, baseline) = measure_baseline(&admin_url, names, settings.baseline_samples).await?;
    let strategy = baseline.faster();
    let hash = measure_hash().await?;

    let app = RunningApp::start(app_config(&admin_url, names, &secrets, strategy, settings.spares)).await?;
    let api = ApiClient::new(&app, &secrets, names)?;
    let measured = measure_api(settings, &app, &api).await;
    app.stop().await?;
    let (sequential, concurrent) = measured?;

    let without_spares = match settings.without_spares {
        0 => None,
        n => {
            // Restarted with the pool off: its refiller retires and drops the spares left, and
            // the sample starts once they are gone.
            let app = RunningApp::start(app_config(&admin_url, names, &secrets, strategy, 0)).await?;
            let api = ApiClient::new(&app, &secrets, names)?;
            let measured = async {
                app.wait_for_spares(0).await?;
                let bar = progress(n, "API, spare pool off");
                let mut latencies = Vec::with_capacity(n as usize);
                for i in 1..=n {
                    latencies.push(api.provision(&format!("n{i}")).await?);
                    bar.inc(1);
                }
                bar.finish_and_clear();
                anyhow::Ok(latencies)
            }
            .await;
            app.stop().await?;
            Some(measured?)
        }
    };

    // Measured again after the API phases: the copy's cost drifts with the cluster's state
    // (checkpoints, WAL volume), and the ratio uses the lower of the two p50s (the stricter).
    let (_, baseline_after) = measure_baseline(&admin_url, names, settings.baseline_samples).await?;
    // Likewise the hash; it is subtracted, so the lower p50 is the stricter.
    let hash_after = measure_hash().await?;

    Ok(Report::new(
        settings,
        server,
        server_info,
        strategy,
        sequential,
        concurrent,
        without_spares,
        [hash, hash_after],
        [baseline, baseline_after],
    ))
}

// ---------------------------------------------------------------------------------------------
// The server

/// The Postgres server under test, and what stopping it involves.
enum Server {
    Durable(DurableCluster),
    Throwaway(LocalCluster),
    External(String),
}

impl Server {
    async fn start(choice: &ServerChoice) -> anyhow::Result<Self> {
        Ok(match choice {
            ServerChoice::Durable => Self::Durable(
                tokio::task::spawn_blocking(DurableCluster::start).await.context("starting Postgres panicked")??,
            ),
            ServerChoice::Throwaway => Self::Throwaway(
                tokio::task::spawn_blocking(LocalCluster::start_throwaway)
                    .await
                    .context("starting Postgres panicked")?
                    .context("starting a throwaway Postgres cluster")?,
            ),
            ServerChoice::External(url) => Self::External(url.clone()),
        })
    }

    fn admin_url(&self) -> String {
        match self {
            Self::Durable(cluster) => cluster.superuser_url(),
            Self::Throwaway(cluster) => cluster.superuser_url(),
            Self::External(url) => url.clone(),
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Self::Durable(_) => "private durable cluster",
            Self::Throwaway(_) => "private throwaway cluster (tuned for tests, not representative)",
            Self::External(_) => "--database-url",
        }
    }

    /// A private cluster goes with everything in it; on someone else's server, drop exactly
    /// what this run created.
    async fn clean_up(self, names: &RunNames) -> anyhow::Result<()> {
        match self {
            Self::Durable(cluster) => {
                tokio::task::spawn_blocking(move || cluster.stop()).await.context("stopping Postgres panicked")?
            }
            Self::Throwaway(cluster) => tokio::task::spawn_blocking(move || cluster.stop())
                .await
                .context("stopping Postgres panicked")?
                .context("stopping the throwaway Postgres cluster"),
            Self::External(url) => drop_run_objects(&url, names).await,
        }
    }
}

/// A persistent (fsync on, default durability) cluster in a temp directory that, unlike the
/// dev stack's, is stopped and deleted when done — on error and panic too, through `Drop`.
struct DurableCluster {
    cluster: Option<LocalCluster>,
    dir: PathBuf,
}

impl DurableCluster {
    fn start() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("nexacore-bench-{:08x}", rand::random::<u32>()));
        // The guard exists before the cluster, so a failed initdb still removes the directory.
        let mut guard = Self { cluster: None, dir };
        let cluster =
            LocalCluster::start_persistent(&guard.dir, None).context("starting a durable Postgres cluster")?;
        guard.cluster = Some(cluster);
        Ok(guard)
    }

    fn superuser_url(&self) -> String {
        self.cluster.as_ref().map(LocalCluster::superuser_url).unwrap_or_default()
    }

    fn stop(mut self) -> anyhow::Result<()> {
        self.shut_down()
    }

    /// Safe to call twice: the second call finds nothing left.
    fn shut_down(&mut self) -> anyhow::Result<()> {
        let stopped = match self.cluster.take() {
            Some(cluster) => cluster.stop().context("stopping the durable Postgres cluster"),
            None => Ok(()),
        };
        let removed = match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(anyhow!(e).context(format!("removing {}", self.dir.display())))
            }
            _ => Ok(()),
        };
        stopped.and(removed)
    }
}

impl Drop for DurableCluster {
    fn drop(&mut self) {
        if let Err(error) = self.shut_down() {
            tracing::warn!(dir = %self.dir.display(), error = %format!("{error:#}"), "benchmark cluster left behind");
        }
    }
}

/// Drops this run's tenants (as named in its catalog), baseline leftovers, catalog and
/// template. The schema-owner role stays: other control planes on this server may share it.
async fn drop_run_objects(admin_url: &str, names: &RunNames) -> anyhow::Result<()> {
    let admin = PgConnectOptions::from_str(admin_url).context("--database-url is not a postgres:// URL")?;
    let mut conn = PgConnection::connect_with(&admin).await.context("connecting to clean up")?;
    if database_exists(&mut conn, &names.catalog).await? {
        let mut catalog = PgConnection::connect_with(&admin.clone().database(names.catalog.as_str())).await?;
        // Spare databases carry tenant names (`t_<id>`) before any tenant adopts them.
        let tenants: Vec<(String, String)> = sqlx::query_as(
            "SELECT database_name, role_name FROM tenants
             UNION ALL SELECT 't_' || replace(id::text, '-', ''), 't_' || replace(id::text, '-', '') FROM spare_databases",
        )
        .fetch_all(&mut catalog)
        .await?;
        catalog.close().await.ok();
        for (db, role) in tenants {
            drop_database(&mut conn, &DbName::parse(&db).map_err(|e| anyhow!(e))?).await?;
            drop_role(&mut conn, &RoleName::parse(&role).map_err(|e| anyhow!(e))?).await?;
        }
    }
    // Normally dropped at the end of the baseline already; left only if it failed midway.
    let pattern = format!("bl\\_{}\\_%", names.id);
    let leftovers: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
        .bind(&pattern)
        .fetch_all(&mut conn)
        .await?;
    for db in leftovers {
        drop_database(&mut conn, &DbName::parse(&db).map_err(|e| anyhow!(e))?).await?;
    }
    let roles: Vec<String> = sqlx::query_scalar("SELECT rolname FROM pg_roles WHERE rolname LIKE $1")
        .bind(&pattern)
        .fetch_all(&mut conn)
        .await?;
    for role in roles {
        drop_role(&mut conn, &RoleName::parse(&role).map_err(|e| anyhow!(e))?).await?;
    }
    drop_database(&mut conn, &names.catalog).await?;
    drop_database(&mut conn, &names.template).await?;
    conn.close().await.ok();
    Ok(())
}

async fn database_exists(conn: &mut PgConnection, db: &DbName) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(db.as_str())
        .fetch_one(conn)
        .await
}

/// Drops a database if it exists, ending its sessions; a template must first stop being one.
async fn drop_database(conn: &mut PgConnection, db: &DbName) -> sqlx::Result<()> {
    let is_template: Option<bool> = sqlx::query_scalar("SELECT datistemplate FROM pg_database WHERE datname = $1")
        .bind(db.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    match is_template {
        None => return Ok(()),
        Some(true) => execute(conn, format!("ALTER DATABASE {} IS_TEMPLATE false", db.quoted())).await?,
        Some(false) => {}
    }
    execute(conn, format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.quoted())).await
}

async fn drop_role(conn: &mut PgConnection, role: &RoleName) -> sqlx::Result<()> {
    execute(conn, format!("DROP ROLE IF EXISTS {}", role.quoted())).await
}

/// Runs DDL built from checked identifiers, in one round trip (simple query protocol).
async fn execute(conn: &mut PgConnection, sql: String) -> sqlx::Result<()> {
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await.map(drop)
}

// ---------------------------------------------------------------------------------------------
// The control plane

/// The secrets of the run's control plane; both builds must share them (the catalog holds the
/// server URL sealed with the master key).
struct Secrets {
    master_key: String,
    operator_token: String,
}

impl Secrets {
    fn generate() -> Self {
        let token: [u8; 24] = rand::random();
        Self {
            master_key: MasterKey::generate_base64(),
            operator_token: token.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

fn app_config(
    admin_url: &str,
    names: &RunNames,
    secrets: &Secrets,
    strategy: CreateDatabaseStrategy,
    spares: u32,
) -> Config {
    let mut config = Config::new(
        admin_url.to_owned().into(),
        secrets.master_key.clone().into(),
        secrets.operator_token.clone().into(),
    );
    config.listen = ([127, 0, 0, 1], 0).into();
    config.catalog_database = names.catalog.clone();
    config.template_database = names.template.clone();
    config.create_database_strategy = strategy;
    config.spare_databases_per_server = spares;
    // Operator-token calls bypass it anyway; high so that nothing is ever throttled.
    config.signup_limit_per_hour = 1_000_000;
    config
}

/// Creates the catalog and the template through `App::build`, the same path production uses,
/// so the baseline copies exactly the template tenants are copied from. The baseline has to
/// run before the serving app is configured (it picks the strategy), and the strategy is
/// fixed at build, so this first app is built only to prepare, and dropped unserved.
async fn prepare_catalog_and_template(
    admin_url: &str,
    names: &RunNames,
    secrets: &Secrets,
    tenants: u32,
) -> anyhow::Result<()> {
    let config = app_config(admin_url, names, secrets, CreateDatabaseStrategy::FileCopy, 0);
    drop(App::build(config).await.context("starting the control plane")?);
    // The primary server registers with room for 1,000 tenants; a scaling run may want more.
    let options = PgConnectOptions::from_str(admin_url)?.database(names.catalog.as_str());
    let mut catalog = PgConnection::connect_with(&options).await.context("connecting to the catalog")?;
    sqlx::query("UPDATE database_servers SET capacity = greatest(capacity, $1)")
        .bind(i32::try_from(tenants).unwrap_or(i32::MAX))
        .execute(&mut catalog)
        .await?;
    catalog.close().await.ok();
    Ok(())
}

/// The control plane, serving in this process on a free port.
struct RunningApp {
    base_url: String,
    catalog: PgPool,
    spares: Arc<SparePool>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningApp {
    async fn start(config: Config) -> anyhow::Result<Self> {
        let catalog = PgPoolOptions::new().max_connections(1).connect_lazy_with(
            PgConnectOptions::from_str(config.admin_database_url.expose_secret())?
                .database(config.catalog_database.as_str()),
        );
        let app = App::build(config).await.context("starting the control plane")?;
        let spares = app.spare_pool();
        let base_url = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = oneshot::channel::<()>();
        // Also stops if `stop` is dropped (an interrupted run).
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        Ok(Self { base_url, catalog, spares, stop, task })
    }

    /// Waits until the catalog holds exactly `count` spare databases, all ready (the pool at
    /// rest), so a phase starts from the state an idle platform is in.
    async fn wait_for_spares(&self, count: i64) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (ready, all): (i64, i64) =
                sqlx::query_as("SELECT count(*) FILTER (WHERE status = 'ready'), count(*) FROM spare_databases")
                    .fetch_one(&self.catalog)
                    .await?;
            if ready == count && all == count {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the spare pool did not settle at {count} (ready {ready}, all {all})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.catalog.close().await;
        let _ = self.stop.send(());
        self.task.await.context("the control plane panicked")?.context("the control plane failed")
    }
}

/// Signs companies up through `POST /tenants` with the operator token.
struct ApiClient<'a> {
    http: reqwest::Client,
    url: String,
    token: String,
    names: &'a RunNames,
}

impl<'a> ApiClient<'a> {
    fn new(app: &RunningApp, secrets: &Secrets, names: &'a RunNames) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build()?;
        Ok(Self { http, url: format!("{}/tenants", app.base_url), token: secrets.operator_token.clone(), names })
    }

    /// Provisions one tenant and returns the request's round-trip time; anything but 201 is
    /// an error that ends the benchmark.
    async fn provision(&self, tag: &str) -> anyhow::Result<Duration> {
        let slug = self.names.slug(tag);
        let body = signup_body(&slug);
        let started = Instant::now();
        let response = self.http.post(&self.url).bearer_auth(&self.token).json(&body).send().await?;
        let status = response.status();
        let text = response.text().await?;
        let elapsed = started.elapsed();
        if status != reqwest::StatusCode::CREATED {
            bail!("provisioning tenant {slug} failed: HTTP {status}: {text}");
        }
        Ok(elapsed)
    }
}

fn signup_body(slug: &str) -> Value {
    json!({
        "company_name": format!("Company {slug}"),
        "slug": slug,
        "admin": {
            "email": format!("admin@{slug}.example.com"),
            "password": TENANT_PASSWORD,
            "full_name": "Ada Admin",
        },
        "timezone": "Europe/Berlin",
        "currency": "EUR",
        "chart_template": "standard",
    })
}

// ---------------------------------------------------------------------------------------------
// Measurements

/// Latencies in microseconds, 1 µs to 10 min, 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

fn histogram_of(latencies: &[Duration]) -> Histogram<u64> {
    let mut h = histogram();
    for latency in latencies {
        record(&mut h, *latency);
    }
    h
}

fn record(h: &mut Histogram<u64>, latency: Duration) {
    h.saturating_record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1));
}

fn progress(len: u32, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(u64::from(len)).with_prefix(what.to_owned());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} {per_sec:>10} eta {eta}")
            .expect("a valid progress template")
            .progress_chars("=> "),
    );
    bar
}

struct Baseline {
    file_copy: Histogram<u64>,
    wal_log: Histogram<u64>,
}

impl Baseline {
    fn faster(&self) -> CreateDatabaseStrategy {
        if self.wal_log.value_at_quantile(0.5) < self.file_copy.value_at_quantile(0.5) {
            CreateDatabaseStrategy::WalLog
        } else {
            CreateDatabaseStrategy::FileCopy
        }
    }

    fn of(&self, strategy: CreateDatabaseStrategy) -> &Histogram<u64> {
        match strategy {
            CreateDatabaseStrategy::FileCopy => &self.file_copy,
            CreateDatabaseStrategy::WalLog => &self.wal_log,
        }
    }

    fn of_mut(&mut self, strategy: CreateDatabaseStrategy) -> &mut Histogram<u64> {
        match strategy {
            CreateDatabaseStrategy::FileCopy => &mut self.file_copy,
            CreateDatabaseStrategy::WalLog => &mut self.wal_log,
        }
    }
}

#[derive(Serialize)]
struct ServerInfo {
    version: String,
    fsync: String,
}

/// The raw baseline over one connection: `CREATE ROLE` + `CREATE DATABASE … TEMPLATE` of the
/// control plane's own template (it holds no connection to it while idle), timed together,
/// for both strategies. Everything it creates is dropped again, also when it fails.
async fn measure_baseline(admin_url: &str, names: &RunNames, samples: u32) -> anyhow::Result<(ServerInfo, Baseline)> {
    let mut conn = PgConnection::connect(admin_url).await.context("connecting for the raw baseline")?;
    let info = ServerInfo {
        version: sqlx::query_scalar("SHOW server_version").fetch_one(&mut conn).await?,
        fsync: sqlx::query_scalar("SHOW fsync").fetch_one(&mut conn).await?,
    };
    let mut baseline = Baseline { file_copy: histogram(), wal_log: histogram() };
    let mut created = Vec::new();
    let bar = progress(2 * samples, "raw CREATE DATABASE");
    let measured = async {
        for i in 0..samples {
            for strategy in alternating(i) {
                let (db, role) = names.baseline(2 * i + u32::from(strategy == CreateDatabaseStrategy::WalLog));
                let started = Instant::now();
                execute(&mut conn, format!("CREATE ROLE {} LOGIN", role.quoted())).await?;
                created.push((db.clone(), role.clone()));
                execute(
                    &mut conn,
                    format!(
                        "CREATE DATABASE {} OWNER {} TEMPLATE {} STRATEGY {}",
                        db.quoted(),
                        role.quoted(),
                        names.template.quoted(),
                        strategy.sql_keyword()
                    ),
                )
                .await?;
                record(baseline.of_mut(strategy), started.elapsed());
                bar.inc(1);
            }
        }
        anyhow::Ok(())
    }
    .await;
    bar.finish_and_clear();
    for (db, role) in &created {
        drop_database(&mut conn, db).await?;
        drop_role(&mut conn, role).await?;
    }
    conn.close().await.ok();
    measured.context("measuring the raw baseline")?;
    Ok((info, baseline))
}

/// Alternates which strategy goes first, so drift over the run (checkpoints, cache warmth)
/// does not favour one of them.
fn alternating(i: u32) -> [CreateDatabaseStrategy; 2] {
    use CreateDatabaseStrategy::{FileCopy, WalLog};
    if i.is_multiple_of(2) { [FileCopy, WalLog] } else { [WalLog, FileCopy] }
}

/// The argon2id hash exactly as provisioning runs it (on a blocking thread), timed alone.
async fn measure_hash() -> anyhow::Result<Histogram<u64>> {
    let mut h = histogram();
    let bar = progress(HASH_SAMPLES, "argon2id hash");
    for _ in 0..HASH_SAMPLES {
        let elapsed = tokio::task::spawn_blocking(|| {
            let password = TENANT_PASSWORD.to_owned().into();
            let started = Instant::now();
            std::hint::black_box(password::hash(&password));
            started.elapsed()
        })
        .await
        .context("password hashing panicked")?;
        record(&mut h, elapsed);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(h)
}

/// Sequential latencies of every measured tenant, and the wall time of each block.
struct Sequential {
    latencies: Vec<Duration>,
    block_walls: Vec<Duration>,
    /// Signups (of all blocks) that adopted a spare database.
    adopted: u64,
}

struct Concurrent {
    clients: u32,
    latencies: Vec<Duration>,
    wall: Duration,
    adopted: u64,
}

async fn measure_api(
    settings: &Settings,
    app: &RunningApp,
    api: &ApiClient<'_>,
) -> anyhow::Result<(Sequential, Option<Concurrent>)> {
    for i in 0..WARM_UP_TENANTS {
        api.provision(&format!("w{i}")).await.context("warm-up")?;
    }
    app.wait_for_spares(i64::from(settings.spares)).await?;
    let before = app.spares.stats().adopted;
    let mut sequential = provision_sequentially(api, settings.sequential_total, settings.block).await?;
    sequential.adopted = app.spares.stats().adopted - before;
    let concurrent = match settings.concurrency {
        0 => None,
        clients => {
            app.wait_for_spares(i64::from(settings.spares)).await?;
            let before = app.spares.stats().adopted;
            let mut concurrent = provision_concurrently(api, clients, settings.block).await?;
            concurrent.adopted = app.spares.stats().adopted - before;
            Some(concurrent)
        }
    };
    Ok((sequential, concurrent))
}

async fn provision_sequentially(api: &ApiClient<'_>, total: u32, block: u32) -> anyhow::Result<Sequential> {
    let bar = progress(total, "API, sequential");
    let mut latencies = Vec::with_capacity(total as usize);
    let mut block_walls = Vec::new();
    let mut block_started = Instant::now();
    for n in 1..=total {
        latencies.push(api.provision(&format!("s{n}")).await?);
        bar.inc(1);
        if n.is_multiple_of(block) || n == total {
            block_walls.push(block_started.elapsed());
            block_started = Instant::now();
        }
    }
    bar.finish_and_clear();
    Ok(Sequential { latencies, block_walls, adopted: 0 })
}

/// `tenants` tenants split over `clients` clients that each provision one after another.
async fn provision_concurrently(api: &ApiClient<'_>, clients: u32, tenants: u32) -> anyhow::Result<Concurrent> {
    let bar = progress(tenants, &format!("API, {clients} concurrent"));
    let started = Instant::now();
    let runs = (0..clients).map(|client| {
        let count = tenants / clients + u32::from(client < tenants % clients);
        let bar = &bar;
        async move {
            let mut latencies = Vec::with_capacity(count as usize);
            for n in 1..=count {
                latencies.push(api.provision(&format!("c{client}-{n}")).await?);
                bar.inc(1);
            }
            anyhow::Ok(latencies)
        }
    });
    let latencies = futures::future::try_join_all(runs).await?.concat();
    let wall = started.elapsed();
    bar.finish_and_clear();
    Ok(Concurrent { clients, latencies, wall, adopted: 0 })
}

// ---------------------------------------------------------------------------------------------
// The report

#[derive(Serialize)]
struct Stats {
    samples: u64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenants_per_s: Option<f64>,
}

impl Stats {
    fn of(h: &Histogram<u64>, wall: Option<Duration>) -> Self {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Self {
            samples: h.len(),
            p50_ms: ms(0.5),
            p95_ms: ms(0.95),
            p99_ms: ms(0.99),
            max_ms: h.max() as f64 / 1000.0,
            tenants_per_s: wall.map(|w| h.len() as f64 / w.as_secs_f64()),
        }
    }
}

#[derive(Serialize)]
struct Report {
    server: &'static str,
    postgres: ServerInfo,
    /// The strategy the API ran with: the baseline's faster one.
    api_strategy: &'static str,
    /// The spare pool's size per server during the API phases.
    spares_per_server: u32,
    api: Stats,
    /// Sequential signups (sample and scaling blocks) that adopted a spare, of `api_total`.
    api_adopted: u64,
    api_total: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_concurrent: Option<ConcurrentStats>,
    /// Sequential signups with the spare pool off, and their ratio to the baseline.
    #[serde(skip_serializing_if = "Option::is_none")]
    api_without_spares: Option<Stats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ratio_without_spares: Option<f64>,
    argon2id_hash: Stats,
    api_minus_hash_p50_ms: f64,
    raw_file_copy: Stats,
    raw_wal_log: Stats,
    /// The API's strategy measured again after the API phases.
    raw_after: Stats,
    /// The lower of the two p50s of the API's strategy (before and after the API phases).
    baseline_p50_ms: f64,
    /// `(API p50 − hash p50) / baseline p50`.
    ratio: f64,
    target_ratio: f64,
    target_met: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    scaling: Option<Scaling>,
    elapsed_s: f64,
}

#[derive(Serialize)]
struct ConcurrentStats {
    clients: u32,
    adopted: u64,
    #[serde(flatten)]
    stats: Stats,
}

#[derive(Serialize)]
struct Scaling {
    blocks: Vec<Block>,
    /// Last block's p50 over the first's: ≈ 1 when per-tenant cost stays flat (linear scaling).
    last_over_first_p50: f64,
    total_tenants: usize,
    total_tenants_per_s: f64,
}

#[derive(Serialize)]
struct Block {
    first: usize,
    last: usize,
    #[serde(flatten)]
    stats: Stats,
}

impl Report {
    #[allow(clippy::too_many_arguments, reason = "assembles the one report from each measurement")]
    fn new(
        settings: &Settings,
        server: &Server,
        postgres: ServerInfo,
        strategy: CreateDatabaseStrategy,
        sequential: Sequential,
        concurrent: Option<Concurrent>,
        without_spares: Option<Vec<Duration>>,
        hashes: [Histogram<u64>; 2],
        baselines: [Baseline; 2],
    ) -> Self {
        let block = settings.block as usize;
        // The measured sample is the first block.
        let sample = &sequential.latencies[..block];
        let api = Stats::of(&histogram_of(sample), Some(sequential.block_walls[0]));
        // The sample with the lower p50 (the stricter, as the hash is subtracted).
        let [before, after_api] = hashes.map(|h| Stats::of(&h, None));
        let hash = if after_api.p50_ms < before.p50_ms { after_api } else { before };
        let [baseline, after] = baselines;
        let baseline_after_p50_ms = Stats::of(after.of(strategy), None).p50_ms;
        let baseline_p50_ms = Stats::of(baseline.of(strategy), None).p50_ms.min(baseline_after_p50_ms);
        let api_minus_hash_p50_ms = api.p50_ms - hash.p50_ms;
        let ratio = api_minus_hash_p50_ms / baseline_p50_ms;
        let scaling = (sequential.latencies.len() > block).then(|| scaling(&sequential, block));
        let api_without_spares = without_spares.map(|l| Stats::of(&histogram_of(&l), None));
        let ratio_without_spares = api_without_spares.as_ref().map(|w| (w.p50_ms - hash.p50_ms) / baseline_p50_ms);
        Self {
            server: server.describe(),
            postgres,
            api_strategy: strategy.sql_keyword(),
            spares_per_server: settings.spares,
            api_adopted: sequential.adopted,
            api_total: sequential.latencies.len(),
            api_without_spares,
            ratio_without_spares,
            api_concurrent: concurrent.map(|c| ConcurrentStats {
                clients: c.clients,
                adopted: c.adopted,
                stats: Stats::of(&histogram_of(&c.latencies), Some(c.wall)),
            }),
            api,
            argon2id_hash: hash,
            api_minus_hash_p50_ms,
            raw_file_copy: Stats::of(&baseline.file_copy, None),
            raw_wal_log: Stats::of(&baseline.wal_log, None),
            raw_after: Stats::of(after.of(strategy), None),
            baseline_p50_ms,
            ratio,
            target_ratio: TARGET_RATIO,
            target_met: ratio <= TARGET_RATIO,
            scaling,
            elapsed_s: 0.0,
        }
    }
}

fn scaling(sequential: &Sequential, block: usize) -> Scaling {
    let blocks: Vec<Block> = sequential
        .latencies
        .chunks(block)
        .zip(&sequential.block_walls)
        .enumerate()
        .map(|(i, (latencies, wall))| Block {
            first: i * block + 1,
            last: i * block + latencies.len(),
            stats: Stats::of(&histogram_of(latencies), Some(*wall)),
        })
        .collect();
    let first = blocks.first().map_or(f64::NAN, |b| b.stats.p50_ms);
    let last = blocks.last().map_or(f64::NAN, |b| b.stats.p50_ms);
    let wall: Duration = sequential.block_walls.iter().sum();
    Scaling {
        last_over_first_p50: last / first,
        total_tenants: sequential.latencies.len(),
        total_tenants_per_s: sequential.latencies.len() as f64 / wall.as_secs_f64(),
        blocks,
    }
}

fn print_report(r: &Report) {
    println!(
        "Server: {} — PostgreSQL {}, fsync={}; the API ran with STRATEGY {} (the faster raw one).",
        r.server, r.postgres.version, r.postgres.fsync, r.api_strategy
    );
    println!("{}", latency_table(r));
    print!(
        "Spare pool: {} per server; sequential signups that adopted a spare: {} of {}",
        r.spares_per_server, r.api_adopted, r.api_total
    );
    match &r.api_concurrent {
        Some(c) => println!("; concurrent: {} of {}.", c.adopted, c.stats.samples),
        None => println!("."),
    }
    println!("{}", target_table(r));
    if let Some(scaling) = &r.scaling {
        println!("{}", scaling_table(scaling));
        println!(
            "Scaling: last block p50 / first block p50 = {:.2} (linear scaling ⇒ ≈ 1); {} tenants at {:.2} tenants/s overall.",
            scaling.last_over_first_p50, scaling.total_tenants, scaling.total_tenants_per_s
        );
    }
    println!("The run took {:.0} s.", r.elapsed_s);
}

fn ms(value: f64) -> String {
    format!("{value:.1}")
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

fn stats_row(name: String, s: &Stats) -> Vec<String> {
    vec![
        name,
        s.samples.to_string(),
        ms(s.p50_ms),
        ms(s.p95_ms),
        ms(s.p99_ms),
        ms(s.max_ms),
        s.tenants_per_s.map_or_else(String::new, |t| format!("{t:.2}")),
    ]
}

fn latency_table(r: &Report) -> Table {
    let mut table = new_table(&["", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "tenants/s"]);
    table.add_row(stats_row("API provisioning (sequential)".into(), &r.api));
    if let Some(c) = &r.api_concurrent {
        table.add_row(stats_row(format!("API provisioning ({} concurrent clients)", c.clients), &c.stats));
    }
    if let Some(w) = &r.api_without_spares {
        table.add_row(stats_row("API provisioning, spare pool off (sequential)".into(), w));
    }
    table.add_row(stats_row("argon2id hash (19 MiB, t=2, p=1; the lower of two samples)".into(), &r.argon2id_hash));
    table.add_row(vec!["API minus hash (p50)".into(), String::new(), ms(r.api_minus_hash_p50_ms)]);
    let marker = |keyword: &str| if r.api_strategy == keyword { " ← baseline" } else { "" };
    // Both rows of the API's strategy are marked; the ratio uses the lower p50.
    table.add_row(stats_row(format!("raw CREATE ROLE + DATABASE, FILE_COPY{}", marker("FILE_COPY")), &r.raw_file_copy));
    table.add_row(stats_row(format!("raw CREATE ROLE + DATABASE, WAL_LOG{}", marker("WAL_LOG")), &r.raw_wal_log));
    table.add_row(stats_row(format!("raw, {}, after the API phases ← baseline", r.api_strategy), &r.raw_after));
    table.add_row(vec!["baseline p50 (the lower of the two)".into(), String::new(), ms(r.baseline_p50_ms)]);
    table
}

fn target_table(r: &Report) -> Table {
    let mut table = new_table(&["", "value", "target", "met"]);
    table.add_row(vec![
        "(API p50 − hash p50) / raw baseline p50".to_owned(),
        format!("{:.2}", r.ratio),
        format!("≤ {TARGET_RATIO}"),
        if r.target_met { "yes" } else { "no" }.to_owned(),
    ]);
    if let Some(ratio) = r.ratio_without_spares {
        table.add_row(vec![
            "the same, spare pool off".to_owned(),
            format!("{ratio:.2}"),
            format!("≤ {TARGET_RATIO}"),
            if ratio <= TARGET_RATIO { "yes" } else { "no" }.to_owned(),
        ]);
    }
    table
}

fn scaling_table(s: &Scaling) -> Table {
    let mut table = new_table(&["tenants", "p50 ms", "p99 ms", "tenants/s"]);
    for b in &s.blocks {
        table.add_row(vec![
            format!("{}–{}", b.first, b.last),
            ms(b.stats.p50_ms),
            ms(b.stats.p99_ms),
            b.stats.tenants_per_s.map_or_else(String::new, |t| format!("{t:.2}")),
        ]);
    }
    table
}

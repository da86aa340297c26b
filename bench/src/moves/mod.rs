//! `moves`: how long a writer cannot write while its tenant moves to another server, for a
//! 10 MB and a 100 MB tenant, beside two baselines measured in the same run on the same
//! tenant: a plain fence and unfence (maintenance on, then off: the floor any cut-over pays),
//! and the time a snapshot copy (`pg_dump | pg_restore` to the other server) would keep the
//! tenant fenced if the move copied under the fence instead of replicating.
//!
//! The writer posts an employee through a router every 10 ms; its unavailability is the longest
//! gap between two acknowledged writes while the operation runs (the 10 ms cadence included).
//! Two private throwaway clusters (fsync off) on this machine are the two servers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tenancy::DbName;

use crate::harness::output::{new_table, target_row};
use crate::harness::{platform, postgres};

#[derive(Args)]
pub struct MovesBenchArgs {
    /// Tenant sizes to move, in MB (database size on disk).
    #[arg(long, value_delimiter = ',', default_values_t = [10u64, 100])]
    sizes_mb: Vec<u64>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct SizeReport {
    size_mb: f64,
    /// The move as the control plane recorded it (maintenance on → route switched, unfenced).
    fence_ms: i64,
    /// Longest gap between acknowledged writes during the move.
    move_gap_ms: f64,
    /// Writes refused (503 `maintenance`) during the move; other failures.
    refused: usize,
    failed: usize,
    move_total_s: f64,
    /// Baseline: longest gap during a plain fence + unfence of the same tenant.
    fence_only_gap_ms: f64,
    /// Baseline: `pg_dump | pg_restore` of the same database to the other server.
    dump_restore_s: f64,
    /// Move gap over the plain fence's gap.
    ratio_to_fence: f64,
}

/// What the writer saw.
struct Writes {
    max_gap: Duration,
    refused: usize,
    failed: usize,
}

pub async fn run(args: MovesBenchArgs) -> anyhow::Result<()> {
    let (a, b) = tokio::try_join!(postgres::start_throwaway(Vec::new()), postgres::start_throwaway(Vec::new()))?;
    let outcome = measure(&args, &a.superuser_url(), &b.superuser_url()).await;
    postgres::stop_throwaway(a).await?;
    postgres::stop_throwaway(b).await?;
    let reports = outcome?;
    crate::harness::output::emit(args.json, &reports, |reports| {
        let mut table = new_table(&[
            "tenant",
            "fence (server)",
            "writer gap: move",
            "refused",
            "gap: fence only",
            "ratio",
            "dump+restore",
            "move total",
        ]);
        for r in reports {
            table.add_row([
                format!("{:.0} MB", r.size_mb),
                format!("{} ms", r.fence_ms),
                format!("{:.0} ms", r.move_gap_ms),
                format!("{} ({} failed)", r.refused, r.failed),
                format!("{:.0} ms", r.fence_only_gap_ms),
                format!("{:.2}", r.ratio_to_fence),
                format!("{:.1} s", r.dump_restore_s),
                format!("{:.1} s", r.move_total_s),
            ]);
        }
        println!("{table}");
        let mut targets = new_table(&["target", "measured", "goal", "met"]);
        for r in reports {
            targets.add_row(target_row(
                format!("writer gap, {:.0} MB move", r.size_mb),
                format!("{:.0} ms", r.move_gap_ms),
                "< 1000 ms".into(),
                r.move_gap_ms < 1000.0 && r.failed == 0,
            ));
        }
        println!("{targets}");
    })
}

async fn measure(args: &MovesBenchArgs, a: &str, b: &str) -> anyhow::Result<Vec<SizeReport>> {
    let catalog = DbName::parse("bench_moves_catalog").map_err(|e| anyhow::anyhow!(e))?;
    let mut app = platform::start(platform::builder(a, move |config| {
        config.catalog_database = catalog;
        config.spare_databases_per_server = 0;
    }))
    .await?;
    let router = app.start_router(|_| {}).await?;
    let router_url = router.url.clone();
    app.routers.push(router);
    let http = app.http.clone();
    let operator = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{}{path}", app.control_plane.url)).bearer_auth(&app.operator_token)
    };
    let registered =
        operator(reqwest::Method::POST, "/servers").json(&json!({"name": "second", "admin_url": b})).send().await?;
    if !registered.status().is_success() {
        bail!("registering the second server: {}", registered.text().await?);
    }
    let tools = tokio::task::spawn_blocking(local_postgres::find_dump_tools).await??;
    let mut reports = Vec::new();
    for &size_mb in &args.sizes_mb {
        let company =
            app.signup(&format!("moving-{size_mb}mb-{}", &uuid::Uuid::new_v4().simple().to_string()[..6])).await?;
        let db = format!("t_{}", company.id.simple());
        let size = fill(&postgres::database_url(a, &db)?, size_mb).await?;

        // Baseline 1: fence and unfence, with the writer running.
        let (operator, company) = (&operator, &company);
        let fence_only = with_writer(&http, &router_url, &company.token, move || async move {
            let maintenance = |on: bool| {
                operator(reqwest::Method::PUT, "/system/maintenance")
                    .json(&json!({"maintenance_mode": on, "tenant": company.slug, "message": "bench"}))
                    .send()
            };
            maintenance(true).await?.error_for_status()?;
            maintenance(false).await?.error_for_status()?;
            Ok(())
        })
        .await?;

        // Baseline 2: what copying under the fence would cost: dump and restore, timed.
        let copy = format!("bench_copy_{}", company.id.simple());
        let mut second = PgConnection::connect(b).await?;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {copy}"))).execute(&mut second).await?;
        let started = Instant::now();
        let piped = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{} --format=custom --dbname \"$SOURCE\" | {} --no-owner --no-privileges --dbname \"$TARGET\"",
                tools.pg_dump().display(),
                tools.pg_restore().display()
            ))
            .env("SOURCE", postgres::database_url(a, &db)?)
            .env("TARGET", postgres::database_url(b, &copy)?)
            .status()
            .await?;
        let dump_restore = started.elapsed();
        if !piped.success() {
            bail!("pg_dump | pg_restore failed");
        }
        sqlx::query(AssertSqlSafe(format!("DROP DATABASE {copy}"))).execute(&mut second).await?;
        second.close().await.ok();

        // The move, with the writer running.
        let started = Instant::now();
        let mut fence_ms = 0;
        let fence = &mut fence_ms;
        let moved = with_writer(&http, &router_url, &company.token, move || async move {
            let answer: Value = operator(reqwest::Method::POST, &format!("/tenants/{}/moves", company.slug))
                .json(&json!({"to": "second"}))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let id = answer["id"].as_str().context("the move's id")?.to_owned();
            loop {
                let m: Value = operator(reqwest::Method::GET, &format!("/moves/{id}")).send().await?.json().await?;
                match m["state"].as_str() {
                    Some("done") => {
                        *fence = m["fence_ms"].as_i64().unwrap_or(-1);
                        return Ok(());
                    }
                    Some("failed") => bail!("the move failed: {}", m["error"]),
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        })
        .await?;
        let move_total = started.elapsed();
        let gap = |w: &Writes| w.max_gap.as_secs_f64() * 1000.0;
        reports.push(SizeReport {
            size_mb: size as f64 / 1e6,
            fence_ms,
            move_gap_ms: gap(&moved),
            refused: moved.refused,
            failed: moved.failed + fence_only.failed,
            move_total_s: move_total.as_secs_f64(),
            fence_only_gap_ms: gap(&fence_only),
            dump_restore_s: dump_restore.as_secs_f64(),
            ratio_to_fence: gap(&moved) / gap(&fence_only).max(1.0),
        });
    }
    app.stop().await?;
    Ok(reports)
}

/// Grows the tenant's employees (as superuser: benchmark data) until the database is at least
/// `size_mb` MB larger than it was; returns its size in bytes.
async fn fill(url: &str, size_mb: u64) -> anyhow::Result<i64> {
    let mut db = PgConnection::connect(url).await?;
    let size = || "SELECT pg_database_size(current_database())";
    let start: i64 = sqlx::query_scalar(size()).fetch_one(&mut db).await?;
    let goal = start + i64::try_from(size_mb << 20)?;
    let mut batch = 0;
    loop {
        let now: i64 = sqlx::query_scalar(size()).fetch_one(&mut db).await?;
        if now >= goal {
            db.close().await.ok();
            return Ok(now);
        }
        sqlx::query(
            "INSERT INTO employees (first_name, last_name, email, job_title, hire_date)
             SELECT 'Fill', 'Row' || g, 'fill' || $1 || '-' || g || '@bench.example.com', repeat('x', 150), date '2024-01-15'
             FROM generate_series(1, 5000) g",
        )
        .bind(batch)
        .execute(&mut db)
        .await?;
        batch += 1;
    }
}

/// Runs `work` while a writer posts an employee every 10 ms; what the writer saw meanwhile.
async fn with_writer<F, Fut>(http: &reqwest::Client, router: &str, token: &str, work: F) -> anyhow::Result<Writes>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (http, url, token, stop) = (http.clone(), format!("{router}/employees"), token.to_owned(), stop.clone());
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_millis(10));
            let (mut last_ok, mut max_gap) = (Instant::now(), Duration::ZERO);
            let (mut refused, mut failed) = (0, 0);
            while !stop.load(Ordering::SeqCst) {
                ticker.tick().await;
                let email = format!("w{}@writer.example.com", uuid::Uuid::new_v4().simple());
                let body =
                    json!({"first_name": "Bench", "last_name": "Writer", "email": email, "hire_date": "2024-01-15"});
                match http.post(&url).bearer_auth(&token).json(&body).send().await.map(|r| r.status().as_u16()) {
                    Ok(201) => {
                        max_gap = max_gap.max(last_ok.elapsed());
                        last_ok = Instant::now();
                    }
                    Ok(503) => refused += 1,
                    _ => failed += 1,
                }
            }
            Writes { max_gap: max_gap.max(last_ok.elapsed()), refused, failed }
        })
    };
    // Warm: the writer's pool is open before the work starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let outcome = work().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let writes = writer.await?;
    outcome.map(|()| writes)
}

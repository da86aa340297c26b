//! The provisioning benchmark's report: latency statistics per phase, the ratio of the API's
//! cost (minus the hash it spends on purpose) to the raw baseline, and scaling per block.

use std::time::Duration;

use comfy_table::Table;
use hdrhistogram::Histogram;
use serde::Serialize;
use stack::control::CreateDatabaseStrategy;

use super::api::{Concurrent, Sequential};
use super::baseline::Baseline;
use crate::harness::output::{new_table, target_row};
use crate::harness::postgres::ServerInfo;
use crate::harness::stats::histogram_of;

/// `(API p50 − hash p50) / raw baseline p50` should be at most this.
const TARGET_RATIO: f64 = 1.5;

/// What the report says about the run itself.
pub struct Run {
    pub server: &'static str,
    /// Size of the measured sample and of each scaling block.
    pub block: u32,
    /// Spare databases per server during the API phases.
    pub spares: u32,
}

#[derive(Serialize)]
pub struct Stats {
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
pub struct Report {
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
    pub elapsed_s: f64,
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
    pub fn new(
        run: Run,
        postgres: ServerInfo,
        strategy: CreateDatabaseStrategy,
        sequential: Sequential,
        concurrent: Option<Concurrent>,
        without_spares: Option<Vec<Duration>>,
        hashes: [Histogram<u64>; 2],
        baselines: [Baseline; 2],
    ) -> Self {
        let block = run.block as usize;
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
            server: run.server,
            postgres,
            api_strategy: strategy.sql_keyword(),
            spares_per_server: run.spares,
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

pub fn print(r: &Report) {
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
    let target = || format!("≤ {TARGET_RATIO}");
    table.add_row(target_row(
        "(API p50 − hash p50) / raw baseline p50",
        format!("{:.2}", r.ratio),
        target(),
        r.target_met,
    ));
    if let Some(ratio) = r.ratio_without_spares {
        table.add_row(target_row("the same, spare pool off", format!("{ratio:.2}"), target(), ratio <= TARGET_RATIO));
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

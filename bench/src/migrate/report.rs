//! The migration benchmark's report: each side's tenants/s, the engine's speed-up over the
//! process-per-database baseline (and the floor's, the most any engine reaches), where a
//! tenant's time goes, and the CPU each side cost.

use std::time::Duration;

use serde::Serialize;

use super::BENCH_MIGRATION_SQL;
use super::sides::{BaselineResult, EngineResult, FloorResult};
use crate::harness::output::{new_table, target_row};

/// The target: the engine at least this many times faster than the loop.
const TARGET_SPEED_UP: f64 = 5.0;

#[derive(Serialize)]
pub struct Postgres {
    pub version: String,
    pub fsync: String,
    pub cpus: usize,
}

#[derive(Serialize)]
struct Throughput {
    tenants: usize,
    total_s: f64,
    tenants_per_s: f64,
    per_tenant_ms: f64,
}

impl Throughput {
    fn new(tenants: usize, total: Duration) -> Self {
        let total_s = total.as_secs_f64();
        Self {
            tenants,
            total_s,
            tenants_per_s: tenants as f64 / total_s,
            per_tenant_ms: total_s * 1000.0 / tenants.max(1) as f64,
        }
    }
}

/// One phase: its share of the time and its median per tenant.
#[derive(Serialize)]
struct Phase {
    name: &'static str,
    total_ms: f64,
    p50_ms: f64,
    share: f64,
}

/// CPU used during a side's measurement, per tenant (ms), and the machine's share of it.
#[derive(Serialize)]
struct CpuView {
    postgres_ms_per_tenant: f64,
    migrator_ms_per_tenant: f64,
    total_ms_per_tenant: f64,
    /// CPU seconds used per wall second (2.0 = both cores of a 2-core machine busy).
    cores_busy: f64,
}

impl CpuView {
    /// `migrator`: the control plane (this process) or the `migrate-one` children.
    fn new(postgres: f64, migrator: f64, tenants: usize, wall: Duration) -> Self {
        let per = |s: f64| s * 1000.0 / tenants.max(1) as f64;
        Self {
            postgres_ms_per_tenant: per(postgres),
            migrator_ms_per_tenant: per(migrator),
            total_ms_per_tenant: per(postgres + migrator),
            cores_busy: (postgres + migrator) / wall.as_secs_f64(),
        }
    }
}

#[derive(Serialize)]
pub struct Report {
    server: &'static str,
    postgres: Postgres,
    from_version: i32,
    to_version: i32,
    migration: &'static str,
    tenants_created_by: &'static str,
    concurrency: u32,
    engine: Throughput,
    engine_server_elapsed_s: f64,
    engine_phases: Vec<Phase>,
    engine_attempt_p50_ms: f64,
    engine_attempt_p95_ms: f64,
    engine_cpu: Option<CpuView>,
    /// The least any migrator does, at the engine's concurrency (see [`measure_floor`](super::sides::measure_floor)).
    floor: Throughput,
    floor_cpu: Option<CpuView>,
    /// Floor tenants/s ÷ baseline tenants/s: the most any engine can reach here.
    floor_speed_up: f64,
    /// Engine tenants/s ÷ floor tenants/s: how close the engine comes to that.
    engine_of_floor: f64,
    baseline: Throughput,
    baseline_phases: Vec<Phase>,
    baseline_cpu: Option<CpuView>,
    speed_up: f64,
    target_speed_up: f64,
    target_met: bool,
    /// Creating the tenants (not measured).
    pub prepare_s: f64,
    /// Where the benchmark's own time went, in seconds.
    pub stages: Vec<(&'static str, f64)>,
    pub elapsed_s: f64,
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

impl Report {
    pub fn new(
        server: &'static str,
        postgres: Postgres,
        concurrency: u32,
        n: i32,
        engine: EngineResult,
        floor: FloorResult,
        baseline: BaselineResult,
    ) -> Self {
        let t = &engine.run["timings"];
        let phase_total = |k: &str| t[k]["total_ms"].as_f64().unwrap_or(0.0);
        let attempt_total = phase_total("attempt").max(f64::MIN_POSITIVE);
        let engine_phases = [
            ("connect", "connect"),
            ("lock (begin, timeouts, role, advisory lock, history)", "lock"),
            ("flag tenant + record attempt (catalog)", "flag"),
            ("DDL (the migration)", "ddl"),
            ("commit", "commit"),
        ]
        .into_iter()
        .map(|(name, key)| Phase {
            name,
            total_ms: phase_total(key),
            p50_ms: t[key]["p50_ms"].as_f64().unwrap_or(0.0),
            share: phase_total(key) / attempt_total,
        })
        .collect();
        let process: Vec<f64> = baseline.samples.iter().map(|s| s.0).collect();
        let connect: Vec<f64> = baseline.samples.iter().map(|s| s.1).collect();
        let migrate: Vec<f64> = baseline.samples.iter().map(|s| s.2).collect();
        let spawn: Vec<f64> = baseline.samples.iter().map(|s| (s.0 - s.1 - s.2).max(0.0)).collect();
        let process_total: f64 = process.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        let phase = |name: &'static str, values: Vec<f64>| {
            let total: f64 = values.iter().sum();
            Phase { name, total_ms: total, p50_ms: median(values), share: total / process_total }
        };
        let baseline_phases = vec![
            phase("process start + exit (runtime, parsing)", spawn),
            phase("connect", connect),
            phase("lock + DDL + commit (migrate_with)", migrate),
        ];
        let engine_side = Throughput::new(engine.tenants, engine.wall);
        let baseline_side = Throughput::new(baseline.tenants, baseline.wall);
        let floor_side = Throughput::new(floor.tenants, floor.wall);
        let speed_up = engine_side.tenants_per_s / baseline_side.tenants_per_s;
        Self {
            server,
            postgres,
            from_version: n,
            to_version: n + 1,
            migration: BENCH_MIGRATION_SQL,
            tenants_created_by: "copying the template directly (CREATE ROLE + CREATE DATABASE … TEMPLATE + hand-over + seed + catalog row, with fsync off on a private cluster, then on again and CHECKPOINT before measuring), not the signup API",
            concurrency,
            engine_cpu: engine.cpu.map(|c| CpuView::new(c.postgres, c.own, engine.tenants, engine.wall)),
            baseline_cpu: baseline.cpu.map(|c| CpuView::new(c.postgres, c.children, baseline.tenants, baseline.wall)),
            floor_cpu: floor.cpu.map(|c| CpuView::new(c.postgres, c.own, floor.tenants, floor.wall)),
            floor_speed_up: floor_side.tenants_per_s / baseline_side.tenants_per_s,
            engine_of_floor: engine_side.tenants_per_s / floor_side.tenants_per_s,
            floor: floor_side,
            engine: engine_side,
            engine_server_elapsed_s: engine.server_elapsed_s,
            engine_phases,
            engine_attempt_p50_ms: t["attempt"]["p50_ms"].as_f64().unwrap_or(0.0),
            engine_attempt_p95_ms: t["attempt_p95_ms"].as_f64().unwrap_or(0.0),
            baseline: baseline_side,
            baseline_phases,
            speed_up,
            target_speed_up: TARGET_SPEED_UP,
            target_met: speed_up >= TARGET_SPEED_UP,
            prepare_s: 0.0,
            stages: Vec::new(),
            elapsed_s: 0.0,
        }
    }
}

pub fn print(r: &Report) {
    println!(
        "Server: {} — PostgreSQL {}, fsync={}, {} CPU(s). Migration V{} → V{}:",
        r.server, r.postgres.version, r.postgres.fsync, r.postgres.cpus, r.from_version, r.to_version
    );
    for line in r.migration.lines() {
        println!("    {line}");
    }
    println!("Tenants were created by {}.", r.tenants_created_by);
    let mut sides = new_table(&["", "tenants", "total s", "tenants/s", "ms per tenant"]);
    let row = |name: String, s: &Throughput| {
        vec![
            name,
            s.tenants.to_string(),
            format!("{:.2}", s.total_s),
            format!("{:.1}", s.tenants_per_s),
            format!("{:.1}", s.per_tenant_ms),
        ]
    };
    sides.add_row(row(format!("engine (ops migrate run, concurrency {})", r.concurrency), &r.engine));
    sides.add_row(row(
        format!("floor (connect, one transaction, close; no records; concurrency {})", r.concurrency),
        &r.floor,
    ));
    sides.add_row(row(
        "baseline (sequential, fresh `nexacore-bench migrate-one` process per database)".into(),
        &r.baseline,
    ));
    println!("{sides}");
    let mut target = new_table(&["", "value", "target", "met"]);
    target.add_row(target_row(
        "speed-up (engine tenants/s ÷ baseline tenants/s)",
        format!("{:.1}×", r.speed_up),
        format!("≥ {TARGET_SPEED_UP}×"),
        r.target_met,
    ));
    target.add_row(vec![
        "floor's speed-up (the most any engine reaches on this server)".to_owned(),
        format!("{:.1}×", r.floor_speed_up),
        String::new(),
        String::new(),
    ]);
    target.add_row(vec![
        "engine ÷ floor (tenants/s)".to_owned(),
        format!("{:.2}", r.engine_of_floor),
        String::new(),
        String::new(),
    ]);
    println!("{target}");
    let phases = |title: &str, phases: &[Phase]| {
        let mut table = new_table(&[title, "total ms", "share", "p50 ms per tenant"]);
        for p in phases {
            table.add_row(vec![
                p.name.to_owned(),
                format!("{:.0}", p.total_ms),
                format!("{:.0} %", p.share * 100.0),
                format!("{:.2}", p.p50_ms),
            ]);
        }
        table
    };
    println!(
        "{}",
        phases("engine: where a tenant's time goes (summed over tenants, run in parallel)", &r.engine_phases)
    );
    println!(
        "engine: a tenant takes {:.1} ms at the median ({:.1} ms p95) from connect to commit; the run took {:.2} s inside the control plane ({:.2} s as the client saw it).",
        r.engine_attempt_p50_ms, r.engine_attempt_p95_ms, r.engine_server_elapsed_s, r.engine.total_s
    );
    println!("{}", phases("baseline: where a tenant's time goes", &r.baseline_phases));
    if let (Some(e), Some(f), Some(b)) = (&r.engine_cpu, &r.floor_cpu, &r.baseline_cpu) {
        let mut cpu = new_table(&["CPU per tenant", "Postgres ms", "migrator ms", "total ms", "cores busy"]);
        for (name, c) in [
            ("engine (migrator: the control plane)", e),
            ("floor (migrator: this process)", f),
            ("baseline (migrator: the processes)", b),
        ] {
            cpu.add_row(vec![
                name.to_owned(),
                format!("{:.1}", c.postgres_ms_per_tenant),
                format!("{:.1}", c.migrator_ms_per_tenant),
                format!("{:.1}", c.total_ms_per_tenant),
                format!("{:.2} of {}", c.cores_busy, r.postgres.cpus),
            ]);
        }
        println!("{cpu}");
    }
    let stages: Vec<String> = r.stages.iter().map(|(name, s)| format!("{name} {s:.1} s")).collect();
    println!("The run took {:.0} s: {}.", r.elapsed_s, stages.join(", "));
}

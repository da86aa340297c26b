//! The realtime benchmark's phases, each on freshly started replicas so that memory figures
//! start clean: latency at a scale, the fan-out burst, and the connection ramp.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use indicatif::ProgressBar;
use serde_json::{Value, json};
use sqlx::Connection;

use super::clients::{ClientLog, ClientSpec, Clients};
use super::replicas::{Cpu, Router, Stack, StallMeter, Tenant};
use super::report::{
    BurstReplica, BurstReport, Dist, Idle, MEASURE_FROM_201, Memory, RampReport, RampStep, ScaleReport, replica_name,
};
use super::writes::{Committed, Timing, Write, Writer, expected_seqs, latencies, signed_micros, verify};
use super::{IDLE_WINDOW, RAMP_STEP, RAMP_TENANTS, RAMP_WRITERS, Scale, Settings, WRITE_CONCURRENCY};
use crate::harness::machine::load_average;
use crate::harness::output::progress;

/// A replica's resident set after a phase's sockets opened, against `before`.
fn memory(router: &Router, connections: usize, before: u64) -> anyhow::Result<Memory> {
    let after = router.rss_kib()?;
    Ok(Memory {
        replica: if router.name == "A" { replica_name(0) } else { replica_name(1) },
        connections,
        rss_before_kib: before,
        rss_after_kib: after,
        per_connection_kib: (after as f64 - before as f64) / connections.max(1) as f64,
    })
}

/// Opens a socket per spec behind a progress bar; any that fails to connect fails the phase.
async fn connect_all(
    phase: &str,
    clients: &mut Clients,
    specs: &[ClientSpec],
    routers: &[&Router],
    tenants: &[Tenant],
) -> anyhow::Result<()> {
    let bar = progress(specs.len() as u64, &format!("{phase}: connecting"));
    clients.open(specs, routers, tenants, &bar).await;
    bar.finish_and_clear();
    if clients.failed > 0 {
        bail!(
            "{phase}: {} of {} clients could not connect: {}",
            clients.failed,
            specs.len(),
            clients.first_error.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Phase 1: latency at a scale

pub async fn scale(
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
    connect_all(&scale.to_string(), &mut clients, &specs, &[a, b], tenants).await?;
    // Let the handshakes' garbage settle before reading the resident sets; meanwhile, what
    // idle sockets cost the server (the hubs' periodic re-check reads every tenant's outbox).
    let idle_sessions_before = stack.postgres_sessions().await?;
    let idle_cpu_before = Cpu::sample(a, Some(b));
    tokio::time::sleep(IDLE_WINDOW).await;
    let idle_cpu = Cpu::sample(a, Some(b)).since(idle_cpu_before);
    let idle_sessions = stack.postgres_sessions().await? - idle_sessions_before;
    let per_replica = [0, 1].map(|r| specs.iter().filter(|s| s.replica == r).count());
    let memory = [memory(a, per_replica[0], rss_before[0])?, memory(b, per_replica[1], rss_before[1])?];

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

// ---------------------------------------------------------------------------------------------
// Phase 2: fan-out burst

pub async fn burst(
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
    connect_all("burst", &mut clients, &specs, &[a, b], tenants).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let per_replica = [0, 1].map(|r| specs.iter().filter(|s| s.replica == r).count());
    let memory = [memory(a, per_replica[0], rss_before[0])?, memory(b, per_replica[1], rss_before[1])?];

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

pub async fn ramp(stack: &Stack, tenants: &Arc<Vec<Tenant>>, cap: usize) -> anyhow::Result<RampReport> {
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

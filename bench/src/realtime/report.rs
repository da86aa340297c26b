//! The realtime benchmark's report: each phase's figures, and each target judged against them.

use serde::Serialize;

use super::replicas::Cpu;
use super::{FileLimit, Scale};
use crate::harness::stats::nearest_rank;

/// Commit-to-client p99 on the writing replica, at 10,000 connections and 200 changes/s.
const TARGET_P99_LOCAL_MS: f64 = 10.0;
/// The same across replicas.
const TARGET_P99_REMOTE_MS: f64 = 25.0;
const TARGET_BURST_PER_S: f64 = 100_000.0;
const TARGET_KIB_PER_CONNECTION: f64 = 30.0;
/// The targets are stated at this many connections (the `N` of a scale).
const TARGET_CONNECTIONS: usize = 10_000;

pub const MEASURE_FROM_201: &str = "after the 201";
pub const MEASURE_FROM_SENT: &str = "after the POST was sent (upper bound)";
pub const MEASURE_FROM_TS: &str = "after the event's ts (wall clock)";

pub fn replica_name(replica: usize) -> &'static str {
    if replica == 0 { "A (writing)" } else { "B (other)" }
}

/// A distribution in milliseconds, from microsecond samples (negative: before the reference).
#[derive(Serialize, Default, Clone, Copy)]
pub struct Dist {
    pub samples: usize,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Dist {
    pub fn of(mut us: Vec<i64>) -> Self {
        if us.is_empty() {
            return Self::default();
        }
        us.sort_unstable();
        let at = |q: f64| nearest_rank(&us, q).unwrap_or_default() as f64 / 1000.0;
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
pub struct Report {
    pub environment: Environment,
    pub scales: Vec<ScaleReport>,
    pub burst: Option<BurstReport>,
    pub max_connections: Option<RampReport>,
    pub targets: Vec<TargetRow>,
    pub elapsed_s: f64,
}

#[derive(Serialize)]
pub struct Environment {
    pub cpus: usize,
    pub load_average_at_start: [f64; 3],
    pub load_average_at_end: [f64; 3],
    pub file_limit: FileLimit,
    pub router_binary: String,
    pub replicas: &'static str,
    pub postgres: String,
    pub tenants_provisioned: usize,
    pub provisioning_s: f64,
    pub router_logs: String,
    pub router_env: Vec<String>,
}

#[derive(Serialize)]
pub struct ScaleReport {
    pub scale: Scale,
    pub rate_target: u32,
    pub rate_achieved: f64,
    pub measured_s: f64,
    pub writes_ok: usize,
    /// The writer's POST round trip.
    pub write_p50_ms: f64,
    pub write_p99_ms: f64,
    /// Every event read by every client (warm-up included).
    pub deliveries: u64,
    pub measured_deliveries_per_s: f64,
    pub latency: Vec<Latency>,
    pub memory: [Memory; 2],
    pub verification: Verification,
    /// CPU used while writing and draining.
    pub cpu: Cpu,
    /// Scheduling stalls of the machine meanwhile (lateness of a 1 ms sleep).
    pub stalls: Dist,
    /// Postgres sessions started meanwhile (both replicas' pools, this process's few).
    pub postgres_sessions: i64,
    /// Before writing starts, with every socket open and idle.
    pub idle: Idle,
    pub load_average: [f64; 3],
}

/// What idle sockets cost: new Postgres sessions per second and the routers' CPU (cores).
#[derive(Serialize)]
pub struct Idle {
    pub postgres_sessions_per_s: f64,
    pub router_a_cpu: f64,
    pub router_b_cpu: f64,
}

#[derive(Serialize)]
pub struct Latency {
    pub replica: &'static str,
    pub clients: usize,
    pub measure: &'static str,
    #[serde(flatten)]
    pub stats: Dist,
}

/// Router RSS before and after opening a phase's idle sockets.
#[derive(Serialize)]
pub struct Memory {
    pub replica: &'static str,
    pub connections: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub per_connection_kib: f64,
}

#[derive(Serialize, Default)]
pub struct Verification {
    pub clients: usize,
    /// Clients that read exactly their tenant's committed seqs, in order, once.
    pub exact: usize,
    pub missing: u64,
    pub duplicated: u64,
    /// Seqs read that no successful write returned (a failed write that committed after all).
    pub unexpected: u64,
    pub out_of_order: usize,
    /// Sockets the router ended before the phase did.
    pub closed_early: usize,
    pub writes_failed: usize,
    pub first_failed_write: Option<String>,
    /// Tenants whose committed seqs in the phase were not contiguous (writes of one tenant
    /// are all the bench's, so a hole means a lost or foreign event).
    pub tenants_with_seq_gaps: usize,
    pub first_problem: Option<String>,
}

impl Verification {
    pub fn clean(&self) -> bool {
        self.exact == self.clients
            && self.closed_early == 0
            && self.writes_failed == 0
            && self.tenants_with_seq_gaps == 0
    }

    pub fn summary(&self) -> String {
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
pub struct BurstReport {
    pub clients: usize,
    pub events: u32,
    pub writes_ok: usize,
    /// From the burst's commit to the trigger's 201.
    pub trigger_ms: f64,
    pub deliveries: u64,
    /// From the burst's commit to the last event read by any client.
    pub wall_ms: f64,
    pub deliveries_per_s: f64,
    pub per_replica: Vec<BurstReplica>,
    pub memory: [Memory; 2],
    pub verification: Verification,
    pub cpu: Cpu,
    pub stalls: Dist,
    pub load_average: [f64; 3],
}

#[derive(Serialize)]
pub struct BurstReplica {
    pub replica: &'static str,
    pub clients: usize,
    pub deliveries: u64,
    /// From the burst's commit to the first event read by one of the replica's clients.
    pub first_read_ms: f64,
    pub wall_ms: f64,
    pub deliveries_per_s: f64,
    /// Per event: from its commit (the trigger's: its 201) to the last of the replica's
    /// clients reading it.
    pub event_reaches_all_clients: Dist,
}

#[derive(Serialize)]
pub struct RampReport {
    pub cap: usize,
    pub opened: usize,
    pub failed: usize,
    pub stopped_by: Option<String>,
    /// Sockets that then received their tenant's change, exactly once.
    pub held: usize,
    pub tenants: usize,
    pub connect_per_s: f64,
    pub per_connection_kib: f64,
    pub steps: Vec<RampStep>,
    pub verification: Verification,
    pub cpu: Cpu,
    pub load_average: [f64; 3],
}

#[derive(Serialize)]
pub struct RampStep {
    pub connections: usize,
    pub rss_kib: u64,
}

#[derive(Serialize)]
pub struct TargetRow {
    pub target: String,
    pub value: String,
    pub goal: String,
    pub met: bool,
}

/// Each target of the issue, judged at the scale with at least 10,000 clients (or the
/// largest one run, said in the row).
pub fn targets(scales: &[ScaleReport], burst: Option<&BurstReport>, rate: u32) -> Vec<TargetRow> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_and_keep_negative_values() {
        let d = Dist::of((1..=100).map(|v| v * 1000).chain([-500]).collect());
        assert_eq!((d.samples, d.min_ms, d.p50_ms, d.max_ms), (101, -0.5, 50.0, 100.0));
        assert_eq!(d.p99_ms, 99.0);
    }
}

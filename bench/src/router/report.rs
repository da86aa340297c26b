//! The router benchmark's report: every phase's figures and each target checked against
//! them.

use serde::Serialize;

use super::results::{Herd, ManyTenants, Memory, SingleTenant};
use crate::harness::machine;

/// Router throughput over baseline throughput, single tenant: at least this.
pub const TARGET_THROUGHPUT_RATIO: f64 = 0.90;
/// Router latency minus baseline latency, single tenant: at most this, in ms.
pub const TARGET_ADDED_P50_MS: f64 = 0.1;
pub const TARGET_ADDED_P99_MS: f64 = 0.5;
/// A cold tenant's first request under the many-tenant load, p99: at most this, in ms.
pub const TARGET_COLD_P99_MS: f64 = 30.0;
/// Catalog lookups caused by the herd of first requests for one cold tenant: exactly this.
pub const TARGET_HERD_LOOKUPS: u64 = 1;

#[derive(Serialize)]
pub struct TargetCheck {
    pub what: String,
    pub value: String,
    pub target: String,
    pub met: bool,
}

#[derive(Serialize)]
pub struct Report {
    pub quick: bool,
    pub cores: usize,
    /// The machine's 1-minute load average when the run started: other work skews every figure.
    pub load_average_at_start: f64,
    pub postgres: String,
    pub tenant_auth: String,
    pub single_tenant: SingleTenant,
    pub many_tenants: ManyTenants,
    pub herd: Herd,
    pub memory: Memory,
    pub targets: Vec<TargetCheck>,
    pub elapsed_s: f64,
}

impl Report {
    #[allow(clippy::too_many_arguments, reason = "assembles the one report from each phase's figures")]
    pub fn new(
        quick: bool,
        load_average_at_start: f64,
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
            quick,
            cores: machine::cores(),
            load_average_at_start,
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

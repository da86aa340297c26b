//! What the router benchmark's phases measured: plain data, serialised for `--json` and read
//! by the report.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::load::RequestTally;

#[derive(Serialize)]
pub struct LoadStats {
    pub requests: u64,
    pub errors: u64,
    pub error_kinds: BTreeMap<String, u64>,
    pub seconds: f64,
    pub requests_per_s: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub bytes_per_response: u64,
}

impl LoadStats {
    pub fn of(tally: &RequestTally, wall: Duration) -> Self {
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
pub struct LatencyMs {
    pub samples: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl LatencyMs {
    pub fn of(h: &Histogram<u64>) -> Self {
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
pub struct StepCost {
    pub step: String,
    pub samples: u64,
    pub p50_us: f64,
    pub p99_us: f64,
}

impl StepCost {
    pub fn of(step: &str, ns: &Histogram<u64>) -> Self {
        let us = |q: f64| ns.value_at_quantile(q) as f64 / 1000.0;
        Self { step: step.to_owned(), samples: ns.len(), p50_us: us(0.5), p99_us: us(0.99) }
    }
}

#[derive(Serialize)]
pub struct SingleTenant {
    pub clients: usize,
    pub pool_size: usize,
    pub employees: usize,
    pub rounds: usize,
    pub warm_up_s: f64,
    pub run_s: f64,
    pub router: LoadStats,
    pub baseline: LoadStats,
    /// Where the machine's CPU went during each side's measured runs.
    pub router_cpu: CpuShare,
    pub baseline_cpu: CpuShare,
    /// The same alternation with one client: latency without queueing.
    pub light_run_s: f64,
    pub one_client_router: LoadStats,
    pub one_client_baseline: LoadStats,
    pub one_client_added_p50_ms: f64,
    pub one_client_added_p99_ms: f64,
    /// Poisson arrivals at half the baseline's saturated throughput: latency with headroom.
    pub open_loop_rate: f64,
    pub open_loop_router: LoadStats,
    pub open_loop_baseline: LoadStats,
    pub open_loop_added_p50_ms: f64,
    pub open_loop_added_p99_ms: f64,
    /// Router requests/s over baseline requests/s.
    pub throughput_ratio: f64,
    /// Router minus baseline.
    pub added_p50_ms: f64,
    pub added_p99_ms: f64,
    pub router_steps: Vec<StepCost>,
}

#[derive(Serialize)]
pub struct ManyTenants {
    pub registered: usize,
    pub real_databases: usize,
    pub active: usize,
    pub catalog_only: usize,
    pub provisioning_s: f64,
    pub clients: usize,
    pub run_s: f64,
    pub budget: usize,
    pub share: usize,
    /// `clients` closed-loop clients: the router runs flat out.
    pub closed_loop: ZipfRun,
    /// The same tenants on a fresh router at [`OPEN_LOOP_SHARES`](super::many) of the closed loop's
    /// throughput, each run on its own fresh router.
    pub open_loops: Vec<OpenLoop>,
    /// First requests one at a time on a fresh router: the cold path with nothing queued.
    pub isolated: IsolatedCold,
}

/// [`cold_one_at_a_time`](super::many)'s figures: the latency, and the router's counters over the same
/// requests (where the time went).
#[derive(Serialize)]
pub struct IsolatedCold {
    pub first_request: LatencyMs,
    pub counters: Counters,
}

#[derive(Serialize)]
pub struct OpenLoop {
    /// The offered rate as a share of the closed loop's throughput.
    pub share: f64,
    /// Offered requests per second (Poisson arrivals).
    pub rate: f64,
    #[serde(flatten)]
    pub run: ZipfRun,
    /// The same arrivals served with no router: what the machine and server cost at the least.
    pub floor: FloorRun,
}

#[derive(Serialize)]
pub struct Herd {
    pub requests: u64,
    pub errors: u64,
    pub error_kinds: BTreeMap<String, u64>,
    pub share: usize,
    pub latency: LatencyMs,
    pub wall_ms: f64,
    pub counters: Counters,
}

#[derive(Serialize, Deserialize)]
pub struct Memory {
    pub tenants_touched: usize,
    pub touch_clients: usize,
    pub touch_errors: u64,
    /// Every touch is a first request for its tenant, under a light load.
    pub first_request_light_load: LatencyMs,
    pub rss_before_kib: u64,
    pub rss_after_touch_kib: u64,
    pub cached_routes_after_touch: u64,
    pub pools_after_touch: u64,
    pub open_connections_after_touch: usize,
    /// ΔRSS over the routes the touch added: route + pool + share of idle connections.
    pub kib_per_touched_tenant: f64,
    pub extra_routes: u64,
    pub cached_routes_after_lookups: u64,
    pub route_lookup_failures: usize,
    pub rss_after_routes_kib: u64,
    /// ΔRSS over the routes looked up without a request: a route alone.
    pub kib_per_route_only: f64,
    pub rss_after_retire_kib: u64,
    pub pools_after_retire: u64,
    pub open_connections_after_retire: usize,
}

/// The router's counters, to take differences around a phase.
#[derive(Clone, Copy, Default, Serialize)]
pub struct Counters {
    pub catalog_lookups: u64,
    pub pools_created: u64,
    pub connects: u64,
    pub connect_failures: u64,
    pub reclaimed_idle: u64,
    pub reserve_reclaims: u64,
    pub exits_seen: u64,
    pub budget_timeouts: u64,
    pub jwks_fetches: u64,
    pub lookup_micros: u64,
    pub permit_waits: u64,
    pub permit_wait_micros: u64,
    pub connect_micros: u64,
}

impl Counters {
    pub fn since(self, before: Self) -> Self {
        macro_rules! minus {
            ($after:ident, $before:ident; $($field:ident),*) => { Self { $($field: $after.$field - $before.$field),* } };
        }
        minus!(
            self, before;
            catalog_lookups, pools_created, connects, connect_failures, reclaimed_idle, reserve_reclaims, exits_seen,
            budget_timeouts, jwks_fetches, lookup_micros, permit_waits, permit_wait_micros, connect_micros
        )
    }

    /// Mean milliseconds of a catalog lookup, of a wait for a budget permit (over the requests
    /// that waited) and of opening a connection.
    pub fn mean_lookup_ms(&self) -> f64 {
        mean_ms(self.lookup_micros, self.catalog_lookups)
    }

    pub fn mean_permit_wait_ms(&self) -> f64 {
        mean_ms(self.permit_wait_micros, self.permit_waits)
    }

    pub fn mean_connect_ms(&self) -> f64 {
        mean_ms(self.connect_micros, self.connects)
    }
}

fn mean_ms(total_micros: u64, count: u64) -> f64 {
    if count == 0 { 0.0 } else { total_micros as f64 / count as f64 / 1000.0 }
}

/// The router's connections, as the server sees them and as the router counts them.
#[derive(Default, Serialize)]
pub struct Peaks {
    pub samples: u64,
    pub peak_pg_stat_activity: u64,
    pub peak_router_count: u64,
    pub samples_over_budget: u64,
}

/// One Zipf load on a freshly started router (every tenant cold: no routes, no pools).
#[derive(Serialize)]
pub struct ZipfRun {
    pub tenants_touched: u64,
    pub load: LoadStats,
    /// Each tenant's first request: route lookup, pool, connect (and reclaiming another
    /// tenant's idle connection when the budget is spent).
    pub first_request: LatencyMs,
    /// The first requests sent after [`START_WINDOW`](super::START_WINDOW): cold tenants among warm ones.
    pub first_request_after_start: LatencyMs,
    pub connections: Peaks,
    pub counters: Counters,
    pub cpu: CpuShare,
}

/// The floor's figures (see [`floor`](super::floor)).
#[derive(Serialize)]
pub struct FloorRun {
    pub load: LoadStats,
    /// Each tenant's first request: connect (SCRAM, a new backend) and the query on it.
    pub first_request: LatencyMs,
    pub connects: u64,
    /// Its connections as the server saw them: the floor does not wait for a closed backend to
    /// exit, so the server may count more than the budget for a moment.
    pub connections: Peaks,
    pub cpu: CpuShare,
}

/// Where the machine's cores went over an interval, on average.
#[derive(Serialize)]
pub struct CpuShare {
    /// This process: the services under test and the load generator.
    pub ops_cores: f64,
    pub postgres_cores: f64,
    /// Everything else on the machine.
    pub other_cores: f64,
    /// Taken by the hypervisor for other guests: on a shared host, the noise in every figure.
    pub stolen_cores: f64,
    pub idle_cores: f64,
}

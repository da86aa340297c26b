//! The router benchmark's report as tables, phase by phase, then the targets.

use std::collections::BTreeMap;

use super::report::{
    Report, TARGET_ADDED_P50_MS, TARGET_ADDED_P99_MS, TARGET_COLD_P99_MS, TARGET_HERD_LOOKUPS, TARGET_THROUGHPUT_RATIO,
};
use super::results::{CpuShare, Herd, LoadStats, ManyTenants, Memory, SingleTenant, ZipfRun};
use super::{OTHER_REAL_TENANTS, PAGE_SIZE, SAMPLE_EVERY, ZIPF_EXPONENT};
use crate::harness::output::new_table;

pub fn report(r: &Report) {
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
        "cores: bench / postgres / other / stolen / idle",
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
        "CPU per request (bench process + Postgres): router {:.0} µs, baseline {:.0} µs. \"other\" is work on the \
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
        ("cores: bench / postgres / other / stolen / idle", cpu_cell(&z.cpu), String::new()),
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
             errors, {:.1} % connected; peak connections seen by the server {}; cores: bench / postgres / other / stolen \
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
        "Phase 4 — memory per cached tenant, measured in a fresh nexacore-bench process holding only a router and {} HTTP \
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

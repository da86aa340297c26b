//! The realtime benchmark's report as tables: latency per scale, the burst, the ramp, then the
//! targets.

use comfy_table::Table;

use super::FD_RESERVE;
use super::IDLE_WINDOW;
use super::report::{BurstReport, RampReport, Report, ScaleReport, TargetRow};
use crate::harness::output::table_right_from;

pub fn report(r: &Report) {
    let e = &r.environment;
    println!(
        "Realtime fan-out: {}; router binary {}; PostgreSQL: {}; control plane and clients in this process.",
        e.replicas, e.router_binary, e.postgres
    );
    println!(
        "Machine: {} CPUs, load average {} at the start and {} at the end (others build and bench here too); \
         file limit {} soft / {} hard. {} tenants provisioned through POST /tenants in {:.0} s.",
        e.cpus,
        load(&e.load_average_at_start),
        load(&e.load_average_at_end),
        e.file_limit.soft,
        e.file_limit.hard,
        e.tenants_provisioned,
        e.provisioning_s
    );
    if !e.router_env.is_empty() {
        println!("Replica environment (budget from --budget, then --router-env): {}", e.router_env.join(" "));
    }
    if !r.scales.is_empty() {
        println!(
            "\nCommit-to-client latency (this process's monotonic clock; negative = read before the writer saw its 201):"
        );
        println!("{}", latency_table(&r.scales));
        println!("{}", scale_table(&r.scales));
        println!(
            "RSS per idle conn: router RSS after opening the sockets minus before, per socket (per-tenant hubs and \
             pools included). CPU, new PG sessions: while writing and draining; machine busy = all CPUs, everyone's \
             processes. Stalls: how late a thread of this \
             process that sleeps 1 ms wakes — the machine's scheduling stalls, which routers, Postgres and clients \
             suffer alike. Idle: the sockets open, nothing written, for {} s (CPU in cores).",
            IDLE_WINDOW.as_secs()
        );
    }
    if let Some(b) = &r.burst {
        println!(
            "\nFan-out burst: {} clients of one tenant; {} events committed in one transaction straight into its \
             outbox, then one change through A's API whose wake-up makes both replicas read them all:",
            b.clients,
            b.events - 1
        );
        println!("{}", burst_table(b));
    }
    if let Some(m) = &r.max_connections {
        println!("\nMost connections one replica held (A alone, over {} tenants):", m.tenants);
        println!("{}", ramp_table(m));
    }
    println!("\nTargets:");
    println!("{}", target_table(&r.targets));
    let problems: Vec<String> = r
        .scales
        .iter()
        .map(|s| (s.scale.to_string(), &s.verification))
        .chain(r.burst.iter().map(|b| ("burst".to_owned(), &b.verification)))
        .chain(r.max_connections.iter().map(|m| ("ramp".to_owned(), &m.verification)))
        .filter_map(|(phase, v)| {
            let detail: Vec<&str> =
                [v.first_problem.as_deref(), v.first_failed_write.as_deref()].into_iter().flatten().collect();
            (!detail.is_empty()).then(|| format!("{phase}: {}", detail.join("; ")))
        })
        .collect();
    for problem in problems {
        println!("First problem seen in {problem}");
    }
    println!("Router logs: {}. The run took {:.0} s.", e.router_logs, r.elapsed_s);
}

fn load(l: &[f64; 3]) -> String {
    format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2])
}

fn ms(v: f64) -> String {
    format!("{v:.2}")
}

fn latency_table(scales: &[ScaleReport]) -> Table {
    let mut table = table_right_from(
        &["N/M", "replica", "clients", "measured from", "deliveries", "min ms", "p50 ms", "p99 ms", "max ms"],
        4,
    );
    for s in scales {
        for l in &s.latency {
            table.add_row(vec![
                s.scale.to_string(),
                l.replica.to_owned(),
                l.clients.to_string(),
                l.measure.to_owned(),
                l.stats.samples.to_string(),
                ms(l.stats.min_ms),
                ms(l.stats.p50_ms),
                ms(l.stats.p99_ms),
                ms(l.stats.max_ms),
            ]);
        }
    }
    table
}

fn scale_table(scales: &[ScaleReport]) -> Table {
    let mut table = table_right_from(
        &[
            "N/M",
            "changes/s (asked/achieved)",
            "POST p50/p99 ms",
            "deliveries (all)",
            "measured deliveries/s",
            "exactly once",
            "RSS per idle conn A/B KiB",
            "CPU s A/B/bench; machine busy",
            "stalls p99/max ms",
            "new PG sessions",
            "idle: PG sessions/s, CPU A/B",
            "load avg",
        ],
        1,
    );
    for s in scales {
        table.add_row(vec![
            s.scale.to_string(),
            format!("{}/{:.1} over {:.1} s", s.rate_target, s.rate_achieved, s.measured_s),
            format!("{:.1}/{:.1}", s.write_p50_ms, s.write_p99_ms),
            s.deliveries.to_string(),
            format!("{:.0}", s.measured_deliveries_per_s),
            s.verification.summary(),
            format!(
                "{:.1}/{:.1} ({}→{} / {}→{} MiB)",
                s.memory[0].per_connection_kib,
                s.memory[1].per_connection_kib,
                s.memory[0].rss_before_kib / 1024,
                s.memory[0].rss_after_kib / 1024,
                s.memory[1].rss_before_kib / 1024,
                s.memory[1].rss_after_kib / 1024
            ),
            s.cpu.describe(true),
            format!("{:.1}/{:.1}", s.stalls.p99_ms, s.stalls.max_ms),
            s.postgres_sessions.to_string(),
            format!("{:.0}, {:.2}/{:.2}", s.idle.postgres_sessions_per_s, s.idle.router_a_cpu, s.idle.router_b_cpu),
            load(&s.load_average),
        ]);
    }
    table
}

fn burst_table(b: &BurstReport) -> Table {
    let mut table = table_right_from(
        &[
            "replica",
            "clients",
            "deliveries",
            "commit → first / last read ms",
            "deliveries/s",
            "event reaches all: p50/max ms",
            "RSS per idle conn KiB",
        ],
        1,
    );
    for (r, m) in b.per_replica.iter().zip(&b.memory) {
        table.add_row(vec![
            r.replica.to_owned(),
            r.clients.to_string(),
            r.deliveries.to_string(),
            format!("{:.0} / {:.0}", r.first_read_ms, r.wall_ms),
            format!("{:.0}", r.deliveries_per_s),
            format!("{:.1}/{:.1}", r.event_reaches_all_clients.p50_ms, r.event_reaches_all_clients.max_ms),
            format!("{:.1} ({}→{} MiB)", m.per_connection_kib, m.rss_before_kib / 1024, m.rss_after_kib / 1024),
        ]);
    }
    table.add_row(vec![
        "both".to_owned(),
        b.clients.to_string(),
        b.deliveries.to_string(),
        format!("{:.0}", b.wall_ms),
        format!("{:.0}", b.deliveries_per_s),
        format!("trigger's 201 {:.0} ms after the commit", b.trigger_ms),
        format!(
            "{}; CPU s A/B/bench, machine busy {}; stalls p99/max {:.1}/{:.1} ms; load {}",
            b.verification.summary(),
            b.cpu.describe(true),
            b.stalls.p99_ms,
            b.stalls.max_ms,
            load(&b.load_average)
        ),
    ]);
    table
}

fn ramp_table(m: &RampReport) -> Table {
    let mut table = table_right_from(&["", "value"], 1);
    let stopped = match &m.stopped_by {
        Some(error) => format!("{} connects failed, first: {error}", m.failed),
        None => format!("the cap ({}: file limit of this process minus {FD_RESERVE}, or --max-connections)", m.cap),
    };
    table.add_row(vec!["sockets opened on A".to_owned(), m.opened.to_string()]);
    table.add_row(vec!["…that then received their tenant's change exactly once".to_owned(), m.held.to_string()]);
    table.add_row(vec!["stopped by".to_owned(), stopped]);
    table.add_row(vec!["handshakes/s".to_owned(), format!("{:.0}", m.connect_per_s)]);
    let first = m.steps.first().map_or(0, |s| s.rss_kib);
    let last = m.steps.last().map_or(0, |s| s.rss_kib);
    table.add_row(vec![
        "router RSS".to_owned(),
        format!("{} → {} MiB: {:.1} KiB per connection", first / 1024, last / 1024, m.per_connection_kib),
    ]);
    table.add_row(vec![
        "CPU s A/bench; machine busy; load avg".to_owned(),
        format!("{}; {}", m.cpu.describe(false), load(&m.load_average)),
    ]);
    table
}

fn target_table(rows: &[TargetRow]) -> Table {
    let mut table = table_right_from(&["target", "value", "goal", "met"], 1);
    for row in rows {
        table.add_row(vec![
            row.target.clone(),
            row.value.clone(),
            row.goal.clone(),
            if row.met { "met" } else { "NOT met" }.to_owned(),
        ]);
    }
    table
}

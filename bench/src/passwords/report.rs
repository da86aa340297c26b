//! The passwords benchmark's figures: one [`Phase`] per side, operation and concurrency, and
//! bounded over unbounded as ratios.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::Hashing;
use crate::harness::output::{new_table, table_right_from};
use crate::harness::stats::nearest_rank;

#[derive(Debug, Serialize)]
pub struct Phase {
    side: Hashing,
    what: &'static str,
    concurrency: u32,
    requests: u32,
    pub succeeded: u32,
    busy: u32,
    other: u32,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    peak_rss_mib: u64,
}

impl Phase {
    /// `outcomes` are (status, round trip) per request; `ok` is the status of a success.
    pub fn summarize(
        side: Hashing,
        what: &'static str,
        concurrency: u32,
        outcomes: &[(u16, Duration)],
        elapsed: Duration,
        peak_rss_mib: u64,
        ok: u16,
    ) -> Self {
        let mut ok_ms: Vec<f64> =
            outcomes.iter().filter(|(s, _)| *s == ok).map(|(_, d)| d.as_secs_f64() * 1000.0).collect();
        ok_ms.sort_by(f64::total_cmp);
        let pick = |q: f64| nearest_rank(&ok_ms, q).unwrap_or(0.0);
        let count = |f: &dyn Fn(u16) -> bool| outcomes.iter().filter(|(s, _)| f(*s)).count() as u32;
        Self {
            side,
            what,
            concurrency,
            requests: outcomes.len() as u32,
            succeeded: count(&|s| s == ok),
            busy: count(&|s| s == 503),
            other: count(&|s| s != ok && s != 503),
            per_second: f64::from(count(&|s| s == ok)) / elapsed.as_secs_f64(),
            p50_ms: pick(0.50),
            p99_ms: pick(0.99),
            peak_rss_mib,
        }
    }
}

/// Bounded over unbounded, per phase: throughput and peak memory.
pub fn ratios(phases: &[Phase]) -> Vec<serde_json::Value> {
    phases
        .iter()
        .filter(|p| p.side == Hashing::Bounded)
        .filter_map(|b| {
            let u = phases
                .iter()
                .find(|u| u.side == Hashing::Unbounded && u.what == b.what && u.concurrency == b.concurrency)?;
            Some(json!({
                "what": b.what,
                "concurrency": b.concurrency,
                "throughput_ratio": b.per_second / u.per_second.max(f64::MIN_POSITIVE),
                "peak_rss_ratio": b.peak_rss_mib as f64 / (u.peak_rss_mib.max(1)) as f64,
            }))
        })
        .collect()
}

pub fn print(phases: &[Phase]) {
    let mut phases_table = table_right_from(
        &[
            "side",
            "what",
            "in flight",
            "requests",
            "ok",
            "busy (503)",
            "other",
            "ok/s",
            "p50 ms",
            "p99 ms",
            "peak RSS MiB",
        ],
        2,
    );
    for p in phases {
        phases_table.add_row([
            format!("{:?}", p.side).to_lowercase(),
            p.what.to_owned(),
            p.concurrency.to_string(),
            p.requests.to_string(),
            p.succeeded.to_string(),
            p.busy.to_string(),
            p.other.to_string(),
            format!("{:.1}", p.per_second),
            format!("{:.1}", p.p50_ms),
            format!("{:.1}", p.p99_ms),
            p.peak_rss_mib.to_string(),
        ]);
    }
    println!("{phases_table}");
    let mut ratios_table =
        new_table(&["what", "in flight", "ok/s bounded ÷ unbounded", "peak RSS bounded ÷ unbounded"]);
    for r in ratios(phases) {
        ratios_table.add_row([
            r["what"].as_str().unwrap_or_default().to_owned(),
            r["concurrency"].to_string(),
            format!("{:.2}", r["throughput_ratio"].as_f64().unwrap_or_default()),
            format!("{:.2}", r["peak_rss_ratio"].as_f64().unwrap_or_default()),
        ]);
    }
    println!("{ratios_table}");
}

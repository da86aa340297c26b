//! The realtime benchmark's writes (changes made through the writing replica's API, paced or
//! as fast as they go) and what every client must then have read: its tenant's committed
//! seqs, in order, once; and the latency of each measured delivery.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use indicatif::ProgressBar;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::clients::{ClientLog, ClientSpec};
use super::replicas::{Router, Tenant};
use super::report::{Dist, Latency, MEASURE_FROM_201, MEASURE_FROM_SENT, MEASURE_FROM_TS, Verification, replica_name};

/// A change made through the writing replica's API.
pub struct Write {
    pub tenant: usize,
    /// Warm-up writes are delivered and verified but not in the latency figures.
    pub measured: bool,
    pub outcome: Result<Committed, String>,
}

#[derive(Clone, Copy)]
pub struct Committed {
    pub seq: i64,
    pub sent: Instant,
    /// When the 201's headers arrived.
    pub returned: Instant,
}

pub struct Writer {
    http: reqwest::Client,
    base: Arc<str>,
    tenants: Arc<Vec<Tenant>>,
    tag: String,
}

impl Writer {
    pub fn new(router: &Router, tenants: &Arc<Vec<Tenant>>, tag: &str) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?,
            base: router.base.as_str().into(),
            tenants: tenants.clone(),
            tag: tag.to_owned(),
        })
    }

    /// One change per entry of `plan` (tenant, measured), at `rate` per second (open loop: a
    /// slow answer does not delay the next write) or, without a rate, as fast as
    /// `concurrency` writers go.
    pub async fn write(
        &self,
        plan: &[(usize, bool)],
        rate: Option<f64>,
        concurrency: usize,
        bar: &ProgressBar,
    ) -> anyhow::Result<Vec<Write>> {
        let permits = Arc::new(Semaphore::new(concurrency));
        let mut ticker = rate.map(|r| {
            let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / r));
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            t
        });
        let mut tasks = JoinSet::new();
        for (n, &(tenant, measured)) in plan.iter().enumerate() {
            if let Some(ticker) = ticker.as_mut() {
                ticker.tick().await;
            }
            let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
            let (http, base, token) = (self.http.clone(), self.base.clone(), self.tenants[tenant].token.clone());
            let email = format!("{}-{n}@bench.example.com", self.tag);
            let bar = bar.clone();
            tasks.spawn(async move {
                let outcome = post_employee(&http, &base, &token, &email).await;
                drop(permit);
                bar.inc(1);
                Write { tenant, measured, outcome }
            });
        }
        let mut writes = Vec::with_capacity(plan.len());
        while let Some(write) = tasks.join_next().await {
            writes.push(write.context("a writer task panicked")?);
        }
        Ok(writes)
    }
}

async fn post_employee(http: &reqwest::Client, base: &str, token: &str, email: &str) -> Result<Committed, String> {
    let body = json!({"first_name": "Live", "last_name": "Event", "email": email, "hire_date": "2024-01-15"});
    let sent = Instant::now();
    let response = http
        .post(format!("{base}/employees"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let returned = Instant::now();
    let status = response.status();
    let seq = response.headers().get("x-event-seq").and_then(|v| v.to_str().ok()?.parse().ok());
    let text = response.text().await.unwrap_or_default();
    match (status, seq) {
        (reqwest::StatusCode::CREATED, Some(seq)) => Ok(Committed { seq, sent, returned }),
        (reqwest::StatusCode::CREATED, None) => Err("201 without X-Event-Seq".into()),
        _ => Err(format!("HTTP {status}: {text}")),
    }
}

/// Every tenant's committed seqs, in order.
pub fn expected_seqs(writes: &[Write]) -> HashMap<usize, Vec<i64>> {
    let mut expected: HashMap<usize, Vec<i64>> = HashMap::new();
    for w in writes {
        if let Ok(c) = &w.outcome {
            expected.entry(w.tenant).or_default().push(c.seq);
        }
    }
    for seqs in expected.values_mut() {
        seqs.sort_unstable();
    }
    expected
}

pub fn failed_writes(writes: &[Write]) -> (usize, Option<String>) {
    let failed: Vec<&String> = writes.iter().filter_map(|w| w.outcome.as_ref().err()).collect();
    (failed.len(), failed.first().map(|e| (*e).clone()))
}

/// The writer's own figures over the measured writes.
pub struct Timing {
    pub rate: f64,
    pub span_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Timing {
    pub fn of(writes: &[Write]) -> Self {
        let measured: Vec<&Committed> =
            writes.iter().filter(|w| w.measured).filter_map(|w| w.outcome.as_ref().ok()).collect();
        let first = measured.iter().map(|c| c.sent).min();
        let last = measured.iter().map(|c| c.sent).max();
        let span_s = match (first, last) {
            (Some(first), Some(last)) => (last - first).as_secs_f64(),
            _ => 0.0,
        };
        let rate = if span_s > 0.0 { (measured.len() - 1) as f64 / span_s } else { 0.0 };
        let round_trips = Dist::of(measured.iter().map(|c| micros(c.returned - c.sent)).collect());
        Self { rate, span_s, p50_ms: round_trips.p50_ms, p99_ms: round_trips.p99_ms }
    }
}

/// Latency of every measured delivery, per replica and measure.
pub fn latencies(logs: &[(ClientSpec, ClientLog)], writes: &[Write], anchor: (Instant, SystemTime)) -> Vec<Latency> {
    let commits: HashMap<(usize, i64), Committed> = writes
        .iter()
        .filter(|w| w.measured)
        .filter_map(|w| Some(((w.tenant, w.outcome.as_ref().ok()?.seq), *w.outcome.as_ref().ok()?)))
        .collect();
    let anchor_wall_us = anchor.1.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
    let mut rows = Vec::new();
    for replica in [0, 1] {
        let (mut from_201, mut from_sent, mut from_ts) = (Vec::new(), Vec::new(), Vec::new());
        for (spec, log) in logs.iter().filter(|(s, _)| s.replica == replica) {
            for got in &log.events {
                let Some(commit) = commits.get(&(spec.tenant, got.seq)) else { continue };
                from_201.push(signed_micros(got.at, commit.returned));
                from_sent.push(signed_micros(got.at, commit.sent));
                if let Some(ts) = got.ts_us {
                    from_ts.push(anchor_wall_us + signed_micros(got.at, anchor.0) - ts);
                }
            }
        }
        let clients = logs.iter().filter(|(s, _)| s.replica == replica).count();
        for (measure, values) in
            [(MEASURE_FROM_201, from_201), (MEASURE_FROM_SENT, from_sent), (MEASURE_FROM_TS, from_ts)]
        {
            rows.push(Latency { replica: replica_name(replica), clients, measure, stats: Dist::of(values) });
        }
    }
    rows
}

/// `later − earlier` in microseconds, negative when `later` came first.
pub fn signed_micros(later: Instant, earlier: Instant) -> i64 {
    match later.checked_duration_since(earlier) {
        Some(d) => micros(d),
        None => -micros(earlier - later),
    }
}

pub fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Per client: the received seqs must be exactly its tenant's committed seqs, in order, once.
pub fn verify(logs: &[(ClientSpec, ClientLog)], writes: &[Write], expected: &HashMap<usize, Vec<i64>>) -> Verification {
    let (writes_failed, first_failed_write) = failed_writes(writes);
    let mut v = Verification {
        clients: logs.len(),
        writes_failed,
        first_failed_write,
        tenants_with_seq_gaps: expected.values().filter(|s| s.windows(2).any(|w| w[1] != w[0] + 1)).count(),
        ..Verification::default()
    };
    let none = Vec::new();
    for (spec, log) in logs {
        let want = expected.get(&spec.tenant).unwrap_or(&none);
        let got: Vec<i64> = log.events.iter().map(|g| g.seq).collect();
        if log.ended.is_some() {
            v.closed_early += 1;
            v.first_problem.get_or_insert_with(|| log.ended.clone().unwrap_or_default());
        }
        if got == *want {
            v.exact += 1;
            continue;
        }
        let got_set: HashSet<i64> = got.iter().copied().collect();
        let want_set: HashSet<i64> = want.iter().copied().collect();
        let missing = want.iter().filter(|s| !got_set.contains(s)).count() as u64;
        let duplicated = (got.len() - got_set.len()) as u64;
        let unexpected = got_set.difference(&want_set).count() as u64;
        let out_of_order = !got.windows(2).all(|w| w[0] < w[1]);
        v.missing += missing;
        v.duplicated += duplicated;
        v.unexpected += unexpected;
        v.out_of_order += usize::from(out_of_order);
        v.first_problem.get_or_insert_with(|| {
            format!(
                "a client of tenant #{} on {}: {missing} missing, {duplicated} duplicated, {unexpected} unexpected{}",
                spec.tenant,
                replica_name(spec.replica),
                if out_of_order { ", out of order" } else { "" }
            )
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::clients::Got;

    #[test]
    fn a_client_with_a_duplicate_and_a_hole_is_not_exact() {
        let at = Instant::now();
        let log = |seqs: &[i64]| ClientLog {
            events: seqs.iter().map(|&seq| Got { seq, at, ts_us: None }).collect(),
            ..ClientLog::default()
        };
        let spec = ClientSpec { tenant: 0, replica: 0 };
        let writes: Vec<Write> = (1..=3)
            .map(|seq| Write { tenant: 0, measured: true, outcome: Ok(Committed { seq, sent: at, returned: at }) })
            .collect();
        let expected = expected_seqs(&writes);
        let v = verify(&[(spec, log(&[1, 2, 3])), (spec, log(&[1, 1, 3]))], &writes, &expected);
        assert_eq!((v.clients, v.exact, v.missing, v.duplicated, v.out_of_order), (2, 1, 1, 1, 1));
        assert!(!v.clean());
    }
}

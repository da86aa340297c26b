//! The router benchmark's load generator: keep-alive clients on a runtime of their own, closed
//! and open loops (Poisson arrivals), and the Zipf draw of each request's tenant.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::PAGE_SIZE;
use crate::harness::stats::{histogram_us, record_us};

/// The workload's URL on a service at `base_url`: `GET /employees?limit=50`.
pub fn employees_url(base_url: &str) -> String {
    format!("{base_url}/employees?limit={PAGE_SIZE}")
}

/// One HTTP client per simulated user: one keep-alive connection each.
pub fn http_client() -> reqwest::Client {
    loopback_client(reqwest::Client::builder().pool_max_idle_per_host(1))
}

/// Plain HTTP to the loopback only: no proxy, and no TLS roots (loading them costs about half a
/// MiB per client).
fn loopback_client(builder: reqwest::ClientBuilder) -> reqwest::Client {
    builder
        .tcp_nodelay(true)
        .no_proxy()
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("an HTTP client")
}

/// The load generator's own runtime (two worker threads), apart from the one that runs the
/// router, the baseline and the control plane.
///
/// Sharing one scheduler would make the server's tasks queue behind the clients' on the same
/// worker threads, a cost no deployed router pays (its clients are other processes, other
/// machines); it also favoured the side with fewer await points per request. Separate
/// runtimes leave the sharing of the two cores to the kernel, as with separate processes.
/// Every client connection is opened from a task of this runtime, so its I/O is driven here.
pub fn load_runtime() -> &'static tokio::runtime::Runtime {
    static LOAD: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    LOAD.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bench-load")
            .enable_all()
            .build()
            .expect("the load generator's runtime")
    })
}

/// A client for an open loop: its pool keeps as many connections as were ever in flight, so
/// after the warm-up no request waits for a TCP connect.
pub fn open_loop_client() -> reqwest::Client {
    loopback_client(reqwest::Client::builder())
}

/// Opens each client's connection (`GET /health`) from the load runtime, so no measured
/// request pays a TCP connect and every connection's I/O runs there.
pub async fn connect_clients(clients: &[reqwest::Client], base_url: &str) {
    let url = format!("{base_url}/health");
    let opened: Vec<_> = clients
        .iter()
        .map(|client| {
            let (client, url) = (client.clone(), url.clone());
            load_runtime().spawn(async move {
                if let Ok(response) = client.get(&url).send().await {
                    let _ = response.bytes().await;
                }
            })
        })
        .collect();
    for connection in opened {
        let _ = connection.await;
    }
}

#[derive(Debug)]
pub enum Answer {
    Ok {
        bytes: usize,
    },
    Status(u16),
    Transport,
    /// A request of the floor (no HTTP) failed at the database.
    Database,
}

pub async fn fetch(client: &reqwest::Client, url: &str, token: &str) -> Answer {
    let Ok(response) = client.get(url).bearer_auth(token).send().await else {
        return Answer::Transport;
    };
    let status = response.status();
    match response.bytes().await {
        Ok(body) if status == reqwest::StatusCode::OK => Answer::Ok { bytes: body.len() },
        Ok(_) => Answer::Status(status.as_u16()),
        Err(_) => Answer::Transport,
    }
}

/// What one or more load workers saw: latency of successful requests, errors by kind.
pub struct RequestTally {
    pub latency: Histogram<u64>,
    pub requests: u64,
    pub errors: BTreeMap<String, u64>,
    pub bytes: u64,
}

impl RequestTally {
    pub fn new() -> Self {
        Self { latency: histogram_us(), requests: 0, errors: BTreeMap::new(), bytes: 0 }
    }

    pub fn record(&mut self, latency: Duration, outcome: &Answer) {
        self.requests += 1;
        match outcome {
            Answer::Ok { bytes } => {
                record_us(&mut self.latency, latency);
                self.bytes += *bytes as u64;
            }
            Answer::Status(code) => *self.errors.entry(format!("HTTP {code}")).or_default() += 1,
            Answer::Transport => *self.errors.entry("transport".to_owned()).or_default() += 1,
            Answer::Database => *self.errors.entry("database".to_owned()).or_default() += 1,
        }
    }

    pub fn merge(&mut self, other: &RequestTally) {
        self.latency.add(&other.latency).expect("histograms with the same bounds");
        self.requests += other.requests;
        self.bytes += other.bytes;
        for (kind, n) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += n;
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// `clients` users each sending the request, waiting for the whole answer, and sending the
/// next (a closed loop), for `duration`. Returns the tally and the wall time.
pub async fn closed_loop(
    clients: &[reqwest::Client],
    url: &str,
    token: &str,
    duration: Duration,
) -> anyhow::Result<(RequestTally, Duration)> {
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = clients
        .iter()
        .map(|client| {
            let (client, url, token) = (client.clone(), url.to_owned(), token.to_owned());
            load_runtime().spawn(async move {
                let mut tally = RequestTally::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let outcome = fetch(&client, &url, &token).await;
                    tally.record(sent.elapsed(), &outcome);
                }
                tally
            })
        })
        .collect();
    let mut total = RequestTally::new();
    for worker in workers {
        total.merge(&worker.await.context("a load worker panicked")?);
    }
    Ok((total, started.elapsed()))
}

/// Requests at Poisson times, `rate` per second for `duration`, each sent whether or not the
/// earlier ones have answered (an open loop), over one client whose pool opens as many
/// connections as are in flight. Latency counts from each request's scheduled start, so a late
/// scheduler cannot hide queueing. Runs wholly on the load runtime.
pub async fn open_loop(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<(RequestTally, Duration)> {
    let (client, url, token) = (client.clone(), url.to_owned(), token.to_owned());
    let generator = load_runtime().spawn(async move {
        let tally = Arc::new(std::sync::Mutex::new(RequestTally::new()));
        let mut rng = StdRng::seed_from_u64(0x0be7);
        let mut arrivals = PoissonArrivals::new(rate, duration);
        let mut requests = Vec::new();
        while let Some(sent) = arrivals.next(&mut rng).await {
            let (client, url, token, tally) = (client.clone(), url.clone(), token.clone(), tally.clone());
            requests.push(tokio::spawn(async move {
                let outcome = fetch(&client, &url, &token).await;
                tally.lock().expect("tally lock").record(sent.elapsed(), &outcome);
            }));
        }
        for request in requests {
            request.await.context("a request task panicked")?;
        }
        let wall = arrivals.started.elapsed();
        let tally = Arc::try_unwrap(tally).map_err(|_| anyhow!("request tasks still hold the tally"))?;
        anyhow::Ok((tally.into_inner().expect("tally lock"), wall))
    });
    generator.await.context("the open-loop generator panicked")?
}

/// Poisson arrival times: exponential gaps at `rate` per second from the start, for `duration`.
pub struct PoissonArrivals {
    rate: f64,
    duration: Duration,
    pub started: Instant,
    scheduled: Instant,
}

impl PoissonArrivals {
    pub fn new(rate: f64, duration: Duration) -> Self {
        let started = Instant::now();
        Self { rate, duration, started, scheduled: started }
    }

    /// Sleeps until the next arrival and returns its scheduled time; `None` once past the
    /// duration. The caller's `rng` may also draw other things between arrivals.
    pub async fn next(&mut self, rng: &mut impl Rng) -> Option<Instant> {
        // Exponential gaps: -ln(U) / rate, U in (0, 1].
        self.scheduled += Duration::from_secs_f64(-(1.0 - rng.random::<f64>()).ln() / self.rate);
        if self.scheduled - self.started >= self.duration {
            return None;
        }
        tokio::time::sleep_until(self.scheduled.into()).await;
        Some(self.scheduled)
    }
}

/// How requests arrive in an [`Alternation`].
#[derive(Clone, Copy)]
pub enum Arrivals {
    /// Each client sends its next request when the last one answered.
    ClosedLoop,
    /// Poisson arrivals at `rate` per second over the first client (see [`open_loop`]).
    OpenLoop { rate: f64 },
}

/// Zipf(s) over ranks 0..n: P(rank k) ∝ 1/(k+1)^s, sampled by binary search in the CDF.
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, exponent: f64) -> Self {
        let mut sum = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|k| {
                sum += 1.0 / (k as f64).powf(exponent);
                sum
            })
            .collect();
        for c in &mut cdf {
            *c /= sum;
        }
        Self { cdf }
    }

    pub fn sample(&self, rng: &mut impl Rng) -> usize {
        let u: f64 = rng.random();
        self.cdf.partition_point(|&c| c <= u).min(self.cdf.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_samples_follow_one_over_rank() {
        let zipf = Zipf::new(100, 1.0);
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = [0u32; 100];
        let draws = 200_000;
        for _ in 0..draws {
            counts[zipf.sample(&mut rng)] += 1;
        }
        let harmonic: f64 = (1..=100).map(|k| 1.0 / k as f64).sum();
        for rank in [0usize, 1, 9, 99] {
            let expected = f64::from(draws) / ((rank + 1) as f64 * harmonic);
            let seen = f64::from(counts[rank]);
            assert!((seen - expected).abs() < 0.1 * expected + 30.0, "rank {rank}: {seen} vs {expected}");
        }
    }
}

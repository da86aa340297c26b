//! Phase 3, the thundering herd: many concurrent first requests for one cold tenant.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use stack::Company;
use tokio::sync::Barrier;

use super::Settings;
use super::load::{RequestTally, connect_clients, employees_url, fetch, http_client, load_runtime};
use super::platform::BenchPlatform;
use super::results::{Counters, Herd, LatencyMs};

pub async fn phase(
    settings: &Settings,
    platform: &BenchPlatform,
    cold: &Company,
    warm: &Company,
) -> anyhow::Result<Herd> {
    let router = platform
        .start_router(format!("bench-router-herd-{}", platform.run_id), |c| {
            settings.many_tenant_pool(c);
            // A queue of a thousand on a share of a few connections must not time out into 503s.
            c.pool.acquire_timeout = Duration::from_secs(120);
        })
        .await?;
    let outcome = async {
        let clients: Vec<_> = (0..settings.herd).map(|_| http_client()).collect();
        connect_clients(&clients, &router.url).await;
        fetch(&clients[0], &employees_url(&router.url), &warm.token).await;
        let before = Counters::read(&router.state);
        let barrier = Arc::new(Barrier::new(clients.len() + 1));
        let url = employees_url(&router.url);
        let requests: Vec<_> = clients
            .into_iter()
            .map(|client| {
                let (barrier, url, token) = (barrier.clone(), url.clone(), cold.token.clone());
                load_runtime().spawn(async move {
                    barrier.wait().await;
                    let sent = Instant::now();
                    let outcome = fetch(&client, &url, &token).await;
                    (sent.elapsed(), outcome)
                })
            })
            .collect();
        barrier.wait().await;
        let released = Instant::now();
        let mut tally = RequestTally::new();
        for request in requests {
            let (latency, outcome) = request.await.context("a herd request panicked")?;
            tally.record(latency, &outcome);
        }
        let wall = released.elapsed();
        let counters = Counters::read(&router.state).since(before);
        anyhow::Ok(Herd {
            requests: tally.requests,
            errors: tally.error_count(),
            error_kinds: tally.errors.clone(),
            share: settings.zipf_share,
            latency: LatencyMs::of(&tally.latency),
            wall_ms: wall.as_secs_f64() * 1000.0,
            counters,
        })
    }
    .await;
    router.stop().await?;
    outcome
}

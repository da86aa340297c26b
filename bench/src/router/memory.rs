//! Phase 4, memory per cached tenant, measured in a fresh process of this binary that holds
//! only a router (`router --memory-probe`, started by the benchmark itself).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use stack::{Company, RouterHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use super::Settings;
use super::load::{RequestTally, connect_clients, employees_url, fetch, http_client};
use super::platform::BenchPlatform;
use super::results::{LatencyMs, Memory};
use crate::harness::machine::own_rss_kib;

/// The resident set of this process, in KiB.
fn rss_kib() -> anyhow::Result<u64> {
    own_rss_kib().context("no VmRSS in /proc/self/status")
}

/// What the memory probe needs: how to build a router, and the tenants to touch.
#[derive(Serialize, Deserialize)]
struct ProbeInput {
    catalog_url: String,
    /// The tenant role key in hex; it travels over the probe's stdin only.
    role_key: String,
    jwks_url: String,
    application_name: String,
    budget: usize,
    share: usize,
    touch_clients: usize,
    warm_token: String,
    /// The active tenants, each touched once by a request with its token.
    active: Vec<(Uuid, String)>,
    /// Every other tenant in the catalog, whose route is looked up without a request.
    others: Vec<Uuid>,
}

/// Phase 4 runs in a fresh process of this binary: this one has run provisioning (argon2 allocates
/// 19 MiB per hash) and the allocator keeps what was freed, so its resident set barely moves
/// when a router grows. A fresh process holds only the router and a small client.
pub async fn phase(
    settings: &Settings,
    platform: &BenchPlatform,
    active: &[Company],
    warm: &Company,
) -> anyhow::Result<Memory> {
    let touched: std::collections::HashSet<Uuid> = active.iter().map(|t| t.id).chain([warm.id]).collect();
    let others = platform.all_tenant_ids().await?.into_iter().filter(|id| !touched.contains(id)).collect();
    let input = ProbeInput {
        catalog_url: platform.stack.router_catalog_url.clone(),
        role_key: platform.stack.role_key.to_hex().expose_secret().to_owned(),
        jwks_url: platform.stack.jwks_url.clone(),
        application_name: format!("bench-router-memory-{}", platform.run_id),
        budget: settings.budget,
        share: settings.zipf_share,
        touch_clients: settings.touch_clients,
        warm_token: warm.token.clone(),
        active: active.iter().map(|t| (t.id, t.token.clone())).collect(),
        others,
    };
    let exe = std::env::current_exe().context("finding this executable")?;
    let mut child = tokio::process::Command::new(exe)
        .args(["router", "--memory-probe"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting the memory probe")?;
    let mut stdin = child.stdin.take().context("the memory probe's stdin")?;
    stdin.write_all(&serde_json::to_vec(&input)?).await?;
    drop(stdin);
    let output = child.wait_with_output().await.context("waiting for the memory probe")?;
    if !output.status.success() {
        bail!("the memory probe failed ({})", output.status);
    }
    serde_json::from_slice(&output.stdout).context("reading the memory probe's figures")
}

/// The memory probe's process: reads a [`ProbeInput`] on stdin, prints [`Memory`] on stdout.
pub async fn probe() -> anyhow::Result<()> {
    let mut raw = Vec::new();
    tokio::io::stdin().read_to_end(&mut raw).await.context("reading the probe's input")?;
    let input: ProbeInput = serde_json::from_slice(&raw).context("parsing the probe's input")?;
    let config = stack::RouterConfig::new(
        SecretString::from(input.catalog_url.clone()),
        SecretString::from(input.role_key.clone()),
        input.jwks_url.clone(),
    );
    let mut config = config;
    config.listen = ([127, 0, 0, 1], 0).into();
    config.pool.application_name = input.application_name.clone();
    config.pool.budget_per_server = input.budget;
    config.pool.max_per_tenant = input.share;
    // Nothing expires or is swept while measuring.
    config.route_ttl = Duration::from_secs(3600);
    config.pool.idle_timeout = Duration::from_secs(3600);
    let router = RouterHandle::start(config).await.context("starting the router")?;
    let measured = measure_memory(&router, &input).await;
    router.stop().await?;
    println!("{}", serde_json::to_string(&measured?)?);
    Ok(())
}

async fn measure_memory(router: &RouterHandle, input: &ProbeInput) -> anyhow::Result<Memory> {
    let state = &router.state;
    // Everything allocated for measuring is allocated before the first reading; the first
    // request pays the JWKS fetch and first-use initialisation.
    let clients: Vec<_> = (0..input.touch_clients).map(|_| http_client()).collect();
    connect_clients(&clients, &router.url).await;
    let url = employees_url(&router.url);
    fetch(&clients[0], &url, &input.warm_token).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_before = rss_kib()?;

    // Every active tenant once: a route, a pool and (within the budget) an idle connection.
    let next = Arc::new(AtomicUsize::new(0));
    let tokens: Arc<Vec<String>> = Arc::new(input.active.iter().map(|(_, token)| token.clone()).collect());
    let workers: Vec<_> = clients
        .iter()
        .map(|client| {
            let (client, url, next, tokens) = (client.clone(), url.clone(), next.clone(), tokens.clone());
            tokio::spawn(async move {
                let mut tally = RequestTally::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(token) = tokens.get(n) else { return tally };
                    let sent = Instant::now();
                    let outcome = fetch(&client, &url, token).await;
                    tally.record(sent.elapsed(), &outcome);
                }
            })
        })
        .collect();
    let mut touched = RequestTally::new();
    for worker in workers {
        touched.merge(&worker.await.context("a touch worker panicked")?);
    }
    state.pools.sweep().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_touched = rss_kib()?;
    let routes_touched = state.routes.cached_count();
    let pools_touched = state.pools.pool_count();
    let connections_touched = state.pools.open_connections_total();

    // Routes alone: every other tenant in the catalog, looked up without a request.
    let lookups: Vec<_> = futures::stream::iter(input.others.iter().copied())
        .map(|id| async move { state.routes.get(tenancy::TenantId(id)).await.is_ok() })
        .buffer_unordered(8)
        .collect()
        .await;
    let lookup_failures = lookups.iter().filter(|ok| !**ok).count();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_routes = rss_kib()?;
    let routes_all = state.routes.cached_count();

    // Pools retired, as the sweeper does after the idle timeout: connections closed.
    for (id, _) in &input.active {
        state.pools.retire_tenant(tenancy::TenantId(*id)).await;
    }
    state.pools.sweep().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_retired = rss_kib()?;

    let per = |after: u64, before: u64, count: usize| {
        if count == 0 { f64::NAN } else { (after as f64 - before as f64) / count as f64 }
    };
    Ok(Memory {
        tenants_touched: input.active.len(),
        touch_clients: input.touch_clients,
        touch_errors: touched.error_count(),
        first_request_light_load: LatencyMs::of(&touched.latency),
        rss_before_kib: rss_before,
        rss_after_touch_kib: rss_touched,
        cached_routes_after_touch: routes_touched,
        pools_after_touch: pools_touched,
        open_connections_after_touch: connections_touched,
        kib_per_touched_tenant: per(rss_touched, rss_before, input.active.len()),
        extra_routes: input.others.len() as u64,
        cached_routes_after_lookups: routes_all,
        route_lookup_failures: lookup_failures,
        rss_after_routes_kib: rss_routes,
        kib_per_route_only: per(rss_routes, rss_touched, input.others.len()),
        rss_after_retire_kib: rss_retired,
        pools_after_retire: state.pools.pool_count(),
        open_connections_after_retire: state.pools.open_connections_total(),
    })
}

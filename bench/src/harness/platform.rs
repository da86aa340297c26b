//! The platform under test, started through the `stack` crate the way a deployment wires it
//! (control plane in this process; router replicas started by the phases that want them), and
//! companies signed up through its API in bulk.

use anyhow::Context;
use futures::StreamExt;
use sqlx::{Connection, PgConnection};
use stack::{Company, Platform, PlatformBuilder};

use super::output::progress;

/// The platform on the server `admin_url`, no router replica yet, signups never throttled;
/// `tweak` then sets what the benchmark needs (catalog, template, token lifetime, …).
pub fn builder(
    admin_url: &str,
    tweak: impl FnOnce(&mut stack::ControlPlaneConfig) + Send + 'static,
) -> PlatformBuilder {
    PlatformBuilder::new(admin_url).routers(0).control_plane(move |config| {
        // Operator-token calls bypass it anyway; high so that nothing is ever throttled.
        config.signup_limit_per_hour = 1_000_000;
        tweak(config);
    })
}

pub async fn start(builder: PlatformBuilder) -> anyhow::Result<Platform> {
    builder.start().await.context("starting the control plane")
}

/// The catalog's first database server registers with room for 1,000 tenants; a benchmark
/// may place more.
pub async fn make_room(catalog_url: &str, tenants: usize) -> anyhow::Result<()> {
    let mut catalog = PgConnection::connect(catalog_url).await.context("connecting to the catalog")?;
    sqlx::query("UPDATE database_servers SET capacity = greatest(capacity, $1)")
        .bind(i32::try_from(tenants).unwrap_or(i32::MAX))
        .execute(&mut catalog)
        .await?;
    catalog.close().await.ok();
    Ok(())
}

/// Signs a company up per slug through `POST /tenants`, `concurrency` at a time (each hashes a
/// password off the async workers), behind a progress bar; returns them in the slugs' order.
pub async fn sign_up_many(
    platform: &Platform,
    slugs: Vec<String>,
    concurrency: usize,
    what: &str,
) -> anyhow::Result<Vec<Company>> {
    let bar = progress(slugs.len() as u64, what);
    let companies = futures::stream::iter(slugs.iter().enumerate())
        .map(|(i, slug)| {
            let bar = &bar;
            async move {
                let company = platform.signup(slug).await?;
                bar.inc(1);
                anyhow::Ok((i, company))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    bar.finish_and_clear();
    let mut companies = companies.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    companies.sort_by_key(|(i, _)| *i);
    Ok(companies.into_iter().map(|(_, company)| company).collect())
}

//! The router's side of the many-tenant phases: its counters around a phase, and its
//! connections to Postgres, sampled while a load runs and settled between runs.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::{Connection, PgConnection};
use stack::router::AppState;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::SAMPLE_EVERY;
use super::results::{Counters, Peaks};

impl Counters {
    pub fn read(state: &AppState) -> Self {
        let stats = &state.pools.stats;
        Self {
            catalog_lookups: state.routes.lookup_count(),
            pools_created: stats.pools_created.load(Ordering::Relaxed),
            connects: stats.connects.load(Ordering::Relaxed),
            connect_failures: stats.connect_failures.load(Ordering::Relaxed),
            reclaimed_idle: stats.reclaimed_idle.load(Ordering::Relaxed),
            reserve_reclaims: stats.reserve_reclaims.load(Ordering::Relaxed),
            exits_seen: stats.exits_seen.load(Ordering::Relaxed),
            budget_timeouts: stats.budget_timeouts.load(Ordering::Relaxed),
            jwks_fetches: state.verifier.fetch_count(),
            lookup_micros: state.routes.lookup_micros(),
            permit_waits: stats.permit_waits.load(Ordering::Relaxed),
            permit_wait_micros: stats.permit_wait_micros.load(Ordering::Relaxed),
            connect_micros: stats.connect_micros.load(Ordering::Relaxed),
        }
    }
}

/// Counts the server's backends logged in as a tenant role: neither the superuser this
/// connection logs in as nor user 0 (Postgres's own processes: autovacuum, writers). It reads
/// the backend slots through `pg_stat_get_backend_idset()`, not `pg_stat_activity` (see
/// [`Sampler`]).
struct TenantBackends {
    conn: PgConnection,
    superuser: sqlx::postgres::types::Oid,
}

impl TenantBackends {
    async fn connect(admin_url: &str) -> anyhow::Result<Self> {
        let mut conn = PgConnection::connect(admin_url).await.context("connecting to count backends")?;
        let superuser = sqlx::query_scalar("SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user")
            .fetch_one(&mut conn)
            .await?;
        Ok(Self { conn, superuser })
    }

    async fn count(&mut self) -> anyhow::Result<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_catalog.pg_stat_get_backend_idset() AS b
             WHERE pg_catalog.pg_stat_get_backend_userid(b) NOT IN (0, $1)",
        )
        .bind(self.superuser)
        .fetch_one(&mut self.conn)
        .await?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    async fn close(self) {
        self.conn.close().await.ok();
    }
}

/// Waits (up to 5 s) until no backend of a tenant role is left on the server, so that a run
/// does not start while the previous one's hundred connections are still exiting: those exits
/// are Postgres work that would land on the next run's first requests.
pub async fn settle(admin_url: &str) -> anyhow::Result<()> {
    let mut backends = TenantBackends::connect(admin_url).await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while backends.count().await? > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    backends.close().await;
    Ok(())
}

/// Samples the router's connection count every [`SAMPLE_EVERY`] until stopped.
///
/// The server's count is every backend logged in as a tenant role: while a Zipf run lasts, only
/// its router logs in as one (the control plane and the sampler are the superuser), so this
/// counts the router's connections, and counts them high rather than low if anything else did.
/// It reads the backend slots through `pg_stat_get_backend_idset()`, not `pg_stat_activity`:
/// the view's function clips every backend's query text on every call, and at 200 calls a
/// second that was a tenth of Postgres's CPU in a Zipf run (perf), time taken from the router.
pub struct Sampler {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<Peaks>>,
}

impl Sampler {
    /// `own_count` is the serving side's own count of its open connections.
    pub async fn start(
        admin_url: &str,
        own_count: impl Fn() -> usize + Send + 'static,
        budget: usize,
    ) -> anyhow::Result<Self> {
        let mut backends = TenantBackends::connect(admin_url).await?;
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut peaks = Peaks::default();
            let mut ticker = tokio::time::interval(SAMPLE_EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticker.tick() => {}
                }
                let seen = backends.count().await?;
                let own = own_count() as u64;
                peaks.samples += 1;
                peaks.peak_pg_stat_activity = peaks.peak_pg_stat_activity.max(seen);
                peaks.peak_router_count = peaks.peak_router_count.max(own);
                if seen.max(own) > budget as u64 {
                    peaks.samples_over_budget += 1;
                }
            }
            backends.close().await;
            Ok(peaks)
        });
        Ok(Self { stop, task })
    }

    pub async fn stop(self) -> anyhow::Result<Peaks> {
        let _ = self.stop.send(());
        self.task.await.context("the sampler panicked")?
    }
}

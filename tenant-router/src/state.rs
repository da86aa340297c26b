//! What every request handler shares.

use std::sync::Arc;

use crate::auth::TokenVerifier;
use crate::pools::PoolManager;
use crate::routes::{SettingsCache, TenantRoutes};

pub struct AppState {
    pub catalog: sqlx::PgPool,
    pub realtime: Arc<crate::realtime::Hub>,
    /// Fires when the router begins to shut down: WebSocket sessions close with "going away".
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    pub verifier: Arc<TokenVerifier>,
    pub routes: Arc<TenantRoutes>,
    pub memberships: Arc<crate::access::MembershipEpochs>,
    pub settings: Arc<SettingsCache>,
    pub pools: Arc<PoolManager>,
    pub max_body_bytes: usize,
    /// Connection cap and timeouts of the HTTP server.
    pub http: http_api::ConnectionLimits,
    pub trusted_proxies: http_api::TrustedProxies,
    /// This router's Prometheus registry (`GET /metrics`, see `crate::metrics`).
    pub metrics: Arc<http_api::MetricsRegistry>,
    /// Whether requests are recorded and `/metrics` is served (`NEXACORE_METRICS`).
    pub metrics_enabled: bool,
    /// Whether the catalog listener is connected (see `GET /ready`).
    pub listening: Arc<std::sync::atomic::AtomicBool>,
}

/// The tenant-schema versions this build can serve. A tenant outside the range (its migration
/// has not run yet, or ran ahead of this build) gets a fast 503 instead of SQL errors.
pub const MIN_SCHEMA_VERSION: i32 = 2;

pub fn max_schema_version() -> i32 {
    tenant_schema::latest_version()
}

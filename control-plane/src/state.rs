//! What every request handler shares.

use std::sync::Arc;

use sqlx::PgPool;

use crate::config::SignupPolicy;
use crate::fleet::Fleet;
use crate::identity::keys::Keyring;
use crate::identity::tokens::TokenIssuer;
use crate::login::LoginService;
use crate::mail::sender::MailSender;
use crate::migrations::Migrations;
use crate::people::People;
use crate::provision::Provisioner;
use crate::rate_limit::RateLimiter;

pub struct AppState {
    pub backups: Arc<crate::backups::Backups>,
    pub catalog: PgPool,
    pub moves: Arc<crate::moves::Moves>,
    pub fleet: Arc<Fleet>,
    pub provisioner: Arc<Provisioner>,
    pub migrations: Arc<Migrations>,
    pub login: LoginService,
    pub sessions: Arc<crate::identity::sessions::Sessions>,
    pub people: People,
    pub releases: crate::releases::Releases,
    pub mail: Arc<MailSender>,
    pub keys: Arc<Keyring>,
    pub issuer: TokenIssuer,
    /// SHA-256 of the operator token: the token itself is not kept after start-up.
    pub operator_token_digest: [u8; 32],
    pub signup: SignupPolicy,
    pub signup_limiter: RateLimiter,
    pub public_limiter: RateLimiter,
    /// `GET /releases/latest` per client address (generous: see `ReleaseSettings::checks_per_minute`).
    pub release_check_limiter: RateLimiter,
    pub router_url: String,
    /// Largest accepted JSON request body.
    pub max_body_bytes: usize,
    /// Connection cap and timeouts of the HTTP server.
    pub http: http_api::ConnectionLimits,
    pub trusted_proxies: http_api::TrustedProxies,
    /// This control plane's Prometheus registry (`GET /metrics`, see `crate::metrics`).
    pub metrics: Arc<http_api::MetricsRegistry>,
    /// Whether requests are recorded and `/metrics` is served (`NEXACORE_METRICS`).
    pub metrics_enabled: bool,
}

impl AppState {
    /// The router's WebSocket URL, derived from its HTTP URL.
    pub fn ws_url(&self) -> String {
        let base = self.router_url.trim_end_matches('/');
        let ws = if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            base.to_owned()
        };
        format!("{ws}/ws")
    }
}

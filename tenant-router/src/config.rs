//! Typed configuration of the tenant router, from `NEXACORE_*` environment variables.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error(transparent)]
    Source(#[from] http_api::ConfigSourceError),
}

/// Connection limits. The budget caps the connections this router opens to one Postgres
/// server (idle ones included); the share caps what one tenant may hold of it.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub budget_per_server: usize,
    pub max_per_tenant: usize,
    /// Permits per server kept free (or closing) by closing idle connections ahead of need;
    /// see `pools`. `None`: a tenth of the budget; zero turns it off.
    pub reserve_per_server: Option<usize>,
    /// Idle connections older than this are closed; pools without connections are dropped.
    pub idle_timeout: Duration,
    /// How long a request waits for a connection before a 503 with `Retry-After`.
    pub acquire_timeout: Duration,
    pub connect_timeout: Duration,
    /// Consecutive connection failures that open a tenant's breaker, and for how long.
    pub breaker_threshold: u32,
    pub breaker_open_for: Duration,
    /// The `application_name` of tenant connections, to find them in `pg_stat_activity`.
    pub application_name: String,
}

impl PoolConfig {
    /// The reserve of free permits per server (see `reserve_per_server`).
    pub fn reserve(&self) -> usize {
        self.reserve_per_server.unwrap_or(self.budget_per_server / 10).min(self.budget_per_server)
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            budget_per_server: 100,
            max_per_tenant: 5,
            reserve_per_server: None,
            idle_timeout: Duration::from_secs(60),
            acquire_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(5),
            breaker_threshold: 3,
            breaker_open_for: Duration::from_secs(10),
            application_name: "nexacore-router".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// A URL of the catalog database (read access to tenants, servers, settings; LISTEN).
    pub catalog_url: SecretString,
    /// The hex key tenant role passwords derive from (`tenancy::TenantRoleKey`).
    pub tenant_role_key: SecretString,
    /// The control plane's JWKS URL.
    pub jwks_url: String,
    pub token_issuer: String,
    pub token_audience: String,
    /// How long a tenant's route stays cached without a catalog notification (the backstop).
    pub route_ttl: Duration,
    /// The least time between two JWKS fetches triggered by unknown `kid`s.
    pub jwks_refetch_floor: Duration,
    pub pool: PoolConfig,
    pub realtime: RealtimeConfig,
    pub max_body_bytes: usize,
    /// Start even when the catalog URL logs in as a superuser (`NEXACORE_ALLOW_SUPERUSER_CATALOG`);
    /// off by default: routers read the catalog as the least-privileged role the control plane keeps.
    pub allow_superuser_catalog: bool,
    /// Connection cap and timeouts of the HTTP server.
    pub http: http_api::ConnectionLimits,
    /// Proxies whose `X-Forwarded-For` names the client (`NEXACORE_TRUSTED_PROXIES`).
    pub trusted_proxies: http_api::TrustedProxies,
    /// Prometheus `/metrics` and per-request recording (`NEXACORE_METRICS`, default on).
    pub metrics: bool,
    /// Serve HTTPS with these files (`NEXACORE_TLS_CERT_FILE`, `NEXACORE_TLS_KEY_FILE`); plain
    /// HTTP without (behind a proxy that terminates TLS).
    pub tls: Option<http_api::TlsFiles>,
    /// Extra root certificates (PEM) trusted when fetching the JWKS over https
    /// (`NEXACORE_TLS_CA_FILE`), besides the public roots.
    pub tls_ca_file: Option<std::path::PathBuf>,
}

impl Config {
    pub fn new(catalog_url: SecretString, tenant_role_key: SecretString, jwks_url: String) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            catalog_url,
            tenant_role_key,
            jwks_url,
            token_issuer: tenancy::claims::DEFAULT_ISSUER.into(),
            token_audience: tenancy::claims::DEFAULT_AUDIENCE.into(),
            route_ttl: Duration::from_secs(30),
            jwks_refetch_floor: Duration::from_secs(10),
            pool: PoolConfig::default(),
            realtime: RealtimeConfig::default(),
            max_body_bytes: 64 * 1024,
            allow_superuser_catalog: false,
            http: http_api::ConnectionLimits::default(),
            trusted_proxies: http_api::TrustedProxies::default(),
            metrics: true,
            tls: None,
            tls_ca_file: None,
        }
    }

    /// Required: `NEXACORE_CATALOG_URL`, `NEXACORE_TENANT_ROLE_KEY`, `NEXACORE_JWKS_URL`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&http_api::ConfigSource::environment())
    }

    /// [`Config::from_env`] with every variable read through `source` (environment, `*_FILE`,
    /// configuration file, a launcher's fallbacks).
    pub fn from_source(source: &http_api::ConfigSource) -> Result<Self, ConfigError> {
        let var = |name: &'static str| source.get(name);
        let required = |name: &'static str| var(name)?.ok_or(ConfigError::Missing(name));
        let mut c = Self::new(
            SecretString::from(required("NEXACORE_CATALOG_URL")?),
            SecretString::from(required("NEXACORE_TENANT_ROLE_KEY")?),
            required("NEXACORE_JWKS_URL")?,
        );
        if let Some(v) = var("NEXACORE_LISTEN")? {
            c.listen = v.parse().map_err(|e| invalid("NEXACORE_LISTEN", e))?;
        }
        if let Some(v) = var("NEXACORE_TOKEN_ISSUER")? {
            c.token_issuer = v;
        }
        if let Some(v) = var("NEXACORE_TOKEN_AUDIENCE")? {
            c.token_audience = v;
        }
        if let Some(v) = var("NEXACORE_ROUTE_TTL_SECS")? {
            c.route_ttl = Duration::from_secs(v.parse().map_err(|e| invalid("NEXACORE_ROUTE_TTL_SECS", e))?);
        }
        if let Some(v) = var("NEXACORE_POOL_BUDGET_PER_SERVER")? {
            c.pool.budget_per_server = v.parse().map_err(|e| invalid("NEXACORE_POOL_BUDGET_PER_SERVER", e))?;
        }
        if let Some(v) = var("NEXACORE_POOL_MAX_PER_TENANT")? {
            c.pool.max_per_tenant = v.parse().map_err(|e| invalid("NEXACORE_POOL_MAX_PER_TENANT", e))?;
        }
        if let Some(v) = var("NEXACORE_POOL_RESERVE_PER_SERVER")? {
            c.pool.reserve_per_server = Some(v.parse().map_err(|e| invalid("NEXACORE_POOL_RESERVE_PER_SERVER", e))?);
        }
        if let Some(v) = var("NEXACORE_POOL_IDLE_SECS")? {
            c.pool.idle_timeout = Duration::from_secs(v.parse().map_err(|e| invalid("NEXACORE_POOL_IDLE_SECS", e))?);
        }
        if let Some(v) = var("NEXACORE_WS_MAX_PER_TENANT")? {
            c.realtime.max_connections_per_tenant = v.parse().map_err(|e| invalid("NEXACORE_WS_MAX_PER_TENANT", e))?;
        }
        if let Some(v) = var("NEXACORE_OUTBOX_RETENTION_SECS")? {
            c.realtime.retention =
                Duration::from_secs(v.parse().map_err(|e| invalid("NEXACORE_OUTBOX_RETENTION_SECS", e))?);
        }
        c.http = http_api::ConnectionLimits::from_source(source).map_err(|(name, reason)| invalid(name, reason))?;
        c.metrics = http_api::metrics::enabled_from(source).map_err(|(name, reason)| invalid(name, reason))?;
        c.tls = http_api::TlsFiles::from_source(source).map_err(|(name, reason)| invalid(name, reason))?;
        c.tls_ca_file = var("NEXACORE_TLS_CA_FILE")?.map(Into::into);
        if let Some(v) = var("NEXACORE_TRUSTED_PROXIES")? {
            c.trusted_proxies =
                http_api::TrustedProxies::parse(&v).map_err(|e| invalid("NEXACORE_TRUSTED_PROXIES", e))?;
        }
        if let Some(v) = var("NEXACORE_ALLOW_SUPERUSER_CATALOG")? {
            c.allow_superuser_catalog = match v.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                other => {
                    return Err(invalid(
                        "NEXACORE_ALLOW_SUPERUSER_CATALOG",
                        format!("{other:?}: expected true or false"),
                    ));
                }
            };
        }
        if c.pool.max_per_tenant == 0 || c.pool.budget_per_server < c.pool.max_per_tenant {
            return Err(invalid("NEXACORE_POOL_MAX_PER_TENANT", "must be between 1 and the per-server budget"));
        }
        Ok(c)
    }
}

fn invalid(name: &'static str, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid { name, reason: reason.to_string() }
}

/// The WebSocket hubs' limits and timings.
#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    pub max_connections_per_tenant: usize,
    /// Events buffered per tenant; a socket further behind than this is cut off (too slow).
    pub queue_capacity: usize,
    /// How often each tenant with sockets is re-read from its outbox, for events whose
    /// wake-up was lost (a writer that died between commit and publish). Gaps seen by later
    /// wake-ups and listener reconnects trigger a read at once; this bounds the rest.
    pub recheck_interval: Duration,
    pub ping_interval: Duration,
    pub idle_timeout: Duration,
    /// How long one send to a socket may block before the client counts as too slow.
    pub send_timeout: Duration,
    /// `token_expiring` is sent this long before the token expires.
    pub token_warning: Duration,
    /// Outbox events older than this are pruned.
    pub retention: Duration,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            max_connections_per_tenant: 500,
            queue_capacity: 1024,
            recheck_interval: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(5),
            token_warning: Duration::from_secs(60),
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

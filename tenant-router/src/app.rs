//! Start-up and shutdown of the router: `App::build(config)` connects to the catalog, loads the
//! caches and binds; `run_until_stopped` serves until the shutdown future resolves. `main` and the
//! tests go through this same path.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use secrecy::ExposeSecret;
use tenancy::TenantRoleKey;
use tokio::sync::watch;

use crate::access::MembershipEpochs;
use crate::auth::TokenVerifier;
use crate::catalog;
use crate::config::Config;
use crate::listener::{self, Caches};
use crate::pools::PoolManager;
use crate::realtime::Hub;
use crate::routes::{SettingsCache, TenantRoutes};
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("NEXACORE_TENANT_ROLE_KEY: {0}")]
    RoleKey(#[from] tenancy::role_key::BadRoleKey),
    #[error("cannot reach the catalog: {0}")]
    Catalog(#[source] sqlx::Error),
    #[error(
        "NEXACORE_CATALOG_URL logs in as a superuser; use the catalog role the control plane keeps for \
         routers (`ops keys router-url`: postgres://<catalog>_router@host:port/<catalog>, no password, derived \
         from the role key), or set NEXACORE_ALLOW_SUPERUSER_CATALOG=true"
    )]
    SuperuserCatalog,
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("NEXACORE_TLS_CERT_FILE/NEXACORE_TLS_KEY_FILE: {0}")]
    Tls(#[from] http_api::TlsError),
    #[error("NEXACORE_TLS_CA_FILE: {0}")]
    ExtraCa(String),
}

pub struct App {
    acceptor: http_api::ServiceAcceptor<TcpAcceptor>,
    port: u16,
    state: Arc<AppState>,
    catalog_options: sqlx::postgres::PgConnectOptions,
    stop_tx: watch::Sender<bool>,
}

impl App {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let role_key = TenantRoleKey::from_hex(&config.tenant_role_key)?;
        let catalog_options =
            catalog::options(config.catalog_url.expose_secret(), &role_key).map_err(StartError::Catalog)?;
        let catalog = catalog::connect(&catalog_options, &format!("{}-catalog", config.pool.application_name))
            .await
            .map_err(StartError::Catalog)?;
        if !config.allow_superuser_catalog && catalog::is_superuser(&catalog).await.map_err(StartError::Catalog)? {
            return Err(StartError::SuperuserCatalog);
        }
        let settings = SettingsCache::load(catalog.clone(), config.route_ttl).await.map_err(StartError::Catalog)?;
        let routes = Arc::new(TenantRoutes::new(catalog.clone(), config.route_ttl));
        let memberships = Arc::new(MembershipEpochs::new(catalog.clone(), config.route_ttl));
        let pools = Arc::new(PoolManager::new(config.pool.clone(), role_key).connecting_like(catalog_options.clone()));
        let server_tls = config.tls.as_ref().map(http_api::ServerTls::load).transpose()?;
        let jwks_client = jwks_client(config.tls_ca_file.as_deref())?;
        let realtime = Arc::new(Hub::new(config.realtime.clone(), catalog.clone(), routes.clone(), pools.clone()));
        let (stop_tx, stop_rx) = watch::channel(false);
        let state = Arc::new(AppState {
            catalog,
            realtime,
            shutdown: stop_rx,
            verifier: Arc::new(TokenVerifier::new(
                jwks_client,
                config.jwks_url.clone(),
                &config.token_issuer,
                &config.token_audience,
                config.jwks_refetch_floor,
            )),
            routes,
            memberships,
            settings: Arc::new(settings),
            pools,
            max_body_bytes: config.max_body_bytes,
            http: config.http.clone(),
            trusted_proxies: config.trusted_proxies.clone(),
            metrics: http_api::MetricsRegistry::new(),
            metrics_enabled: config.metrics,
            listening: Arc::default(),
        });
        let acceptor = TcpListener::bind(config.listen)
            .into_acceptor()
            .await
            .map_err(|source| StartError::Listen { addr: config.listen, source })?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().map(|s| s.port()))
            .unwrap_or(config.listen.port());
        let acceptor = http_api::ServiceAcceptor::new(acceptor, server_tls);
        Ok(Self { acceptor, port, state, catalog_options, stop_tx })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https` when serving TLS itself, else `http`.
    pub fn scheme(&self) -> &'static str {
        self.acceptor.scheme()
    }

    /// The shared state, for benchmarks and tests that read the counters.
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves: stops accepting, lets in-flight requests finish (up to
    /// 10 s), then stops the catalog listener and the pool sweeper.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let stop_tx = self.stop_tx;
        let stop_rx = stop_tx.subscribe();
        let state = self.state.clone();
        // Catalog listener: applies notifications to the caches; returns on shutdown.
        let caches = Caches {
            routes: state.routes.clone(),
            memberships: state.memberships.clone(),
            settings: state.settings.clone(),
            verifier: state.verifier.clone(),
            pools: state.pools.clone(),
            realtime: state.realtime.clone(),
            listening: state.listening.clone(),
        };
        let listener = tokio::spawn(listener::run(self.catalog_options.clone(), caches, stop_rx.clone()));
        // Sweeper: closes idle connections and lets idle pools be evicted; returns on shutdown.
        let pools = state.pools.clone();
        let mut sweep_stop = stop_rx.clone();
        let sweeper = tokio::spawn(async move {
            let period = (pools.config().idle_timeout / 4).max(Duration::from_millis(100));
            let mut ticker = tokio::time::interval(period);
            loop {
                tokio::select! {
                    _ = ticker.tick() => pools.sweep().await,
                    _ = sweep_stop.changed() => break,
                }
            }
        });
        // Hub re-check and outbox pruning; returns on shutdown.
        let hub_task = tokio::spawn(state.realtime.clone().run_maintenance(stop_rx.clone()));
        // On the signal, sockets are told first (close 1001, "going away") so clients reconnect
        // elsewhere while the server drains in-flight requests.
        let signal_sockets = stop_tx.clone();
        let shutdown = async move {
            shutdown.await;
            let _ = signal_sockets.send(true);
        };
        let limits = state.http.clone();
        let result = poem::Server::new_with_acceptor(http_api::GuardedAcceptor::new(self.acceptor, &limits))
            .idle_timeout(limits.idle_timeout)
            .run_with_graceful_shutdown(crate::http::routes(state), shutdown, Some(Duration::from_secs(10)))
            .await;
        let _ = stop_tx.send(true);
        let _ = hub_task.await;
        let _ = listener.await;
        let _ = sweeper.await;
        result
    }
}

/// The client the JWKS is fetched with: the public roots, plus `extra_ca`'s certificates.
fn jwks_client(extra_ca: Option<&std::path::Path>) -> Result<reqwest::Client, StartError> {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(5));
    if let Some(path) = extra_ca {
        let pem = std::fs::read(path).map_err(|e| StartError::ExtraCa(format!("{}: {e}", path.display())))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| StartError::ExtraCa(format!("{}: {e}", path.display())))?;
        if certificates.is_empty() {
            return Err(StartError::ExtraCa(format!("{}: no CERTIFICATE in the file", path.display())));
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(|e| StartError::ExtraCa(e.to_string()))
}

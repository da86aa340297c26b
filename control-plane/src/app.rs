//! Start-up and shutdown: `App::build(config)` opens the catalog, prepares the servers and keys,
//! binds the listener; `run_until_stopped` serves until the shutdown future resolves. `main` and
//! the tests go through this same path.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::catalog::audit::Actor;
use crate::catalog::{self, servers};
use crate::config::Config;
use crate::fleet::{Fleet, RegisterError};
use crate::identity::gate::PasswordGate;
use crate::identity::hashing::PasswordHashing;
use crate::identity::keys::Keyring;
use crate::identity::sessions::Sessions;
use crate::identity::throttle::PasswordThrottle;
use crate::identity::tokens::TokenIssuer;
use crate::login::LoginService;
use crate::mail::sender::MailSender;
use crate::migrations::Migrations;
use crate::people::People;
use crate::provision::{ProvisionMetrics, Provisioner, SparePool, reconcile};
use crate::rate_limit::RateLimiter;
use crate::secrets::MasterKey;
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
    #[error("NEXACORE_OPERATOR_TOKEN must be at least 32 characters (e.g. `openssl rand -hex 24`)")]
    WeakOperatorToken,
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    #[error("preparing the database servers: {0}")]
    Fleet(#[from] crate::fleet::FleetError),
    #[error("registering the primary database server: {0}")]
    Register(#[from] RegisterError),
    #[error("loading signing keys: {0}")]
    Keys(#[from] crate::identity::keys::KeyError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("NEXACORE_TLS_CERT_FILE/NEXACORE_TLS_KEY_FILE: {0}")]
    Tls(#[from] http_api::TlsError),
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
    #[error("settling interrupted backups: {0}")]
    Backups(String),
    #[error("settling interrupted moves: {0}")]
    Moves(String),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

pub struct App {
    acceptor: http_api::ServiceAcceptor<TcpAcceptor>,
    port: u16,
    state: Arc<AppState>,
    reconcile_interval: Duration,
    spares: Arc<SparePool>,
    spare_refill_interval: Duration,
}

/// The shortest operator token accepted: it guards every operator action.
pub const MIN_OPERATOR_TOKEN_CHARS: usize = 32;

/// The name the admin URL's server gets when it registers itself on first start.
pub const PRIMARY_SERVER: &str = "primary";

impl App {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let master = Arc::new(MasterKey::from_base64(&config.master_key)?);
        if config.operator_token.expose_secret().trim().chars().count() < MIN_OPERATOR_TOKEN_CHARS {
            return Err(StartError::WeakOperatorToken);
        }
        // Before any database work: a bad certificate pair fails the start at once.
        let server_tls = config.tls.as_ref().map(http_api::ServerTls::load).transpose()?;
        let admin = catalog::parse_url(&config.admin_database_url)?;
        let pool = catalog::open(&admin, &config.catalog_database).await?;
        // Routers read the catalog as a role that can read nothing else; nobody else may log in.
        catalog::access::ensure_router_role(
            &mut *pool.acquire().await?,
            &config.catalog_database,
            &master.tenant_role_key(),
        )
        .await?;
        let fleet = Arc::new(Fleet::new(
            pool.clone(),
            master.clone(),
            config.template_database.clone(),
            config.create_database_strategy,
            config.tenant_migrations.clone(),
        ));

        if servers::all(&pool).await?.is_empty() {
            match fleet.register(PRIMARY_SERVER, &config.admin_database_url, 1000, &Actor::system()).await {
                Ok(id) => tracing::info!(server = %id, "registered the primary database server"),
                // Another replica registered it meanwhile.
                Err(RegisterError::NameTaken) => {}
                Err(e) => return Err(e.into()),
            }
        }
        for server in servers::all(&pool).await? {
            if server.status != "active" {
                continue;
            }
            let handle = fleet.server(server.id).await?;
            if let Err(error) = fleet.ensure_template(&handle).await {
                // One unreachable server must not keep the platform down; placement still
                // prefers it, so say so loudly.
                tracing::error!(server = %server.name, %error, "cannot prepare the template database");
            }
        }

        let keys = Arc::new(
            Keyring::open(pool.clone(), master.clone(), config.signing_key_pem.as_ref(), config.token_ttl).await?,
        );
        let issuer = TokenIssuer {
            issuer: config.token_issuer.clone(),
            audience: config.token_audience.clone(),
            ttl: config.token_ttl,
        };
        let report = reconcile::reconcile_once(&pool, &fleet).await?;
        if report != reconcile::ReconcileReport::default() {
            tracing::warn!(?report, "start-up reconcile pass");
        }

        let migrations = Arc::new(Migrations::new(
            pool.clone(),
            fleet.clone(),
            config.tenant_migrations.clone(),
            config.migrations.clone(),
        ));
        // Settles what a migration engine that died with the previous process left behind.
        let recovered = migrations.recover().await?;
        if recovered.settled + recovered.unlocked + recovered.interrupted > 0 {
            tracing::warn!(?recovered, "start-up migration recovery pass");
        }

        let spares = Arc::new(SparePool::new(pool.clone(), fleet.clone(), config.spare_databases_per_server));
        let passwords = Arc::new(PasswordGate {
            throttle: PasswordThrottle::new(config.login_throttle.clone()),
            hashing: PasswordHashing::new(config.password_hashing),
        });
        let mail = Arc::new(MailSender::new(pool.clone(), master.clone(), config.mail.clone())?);
        let sessions = Arc::new(Sessions {
            catalog: pool.clone(),
            master: master.clone(),
            keys: keys.clone(),
            issuer: issuer.clone(),
            lifetime: config.session_lifetime,
        });
        let people = People {
            catalog: pool.clone(),
            master: master.clone(),
            sessions: sessions.clone(),
            passwords: passwords.clone(),
            mail: mail.clone(),
            settings: config.people.clone(),
            code_attempts: RateLimiter::new(30, Duration::from_secs(15 * 60)),
        };
        let metrics = http_api::MetricsRegistry::new();
        let provisioner = Arc::new(
            Provisioner::new(
                pool.clone(),
                fleet.clone(),
                master.clone(),
                spares.clone(),
                passwords.clone(),
                mail.clone(),
                config.crash_after,
            )
            .with_metrics(ProvisionMetrics::new(&metrics)),
        );
        let backups = Arc::new(crate::backups::Backups::new(pool.clone(), fleet.clone(), config.backups.clone()));
        // Settles backups a dead process left `running` (another replica's live ones keep their lock).
        let settled = backups.recover().await.map_err(|e| StartError::Backups(e.to_string()))?;
        let restores = backups.recover_restores().await.map_err(|e| StartError::Backups(e.to_string()))?;
        if settled + restores > 0 {
            tracing::warn!(settled, restores, "start-up backup and restore recovery pass");
        }
        let moves =
            Arc::new(crate::moves::Moves::new(pool.clone(), fleet.clone(), backups.clone(), config.moves.clone()));
        // Undoes or finishes moves a dead process left half done (see `moves`).
        let moved = moves.recover().await.map_err(|e| StartError::Moves(e.to_string()))?;
        if moved > 0 {
            tracing::warn!(moved, "start-up move recovery pass");
        }
        let state = Arc::new(AppState {
            moves,
            backups,
            catalog: pool.clone(),
            fleet,
            provisioner,
            migrations,
            login: LoginService { catalog: pool.clone(), sessions: sessions.clone(), passwords },
            sessions,
            people,
            mail,
            keys,
            issuer,
            operator_token_digest: Sha256::digest(config.operator_token.expose_secret().as_bytes()).into(),
            signup: config.signup,
            signup_limiter: RateLimiter::new(config.signup_limit_per_hour, Duration::from_secs(3600)),
            public_limiter: RateLimiter::new(120, Duration::from_secs(60)),
            release_check_limiter: RateLimiter::new(config.releases.checks_per_minute, Duration::from_secs(60)),
            router_url: config.router_url.clone(),
            max_body_bytes: config.max_body_bytes,
            releases: crate::releases::Releases::new(pool.clone(), config.releases.clone()),
            http: config.http.clone(),
            trusted_proxies: config.trusted_proxies.clone(),
            metrics,
            metrics_enabled: config.metrics,
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
        Ok(Self {
            acceptor,
            port,
            state,
            reconcile_interval: config.reconcile_interval,
            spares,
            spare_refill_interval: config.spare_refill_interval,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https` when serving TLS itself, else `http`.
    pub fn scheme(&self) -> &'static str {
        self.acceptor.scheme()
    }

    /// The spare-database pool (its counters tell how many signups adopted a spare).
    pub fn spare_pool(&self) -> Arc<SparePool> {
        self.spares.clone()
    }

    /// The OpenAPI document this app serves.
    pub fn openapi_json(&self) -> String {
        crate::http::spec_json(self.state.clone())
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish
    /// (up to 10 s), and stops the background tasks.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let state = self.state.clone();
        // Reconciler: finishes interrupted provisionings and deletions; on shutdown it stops
        // between passes.
        let reconciler = tokio::spawn(reconcile::run_periodically(
            state.catalog.clone(),
            state.fleet.clone(),
            self.reconcile_interval,
            stop_rx.clone(),
        ));
        // Spare refiller: keeps each server's pool of ready spare databases full; on shutdown
        // it stops between spares.
        let refiller = tokio::spawn(self.spares.clone().run_periodically(self.spare_refill_interval, stop_rx.clone()));
        // Key reloader: picks up rotations made through other replicas; stops on shutdown.
        let keys = state.keys.clone();
        let mut key_stop = stop_rx.clone();
        let key_reloader = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(30));
            loop {
                tokio::select! {
                    _ = ticker.tick() => {
                        if let Err(error) = keys.reload().await {
                            tracing::warn!(%error, "reloading signing keys failed");
                        }
                    }
                    _ = key_stop.changed() => break,
                }
            }
        });

        // Migration recovery: settles what a dead engine (another replica's) left; stops on
        // shutdown, with the engines.
        let migration_recovery = state.migrations.recover_periodically(self.reconcile_interval);

        // Move recovery and the retention of moved tenants' old databases; stops on shutdown
        // between passes.
        let move_recovery =
            tokio::spawn(state.moves.clone().recover_periodically(self.reconcile_interval, stop_rx.clone()));

        // Mail sender: delivers the outbox; stops on shutdown (a message in flight is retried
        // by the next start if its commit did not happen).
        let mailer = tokio::spawn(state.mail.clone().run(stop_rx.clone()));

        // Scheduled backups (`NEXACORE_BACKUP_SCHEDULE`): on shutdown no further tenant starts,
        // dumps in flight finish, and the run is marked `interrupted` (run again by the next pass).
        let scheduled_backups = tokio::spawn(state.backups.clone().run_schedule(stop_rx.clone()));
        // Old databases in-place restores kept past their retention are dropped; stops on shutdown.
        let restore_sweeper =
            tokio::spawn(state.backups.clone().sweep_old_databases(self.reconcile_interval, stop_rx.clone()));

        let migrations = state.migrations.clone();
        let routes = crate::http::routes(state);
        let limits = self.state.http.clone();
        let result = poem::Server::new_with_acceptor(http_api::GuardedAcceptor::new(self.acceptor, &limits))
            .idle_timeout(limits.idle_timeout)
            .run_with_graceful_shutdown(routes, shutdown, Some(Duration::from_secs(10)))
            .await;
        let _ = stop_tx.send(true);
        // Migration engines start no more tenants, finish those in flight, and mark their runs
        // `interrupted` (resumable).
        migrations.shutdown().await;
        let _ = migration_recovery.await;
        let _ = reconciler.await;
        let _ = refiller.await;
        let _ = key_reloader.await;
        let _ = mailer.await;
        let _ = move_recovery.await;
        let _ = scheduled_backups.await;
        let _ = restore_sweeper.await;
        result
    }
}

/// Builds a config for a given server URL with fresh random secrets (dev and tests).
pub fn generated_secrets() -> (SecretString, SecretString) {
    (SecretString::from(MasterKey::generate_base64()), SecretString::from(hex::encode(rand::random::<[u8; 24]>())))
}

//! [`PlatformBuilder`]: the control plane first (it creates the catalog, the routers' catalog
//! role and the signing keys), then the routers, wired to it the way a deployment wires them.

use std::net::SocketAddr;
use std::time::Duration;

use control_plane::domain::DbName;
use control_plane::secrets::MasterKey;
use secrecy::{ExposeSecret, SecretString};
use tenancy::role_key::TenantRoleKey;

use crate::service::{ControlPlaneHandle, RouterHandle};
use crate::tls::LocalTls;
use crate::{StackError, unique};

type ControlPlaneTweak = Box<dyn FnOnce(&mut control_plane::Config) + Send>;
type RouterTweak = Box<dyn Fn(usize, &mut tenant_router::Config) + Send + Sync>;

/// What to start, and on which Postgres server.
pub struct PlatformBuilder {
    admin_url: String,
    catalog_database: Option<DbName>,
    template_database: Option<DbName>,
    master_key: Option<SecretString>,
    operator_token: Option<SecretString>,
    control_plane_listen: SocketAddr,
    router_listens: Vec<SocketAddr>,
    control_plane_tweaks: Vec<ControlPlaneTweak>,
    router_tweaks: Vec<RouterTweak>,
    tls: Option<LocalTls>,
}

impl PlatformBuilder {
    /// The platform on the server `admin_url` (a superuser URL), with the default catalog and
    /// template names, fresh secrets, one router, all on free ports of 127.0.0.1.
    pub fn new(admin_url: impl Into<String>) -> Self {
        Self {
            admin_url: admin_url.into(),
            catalog_database: None,
            template_database: None,
            master_key: None,
            operator_token: None,
            control_plane_listen: ([127, 0, 0, 1], 0).into(),
            router_listens: vec![([127, 0, 0, 1], 0).into()],
            control_plane_tweaks: Vec::new(),
            router_tweaks: Vec::new(),
            tls: None,
        }
    }

    /// A catalog and a template of their own (unique names), so that platforms started on one
    /// server by parallel tests never meet.
    pub fn isolated(mut self) -> Self {
        let catalog = DbName::parse(&unique("catalog_")).expect("a valid database name");
        let template = DbName::parse(&unique("tpl_")).expect("a valid database name");
        self.catalog_database = Some(catalog);
        self.template_database = Some(template);
        self
    }

    pub fn catalog_database(mut self, name: DbName) -> Self {
        self.catalog_database = Some(name);
        self
    }

    /// Keeps data usable across restarts (`ops up`); generated when not given.
    pub fn secrets(mut self, master_key: SecretString, operator_token: SecretString) -> Self {
        self.master_key = Some(master_key);
        self.operator_token = Some(operator_token);
        self
    }

    pub fn control_plane_listen(mut self, addr: SocketAddr) -> Self {
        self.control_plane_listen = addr;
        self
    }

    /// `n` router replicas on free ports.
    pub fn routers(mut self, n: usize) -> Self {
        self.router_listens = vec![([127, 0, 0, 1], 0).into(); n];
        self
    }

    /// One router replica per address.
    pub fn router_listens(mut self, addrs: Vec<SocketAddr>) -> Self {
        self.router_listens = addrs;
        self
    }

    /// Both services serve HTTPS with `tls`'s server certificate; routers fetch the JWKS
    /// trusting its CA, the control plane hands out `https://` (`wss://`) router URLs, and
    /// [`Platform::http`] trusts the CA. Postgres TLS is the admin URL's business (`sslmode`,
    /// `sslrootcert`; see [`LocalTls::postgres_url`]).
    pub fn tls(mut self, tls: LocalTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Changes the control plane's configuration after the builder has set its own fields;
    /// tweaks apply in the order given.
    pub fn control_plane(mut self, tweak: impl FnOnce(&mut control_plane::Config) + Send + 'static) -> Self {
        self.control_plane_tweaks.push(Box::new(tweak));
        self
    }

    /// Changes each router's configuration (called with the replica's index), in order given.
    pub fn router(mut self, tweak: impl Fn(usize, &mut tenant_router::Config) + Send + Sync + 'static) -> Self {
        self.router_tweaks.push(Box::new(tweak));
        self
    }

    pub async fn start(self) -> Result<Platform, StackError> {
        let master_key = self.master_key.unwrap_or_else(|| SecretString::from(MasterKey::generate_base64()));
        let operator_token =
            self.operator_token.unwrap_or_else(|| control_plane::app::generated_secrets().1).expose_secret().to_owned();
        // Routers' ports are fixed before the control plane starts: it hands the first out as
        // every client's `api_url`.
        let router_listens: Vec<SocketAddr> =
            self.router_listens.iter().map(|addr| fixed_port(*addr)).collect::<Result<_, _>>()?;

        let mut config = control_plane::Config::new(
            SecretString::from(self.admin_url.clone()),
            master_key.clone(),
            SecretString::from(operator_token.clone()),
        );
        config.listen = self.control_plane_listen;
        if let Some(name) = self.catalog_database {
            config.catalog_database = name;
        }
        if let Some(name) = self.template_database {
            config.template_database = name;
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        if let Some(first) = router_listens.first() {
            config.router_url = format!("{scheme}://{first}");
        }
        config.tls = self.tls.as_ref().map(LocalTls::server_files);
        for tweak in self.control_plane_tweaks {
            tweak(&mut config);
        }
        let catalog_database = config.catalog_database.clone();
        let template_database = config.template_database.clone();
        let router_url = config.router_url.clone();
        let control_plane = ControlPlaneHandle::serve(control_plane::App::build(config).await?);

        let role_key = MasterKey::from_base64(&master_key)
            .map_err(|e| StackError::Database(format!("the master key: {e}")))?
            .tenant_role_key();
        let catalog_url = database_url(&self.admin_url, catalog_database.as_str())?;
        let router_catalog_url = control_plane::catalog::access::router_catalog_url(&self.admin_url, &catalog_database)
            .map_err(|e| StackError::Database(format!("the admin URL: {e}")))?;
        let mut platform = Platform {
            jwks_url: format!("{}/.well-known/jwks.json", control_plane.url),
            admin_url: self.admin_url,
            catalog_database,
            catalog_url,
            router_catalog_url,
            operator_token,
            master_key,
            role_key,
            control_plane,
            routers: Vec::new(),
            router_tweaks: self.router_tweaks,
            template_database,
            router_url,
            http: client_trusting(self.tls.as_ref())?,
            tls: self.tls,
        };
        for (index, listen) in router_listens.into_iter().enumerate() {
            let router = platform.start_router_at(index, listen, |_| {}).await?;
            platform.routers.push(router);
        }
        Ok(platform)
    }
}

/// A client for calls through the platform (120 s timeout), trusting `tls`'s CA when given.
fn client_trusting(tls: Option<&LocalTls>) -> Result<reqwest::Client, StackError> {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(120));
    if let Some(tls) = tls {
        let ca = reqwest::Certificate::from_pem(&tls.ca_pem()?)?;
        builder = builder.add_root_certificate(ca);
    }
    Ok(builder.build()?)
}

/// `http://host:port` or `https://host:port` as the address it names.
fn address_of(url: &str) -> Option<SocketAddr> {
    url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?.parse().ok()
}

/// A port-0 address made concrete: bound once to learn a free port, then released.
fn fixed_port(addr: SocketAddr) -> Result<SocketAddr, StackError> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    let probe = std::net::TcpListener::bind(addr)?;
    Ok(probe.local_addr()?)
}

/// `admin_url` with its database replaced.
fn database_url(admin_url: &str, database: &str) -> Result<String, StackError> {
    let mut url = reqwest::Url::parse(admin_url).map_err(|e| StackError::Database(format!("the admin URL: {e}")))?;
    url.set_path(&format!("/{database}"));
    Ok(url.to_string())
}

/// The platform, serving. Dropping it stops every service.
pub struct Platform {
    /// The Postgres superuser URL the platform runs on.
    pub admin_url: String,
    pub catalog_database: DbName,
    /// The catalog, as the superuser.
    pub catalog_url: String,
    /// The catalog as routers reach it: their least-privileged role, no password (derived).
    pub router_catalog_url: String,
    pub operator_token: String,
    pub master_key: SecretString,
    /// The key routers derive tenant role passwords from.
    pub role_key: TenantRoleKey,
    pub jwks_url: String,
    pub control_plane: ControlPlaneHandle,
    pub routers: Vec<RouterHandle>,
    /// A client for calls through the platform (120 s timeout).
    pub http: reqwest::Client,
    router_tweaks: Vec<RouterTweak>,
    template_database: DbName,
    /// What the control plane hands out as `api_url`.
    router_url: String,
    /// The CA and certificate both services serve HTTPS with, if they do.
    pub tls: Option<LocalTls>,
}

impl Platform {
    /// The platform on the tests' shared throwaway server, with a catalog and template of its
    /// own. Tweak through [`Platform::builder_for_tests`] when more is needed.
    pub async fn for_tests() -> Result<Self, StackError> {
        Self::builder_for_tests().start().await
    }

    /// [`PlatformBuilder`] on the shared test server, isolated, with signup limits out of the way.
    pub fn builder_for_tests() -> PlatformBuilder {
        PlatformBuilder::new(local_postgres::shared_test_server().superuser_url())
            .isolated()
            .control_plane(|c| c.signup_limit_per_hour = 100_000)
    }

    /// Stops the control plane and starts it again on the same port, catalog and secrets with
    /// `tweak` applied (a new deployment, say, with more migrations). Routers keep running.
    pub async fn restart_control_plane(
        &mut self,
        tweak: impl FnOnce(&mut control_plane::Config),
    ) -> Result<(), StackError> {
        let url = self.control_plane.url.clone();
        let listen =
            address_of(&url).ok_or_else(|| StackError::Database(format!("the control plane's address {url}")))?;
        let mut config = control_plane::Config::new(
            SecretString::from(self.admin_url.clone()),
            self.master_key.clone(),
            SecretString::from(self.operator_token.clone()),
        );
        config.listen = listen;
        config.catalog_database = self.catalog_database.clone();
        config.template_database = self.template_database.clone();
        config.router_url = self.router_url.clone();
        config.tls = self.tls.as_ref().map(LocalTls::server_files);
        tweak(&mut config);
        // The port must be free before the new one binds it.
        self.control_plane.stop_serving().await?;
        self.control_plane = ControlPlaneHandle::serve(control_plane::App::build(config).await?);
        Ok(())
    }

    /// Stops replica `index` as a deploy or a crash would take it away: it stops accepting,
    /// in-flight requests finish, its sockets close. [`Platform::restart_router`] brings it back.
    pub async fn stop_router(&mut self, index: usize) -> Result<(), StackError> {
        let router = self.routers.get_mut(index).ok_or_else(|| StackError::Wiring(format!("no router {index}")))?;
        router.stop_serving().await
    }

    /// Starts replica `index` again on the same port, after [`Platform::stop_router`].
    pub async fn restart_router(&mut self, index: usize) -> Result<(), StackError> {
        let url = &self.routers.get(index).ok_or_else(|| StackError::Wiring(format!("no router {index}")))?.url;
        let listen = address_of(url).ok_or_else(|| StackError::Wiring(format!("the router's address {url}")))?;
        self.routers[index] = self.start_router_at(index, listen, |_| {}).await?;
        Ok(())
    }

    /// A superuser URL for `database` on the platform's server.
    pub fn database_url(&self, database: &str) -> Result<String, StackError> {
        database_url(&self.admin_url, database)
    }

    /// The first router's URL (the one the control plane hands out).
    pub fn router_url(&self) -> &str {
        self.routers.first().map_or("", |r| r.url.as_str())
    }

    /// The configuration a router replica of this platform starts from.
    pub fn router_config(&self) -> tenant_router::Config {
        let mut config = tenant_router::Config::new(
            SecretString::from(self.router_catalog_url.clone()),
            self.role_key.to_hex(),
            self.jwks_url.clone(),
        );
        config.tls = self.tls.as_ref().map(LocalTls::server_files);
        config.tls_ca_file = self.tls.as_ref().map(|tls| tls.ca_cert.clone());
        config
    }

    /// Starts one more router replica on a free port; the builder's router tweak applies
    /// first, then `tweak`.
    pub async fn start_router(
        &self,
        tweak: impl FnOnce(&mut tenant_router::Config),
    ) -> Result<RouterHandle, StackError> {
        let index = self.routers.len();
        self.start_router_at(index, ([127, 0, 0, 1], 0).into(), tweak).await
    }

    async fn start_router_at(
        &self,
        index: usize,
        listen: SocketAddr,
        tweak: impl FnOnce(&mut tenant_router::Config),
    ) -> Result<RouterHandle, StackError> {
        let mut config = self.router_config();
        config.listen = listen;
        config.pool.application_name = format!("nexacore-router-{index}");
        for shared in &self.router_tweaks {
            shared(index, &mut config);
        }
        tweak(&mut config);
        Ok(RouterHandle::serve(tenant_router::App::build(config).await?))
    }

    /// Serves until every service stops (each stops on its own on Ctrl-C/SIGTERM), reporting the
    /// first failure.
    pub async fn serve_until_stopped(mut self) -> Result<(), StackError> {
        let mut outcome = self.control_plane.finished().await;
        for router in &mut self.routers {
            let result = router.finished().await;
            outcome = outcome.and(result);
        }
        outcome
    }

    /// Stops the routers, then the control plane, each letting in-flight requests finish.
    pub async fn stop(self) -> Result<(), StackError> {
        let mut outcome = Ok(());
        for router in self.routers {
            outcome = outcome.and(router.stop().await);
        }
        outcome.and(self.control_plane.stop().await)
    }
}

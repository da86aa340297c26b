//! The shared test harness: starts the control plane (the same `App::build` path as `main`)
//! on port 0 against a fresh catalog database and its own template database, and offers typed
//! helpers for the calls tests make.

use std::time::Duration;

use control_plane::secrets::MasterKey;
use control_plane::{App, Config};
use local_postgres::{PgServer, create_fresh_database, shared_test_server};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tokio::sync::oneshot;

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub operator_token: String,
    pub master_key: String,
    pub catalog_url: String,
    pub server: &'static PgServer,
    /// The catalog and template database names, kept so the app can be restarted on them.
    pub catalog_database: String,
    pub template_database: String,
    /// The spare pool's size per server (0 unless the test turned it on).
    pub spare_databases_per_server: u32,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// A random lowercase suffix for names that must not collide between parallel tests.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts an app on the shared test server; `tweak` may change the configuration.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let server = shared_test_server();
        let (catalog_database, catalog_url) = create_fresh_database(server, "cp_catalog").await.expect("catalog db");
        let master_key = MasterKey::generate_base64();
        let operator_token = format!("op-{}", uuid::Uuid::new_v4().simple());
        let template = unique("tpl_");
        Self::start(server, catalog_database, catalog_url, master_key, operator_token, template, tweak).await
    }

    /// Stops the app gracefully and starts it again on the same catalog, template and secrets
    /// (a new deployment of the control plane); `tweak` may change the configuration.
    pub async fn restart_with(mut self, tweak: impl FnOnce(&mut Config)) -> Self {
        let (server, catalog, url) = (self.server, self.catalog_database.clone(), self.catalog_url.clone());
        let (master_key, token, template) =
            (self.master_key.clone(), self.operator_token.clone(), self.template_database.clone());
        self.stop_and_wait().await;
        Self::start(server, catalog, url, master_key, token, template, tweak).await
    }

    async fn start(
        server: &'static PgServer,
        catalog_database: String,
        catalog_url: String,
        master_key: String,
        operator_token: String,
        template: String,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = Config::new(
            SecretString::from(server.superuser_url()),
            SecretString::from(master_key.clone()),
            SecretString::from(operator_token.clone()),
        );
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.catalog_database = control_plane::domain::DbName::parse(&catalog_database).unwrap();
        config.template_database = control_plane::domain::DbName::parse(&template).unwrap();
        config.signup_limit_per_hour = 10_000;
        // Off unless a test turns it on: a refiller building databases in the background would
        // change the footprints that tests of refused requests compare.
        config.spare_databases_per_server = 0;
        tweak(&mut config);
        let spare_databases_per_server = config.spare_databases_per_server;
        let app = App::build(config).await.expect("the control plane starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        Self {
            base,
            http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
            operator_token,
            master_key,
            catalog_url,
            server,
            catalog_database,
            template_database: template,
            spare_databases_per_server,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Another replica of this app: the same catalog, template and secrets, its own port.
    pub async fn replica(&self, tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start(
            self.server,
            self.catalog_database.clone(),
            self.catalog_url.clone(),
            self.master_key.clone(),
            self.operator_token.clone(),
            self.template_database.clone(),
            tweak,
        )
        .await
    }

    /// Stops the app gracefully and waits for it.
    pub async fn stop(mut self) {
        self.stop_and_wait().await;
    }

    async fn stop_and_wait(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn catalog(&self) -> PgConnection {
        PgConnection::connect(&self.catalog_url).await.expect("catalog connection")
    }

    pub async fn signup(&self, body: &Value) -> reqwest::Response {
        self.http.post(self.url("/tenants")).json(body).send().await.unwrap()
    }

    /// Signs a company up and returns the 201 body.
    pub async fn create_tenant(&self, slug: &str) -> Value {
        let response = self.signup(&signup_body(slug)).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "signup of {slug} failed: {body}");
        body
    }

    pub fn operator(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(&self.operator_token)
    }

    pub async fn login(&self, email: &str, password: &str, tenant: Option<&str>) -> reqwest::Response {
        let mut body = json!({ "email": email, "password": password });
        if let Some(t) = tenant {
            body["tenant"] = json!(t);
        }
        self.http.post(self.url("/auth/login")).json(&body).send().await.unwrap()
    }

    /// The login password of a tenant's role, derived the way the control plane derives it.
    pub fn role_password(&self, role: &str) -> String {
        let key = MasterKey::from_base64(&SecretString::from(self.master_key.clone())).unwrap();
        let role = control_plane::domain::RoleName::parse(role).unwrap();
        key.tenant_role_key().password_for(&role).expose_secret().to_owned()
    }

    /// What the catalog and the server hold, to prove that a refused request changed nothing.
    pub async fn footprint(&self) -> Footprint {
        let mut catalog = self.catalog().await;
        let tenants: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants").fetch_one(&mut catalog).await.unwrap();
        let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&mut catalog).await.unwrap();
        let mut admin = PgConnection::connect(&self.server.superuser_url()).await.unwrap();
        let databases: Vec<String> =
            sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 't\\_%' ORDER BY 1")
                .fetch_all(&mut admin)
                .await
                .unwrap();
        let roles: Vec<String> =
            sqlx::query_scalar("SELECT rolname FROM pg_roles WHERE rolname LIKE 't\\_%' ORDER BY 1")
                .fetch_all(&mut admin)
                .await
                .unwrap();
        Footprint { tenants, users, databases, roles }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Counts and names that a refused request must leave unchanged. Tenant databases and roles
/// are listed server-wide: tests that compare them must not race other tests' signups on the
/// same server, so they compare only names this catalog could have produced (see `own`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footprint {
    pub tenants: i64,
    pub users: i64,
    pub databases: Vec<String>,
    pub roles: Vec<String>,
}

/// A valid signup request for `slug`.
pub fn signup_body(slug: &str) -> Value {
    json!({
        "company_name": format!("Company {slug}"),
        "slug": slug,
        "admin": {
            "email": format!("admin@{slug}.example.com"),
            "password": "Str0ng&Secret!",
            "full_name": "Ada Admin",
        },
        "timezone": "Europe/Berlin",
        "currency": "EUR",
        "chart_template": "standard",
    })
}

pub const PASSWORD: &str = "Str0ng&Secret!";

/// Polls `check` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

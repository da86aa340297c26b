//! The shared harness: a control plane (with a signing key the tests know, so they can mint
//! tampered tokens) and a router, both through their real `App::build`, on a fresh catalog.

use std::time::Duration;

use control_plane::secrets::MasterKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use local_postgres::{create_fresh_database, shared_test_server};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tokio::sync::oneshot;

pub const PASSWORD: &str = "Str0ng&Secret!";

pub struct Stack {
    pub control_plane: String,
    pub router: String,
    pub http: reqwest::Client,
    pub operator_token: String,
    pub catalog_url: String,
    /// What routers use: the least-privileged catalog role, no password (derived from the role key).
    pub router_catalog_url: String,
    /// The control plane's signing key, so tests can sign tokens with chosen claims.
    pub signing_key: ed25519_dalek::SigningKey,
    pub router_state: std::sync::Arc<tenant_router::state::AppState>,
    /// What a second router replica needs: the role key (hex) and the JWKS URL.
    pub role_key_hex: String,
    pub jwks_url: String,
    stops: Vec<oneshot::Sender<()>>,
    router_stop: Option<oneshot::Sender<()>>,
    router_task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// A signed-up company: its id, slug and the admin's token.
pub struct Company {
    pub id: String,
    pub slug: String,
    pub token: String,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak_router: impl FnOnce(&mut tenant_router::Config)) -> Self {
        let server = shared_test_server();
        let (catalog_db, catalog_url) = create_fresh_database(server, "rt_catalog").await.unwrap();
        let master = MasterKey::generate_base64();
        let operator_token = format!("op-{}", uuid::Uuid::new_v4().simple());
        let signing_key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
        let pem = signing_key.to_pkcs8_pem(Default::default()).unwrap().to_string();

        let mut cp = control_plane::Config::new(
            SecretString::from(server.superuser_url()),
            SecretString::from(master.clone()),
            SecretString::from(operator_token.clone()),
        );
        cp.listen = "127.0.0.1:0".parse().unwrap();
        cp.catalog_database = control_plane::domain::DbName::parse(&catalog_db).unwrap();
        cp.template_database = control_plane::domain::DbName::parse(&unique("tpl_")).unwrap();
        cp.signup_limit_per_hour = 100_000;
        cp.signing_key_pem = Some(SecretString::from(pem));
        let cp_app = control_plane::App::build(cp).await.expect("control plane starts");
        let control_plane = format!("http://127.0.0.1:{}", cp_app.port());

        let role_key = MasterKey::from_base64(&SecretString::from(master)).unwrap().tenant_role_key().to_hex();
        let role_key_hex = secrecy::ExposeSecret::expose_secret(&role_key).to_owned();
        let jwks_url = format!("{control_plane}/.well-known/jwks.json");
        let router_catalog_url = control_plane::catalog::access::router_catalog_url(
            &server.superuser_url(),
            &control_plane::domain::DbName::parse(&catalog_db).unwrap(),
        )
        .unwrap();
        let mut rc =
            tenant_router::Config::new(SecretString::from(router_catalog_url.clone()), role_key, jwks_url.clone());
        rc.listen = "127.0.0.1:0".parse().unwrap();
        // Long enough that only the catalog notification can explain a fast reaction.
        rc.route_ttl = Duration::from_secs(120);
        tweak_router(&mut rc);
        let router_app = tenant_router::App::build(rc).await.expect("router starts");
        let router = format!("http://127.0.0.1:{}", router_app.port());
        let router_state = router_app.state();

        let stops = vec![spawn_cp(cp_app)];
        let (router_stop, stopped) = oneshot::channel();
        let router_task = Some(tokio::spawn(router_app.run_until_stopped(async move {
            let _ = stopped.await;
        })));
        Self {
            control_plane,
            router,
            http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
            operator_token,
            catalog_url,
            router_catalog_url,
            signing_key,
            router_state,
            role_key_hex,
            jwks_url,
            stops,
            router_stop: Some(router_stop),
            router_task,
        }
    }

    pub async fn catalog(&self) -> PgConnection {
        PgConnection::connect(&self.catalog_url).await.unwrap()
    }

    pub async fn signup(&self, slug: &str) -> Company {
        let body = json!({
            "company_name": format!("Company {slug}"),
            "slug": slug,
            "admin": {"email": format!("admin@{slug}.example.com"), "password": PASSWORD, "full_name": "Ada Admin"},
            "timezone": "UTC",
            "currency": "EUR",
        });
        let response = self.http.post(format!("{}/tenants", self.control_plane)).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 201);
        let created: Value = response.json().await.unwrap();
        Company {
            id: created["tenant"]["id"].as_str().unwrap().to_owned(),
            slug: slug.to_owned(),
            token: created["access_token"].as_str().unwrap().to_owned(),
        }
    }

    /// A request to the router with a bearer token.
    pub fn call(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.router)).bearer_auth(token)
    }

    pub fn operator(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.control_plane)).bearer_auth(&self.operator_token)
    }

    /// Creates an employee through the router and returns its JSON.
    pub async fn add_employee(&self, token: &str, email: &str) -> Value {
        let body = json!({"first_name": "Grace", "last_name": "Hopper", "email": email, "hire_date": "2024-01-15"});
        let response = self.call(reqwest::Method::POST, "/employees", token).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    /// Signs a token with the control plane's key and the given claims.
    pub fn sign(&self, claims: &Value) -> String {
        let der = self.signing_key.to_pkcs8_der().unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.kid());
        jsonwebtoken::encode(&header, claims, &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes())).unwrap()
    }

    pub fn kid(&self) -> String {
        use sha2::Digest;
        hex::encode(&sha2::Sha256::digest(self.signing_key.verifying_key().to_bytes())[..8])
    }
}

impl Stack {
    /// Stops the router gracefully and waits until it has.
    pub async fn stop_router(&mut self) {
        if let Some(stop) = self.router_stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.router_task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for stop in self.stops.drain(..).chain(self.router_stop.take()) {
            let _ = stop.send(());
        }
    }
}

fn spawn_cp(app: control_plane::App) -> oneshot::Sender<()> {
    let (tx, rx) = oneshot::channel();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    tx
}

/// Valid claims for a company's admin, to be altered by a test.
pub fn claims_for(company: &Company) -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // The company's admin and membership epoch, from the token signup gave: a token for anyone
    // else is refused for want of a membership.
    use base64::Engine as _;
    let payload = company.token.split('.').nth(1).expect("a JWT");
    let signed: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    json!({
        "sub": signed["sub"], "tid": company.id, "role": "admin", "ep": signed["ep"],
        "iss": "nexacore-control-plane", "aud": "nexacore-api",
        "iat": now, "nbf": now, "exp": now + 600,
    })
}

/// Sessions with this `application_name`, as Postgres itself counts them. Other tests' routers
/// share the server: each router's connections carry its own `application_name` (and its
/// catalog sessions `<application_name>-catalog`).
pub async fn sessions_named(conn: &mut PgConnection, application_name: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
        .bind(application_name)
        .fetch_one(conn)
        .await
        .unwrap()
}

/// Polls `check` every 20 ms for up to 2 s.
pub async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

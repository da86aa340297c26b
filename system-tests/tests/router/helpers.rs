//! The shared harness: a control plane (with a signing key the tests know, so they can mint
//! tampered tokens) and a router, started by `stack` through their real `App::build`, on a
//! catalog of their own.

use std::time::Duration;

use ed25519_dalek::pkcs8::EncodePrivateKey;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

pub use stack::TEST_PASSWORD as PASSWORD;
pub use stack::unique;

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
    pub router_state: std::sync::Arc<stack::router::AppState>,
    /// What a second router replica needs: the role key (hex) and the JWKS URL.
    pub role_key_hex: String,
    pub jwks_url: String,
    platform: stack::Platform,
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

    pub async fn start_with(tweak_router: impl FnOnce(&mut stack::RouterConfig)) -> Self {
        let signing_key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
        let pem = signing_key.to_pkcs8_pem(Default::default()).unwrap().to_string();
        let mut platform = stack::Platform::builder_for_tests()
            .control_plane(move |c| c.signing_key_pem = Some(SecretString::from(pem)))
            .routers(0)
            .start()
            .await
            .expect("the platform starts");
        let router = platform
            .start_router(|c| {
                // Long enough that only the catalog notification can explain a fast reaction.
                c.route_ttl = Duration::from_secs(120);
                tweak_router(c);
            })
            .await
            .expect("the router starts");
        platform.routers.push(router);
        Self {
            control_plane: platform.control_plane.url.clone(),
            router: platform.router_url().to_owned(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
            operator_token: platform.operator_token.clone(),
            catalog_url: platform.catalog_url.clone(),
            router_catalog_url: platform.router_catalog_url.clone(),
            signing_key,
            router_state: platform.routers[0].state.clone(),
            role_key_hex: platform.role_key.to_hex().expose_secret().to_owned(),
            jwks_url: platform.jwks_url.clone(),
            platform,
        }
    }

    pub async fn catalog(&self) -> PgConnection {
        PgConnection::connect(&self.catalog_url).await.unwrap()
    }

    pub async fn signup(&self, slug: &str) -> Company {
        let company = self.platform.signup(slug).await.expect("signup");
        Company { id: company.id.to_string(), slug: company.slug, token: company.token }
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
        if let Some(router) = self.platform.routers.pop() {
            router.stop().await.unwrap();
        }
    }
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
pub async fn eventually<F, Fut>(check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_within(Duration::from_secs(2), check).await
}

/// Polls `check` every 20 ms for up to `timeout`.
pub async fn eventually_within<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

//! The HTTP client of the control plane and the tenant router, and its typed errors.
//!
//! Every call runs on the background runtime (see `backend`), never on the UI thread. Every
//! answer is handled: malformed JSON, HTML from a stranger, 5xx and timeouts all become an
//! [`ApiError`] the screens can show.

mod people;
pub mod wire;

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::client_version;
use crate::tls::Trust;
use wire::*;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// Nothing answered (refused, DNS, timeout): "check the address or your connection".
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    /// Something answered, but not like a NexaCore server.
    #[error("this address answers, but it is not a NexaCore server ({0})")]
    NotNexaCore(String),
    /// The address is the tenant router's (data) rather than the control plane's (sign-in).
    #[error(
        "this is NexaCore's data server (tenant router); enter the sign-in server's address instead \
         (`ops up` prints it as \"control plane\", by default http://127.0.0.1:8080)"
    )]
    RouterAddress,
    /// `426`: this app is older than the oldest version the platform serves.
    #[error("this version of the app is no longer supported")]
    UpgradeRequired { min_client_version: String, latest_version: String },
    /// `503 maintenance`: the operator's message.
    #[error("maintenance: {0}")]
    Maintenance(String),
    /// Any other error answer, with the server's body.
    #[error("{}", .body.message)]
    Http { status: u16, body: ErrorBody },
}

impl ApiError {
    /// The server's error code (`slug_taken`, `version_mismatch`, …), if it gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Http { body, .. } => Some(&body.error),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Http { status, .. } => Some(*status),
            ApiError::UpgradeRequired { .. } => Some(426),
            ApiError::Maintenance(_) => Some(503),
            _ => None,
        }
    }

    /// Every field problem: `details`, or the single `field`, as (field, message) pairs.
    pub fn field_errors(&self) -> Vec<(String, String)> {
        let ApiError::Http { body, .. } = self else { return Vec::new() };
        if !body.details.is_empty() {
            return body.details.iter().map(|p| (p.field.clone(), strip_field(&p.field, &p.message))).collect();
        }
        match &body.field {
            Some(field) if !field.is_empty() => vec![(field.clone(), strip_field(field, &body.message))],
            _ => Vec::new(),
        }
    }

    /// True when a retry of the same request may succeed (network trouble, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Unreachable(_) => true,
            ApiError::Http { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// `"admin.email: is taken"` → `"is taken"`: the field is shown next to the message anyway.
fn strip_field(field: &str, message: &str) -> String {
    message.strip_prefix(field).and_then(|m| m.strip_prefix(": ")).unwrap_or(message).to_owned()
}

/// The base URL as typed by a user: trimmed, `http://` added when no scheme, no trailing `/`.
pub fn normalize_url(raw: &str) -> String {
    let raw = raw.trim().trim_end_matches('/');
    if raw.contains("://") { raw.to_owned() } else { format!("http://{raw}") }
}

/// A cheap-to-clone HTTP client for both services.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// The roots `https` (and the live socket's `wss`) are checked against.
    trust: Trust,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    /// Trusting the public roots only.
    pub fn new() -> Self {
        Self::with_trust(Trust::public())
    }

    pub fn with_trust(trust: Trust) -> Self {
        let builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("nexacore-desktop/", env!("CARGO_PKG_VERSION")));
        let http = trust.http(builder).build().unwrap_or_default();
        Self { http, trust }
    }

    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    fn request(&self, method: Method, base: &str, path: &str, token: Option<&str>) -> RequestBuilder {
        let builder = self
            .http
            .request(method, format!("{}{path}", base.trim_end_matches('/')))
            .header("X-Client-Version", client_version());
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// Sends and decodes `T`, mapping every failure to an [`ApiError`].
    async fn send<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, ApiError> {
        let (_, body) = self.send_raw(request).await?;
        serde_json::from_slice(&body).map_err(|e| ApiError::NotNexaCore(format!("unexpected answer: {e}")))
    }

    async fn send_raw(&self, request: RequestBuilder) -> Result<(reqwest::header::HeaderMap, Vec<u8>), ApiError> {
        let response = request.send().await.map_err(|e| ApiError::Unreachable(describe(&e)))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| ApiError::Unreachable(describe(&e)))?.to_vec();
        if status.is_success() {
            return Ok((headers, body));
        }
        Err(error_from(status, &body))
    }

    // --- control plane ---------------------------------------------------------------------

    /// The connection check: `/health` must answer like a NexaCore service, then the status.
    pub async fn check_server(&self, base: &str) -> Result<(Health, SystemStatus), ApiError> {
        let health: Health =
            self.send(self.request(Method::GET, base, "/health", None)).await.map_err(|e| match e {
                ApiError::Http { status, .. } => ApiError::NotNexaCore(format!("/health answered {status}")),
                other => other,
            })?;
        if health.status != "ok" {
            return Err(ApiError::NotNexaCore("/health did not say ok".into()));
        }
        if health.service == Health::ROUTER {
            return Err(ApiError::RouterAddress);
        }
        let status = self.system_status(base, None).await?;
        if status.min_client_version.is_empty() {
            return Err(ApiError::NotNexaCore("/system/status lacks the client versions".into()));
        }
        Ok((health, status))
    }

    /// `GET /system/status` of either service (with a token, the router includes the
    /// company's own maintenance).
    pub async fn system_status(&self, base: &str, token: Option<&str>) -> Result<SystemStatus, ApiError> {
        self.send(self.request(Method::GET, base, "/system/status", token)).await
    }

    pub async fn login(&self, base: &str, request: &LoginRequest) -> Result<LoginOutcome, ApiError> {
        let value: serde_json::Value =
            self.send(self.request(Method::POST, base, "/auth/login", None).json(request)).await?;
        if let Some(list) = value.get("tenants") {
            let tenants: Vec<TenantSummary> = serde_json::from_value(list.clone())
                .map_err(|e| ApiError::NotNexaCore(format!("unexpected answer: {e}")))?;
            return Ok(LoginOutcome::Choose(tenants));
        }
        let token: LoginToken =
            serde_json::from_value(value).map_err(|e| ApiError::NotNexaCore(format!("unexpected answer: {e}")))?;
        if token.access_token.is_empty() || token.api_url.is_empty() {
            return Err(ApiError::NotNexaCore("the login answer lacks a token".into()));
        }
        Ok(LoginOutcome::Signed(token))
    }

    /// Trades the refresh token for a new access token (and refresh token) of the same sign-in.
    pub async fn refresh(&self, base: &str, refresh_token: &str) -> Result<LoginToken, ApiError> {
        let body = serde_json::json!({ "refresh_token": refresh_token });
        let token: LoginToken = self.send(self.request(Method::POST, base, "/auth/refresh", None).json(&body)).await?;
        if token.access_token.is_empty() {
            return Err(ApiError::NotNexaCore("the refresh answer lacks a token".into()));
        }
        Ok(token)
    }

    /// Ends the sign-in the refresh token belongs to.
    pub async fn logout(&self, base: &str, refresh_token: &str) -> Result<(), ApiError> {
        let body = serde_json::json!({ "refresh_token": refresh_token });
        self.send_raw(self.request(Method::POST, base, "/auth/logout", None).json(&body)).await.map(|_| ())
    }

    pub async fn signup_options(&self, base: &str) -> Result<SignupOptions, ApiError> {
        self.send(self.request(Method::GET, base, "/signup/options", None)).await
    }

    /// Checks a slug, or (with `by_name`) the slug the server suggests for a company name.
    pub async fn slug_availability(
        &self,
        base: &str,
        value: &str,
        by_name: bool,
    ) -> Result<SlugAvailability, ApiError> {
        let key = if by_name { "name" } else { "slug" };
        self.send(self.request(Method::GET, base, "/signup/slug-availability", None).query(&[(key, value)])).await
    }

    /// `POST /tenants` with the wizard's `Idempotency-Key`: a retry after a network failure
    /// answers the same company instead of creating a second one.
    pub async fn create_tenant(
        &self,
        base: &str,
        request: &CreateTenantRequest,
        idempotency_key: &str,
    ) -> Result<CreatedTenant, ApiError> {
        let mut created: CreatedTenant = self
            .send(
                self.request(Method::POST, base, "/tenants", None)
                    .header("Idempotency-Key", idempotency_key)
                    .json(request),
            )
            .await?;
        if created.role.is_empty() {
            created.role = "admin".into();
        }
        Ok(created)
    }

    // --- router -----------------------------------------------------------------------------

    pub async fn employees_page(&self, api: &str, token: &str, cursor: Option<&str>) -> Result<EmployeePage, ApiError> {
        let mut query: Vec<(&str, &str)> = vec![("limit", "200")];
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor));
        }
        self.send(self.request(Method::GET, api, "/employees", Some(token)).query(&query)).await
    }

    /// Every employee, page after page.
    pub async fn all_employees(&self, api: &str, token: &str) -> Result<Vec<Employee>, ApiError> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.employees_page(api, token, cursor.as_deref()).await?;
            all.extend(page.items);
            match page.next_cursor {
                Some(next) if cursor.as_deref() != Some(next.as_str()) => cursor = Some(next),
                _ => return Ok(all),
            }
        }
    }

    pub async fn create_employee(&self, api: &str, token: &str, input: &NewEmployee) -> Result<Employee, ApiError> {
        self.send(self.request(Method::POST, api, "/employees", Some(token)).json(input)).await
    }

    /// A full update of the form's fields, conditional on `version` (`If-Match`): a lost race
    /// answers `412` with the current record in `current`.
    pub async fn update_employee(
        &self,
        api: &str,
        token: &str,
        id: Uuid,
        version: i64,
        input: &NewEmployee,
    ) -> Result<Employee, ApiError> {
        let request = self
            .request(Method::PATCH, api, &format!("/employees/{id}"), Some(token))
            .header("If-Match", format!("\"{version}\""))
            .json(&EmployeePatch::from(input.clone()));
        self.send(request).await
    }

    pub async fn delete_employee(&self, api: &str, token: &str, id: Uuid, version: i64) -> Result<(), ApiError> {
        let request = self
            .request(Method::DELETE, api, &format!("/employees/{id}"), Some(token))
            .header("If-Match", format!("\"{version}\""));
        self.send_raw(request).await.map(|_| ())
    }

    pub async fn departments(&self, api: &str, token: &str) -> Result<Vec<Department>, ApiError> {
        self.send(self.request(Method::GET, api, "/departments", Some(token))).await
    }

    pub async fn accounts(&self, api: &str, token: &str) -> Result<Vec<Account>, ApiError> {
        self.send(self.request(Method::GET, api, "/accounts", Some(token))).await
    }

    pub async fn create_department(&self, api: &str, token: &str, name: &str) -> Result<Department, ApiError> {
        let body = serde_json::json!({ "name": name });
        self.send(self.request(Method::POST, api, "/departments", Some(token)).json(&body)).await
    }
}

/// A reqwest error as a short sentence (no URL with a token in it).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the server did not answer in time".into()
    } else if let Some(problem) = certificate_problem(e) {
        format!(
            "the server's certificate is not trusted ({problem}); a company's own CA is added with \
             NEXACORE_TLS_CA_FILE or the extra_ca_file setting"
        )
    } else if e.is_connect() {
        "connection refused or no route to the server".into()
    } else {
        e.to_string()
    }
}

/// The TLS library's words when the failure was the server's certificate (they sit a few
/// sources deep, inside an I/O error).
pub fn certificate_problem(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source = e.source();
    while let Some(error) = source {
        let text = error.to_string();
        if text.contains("certificate") {
            return Some(text);
        }
        source = error.source();
    }
    None
}

/// An error answer as an [`ApiError`]; a body that is not our error JSON becomes a readable
/// message, never a panic.
fn error_from(status: StatusCode, body: &[u8]) -> ApiError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok().filter(|b: &ErrorBody| !b.error.is_empty());
    match (status.as_u16(), parsed) {
        (426, parsed) => {
            let parsed = parsed.unwrap_or_default();
            ApiError::UpgradeRequired {
                min_client_version: parsed.min_client_version.unwrap_or_default(),
                latest_version: parsed.latest_version.unwrap_or_default(),
            }
        }
        (503, Some(b)) if b.error == "maintenance" => ApiError::Maintenance(b.message),
        (status, Some(body)) => ApiError::Http { status, body },
        (status, None) => ApiError::Http {
            status,
            body: ErrorBody {
                error: "unexpected".into(),
                message: format!(
                    "the server answered {status} {}",
                    StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("")
                ),
                ..ErrorBody::default()
            },
        },
    }
}

pub use api_types::version::is_below as version_below;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_answers_of_every_shape_become_api_errors() {
        let check = |status: u16, body: &str, expected: ApiError| {
            assert_eq!(error_from(StatusCode::from_u16(status).unwrap(), body.as_bytes()), expected, "{status} {body}");
        };
        check(
            426,
            r#"{"error":"upgrade_required","message":"m","min_client_version":"2.0.0","latest_version":"2.1.0"}"#,
            ApiError::UpgradeRequired { min_client_version: "2.0.0".into(), latest_version: "2.1.0".into() },
        );
        check(503, r#"{"error":"maintenance","message":"Back at 5"}"#, ApiError::Maintenance("Back at 5".into()));
        let garbage = error_from(StatusCode::INTERNAL_SERVER_ERROR, b"<html>oops</html>");
        assert_eq!(garbage.status(), Some(500));
        assert!(garbage.is_transient());
        let malformed = error_from(StatusCode::BAD_REQUEST, b"{\"error\": 3");
        assert_eq!(malformed.code(), Some("unexpected"));
    }

    #[test]
    fn field_errors_come_from_details_or_the_single_field() {
        let body = r#"{"error":"invalid_field","message":"admin.password: too short","field":"admin.password"}"#;
        let e = error_from(StatusCode::UNPROCESSABLE_ENTITY, body.as_bytes());
        assert_eq!(e.field_errors(), vec![("admin.password".to_owned(), "too short".to_owned())]);
        let body = r#"{"error":"invalid_field","message":"x","field":"a","details":[{"field":"a","message":"bad"},{"field":"b","message":"worse"}]}"#;
        let e = error_from(StatusCode::UNPROCESSABLE_ENTITY, body.as_bytes());
        assert_eq!(e.field_errors().len(), 2);
    }

    #[test]
    fn urls_normalize() {
        assert_eq!(normalize_url(" 127.0.0.1:8080/ "), "http://127.0.0.1:8080");
        assert_eq!(normalize_url("https://x.example"), "https://x.example");
    }
}

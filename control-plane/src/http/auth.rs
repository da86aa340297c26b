//! Login and the JWKS.

use std::sync::Arc;

use poem::Request;
use poem_openapi::{OpenApi, payload::Json};
use secrecy::SecretString;

use super::security::client_address;
use super::wire::{LoginRequest, LoginResponse, LoginToken, TenantChoice, TenantSummary};
use crate::login::{LoginError, LoginOutcome};
use crate::state::AppState;
use http_api::JsonBody;
use http_api::{ApiError, ErrorBody};

pub struct AuthApi(pub Arc<AppState>);

#[OpenApi(tag = "super::signup::Tag::Identity")]
impl AuthApi {
    /// Signs a user in. With several companies and no `tenant`, answers the list to choose
    /// from. Repeated failures are throttled (429 with `Retry-After`).
    #[oai(path = "/auth/login", method = "post")]
    async fn login(&self, req: &Request, body: JsonBody<LoginRequest>) -> Result<Json<LoginResponse>, ApiError> {
        let body = body.0;
        if body.email.trim().is_empty() {
            return Err(ApiError::field("email", "email: is required"));
        }
        if body.password.is_empty() {
            return Err(ApiError::field("password", "password: is required"));
        }
        let client = client_address(req);
        let tenant = body.tenant.as_deref().map(str::trim).filter(|t| !t.is_empty());
        let outcome = self
            .0
            .login
            .login(&body.email, SecretString::from(body.password), tenant, client.as_deref())
            .await
            .map_err(|e| match e {
                LoginError::BadCredentials => {
                    ApiError::Unauthorized(Json(ErrorBody::new("bad_credentials", e.to_string())))
                }
                LoginError::Throttled(wait) => {
                    ApiError::TooManyRequests(Json(ErrorBody::new("throttled", e.to_string())), wait.as_secs().max(1))
                }
                LoginError::Busy(wait) => {
                    ApiError::Unavailable(Json(ErrorBody::new("busy", e.to_string())), wait.as_secs().max(1))
                }
                LoginError::NotAMember => {
                    ApiError::Forbidden(Json(ErrorBody::on_field("not_a_member", "tenant", e.to_string())))
                }
                LoginError::Suspended => ApiError::forbidden("tenant_suspended", e.to_string()),
                LoginError::NoCompany => ApiError::forbidden("no_company", e.to_string()),
                other => ApiError::internal(other),
            })?;
        Ok(Json(match outcome {
            LoginOutcome::Signed { token, tenant } => LoginResponse::Token(LoginToken {
                access_token: token.token,
                token_type: "Bearer".into(),
                expires_in: token.expires_in,
                tenant: TenantSummary {
                    id: tenant.tenant_id,
                    slug: tenant.slug,
                    name: tenant.name,
                    status: tenant.status,
                },
                role: tenant.role,
                api_url: self.0.router_url.clone(),
                ws_url: self.0.ws_url(),
            }),
            LoginOutcome::Choose(list) => LoginResponse::Choose(TenantChoice {
                tenants: list
                    .into_iter()
                    .map(|m| TenantSummary { id: m.tenant_id, slug: m.slug, name: m.name, status: m.status })
                    .collect(),
            }),
        }))
    }

    /// The public keys that verify access tokens (RFC 7517). Every key that still verifies is
    /// listed, with its `kid`, so keys can rotate without breaking tokens in flight.
    #[oai(path = "/.well-known/jwks.json", method = "get")]
    async fn jwks(&self) -> Json<serde_json::Value> {
        Json(self.0.keys.jwks().await)
    }
}

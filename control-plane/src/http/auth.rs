//! Login and the JWKS.

use std::sync::Arc;

use poem::Request;
use poem_openapi::{OpenApi, payload::Json};
use secrecy::SecretString;

use super::security::client_address;
use super::wire::{LoginRequest, LoginResponse, LoginToken, TenantChoice, TenantSummary};
use crate::identity::sessions::{Refreshed, SessionError, SignedIn};
use crate::login::{LoginError, LoginOutcome};
use crate::state::AppState;
use api_types::session::RefreshRequest;
use http_api::JsonBody;
use http_api::{ApiError, ErrorBody};

pub struct AuthApi(pub Arc<AppState>);

/// What every sign-in answers (login, refresh, accepted invitation): the tokens, the company,
/// the role, and where the data API is.
pub(super) fn signed_in(state: &AppState, signed: SignedIn, tenant: TenantSummary, role: &str) -> LoginToken {
    LoginToken {
        access_token: signed.access.token,
        token_type: "Bearer".into(),
        expires_in: signed.access.expires_in,
        tenant,
        role: role.to_owned(),
        api_url: state.router_url.clone(),
        ws_url: state.ws_url(),
        refresh_token: Some(signed.refresh_token),
        refresh_expires_in: Some(signed.refresh_expires_in),
    }
}

#[derive(poem_openapi::ApiResponse)]
pub enum LoggedOut {
    #[oai(status = 204)]
    NoContent,
}

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
            LoginOutcome::Signed { token, tenant } => {
                let summary =
                    TenantSummary { id: tenant.tenant_id, slug: tenant.slug, name: tenant.name, status: tenant.status };
                LoginResponse::Token(signed_in(&self.0, token, summary, &tenant.role))
            }
            LoginOutcome::Choose(list) => LoginResponse::Choose(TenantChoice {
                tenants: list
                    .into_iter()
                    .map(|m| TenantSummary { id: m.tenant_id, slug: m.slug, name: m.name, status: m.status })
                    .collect(),
            }),
        }))
    }

    /// Trades a refresh token (once) for a new access token and a new refresh token of the same
    /// sign-in, with the membership's current role. A refresh token presented twice ends the
    /// whole sign-in (it was copied). `401` when the sign-in has ended: sign in again.
    #[oai(path = "/auth/refresh", method = "post")]
    async fn refresh(&self, body: JsonBody<RefreshRequest>) -> Result<Json<LoginToken>, ApiError> {
        let refreshed = self.0.sessions.refresh(&body.0.refresh_token).await.map_err(|e| match e {
            SessionError::Ended => ApiError::Unauthorized(Json(ErrorBody::new("session_ended", e.to_string()))),
            SessionError::Reused => ApiError::Unauthorized(Json(ErrorBody::new("refresh_reused", e.to_string()))),
            other => ApiError::internal(other),
        })?;
        let Refreshed { signed, tenant, role } = refreshed;
        Ok(Json(signed_in(&self.0, signed, TenantSummary::from(&tenant), role.as_str())))
    }

    /// Signs out: the refresh token's sign-in ends (its access tokens run out within their
    /// lifetime). Always `204`.
    #[oai(path = "/auth/logout", method = "post")]
    async fn logout(&self, body: JsonBody<RefreshRequest>) -> Result<LoggedOut, ApiError> {
        self.0.sessions.end(&body.0.refresh_token).await.map_err(ApiError::internal)?;
        Ok(LoggedOut::NoContent)
    }

    /// The public keys that verify access tokens (RFC 7517). Every key that still verifies is
    /// listed, with its `kid`, so keys can rotate without breaking tokens in flight.
    #[oai(path = "/.well-known/jwks.json", method = "get")]
    async fn jwks(&self) -> Json<serde_json::Value> {
        Json(self.0.keys.jwks().await)
    }
}

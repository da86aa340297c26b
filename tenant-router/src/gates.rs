//! The gates every data request passes, in order: a valid token, platform maintenance, a known
//! and active tenant, tenant maintenance, no migration in progress, a schema version this build
//! serves. And, for every route, the client-version gate (`426 Upgrade Required`).

use std::sync::Arc;

use http_api::{ApiError, ErrorBody};
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::payload::Json;
use tenancy::{Claims, TenantStatus};

use crate::access::Access;
use crate::auth::AuthError;
use crate::routes::{Lookup, TenantRoute};
use crate::state::{AppState, MIN_SCHEMA_VERSION, max_schema_version};

/// An authenticated request's tenant: the token's claims and the tenant's route.
#[derive(Debug, Clone)]
pub struct TenantSession {
    pub claims: Claims,
    pub route: Arc<TenantRoute>,
}

impl TenantSession {
    pub fn role(&self) -> &str {
        &self.claims.role
    }

    /// Admins and managers change records; staff only read.
    pub fn require_writer(&self) -> Result<(), ApiError> {
        match self.role() {
            "admin" | "manager" => Ok(()),
            _ => Err(ApiError::forbidden("forbidden", "your role may read but not change records")),
        }
    }

    /// Only admins delete.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.role() {
            "admin" => Ok(()),
            _ => Err(ApiError::forbidden("forbidden", "only an admin may delete records")),
        }
    }
}

fn unavailable(error: &str, message: impl Into<String>, retry_after: u64) -> ApiError {
    ApiError::Unavailable(Json(ErrorBody::new(error, message)), retry_after)
}

pub async fn admit(state: &AppState, token: &str) -> Result<TenantSession, ApiError> {
    let claims = state.verifier.verify(token).await.map_err(|e| match e {
        AuthError::KeysUnavailable => unavailable("keys_unavailable", e.to_string(), 5),
        other => ApiError::Unauthorized(Json(ErrorBody::new("invalid_token", other.to_string()))),
    })?;
    let settings = state.settings.get().await;
    if let Some(message) = settings.maintenance {
        return Err(unavailable("maintenance", message, 60));
    }
    // Both from caches; on a cold tenant (or user) both catalog lookups run at once.
    let (route, access) =
        tokio::join!(state.routes.get(claims.tid), state.memberships.check(claims.sub, claims.tid, claims.ep));
    match access {
        Ok(Access::Granted) => {}
        Ok(Access::Removed) => {
            return Err(ApiError::Unauthorized(Json(ErrorBody::new(
                "token_revoked",
                "your access to this company was removed",
            ))));
        }
        Ok(Access::Changed) => {
            return Err(ApiError::Unauthorized(Json(ErrorBody::new(
                "token_revoked",
                "your access changed (role or password); sign in again",
            ))));
        }
        Err(error) => {
            tracing::error!(%error, "membership lookup failed");
            return Err(unavailable("catalog_unavailable", "cannot check your access right now; retry shortly", 2));
        }
    }
    let route = match route {
        Ok(Lookup::Found(route)) => route,
        Ok(Lookup::Unknown) => return Err(ApiError::unauthorized("the token names an unknown tenant")),
        Err(error) => {
            tracing::error!(%error, "tenant lookup failed");
            return Err(unavailable("catalog_unavailable", "cannot look the company up right now; retry shortly", 2));
        }
    };
    match route.status {
        TenantStatus::Active => {}
        TenantStatus::Suspended => {
            return Err(ApiError::forbidden("tenant_suspended", "this company is suspended; contact support"));
        }
        TenantStatus::Deleting | TenantStatus::Deleted => {
            return Err(ApiError::forbidden("tenant_deleted", "this company has been deleted"));
        }
        TenantStatus::Provisioning => {
            return Err(unavailable("tenant_provisioning", "this company is still being set up", 2));
        }
    }
    if let Some(message) = &route.maintenance {
        return Err(unavailable("maintenance", message.clone(), 60));
    }
    if route.migrating {
        return Err(unavailable("migrating", "this company's data is being upgraded; retry in a few seconds", 5));
    }
    let supported = MIN_SCHEMA_VERSION..=max_schema_version();
    if !route.schema_version.is_some_and(|v| supported.contains(&v)) {
        return Err(unavailable(
            "schema_version_unsupported",
            "this company's data is at a version this server does not serve yet; retry shortly",
            30,
        ));
    }
    Ok(TenantSession { claims, route })
}

/// Middleware: a request whose `X-Client-Version` is below the minimum gets 426 with the
/// minimum and latest versions; health and docs are always served.
pub async fn client_version_gate<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let path = req.uri().path();
    let exempt = path == "/health" || path.starts_with("/docs") || path == "/openapi.json";
    if !exempt && let Some(raw) = req.header("x-client-version") {
        let state = req.data::<Arc<AppState>>().expect("state is attached").clone();
        let Ok(client) = raw.parse::<api_types::Version>() else {
            return Ok(ApiError::bad_request("invalid_client_version", "X-Client-Version must look like 1.4.2")
                .into_response());
        };
        let settings = state.settings.get().await;
        if let Ok(min) = settings.min_client_version.parse::<api_types::Version>()
            && client < min
        {
            let mut body = ErrorBody::new(
                "upgrade_required",
                format!("this app version is no longer supported; update to {} or later", settings.min_client_version),
            );
            body.min_client_version = Some(settings.min_client_version.clone());
            body.latest_version = Some(settings.latest_version.clone());
            return Ok(ApiError::UpgradeRequired(Json(body)).into_response());
        }
    }
    next.call(req).await.map(IntoResponse::into_response)
}

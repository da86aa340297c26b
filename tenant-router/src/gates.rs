//! The gates every data request passes, in order: a valid token, platform maintenance, a known
//! and active tenant, tenant maintenance, no migration in progress, a schema version this build
//! serves. And, for every route, the client-version gate (`426 Upgrade Required`).

use std::ops::RangeInclusive;
use std::sync::Arc;

use http_api::{ApiError, ErrorBody};
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::payload::Json;
use tenancy::{Claims, Role, TenantStatus};

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
    pub fn role(&self) -> Role {
        self.claims.role
    }

    pub fn require_writer(&self) -> Result<(), ApiError> {
        match self.role().may_write() {
            true => Ok(()),
            false => Err(ApiError::forbidden("forbidden", "your role may read but not change records")),
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.role().may_delete() {
            true => Ok(()),
            false => Err(ApiError::forbidden("forbidden", "only an admin may delete records")),
        }
    }
}

/// What admission looks at, fetched (from caches, the catalog on a miss) before deciding.
#[derive(Debug)]
pub struct Facts {
    pub platform_maintenance: Option<String>,
    /// The user's membership against the token's epoch; `Err` when it could not be looked up.
    pub access: Result<Access, ()>,
    pub route: Result<Lookup, ()>,
    /// The schema versions this build serves.
    pub supported: RangeInclusive<i32>,
}

/// Why a request is not admitted, most fundamental first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    PlatformMaintenance(String),
    CatalogUnavailable,
    MembershipRemoved,
    MembershipChanged,
    UnknownTenant,
    Suspended,
    Deleted,
    Provisioning,
    TenantMaintenance(String),
    Migrating,
    SchemaUnsupported,
}

/// The admission rules, in order, with nothing fetched: every rule has a row in the table test.
pub fn decide(facts: Facts) -> Result<Arc<TenantRoute>, Refusal> {
    if let Some(message) = facts.platform_maintenance {
        return Err(Refusal::PlatformMaintenance(message));
    }
    match facts.access.map_err(|()| Refusal::CatalogUnavailable)? {
        Access::Granted => {}
        Access::Removed => return Err(Refusal::MembershipRemoved),
        Access::Changed => return Err(Refusal::MembershipChanged),
    }
    let route = match facts.route.map_err(|()| Refusal::CatalogUnavailable)? {
        Lookup::Found(route) => route,
        Lookup::Unknown => return Err(Refusal::UnknownTenant),
    };
    match route.status {
        TenantStatus::Active => {}
        TenantStatus::Suspended => return Err(Refusal::Suspended),
        TenantStatus::Deleting | TenantStatus::Deleted => return Err(Refusal::Deleted),
        TenantStatus::Provisioning => return Err(Refusal::Provisioning),
    }
    if let Some(message) = &route.maintenance {
        return Err(Refusal::TenantMaintenance(message.clone()));
    }
    if route.migrating {
        return Err(Refusal::Migrating);
    }
    if !route.schema_version.is_some_and(|v| facts.supported.contains(&v)) {
        return Err(Refusal::SchemaUnsupported);
    }
    Ok(route)
}

fn unavailable(error: &str, message: impl Into<String>, retry_after: u64) -> ApiError {
    ApiError::Unavailable(Json(ErrorBody::new(error, message)), retry_after)
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        let revoked = |message: &str| ApiError::Unauthorized(Json(ErrorBody::new("token_revoked", message)));
        match refusal {
            Refusal::PlatformMaintenance(message) | Refusal::TenantMaintenance(message) => {
                unavailable("maintenance", message, 60)
            }
            Refusal::CatalogUnavailable => {
                unavailable("catalog_unavailable", "cannot check your access right now; retry shortly", 2)
            }
            Refusal::MembershipRemoved => revoked("your access to this company was removed"),
            Refusal::MembershipChanged => revoked("your access changed (role or password); sign in again"),
            Refusal::UnknownTenant => ApiError::unauthorized("the token names an unknown tenant"),
            Refusal::Suspended => ApiError::forbidden("tenant_suspended", "this company is suspended; contact support"),
            Refusal::Deleted => ApiError::forbidden("tenant_deleted", "this company has been deleted"),
            Refusal::Provisioning => unavailable("tenant_provisioning", "this company is still being set up", 2),
            Refusal::Migrating => {
                unavailable("migrating", "this company's data is being upgraded; retry in a few seconds", 5)
            }
            Refusal::SchemaUnsupported => unavailable(
                "schema_version_unsupported",
                "this company's data is at a version this server does not serve yet; retry shortly",
                30,
            ),
        }
    }
}

/// Verifies the token, fetches the facts (route and membership at once: on a cold tenant or
/// user both catalog lookups run together), and decides.
pub async fn admit(state: &AppState, token: &str) -> Result<TenantSession, ApiError> {
    let claims = state.verifier.verify(token).await.map_err(|e| match e {
        AuthError::KeysUnavailable => unavailable("keys_unavailable", e.to_string(), 5),
        other => ApiError::Unauthorized(Json(ErrorBody::new("invalid_token", other.to_string()))),
    })?;
    http_api::record_tenant(claims.tid);
    let platform_maintenance = state.settings.get().await.maintenance;
    if let Some(message) = platform_maintenance {
        // Before any lookup: maintenance must not wait on (or for) the catalog.
        return Err(Refusal::PlatformMaintenance(message).into());
    }
    let (route, access) =
        tokio::join!(state.routes.get(claims.tid), state.memberships.check(claims.sub, claims.tid, claims.ep));
    let facts = Facts {
        platform_maintenance: None,
        access: access.map_err(|error| tracing::error!(%error, "membership lookup failed")),
        route: route.map_err(|error| tracing::error!(%error, "tenant lookup failed")),
        supported: MIN_SCHEMA_VERSION..=max_schema_version(),
    };
    let route = decide(facts)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use tenancy::{DbName, RoleName, TenantId};

    fn route(change: impl FnOnce(&mut TenantRoute)) -> Result<Lookup, ()> {
        let mut route = TenantRoute {
            id: TenantId(uuid::Uuid::nil()),
            status: TenantStatus::Active,
            server_id: uuid::Uuid::nil(),
            host: "127.0.0.1".into(),
            port: 5432,
            database: DbName::parse("t_x").unwrap(),
            role: RoleName::parse("t_x").unwrap(),
            schema_version: Some(3),
            maintenance: None,
            migrating: false,
        };
        change(&mut route);
        Ok(Lookup::Found(Arc::new(route)))
    }

    fn facts(access: Result<Access, ()>, route: Result<Lookup, ()>) -> Facts {
        Facts { platform_maintenance: None, access, route, supported: 2..=3 }
    }

    #[test]
    fn every_admission_rule_in_order() {
        let ok = || route(|_| {});
        let cases: Vec<(&str, Facts, Result<(), Refusal>)> = vec![
            ("everything in order", facts(Ok(Access::Granted), ok()), Ok(())),
            (
                "platform maintenance comes first",
                Facts { platform_maintenance: Some("back at 5".into()), ..facts(Err(()), Err(())) },
                Err(Refusal::PlatformMaintenance("back at 5".into())),
            ),
            ("membership lookup failed", facts(Err(()), ok()), Err(Refusal::CatalogUnavailable)),
            ("member removed", facts(Ok(Access::Removed), ok()), Err(Refusal::MembershipRemoved)),
            ("role or password changed", facts(Ok(Access::Changed), ok()), Err(Refusal::MembershipChanged)),
            ("revocation before the route", facts(Ok(Access::Removed), Err(())), Err(Refusal::MembershipRemoved)),
            ("route lookup failed", facts(Ok(Access::Granted), Err(())), Err(Refusal::CatalogUnavailable)),
            ("unknown tenant", facts(Ok(Access::Granted), Ok(Lookup::Unknown)), Err(Refusal::UnknownTenant)),
            (
                "suspended",
                facts(Ok(Access::Granted), route(|r| r.status = TenantStatus::Suspended)),
                Err(Refusal::Suspended),
            ),
            (
                "deleting",
                facts(Ok(Access::Granted), route(|r| r.status = TenantStatus::Deleting)),
                Err(Refusal::Deleted),
            ),
            ("deleted", facts(Ok(Access::Granted), route(|r| r.status = TenantStatus::Deleted)), Err(Refusal::Deleted)),
            (
                "provisioning",
                facts(Ok(Access::Granted), route(|r| r.status = TenantStatus::Provisioning)),
                Err(Refusal::Provisioning),
            ),
            (
                "tenant maintenance",
                facts(Ok(Access::Granted), route(|r| r.maintenance = Some("moving".into()))),
                Err(Refusal::TenantMaintenance("moving".into())),
            ),
            (
                "suspension before tenant maintenance",
                facts(
                    Ok(Access::Granted),
                    route(|r| {
                        r.status = TenantStatus::Suspended;
                        r.maintenance = Some("moving".into());
                    }),
                ),
                Err(Refusal::Suspended),
            ),
            ("migrating", facts(Ok(Access::Granted), route(|r| r.migrating = true)), Err(Refusal::Migrating)),
            (
                "maintenance before migrating",
                facts(
                    Ok(Access::Granted),
                    route(|r| {
                        r.migrating = true;
                        r.maintenance = Some("m".into());
                    }),
                ),
                Err(Refusal::TenantMaintenance("m".into())),
            ),
            (
                "schema too new",
                facts(Ok(Access::Granted), route(|r| r.schema_version = Some(4))),
                Err(Refusal::SchemaUnsupported),
            ),
            (
                "schema too old",
                facts(Ok(Access::Granted), route(|r| r.schema_version = Some(1))),
                Err(Refusal::SchemaUnsupported),
            ),
            (
                "schema unknown",
                facts(Ok(Access::Granted), route(|r| r.schema_version = None)),
                Err(Refusal::SchemaUnsupported),
            ),
        ];
        for (rule, facts, expected) in cases {
            assert_eq!(decide(facts).map(|_| ()), expected, "{rule}");
        }
    }

    #[test]
    fn refusals_answer_with_their_status() {
        let status = |r: Refusal| poem::IntoResponse::into_response(ApiError::from(r)).status().as_u16();
        assert_eq!(status(Refusal::PlatformMaintenance("m".into())), 503);
        assert_eq!(status(Refusal::MembershipRemoved), 401);
        assert_eq!(status(Refusal::UnknownTenant), 401);
        assert_eq!(status(Refusal::Suspended), 403);
        assert_eq!(status(Refusal::Migrating), 503);
        assert_eq!(status(Refusal::SchemaUnsupported), 503);
    }
}

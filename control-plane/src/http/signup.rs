//! Tenants: public signup (`POST /tenants`), its helpers for the wizard (options, slug
//! availability), and the operator's tenant lifecycle routes.

use std::sync::Arc;

use poem::Request;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::{ApiResponse, OpenApi, Tags, payload::Json};
use secrecy::SecretString;
use uuid::Uuid;

use super::security::{OperatorAuth, client_address, has_operator_token};
use super::wire::*;
use crate::catalog::audit::Actor;
use crate::catalog::tenants::{self, TenantFilter};
use crate::config::SignupPolicy;
use crate::domain::{Slug, TenantStatus};
use crate::lifecycle::{self, LifecycleError};
use crate::provision::{ProvisionError, SignupRequest, validate};
use crate::state::AppState;
use http_api::JsonBody;
use http_api::{ApiError, ErrorBody};

#[derive(Tags)]
pub enum Tag {
    /// Health, status, maintenance.
    System,
    /// Company signup and the operator's tenant lifecycle.
    Tenants,
    /// Login and signing keys.
    Identity,
    /// Database servers, keys and the audit log (operator token).
    Operations,
    /// A company's members and invitations, and each user's own password.
    People,
    /// Desktop releases: publishing (operator token), update checks, downloads and reports.
    Releases,
}

#[derive(ApiResponse)]
pub enum Created {
    /// The company was created (or, for a repeated Idempotency-Key, had been).
    #[oai(status = 201)]
    Created(Json<CreateTenantResponse>),
}

pub struct TenantsApi(pub Arc<AppState>);

const MAX_IDEMPOTENCY_KEY: usize = 200;

#[OpenApi(tag = "Tag::Tenants")]
impl TenantsApi {
    /// Creates a company: its own database and role, seeded, with its admin user. Honours
    /// `Idempotency-Key`: repeating a request with the same key and body returns the same
    /// tenant. Public by default (throttled per client address).
    #[oai(path = "/tenants", method = "post")]
    async fn create(
        &self,
        req: &Request,
        body: JsonBody<CreateTenantRequest>,
        #[oai(name = "Idempotency-Key")] idempotency_key: Header<Option<String>>,
    ) -> Result<Created, ApiError> {
        let state = &self.0;
        let operator = has_operator_token(req, state);
        let client = client_address(req);
        if !operator {
            if state.signup == SignupPolicy::OperatorOnly {
                return Err(ApiError::unauthorized("signup requires the operator token on this platform"));
            }
            if let Err(wait) = state.signup_limiter.hit(client.as_deref().unwrap_or("unknown")).await {
                return Err(ApiError::TooManyRequests(
                    Json(ErrorBody::new("throttled", "too many signups from this address; try again later")),
                    wait.as_secs(),
                ));
            }
        }
        let key = idempotency_key.0.map(|k| k.trim().to_owned()).filter(|k| !k.is_empty());
        if key.as_ref().is_some_and(|k| k.len() > MAX_IDEMPOTENCY_KEY || k.chars().any(char::is_control)) {
            return Err(ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key must be 1–200 printable characters",
            ));
        }
        let b = body.0;
        let valid = validate::validate(SignupRequest {
            company_name: b.company_name,
            slug: b.slug,
            admin_email: b.admin.email,
            admin_password: SecretString::from(b.admin.password),
            admin_full_name: b.admin.full_name,
            timezone: b.timezone,
            currency: b.currency,
            chart_template: b.chart_template,
            departments: b.departments,
        })
        .map_err(|errors| ApiError::fields(errors.into_iter().map(|e| (e.field, e.message))))?;

        let actor = if operator { Actor::operator(client.as_deref()) } else { Actor::signup(client.as_deref()) };
        // Spawned: a client that disconnects must not cut provisioning off halfway.
        let provisioner = state.provisioner.clone();
        let done =
            tokio::spawn(async move { provisioner.provision(valid, key.as_deref(), &actor, client.as_deref()).await })
                .await
                .map_err(ApiError::internal)?;
        let done = done.map_err(|e| match e {
            ProvisionError::SlugTaken(slug) => ApiError::conflict(ErrorBody::on_field(
                "slug_taken",
                "slug",
                format!("slug: \"{slug}\" is already taken"),
            )),
            ProvisionError::EmailTaken => {
                ApiError::conflict(ErrorBody::on_field("email_taken", "admin.email", format!("admin.email: {e}")))
            }
            ProvisionError::IdempotencyMismatch => {
                ApiError::Unprocessable(Json(ErrorBody::new("idempotency_key_reused", e.to_string())))
            }
            ProvisionError::InProgress => {
                ApiError::Conflict(Json(ErrorBody::new("in_progress", e.to_string())), Some(2))
            }
            ProvisionError::NoCapacity => ApiError::Unavailable(Json(ErrorBody::new("no_capacity", e.to_string())), 60),
            ProvisionError::Throttled(wait) => {
                ApiError::TooManyRequests(Json(ErrorBody::new("throttled", e.to_string())), wait.as_secs().max(1))
            }
            ProvisionError::Busy(wait) => {
                ApiError::Unavailable(Json(ErrorBody::new("busy", e.to_string())), wait.as_secs().max(1))
            }
            other => ApiError::internal(other),
        })?;
        let signed = state
            .sessions
            .start(done.admin_user, done.tenant.id, tenancy::Role::Admin, done.admin_epoch)
            .await
            .map_err(ApiError::internal)?;
        Ok(Created::Created(Json(CreateTenantResponse {
            tenant: TenantSummary::from(&done.tenant),
            access_token: signed.access.token,
            token_type: "Bearer".into(),
            expires_in: signed.access.expires_in,
            api_url: state.router_url.clone(),
            ws_url: state.ws_url(),
            refresh_token: Some(signed.refresh_token),
            refresh_expires_in: Some(signed.refresh_expires_in),
        })))
    }

    /// The choices the signup wizard offers: chart templates, currencies, time zones.
    #[oai(path = "/signup/options", method = "get")]
    async fn options(&self) -> Json<SignupOptions> {
        let chart_templates = tenant_schema::seed::chart_templates()
            .iter()
            .map(|t| ChartTemplate {
                code: t.code.into(),
                name: t.name.into(),
                description: t.description.into(),
                accounts: t.accounts.len(),
            })
            .collect();
        use iso_currency::IntoEnumIterator as _;
        // Only money a company keeps its books in: no test, metal or fund codes.
        let mut currencies: Vec<Currency> = iso_currency::Currency::iter()
            .filter(|c| crate::provision::validate::is_offered_currency(c.code()))
            .map(|c| Currency { code: c.code().to_owned(), name: c.name().to_owned() })
            .collect();
        currencies.sort_by(|a, b| a.code.cmp(&b.code));
        let timezones = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name().to_owned()).collect();
        Json(SignupOptions {
            chart_templates,
            default_chart_template: tenant_schema::seed::DEFAULT_CHART_TEMPLATE.into(),
            currencies,
            timezones,
            default_departments: tenant_schema::seed::default_departments().iter().map(|d| d.to_string()).collect(),
            password_min_length: crate::identity::password::MIN_LEN,
        })
    }

    /// Whether a slug is valid and free (throttled per client address). With `name` instead
    /// of `slug`, checks the slug suggested for that company name.
    #[oai(path = "/signup/slug-availability", method = "get")]
    async fn slug_availability(
        &self,
        req: &Request,
        slug: Query<Option<String>>,
        name: Query<Option<String>>,
    ) -> Result<Json<SlugAvailability>, ApiError> {
        if let Err(wait) = self.0.public_limiter.hit(client_address(req).as_deref().unwrap_or("unknown")).await {
            return Err(ApiError::TooManyRequests(
                Json(ErrorBody::new("throttled", "too many checks; slow down")),
                wait.as_secs(),
            ));
        }
        let raw = match (slug.0, name.0) {
            (Some(s), _) => s,
            (None, Some(n)) => match Slug::suggest(&n) {
                Some(s) => s.to_string(),
                None => return Err(ApiError::field("name", "name: no slug can be derived from it")),
            },
            (None, None) => return Err(ApiError::field("slug", "slug: give slug or name")),
        };
        let parsed = match Slug::parse(&raw) {
            Ok(s) => s,
            Err(reason) => {
                return Ok(Json(SlugAvailability {
                    slug: raw,
                    available: false,
                    reason: Some(reason),
                    suggestion: None,
                }));
            }
        };
        let available = self.0.provisioner.slug_available(&parsed).await?;
        let suggestion = if available {
            None
        } else {
            let mut found = None;
            for n in 2..10 {
                if let Ok(candidate) = Slug::parse(&format!("{parsed}-{n}"))
                    && self.0.provisioner.slug_available(&candidate).await?
                {
                    found = Some(candidate.to_string());
                    break;
                }
            }
            found
        };
        Ok(Json(SlugAvailability {
            slug: parsed.to_string(),
            available,
            reason: (!available).then(|| "already taken".to_owned()),
            suggestion,
        }))
    }

    /// Lists tenants (operator), by id, with filters and keyset paging.
    #[oai(path = "/tenants", method = "get")]
    async fn list(
        &self,
        _auth: OperatorAuth,
        status: Query<Option<String>>,
        server_id: Query<Option<Uuid>>,
        q: Query<Option<String>>,
        cursor: Query<Option<Uuid>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))] limit: Query<Option<i64>>,
    ) -> Result<Json<TenantPage>, ApiError> {
        let status = match status.0.as_deref() {
            None | Some("") => None,
            Some(s) => Some(TenantStatus::parse(s).ok_or_else(|| {
                ApiError::field("status", "status: must be provisioning, active, suspended, deleting or deleted")
            })?),
        };
        let limit = limit.0.unwrap_or(50);
        if !(1..=500).contains(&limit) {
            return Err(ApiError::field("limit", "limit: must be between 1 and 500"));
        }
        let filter = TenantFilter { status, server_id: server_id.0, search: q.0, after: cursor.0, limit: limit + 1 };
        let mut rows = tenants::list(&self.0.catalog, &filter).await?;
        let next_cursor = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.id)
        } else {
            None
        };
        Ok(Json(TenantPage { items: rows.into_iter().map(TenantDetail::from).collect(), next_cursor }))
    }

    /// One tenant (operator).
    #[oai(path = "/tenants/:id", method = "get")]
    async fn get(&self, _auth: OperatorAuth, id: Path<Uuid>) -> Result<Json<TenantDetail>, ApiError> {
        let row =
            tenants::get(&self.0.catalog, id.0).await?.ok_or_else(|| ApiError::not_found("no tenant with this id"))?;
        Ok(Json(row.into()))
    }

    /// Suspends or resumes a tenant, or sets feature flags (operator).
    #[oai(path = "/tenants/:id", method = "patch")]
    async fn patch(
        &self,
        auth: OperatorAuth,
        id: Path<Uuid>,
        body: JsonBody<PatchTenantRequest>,
    ) -> Result<Json<TenantDetail>, ApiError> {
        let req = body.0;
        let status = match req.status.as_deref() {
            None => None,
            Some("active") => Some(TenantStatus::Active),
            Some("suspended") => Some(TenantStatus::Suspended),
            Some(_) => return Err(ApiError::field("status", "status: must be active or suspended")),
        };
        if let Some(flags) = &req.feature_flags
            && let Some(bad) = flags.keys().find(|k| k.is_empty() || k.len() > 64)
        {
            return Err(ApiError::field("feature_flags", format!("feature_flags: bad flag name {bad:?}")));
        }
        if status.is_none() && req.feature_flags.is_none() {
            return Err(ApiError::field("status", "give status and/or feature_flags"));
        }
        let catalog = &self.0.catalog;
        let mut row = None;
        if let Some(flags) = req.feature_flags {
            let map = flags.into_iter().map(|(k, v)| (k, serde_json::Value::Bool(v))).collect();
            row = Some(lifecycle::set_feature_flags(catalog, &auth.0, id.0, &map).await.map_err(lifecycle_error)?);
        }
        if let Some(to) = status {
            row = Some(lifecycle::set_status(catalog, &auth.0, id.0, to).await.map_err(lifecycle_error)?);
        }
        Ok(Json(row.expect("one of the two ran").into()))
    }

    /// Deletes a tenant: drops its database and role; the catalog row stays as `deleted`.
    #[oai(path = "/tenants/:id", method = "delete")]
    async fn delete(&self, auth: OperatorAuth, id: Path<Uuid>) -> Result<Json<Deleted>, ApiError> {
        let row = lifecycle::delete(&self.0.catalog, &self.0.fleet, &auth.0, id.0).await.map_err(lifecycle_error)?;
        Ok(Json(Deleted { tenant: TenantSummary::from(&row) }))
    }
}

fn lifecycle_error(e: LifecycleError) -> ApiError {
    match e {
        LifecycleError::NotFound => ApiError::not_found(e.to_string()),
        LifecycleError::WrongState(_) => ApiError::conflict(ErrorBody::new("wrong_state", e.to_string())),
        other => ApiError::internal(other),
    }
}

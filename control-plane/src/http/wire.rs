//! Request and response bodies of the operator API and the conversions of catalog rows into
//! the wire types; the bodies clients share with the app are in `api_types`.

use std::collections::BTreeMap;

use poem_openapi::{Object, Union};
use time::OffsetDateTime;
use uuid::Uuid;

pub use api_types::session::{LoginRequest, LoginToken, TenantChoice, TenantSummary};
pub use api_types::signup::{
    ChartTemplate, CreateTenantRequest, CreateTenantResponse, Currency, SignupOptions, SlugAvailability,
};
pub use api_types::system::{Health, SystemStatus};

use crate::catalog::tenants::TenantRow;

impl From<&TenantRow> for TenantSummary {
    fn from(t: &TenantRow) -> Self {
        Self { id: t.id, slug: t.slug.clone(), name: t.name.clone(), status: t.status.clone() }
    }
}

#[derive(Debug, Union)]
#[allow(clippy::large_enum_variant, reason = "built once per login and serialised at once")]
pub enum LoginResponse {
    Token(LoginToken),
    Choose(TenantChoice),
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TenantDetail {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub status: String,
    pub server_id: Uuid,
    pub database_name: String,
    pub role_name: String,
    pub schema_version: Option<i32>,
    pub feature_flags: BTreeMap<String, serde_json::Value>,
    pub maintenance_mode: bool,
    pub maintenance_message: Option<String>,
    pub timezone: String,
    pub currency: String,
    pub chart_template: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub activated_at: Option<OffsetDateTime>,
    pub deleted_at: Option<OffsetDateTime>,
}

impl From<TenantRow> for TenantDetail {
    fn from(t: TenantRow) -> Self {
        let feature_flags = match t.feature_flags {
            serde_json::Value::Object(map) => map.into_iter().collect(),
            _ => BTreeMap::new(),
        };
        Self {
            id: t.id,
            slug: t.slug,
            name: t.name,
            status: t.status,
            server_id: t.server_id,
            database_name: t.database_name,
            role_name: t.role_name,
            schema_version: t.schema_version,
            feature_flags,
            maintenance_mode: t.maintenance_mode,
            maintenance_message: t.maintenance_message,
            timezone: t.timezone,
            currency: t.currency,
            chart_template: t.chart_template,
            created_at: t.created_at,
            updated_at: t.updated_at,
            activated_at: t.activated_at,
            deleted_at: t.deleted_at,
        }
    }
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TenantPage {
    pub items: Vec<TenantDetail>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<Uuid>,
}

#[derive(Debug, Object, serde::Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct PatchTenantRequest {
    /// `active` or `suspended`.
    #[oai(validator(pattern = "^(active|suspended)$"))]
    #[serde(default, deserialize_with = "http_api::not_null")]
    pub status: Option<String>,
    /// Flags to set (merged into the existing ones).
    #[serde(default, deserialize_with = "http_api::not_null")]
    pub feature_flags: Option<BTreeMap<String, bool>>,
}

#[derive(Object, serde::Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct RegisterServerRequest {
    /// A unique name for operators, e.g. `pg-eu-2`.
    #[oai(validator(pattern = "^[A-Za-z0-9_-]{1,63}$"))]
    pub name: String,
    /// A superuser URL (`postgres://user:password@host:port/postgres`); stored encrypted.
    #[oai(write_only, validator(pattern = "^postgres(ql)?://"))]
    pub admin_url: String,
    /// How many tenants the server should hold; placement weighs load by it.
    #[oai(validator(minimum(value = "1")))]
    #[serde(default, deserialize_with = "http_api::not_null")]
    pub capacity: Option<i32>,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ServerView {
    pub id: Uuid,
    pub name: String,
    pub host: String,
    pub port: i32,
    pub capacity: i32,
    pub status: String,
    /// Live (not deleted) tenants on the server.
    pub tenants: i64,
    /// Spare databases ready for the next signups on this server.
    pub spares_ready: i64,
}

impl From<crate::catalog::servers::ServerLoad> for ServerView {
    fn from(s: crate::catalog::servers::ServerLoad) -> Self {
        Self {
            id: s.id,
            name: s.name,
            host: s.host,
            port: s.port,
            capacity: s.capacity,
            status: s.status,
            tenants: s.tenants,
            spares_ready: s.spares_ready,
        }
    }
}

#[derive(Debug, Object, serde::Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct MaintenanceRequest {
    pub maintenance_mode: bool,
    /// Shown to users while maintenance lasts.
    #[serde(default, deserialize_with = "http_api::not_null")]
    pub message: Option<String>,
    /// A tenant id or slug: maintenance for that tenant only. Absent: the whole platform.
    #[serde(default, deserialize_with = "http_api::not_null")]
    pub tenant: Option<String>,
}

#[derive(Debug, Object, serde::Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct ClientVersionsRequest {
    /// Clients below this version get `426 Upgrade Required`.
    #[oai(validator(pattern = "^[0-9]+\\.[0-9]+\\.[0-9]+$"))]
    pub min_client_version: String,
    #[oai(validator(pattern = "^[0-9]+\\.[0-9]+\\.[0-9]+$"))]
    pub latest_version: String,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RotatedKey {
    /// The new current key's id.
    pub kid: String,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RevokedKey {
    /// The revoked key's id.
    pub kid: String,
    /// The key made current in its place, when the revoked key was the current one.
    pub new_current: Option<String>,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditEntryView {
    pub id: i64,
    pub at: OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub tenant_id: Option<Uuid>,
    pub details: serde_json::Value,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Deleted {
    pub tenant: TenantSummary,
}

/// One outgoing e-mail as operators see it (`GET /mail`): never its body.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct MailView {
    pub id: Uuid,
    /// What caused it: `invitation`, `welcome`, `password_reset`, `password_changed`.
    pub kind: String,
    pub tenant_id: Option<Uuid>,
    pub recipient: String,
    pub subject: String,
    /// `pending` (waiting or retrying), `sent`, or `failed` (gave up after the last attempt).
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: OffsetDateTime,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
    pub sent_at: Option<OffsetDateTime>,
}

//! Health, the public system status, and the operator's maintenance and version switches.

use std::sync::Arc;

use poem_openapi::{OpenApi, payload::Json};
use uuid::Uuid;

use super::security::OperatorAuth;
use super::wire::{ClientVersionsRequest, Health, MaintenanceRequest, SystemStatus};
use crate::catalog::{audit, settings, tenants};
use crate::lifecycle;
use crate::state::AppState;
use api_types::system::{Readiness, ReadinessCheck};
use http_api::ApiError;
use http_api::JsonBody;

pub struct SystemApi(pub Arc<AppState>);

#[OpenApi(tag = "super::signup::Tag::System")]
impl SystemApi {
    /// Liveness and catalog reachability.
    #[oai(path = "/health", method = "get")]
    async fn health(&self) -> Result<Json<Health>, ApiError> {
        sqlx::query("SELECT 1").execute(&self.0.catalog).await?;
        Ok(Json(Health {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            service: Health::CONTROL_PLANE.into(),
        }))
    }

    /// Readiness: the catalog answers and a signing key is loaded. `503` until both hold.
    #[oai(path = "/ready", method = "get")]
    async fn ready(&self) -> http_api::ReadyAnswer {
        let query = sqlx::query("SELECT 1").execute(&self.0.catalog);
        let catalog = tokio::time::timeout(std::time::Duration::from_secs(2), query).await.is_ok_and(|r| r.is_ok());
        let keys = !self.0.keys.public_keys().await.is_empty();
        http_api::ReadyAnswer::of(Readiness::of(vec![
            ReadinessCheck { name: "catalog".into(), ok: catalog },
            ReadinessCheck { name: "signing_keys".into(), ok: keys },
        ]))
    }

    /// Global maintenance state and the supported client versions (public).
    #[oai(path = "/system/status", method = "get")]
    async fn status(&self) -> Result<Json<SystemStatus>, ApiError> {
        let s = settings::get(&self.0.catalog).await?;
        Ok(Json(SystemStatus {
            maintenance_mode: s.maintenance_mode,
            message: s.maintenance_message,
            min_client_version: s.min_client_version,
            latest_version: s.latest_version,
        }))
    }

    /// Turns maintenance on or off, for the whole platform or one tenant.
    #[oai(path = "/system/maintenance", method = "put")]
    async fn maintenance(
        &self,
        auth: OperatorAuth,
        body: JsonBody<MaintenanceRequest>,
    ) -> Result<Json<SystemStatus>, ApiError> {
        let req = body.0;
        let message = req.message.as_deref().map(str::trim).filter(|m| !m.is_empty());
        if message.is_some_and(|m| m.chars().count() > 500) {
            return Err(ApiError::field("message", "must be at most 500 characters"));
        }
        match req.tenant.as_deref() {
            Some(t) => {
                let id = match Uuid::parse_str(t) {
                    Ok(id) => Some(id),
                    Err(_) => tenants::get_live_by_slug(&self.0.catalog, t).await?.map(|row| row.id),
                };
                let id = id.ok_or_else(|| ApiError::field("tenant", format!("no tenant {t:?}")))?;
                lifecycle::set_maintenance(&self.0.catalog, &auth.0, id, req.maintenance_mode, message).await.map_err(
                    |e| match e {
                        lifecycle::LifecycleError::NotFound => ApiError::field("tenant", format!("no tenant {t:?}")),
                        other => ApiError::internal(other),
                    },
                )?;
            }
            None => {
                let mut tx = self.0.catalog.begin().await?;
                settings::set_maintenance(&mut *tx, req.maintenance_mode, message).await?;
                let details = serde_json::json!({ "on": req.maintenance_mode, "message": message });
                audit::record(&mut *tx, &auth.0, "system.maintenance", None, details).await?;
                tx.commit().await?;
            }
        }
        self.status().await
    }

    /// Sets the minimum supported and the latest client versions.
    #[oai(path = "/system/client-versions", method = "put")]
    async fn client_versions(
        &self,
        auth: OperatorAuth,
        body: JsonBody<ClientVersionsRequest>,
    ) -> Result<Json<SystemStatus>, ApiError> {
        let req = body.0;
        let min = parse_version("min_client_version", &req.min_client_version)?;
        let latest = parse_version("latest_version", &req.latest_version)?;
        if min > latest {
            return Err(ApiError::field("min_client_version", "must not be above latest_version"));
        }
        let mut tx = self.0.catalog.begin().await?;
        settings::set_client_versions(&mut *tx, req.min_client_version.trim(), req.latest_version.trim()).await?;
        let details = serde_json::json!({ "min": req.min_client_version, "latest": req.latest_version });
        audit::record(&mut *tx, &auth.0, "system.client_versions", None, details).await?;
        tx.commit().await?;
        self.status().await
    }
}

/// Parses `MAJOR.MINOR.PATCH` into a comparable triple.
pub fn parse_version(field: &str, raw: &str) -> Result<api_types::Version, ApiError> {
    raw.parse().map_err(|e: api_types::version::NotAVersion| ApiError::field(field, e.to_string()))
}

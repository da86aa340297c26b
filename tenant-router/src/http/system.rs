//! Health and the public status, for the caller's view: with a valid token, a tenant's own
//! maintenance shows too.

use std::sync::Arc;

use std::time::Duration;

use api_types::system::{Health, Readiness, ReadinessCheck, SystemStatus};
use http_api::ApiError;
use http_api::ReadyAnswer;
use poem::Request;
use poem_openapi::{OpenApi, payload::Json};

use crate::routes::Lookup;
use crate::state::AppState;

pub struct SystemApi(pub Arc<AppState>);

#[OpenApi(tag = "super::Tag::System")]
impl SystemApi {
    /// Liveness.
    #[oai(path = "/health", method = "get")]
    async fn health(&self) -> Json<Health> {
        Json(Health { status: "ok".into(), version: env!("CARGO_PKG_VERSION").into(), service: Health::ROUTER.into() })
    }

    /// Readiness: the catalog answers and the catalog listener is connected (without it, no
    /// suspension or revocation would reach this replica). `503` until both hold.
    #[oai(path = "/ready", method = "get")]
    async fn ready(&self) -> ReadyAnswer {
        let catalog = tokio::time::timeout(Duration::from_secs(2), sqlx::query("SELECT 1").execute(&self.0.catalog))
            .await
            .is_ok_and(|r| r.is_ok());
        let listening = self.0.listening.load(std::sync::atomic::Ordering::Relaxed);
        ReadyAnswer::of(Readiness::of(vec![
            ReadinessCheck { name: "catalog".into(), ok: catalog },
            ReadinessCheck { name: "listener".into(), ok: listening },
        ]))
    }

    /// Maintenance state and supported client versions (public). With a bearer token, the
    /// maintenance of the token's company is included.
    #[oai(path = "/system/status", method = "get")]
    async fn status(&self, req: &Request) -> Result<Json<SystemStatus>, ApiError> {
        let settings = self.0.settings.get().await;
        let mut maintenance = settings.maintenance.clone();
        let token = req.header("authorization").and_then(|h| h.strip_prefix("Bearer "));
        if maintenance.is_none()
            && let Some(token) = token
            && let Ok(claims) = self.0.verifier.verify(token.trim()).await
            && let Ok(Lookup::Found(route)) = self.0.routes.get(claims.tid).await
        {
            maintenance = route.maintenance.clone();
        }
        Ok(Json(SystemStatus {
            maintenance_mode: maintenance.is_some(),
            message: maintenance,
            min_client_version: settings.min_client_version,
            latest_version: settings.latest_version,
        }))
    }
}

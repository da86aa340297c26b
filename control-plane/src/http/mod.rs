//! The HTTP API: poem-openapi services, Swagger UI at `/docs`, the spec at `/openapi.json`,
//! and the conversion of every error (including poem's own) into the JSON error body.

mod auth;
mod backups;
mod doctor;
mod migrations;
mod moves;
mod operator;
mod people;
mod releases;
mod security;
mod signup;
mod system;
mod tenant_people;
pub mod wire;

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::OpenApiService;

use crate::state::AppState;
use http_api::BodyLimit;

pub const API_TITLE: &str = "NexaCore control plane";

pub fn openapi(state: Arc<AppState>) -> OpenApiService<impl poem_openapi::OpenApi, ()> {
    OpenApiService::new(
        (
            system::SystemApi(state.clone()),
            signup::TenantsApi(state.clone()),
            auth::AuthApi(state.clone()),
            operator::OperatorApi(state.clone()),
            backups::BackupsApi(state.clone()),
            backups::RestoresApi(state.clone()),
            moves::MovesApi(state.clone()),
            doctor::DoctorApi(state.clone()),
            migrations::MigrationsApi(state.clone()),
            people::PeopleApi(state.clone()),
            tenant_people::TenantPeopleApi(state.clone()),
            releases::ReleasesApi(state),
        ),
        API_TITLE,
        env!("CARGO_PKG_VERSION"),
    )
}

/// The generated OpenAPI document, for snapshot tests and `ops`.
pub fn spec_json(state: Arc<AppState>) -> String {
    openapi(state).spec()
}

pub fn routes(state: Arc<AppState>) -> impl Endpoint {
    let api = openapi(state.clone());
    let docs = api.swagger_ui();
    let spec = api.spec_endpoint();
    let documented: serde_json::Value = serde_json::from_str(&api.spec()).expect("poem-openapi emits JSON");
    let allowed = http_api::AllowedMethods::from_openapi(&documented)
        .with("/openapi.json", &["get", "head"])
        .with("/metrics", &["get", "head"]);
    let http_metrics = http_api::HttpMetrics::new(state.metrics.clone(), allowed.clone());
    crate::metrics::describe(&state.metrics);
    let mut routes = Route::new();
    if state.metrics_enabled {
        routes = routes.at("/metrics", poem::get(metrics));
    }
    routes
        .at("/openapi.json", poem::get(spec))
        .nest("/docs", docs)
        .nest("/", api)
        .with(http_api::RejectUnstorableText)
        // Dumps are uploaded and restored in one request each, as long as their size takes.
        .with(http_api::RequestTimeoutExcept(state.http.request_timeout, &["/restores/uploads", "/restores"]))
        .catch_all_error(http_api::json_error)
        .with(allowed)
        .with_if(state.metrics_enabled, http_metrics)
        .around(http_api::request_log)
        .around(http_api::request_id)
        .with(http_api::ClientAddress(state.trusted_proxies.clone()))
        .data(BodyLimit(state.max_body_bytes))
        .data(state)
}

/// `GET /metrics` (Prometheus text format).
#[poem::handler]
async fn metrics(state: poem::web::Data<&Arc<AppState>>) -> poem::Response {
    http_api::metrics_response(crate::metrics::render(&state).await)
}

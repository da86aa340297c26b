//! The router's HTTP API: the ERP routes (scoped to the token's tenant), the public status,
//! Swagger UI at `/docs` and the document at `/openapi.json`.

mod employees;
mod errors;
mod ledger;
mod security;
mod system;
pub mod wire;
mod ws;

use std::sync::Arc;

use http_api::BodyLimit;
use poem::{Endpoint, EndpointExt, Route, get};
use poem_openapi::{OpenApiService, Tags};

use crate::state::AppState;

#[derive(Tags)]
pub enum Tag {
    /// Health and status.
    System,
    /// Employees of the token's company.
    Employees,
    /// Departments and the chart of accounts of the token's company.
    Ledger,
}

pub fn openapi(state: Arc<AppState>) -> OpenApiService<impl poem_openapi::OpenApi, ()> {
    OpenApiService::new(
        (system::SystemApi(state.clone()), employees::EmployeesApi(state.clone()), ledger::LedgerApi(state)),
        "NexaCore tenant router",
        env!("CARGO_PKG_VERSION"),
    )
}

pub fn routes(state: Arc<AppState>) -> impl Endpoint {
    let api = openapi(state.clone());
    let docs = api.swagger_ui();
    let spec = api.spec_endpoint();
    Route::new()
        .at("/openapi.json", spec)
        .at("/ws", get(ws::ws))
        .nest("/docs", docs)
        .nest("/", api)
        .around(crate::gates::client_version_gate)
        .with(http_api::RejectUnstorableText)
        .with(http_api::RequestTimeout(state.http.request_timeout))
        .catch_all_error(http_api::json_error)
        .around(http_api::request_log)
        .with(http_api::ClientAddress(state.trusted_proxies.clone()))
        .data(BodyLimit(state.max_body_bytes))
        .data(state)
}

//! The router's HTTP API: the ERP routes (scoped to the token's tenant), the public status,
//! Swagger UI at `/docs` and the document at `/openapi.json`.

mod employees;
mod errors;
mod ledger;
mod security;
mod system;

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

/// The OpenAPI document as served: poem-openapi's, plus the links it cannot declare (OpenAPI
/// 3 response links), so generated clients and stateful fuzzers can go from a created employee
/// to its item operations.
pub fn spec_json(state: Arc<AppState>) -> serde_json::Value {
    let mut spec: serde_json::Value = serde_json::from_str(&openapi(state).spec()).expect("poem-openapi emits JSON");
    let item = |method: &str, description: &str| {
        serde_json::json!({
            "operationRef": format!("#/paths/~1employees~1{{id}}/{method}"),
            "parameters": { "id": "$response.body#/id" },
            "description": description,
        })
    };
    let links = serde_json::json!({
        "GetEmployee": item("get", "This employee."),
        "UpdateEmployee": item("patch", "Change this employee (send its `version`)."),
        "DeleteEmployee": item("delete", "Delete this employee."),
    });
    for (path, method, status) in
        [("/employees", "post", "201"), ("/employees/{id}", "get", "200"), ("/employees/{id}", "patch", "200")]
    {
        if let Some(response) = spec["paths"][path][method]["responses"][status].as_object_mut() {
            response.insert("links".into(), links.clone());
        }
    }
    // Request bodies refuse unknown fields (serde's `deny_unknown_fields`); poem-openapi does
    // not say so in the schema.
    for name in ["NewEmployee", "EmployeePatch", "NewDepartment", "NewAccount"] {
        if let Some(schema) = spec["components"]["schemas"][name].as_object_mut() {
            schema.insert("additionalProperties".into(), serde_json::Value::Bool(false));
        }
    }
    // `null` clears these (or, in a create, means none); OpenAPI 3.0 says so with `nullable`.
    for (name, field) in [
        ("NewEmployee", "job_title"),
        ("NewEmployee", "department_id"),
        ("EmployeePatch", "job_title"),
        ("EmployeePatch", "department_id"),
        ("NewAccount", "parent_code"),
    ] {
        if let Some(property) = spec["components"]["schemas"][name]["properties"][field].as_object_mut() {
            property.insert("nullable".into(), serde_json::Value::Bool(true));
        }
    }
    spec
}

pub fn routes(state: Arc<AppState>) -> impl Endpoint {
    let api = openapi(state.clone());
    let docs = api.swagger_ui();
    let documented = spec_json(state.clone());
    let allowed = http_api::AllowedMethods::from_openapi(&documented)
        .with("/openapi.json", &["get", "head"])
        .with("/ws", &["get", "head"])
        .with("/metrics", &["get", "head"]);
    let spec = documented.to_string();
    let http_metrics = http_api::HttpMetrics::new(state.metrics.clone(), allowed.clone());
    crate::metrics::describe(&state.metrics);
    let metrics_state = state.clone();
    let mut routes = Route::new();
    if state.metrics_enabled {
        routes = routes.at(
            "/metrics",
            get(poem::endpoint::make_sync(move |_| http_api::metrics_response(crate::metrics::render(&metrics_state)))),
        );
    }
    routes
        .at(
            "/openapi.json",
            get(poem::endpoint::make_sync(move |_| {
                poem::Response::builder().content_type("application/json; charset=utf-8").body(spec.clone())
            })),
        )
        .at("/ws", get(ws::ws))
        .nest("/docs", docs)
        .nest("/", api)
        .around(crate::gates::client_version_gate)
        .with(http_api::RejectUnstorableText)
        .with(http_api::RequestTimeout(state.http.request_timeout))
        .catch_all_error(http_api::json_error)
        .with(allowed)
        .with_if(state.metrics_enabled, http_metrics)
        .around(http_api::request_log)
        .around(http_api::request_id)
        .with(http_api::ClientAddress(state.trusted_proxies.clone()))
        .data(BodyLimit(state.max_body_bytes))
        .data(state)
}

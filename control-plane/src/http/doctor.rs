//! `GET /doctor`: the platform's health for `ops doctor` (see `crate::doctor`).

use std::sync::Arc;

use api_types::doctor::DoctorReport;
use poem_openapi::param::Query;
use poem_openapi::{OpenApi, payload::Json};

use super::security::OperatorAuth;
use crate::doctor::{DoctorInput, examine};
use crate::state::AppState;
use http_api::ApiError;

pub struct DoctorApi(pub Arc<AppState>);

#[OpenApi(tag = "super::signup::Tag::Operations")]
impl DoctorApi {
    /// Checks the platform end to end (catalog, signing keys and JWKS, servers, template
    /// versions, spare pools, `max_connections` against `router_budget`, every database's
    /// `CONNECT` privileges, backups against the schedule). Answers 200 whatever it finds:
    /// `problems` lists each with its fix, and is empty when the platform is healthy.
    #[oai(path = "/doctor", method = "get")]
    async fn doctor(
        &self,
        _auth: OperatorAuth,
        /// Connections all router replicas together may hold to one server (the sum of their
        /// `NEXACORE_POOL_BUDGET_PER_SERVER`); without it the `max_connections` check is skipped.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        router_budget: Query<Option<u32>>,
    ) -> Result<Json<DoctorReport>, ApiError> {
        let report = examine(&self.0, DoctorInput { router_budget: router_budget.0 }).await?;
        Ok(Json(report))
    }
}

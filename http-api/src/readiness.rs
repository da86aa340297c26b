//! `GET /ready` of both services: `200` when every check passes, `503` otherwise, the checks in
//! the body either way (so an operator sees which one failed).

use api_types::system::Readiness;
use poem_openapi::ApiResponse;
use poem_openapi::payload::Json;

#[derive(ApiResponse)]
pub enum ReadyAnswer {
    /// Every check passed.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// A check failed: take this instance out of rotation.
    #[oai(status = 503)]
    NotReady(Json<Readiness>),
}

impl ReadyAnswer {
    pub fn of(readiness: Readiness) -> Self {
        if readiness.ready { Self::Ready(Json(readiness)) } else { Self::NotReady(Json(readiness)) }
    }
}

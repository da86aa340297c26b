//! Mapping of data-layer and pool errors to HTTP answers. A tenant sees what concerns its own
//! request; hosts, SQL and other tenants never appear.

use http_api::{ApiError, ErrorBody};
use poem_openapi::payload::Json;
use tenant_schema::data::DataError;

use crate::pools::PoolError;

pub fn from_pool(e: PoolError) -> ApiError {
    let (code, retry) = match &e {
        PoolError::BudgetExhausted { retry_after } => ("capacity_exhausted", retry_after),
        PoolError::TenantBusy { retry_after } => ("tenant_busy", retry_after),
        PoolError::DatabaseDown { retry_after } => ("database_unavailable", retry_after),
    };
    ApiError::Unavailable(Json(ErrorBody::new(code, e.to_string())), retry.as_secs().max(1))
}

/// `if_match` says whether the caller sent `If-Match`: a lost race is then 412, else 409.
pub fn from_data(e: DataError, if_match: bool) -> ApiError {
    match e {
        DataError::NotFound => ApiError::not_found("no such record"),
        DataError::Invalid(problems) => ApiError::fields(problems.into_iter().map(|p| (p.field, p.message))),
        DataError::Conflict(p) => {
            ApiError::conflict(ErrorBody::on_field("conflict", &p.field, format!("{}: {}", p.field, p.message)))
        }
        DataError::VersionMismatch { current } => {
            let mut body = ErrorBody::new(
                "version_mismatch",
                format!("the record was changed meanwhile; it is now at version {}", current.version),
            );
            body.current = serde_json::to_value(&*current).ok();
            if if_match { ApiError::PreconditionFailed(Json(body)) } else { ApiError::conflict(body) }
        }
        DataError::Database(error) => ApiError::internal(error),
    }
}

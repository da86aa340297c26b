//! The error body of every endpoint of every NexaCore service (`{"error","message","field"?}`), the typed error
//! response, and the conversion of domain errors into it. Internal details (SQL, hosts,
//! other tenants) are logged, never returned.

use poem_openapi::{ApiResponse, payload::Json};

pub use api_types::{ErrorBody, FieldProblem};

#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or invalid credentials.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Authenticated, but not allowed.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// Conflicts with the current state (taken slug, request in progress).
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>, #[oai(header = "Retry-After")] Option<u64>),
    /// The body is larger than the configured limit.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The `If-Match` version is not the current one; `current` holds the newer state.
    #[oai(status = 412)]
    PreconditionFailed(Json<ErrorBody>),
    /// A field is invalid; `field` names it.
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
    /// The client is older than the oldest supported version.
    #[oai(status = 426)]
    UpgradeRequired(Json<ErrorBody>),
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
}

impl ApiError {
    pub fn bad_request(error: &str, message: impl Into<String>) -> Self {
        Self::BadRequest(Json(ErrorBody::new(error, message)))
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Unauthorized(Json(ErrorBody::new("unauthorized", message)))
    }
    pub fn forbidden(error: &str, message: impl Into<String>) -> Self {
        Self::Forbidden(Json(ErrorBody::new(error, message)))
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(Json(ErrorBody::new("not_found", message)))
    }
    pub fn conflict(body: ErrorBody) -> Self {
        Self::Conflict(Json(body), None)
    }
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Unprocessable(Json(ErrorBody::on_field("invalid_field", field, message)))
    }
    /// A 422 for several field problems: the first is named in `field`, all are in `details`.
    pub fn fields(errors: impl IntoIterator<Item = (String, String)>) -> Self {
        let details: Vec<FieldProblem> =
            errors.into_iter().map(|(field, message)| FieldProblem { field, message }).collect();
        let (field, message) =
            details.first().map_or(("", "invalid request"), |p| (p.field.as_str(), p.message.as_str()));
        let mut body = ErrorBody::on_field("invalid_field", field, format!("{field}: {message}"));
        body.details = details;
        Self::Unprocessable(Json(body))
    }

    /// Logs the real error and returns an opaque 500.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        let reference = uuid::Uuid::new_v4().simple().to_string();
        tracing::error!(%error, %reference, "internal error");
        Self::Internal(Json(ErrorBody::new(
            "internal",
            format!("something went wrong on our side (reference {reference})"),
        )))
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(e)
    }
}

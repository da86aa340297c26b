//! What the NexaCore HTTP services share: the JSON error body (`{"error","message","field"?}`)
//! and the typed error response, [`JsonBody`] (serde parsing whose errors name the field), and
//! [`json_error`], the catch-all that turns every error, poem's own included, into that body;
//! [`request_log`], and [`shutdown_signal`], the signals every process stops on; the connection
//! limits and timeouts both serve with ([`GuardedAcceptor`], [`RequestTimeout`]) and the client
//! address behind trusted proxies ([`ClientAddress`]); `Allow` on every 405 ([`AllowedMethods`]);
//! Prometheus metrics ([`MetricsRegistry`], [`HttpMetrics`]) and `X-Request-Id` ([`request_id`]);
//! HTTPS from certificate files, reloaded on change ([`tls`]).

mod allowed_methods;
mod client_address;
mod config_source;
mod connection_guard;
mod error;
mod json_body;
mod json_reply;
pub mod metrics;
mod probe;
mod readiness;
mod request_id;
mod request_log;
mod service_cli;
mod shutdown;
mod text_guard;
pub mod tls;

use poem::{IntoResponse, Response};

pub use allowed_methods::AllowedMethods;
pub use api_types::not_null;
pub use client_address::{ClientAddress, ClientIp, TrustedProxies, client_ip};
pub use config_source::{ConfigSource, ConfigSourceError};
pub use connection_guard::{ConnectionLimits, GuardedAcceptor, GuardedIo, RequestTimeout, RequestTimeoutExcept};
pub use error::{ApiError, ErrorBody, FieldProblem};
pub use json_body::{BodyLimit, JsonBody};
pub use json_reply::JsonReply;
pub use metrics::{HttpMetrics, MetricsRegistry, metrics_response};
pub use probe::{ProbeError, probe};
pub use readiness::ReadyAnswer;
pub use request_id::{REQUEST_ID_HEADER, RequestId, record_tenant, request_id};
pub use request_log::request_log;
pub use service_cli::{ConfigArgs, ProbeArgs, init_tracing};
pub use shutdown::shutdown_signal;
pub use text_guard::RejectUnstorableText;
pub use tls::{ServerTls, ServiceAcceptor, TlsError, TlsFiles};

/// Every error leaves as the JSON error body, whatever produced it.
pub async fn json_error(err: poem::Error) -> Response {
    let status = err.status();
    // A query or path parameter poem-openapi could not parse or validate: say which, and why.
    if let Some(param) = err.downcast_ref::<poem_openapi::error::ParseParamError>() {
        let message = format!("{}: {}", param.name, param.reason);
        let body = ErrorBody::on_field("invalid_parameter", param.name, message);
        return poem::web::Json(body).with_status(poem::http::StatusCode::BAD_REQUEST).into_response();
    }
    let response = err.into_response();
    let is_json = response
        .headers()
        .get(poem::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let code = match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        404 => "not_found",
        405 => "method_not_allowed",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        _ if status.is_server_error() => "internal",
        _ => "error",
    };
    let message = match status.as_u16() {
        401 => "a valid bearer token is required".to_owned(),
        404 => "no such route".to_owned(),
        413 => "the request body is too large".to_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let mut out = poem::web::Json(ErrorBody::new(code, message)).with_status(status).into_response();
    for (name, value) in response.headers() {
        if name != poem::http::header::CONTENT_TYPE && name != poem::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

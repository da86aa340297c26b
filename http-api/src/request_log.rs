//! Request logging without secrets: method, path (never the query string, which may carry a
//! token, e.g. `/ws?token=…`), status and duration, as structured fields.

use std::time::Instant;

use poem::{Endpoint, IntoResponse, Request, Response};

/// Middleware (`.around(request_log)`): one line per request.
pub async fn request_log<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let outcome = next.call(req).await.map(IntoResponse::into_response);
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    match &outcome {
        Ok(response) => {
            let status = response.status().as_u16();
            if response.status().is_server_error() {
                tracing::warn!(%method, %path, status, elapsed_ms, "request");
            } else {
                tracing::info!(%method, %path, status, elapsed_ms, "request");
            }
        }
        Err(error) => {
            tracing::info!(%method, %path, status = error.status().as_u16(), elapsed_ms, "request");
        }
    }
    outcome
}

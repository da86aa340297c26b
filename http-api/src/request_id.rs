//! `X-Request-Id` on every response and in every log line of the request: the caller's id when it
//! sent a usable one (a proxy's, so one id follows the request through), a new UUID otherwise.
//! Every line logged while the request runs is inside a `request` span carrying the id; the
//! services record the token's tenant in the same span (`tenant_id`) once they know it.

use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest caller-supplied id kept; a longer or odd one is replaced, so logs never carry
/// arbitrary text from a client.
const MAX_LEN: usize = 128;

/// The request's id, in the request's extensions for handlers that want to quote it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Middleware (`.around(request_id)`), outside [`crate::request_log`] so its line carries the id.
pub async fn request_id<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| usable(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!("request", request_id = %id, tenant_id = tracing::field::Empty);
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut response = match next.call(req).instrument(span).await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(response)
}

/// Names the request's tenant in its span (and so in every later line of the request).
pub fn record_tenant(tenant: impl std::fmt::Display) {
    tracing::Span::current().record("tenant_id", tracing::field::display(tenant));
}

fn usable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/' | b'+' | b'='))
}

#[cfg(test)]
mod tests {
    use poem::test::TestClient;
    use poem::{EndpointExt, Route, get, handler, web::Data};

    use super::*;

    #[handler]
    fn echo(id: Data<&RequestId>) -> String {
        id.0.0.clone()
    }

    #[tokio::test]
    async fn a_usable_id_is_kept_and_any_other_is_replaced_by_a_uuid() {
        let client = TestClient::new(Route::new().at("/", get(echo)).around(request_id));
        let kept = client.get("/").header(REQUEST_ID_HEADER, "abc-123").send().await;
        kept.assert_header(REQUEST_ID_HEADER, "abc-123");
        kept.assert_text("abc-123").await;

        for sent in [None, Some("has spaces"), Some("x".repeat(MAX_LEN + 1).as_str())] {
            let mut request = client.get("/");
            if let Some(sent) = sent {
                request = request.header(REQUEST_ID_HEADER, sent);
            }
            let response = request.send().await;
            let id = response.0.headers().get(REQUEST_ID_HEADER).unwrap().to_str().unwrap().to_owned();
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{sent:?} gave {id}");
            response.assert_text(id).await;
        }
    }
}

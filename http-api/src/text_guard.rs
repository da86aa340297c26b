//! Refuses request paths and query strings that no handler can store: a NUL character
//! (Postgres text cannot hold one) or bytes that are not UTF-8, percent-encoded or not. The
//! answer is a 400 naming the parameter, before any handler (or database) sees the text.

use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

use crate::{ApiError, ErrorBody};

/// The middleware: wrap a service's routes with it.
pub struct RejectUnstorableText;

impl<E: Endpoint> Middleware<E> for RejectUnstorableText {
    type Output = RejectUnstorableTextEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        RejectUnstorableTextEndpoint(ep)
    }
}

pub struct RejectUnstorableTextEndpoint<E>(E);

impl<E: Endpoint> Endpoint for RejectUnstorableTextEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        if let Some((field, problem)) = first_problem(req.uri().path(), req.uri().query()) {
            let body = ErrorBody::on_field("invalid_parameter", &field, format!("{field}: {problem}"));
            return Ok(ApiError::BadRequest(poem_openapi::payload::Json(body)).into_response());
        }
        self.0.call(req).await.map(IntoResponse::into_response)
    }
}

/// The first parameter (or `path`) whose decoded text is not storable, and why.
fn first_problem(path: &str, query: Option<&str>) -> Option<(String, &'static str)> {
    if let Some(problem) = problem_of(path.as_bytes()) {
        return Some(("path".to_owned(), problem));
    }
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded_name = decode(name);
        let label = String::from_utf8(decoded_name.clone()).unwrap_or_else(|_| "query".to_owned()).replace('\0', "");
        if let Some(problem) = problem_of(name.as_bytes()).or_else(|| problem_of(value.as_bytes())) {
            return Some((if label.is_empty() { "query".to_owned() } else { label }, problem));
        }
    }
    None
}

fn problem_of(raw: &[u8]) -> Option<&'static str> {
    let Ok(raw) = std::str::from_utf8(raw) else { return Some("must be valid UTF-8") };
    let decoded = decode(raw);
    if std::str::from_utf8(&decoded).is_err() {
        return Some("must be valid UTF-8");
    }
    decoded.contains(&0).then_some("must not contain NUL characters")
}

/// Percent-decoding (`+` stays `+`: it is a space only in form bodies, and harmless here).
fn decode(raw: &str) -> Vec<u8> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) =
                (bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b)))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_and_invalid_utf8_are_named_by_their_parameter() {
        let check = |path: &str, query: Option<&str>, expected: Option<(&str, &str)>| {
            assert_eq!(
                first_problem(path, query),
                expected.map(|(f, p)| (
                    f.to_owned(),
                    match p {
                        "nul" => "must not contain NUL characters",
                        _ => "must be valid UTF-8",
                    }
                )),
                "{path} {query:?}"
            );
        };
        check("/employees", Some("q=ada&limit=5"), None);
        check("/employees", Some("q=caf%C3%A9"), None);
        check("/employees", Some("q=%00"), Some(("q", "nul")));
        check("/employees", Some("limit=5&q=a%00b"), Some(("q", "nul")));
        check("/employees", Some("q=%FF"), Some(("q", "utf8")));
        check("/employees", Some("q%00=1"), Some(("q", "nul")));
        check("/employees/%00", None, Some(("path", "nul")));
        check("/employees/%C3", None, Some(("path", "utf8")));
        check("/employees", Some("q=100%"), None);
    }
}

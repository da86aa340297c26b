//! `Allow` on every `405 Method Not Allowed` (RFC 9110 §15.5.6 requires it): poem answers 405
//! without saying which methods the path has, so the list is read once from the service's own
//! OpenAPI document, the one place every route's methods are written down.

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

/// Each documented path template (`/employees/{id}`) split into segments, with its methods.
/// The same table names the route of a request for the metrics ([`AllowedMethods::template`]).
#[derive(Debug, Clone, Default)]
pub struct AllowedMethods {
    routes: Vec<RouteEntry>,
}

#[derive(Debug, Clone)]
struct RouteEntry {
    segments: Vec<Segment>,
    template: std::sync::Arc<str>,
    allow: HeaderValue,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Parameter,
}

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

impl AllowedMethods {
    /// Reads `paths` of an OpenAPI document. Routes outside it (`/openapi.json`, `/ws`) are
    /// added with [`AllowedMethods::with`].
    pub fn from_openapi(spec: &serde_json::Value) -> Self {
        let mut out = Self::default();
        for (path, item) in spec["paths"].as_object().into_iter().flatten() {
            let mut methods: Vec<&str> = METHODS.iter().copied().filter(|m| item.get(*m).is_some()).collect();
            // poem answers HEAD wherever GET is routed.
            if methods.contains(&"get") && !methods.contains(&"head") {
                methods.push("head");
            }
            out = out.with(path, &methods);
        }
        out
    }

    pub fn with(mut self, path: &str, methods: &[&str]) -> Self {
        let list = methods.iter().map(|m| m.to_ascii_uppercase()).collect::<Vec<_>>().join(", ");
        if let Ok(allow) = HeaderValue::from_str(&list) {
            self.routes.push(RouteEntry { segments: segments(path), template: path.into(), allow });
        }
        self
    }

    fn entry(&self, path: &str) -> Option<&RouteEntry> {
        self.position(path).map(|i| &self.routes[i])
    }

    /// The index of the route `path` matches (a stable key for per-route caches).
    pub fn position(&self, path: &str) -> Option<usize> {
        // Without allocating: this runs for every request (metrics).
        let trimmed = path.trim_matches('/');
        self.routes.iter().position(|entry| {
            let mut wanted = trimmed.split('/');
            entry.segments.iter().all(|t| match (t, wanted.next()) {
                (Segment::Literal(l), Some(w)) => l == w,
                (Segment::Parameter, Some(w)) => !w.is_empty(),
                (_, None) => false,
            }) && wanted.next().is_none()
        })
    }

    fn lookup(&self, path: &str) -> Option<&HeaderValue> {
        self.entry(path).map(|entry| &entry.allow)
    }

    /// The documented template a concrete path matches (`/employees/7f…` → `/employees/{id}`),
    /// `None` for a path no route has.
    pub fn template(&self, path: &str) -> Option<&std::sync::Arc<str>> {
        self.entry(path).map(|entry| &entry.template)
    }

    /// The template of the route at `position`.
    pub fn template_at(&self, position: usize) -> Option<&std::sync::Arc<str>> {
        self.routes.get(position).map(|entry| &entry.template)
    }
}

fn segments(template: &str) -> Vec<Segment> {
    template
        .trim_matches('/')
        .split('/')
        .map(
            |s| {
                if s.starts_with('{') && s.ends_with('}') { Segment::Parameter } else { Segment::Literal(s.to_owned()) }
            },
        )
        .collect()
}

impl<E: Endpoint> Middleware<E> for AllowedMethods {
    type Output = AllowedMethodsEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        AllowedMethodsEndpoint { inner: ep, table: self.clone() }
    }
}

pub struct AllowedMethodsEndpoint<E> {
    inner: E,
    table: AllowedMethods,
}

impl<E: Endpoint> Endpoint for AllowedMethodsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let path = req.uri().path().to_owned();
        let mut response = match self.inner.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        if response.status() == StatusCode::METHOD_NOT_ALLOWED
            && let Some(allow) = self.table.lookup(&path)
        {
            response.headers_mut().insert(header::ALLOW, allow.clone());
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_by_segment_and_get_implies_head() {
        let spec = serde_json::json!({"paths": {
            "/employees": {"get": {}, "post": {}},
            "/employees/{id}": {"get": {}, "patch": {}, "delete": {}},
            "/auth/login": {"post": {}},
        }});
        let table = AllowedMethods::from_openapi(&spec).with("/ws", &["get"]);
        assert_eq!(table.lookup("/employees").unwrap(), "GET, POST, HEAD");
        assert_eq!(table.lookup("/employees/abc").unwrap(), "GET, DELETE, PATCH, HEAD");
        assert_eq!(table.lookup("/auth/login").unwrap(), "POST");
        assert_eq!(table.lookup("/ws").unwrap(), "GET");
        assert!(table.lookup("/employees/abc/more").is_none());
        assert_eq!(table.template("/employees/abc").map(|t| &**t), Some("/employees/{id}"));
        assert_eq!(table.template("/employees/").map(|t| &**t), Some("/employees"));
        assert!(table.template("/nowhere").is_none());
        assert!(table.lookup("/nothing").is_none());
    }
}

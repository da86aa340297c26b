//! Prometheus metrics of one service instance: a [`MetricsRegistry`] (the `metrics` crate's
//! handles over `metrics-exporter-prometheus`), the [`HttpMetrics`] middleware counting every
//! request by method, route template and status, and [`metrics_response`] for `GET /metrics`.
//!
//! Each service owns its registry instead of installing the process-global recorder: tests and
//! `ops up` run a control plane and routers in one process, and each must report only its own
//! figures. Handles are registered by name and labels on the registry directly.
//!
//! Figures the services already keep in memory or in the catalog (pool budgets, cache lookups,
//! tenants by state) are copied into gauges and counters when `/metrics` is scraped, so the
//! request path pays nothing for them; only per-request figures are recorded as they happen.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use poem::http::Method;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

use crate::AllowedMethods;

/// Histogram buckets (seconds) of every `*_seconds` metric: HTTP requests and provisioning steps,
/// from a cached read (~1 ms) to a slow migration step.
const SECONDS_BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// How often recorded histogram samples are folded into their buckets when nobody scrapes
/// (samples wait in a queue until then).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

pub struct MetricsRegistry {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for MetricsRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsRegistry").finish_non_exhaustive()
    }
}

/// Label pairs of one series.
pub type Labels<'a> = &'a [(&'static str, &'a str)];

impl MetricsRegistry {
    /// A new, empty registry. Inside a tokio runtime, a task folds histogram samples every few
    /// seconds; it ends when the registry is dropped.
    pub fn new() -> Arc<Self> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        let registry = Arc::new(Self { recorder, handle });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let weak: Weak<Self> = Arc::downgrade(&registry);
            runtime.spawn(async move {
                loop {
                    tokio::time::sleep(UPKEEP_EVERY).await;
                    let Some(registry) = weak.upgrade() else { break };
                    registry.handle.run_upkeep();
                }
            });
        }
        registry
    }

    pub fn counter(&self, name: &'static str, labels: Labels<'_>) -> Counter {
        self.recorder.register_counter(&key(name, labels), &metadata())
    }

    pub fn gauge(&self, name: &'static str, labels: Labels<'_>) -> Gauge {
        self.recorder.register_gauge(&key(name, labels), &metadata())
    }

    pub fn histogram(&self, name: &'static str, labels: Labels<'_>) -> Histogram {
        self.recorder.register_histogram(&key(name, labels), &metadata())
    }

    /// The `# HELP` line of a metric.
    pub fn describe(&self, name: &'static str, help: &'static str) {
        // The kind only matters to exporters that keep separate tables; Prometheus' has one.
        self.recorder.describe_gauge(name.into(), None, help.into());
    }

    /// Everything recorded, in the Prometheus text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

fn key(name: &'static str, labels: Labels<'_>) -> Key {
    Key::from_parts(name, labels.iter().map(|(k, v)| Label::new(*k, (*v).to_owned())).collect::<Vec<_>>())
}

fn metadata() -> Metadata<'static> {
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()))
}

/// `NEXACORE_METRICS`: `on` (default) records every request; `off` leaves the HTTP path
/// untouched and `/metrics` answers 404 (for measuring what the recording costs).
pub fn enabled_from(source: &crate::ConfigSource) -> Result<bool, (&'static str, String)> {
    let name = "NEXACORE_METRICS";
    match source.get(name).map_err(|e| (name, e.to_string()))?.as_deref().map(str::trim) {
        None | Some("") | Some("on" | "true" | "1") => Ok(true),
        Some("off" | "false" | "0") => Ok(false),
        Some(other) => Err((name, format!("{other:?}: expected on or off"))),
    }
}

/// `GET /metrics`: the text format with its content type.
pub fn metrics_response(text: String) -> Response {
    Response::builder().content_type("text/plain; version=0.0.4; charset=utf-8").body(text)
}

/// Middleware (`.with(HttpMetrics::new(..))`): `nexacore_http_requests_total` and
/// `nexacore_http_request_duration_seconds` by method, route and status. The route is the
/// documented template (`/employees/{id}`), `unmatched` for any other path, so a scan of random
/// paths cannot grow the number of series.
///
/// The handles of each (method, route, status) are kept after their first use, so a request
/// costs two atomic updates under a read lock rather than building and hashing label sets.
#[derive(Clone)]
pub struct HttpMetrics {
    registry: Arc<MetricsRegistry>,
    routes: AllowedMethods,
    handles: Arc<RwLock<HashMap<SeriesKey, (Counter, Histogram)>>>,
}

/// Method, route index (`None`: unmatched), status code.
type SeriesKey = (&'static str, Option<usize>, u16);

impl HttpMetrics {
    /// `routes`: the service's route table, the same one that answers `Allow` on a 405.
    pub fn new(registry: Arc<MetricsRegistry>, routes: AllowedMethods) -> Self {
        registry.describe("nexacore_http_requests_total", "HTTP requests answered, by method, route and status.");
        registry.describe("nexacore_http_request_duration_seconds", "Time from request head to response head.");
        Self { registry, routes, handles: Arc::default() }
    }

    fn handles(&self, key: SeriesKey) -> (Counter, Histogram) {
        if let Some(found) = self.handles.read().expect("metrics lock").get(&key) {
            return found.clone();
        }
        let (method, route, status) = key;
        let status = status.to_string();
        let route = route.and_then(|i| self.routes.template_at(i)).map_or("unmatched", |t| &**t);
        let labels = [("method", method), ("route", route), ("status", status.as_str())];
        let made = (
            self.registry.counter("nexacore_http_requests_total", &labels),
            self.registry.histogram("nexacore_http_request_duration_seconds", &labels),
        );
        self.handles.write().expect("metrics lock").insert(key, made.clone());
        made
    }
}

impl<E: Endpoint> Middleware<E> for HttpMetrics {
    type Output = HttpMetricsEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        HttpMetricsEndpoint { inner: ep, metrics: self.clone() }
    }
}

pub struct HttpMetricsEndpoint<E> {
    inner: E,
    metrics: HttpMetrics,
}

impl<E: Endpoint> Endpoint for HttpMetricsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let started = Instant::now();
        let method = method_label(req.method());
        let route = self.metrics.routes.position(req.uri().path());
        let response = match self.inner.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        let (counter, histogram) = self.metrics.handles((method, route, response.status().as_u16()));
        counter.increment(1);
        histogram.record(started.elapsed());
        Ok(response)
    }
}

/// Standard methods by name; anything else (a client may send any token) as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use poem::test::TestClient;
    use poem::{EndpointExt, Route, get, handler};

    use super::*;

    #[handler]
    fn hello() -> &'static str {
        "hello"
    }

    #[tokio::test]
    async fn requests_are_counted_by_route_template_and_status() {
        let registry = MetricsRegistry::new();
        let routes = AllowedMethods::default().with("/items/{id}", &["get"]);
        let app = Route::new().at("/items/:id", get(hello)).with(HttpMetrics::new(registry.clone(), routes));
        let client = TestClient::new(app);
        client.get("/items/1").send().await.assert_status_is_ok();
        client.get("/items/2").send().await.assert_status_is_ok();
        client.get("/nothing/here").send().await.assert_status(poem::http::StatusCode::NOT_FOUND);
        registry.handle.run_upkeep();
        let text = registry.render();
        assert!(
            text.contains(r#"nexacore_http_requests_total{method="GET",route="/items/{id}",status="200"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"nexacore_http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"nexacore_http_request_duration_seconds_count{method="GET",route="/items/{id}",status="200"} 2"#
            ),
            "{text}"
        );
    }
}

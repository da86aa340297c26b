//! `GET /metrics` of both services, read with a Prometheus text-format parser around a short
//! workload (a signup, employees written and read, a WebSocket receiving them): request
//! counters and latency histograms move by exactly the requests made, and the services' own
//! figures (signups, provisioning steps, tenants, pool connects, cache hits, deliveries) move
//! too. `X-Request-Id` is answered on every response. The example Grafana dashboard queries
//! only metrics the services serve.

use std::time::Duration;

use futures::StreamExt;
use prometheus_parse::{Scrape, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Stack, unique};
use crate::realtime::connect;

/// One scrape: the samples of the text format.
async fn scrape(stack: &Stack, base: &str) -> Scrape {
    let response = stack.http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = response.text().await.unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The value of the series `name` with exactly these labels (0 when absent): a counter or
/// gauge's value, a histogram's count of observations.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.iter().find(|b| b.less_than.is_infinite()).map_or(0.0, |b| b.count),
            Value::Summary(_) => panic!("{name} is a summary"),
        })
        .sum()
}

#[tokio::test]
async fn both_services_count_requests_by_route_and_status_and_their_own_figures_during_a_workload() {
    let stack = Stack::start().await;
    let (cp, router) = (stack.control_plane.clone(), stack.router.clone());
    let signups = [("method", "POST"), ("route", "/tenants"), ("status", "201")];
    let writes = [("method", "POST"), ("route", "/employees"), ("status", "201")];
    let reads = [("method", "GET"), ("route", "/employees"), ("status", "200")];
    let missing = [("method", "GET"), ("route", "unmatched"), ("status", "404")];
    let requests = "nexacore_http_requests_total";
    let latency = "nexacore_http_request_duration_seconds";

    let (cp_before, router_before) = (scrape(&stack, &cp).await, scrape(&stack, &router).await);

    let company = stack.signup(&unique("metrics")).await;
    let mut ws = connect(&router, &company.token, "").await;
    for i in 0..3 {
        stack.add_employee(&company.token, &format!("m{i}@example.com")).await;
    }
    for _ in 0..2 {
        let response = stack.call(reqwest::Method::GET, "/employees", &company.token).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let response = stack.http.get(format!("{router}/no/such/path")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let mut events = 0;
    while events < 3 {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("an event in time");
        if let Message::Text(_) = message.unwrap().unwrap() {
            events += 1;
        }
    }

    let (cp_after, router_after) = (scrape(&stack, &cp).await, scrape(&stack, &router).await);
    let moved = |before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]| {
        value(after, name, labels) - value(before, name, labels)
    };
    // The router: exactly the requests made, in counters and in histograms.
    assert_eq!(moved(&router_before, &router_after, requests, &writes), 3.0);
    assert_eq!(moved(&router_before, &router_after, latency, &writes), 3.0);
    assert_eq!(moved(&router_before, &router_after, requests, &reads), 2.0);
    assert_eq!(moved(&router_before, &router_after, latency, &reads), 2.0);
    assert_eq!(moved(&router_before, &router_after, requests, &missing), 1.0);
    // Its own figures.
    assert!(moved(&router_before, &router_after, "nexacore_router_connects_total", &[]) >= 1.0);
    assert!(
        moved(&router_before, &router_after, "nexacore_router_route_cache_requests_total", &[("result", "hit")]) >= 1.0
    );
    assert_eq!(moved(&router_before, &router_after, "nexacore_router_websocket_sessions_total", &[]), 1.0);
    assert_eq!(value(&router_after, "nexacore_router_websockets", &[]), 1.0);
    assert_eq!(moved(&router_before, &router_after, "nexacore_router_live_deliveries_total", &[]), 3.0);
    assert!(value(&router_after, "nexacore_router_pool_connections", &[]) >= 1.0);

    // The control plane: the signup, its steps, the tenant it made.
    assert_eq!(moved(&cp_before, &cp_after, requests, &signups), 1.0);
    assert_eq!(moved(&cp_before, &cp_after, latency, &signups), 1.0);
    assert_eq!(moved(&cp_before, &cp_after, "nexacore_signups_total", &[("outcome", "created")]), 1.0);
    assert_eq!(moved(&cp_before, &cp_after, "nexacore_provision_step_duration_seconds", &[("step", "activate")]), 1.0);
    assert_eq!(moved(&cp_before, &cp_after, "nexacore_tenants", &[("state", "active")]), 1.0);
    assert!(cp_after.samples.iter().any(|s| s.metric == "nexacore_mail_outbox"));
    assert!(cp_after.docs.contains_key("nexacore_http_requests_total"), "HELP lines are served");
    assert_dashboard_queries_only_served_metrics(&cp_after, &router_after);
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_sent_one_is_echoed() {
    let stack = Stack::start().await;
    for base in [&stack.control_plane, &stack.router] {
        for path in ["/health", "/no/such/path"] {
            let response = stack.http.get(format!("{base}{path}")).send().await.unwrap();
            let id = response.headers()["x-request-id"].to_str().unwrap();
            assert!(uuid::Uuid::parse_str(id).is_ok(), "{base}{path}: {id}");
        }
        let response = stack.http.get(format!("{base}/health")).header("x-request-id", "edge-42").send().await.unwrap();
        assert_eq!(response.headers()["x-request-id"], "edge-42");
    }
}

/// Every `nexacore_*` metric the example Grafana dashboard queries is one the services serve
/// (its `# HELP` line in a scrape after the workload), so the dashboard cannot drift from the code.
fn assert_dashboard_queries_only_served_metrics(cp: &Scrape, router: &Scrape) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let text = std::fs::read_to_string(root.join("deploy/grafana/nexacore.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let served = |name: &str| cp.docs.contains_key(name) || router.docs.contains_key(name);
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("nexacore_") {
                    let name = word.strip_suffix("_bucket").unwrap_or(word);
                    assert!(served(name), "the dashboard queries {name}, which no service serves");
                    queried += 1;
                }
            }
        }
    }
    assert!(queried > 10, "the scan found the queries");
}

//! The router's `GET /metrics`: HTTP figures recorded as requests pass (`http_api::HttpMetrics`),
//! and, copied in at each scrape, what the router already counts in memory: connections per
//! server against the budget, connects and budget waits, tenant pools, route cache hits and
//! misses, key fetches, WebSocket sockets, deliveries, replays, resyncs and cut-offs.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use http_api::MetricsRegistry;

use crate::realtime::stats::RealtimeStats;
use crate::state::AppState;

/// Copies the in-memory figures into the registry and renders it.
pub fn render(state: &AppState) -> String {
    let m = &state.metrics;
    let budget = state.pools.config().budget_per_server as f64;
    for (server, open) in state.pools.open_connections_by_server() {
        let server = server.to_string();
        m.gauge("nexacore_router_pool_connections", &[("server", &server)]).set(open as f64);
        m.gauge("nexacore_router_pool_budget", &[("server", &server)]).set(budget);
    }
    m.gauge("nexacore_router_tenant_pools", &[]).set(state.pools.pool_count() as f64);

    let stats = &state.pools.stats;
    let pool_counters = [
        ("nexacore_router_connects_total", &stats.connects),
        ("nexacore_router_connect_failures_total", &stats.connect_failures),
        ("nexacore_router_budget_waits_total", &stats.permit_waits),
        ("nexacore_router_budget_timeouts_total", &stats.budget_timeouts),
        ("nexacore_router_idle_reclaims_total", &stats.reclaimed_idle),
        ("nexacore_router_reserve_reclaims_total", &stats.reserve_reclaims),
    ];
    for (name, value) in pool_counters {
        m.counter(name, &[]).absolute(value.load(Ordering::Relaxed));
    }
    m.counter("nexacore_router_budget_wait_microseconds_total", &[])
        .absolute(stats.permit_wait_micros.load(Ordering::Relaxed));

    // Misses are the catalog lookups; every other request was answered from the cache.
    let (gets, misses) = (state.routes.get_count(), state.routes.lookup_count());
    m.counter("nexacore_router_route_cache_requests_total", &[("result", "miss")]).absolute(misses);
    m.counter("nexacore_router_route_cache_requests_total", &[("result", "hit")]).absolute(gets.saturating_sub(misses));
    m.counter("nexacore_router_jwks_fetches_total", &[]).absolute(state.verifier.fetch_count());

    let realtime = &state.realtime.stats;
    m.gauge("nexacore_router_websockets", &[]).set(state.realtime.socket_count() as f64);
    let realtime_counters = [
        ("nexacore_router_websocket_sessions_total", &realtime.sessions_opened),
        ("nexacore_router_live_deliveries_total", &realtime.deliveries),
        ("nexacore_router_replayed_events_total", &realtime.replayed),
        ("nexacore_router_resyncs_total", &realtime.resyncs),
        ("nexacore_router_cut_offs_total", &realtime.cut_offs),
    ];
    for (name, value) in realtime_counters {
        m.counter(name, &[]).absolute(RealtimeStats::read(value));
    }
    m.render()
}

/// The `# HELP` lines.
pub fn describe(m: &Arc<MetricsRegistry>) {
    let help = [
        ("nexacore_router_pool_connections", "Connections open to a Postgres server (counted against the budget)."),
        ("nexacore_router_pool_budget", "Connections this router may hold to a server."),
        ("nexacore_router_tenant_pools", "Tenant pools currently cached."),
        ("nexacore_router_connects_total", "Connections opened to tenant databases."),
        ("nexacore_router_connect_failures_total", "Failed attempts to open a tenant connection."),
        ("nexacore_router_budget_waits_total", "Requests that found no free budget permit and waited."),
        ("nexacore_router_budget_timeouts_total", "Requests refused after waiting for a budget permit."),
        ("nexacore_router_budget_wait_microseconds_total", "Microseconds spent waiting for budget permits."),
        ("nexacore_router_idle_reclaims_total", "Idle connections closed for a waiting request."),
        ("nexacore_router_reserve_reclaims_total", "Idle connections closed early to keep the reserve."),
        ("nexacore_router_route_cache_requests_total", "Tenant route requests, by cache result."),
        ("nexacore_router_jwks_fetches_total", "JWKS fetches from the control plane."),
        ("nexacore_router_websockets", "Open WebSockets."),
        ("nexacore_router_websocket_sessions_total", "WebSocket sessions started."),
        ("nexacore_router_live_deliveries_total", "Live events sent to sockets."),
        ("nexacore_router_replayed_events_total", "Events sent from the outbox (replays after since, filled gaps)."),
        ("nexacore_router_resyncs_total", "Resync notices sent (events no longer retained)."),
        ("nexacore_router_cut_offs_total", "Sockets closed for not taking their messages in time."),
    ];
    for (name, text) in help {
        m.describe(name, text);
    }
}

//! The control plane's `GET /metrics`: HTTP figures recorded as requests pass
//! (`http_api::HttpMetrics`), signups and provisioning step times (`provision::metrics`), and,
//! read from the catalog at each scrape, tenants by state, spare databases by state, migration
//! runs by state and the e-mail outbox by state. The catalog is the truth for those, shared by
//! every control plane replica, so they are gauges of its rows rather than per-process counters.

use http_api::MetricsRegistry;
use sqlx::PgPool;

use crate::state::AppState;

/// `(metric, help, query)`: each query answers `(state, count)` rows.
const CATALOG_GAUGES: [(&str, &str, &str); 4] = [
    ("nexacore_tenants", "Tenants by state.", "SELECT status, count(*) FROM tenants GROUP BY status"),
    (
        "nexacore_spare_databases",
        "Spare tenant databases by state (ready ones are the spare pool).",
        "SELECT status, count(*) FROM spare_databases GROUP BY status",
    ),
    (
        "nexacore_migration_runs",
        "Bulk migration runs by state (dry runs included).",
        "SELECT state, count(*) FROM migration_runs GROUP BY state",
    ),
    (
        "nexacore_mail_outbox",
        "E-mails in the outbox by state.",
        "SELECT status, count(*) FROM mail_outbox GROUP BY status",
    ),
];

/// The states each gauge always reports (0 when no row has it), so a state that empties
/// drops to zero instead of keeping its last value.
const STATES: [&[&str]; 4] = [
    &["provisioning", "active", "suspended", "deleting", "deleted"],
    &["creating", "ready", "retired"],
    &["running", "paused", "cancelling", "cancelled", "stopped", "completed", "interrupted"],
    &["pending", "sent", "failed"],
];

pub fn describe(m: &MetricsRegistry) {
    for (name, help, _) in CATALOG_GAUGES {
        m.describe(name, help);
    }
    m.describe("nexacore_spares_adopted_total", "Signups that adopted a spare database (this process).");
}

/// Reads the catalog figures into the registry and renders it. A catalog that does not answer
/// leaves the last values (and the process' own figures) in place and is logged.
pub async fn render(state: &AppState) -> String {
    let m = &state.metrics;
    if let Err(error) = read_catalog(&state.catalog, m).await {
        tracing::warn!(%error, "metrics: reading the catalog failed");
    }
    m.counter("nexacore_spares_adopted_total", &[]).absolute(state.provisioner.spares().stats().adopted);
    m.render()
}

async fn read_catalog(catalog: &PgPool, m: &MetricsRegistry) -> Result<(), sqlx::Error> {
    for ((name, _, query), states) in CATALOG_GAUGES.into_iter().zip(STATES) {
        let rows: Vec<(String, i64)> = sqlx::query_as(query).fetch_all(catalog).await?;
        for state in states {
            let count = rows.iter().find(|(s, _)| s == state).map_or(0, |(_, n)| *n);
            m.gauge(name, &[("state", state)]).set(count as f64);
        }
    }
    Ok(())
}

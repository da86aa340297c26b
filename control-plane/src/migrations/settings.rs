//! The defaults and limits of bulk migration runs: what the control plane's configuration sets,
//! and what a run may ask for instead.

use std::time::Duration;

/// Defaults and limits of runs, from the control plane's configuration.
#[derive(Debug, Clone)]
pub struct MigrationSettings {
    /// Tenants migrated at once over all servers, unless a run says otherwise.
    pub concurrency: u32,
    /// Tenants migrated at once on one Postgres server, unless a run says otherwise.
    pub per_server_concurrency: u32,
    /// How long one tenant's migration may wait for a lock before that tenant fails.
    pub lock_timeout: Duration,
    /// How long one statement of a tenant's migration may run before that tenant fails.
    pub statement_timeout: Duration,
    /// Test hook: abort the process right after the n-th tenant database has committed its
    /// migration, before the catalog records it (the worst moment to die). Never set in
    /// production.
    pub crash_after_commits: Option<u32>,
}

impl Default for MigrationSettings {
    fn default() -> Self {
        Self {
            concurrency: 16,
            per_server_concurrency: 8,
            lock_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(600),
            crash_after_commits: None,
        }
    }
}

/// The largest `concurrency` a run may ask for.
pub const MAX_CONCURRENCY: u32 = 256;

//! Bulk migrations: bringing every tenant database (and every server's template database) to a
//! version of the tenant schema, safely, with bounded concurrency and a record in the catalog.
//!
//! - [`MigrationSet`] is the list of tenant migrations this process applies: the embedded
//!   `tenant-schema` migrations in production, a fixture list in tests (one start-up path).
//! - [`Migrations`] (`service`) is what the HTTP API calls: create a run (or a dry run, the plan),
//!   pause, resume, cancel, retry. Creating is refused while another run is open.
//! - `engine` executes a run: the template databases first (so new tenants are born current),
//!   then the canary wave, then everyone else, at most `concurrency` tenants at once and at most
//!   `per_server_concurrency` on one Postgres server, honouring the failure policy.
//! - `database` migrates one database: one transaction, `lock_timeout`/`statement_timeout`,
//!   `SET LOCAL ROLE` to the objects' owner, tenant-schema's migration lock, the history checked
//!   (drift refused) under that lock, then each pending migration timed on its own.
//! - `recover` repairs what a dead engine left: tenants still flagged `migrating`, attempts still
//!   `running`, runs still `running` (they become `interrupted`, to be resumed).
//!
//! The invariants: a tenant is flagged `migrating` (the router answers it 503) only between the
//! catalog commit that starts its migration and the one that ends it; its database commits
//! before the end is recorded, so a crash in between is settled from the database itself; and the
//! history is re-read under the database's migration lock before anything is applied, so no
//! migration is ever applied twice.

mod database;
mod engine;
mod recorder;
pub mod recover;
mod service;
pub mod set;

use std::time::Duration;

pub use service::{CreateError, Migrations, RunActionError, RunRequest, RunSummary};
pub use set::MigrationSet;

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

/// The state of a run (`migration_runs.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    /// No tenant starts; those in flight finish. `resume` continues.
    Paused,
    /// Cancel requested: those in flight finish, then `Cancelled`.
    Cancelling,
    Cancelled,
    /// Stopped by the failure policy, a failed canary or a failed template; `retry` continues.
    Stopped,
    /// Every tenant had its turn (some may have failed under `continue`).
    Completed,
    /// The engine died (crash, `kill -9`) or the control plane shut down; `resume` continues.
    Interrupted,
}

impl RunState {
    pub const ALL: [RunState; 7] = [
        Self::Running,
        Self::Paused,
        Self::Cancelling,
        Self::Cancelled,
        Self::Stopped,
        Self::Completed,
        Self::Interrupted,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Cancelling => "cancelling",
            Self::Cancelled => "cancelled",
            Self::Stopped => "stopped",
            Self::Completed => "completed",
            Self::Interrupted => "interrupted",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Finished for good: nothing more happens unless an operator retries.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Cancelled | Self::Stopped | Self::Completed)
    }
}

/// A tenant's status within a run (`migration_run_tenants.status`).
pub mod tenant_status {
    pub const PENDING: &str = "pending";
    pub const RUNNING: &str = "running";
    /// At (or beyond) the run's target version: migrated now, or already there.
    pub const SUCCEEDED: &str = "succeeded";
    /// Its transaction was rolled back; `error` holds the database's error text.
    pub const FAILED: &str = "failed";
    /// Its history departs from the code; it was not touched; `error` holds the reason.
    pub const DRIFTED: &str = "drifted";
    /// It left the fleet (deleted) after the run was created.
    pub const SKIPPED: &str = "skipped";
    /// Dry run: inspected; `pending` lists what a run would apply.
    pub const PLANNED: &str = "planned";

    pub const ALL: [&str; 7] = [PENDING, RUNNING, SUCCEEDED, FAILED, DRIFTED, SKIPPED, PLANNED];
}

/// What a run does when tenants fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Start no more tenants once `max_failures` tenants have failed (those in flight finish).
    Stop { max_failures: u32 },
    /// Give every tenant its turn and report the failures at the end.
    Continue,
}

impl FailurePolicy {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Stop { .. } => "stop",
            Self::Continue => "continue",
        }
    }
}

/// Which tenants form the canary wave, migrated (and required to succeed) before the others.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Canary {
    #[default]
    None,
    /// The first n tenants of the run.
    First(u32),
    /// These tenants (ids or slugs).
    Tenants(Vec<String>),
}

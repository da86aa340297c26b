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
//! - `locks` are the catalog advisory locks by which recovery tells a live engine from a dead one;
//!   `status` the states of runs, tenants and attempts as the catalog keeps them; `settings` the
//!   configured defaults and limits.
//!
//! The invariants: a tenant is flagged `migrating` (the router answers it 503) only between the
//! catalog commit that starts its migration and the one that ends it; its database commits
//! before the end is recorded, so a crash in between is settled from the database itself; and the
//! history is re-read under the database's migration lock before anything is applied, so no
//! migration is ever applied twice.

mod database;
mod engine;
mod locks;
mod recorder;
pub mod recover;
mod service;
pub mod set;
mod settings;
pub mod status;

pub use service::{Canary, CreateError, FailurePolicy, Migrations, RunActionError, RunRequest, RunSummary};
pub use set::MigrationSet;
pub use settings::{MAX_CONCURRENCY, MigrationSettings};
pub use status::{AttemptStatus, RunState, RunTenantStatus};

//! Catalog rows of bulk migration runs (`migration_runs`), of each tenant's place in a run
//! (`migration_run_tenants`) and of every attempt of every migration (`migration_attempts`).
//! The tenant-side flag the router honours (`tenants.migrating`) is set and cleared here too,
//! in the same transactions that record a tenant's attempt.
//!
//! One file per table group; this one only gathers them, so callers keep one path
//! (`catalog::migration_runs::…`) and the files import one another, never this one.

mod attempts;
mod run_tenants;
mod runs;
mod summary;
mod turns;

pub use attempts::{
    AttemptRow, AttemptStep, AttemptTarget, attempts, finish_attempts, record_attempts, running_attempts,
    start_attempts,
};
pub use run_tenants::{
    Candidate, RunTenantRow, WorkRow, candidates, insert_run_tenants, reset_failed, run_tenants, running_rows,
    unsuccessful_canaries, work,
};
pub use runs::{
    NewRun, RunRow, get_run, insert_run, list_runs, lock_creation, open_run, runs_in, set_templates, state_of,
    transition,
};
pub use summary::{RunTotals, TimingSummary, timing_summary, totals};
pub use turns::{TenantEnd, begin_tenant, clear_migrating, end_tenant, migrating_tenants, record_plan};

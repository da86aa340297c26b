//! The catalog advisory locks that tell a live engine from a dead one.
//!
//! One engine executes runs that change databases at a time, anywhere: it holds a session
//! advisory lock on the catalog ([`ENGINE_LOCK_KEY`]) from before the run's state says
//! `running` (the API takes it, then hands it over) until it lets go. So whoever can take that
//! lock knows that every `running` row it sees was left by a dead engine (see `recover`).
//! Dry runs share another lock ([`PLANNER_LOCK_KEY`]); they change nothing.
//!
//! A leaf: the engine, the service and recovery all take these locks.

use sqlx::{Connection, PgConnection, PgPool};

/// Held (exclusively) by the one engine executing runs that change databases.
pub const ENGINE_LOCK_KEY: i64 = 0x6d69_6772_6174_6532;
/// Held (shared) by engines executing dry runs; taken exclusively only by `recover`.
pub const PLANNER_LOCK_KEY: i64 = 0x6d69_6772_6174_6533;

pub fn lock_key(dry_run: bool) -> i64 {
    if dry_run { PLANNER_LOCK_KEY } else { ENGINE_LOCK_KEY }
}

/// Takes the engine (or planner) lock on a dedicated catalog connection without waiting;
/// `None` when someone holds it.
pub async fn try_lock(catalog: &PgPool, dry_run: bool) -> Result<Option<PgConnection>, sqlx::Error> {
    let mut conn = catalog.acquire().await?.detach();
    let sql = if dry_run { "SELECT pg_try_advisory_lock_shared($1)" } else { "SELECT pg_try_advisory_lock($1)" };
    let got: bool = sqlx::query_scalar(sql).bind(lock_key(dry_run)).fetch_one(&mut conn).await?;
    if got {
        Ok(Some(conn))
    } else {
        conn.close().await.ok();
        Ok(None)
    }
}

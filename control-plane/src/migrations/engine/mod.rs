//! Executing a run: templates, the canary wave, then everyone else, under the concurrency
//! limits and the failure policy, until done, paused, cancelled, stopped or shut down.
//!
//! The engine executes only while it holds the engine lock (the planner lock for a dry run; see
//! `locks`), so that recovery can tell its `running` rows from a dead engine's.
//!
//! This file is the run's lifecycle (the lock hand-over, one pass, how a pass ends); `wave`
//! schedules one wave's tenants under the limits, `tenant` is one tenant's turn (migrated, or
//! planned in a dry run), `templates` brings the template databases first. The children add
//! methods to [`Engine`]; none of them is imported here, so the files form no cycle.

mod templates;
mod tenant;
mod wave;

use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;
use uuid::Uuid;

use super::database::Timeouts;
use super::locks::{lock_key, try_lock};
use super::recover;
use super::set::MigrationSet;
use super::settings::MigrationSettings;
use super::status::RunState;
use crate::catalog::migration_runs::{self as runs, RunRow};
use crate::fleet::Fleet;

/// Why a wave stopped starting tenants.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Halt {
    Paused,
    Cancelling,
    /// The control plane is shutting down.
    Shutdown,
    /// The failure policy's limit, a failed canary, a failed template: the stop reason.
    Stop(String),
    /// The catalog failed us; the run is left for recovery.
    Catalog(String),
    /// Someone moved the run out of `running` in a way we do not handle (it is gone).
    Gone,
}

pub struct Engine {
    pub catalog: PgPool,
    pub fleet: Arc<Fleet>,
    pub set: MigrationSet,
    pub settings: MigrationSettings,
    pub shutdown: watch::Receiver<bool>,
    /// Tenant databases committed by this process (for the crash test hook).
    commits: AtomicU32,
}

impl Engine {
    pub fn new(
        catalog: PgPool,
        fleet: Arc<Fleet>,
        set: MigrationSet,
        settings: MigrationSettings,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self { catalog, fleet, set, settings, shutdown, commits: AtomicU32::new(0) }
    }

    fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Executes a run. `lock` is the engine lock already taken (by the API, before it set the
    /// run `running`); without it the engine waits for the lock (an engine still finishing its
    /// tenants in flight holds it, and will itself carry on if it sees the run `running`).
    pub async fn execute(self: Arc<Self>, run_id: Uuid, dry_run: bool, lock: Option<PgConnection>) {
        let lock = match lock {
            Some(conn) => conn,
            None => match self.wait_for_lock(dry_run).await {
                Ok(Some(conn)) => conn,
                Ok(None) => return,
                Err(error) => {
                    tracing::error!(run = %run_id, %error, "cannot take the migration engine lock");
                    return;
                }
            },
        };
        let mut lock = lock;
        loop {
            if let Err(error) = self.drive(run_id).await {
                tracing::error!(run = %run_id, %error, "migration run interrupted by a catalog error");
                let reason = "the control plane lost its catalog connection; resume the run";
                let _ = runs::transition(
                    &self.catalog,
                    run_id,
                    &[RunState::Running, RunState::Cancelling],
                    RunState::Interrupted,
                    Some(reason),
                )
                .await;
                break;
            }
            // Someone resumed the run while we were finishing: carry on rather than hand over.
            if !self.shutting_down() && self.state(run_id).await == Some(RunState::Running) {
                continue;
            }
            let unlock = if dry_run { "SELECT pg_advisory_unlock_shared($1)" } else { "SELECT pg_advisory_unlock($1)" };
            let _ = sqlx::query(unlock).bind(lock_key(dry_run)).execute(&mut lock).await;
            // A resume that came between our look and our unlock found the lock taken and left
            // the run to us; if nobody took the lock since, it is still ours to run.
            if !self.shutting_down()
                && self.state(run_id).await == Some(RunState::Running)
                && let Ok(Some(again)) = try_lock(&self.catalog, dry_run).await
            {
                lock.close().await.ok();
                lock = again;
                continue;
            }
            break;
        }
        lock.close().await.ok();
    }

    async fn wait_for_lock(&self, dry_run: bool) -> Result<Option<PgConnection>, sqlx::Error> {
        let mut conn = self.catalog.acquire().await?.detach();
        let sql = if dry_run { "SELECT pg_advisory_lock_shared($1)" } else { "SELECT pg_advisory_lock($1)" };
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            locked = sqlx::query(sql).bind(lock_key(dry_run)).execute(&mut conn) => {
                locked?;
                Ok(Some(conn))
            }
            _ = shutdown.wait_for(|stop| *stop) => Ok(None),
        }
    }

    async fn state(&self, run_id: Uuid) -> Option<RunState> {
        runs::state_of(&self.catalog, run_id).await.ok().flatten()
    }

    /// One pass over the run, with the lock held.
    async fn drive(self: &Arc<Self>, run_id: Uuid) -> Result<(), sqlx::Error> {
        let Some(run) = runs::get_run(&self.catalog, run_id).await? else { return Ok(()) };
        // Left by an engine that died: settle them before anything starts (we hold the lock,
        // so nobody else is migrating them).
        for (_, row) in runs::running_rows(&self.catalog, Some(run.id)).await? {
            recover::settle_tenant(&self.catalog, &self.fleet, &run, &row).await?;
        }
        match run.state {
            RunState::Running => {}
            RunState::Cancelling => {
                runs::transition(&self.catalog, run.id, &[RunState::Cancelling], RunState::Cancelled, None).await?;
                return Ok(());
            }
            _ => return Ok(()),
        }
        let run = Arc::new(run);
        tracing::info!(run = %run.id, target = run.target_version, dry_run = run.dry_run, "migration run started");

        let mut halt = self.templates(&run).await?.map(Halt::Stop);
        let mut failed = u32::try_from(runs::totals(&self.catalog, run.id).await?.failed).unwrap_or(u32::MAX);
        if halt.is_none() {
            halt = self.wave(&run, true, &mut failed).await?;
        }
        if halt.is_none() && !run.dry_run && run.canary_count > 0 {
            let bad = runs::unsuccessful_canaries(&self.catalog, run.id).await?;
            if !bad.is_empty() {
                let list: Vec<String> = bad
                    .iter()
                    .map(|(slug, status, error)| match error {
                        Some(e) => format!("{slug} {status}: {e}"),
                        None => format!("{slug} {status}"),
                    })
                    .collect();
                halt = Some(Halt::Stop(format!(
                    "the canary wave failed, no other tenant was started ({})",
                    list.join("; ")
                )));
            }
        }
        if halt.is_none() {
            halt = self.wave(&run, false, &mut failed).await?;
        }

        let id = run.id;
        match halt {
            None => {
                if !runs::transition(&self.catalog, id, &[RunState::Running], RunState::Completed, None).await? {
                    runs::transition(&self.catalog, id, &[RunState::Cancelling], RunState::Cancelled, None).await?;
                }
            }
            Some(Halt::Cancelling) => {
                runs::transition(&self.catalog, id, &[RunState::Cancelling], RunState::Cancelled, None).await?;
            }
            Some(Halt::Shutdown) => {
                let reason = "the control plane shut down; resume the run";
                runs::transition(&self.catalog, id, &[RunState::Running], RunState::Interrupted, Some(reason)).await?;
                runs::transition(&self.catalog, id, &[RunState::Cancelling], RunState::Cancelled, None).await?;
            }
            Some(Halt::Stop(reason)) => {
                tracing::warn!(run = %id, %reason, "migration run stopped");
                runs::transition(&self.catalog, id, &[RunState::Running], RunState::Stopped, Some(&reason)).await?;
                runs::transition(&self.catalog, id, &[RunState::Cancelling], RunState::Cancelled, None).await?;
            }
            Some(Halt::Catalog(reason)) => {
                runs::transition(
                    &self.catalog,
                    id,
                    &[RunState::Running, RunState::Cancelling],
                    RunState::Interrupted,
                    Some(&reason),
                )
                .await?;
            }
            Some(Halt::Paused | Halt::Gone) => {}
        }
        let totals = runs::totals(&self.catalog, id).await?;
        tracing::info!(run = %id, ?totals, "migration run pass ended");
        Ok(())
    }

    /// Whether to start more tenants, by what this engine knows: shutdown, the failure policy.
    fn local_halt(&self, run: &RunRow, failed: u32) -> Option<Halt> {
        if self.shutting_down() {
            return Some(Halt::Shutdown);
        }
        // A dry run changes nothing: its failures (unreachable databases) stop nothing.
        let stops = run.failure_policy == "stop" && !run.dry_run;
        let max = u32::try_from(run.max_failures).unwrap_or(1);
        (stops && failed >= max)
            .then(|| Halt::Stop(format!("{failed} tenant(s) failed; the failure policy stops after {max}")))
    }

    /// Whether to start more tenants, by the run's state in the catalog (pause, cancel).
    async fn catalog_halt(&self, run: &RunRow) -> Result<Option<Halt>, sqlx::Error> {
        let state = runs::state_of(&self.catalog, run.id).await?;
        Ok(match state {
            Some(RunState::Running) => None,
            Some(RunState::Paused) => Some(Halt::Paused),
            Some(RunState::Cancelling) => Some(Halt::Cancelling),
            _ => Some(Halt::Gone),
        })
    }

    fn timeouts(&self, run: &RunRow) -> Timeouts {
        Timeouts {
            lock: Duration::from_millis(u64::try_from(run.lock_timeout_ms).unwrap_or(1)),
            statement: Duration::from_millis(u64::try_from(run.statement_timeout_ms).unwrap_or(1)),
        }
    }
}

//! One wave of a run (the canaries, or everyone else): which tenant starts next, at most
//! `concurrency` at once and at most `per_server_concurrency` on one server, until the wave is
//! done or something halts it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use uuid::Uuid;

use super::{Engine, Halt};
use crate::catalog::migration_runs::{self as runs, RunRow, WorkRow};
use crate::migrations::recorder::Recorder;
use crate::migrations::status::RunTenantStatus;

/// How often a running wave reads its run's state (to notice a pause or a cancel).
const STATE_POLL: Duration = Duration::from_millis(100);

impl Engine {
    /// Runs the pending tenants of one wave (the canaries, or the others) under the limits.
    pub(super) async fn wave(
        self: &Arc<Self>,
        run: &Arc<RunRow>,
        canary: bool,
        failed: &mut u32,
    ) -> Result<Option<Halt>, sqlx::Error> {
        let items = runs::work(&self.catalog, run.id, RunTenantStatus::Pending, canary).await?;
        if items.is_empty() {
            return Ok(None);
        }
        // Per server, in position order; the next tenant is the lowest position among servers
        // with a free slot, so one busy server never holds the others back.
        let mut queues: BTreeMap<Uuid, VecDeque<WorkRow>> = BTreeMap::new();
        for item in items {
            queues.entry(item.server_id).or_default().push_back(item);
        }
        let mut busy: HashMap<Uuid, i32> = HashMap::new();
        let mut inflight: JoinSet<(Uuid, Result<RunTenantStatus, sqlx::Error>)> = JoinSet::new();
        let (recorder, writer) = Recorder::spawn(self.catalog.clone());
        let mut halt = None;
        let mut looked: Option<Instant> = None;
        loop {
            if halt.is_none() {
                halt = self.local_halt(run, *failed);
            }
            // The catalog is asked at most every STATE_POLL, not once per tenant.
            if halt.is_none() && looked.is_none_or(|at| at.elapsed() >= STATE_POLL) {
                halt = self.catalog_halt(run).await?;
                looked = Some(Instant::now());
            }
            if halt.is_none() {
                while inflight.len() < run.concurrency as usize {
                    let next = queues
                        .iter()
                        .filter(|(server, queue)| {
                            !queue.is_empty() && busy.get(*server).copied().unwrap_or(0) < run.per_server_concurrency
                        })
                        .min_by_key(|(_, queue)| queue.front().map_or(i32::MAX, |item| item.position))
                        .map(|(server, _)| *server);
                    let Some(server) = next else { break };
                    let item = queues.get_mut(&server).and_then(VecDeque::pop_front).expect("a non-empty queue");
                    *busy.entry(server).or_default() += 1;
                    let engine = self.clone();
                    let run = run.clone();
                    let recorder = recorder.clone();
                    inflight.spawn(async move {
                        let outcome = if run.dry_run {
                            engine.plan_tenant(&run, &item, &recorder).await
                        } else {
                            engine.migrate_tenant(&run, &item, &recorder).await
                        };
                        (item.server_id, outcome)
                    });
                }
            }
            let Some(joined) = inflight.join_next().await else { break };
            match joined {
                Ok((server, outcome)) => {
                    *busy.entry(server).or_default() -= 1;
                    match outcome {
                        Ok(RunTenantStatus::Failed) => *failed += 1,
                        Ok(_) => {}
                        Err(error) => {
                            tracing::error!(run = %run.id, %error, "recording a tenant's migration failed");
                            halt = Some(Halt::Catalog(format!("the catalog failed while recording a tenant: {error}")));
                        }
                    }
                }
                Err(panic) => {
                    // Its row stays `running`; the sweep at the next start settles it.
                    tracing::error!(run = %run.id, error = %panic, "a tenant migration task panicked");
                    halt = Some(Halt::Catalog("a tenant migration task panicked".into()));
                }
            }
        }
        drop(recorder);
        let _ = writer.await;
        Ok(halt)
    }
}

//! Executing a run: templates, the canary wave, then everyone else, under the concurrency
//! limits and the failure policy, until done, paused, cancelled, stopped or shut down.
//!
//! The engine executes only while it holds the engine lock (the planner lock for a dry run; see
//! `locks`), so that recovery can tell its `running` rows from a dead engine's.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};
use tenant_schema::PendingMigration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::database::{self, Timeouts, error_text, millis};
use super::locks::{lock_key, try_lock};
use super::recorder::Recorder;
use super::recover;
use super::set::MigrationSet;
use super::settings::MigrationSettings;
use super::status::{RunState, RunTenantStatus};
use crate::catalog::migration_runs::{self as runs, AttemptStep, AttemptTarget, RunRow, TenantEnd, WorkRow};
use crate::catalog::servers;
use crate::domain::{DbName, RoleName};
use crate::fleet::{self, Fleet, SCHEMA_OWNER_ROLE, ServerHandle};

/// How often a running wave reads its run's state (to notice a pause or a cancel).
const STATE_POLL: Duration = Duration::from_millis(100);

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
        runs::state_of(&self.catalog, run_id).await.ok().flatten().and_then(|s| RunState::parse(&s))
    }

    /// One pass over the run, with the lock held.
    async fn drive(self: &Arc<Self>, run_id: Uuid) -> Result<(), sqlx::Error> {
        let Some(run) = runs::get_run(&self.catalog, run_id).await? else { return Ok(()) };
        // Left by an engine that died: settle them before anything starts (we hold the lock,
        // so nobody else is migrating them).
        for (_, row) in runs::running_rows(&self.catalog, Some(run.id)).await? {
            recover::settle_tenant(&self.catalog, &self.fleet, &run, &row).await?;
        }
        match RunState::parse(&run.state) {
            Some(RunState::Running) => {}
            Some(RunState::Cancelling) => {
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
        let state = runs::state_of(&self.catalog, run.id).await?.and_then(|s| RunState::parse(&s));
        Ok(match state {
            Some(RunState::Running) => None,
            Some(RunState::Paused) => Some(Halt::Paused),
            Some(RunState::Cancelling) => Some(Halt::Cancelling),
            _ => Some(Halt::Gone),
        })
    }

    /// Runs the pending tenants of one wave (the canaries, or the others) under the limits.
    async fn wave(
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

    fn timeouts(&self, run: &RunRow) -> Timeouts {
        Timeouts {
            lock: Duration::from_millis(u64::try_from(run.lock_timeout_ms).unwrap_or(1)),
            statement: Duration::from_millis(u64::try_from(run.statement_timeout_ms).unwrap_or(1)),
        }
    }

    /// Records the end of a tenant's turn; retried a few times, because a tenant left flagged
    /// `migrating` is refused by every router until someone clears it.
    async fn end(
        &self,
        rec: &Recorder,
        run: &RunRow,
        tenant: Uuid,
        end: TenantEnd,
        attempts: Option<(Vec<i64>, Vec<AttemptStep>)>,
    ) -> Result<(), sqlx::Error> {
        let (ids, steps) = attempts.unwrap_or_default();
        let mut delay = Duration::from_millis(100);
        for attempt in 1.. {
            match rec.end(run.id, tenant, end.clone(), ids.clone(), steps.clone()).await {
                Ok(()) => return Ok(()),
                Err(error) if attempt < 5 => {
                    tracing::warn!(%tenant, %error, "recording a tenant's migration failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(error) => return Err(error),
            }
        }
        unreachable!("the loop returns")
    }

    /// A tenant that could not even be inspected: one failed attempt, nothing applied.
    async fn fail_early(
        &self,
        rec: &Recorder,
        run: &RunRow,
        item: &WorkRow,
        error: String,
    ) -> Result<RunTenantStatus, sqlx::Error> {
        tracing::warn!(run = %run.id, tenant = %item.slug, %error, "tenant migration failed");
        let end = TenantEnd {
            status: RunTenantStatus::Failed,
            from_version: None,
            to_version: None,
            error: Some(error),
            timings: None,
            duration_ms: None,
            schema_version: None,
            count_attempt: true,
        };
        self.end(rec, run, item.tenant_id, end, None).await?;
        Ok(RunTenantStatus::Failed)
    }

    /// A tenant the run no longer concerns (deleted meanwhile).
    async fn skip(&self, rec: &Recorder, run: &RunRow, item: &WorkRow) -> Result<Option<RunTenantStatus>, sqlx::Error> {
        if matches!(item.tenant_status.as_str(), "active" | "suspended") {
            return Ok(None);
        }
        let reason = format!("the tenant is {}", item.tenant_status);
        let end = TenantEnd {
            status: RunTenantStatus::Skipped,
            from_version: None,
            to_version: None,
            error: Some(reason),
            timings: None,
            duration_ms: None,
            schema_version: None,
            count_attempt: false,
        };
        self.end(rec, run, item.tenant_id, end, None).await?;
        Ok(Some(RunTenantStatus::Skipped))
    }

    /// One tenant: inspect under its migration lock, then flag, apply, commit, record.
    async fn migrate_tenant(
        &self,
        run: &RunRow,
        item: &WorkRow,
        rec: &Recorder,
    ) -> Result<RunTenantStatus, sqlx::Error> {
        if let Some(skipped) = self.skip(rec, run, item).await? {
            return Ok(skipped);
        }
        let (db, role) = match (DbName::parse(&item.database_name), RoleName::parse(&item.role_name)) {
            (Ok(db), Ok(role)) => (db, role),
            _ => {
                return self
                    .fail_early(rec, run, item, "the catalog holds an invalid database or role name".into())
                    .await;
            }
        };
        let server = match self.fleet.server(item.server_id).await {
            Ok(server) => server,
            Err(error) => return self.fail_early(rec, run, item, error.to_string()).await,
        };
        let clock = Instant::now();
        let connecting = Instant::now();
        // As the tenant's own role: nothing the tenant created in its database (a trigger, a
        // view over the history, a search path) can run with more rights than it has.
        let mut conn = match self.fleet.connect_as_tenant(&server, &db, &role).await {
            Ok(conn) => conn,
            Err(error) => {
                return self.fail_early(rec, run, item, format!("cannot connect: {}", error_text(&error))).await;
            }
        };
        let connect = connecting.elapsed();
        let tenant = TenantDatabase { server: &server, db: &db, role: &role };
        let outcome = self.migrate_connected(rec, run, item, tenant, &mut conn, connect, clock).await;
        conn.close().await.ok();
        outcome
    }

    #[allow(clippy::too_many_arguments, reason = "one tenant's migration, split where its connection opens")]
    async fn migrate_connected(
        &self,
        rec: &Recorder,
        run: &RunRow,
        item: &WorkRow,
        tenant: TenantDatabase<'_>,
        conn: &mut PgConnection,
        connect: Duration,
        clock: Instant,
    ) -> Result<RunTenantStatus, sqlx::Error> {
        let locking = Instant::now();
        let mut tx = match conn.begin().await {
            Ok(tx) => tx,
            Err(error) => return self.fail_early(rec, run, item, error_text(&error)).await,
        };
        let checked = async {
            let can_create = database::prepare_tenant(&mut tx, self.timeouts(run)).await?;
            let check = tenant_schema::check_history(&mut tx, self.set.as_slice(), Some(run.target_version)).await?;
            Ok::<_, tenant_schema::SchemaError>((can_create, check))
        }
        .await;
        let (can_create, check) = match checked {
            Ok(checked) => checked,
            Err(error) => {
                tx.rollback().await.ok();
                return self.fail_early(rec, run, item, error_text(&error)).await;
            }
        };
        let lock = locking.elapsed();

        if let Some(drift) = &check.drift {
            tx.rollback().await.ok();
            let reason = format!("not migrated: its history departs from the code: {drift}");
            tracing::warn!(run = %run.id, tenant = %item.slug, %reason, "drifted tenant skipped");
            let end = TenantEnd {
                status: RunTenantStatus::Drifted,
                from_version: check.applied_version,
                to_version: check.applied_version,
                error: Some(reason),
                timings: None,
                duration_ms: None,
                schema_version: None,
                count_attempt: false,
            };
            self.end(rec, run, item.tenant_id, end, None).await?;
            return Ok(RunTenantStatus::Drifted);
        }
        if check.pending.is_empty() {
            tx.rollback().await.ok();
            let end = TenantEnd {
                status: RunTenantStatus::Succeeded,
                from_version: check.applied_version,
                to_version: check.applied_version,
                error: None,
                timings: None,
                duration_ms: None,
                schema_version: check.applied_version,
                count_attempt: false,
            };
            self.end(rec, run, item.tenant_id, end, None).await?;
            return Ok(RunTenantStatus::Succeeded);
        }

        // The router lock and the attempt records, committed before any DDL.
        let flagging = Instant::now();
        let target = AttemptTarget {
            run: run.id,
            tenant: Some(item.tenant_id),
            server: item.server_id,
            database: item.database_name.clone(),
            attempt: item.attempts + 1,
        };
        let steps: Vec<(i32, String)> = check.pending.iter().map(|m| (m.version, m.name.clone())).collect();
        let ids = match rec.begin(target, check.applied_version, steps).await {
            Ok(ids) => ids,
            Err(error) => {
                tx.rollback().await.ok();
                return Err(error);
            }
        };
        let flag = flagging.elapsed();

        let applying = Instant::now();
        // A tenant provisioned before tenants were given `CREATE` on `public` gets it once, from a
        // superuser session that runs no tenant code; this transaction sees it from its next
        // statement on.
        let granted = match can_create {
            true => Ok(()),
            false => self.fleet.grant_schema_create(tenant.server, tenant.db, tenant.role).await,
        };
        let (applied, failure) = match granted {
            Ok(()) => {
                let (applied, failure) = database::apply_pending(&mut tx, &self.set, &check.pending).await;
                (applied, failure.map(|error| error_text(&error)))
            }
            Err(error) => (Vec::new(), Some(format!("granting CREATE on schema public: {error}"))),
        };
        let ddl = applying.elapsed();
        let committing = Instant::now();
        let (committed, error) = match failure {
            Some(error) => {
                tx.rollback().await.ok();
                (false, Some(error))
            }
            None => match tx.commit().await {
                Ok(()) => (true, None),
                Err(error) => (false, Some(error_text(&error))),
            },
        };
        let commit = committing.elapsed();
        if committed {
            self.after_commit(&item.slug);
        }
        let duration = clock.elapsed();

        let records = database::attempt_records(&check.pending, &applied, committed);
        let reached = committed.then(|| check.pending.last().map(|m| m.version)).flatten();
        let to_version = reached.or(check.applied_version);
        let timings = json!({
            "connect_ms": millis(connect),
            "lock_ms": millis(lock),
            "flag_ms": millis(flag),
            "ddl_ms": millis(ddl),
            "commit_ms": millis(commit),
        });
        let end = TenantEnd {
            status: if committed { RunTenantStatus::Succeeded } else { RunTenantStatus::Failed },
            from_version: check.applied_version,
            to_version,
            error: error.clone(),
            timings: Some(timings),
            duration_ms: Some(millis(duration)),
            schema_version: to_version,
            count_attempt: false,
        };
        if let Some(error) = &error {
            tracing::warn!(run = %run.id, tenant = %item.slug, %error, "tenant migration failed and was rolled back");
        }
        self.end(rec, run, item.tenant_id, end, Some((ids, records))).await?;
        Ok(if committed { RunTenantStatus::Succeeded } else { RunTenantStatus::Failed })
    }

    /// The crash test hook: die right after the n-th commit, before the catalog knows.
    fn after_commit(&self, tenant: &str) {
        let n = self.commits.fetch_add(1, Ordering::SeqCst) + 1;
        if self.settings.crash_after_commits == Some(n) {
            tracing::error!(%tenant, commits = n, "NEXACORE_FAULT_MIGRATION_CRASH_AFTER: aborting the process");
            std::process::abort();
        }
    }

    /// Dry run: what a run would do to this tenant. Reads only; takes no lock.
    async fn plan_tenant(&self, run: &RunRow, item: &WorkRow, rec: &Recorder) -> Result<RunTenantStatus, sqlx::Error> {
        if let Some(skipped) = self.skip(rec, run, item).await? {
            return Ok(skipped);
        }
        let inspected = async {
            let db = DbName::parse(&item.database_name).map_err(|e| e.to_string())?;
            let server = self.fleet.server(item.server_id).await.map_err(|e| e.to_string())?;
            let role = RoleName::parse(&item.role_name)?;
            // As the tenant's own role: its history may be a view that calls its own code.
            let mut conn = self
                .fleet
                .connect_as_tenant(&server, &db, &role)
                .await
                .map_err(|e| format!("cannot connect: {}", error_text(&e)))?;
            let check = tenant_schema::check_history(&mut conn, self.set.as_slice(), Some(run.target_version)).await;
            conn.close().await.ok();
            check.map_err(|e| error_text(&e))
        }
        .await;
        let (status, from, pending, reason) = match inspected {
            Ok(check) => match &check.drift {
                Some(drift) => (
                    RunTenantStatus::Drifted,
                    check.applied_version,
                    Vec::new(),
                    Some(format!("would not be migrated: its history departs from the code: {drift}")),
                ),
                None => (RunTenantStatus::Planned, check.applied_version, check.pending, None),
            },
            Err(error) => (RunTenantStatus::Failed, None, Vec::new(), Some(error)),
        };
        runs::record_plan(
            &self.catalog,
            run.id,
            item.tenant_id,
            status,
            from,
            &pending_json(&pending),
            reason.as_deref(),
        )
        .await?;
        Ok(status)
    }

    /// Brings every active server's template database to the target first, so that tenants
    /// created during the run are born current (dry run: inspects them). Returns the reason to
    /// stop when a template cannot be brought there.
    async fn templates(&self, run: &RunRow) -> Result<Option<String>, sqlx::Error> {
        let mut entries = Vec::new();
        let mut stop = None;
        for server in servers::all(&self.catalog).await? {
            if server.status != "active" {
                continue;
            }
            let entry = match self.fleet.server(server.id).await {
                Ok(handle) => self.template(run, &handle).await?,
                Err(error) => TemplateEntry::failed(&server.name, error.to_string()),
            };
            if stop.is_none()
                && !run.dry_run
                && let Some(reason) = entry.stop_reason()
            {
                stop = Some(format!("the template database on server {}: {reason}", server.name));
            }
            entries.push(entry.to_json(server.id, self.fleet.template()));
        }
        runs::set_templates(&self.catalog, run.id, &Value::Array(entries)).await?;
        Ok(stop)
    }

    async fn template(&self, run: &RunRow, server: &ServerHandle) -> Result<TemplateEntry, sqlx::Error> {
        let template = self.fleet.template();
        let exists = match server.pool().acquire().await {
            Ok(mut conn) => fleet::database_exists(&mut conn, template).await,
            Err(error) => Err(error),
        };
        match exists {
            Ok(true) => {}
            Ok(false) if run.dry_run => {
                return Ok(TemplateEntry::failed(&server.name, "the template database does not exist".into()));
            }
            // Created (and migrated to the latest version) the way start-up does it.
            Ok(false) => {
                return Ok(match self.fleet.ensure_template(server).await {
                    Ok(()) => TemplateEntry {
                        server: server.name.clone(),
                        status: RunTenantStatus::Succeeded,
                        to_version: Some(self.set.latest_version()),
                        ..TemplateEntry::default()
                    },
                    Err(error) => TemplateEntry::failed(&server.name, error.to_string()),
                });
            }
            Err(error) => {
                return Ok(TemplateEntry::failed(&server.name, format!("cannot connect: {}", error_text(&error))));
            }
        }
        // Exclusive, like `Fleet::ensure_template`: provisioning (shared) waits, so no tenant is
        // copied from a template in mid-migration. Released with the transaction.
        let mut lock = self.catalog.begin().await?;
        if !run.dry_run {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(fleet::template_lock_key(server.id))
                .execute(&mut *lock)
                .await?;
        }
        let clock = Instant::now();
        let entry = match PgConnection::connect_with(&server.options_for(template)).await {
            Ok(mut conn) => {
                let entry = self.template_connected(run, server, &mut conn).await;
                // Closed at once: CREATE DATABASE … TEMPLATE refuses while anyone is connected.
                conn.close().await.ok();
                entry
            }
            Err(error) => Ok(TemplateEntry::failed(&server.name, format!("cannot connect: {}", error_text(&error)))),
        };
        if let Ok(entry) = &entry
            && entry.status == RunTenantStatus::Succeeded
            && entry.to_version != entry.from_version
        {
            // The server's spare databases are copies of the old template: retired before the
            // lock is released, so no signup adopts one (see `provision::spares`).
            let retired = crate::catalog::spares::retire_all(&mut *lock, server.id).await?;
            if retired > 0 {
                tracing::info!(server = %server.name, retired, "retired spare databases of the old template");
            }
        }
        lock.commit().await?;
        let mut entry = entry?;
        entry.duration_ms = Some(millis(clock.elapsed()));
        Ok(entry)
    }

    async fn template_connected(
        &self,
        run: &RunRow,
        server: &ServerHandle,
        conn: &mut PgConnection,
    ) -> Result<TemplateEntry, sqlx::Error> {
        let owner = RoleName::parse(SCHEMA_OWNER_ROLE).expect("a valid role name");
        let failed = |error: String| TemplateEntry::failed(&server.name, error);
        let mut tx = match conn.begin().await {
            Ok(tx) => tx,
            Err(error) => return Ok(failed(error_text(&error))),
        };
        let checked = async {
            let prepared = database::prepare_template(&mut tx, &owner, self.timeouts(run)).await?;
            let check = tenant_schema::check_history(&mut tx, self.set.as_slice(), Some(run.target_version)).await?;
            Ok::<_, tenant_schema::SchemaError>((prepared, check))
        }
        .await;
        let (prepared, check) = match checked {
            Ok(checked) => checked,
            Err(error) => {
                tx.rollback().await.ok();
                return Ok(failed(error_text(&error)));
            }
        };
        let mut entry = TemplateEntry {
            server: server.name.clone(),
            from_version: check.applied_version,
            to_version: check.applied_version,
            pending: check.pending.clone(),
            ..TemplateEntry::default()
        };
        if let Some(drift) = &check.drift {
            tx.rollback().await.ok();
            entry.status = RunTenantStatus::Drifted;
            entry.error = Some(drift.to_string());
            return Ok(entry);
        }
        if run.dry_run || check.pending.is_empty() {
            tx.rollback().await.ok();
            entry.status = if run.dry_run { RunTenantStatus::Planned } else { RunTenantStatus::Succeeded };
            return Ok(entry);
        }
        let (applied, mut failure) = database::apply_pending(&mut tx, &self.set, &check.pending).await;
        if failure.is_none()
            && let Err(error) = database::finish(&mut tx, &owner, prepared).await
        {
            failure = Some(error.into());
        }
        let (committed, error) = match failure {
            Some(error) => {
                tx.rollback().await.ok();
                (false, Some(error_text(&error)))
            }
            None => match tx.commit().await {
                Ok(()) => (true, None),
                Err(error) => (false, Some(error_text(&error))),
            },
        };
        let records = database::attempt_records(&check.pending, &applied, committed);
        let target = AttemptTarget {
            run: run.id,
            tenant: None,
            server: server.id,
            database: self.fleet.template().as_str().to_owned(),
            attempt: 1,
        };
        let mut catalog = self.catalog.acquire().await?;
        let mut record = catalog.begin().await?;
        runs::record_attempts(&mut record, &target, &records).await?;
        record.commit().await?;
        if committed {
            entry.to_version = check.pending.last().map(|m| m.version);
            entry.status = RunTenantStatus::Succeeded;
            tracing::info!(server = %server.name, version = ?entry.to_version, "migrated the template database");
        } else {
            entry.status = RunTenantStatus::Failed;
            entry.error = error;
        }
        Ok(entry)
    }
}

/// `[{"version": n, "name": "..."}]`.
pub fn pending_json(pending: &[PendingMigration]) -> Value {
    Value::Array(pending.iter().map(|m| json!({ "version": m.version, "name": m.name })).collect())
}

/// Where a tenant's migration runs: its server, database and role.
#[derive(Clone, Copy)]
struct TenantDatabase<'a> {
    server: &'a ServerHandle,
    db: &'a DbName,
    role: &'a RoleName,
}

/// What a run did to one server's template database (`migration_runs.templates`).
#[derive(Debug, Clone, Default)]
struct TemplateEntry {
    server: String,
    /// `Succeeded`, `Planned`, `Drifted` or `Failed`.
    status: RunTenantStatus,
    from_version: Option<i32>,
    to_version: Option<i32>,
    pending: Vec<PendingMigration>,
    error: Option<String>,
    duration_ms: Option<f64>,
}

impl TemplateEntry {
    fn failed(server: &str, error: String) -> Self {
        Self { server: server.to_owned(), status: RunTenantStatus::Failed, error: Some(error), ..Self::default() }
    }

    fn stop_reason(&self) -> Option<String> {
        match self.status {
            RunTenantStatus::Failed => Some(format!("failed: {}", self.error.as_deref().unwrap_or("unknown error"))),
            RunTenantStatus::Drifted => {
                Some(format!("has drifted: {}", self.error.as_deref().unwrap_or("unknown drift")))
            }
            _ => None,
        }
    }

    fn to_json(&self, server_id: Uuid, database: &DbName) -> Value {
        json!({
            "server_id": server_id,
            "server": self.server,
            "database": database.as_str(),
            "status": self.status.as_str(),
            "from_version": self.from_version,
            "to_version": self.to_version,
            "pending": pending_json(&self.pending),
            "error": self.error,
            "duration_ms": self.duration_ms,
        })
    }
}

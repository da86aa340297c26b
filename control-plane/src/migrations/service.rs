//! What the operator API asks of bulk migrations: create a run (or a dry run), look at runs,
//! pause, resume, cancel, retry. Each change is audited in the same catalog transaction, and
//! every change that (re)starts a run hands it to an engine task.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::engine::Engine;
use super::locks;
use super::recover::{self, RecoveryReport};
use super::set::MigrationSet;
use super::settings::{MAX_CONCURRENCY, MigrationSettings};
use super::status::RunState;
use crate::catalog::audit::{self, Actor};
use crate::catalog::migration_runs::{self as runs, Candidate, NewRun, RunRow, RunTotals, TimingSummary};
use crate::fleet::Fleet;

/// A run as an operator asks for it; `None` means the configured default.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    pub target_version: Option<i32>,
    pub concurrency: Option<u32>,
    pub per_server_concurrency: Option<u32>,
    pub canary: Canary,
    pub failure_policy: Option<FailurePolicy>,
    pub dry_run: bool,
    pub lock_timeout: Option<Duration>,
    pub statement_timeout: Option<Duration>,
    /// Only these tenants (ids or slugs); every active or suspended tenant when `None`.
    pub tenants: Option<Vec<String>>,
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

/// A run with its totals and where its time went.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub run: RunRow,
    pub totals: RunTotals,
    pub timings: TimingSummary,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("{message}")]
    Invalid { field: &'static str, message: String },
    #[error(
        "migration run {id} is {state}: only one run at a time; wait for it to finish, or resume, retry or cancel it"
    )]
    RunOpen { id: Uuid, state: RunState },
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum RunActionError {
    #[error("no migration run with this id")]
    NotFound,
    #[error("the run is {state}: {hint}")]
    WrongState { state: RunState, hint: &'static str },
    #[error("migration run {id} is {state}: only one run at a time; finish or cancel it first")]
    RunOpen { id: Uuid, state: RunState },
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

pub struct Migrations {
    engine: Arc<Engine>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Migrations {
    pub fn new(catalog: PgPool, fleet: Arc<Fleet>, set: MigrationSet, settings: MigrationSettings) -> Self {
        let (stop, stopped) = watch::channel(false);
        Self {
            engine: Arc::new(Engine::new(catalog, fleet, set, settings, stopped)),
            stop,
            tasks: Mutex::new(Vec::new()),
        }
    }

    pub fn set(&self) -> &MigrationSet {
        &self.engine.set
    }

    pub fn settings(&self) -> &MigrationSettings {
        &self.engine.settings
    }

    fn catalog(&self) -> &PgPool {
        &self.engine.catalog
    }

    /// Settles what a dead engine left (see [`recover`]).
    pub async fn recover(&self) -> Result<RecoveryReport, sqlx::Error> {
        recover::recover(self.catalog(), &self.engine.fleet).await
    }

    /// Runs recovery every `interval` until shutdown.
    pub fn recover_periodically(&self, interval: Duration) -> JoinHandle<()> {
        tokio::spawn(recover::run_periodically(
            self.catalog().clone(),
            self.engine.fleet.clone(),
            interval,
            self.stop.subscribe(),
        ))
    }

    /// Shutdown: engines start no more tenants, let those in flight finish (each is bounded by
    /// its statement timeout), mark their runs `interrupted`, and end; this waits for them.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock().expect("not poisoned"));
        for task in tasks {
            let _ = task.await;
        }
    }

    fn spawn(&self, run: Uuid, dry_run: bool, lock: Option<PgConnection>) {
        let task = tokio::spawn(self.engine.clone().execute(run, dry_run, lock));
        let mut tasks = self.tasks.lock().expect("not poisoned");
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    pub async fn summary(&self, id: Uuid) -> Result<Option<RunSummary>, sqlx::Error> {
        let Some(run) = runs::get_run(self.catalog(), id).await? else { return Ok(None) };
        self.summarise(run).await.map(Some)
    }

    async fn summarise(&self, run: RunRow) -> Result<RunSummary, sqlx::Error> {
        let totals = runs::totals(self.catalog(), run.id).await?;
        let timings = runs::timing_summary(self.catalog(), run.id).await?;
        Ok(RunSummary { run, totals, timings })
    }

    /// The newest runs first.
    pub async fn list(&self, before: Option<Uuid>, limit: i64) -> Result<Vec<RunSummary>, sqlx::Error> {
        let mut out = Vec::new();
        for run in runs::list_runs(self.catalog(), before, limit).await? {
            out.push(self.summarise(run).await?);
        }
        Ok(out)
    }

    /// Creates a run and starts it. Refused while another run that changes databases is open.
    pub async fn create(&self, actor: &Actor, req: RunRequest) -> Result<RunSummary, CreateError> {
        let settings = &self.engine.settings;
        let set = &self.engine.set;
        let target = req.target_version.unwrap_or(set.latest_version());
        if !set.contains(target) {
            let versions = set.versions();
            return Err(invalid(
                "target_version",
                format!(
                    "target_version: {target} is not a migration of this build (versions {}–{})",
                    versions.first().unwrap_or(&0),
                    versions.last().unwrap_or(&0)
                ),
            ));
        }
        let concurrency = req.concurrency.unwrap_or(settings.concurrency);
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            return Err(invalid("concurrency", format!("concurrency: must be between 1 and {MAX_CONCURRENCY}")));
        }
        let per_server = req.per_server_concurrency.unwrap_or(settings.per_server_concurrency.min(concurrency));
        if !(1..=MAX_CONCURRENCY).contains(&per_server) {
            return Err(invalid(
                "per_server_concurrency",
                format!("per_server_concurrency: must be between 1 and {MAX_CONCURRENCY}"),
            ));
        }
        let policy = req.failure_policy.unwrap_or(FailurePolicy::Stop { max_failures: 1 });
        let max_failures = match policy {
            FailurePolicy::Stop { max_failures: 0 } => {
                return Err(invalid("max_failures", "max_failures: must be at least 1".into()));
            }
            FailurePolicy::Stop { max_failures } => max_failures,
            FailurePolicy::Continue => 1,
        };
        let lock_timeout = millis_field("lock_timeout_ms", req.lock_timeout.unwrap_or(settings.lock_timeout))?;
        let statement_timeout =
            millis_field("statement_timeout_ms", req.statement_timeout.unwrap_or(settings.statement_timeout))?;

        let all = runs::candidates(self.catalog()).await?;
        let selected = match &req.tenants {
            None => all.clone(),
            Some(wanted) => resolve(&all, wanted, "tenants")?,
        };
        let canaries: Vec<Candidate> = match &req.canary {
            Canary::None => Vec::new(),
            Canary::First(n) if *n as usize > selected.len() => {
                return Err(invalid(
                    "canary_count",
                    format!("canary_count: the run has only {} tenant(s)", selected.len()),
                ));
            }
            Canary::First(n) => selected[..*n as usize].to_vec(),
            Canary::Tenants(wanted) => resolve(&selected, wanted, "canary_tenants")?,
        };
        let canary_ids: HashSet<Uuid> = canaries.iter().map(|c| c.id).collect();
        let ordered: Vec<(Uuid, Uuid, bool)> = canaries
            .iter()
            .map(|c| (c.id, c.server_id, true))
            .chain(selected.iter().filter(|c| !canary_ids.contains(&c.id)).map(|c| (c.id, c.server_id, false)))
            .collect();

        let id = Uuid::now_v7();
        let new = NewRun {
            id,
            dry_run: req.dry_run,
            target_version: target,
            concurrency: concurrency as i32,
            per_server_concurrency: per_server as i32,
            canary_count: canaries.len() as i32,
            failure_policy: policy.as_str(),
            max_failures: max_failures as i32,
            lock_timeout_ms: lock_timeout,
            statement_timeout_ms: statement_timeout,
            created_by: &actor.0,
        };
        // Taken before the run says `running`, and handed to the engine: see `engine`.
        let lock = locks::try_lock(self.catalog(), req.dry_run).await?;
        let mut tx = self.catalog().begin().await?;
        runs::lock_creation(&mut tx).await?;
        if !req.dry_run
            && let Some(open) = runs::open_run(&mut *tx).await?
        {
            return Err(CreateError::RunOpen { id: open.id, state: open.state });
        }
        runs::insert_run(&mut *tx, &new).await?;
        runs::insert_run_tenants(&mut *tx, id, &ordered).await?;
        let details = serde_json::json!({
            "run": id,
            "dry_run": req.dry_run,
            "target_version": target,
            "tenants": ordered.len(),
            "canaries": canaries.len(),
            "failure_policy": policy.as_str(),
        });
        let action = if req.dry_run { "migration.planned" } else { "migration.run_created" };
        audit::record(&mut *tx, actor, action, None, details).await?;
        tx.commit().await?;
        tracing::info!(run = %id, target, dry_run = req.dry_run, tenants = ordered.len(), "migration run created");
        self.spawn(id, req.dry_run, lock);
        let run = runs::get_run(self.catalog(), id).await?.expect("inserted above");
        Ok(self.summarise(run).await?)
    }

    async fn get(&self, id: Uuid) -> Result<RunRow, RunActionError> {
        runs::get_run(self.catalog(), id).await?.ok_or(RunActionError::NotFound)
    }

    async fn audited(&self, actor: &Actor, action: &str, run: &RunRow) -> Result<(), sqlx::Error> {
        audit::record(
            self.catalog(),
            actor,
            action,
            None,
            serde_json::json!({ "run": run.id, "from": run.state.as_str() }),
        )
        .await
    }

    /// Starts no more tenants; those in flight finish.
    pub async fn pause(&self, actor: &Actor, id: Uuid) -> Result<RunSummary, RunActionError> {
        let run = self.get(id).await?;
        match run.state {
            RunState::Paused => {}
            RunState::Running => {
                if !runs::transition(self.catalog(), id, &[RunState::Running], RunState::Paused, None).await? {
                    return Err(self.wrong_state(id, "only a running run can be paused").await);
                }
                self.audited(actor, "migration.paused", &run).await?;
            }
            _ => return Err(wrong(&run, "only a running run can be paused")),
        }
        Ok(self.summarise(self.get(id).await?).await?)
    }

    /// Continues a paused or interrupted run (also: makes sure an engine executes a `running`
    /// run whose engine died before recovery noticed).
    pub async fn resume(&self, actor: &Actor, id: Uuid) -> Result<RunSummary, RunActionError> {
        let run = self.get(id).await?;
        let hint = "only a paused or interrupted run can be resumed (retry a finished one)";
        if !matches!(run.state, RunState::Paused | RunState::Interrupted | RunState::Running) {
            return Err(wrong(&run, hint));
        }
        let lock = locks::try_lock(self.catalog(), run.dry_run).await?;
        if !runs::transition(
            self.catalog(),
            id,
            &[RunState::Paused, RunState::Interrupted, RunState::Running],
            RunState::Running,
            None,
        )
        .await?
        {
            return Err(self.wrong_state(id, hint).await);
        }
        if run.state != RunState::Running {
            self.audited(actor, "migration.resumed", &run).await?;
        }
        self.spawn(id, run.dry_run, lock);
        Ok(self.summarise(self.get(id).await?).await?)
    }

    /// Starts no more tenants; those in flight finish; then the run is `cancelled`.
    pub async fn cancel(&self, actor: &Actor, id: Uuid) -> Result<RunSummary, RunActionError> {
        let run = self.get(id).await?;
        match run.state {
            RunState::Cancelled | RunState::Cancelling => {}
            RunState::Running => {
                if !runs::transition(self.catalog(), id, &[RunState::Running], RunState::Cancelling, None).await? {
                    return Err(self.wrong_state(id, "it is no longer running").await);
                }
                self.audited(actor, "migration.cancelled", &run).await?;
            }
            RunState::Paused | RunState::Interrupted => {
                if !runs::transition(
                    self.catalog(),
                    id,
                    &[RunState::Paused, RunState::Interrupted],
                    RunState::Cancelled,
                    None,
                )
                .await?
                {
                    return Err(self.wrong_state(id, "it changed meanwhile").await);
                }
                self.audited(actor, "migration.cancelled", &run).await?;
            }
            _ => return Err(wrong(&run, "a finished run cannot be cancelled")),
        }
        Ok(self.summarise(self.get(id).await?).await?)
    }

    /// Puts the failed tenants back in the queue and runs again (pending tenants too).
    pub async fn retry(&self, actor: &Actor, id: Uuid) -> Result<RunSummary, RunActionError> {
        let run = self.get(id).await?;
        let hint = "wait for it to finish (or pause it) before retrying";
        if matches!(run.state, RunState::Running | RunState::Cancelling) {
            return Err(wrong(&run, hint));
        }
        let totals = runs::totals(self.catalog(), id).await?;
        if totals.failed == 0 && totals.pending == 0 {
            return Err(wrong(&run, "no tenant failed or is left to migrate"));
        }
        let lock = locks::try_lock(self.catalog(), run.dry_run).await?;
        let mut tx = self.catalog().begin().await?;
        let reset = runs::reset_failed(&mut *tx, id).await?;
        let from =
            [RunState::Completed, RunState::Stopped, RunState::Cancelled, RunState::Paused, RunState::Interrupted];
        match runs::transition(&mut *tx, id, &from, RunState::Running, None).await {
            Ok(true) => {}
            Ok(false) => return Err(self.wrong_state(id, hint).await),
            Err(e) if crate::catalog::unique_violation(&e).is_some() => {
                drop(tx);
                return Err(match runs::open_run(self.catalog()).await? {
                    Some(open) => RunActionError::RunOpen { id: open.id, state: open.state },
                    None => RunActionError::Sql(e),
                });
            }
            Err(e) => return Err(e.into()),
        }
        let details = serde_json::json!({ "run": id, "from": run.state.as_str(), "failed_tenants_requeued": reset });
        audit::record(&mut *tx, actor, "migration.retried", None, details).await?;
        tx.commit().await?;
        self.spawn(id, run.dry_run, lock);
        Ok(self.summarise(self.get(id).await?).await?)
    }

    async fn wrong_state(&self, id: Uuid, hint: &'static str) -> RunActionError {
        match self.get(id).await {
            Ok(run) => wrong(&run, hint),
            Err(e) => e,
        }
    }
}

fn wrong(run: &RunRow, hint: &'static str) -> RunActionError {
    RunActionError::WrongState { state: run.state, hint }
}

fn invalid(field: &'static str, message: String) -> CreateError {
    CreateError::Invalid { field, message }
}

fn millis_field(field: &'static str, value: Duration) -> Result<i32, CreateError> {
    match i32::try_from(value.as_millis()) {
        Ok(ms) if ms >= 1 => Ok(ms),
        _ => Err(invalid(field, format!("{field}: must be between 1 and {}", i32::MAX))),
    }
}

/// Looks tenants up by id or slug among `among`, keeping the caller's order, without repeats.
fn resolve(among: &[Candidate], wanted: &[String], field: &'static str) -> Result<Vec<Candidate>, CreateError> {
    let mut out: Vec<Candidate> = Vec::with_capacity(wanted.len());
    for raw in wanted {
        let key = raw.trim();
        let by_id = Uuid::parse_str(key).ok();
        let found = among
            .iter()
            .find(|c| Some(c.id) == by_id || c.slug == key)
            .ok_or_else(|| invalid(field, format!("{field}: no active or suspended tenant {key:?} in this run")))?;
        if !out.iter().any(|c| c.id == found.id) {
            out.push(found.clone());
        }
    }
    Ok(out)
}

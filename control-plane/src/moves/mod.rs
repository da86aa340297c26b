//! Moves of a tenant's database to another server, with writes fenced only for the final
//! catch-up.
//!
//! **Steps** (each recorded in the `moves` row): `recorded` (the row names the target
//! database before it exists) → `schema_copied` (role and empty database on the target, the
//! schema restored as the tenant's role, checked: see [`replication`]) → `subscribed`
//! (publication and slot on the source, subscription on the target: rows copy while the tenant
//! keeps writing) → `synced` (every table copied and streaming) → `fenced` (maintenance on:
//! routers answer 503 `maintenance` with `Retry-After`; in-flight transactions drain, then the
//! source is closed to the tenant's role and its sessions ended, so nothing more can commit
//! there) → `caught_up` (the subscriber confirmed the source's WAL position; sequences copied)
//! → `switched` (one catalog transaction points the route at the target and unfences; routers
//! follow the catalog's `NOTIFY`) → `done` (subscription, slot and publication dropped; the
//! source database kept, closed to the tenant, until `drop_source` or the retention period).
//!
//! **Never two writable copies.** The catalog route is the only truth: routers connect only
//! where it points. Before `switched` the source is the tenant's database and the target a
//! copy no router knows; the source is closed before the route moves, so once it names the
//! target nothing can have committed on the source that the target lacks.
//!
//! **Crash safety.** While a move runs, its process holds a session advisory lock on the
//! move's key. [`Moves::recover`] settles every unsettled move whose lock is free: before
//! `switched` it is undone (target dropped, replication removed, source reopened, tenant
//! unfenced to what it was); from `switched` on it is finished.

pub mod replication;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_types::moves::{MoveRequest, MoveStep as MoveStepView, MoveView};
use sqlx::{Connection, PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::backups::{BackupError, Backups, tools};
use crate::catalog::audit::{self, Actor};
use crate::catalog::moves::{self as rows, MoveRow, NewMove};
use crate::catalog::servers::{self, ServerRow};
use crate::catalog::tenants::{self, TenantRow};
use crate::domain::{DbName, RoleName, TenantStatus};
use crate::fleet::{Fleet, FleetError, ServerHandle};
use replication::ReplicationError;

/// Timeouts and retention of moves.
#[derive(Debug, Clone)]
pub struct MoveSettings {
    /// How long a done move's source database is kept (`NEXACORE_MOVE_KEEP_SOURCE_HOURS`, 168).
    pub keep_source: Duration,
    /// Longest initial copy before the move gives up.
    pub copy_timeout: Duration,
    /// Longest final catch-up (fenced) before the move is undone.
    pub catch_up_timeout: Duration,
    /// How long in-flight transactions on the source get to finish once fenced.
    pub drain: Duration,
    /// Test hook (feature `fault-injection`): abort the process after this step.
    pub crash_after: Option<MoveStep>,
}

impl Default for MoveSettings {
    fn default() -> Self {
        Self {
            keep_source: Duration::from_secs(7 * 24 * 3600),
            copy_timeout: Duration::from_secs(3600),
            catch_up_timeout: Duration::from_secs(10),
            drain: Duration::from_secs(2),
            crash_after: None,
        }
    }
}

/// The steps a move records, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveStep {
    Recorded,
    SchemaCopied,
    Subscribed,
    Synced,
    Fenced,
    CaughtUp,
    Switched,
}

impl MoveStep {
    pub const ALL: [MoveStep; 7] = [
        Self::Recorded,
        Self::SchemaCopied,
        Self::Subscribed,
        Self::Synced,
        Self::Fenced,
        Self::CaughtUp,
        Self::Switched,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Recorded => "recorded",
            Self::SchemaCopied => "schema_copied",
            Self::Subscribed => "subscribed",
            Self::Synced => "synced",
            Self::Fenced => "fenced",
            Self::CaughtUp => "caught_up",
            Self::Switched => "switched",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("tenant: no tenant with this id or slug")]
    NotFound,
    #[error("to: no database server named {0:?}")]
    UnknownServer(String),
    #[error("to: the tenant is already on server {0}")]
    SameServer(String),
    #[error("to: server {0} is {1} and takes no tenants")]
    NotActive(String, String),
    #[error("to: no other active server has room for the tenant")]
    NoTarget,
    #[error("tenant: a tenant that is {0} cannot be moved")]
    WrongState(String),
    #[error("a move of this tenant is already running")]
    Busy,
    #[error("server {0} runs with wal_level {1}; moving a tenant off it needs wal_level = logical")]
    NotLogical(String, String),
    #[error("the tenant's catalog row names an invalid database or role")]
    Corrupt,
    #[error(transparent)]
    Replication(#[from] ReplicationError),
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

impl From<tools::ToolError> for MoveError {
    fn from(e: tools::ToolError) -> Self {
        Self::Backup(e.into())
    }
}

pub struct Moves {
    catalog: PgPool,
    fleet: Arc<Fleet>,
    /// For the Postgres tools and the directory the schema dump passes through.
    backups: Arc<Backups>,
    settings: MoveSettings,
}

/// What one move works with, resolved from its row.
struct Plan {
    row: MoveRow,
    source: ServerHandle,
    target: ServerHandle,
    source_db: DbName,
    target_db: DbName,
    role: RoleName,
    /// The name of the publication, the slot and the subscription.
    name: DbName,
}

impl Moves {
    pub fn new(catalog: PgPool, fleet: Arc<Fleet>, backups: Arc<Backups>, settings: MoveSettings) -> Self {
        Self { catalog, fleet, backups, settings }
    }

    /// Checks and records a move of `tenant` (id or slug), then runs it in the background;
    /// follow it with [`Moves::get`]. Refusals change nothing.
    pub async fn start(self: &Arc<Self>, tenant: &str, req: &MoveRequest, actor: &Actor) -> Result<MoveRow, MoveError> {
        let tenant = self.tenant(tenant).await?;
        if !matches!(tenant.status(), TenantStatus::Active | TenantStatus::Suspended) {
            return Err(MoveError::WrongState(tenant.status.clone()));
        }
        tenant.database().map_err(|_| MoveError::Corrupt)?;
        let target = self.target(&tenant, req.to.as_deref()).await?;
        let source = self.fleet.server(tenant.server_id).await?;
        let wal_level: String =
            sqlx::query_scalar("SELECT pg_catalog.current_setting('wal_level')").fetch_one(source.pool()).await?;
        if wal_level != "logical" {
            return Err(MoveError::NotLogical(source.name, wal_level));
        }
        self.backups.tools().await?;
        let id = Uuid::now_v7();
        let target_db = target_database(&tenant, id);
        let mut tx = self.catalog.begin().await?;
        let new = NewMove {
            id,
            tenant_id: tenant.id,
            target_server: target.id,
            target_database: target_db.as_str(),
            drop_source: req.drop_source,
            actor: &actor.0,
        };
        match rows::insert(&mut *tx, &new).await {
            Ok(true) => {}
            Ok(false) => return Err(MoveError::WrongState(tenant.status.clone())),
            Err(e) if crate::catalog::unique_violation(&e).is_some() => return Err(MoveError::Busy),
            Err(e) => return Err(e.into()),
        }
        let details = serde_json::json!({ "move": id, "to": target.name, "drop_source": req.drop_source });
        audit::record(&mut *tx, actor, "tenant.move", Some(tenant.id), details).await?;
        tx.commit().await?;
        self.crash_point(MoveStep::Recorded, id);
        let row = rows::get(&self.catalog, id).await?.ok_or(MoveError::NotFound)?;
        let this = self.clone();
        // Spawned: the request ends long before a large copy does.
        tokio::spawn(async move { this.run(id).await });
        Ok(row)
    }

    /// The tenant named by an id or a slug (live tenants only for slugs).
    pub async fn tenant(&self, id_or_slug: &str) -> Result<TenantRow, MoveError> {
        let row = match Uuid::parse_str(id_or_slug) {
            Ok(id) => tenants::get(&self.catalog, id).await?,
            Err(_) => tenants::get_live_by_slug(&self.catalog, id_or_slug).await?,
        };
        row.ok_or(MoveError::NotFound)
    }

    /// The server named by `to` (name or id), or the least-loaded other active one.
    async fn target(&self, tenant: &TenantRow, to: Option<&str>) -> Result<ServerRow, MoveError> {
        let all = servers::all(&self.catalog).await?;
        let Some(to) = to else {
            let id = servers::least_loaded_except(&self.catalog, tenant.server_id).await?.ok_or(MoveError::NoTarget)?;
            return all.into_iter().find(|s| s.id == id).ok_or(MoveError::NoTarget);
        };
        let by_id = Uuid::parse_str(to).ok();
        let server = all
            .into_iter()
            .find(|s| s.name == to || Some(s.id) == by_id)
            .ok_or_else(|| MoveError::UnknownServer(to.into()))?;
        if server.id == tenant.server_id {
            return Err(MoveError::SameServer(server.name));
        }
        if server.status != "active" {
            return Err(MoveError::NotActive(server.name, server.status));
        }
        Ok(server)
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<MoveRow>, MoveError> {
        Ok(rows::get(&self.catalog, id).await?)
    }

    pub async fn for_tenant(&self, tenant: Uuid, limit: i64) -> Result<Vec<MoveRow>, MoveError> {
        Ok(rows::for_tenant(&self.catalog, tenant, limit).await?)
    }

    /// The view of a move, with server names.
    pub async fn view(&self, row: &MoveRow) -> Result<MoveView, MoveError> {
        let all = servers::all(&self.catalog).await?;
        let name = |id: Uuid| all.iter().find(|s| s.id == id).map(|s| s.name.clone()).unwrap_or_else(|| id.to_string());
        let steps = serde_json::from_value::<Vec<StepRecord>>(row.steps.clone()).unwrap_or_default();
        Ok(MoveView {
            id: row.id,
            tenant_id: row.tenant_id,
            source_server: name(row.source_server),
            target_server: name(row.target_server),
            state: row.state.clone(),
            steps: steps.into_iter().filter_map(StepRecord::view).collect(),
            drop_source: row.drop_source,
            source_dropped: row.source_dropped_at.is_some(),
            fence_ms: row.fence_ms,
            error: row.error.clone(),
            started_at: row.started_at,
            finished_at: row.finished_at,
        })
    }

    async fn run(&self, id: Uuid) {
        let Some(lock) = self.hold_lock(id).await else { return };
        let outcome = async {
            let row = rows::get(&self.catalog, id).await?.ok_or(MoveError::NotFound)?;
            let plan = self.plan(row).await?;
            match self.copy_and_switch(&plan).await {
                Ok(()) => self.finish_after_switch(&plan).await,
                Err(error) => {
                    tracing::error!(%id, tenant = %plan.row.tenant_id, %error, "a move failed; undoing it");
                    let state = rows::get(&self.catalog, id).await?.map(|r| r.state).unwrap_or_default();
                    // A failure after the switch committed is finished, not undone.
                    if state == "switched" {
                        return self.finish_after_switch(&plan).await;
                    }
                    self.undo(&plan, &error.to_string()).await
                }
            }
        }
        .await;
        if let Err(error) = outcome {
            tracing::error!(%id, %error, "a move could not be settled; recovery will retry");
        }
        lock.close().await.ok();
    }

    async fn hold_lock(&self, id: Uuid) -> Option<PgConnection> {
        let mut conn = PgConnection::connect_with(&self.catalog.connect_options()).await.ok()?;
        let locked: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(lock_key(id)).fetch_one(&mut conn).await.ok()?;
        locked.then_some(conn)
    }

    async fn plan(&self, row: MoveRow) -> Result<Plan, MoveError> {
        let tenant = tenants::get(&self.catalog, row.tenant_id).await?.ok_or(MoveError::NotFound)?;
        let role = RoleName::parse(&tenant.role_name).map_err(|_| MoveError::Corrupt)?;
        let source_db = DbName::parse(&row.source_database).map_err(|_| MoveError::Corrupt)?;
        let target_db = DbName::parse(&row.target_database).map_err(|_| MoveError::Corrupt)?;
        let name = DbName::parse(&format!("nexacore_move_{}", row.id.simple())).expect("a valid identifier");
        Ok(Plan {
            source: self.fleet.server(row.source_server).await?,
            target: self.fleet.server(row.target_server).await?,
            row,
            source_db,
            target_db,
            role,
            name,
        })
    }

    fn schema_file(&self, id: Uuid) -> PathBuf {
        self.backups.dir().join("moves").join(format!("{id}.schema"))
    }

    async fn step(&self, plan: &Plan, step: MoveStep, state: Option<&str>) -> Result<(), MoveError> {
        rows::step(&self.catalog, plan.row.id, step.as_str(), state).await?;
        self.crash_point(step, plan.row.id);
        Ok(())
    }

    /// Everything up to and including the switch.
    async fn copy_and_switch(&self, plan: &Plan) -> Result<(), MoveError> {
        let (fleet, role) = (&self.fleet, &plan.role);
        let tools = self.backups.tools().await?.clone();
        replication::ensure_role(fleet, &plan.target, role).await?;
        fleet.create_empty_database(&plan.target, &plan.target_db, role).await?;
        let file = self.schema_file(plan.row.id);
        tokio::fs::create_dir_all(file.parent().expect("moves/")).await.map_err(BackupError::from)?;
        let source_login = fleet.tenant_login(&plan.source, &plan.source_db, role);
        tools::pg_dump_schema(&tools, &source_login, &file).await?;
        let restored = tools::pg_restore(&tools, &fleet.tenant_login(&plan.target, &plan.target_db, role), &file).await;
        let _ = tokio::fs::remove_file(&file).await;
        restored?;
        replication::check_target_schema(&plan.target, &plan.target_db, fleet.template()).await?;
        let mut source = fleet.connect_as_tenant(&plan.source, &plan.source_db, role).await?;
        let version = replication::schema_version(&mut source).await?;
        self.step(plan, MoveStep::SchemaCopied, None).await?;

        replication::set_replication(&plan.source, role, true).await?;
        replication::create_publication(&mut source, &plan.name).await?;
        replication::create_slot(&mut source, &plan.name).await?;
        replication::create_subscription(&plan.target, &plan.target_db, &plan.name, &source_login).await?;
        self.step(plan, MoveStep::Subscribed, None).await?;
        replication::wait_synced(&plan.target, &plan.target_db, &plan.name, self.settings.copy_timeout).await?;
        self.step(plan, MoveStep::Synced, None).await?;

        // The fence: from here until the switch, the tenant's writes are refused.
        let fenced_at = Instant::now();
        let mut tx = self.catalog.begin().await?;
        tenants::set_maintenance(
            &mut *tx,
            plan.row.tenant_id,
            true,
            Some("Moving this company's data to another server"),
        )
        .await?;
        rows::step(&mut *tx, plan.row.id, MoveStep::Fenced.as_str(), Some("fenced")).await?;
        tx.commit().await?;
        self.crash_point(MoveStep::Fenced, plan.row.id);
        let own_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut source).await?;
        replication::close_source(&plan.source, &plan.source_db, role, own_pid, self.settings.drain).await?;
        let closed_ms = fenced_at.elapsed().as_millis();
        let lsn = replication::current_lsn(&plan.source).await?;
        if replication::schema_version(&mut source).await? != version {
            return Err(ReplicationError::Refused(
                "the tenant's schema changed during the move (a migration ran); move it again".into(),
            )
            .into());
        }
        replication::wait_caught_up(&plan.source, &plan.name, &lsn, self.settings.catch_up_timeout).await?;
        let caught_up_ms = fenced_at.elapsed().as_millis();
        let mut target = fleet.connect_as_tenant(&plan.target, &plan.target_db, role).await?;
        let copied = match replication::wait_same_outbox(&mut source, &mut target, self.settings.catch_up_timeout).await
        {
            Ok(()) => replication::copy_sequences(&mut source, &mut target).await,
            Err(e) => Err(e),
        };
        target.close().await.ok();
        source.close().await.ok();
        copied?;
        self.step(plan, MoveStep::CaughtUp, None).await?;

        // The switch: the route names the target; unfenced to what the tenant had before.
        let fence_ms = i32::try_from(fenced_at.elapsed().as_millis()).unwrap_or(i32::MAX);
        let mut tx = self.catalog.begin().await?;
        let switched = sqlx::query(
            "UPDATE tenants t SET server_id = m.target_server, database_name = m.target_database,
                 maintenance_mode = m.was_in_maintenance, maintenance_message = m.maintenance_message, updated_at = now()
             FROM moves m WHERE m.id = $1 AND t.id = m.tenant_id AND m.state = 'fenced'",
        )
        .bind(plan.row.id)
        .execute(&mut *tx)
        .await?;
        if switched.rows_affected() != 1 {
            return Err(MoveError::WrongState("no longer fenced by this move".into()));
        }
        rows::step(&mut *tx, plan.row.id, MoveStep::Switched.as_str(), Some("switched")).await?;
        rows::set_fence_ms(&mut *tx, plan.row.id, fence_ms).await?;
        let details = serde_json::json!({ "move": plan.row.id, "to": plan.target.name, "fence_ms": fence_ms });
        audit::record(&mut *tx, &Actor(plan.row.actor.clone()), "tenant.moved", Some(plan.row.tenant_id), details)
            .await?;
        tx.commit().await?;
        tracing::info!(move_id = %plan.row.id, tenant = %plan.row.tenant_id, fence_ms, closed_ms, caught_up_ms, "tenant moved");
        self.crash_point(MoveStep::Switched, plan.row.id);
        Ok(())
    }

    /// After the switch: replication removed, the source kept closed (or dropped), `done`.
    async fn finish_after_switch(&self, plan: &Plan) -> Result<(), MoveError> {
        replication::drop_subscription(&plan.target, &plan.target_db, &plan.name).await?;
        replication::drop_source_replication(&plan.source, &plan.source_db, &plan.name).await?;
        replication::set_replication(&plan.source, &plan.role, false).await?;
        if plan.row.drop_source {
            self.drop_source(plan).await?;
        }
        rows::finish(&self.catalog, plan.row.id, "done", None).await?;
        Ok(())
    }

    async fn drop_source(&self, plan: &Plan) -> Result<(), MoveError> {
        // Never the database the route names (whatever happened to the tenant since).
        let routed: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1 AND server_id = $2 AND database_name = $3)",
        )
        .bind(plan.row.tenant_id)
        .bind(plan.row.source_server)
        .bind(&plan.row.source_database)
        .fetch_one(&self.catalog)
        .await?;
        if routed {
            return Err(MoveError::WrongState("the source is the tenant's current database".into()));
        }
        self.fleet.drop_database(&plan.source, &plan.source_db).await?;
        replication::drop_role_if_unused(&plan.source, &plan.role).await?;
        rows::source_dropped(&self.catalog, plan.row.id).await?;
        Ok(())
    }

    /// Before the switch: everything the move made is removed, the source reopened and the
    /// tenant unfenced to what it was; the move is `failed` with `error`.
    async fn undo(&self, plan: &Plan, error: &str) -> Result<(), MoveError> {
        replication::drop_subscription(&plan.target, &plan.target_db, &plan.name).await?;
        replication::drop_source_replication(&plan.source, &plan.source_db, &plan.name).await?;
        replication::set_replication(&plan.source, &plan.role, false).await?;
        self.fleet.drop_database(&plan.target, &plan.target_db).await?;
        replication::drop_role_if_unused(&plan.target, &plan.role).await?;
        let _ = tokio::fs::remove_file(self.schema_file(plan.row.id)).await;
        replication::reopen_source(&plan.source, &plan.source_db, &plan.role).await?;
        let mut tx = self.catalog.begin().await?;
        sqlx::query(
            "UPDATE tenants t SET maintenance_mode = m.was_in_maintenance, maintenance_message = m.maintenance_message,
                 updated_at = now()
             FROM moves m WHERE m.id = $1 AND t.id = m.tenant_id AND m.state = 'fenced'",
        )
        .bind(plan.row.id)
        .execute(&mut *tx)
        .await?;
        rows::finish(&mut *tx, plan.row.id, "failed", Some(error)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Settles moves whose process died (see the module docs) and drops kept sources past the
    /// retention period; returns how many moves were settled.
    pub async fn recover(&self) -> Result<usize, MoveError> {
        let mut settled = 0;
        for row in rows::unsettled(&self.catalog).await? {
            let id = row.id;
            let Some(lock) = self.hold_lock(id).await else { continue };
            // Read again under the lock: the owner may have settled it just before dying.
            let outcome = async {
                let Some(row) = rows::get(&self.catalog, id).await? else { return Ok(false) };
                let plan = self.plan(row).await?;
                match plan.row.state.as_str() {
                    "copying" | "fenced" => {
                        self.undo(&plan, "interrupted: the control plane stopped during the move").await?
                    }
                    "switched" => self.finish_after_switch(&plan).await?,
                    _ => return Ok(false),
                }
                Ok::<bool, MoveError>(true)
            }
            .await;
            lock.close().await.ok();
            match outcome {
                Ok(true) => settled += 1,
                Ok(false) => {}
                Err(error) => tracing::error!(%id, %error, "cannot settle an interrupted move yet"),
            }
        }
        let cutoff = OffsetDateTime::now_utc() - self.settings.keep_source;
        for row in rows::sources_kept_before(&self.catalog, cutoff).await? {
            let id = row.id;
            let dropped = async { self.drop_source(&self.plan(row).await?).await }.await;
            if let Err(error) = dropped {
                tracing::warn!(%id, %error, "cannot drop a moved tenant's old database yet");
            }
        }
        Ok(settled)
    }

    /// [`Moves::recover`] every `interval` until `stop` turns true.
    pub async fn recover_periodically(
        self: Arc<Self>,
        interval: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {
                    if let Err(error) = self.recover().await {
                        tracing::warn!(%error, "move recovery pass failed");
                    }
                }
                _ = stop.changed() => break,
            }
        }
    }

    fn crash_point(&self, step: MoveStep, id: Uuid) {
        if self.settings.crash_after == Some(step) {
            tracing::error!(move_id = %id, step = step.as_str(), "NEXACORE_FAULT_MOVE_CRASH_AFTER: aborting the process");
            std::process::abort();
        }
    }
}

/// A fresh database name on the target, unique per move (a tenant can move back to a server
/// that still keeps its older copy).
fn target_database(tenant: &TenantRow, id: Uuid) -> DbName {
    let id = id.simple().to_string();
    DbName::parse(&format!("t_{}_m{}", tenant.id.simple(), &id[20..])).expect("a valid database name")
}

/// The advisory-lock key of one move (catalog-wide; the constant keeps it apart from other locks).
fn lock_key(id: Uuid) -> i64 {
    let bytes = id.as_bytes();
    i64::from_be_bytes(bytes[8..16].try_into().expect("16-byte uuid")) ^ 0x6d6f_7665_0000_0001
}

#[derive(serde::Deserialize)]
struct StepRecord {
    step: String,
    at: String,
}

impl StepRecord {
    fn view(self) -> Option<MoveStepView> {
        // `now()` as jsonb text: `2026-12-04T19:20:00.123456+00:00`.
        let at = OffsetDateTime::parse(&self.at, &time::format_description::well_known::Rfc3339).ok()?;
        Some(MoveStepView { step: self.step, at })
    }
}

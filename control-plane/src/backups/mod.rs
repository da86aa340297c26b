//! Backups of tenant databases, taken by the control plane.
//!
//! **Where the dump runs, and why here.** The control plane runs `pg_dump` and keeps the files
//! under its backup directory (`NEXACORE_BACKUP_DIR`); `ops` asks for a backup over the
//! operator API and downloads the finished file when it wants a local copy. The control plane
//! already holds what a dump needs (the master key that derives tenant role passwords, every
//! server's address), scheduled backups must run with no operator present, and the catalog row
//! and the file are written by the same process, so `ops` never needs a database credential.
//!
//! **As the tenant's own role.** The dump logs in as the tenant's role (see [`tools`]): nothing
//! a tenant planted runs as a superuser.
//!
//! **Consistency.** A transaction as the tenant (`REPEATABLE READ`) exports its snapshot, reads
//! the schema version and the outbox's last `seq` in it, and `pg_dump --snapshot` dumps exactly
//! that snapshot: the manifest describes the dump, not a moment near it.
//!
//! **Crash safety.** The catalog row is written (`running`) before anything else; while the
//! dump runs, its process holds a session advisory lock on the row's key on a connection of
//! its own. [`Backups::recover`] settles every `running` row whose lock it can take (its
//! process died) as `failed` and removes its partial file. The dump is written as
//! `<id>.dump.partial` and renamed only once complete, so a file named `<id>.dump` is whole.
//!
//! Layout: `<dir>/<tenant id>/<backup id>.dump` and `<backup id>.json` (the manifest), so a
//! backup directory describes itself even without the catalog.

pub mod restore;
pub mod schedule;
pub mod tools;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use api_types::backups::{BackupKind, BackupManifest, BackupStatus, BackupView, MANIFEST_FORMAT, ToolVersions};
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, PgPool};
use time::OffsetDateTime;
use tokio::io::AsyncReadExt;
use tokio::sync::{OnceCell, Semaphore};
use uuid::Uuid;

use crate::catalog::audit::{self, Actor};
use crate::catalog::backups::{self as rows, BackupRow};
use crate::catalog::tenants::{self, TenantRow};
use crate::domain::TenantStatus;
use crate::fleet::{Fleet, FleetError};

/// Where backups go and how many dumps run at once in this process.
#[derive(Debug, Clone)]
pub struct BackupSettings {
    /// `NEXACORE_BACKUP_DIR` (default `./.nexacore/backups`).
    pub dir: PathBuf,
    /// Dumps running at once in this control plane (each holds one connection to its server).
    pub concurrency: usize,
    /// `NEXACORE_BACKUP_SCHEDULE`: when scheduled backups run (`None`: never).
    pub schedule: Option<schedule::BackupSchedule>,
    /// `NEXACORE_BACKUP_KEEP`: scheduled backups kept per tenant, the newest (at least 1).
    pub keep: u32,
    /// `NEXACORE_BACKUP_PER_SERVER`: scheduled dumps running at once on one database server.
    pub per_server: usize,
    /// `NEXACORE_RESTORE_KEEP_OLD_HOURS`: how long an in-place restore keeps the database it
    /// replaced (zero: dropped at once).
    pub keep_old_database: std::time::Duration,
}

impl Default for BackupSettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::from(".nexacore/backups"),
            concurrency: 8,
            schedule: None,
            keep: 7,
            per_server: 2,
            keep_old_database: std::time::Duration::from_secs(24 * 3600),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no tenant with this id or slug")]
    NotFound,
    #[error("a tenant that is {0} cannot be backed up")]
    WrongState(&'static str),
    #[error("the tenant's catalog row names an invalid database or role")]
    Corrupt,
    #[error(transparent)]
    Tool(#[from] tools::ToolError),
    #[error("backup files: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

pub struct Backups {
    catalog: PgPool,
    fleet: Arc<Fleet>,
    settings: BackupSettings,
    /// Found on first use: a control plane that never backs up needs no `pg_dump`.
    tools: OnceCell<local_postgres::DumpTools>,
    running: Arc<Semaphore>,
}

impl Backups {
    pub fn new(catalog: PgPool, fleet: Arc<Fleet>, settings: BackupSettings) -> Self {
        let running = Arc::new(Semaphore::new(settings.concurrency.max(1)));
        Self { catalog, fleet, settings, tools: OnceCell::new(), running }
    }

    pub fn settings(&self) -> &BackupSettings {
        &self.settings
    }

    pub(crate) async fn tools(&self) -> Result<&local_postgres::DumpTools, BackupError> {
        self.tools
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(local_postgres::find_dump_tools)
                    .await
                    .map_err(|e| BackupError::Io(std::io::Error::other(e)))?
                    .map_err(|e| BackupError::Tool(e.into()))
            })
            .await
    }

    /// Records a backup of `tenant` as `running` (audited) and starts it in the background;
    /// follow it with [`Backups::get`].
    pub async fn start(
        self: &Arc<Self>,
        tenant: &TenantRow,
        kind: BackupKind,
        actor: &Actor,
    ) -> Result<BackupRow, BackupError> {
        let id = self.record(tenant, kind, actor).await?;
        let row = rows::get(&self.catalog, id).await?.ok_or(BackupError::NotFound)?;
        let this = self.clone();
        let tenant = tenant.clone();
        // Spawned: the caller's request ends long before a large dump does.
        tokio::spawn(async move { this.run(id, tenant).await });
        Ok(row)
    }

    async fn record(&self, tenant: &TenantRow, kind: BackupKind, actor: &Actor) -> Result<Uuid, BackupError> {
        if !matches!(tenant.status(), TenantStatus::Active | TenantStatus::Suspended) {
            return Err(BackupError::WrongState(tenant.status().as_str()));
        }
        tenant.database().map_err(|_| BackupError::Corrupt)?;
        // Found now, so a machine without the tools is told at once rather than by a failed row.
        self.tools().await?;
        let id = Uuid::now_v7();
        let file = format!("{}/{id}.dump", tenant.id);
        let mut tx = self.catalog.begin().await?;
        rows::insert_running(&mut *tx, id, tenant.id, kind.as_str(), &actor.0, &file).await?;
        let details = serde_json::json!({ "backup": id, "kind": kind.as_str() });
        audit::record(&mut *tx, actor, "tenant.backup", Some(tenant.id), details).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<BackupRow>, BackupError> {
        Ok(rows::get(&self.catalog, id).await?)
    }

    /// The backup directory (moves pass their schema dumps through `moves/` in it).
    pub(crate) fn dir(&self) -> &Path {
        &self.settings.dir
    }

    /// The absolute path of a backup's dump file.
    pub fn path_of(&self, row: &BackupRow) -> PathBuf {
        self.settings.dir.join(&row.file)
    }

    async fn run(&self, id: Uuid, tenant: TenantRow) {
        let _permit = self.running.clone().acquire_owned().await;
        // The lock that marks this row as owned by a live process (see the module docs).
        let lock = match self.hold_lock(id).await {
            Ok(Some(conn)) => conn,
            Ok(None) => return,
            Err(error) => {
                tracing::error!(backup = %id, %error, "cannot lock a new backup");
                let _ = rows::finish_failed(&self.catalog, id, "the catalog could not be reached").await;
                return;
            }
        };
        let partial = self.settings.dir.join(format!("{}/{id}.dump.partial", tenant.id));
        let outcome = self.dump(id, &tenant, &partial).await;
        let recorded = match &outcome {
            Ok(manifest) => {
                let value = serde_json::to_value(manifest).expect("a manifest serialises");
                rows::finish_done(&self.catalog, id, &value).await
            }
            Err(error) => {
                let _ = tokio::fs::remove_file(&partial).await;
                tracing::error!(backup = %id, tenant = %tenant.id, %error, "a backup failed");
                rows::finish_failed(&self.catalog, id, &error.to_string()).await
            }
        };
        if let Err(error) = recorded {
            tracing::error!(backup = %id, %error, "cannot record a backup's outcome; recovery will settle it");
        }
        lock.close().await.ok();
    }

    async fn hold_lock(&self, id: Uuid) -> Result<Option<PgConnection>, sqlx::Error> {
        let mut conn = PgConnection::connect_with(&self.catalog.connect_options()).await?;
        let locked: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(lock_key(id)).fetch_one(&mut conn).await?;
        Ok(locked.then_some(conn))
    }

    /// The dump itself: snapshot as the tenant, `pg_dump` of it, checksum, rename, manifest.
    async fn dump(&self, id: Uuid, tenant: &TenantRow, partial: &Path) -> Result<BackupManifest, BackupError> {
        let tools = self.tools().await?.clone();
        let (db, role) = tenant.database().map_err(|_| BackupError::Corrupt)?;
        let server = self.fleet.server(tenant.server_id).await?;
        if let Some(parent) = partial.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let mut conn = self.fleet.connect_as_tenant(&server, &db, &role).await?;
        sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").execute(&mut conn).await?;
        let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()").fetch_one(&mut conn).await?;
        let last_outbox_seq: i64 = sqlx::query_scalar("SELECT last FROM outbox_seq").fetch_one(&mut conn).await?;
        let schema_version: i32 = sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM refinery_schema_history")
            .fetch_one(&mut conn)
            .await?;
        let postgres: String =
            sqlx::query_scalar("SELECT current_setting('server_version')").fetch_one(&mut conn).await?;
        let created_at = OffsetDateTime::now_utc();
        let login = self.fleet.tenant_login(&server, &db, &role);
        let dumped = tools::pg_dump(&tools, &login, &snapshot, partial, &dump_application_name(id)).await;
        // The snapshot is needed only until pg_dump has imported it; it ends with the dump.
        let _ = sqlx::raw_sql("COMMIT").execute(&mut conn).await;
        conn.close().await.ok();
        dumped?;
        let (size, sha256) = checksum(partial).await?;
        let dump_file = format!("{id}.dump");
        let final_path = partial.with_file_name(&dump_file);
        tokio::fs::rename(partial, &final_path).await?;
        let manifest = BackupManifest {
            format: MANIFEST_FORMAT.into(),
            backup_id: id,
            tenant_id: tenant.id,
            slug: tenant.slug.clone(),
            name: tenant.name.clone(),
            server: server.name.clone(),
            schema_version,
            last_outbox_seq,
            size,
            sha256,
            dump_file,
            created_at,
            tool_versions: ToolVersions {
                pg_dump: tools.version().to_owned(),
                postgres,
                control_plane: env!("CARGO_PKG_VERSION").into(),
            },
        };
        let text = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
        tokio::fs::write(final_path.with_extension("json"), text).await?;
        tracing::info!(backup = %id, tenant = %tenant.id, size, "backup done");
        Ok(manifest)
    }

    /// Settles backups whose process died (see the module docs); returns how many.
    pub async fn recover(&self) -> Result<usize, BackupError> {
        let mut settled = 0;
        for row in rows::running(&self.catalog).await? {
            let mut tx = self.catalog.begin().await?;
            let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                .bind(lock_key(row.id))
                .fetch_one(&mut *tx)
                .await?;
            if !free {
                continue;
            }
            if rows::finish_failed(&mut *tx, row.id, "interrupted: the control plane stopped while it ran").await? {
                settled += 1;
            }
            tx.commit().await?;
            // A `pg_dump` outlives a control plane killed with -9: end its session first, so it
            // cannot finish a file after the partial one is removed.
            if let Err(error) = self.end_orphan_dump(&row).await {
                tracing::warn!(backup = %row.id, %error, "cannot end an interrupted backup's pg_dump session");
            }
            let partial = self.settings.dir.join(format!("{}.partial", row.file));
            let _ = tokio::fs::remove_file(partial).await;
        }
        Ok(settled)
    }

    async fn end_orphan_dump(&self, row: &BackupRow) -> Result<(), BackupError> {
        let Some(tenant) = tenants::get(&self.catalog, row.tenant_id).await? else { return Ok(()) };
        let server = self.fleet.server(tenant.server_id).await?;
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1")
            .bind(dump_application_name(row.id))
            .execute(server.pool())
            .await?;
        Ok(())
    }

    /// The tenant named by an id or a slug (live tenants only for slugs).
    pub async fn tenant(&self, id_or_slug: &str) -> Result<TenantRow, BackupError> {
        let row = match Uuid::parse_str(id_or_slug) {
            Ok(id) => tenants::get(&self.catalog, id).await?,
            Err(_) => tenants::get_live_by_slug(&self.catalog, id_or_slug).await?,
        };
        row.ok_or(BackupError::NotFound)
    }

    pub async fn for_tenant(&self, tenant: Uuid, limit: i64) -> Result<Vec<BackupRow>, BackupError> {
        Ok(rows::for_tenant(&self.catalog, tenant, limit).await?)
    }
}

/// The advisory-lock key of one backup (catalog-wide; disjoint from the template locks by the
/// constant mixed in).
fn lock_key(id: Uuid) -> i64 {
    let bytes = id.as_bytes();
    i64::from_be_bytes(bytes[8..16].try_into().expect("16-byte uuid")) ^ 0x6261_636b_7570_0001
}

/// The `application_name` of a backup's `pg_dump` session, so recovery can find it.
fn dump_application_name(id: Uuid) -> String {
    format!("nexacore-backup-{}", id.simple())
}

/// Size and hex SHA-256 of a file, read in chunks.
pub async fn checksum(path: &Path) -> std::io::Result<(i64, String)> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut size = 0i64;
    loop {
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        size += n as i64;
        hasher.update(&buffer[..n]);
    }
    Ok((size, hex::encode(hasher.finalize())))
}

impl BackupRow {
    pub fn view(&self) -> BackupView {
        BackupView {
            id: self.id,
            tenant_id: self.tenant_id,
            kind: BackupKind::parse(&self.kind).unwrap_or_default(),
            status: BackupStatus::parse(&self.status).unwrap_or(BackupStatus::Failed),
            error: self.error.clone(),
            started_at: self.started_at,
            finished_at: self.finished_at,
            manifest: self.manifest.clone().and_then(|m| serde_json::from_value(m).ok()),
        }
    }
}

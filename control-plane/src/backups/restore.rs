//! Restores of a backup: as a new tenant, or in place of the tenant it belongs to.
//!
//! **Refused before anything is touched**: a manifest of another format, an upload whose size
//! or SHA-256 is not the manifest's, an archive `pg_restore --list` cannot read, a schema newer
//! than this build, a bundle of another tenant (in place), a taken or invalid slug (new tenant).
//!
//! **As a new tenant** the restore *is* a provisioning: the catalog row (`provisioning`) is
//! committed first and the provisioning lock held, so a crash anywhere is undone by the
//! reconciler exactly like an interrupted signup (`provision::reconcile`); the new role owns
//! the new database and loads the dump itself (`pg_restore` as that role), and cannot log into
//! the original's.
//!
//! **In place**: a `restores` row names the fresh database before it exists and fences the
//! tenant (its maintenance on: every router answers 503 `maintenance` with `Retry-After`) in one
//! transaction; the dump is loaded into the fresh database as the tenant's own role and migrated
//! if older; one transaction then points the tenant at the fresh database and unfences it; the
//! old database is kept for `NEXACORE_RESTORE_KEEP_OLD_HOURS` (a way back if the bundle was the
//! wrong one), then dropped by [`Backups::drop_old_databases`], or at once by an operator.
//! [`recover`] settles a row left by a dead process: before the swap the fresh database is
//! dropped and the tenant unfenced (nothing changed), after it the row is finished as above.

use std::path::PathBuf;

use api_types::backups::{MANIFEST_FORMAT, RestoreDone, RestoreRequest, UploadedDump};
use sqlx::{Connection, PgPool};
use uuid::Uuid;

use super::{BackupError, Backups, checksum, tools};
use crate::catalog::audit::{self, Actor};
use crate::catalog::servers;
use crate::catalog::tenants::{self, NewTenantRow};
use crate::domain::{DbName, Slug, TenantId, TenantStatus};
use crate::fleet::ServerHandle;

/// Why a restore was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The request names something wrong; `.0` is the field.
    #[error("{1}")]
    Invalid(&'static str, String),
    #[error("slug: \"{0}\" is already taken")]
    SlugTaken(String),
    #[error("a restore of this tenant is already running")]
    Busy,
    #[error("no database server has room for a new tenant")]
    NoCapacity,
    #[error(transparent)]
    Backup(#[from] BackupError),
}

impl From<sqlx::Error> for RestoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Backup(e.into())
    }
}

impl From<crate::fleet::FleetError> for RestoreError {
    fn from(e: crate::fleet::FleetError) -> Self {
        Self::Backup(e.into())
    }
}

impl From<tools::ToolError> for RestoreError {
    fn from(e: tools::ToolError) -> Self {
        Self::Backup(e.into())
    }
}

impl Backups {
    fn upload_path(&self, id: Uuid) -> PathBuf {
        self.settings.dir.join("uploads").join(format!("{id}.dump"))
    }

    /// Stores an uploaded dump under the backup directory; returns its size and SHA-256.
    pub async fn receive_upload(&self, body: poem::Body) -> Result<UploadedDump, BackupError> {
        use tokio::io::AsyncWriteExt as _;
        let upload_id = Uuid::now_v7();
        let path = self.upload_path(upload_id);
        tokio::fs::create_dir_all(path.parent().expect("uploads/")).await?;
        let mut file = tokio::fs::File::create(&path).await?;
        let mut reader = body.into_async_read();
        tokio::io::copy(&mut reader, &mut file).await?;
        file.flush().await?;
        file.sync_all().await?;
        let (size, sha256) = checksum(&path).await?;
        Ok(UploadedDump { upload_id, size, sha256 })
    }

    /// Every check that needs nothing changed: returns the dump's path.
    async fn check(&self, req: &RestoreRequest) -> Result<PathBuf, RestoreError> {
        let m = &req.manifest;
        if m.format != MANIFEST_FORMAT {
            return Err(RestoreError::Invalid(
                "manifest.format",
                format!("manifest.format: expected {MANIFEST_FORMAT}"),
            ));
        }
        let path = self.upload_path(req.upload_id);
        let (size, sha256) = checksum(&path)
            .await
            .map_err(|_| RestoreError::Invalid("upload_id", "upload_id: no such upload".into()))?;
        if size != m.size || sha256 != m.sha256 {
            return Err(RestoreError::Invalid(
                "manifest.sha256",
                "manifest.sha256: the dump's checksum or size is not the manifest's (corrupt or truncated bundle)"
                    .into(),
            ));
        }
        let latest = self.fleet.latest_version();
        if m.schema_version > latest {
            return Err(RestoreError::Invalid(
                "manifest.schema_version",
                format!("manifest.schema_version: {} is newer than this build's {latest}", m.schema_version),
            ));
        }
        let tools = self.tools().await?;
        let listed = tokio::process::Command::new(tools.pg_restore())
            .arg("--list")
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await
            .map_err(|source| tools::ToolError::Spawn { program: "pg_restore", source })?;
        if !listed.success() {
            return Err(RestoreError::Invalid(
                "upload_id",
                "upload_id: not a pg_dump archive pg_restore can read".into(),
            ));
        }
        Ok(path)
    }

    pub async fn restore(&self, req: RestoreRequest, actor: &Actor) -> Result<RestoreDone, RestoreError> {
        let dump = self.check(&req).await?;
        let done = if req.in_place {
            self.restore_in_place(&req, &dump, actor).await
        } else {
            self.restore_as_new(&req, &dump, actor).await
        };
        if done.is_ok() {
            let _ = tokio::fs::remove_file(&dump).await;
        }
        done
    }

    async fn restore_as_new(
        &self,
        req: &RestoreRequest,
        dump: &std::path::Path,
        actor: &Actor,
    ) -> Result<RestoreDone, RestoreError> {
        let m = &req.manifest;
        let raw = req
            .slug
            .as_deref()
            .ok_or_else(|| RestoreError::Invalid("slug", "slug: give the new tenant's slug (or in_place)".into()))?;
        let slug = Slug::parse(raw).map_err(|e| RestoreError::Invalid("slug", format!("slug: {e}")))?;
        let name = req.name.clone().unwrap_or_else(|| m.name.clone());
        if name.trim().is_empty() || name.chars().count() > 200 {
            return Err(RestoreError::Invalid("name", "name: 1–200 characters".into()));
        }
        if tenants::slug_taken(&self.catalog, slug.as_str()).await? {
            return Err(RestoreError::SlugTaken(slug.to_string()));
        }
        // Settings the manifest does not carry come from the original row when it is still there.
        let original = tenants::get(&self.catalog, m.tenant_id).await?;
        let (timezone, currency, chart) = original
            .as_ref()
            .map(|o| (o.timezone.clone(), o.currency.clone(), o.chart_template.clone()))
            .unwrap_or_else(|| ("UTC".into(), "USD".into(), "standard".into()));
        let server_id = servers::least_loaded(&self.catalog).await?.ok_or(RestoreError::NoCapacity)?;
        let id = TenantId::new();
        let row = NewTenantRow {
            id,
            slug: slug.as_str(),
            name: &name,
            server_id,
            timezone: &timezone,
            currency: &currency,
            chart_template: &chart,
        };
        // The provisioning lock, held to the end: a crash releases it and the reconciler undoes.
        let mut lock = self.catalog.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(id.lock_key()).execute(&mut *lock).await?;
        match tenants::insert_provisioning(&self.catalog, &row).await {
            Ok(()) => {}
            Err(e) if crate::catalog::unique_violation(&e).is_some() => {
                return Err(RestoreError::SlugTaken(slug.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
        let server = self.fleet.server(server_id).await?;
        let built = self.build_new(&server, id, dump).await;
        let version = match built {
            Ok(version) => version,
            Err(error) => {
                let _ = crate::provision::undo_restored(&self.fleet, &self.catalog, &server, id).await;
                lock.commit().await.ok();
                return Err(error);
            }
        };
        let mut tx = self.catalog.begin().await?;
        tenants::activate(&mut *tx, id.0, version).await?;
        if req.with_members {
            sqlx::query(
                "INSERT INTO memberships (user_id, tenant_id, role) SELECT user_id, $2, role FROM memberships WHERE tenant_id = $1",
            )
            .bind(m.tenant_id)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        }
        let details =
            serde_json::json!({ "backup": m.backup_id, "from_tenant": m.tenant_id, "with_members": req.with_members });
        audit::record(&mut *tx, actor, "tenant.restored_as_new", Some(id.0), details).await?;
        tx.commit().await?;
        lock.commit().await?;
        Ok(RestoreDone {
            tenant_id: id.0,
            slug: slug.to_string(),
            in_place: false,
            from_schema_version: m.schema_version,
            schema_version: version,
            last_outbox_seq: m.last_outbox_seq,
            old_database_kept_until: None,
        })
    }

    /// Role, empty database, the dump loaded as the role, migrations if older: the version.
    async fn build_new(
        &self,
        server: &ServerHandle,
        id: TenantId,
        dump: &std::path::Path,
    ) -> Result<i32, RestoreError> {
        let (db, role) = (id.database_name(), id.role_name());
        self.fleet.create_role(server, &role).await?;
        self.fleet.create_empty_database(server, &db, &role).await?;
        self.load(server, &db, &role, dump).await
    }

    /// `pg_restore` as `role` into its empty database `db`, then the pending migrations, as the
    /// same role. Returns the database's schema version.
    async fn load(
        &self,
        server: &ServerHandle,
        db: &DbName,
        role: &crate::domain::RoleName,
        dump: &std::path::Path,
    ) -> Result<i32, RestoreError> {
        let tools = self.tools().await?.clone();
        tools::pg_restore(&tools, &self.fleet.tenant_login(server, db, role), dump).await?;
        let mut conn = self.fleet.connect_as_tenant(server, db, role).await?;
        let migrated = tenant_schema::migrate_with(&mut conn, self.fleet.migration_set().as_slice()).await;
        let version: Result<i32, sqlx::Error> =
            sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM refinery_schema_history")
                .fetch_one(&mut conn)
                .await;
        conn.close().await.ok();
        migrated.map_err(|e| RestoreError::Backup(BackupError::Fleet(e.into())))?;
        Ok(version?)
    }

    async fn restore_in_place(
        &self,
        req: &RestoreRequest,
        dump: &std::path::Path,
        actor: &Actor,
    ) -> Result<RestoreDone, RestoreError> {
        let m = &req.manifest;
        let tenant = match &req.tenant {
            Some(named) => self
                .tenant(named)
                .await
                .map_err(|_| RestoreError::Invalid("tenant", format!("tenant: no tenant {named:?}")))?,
            None => tenants::get(&self.catalog, m.tenant_id).await?.ok_or_else(|| {
                RestoreError::Invalid(
                    "manifest.tenant_id",
                    "manifest.tenant_id: the bundle's tenant no longer exists; restore it as a new tenant".into(),
                )
            })?,
        };
        if tenant.id != m.tenant_id {
            return Err(RestoreError::Invalid(
                "tenant",
                format!("tenant: the bundle belongs to another tenant ({}), not to {}", m.slug, tenant.slug),
            ));
        }
        if !matches!(tenant.status(), TenantStatus::Active | TenantStatus::Suspended) {
            return Err(RestoreError::Invalid(
                "tenant",
                format!("tenant: a tenant that is {} cannot be restored in place", tenant.status),
            ));
        }
        let (old_db, role) = tenant.database().map_err(|_| BackupError::Corrupt)?;
        let restore_id = Uuid::now_v7();
        let new_db = DbName::parse(&format!("t_{}_r{}", tenant.id.simple(), &restore_id.simple().to_string()[24..]))
            .expect("a valid database name");
        // Fence and record, in one transaction.
        let mut tx = self.catalog.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO restores (id, tenant_id, backup_id, state, old_database, new_database, was_in_maintenance, maintenance_message)
             SELECT $1, id, $3, 'restoring', database_name, $4, maintenance_mode, maintenance_message FROM tenants WHERE id = $2",
        )
        .bind(restore_id)
        .bind(tenant.id)
        .bind(m.backup_id)
        .bind(new_db.as_str())
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if crate::catalog::unique_violation(&e).is_some() => return Err(RestoreError::Busy),
            Err(e) => return Err(e.into()),
        }
        tenants::set_maintenance(&mut *tx, tenant.id, true, Some("Restoring this company's data from a backup"))
            .await?;
        let details = serde_json::json!({ "backup": m.backup_id, "restore": restore_id });
        audit::record(&mut *tx, actor, "tenant.restore_in_place", Some(tenant.id), details).await?;
        tx.commit().await?;
        // The restore's lock marks the row as owned by a live process (see `recover`).
        let mut lock = sqlx::PgConnection::connect_with(&self.catalog.connect_options()).await?;
        sqlx::query("SELECT pg_advisory_lock($1)").bind(restore_lock_key(restore_id)).execute(&mut lock).await?;
        let server = self.fleet.server(tenant.server_id).await?;
        let loaded = async {
            self.fleet.create_empty_database(&server, &new_db, &role).await?;
            self.load(&server, &new_db, &role, dump).await
        }
        .await;
        let version = match loaded {
            Ok(v) => v,
            Err(error) => {
                let _ = undo_before_swap(&self.catalog, &self.fleet, &server, restore_id, &new_db, &error.to_string())
                    .await;
                lock.close().await.ok();
                return Err(error);
            }
        };
        // The swap: the tenant's route now names the fresh database; unfenced to what it was.
        let mut tx = self.catalog.begin().await?;
        sqlx::query(
            "UPDATE tenants t SET database_name = r.new_database, schema_version = $2, maintenance_mode = r.was_in_maintenance,
                 maintenance_message = r.maintenance_message, updated_at = now()
             FROM restores r WHERE r.id = $1 AND t.id = r.tenant_id",
        )
        .bind(restore_id)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE restores SET state = 'swapped' WHERE id = $1").bind(restore_id).execute(&mut *tx).await?;
        tx.commit().await?;
        let keep = self.settings.keep_old_database;
        finish_after_swap(&self.catalog, &self.fleet, &server, restore_id, &old_db, keep).await?;
        lock.close().await.ok();
        let kept_until: Option<time::OffsetDateTime> =
            sqlx::query_scalar("SELECT old_kept_until FROM restores WHERE id = $1")
                .bind(restore_id)
                .fetch_one(&self.catalog)
                .await?;
        Ok(RestoreDone {
            tenant_id: tenant.id,
            slug: tenant.slug.clone(),
            in_place: true,
            from_schema_version: m.schema_version,
            schema_version: version,
            last_outbox_seq: m.last_outbox_seq,
            old_database_kept_until: kept_until,
        })
    }

    /// Settles in-place restores whose process died (see the module docs); returns how many.
    pub async fn recover_restores(&self) -> Result<usize, BackupError> {
        let rows: Vec<(Uuid, Uuid, String, String, String)> = sqlx::query_as(
            "SELECT r.id, t.server_id, r.state, r.old_database, r.new_database
             FROM restores r JOIN tenants t ON t.id = r.tenant_id WHERE r.state IN ('restoring', 'swapped')",
        )
        .fetch_all(&self.catalog)
        .await?;
        let mut settled = 0;
        for (id, server_id, state, old_db, new_db) in rows {
            let mut probe = sqlx::PgConnection::connect_with(&self.catalog.connect_options()).await?;
            let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(restore_lock_key(id))
                .fetch_one(&mut probe)
                .await?;
            if free {
                let server = self.fleet.server(server_id).await?;
                let (old_db, new_db) = match (DbName::parse(&old_db), DbName::parse(&new_db)) {
                    (Ok(o), Ok(n)) => (o, n),
                    _ => continue,
                };
                let outcome = if state == "restoring" {
                    undo_before_swap(
                        &self.catalog,
                        &self.fleet,
                        &server,
                        id,
                        &new_db,
                        "interrupted: the control plane stopped",
                    )
                    .await
                } else {
                    let keep = self.settings.keep_old_database;
                    finish_after_swap(&self.catalog, &self.fleet, &server, id, &old_db, keep).await
                };
                if outcome.is_ok() {
                    settled += 1;
                }
            }
            probe.close().await.ok();
        }
        Ok(settled)
    }
}

async fn undo_before_swap(
    catalog: &PgPool,
    fleet: &crate::fleet::Fleet,
    server: &ServerHandle,
    id: Uuid,
    new_db: &DbName,
    error: &str,
) -> Result<(), BackupError> {
    fleet.drop_database(server, new_db).await?;
    let mut tx = catalog.begin().await?;
    sqlx::query(
        "UPDATE tenants t SET maintenance_mode = r.was_in_maintenance, maintenance_message = r.maintenance_message,
             updated_at = now()
         FROM restores r WHERE r.id = $1 AND t.id = r.tenant_id AND r.state = 'restoring'",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE restores SET state = 'failed', error = $2, finished_at = now() WHERE id = $1 AND state = 'restoring'",
    )
    .bind(id)
    .bind(error)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// After the swap: the old database kept for `keep` (the row says until when), or dropped now.
async fn finish_after_swap(
    catalog: &PgPool,
    fleet: &crate::fleet::Fleet,
    server: &ServerHandle,
    id: Uuid,
    old_db: &DbName,
    keep: std::time::Duration,
) -> Result<(), BackupError> {
    if keep.is_zero() {
        fleet.drop_database(server, old_db).await?;
    }
    sqlx::query(
        "UPDATE restores SET state = 'done', finished_at = now(),
             old_kept_until = CASE WHEN $2 THEN NULL ELSE now() + make_interval(secs => $3) END,
             old_dropped_at = CASE WHEN $2 THEN now() END
         WHERE id = $1",
    )
    .bind(id)
    .bind(keep.is_zero())
    .bind(keep.as_secs_f64())
    .execute(catalog)
    .await?;
    Ok(())
}

impl Backups {
    /// Drops the databases in-place restores kept: of one tenant (at once, whatever the
    /// retention) or, without one, every one whose retention has passed. Never a database a
    /// tenant's route names. Returns the names dropped.
    pub async fn drop_old_databases(&self, tenant: Option<Uuid>) -> Result<Vec<String>, BackupError> {
        let kept: Vec<(Uuid, Uuid, String, String)> = sqlx::query_as(
            "SELECT r.id, t.server_id, r.old_database, t.database_name
             FROM restores r JOIN tenants t ON t.id = r.tenant_id
             WHERE r.state = 'done' AND r.old_dropped_at IS NULL
               AND ($1::uuid IS NULL AND r.old_kept_until <= now() OR r.tenant_id = $1)",
        )
        .bind(tenant)
        .fetch_all(&self.catalog)
        .await?;
        let mut dropped = Vec::new();
        for (id, server_id, old, live) in kept {
            let Ok(old_db) = DbName::parse(&old) else { continue };
            if old != live {
                let server = self.fleet.server(server_id).await?;
                self.fleet.drop_database(&server, &old_db).await?;
                dropped.push(old);
            }
            sqlx::query("UPDATE restores SET old_dropped_at = now() WHERE id = $1 AND old_dropped_at IS NULL")
                .bind(id)
                .execute(&self.catalog)
                .await?;
        }
        Ok(dropped)
    }

    /// Drops kept old databases whose retention has passed, every `every`, until `stop`.
    pub async fn sweep_old_databases(
        self: std::sync::Arc<Self>,
        every: std::time::Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut ticker = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.changed() => break,
            }
            match self.drop_old_databases(None).await {
                Ok(dropped) if !dropped.is_empty() => tracing::info!(?dropped, "dropped databases kept by restores"),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "dropping databases kept by restores failed"),
            }
        }
    }
}

fn restore_lock_key(id: Uuid) -> i64 {
    let bytes = id.as_bytes();
    i64::from_be_bytes(bytes[8..16].try_into().expect("16-byte uuid")) ^ 0x7265_7374_6f72_6501
}

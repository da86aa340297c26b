//! Backups over the operator API: start one, follow it, list a tenant's, download the dump.
//! Tenants are named by id or slug.

use std::sync::Arc;

use api_types::backups::{
    BackupKind, BackupStatus, BackupView, OldDatabasesDropped, RestoreDone, RestoreRequest, UploadedDump,
};
use poem::Body;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, OpenApi};
use uuid::Uuid;

use super::security::OperatorAuth;
use crate::backups::BackupError;
use crate::backups::restore::RestoreError;
use crate::state::AppState;
use http_api::JsonBody;
use http_api::{ApiError, ErrorBody};

pub struct BackupsApi(pub Arc<AppState>);

#[derive(ApiResponse)]
pub enum BackupStarted {
    /// The backup is recorded and running; follow it with `GET /backups/{id}`.
    #[oai(status = 202)]
    Accepted(Json<BackupView>),
}

#[derive(ApiResponse)]
pub enum DumpFile {
    /// The dump (`pg_dump` custom format); its SHA-256 is in the backup's manifest.
    #[oai(status = 200)]
    File(Binary<Body>),
}

#[derive(ApiResponse)]
pub enum Uploaded {
    /// The dump is stored; restore it with `POST /restores`.
    #[oai(status = 201)]
    Created(Json<UploadedDump>),
}

#[derive(ApiResponse)]
pub enum Restored {
    /// The tenant holds the backup's data.
    #[oai(status = 201)]
    Created(Json<RestoreDone>),
}

#[OpenApi(tag = "super::signup::Tag::Operations")]
impl BackupsApi {
    /// Starts a backup of a tenant (id or slug): `pg_dump` of its database, as its own role,
    /// into the control plane's backup directory. `kind`: `manual` (default) or `final`.
    #[oai(path = "/tenants/:tenant/backups", method = "post")]
    async fn start(
        &self,
        auth: OperatorAuth,
        tenant: Path<String>,
        kind: Query<Option<String>>,
    ) -> Result<BackupStarted, ApiError> {
        let kind = match kind.0.as_deref() {
            None | Some("manual") => BackupKind::Manual,
            Some("final") => BackupKind::Final,
            Some(_) => return Err(ApiError::field("kind", "kind: must be manual or final")),
        };
        let backups = &self.0.backups;
        let row = backups.tenant(&tenant.0).await.map_err(backup_error)?;
        let started = backups.start(&row, kind, &auth.0).await.map_err(backup_error)?;
        Ok(BackupStarted::Accepted(Json(started.view())))
    }

    /// A tenant's backups (id or slug; deleted tenants by id), newest first.
    #[oai(path = "/tenants/:tenant/backups", method = "get")]
    async fn list(
        &self,
        _auth: OperatorAuth,
        tenant: Path<String>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))] limit: Query<Option<i64>>,
    ) -> Result<Json<Vec<BackupView>>, ApiError> {
        let backups = &self.0.backups;
        let row = backups.tenant(&tenant.0).await.map_err(backup_error)?;
        let rows = backups.for_tenant(row.id, limit.0.unwrap_or(100)).await.map_err(backup_error)?;
        Ok(Json(rows.iter().map(|r| r.view()).collect()))
    }

    /// One backup.
    #[oai(path = "/backups/:id", method = "get")]
    async fn get(&self, _auth: OperatorAuth, id: Path<Uuid>) -> Result<Json<BackupView>, ApiError> {
        let row = self.0.backups.get(id.0).await.map_err(backup_error)?;
        Ok(Json(row.ok_or_else(|| ApiError::not_found("no backup with this id"))?.view()))
    }

    /// The dump file of a finished backup.
    #[oai(path = "/backups/:id/file", method = "get")]
    async fn file(&self, _auth: OperatorAuth, id: Path<Uuid>) -> Result<DumpFile, ApiError> {
        let backups = &self.0.backups;
        let row = backups
            .get(id.0)
            .await
            .map_err(backup_error)?
            .ok_or_else(|| ApiError::not_found("no backup with this id"))?;
        if row.status != BackupStatus::Done.as_str() {
            return Err(ApiError::conflict(ErrorBody::new("not_done", format!("the backup is {}", row.status))));
        }
        let file = tokio::fs::File::open(backups.path_of(&row))
            .await
            .map_err(|_| ApiError::not_found("the backup's file is no longer in the backup directory"))?;
        Ok(DumpFile::File(Binary(Body::from_async_read(file))))
    }
}

#[OpenApi(tag = "super::signup::Tag::Operations")]
impl RestoresApi {
    /// Drops, now, the databases in-place restores of a tenant (id or slug) had kept (they go by
    /// themselves after `NEXACORE_RESTORE_KEEP_OLD_HOURS`). Audited.
    #[oai(path = "/tenants/:tenant/old-databases", method = "delete")]
    async fn drop_old_databases(
        &self,
        auth: OperatorAuth,
        tenant: Path<String>,
    ) -> Result<Json<OldDatabasesDropped>, ApiError> {
        let backups = &self.0.backups;
        let row = backups.tenant(&tenant.0).await.map_err(backup_error)?;
        let dropped = backups.drop_old_databases(Some(row.id)).await.map_err(backup_error)?;
        let details = serde_json::json!({ "dropped": dropped });
        crate::catalog::audit::record(&self.0.catalog, &auth.0, "tenant.old_databases_dropped", Some(row.id), details)
            .await?;
        Ok(Json(OldDatabasesDropped { dropped }))
    }

    /// Uploads a dump (a bundle's `pg_dump` file) for a restore; answers its size and SHA-256.
    #[oai(path = "/restores/uploads", method = "post")]
    async fn upload(&self, _auth: OperatorAuth, body: Binary<Body>) -> Result<Uploaded, ApiError> {
        let stored = self.0.backups.receive_upload(body.0).await.map_err(backup_error)?;
        Ok(Uploaded::Created(Json(stored)))
    }

    /// Restores an uploaded dump described by its bundle's manifest: as a new tenant (`slug`;
    /// new id, role and database; `with_members` copies the memberships) or `in_place` (the
    /// tenant is fenced with maintenance meanwhile). A checksum that fails, a bundle of another
    /// tenant or a schema newer than this build is refused before anything is touched.
    #[oai(path = "/restores", method = "post")]
    async fn restore(&self, auth: OperatorAuth, body: JsonBody<RestoreRequest>) -> Result<Restored, ApiError> {
        let backups = self.0.backups.clone();
        // Spawned: a client that disconnects must not cut a restore off halfway.
        let done =
            tokio::spawn(async move { backups.restore(body.0, &auth.0).await }).await.map_err(ApiError::internal)?;
        match done {
            Ok(done) => Ok(Restored::Created(Json(done))),
            Err(RestoreError::Invalid(field, message)) => Err(ApiError::field(field, message)),
            Err(e @ RestoreError::SlugTaken(_)) => {
                Err(ApiError::conflict(ErrorBody::on_field("slug_taken", "slug", e.to_string())))
            }
            Err(e @ RestoreError::Busy) => Err(ApiError::conflict(ErrorBody::new("restore_running", e.to_string()))),
            Err(e @ RestoreError::NoCapacity) => {
                Err(ApiError::Unavailable(Json(ErrorBody::new("no_capacity", e.to_string())), 60))
            }
            Err(RestoreError::Backup(e)) => Err(backup_error(e)),
        }
    }
}

pub struct RestoresApi(pub Arc<AppState>);

pub(super) fn backup_error(e: BackupError) -> ApiError {
    match e {
        BackupError::NotFound => ApiError::not_found(e.to_string()),
        BackupError::WrongState(_) => ApiError::conflict(ErrorBody::new("wrong_state", e.to_string())),
        BackupError::Tool(crate::backups::tools::ToolError::NotFound(_)) => {
            ApiError::Unavailable(poem_openapi::payload::Json(ErrorBody::new("no_dump_tools", e.to_string())), 60)
        }
        other => ApiError::internal(other),
    }
}

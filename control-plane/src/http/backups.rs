//! Backups over the operator API: start one, follow it, list a tenant's, download the dump.
//! Tenants are named by id or slug.

use std::sync::Arc;

use api_types::backups::{BackupKind, BackupStatus, BackupView};
use poem::Body;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, OpenApi};
use uuid::Uuid;

use super::security::OperatorAuth;
use crate::backups::BackupError;
use crate::state::AppState;
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

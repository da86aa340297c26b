//! Tenant moves over the operator API: start one, follow it, list a tenant's; and a server's
//! status, which `ops servers drain` sets to `draining` (placement then skips the server).

use std::sync::Arc;

use api_types::moves::{MoveRequest, MoveView};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::backups::backup_error;
use super::security::OperatorAuth;
use super::wire::ServerView;
use crate::catalog::audit;
use crate::catalog::servers;
use crate::moves::MoveError;
use crate::state::AppState;
use http_api::JsonBody;
use http_api::{ApiError, ErrorBody};

pub struct MovesApi(pub Arc<AppState>);

#[derive(ApiResponse)]
pub enum MoveStarted {
    /// The move is recorded and running; follow it with `GET /moves/{id}`.
    #[oai(status = 202)]
    Accepted(Json<MoveView>),
}

/// `PATCH /servers/{server}`.
#[derive(Debug, Object, serde::Deserialize)]
pub struct ServerPatch {
    /// `active` (takes new tenants), `draining` (takes none; `ops servers drain` moves its
    /// tenants off) or `disabled`.
    pub status: String,
}

#[OpenApi(tag = "super::signup::Tag::Operations")]
impl MovesApi {
    /// Moves a tenant (id or slug) to another server (`to`: name or id; absent: the
    /// least-loaded other active server). Rows are copied by logical replication while the
    /// tenant keeps working; writes are refused (503 `maintenance`) only for the final
    /// catch-up. An unknown, draining or same server, or a move already running, is refused
    /// with nothing changed.
    #[oai(path = "/tenants/:tenant/moves", method = "post")]
    async fn start(
        &self,
        auth: OperatorAuth,
        tenant: Path<String>,
        body: JsonBody<MoveRequest>,
    ) -> Result<MoveStarted, ApiError> {
        let moves = &self.0.moves;
        let row = moves.start(&tenant.0, &body.0, &auth.0).await.map_err(move_error)?;
        Ok(MoveStarted::Accepted(Json(moves.view(&row).await.map_err(move_error)?)))
    }

    /// A tenant's moves (id or slug), newest first.
    #[oai(path = "/tenants/:tenant/moves", method = "get")]
    async fn list(
        &self,
        _auth: OperatorAuth,
        tenant: Path<String>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))] limit: Query<Option<i64>>,
    ) -> Result<Json<Vec<MoveView>>, ApiError> {
        let moves = &self.0.moves;
        let row = moves.tenant(&tenant.0).await.map_err(move_error)?;
        let mut views = Vec::new();
        for m in moves.for_tenant(row.id, limit.0.unwrap_or(100)).await.map_err(move_error)? {
            views.push(moves.view(&m).await.map_err(move_error)?);
        }
        Ok(Json(views))
    }

    /// One move.
    #[oai(path = "/moves/:id", method = "get")]
    async fn get(&self, _auth: OperatorAuth, id: Path<Uuid>) -> Result<Json<MoveView>, ApiError> {
        let moves = &self.0.moves;
        let row =
            moves.get(id.0).await.map_err(move_error)?.ok_or_else(|| ApiError::not_found("no move with this id"))?;
        Ok(Json(moves.view(&row).await.map_err(move_error)?))
    }

    /// Sets a server's status (name or id). A `draining` or `disabled` server gets no new
    /// tenants, spares or moves.
    #[oai(path = "/servers/:server", method = "patch")]
    async fn patch_server(
        &self,
        auth: OperatorAuth,
        server: Path<String>,
        body: JsonBody<ServerPatch>,
    ) -> Result<Json<ServerView>, ApiError> {
        let status = body.0.status;
        if !matches!(status.as_str(), "active" | "draining" | "disabled") {
            return Err(ApiError::field("status", "status: must be active, draining or disabled"));
        }
        let by_id = Uuid::parse_str(&server.0).ok();
        let found = servers::all(&self.0.catalog)
            .await?
            .into_iter()
            .find(|s| s.name == server.0 || Some(s.id) == by_id)
            .ok_or_else(|| ApiError::not_found("no database server with this name or id"))?;
        let mut tx = self.0.catalog.begin().await?;
        servers::set_status(&mut *tx, found.id, &status).await?;
        let details = serde_json::json!({ "server": found.id, "name": found.name, "status": status });
        audit::record(&mut *tx, &auth.0, "server.status", None, details).await?;
        tx.commit().await?;
        let view = servers::loads(&self.0.catalog)
            .await?
            .into_iter()
            .find(|s| s.id == found.id)
            .ok_or_else(|| ApiError::internal("a server vanished"))?;
        Ok(Json(view.into()))
    }
}

fn move_error(e: MoveError) -> ApiError {
    match e {
        MoveError::NotFound => ApiError::not_found(e.to_string()),
        MoveError::UnknownServer(_) | MoveError::SameServer(_) | MoveError::NotActive(..) => {
            ApiError::field("to", e.to_string())
        }
        MoveError::NoTarget => ApiError::conflict(ErrorBody::on_field("no_target", "to", e.to_string())),
        MoveError::WrongState(_) => ApiError::conflict(ErrorBody::new("wrong_state", e.to_string())),
        MoveError::Busy => ApiError::conflict(ErrorBody::new("move_running", e.to_string())),
        MoveError::NotLogical(..) => ApiError::conflict(ErrorBody::new("wal_level", e.to_string())),
        MoveError::Backup(inner) => backup_error(inner),
        other => ApiError::internal(other),
    }
}

//! Operator routes beyond tenants: database servers, signing-key rotation, the audit log.

use std::sync::Arc;

use poem_openapi::param::{Path, Query};
use poem_openapi::{OpenApi, payload::Json};
use secrecy::SecretString;
use uuid::Uuid;

use super::security::OperatorAuth;
use super::wire::{AuditEntryView, RegisterServerRequest, RevokedKey, RotatedKey, ServerView};
use crate::catalog::{audit, servers};
use crate::fleet::RegisterError;
use crate::state::AppState;
use http_api::JsonBody;
use http_api::{ApiError, ErrorBody};

pub struct OperatorApi(pub Arc<AppState>);

#[OpenApi(tag = "super::signup::Tag::Operations")]
impl OperatorApi {
    /// The registered database servers with their tenant counts.
    #[oai(path = "/servers", method = "get")]
    async fn servers(&self, _auth: OperatorAuth) -> Result<Json<Vec<ServerView>>, ApiError> {
        let loads = servers::loads(&self.0.catalog).await?;
        Ok(Json(loads.into_iter().map(ServerView::from).collect()))
    }

    /// Registers another Postgres server; new tenants are placed on the least-loaded one.
    #[oai(path = "/servers", method = "post")]
    async fn register_server(
        &self,
        auth: OperatorAuth,
        body: JsonBody<RegisterServerRequest>,
    ) -> Result<Json<ServerView>, ApiError> {
        let req = body.0;
        let name = req.name.trim();
        let name_ok =
            (1..=63).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(ApiError::field("name", "name: 1–63 characters of letters, digits, - and _"));
        }
        let capacity = req.capacity.unwrap_or(1000);
        if capacity < 1 {
            return Err(ApiError::field("capacity", "capacity: must be at least 1"));
        }
        let id =
            self.0.fleet.register(name, &SecretString::from(req.admin_url), capacity, &auth.0).await.map_err(|e| {
                match e {
                    RegisterError::BadUrl | RegisterError::Unreachable(_) | RegisterError::NotSuperuser => {
                        ApiError::field("admin_url", format!("admin_url: {e}"))
                    }
                    RegisterError::NameTaken => {
                        ApiError::conflict(ErrorBody::on_field("name_taken", "name", e.to_string()))
                    }
                    RegisterError::Fleet(inner) => ApiError::internal(inner),
                }
            })?;
        let view = servers::loads(&self.0.catalog)
            .await?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| ApiError::internal("registered server vanished"))?;
        Ok(Json(view.into()))
    }

    /// Makes a new signing key current. Tokens signed by the previous key keep verifying
    /// until they expire (the old key stays in the JWKS until then).
    #[oai(path = "/keys/rotate", method = "post")]
    async fn rotate_key(&self, auth: OperatorAuth) -> Result<Json<RotatedKey>, ApiError> {
        let kid = self.0.keys.rotate(&auth.0).await.map_err(ApiError::internal)?;
        Ok(Json(RotatedKey { kid }))
    }

    /// Withdraws a signing key at once (it leaked): tokens it signed stop verifying now, on
    /// every router within a second. Revoking the current key makes a new one current.
    #[oai(path = "/keys/:kid/revoke", method = "post")]
    async fn revoke_key(&self, auth: OperatorAuth, kid: Path<String>) -> Result<Json<RevokedKey>, ApiError> {
        match self.0.keys.revoke(&kid.0, &auth.0).await {
            Ok(new_current) => Ok(Json(RevokedKey { kid: kid.0, new_current })),
            Err(crate::identity::keys::KeyError::UnknownKey) => Err(ApiError::not_found("no signing key has this id")),
            Err(other) => Err(ApiError::internal(other)),
        }
    }

    /// The audit log, newest first; `before` pages back.
    #[oai(path = "/audit", method = "get")]
    async fn audit(
        &self,
        _auth: OperatorAuth,
        tenant: Query<Option<Uuid>>,
        before: Query<Option<i64>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))] limit: Query<Option<i64>>,
    ) -> Result<Json<Vec<AuditEntryView>>, ApiError> {
        let limit = limit.0.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::field("limit", "limit: must be between 1 and 1000"));
        }
        let rows = audit::list(&self.0.catalog, tenant.0, before.0, limit).await?;
        Ok(Json(
            rows.into_iter()
                .map(|r| AuditEntryView {
                    id: r.id,
                    at: r.at,
                    actor: r.actor,
                    action: r.action,
                    tenant_id: r.tenant_id,
                    details: r.details,
                })
                .collect(),
        ))
    }
}

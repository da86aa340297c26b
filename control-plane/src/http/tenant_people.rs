//! The operator's view of a company's people (`/tenants/{id}/users`, `…/invitations`) and of
//! the e-mail outbox (`/mail`): what `ops users` and `ops mail` call.

use std::sync::Arc;

use api_types::people::{Invitation, Member, NewInvitation, RoleChange};
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use uuid::Uuid;

use super::people::{Done, InvitationCreated, api_error};
use super::security::OperatorAuth;
use super::wire::MailView;
use crate::catalog::{mail, tenants};
use crate::people::Caller;
use crate::state::AppState;
use http_api::{ApiError, JsonBody};

pub struct TenantPeopleApi(pub Arc<AppState>);

impl TenantPeopleApi {
    /// The operator, as an admin of the tenant, once the tenant exists.
    async fn caller(&self, tenant: Uuid) -> Result<Caller, ApiError> {
        tenants::get(&self.0.catalog, tenant).await?.ok_or_else(|| ApiError::not_found("no tenant with this id"))?;
        Ok(Caller::operator(tenant))
    }
}

#[OpenApi(tag = "super::signup::Tag::Operations")]
impl TenantPeopleApi {
    /// A tenant's members (operator).
    #[oai(path = "/tenants/:id/users", method = "get")]
    async fn members(&self, _auth: OperatorAuth, id: Path<Uuid>) -> Result<Json<Vec<Member>>, ApiError> {
        let caller = self.caller(id.0).await?;
        Ok(Json(self.0.people.members(caller).await.map_err(api_error)?))
    }

    /// Invites someone to a tenant (operator); the e-mail names the company as the inviter.
    #[oai(path = "/tenants/:id/invitations", method = "post")]
    async fn invite(
        &self,
        _auth: OperatorAuth,
        id: Path<Uuid>,
        body: JsonBody<NewInvitation>,
    ) -> Result<InvitationCreated, ApiError> {
        let caller = self.caller(id.0).await?;
        Ok(InvitationCreated::Created(Json(self.0.people.invite(caller, body.0).await.map_err(api_error)?)))
    }

    /// A tenant's pending invitations (operator).
    #[oai(path = "/tenants/:id/invitations", method = "get")]
    async fn invitations(&self, _auth: OperatorAuth, id: Path<Uuid>) -> Result<Json<Vec<Invitation>>, ApiError> {
        let caller = self.caller(id.0).await?;
        Ok(Json(self.0.people.invitations(caller).await.map_err(api_error)?))
    }

    /// Changes a member's role (operator); the last admin cannot be demoted.
    #[oai(path = "/tenants/:id/users/:user", method = "patch")]
    async fn set_role(
        &self,
        _auth: OperatorAuth,
        id: Path<Uuid>,
        user: Path<Uuid>,
        body: JsonBody<RoleChange>,
    ) -> Result<Json<Member>, ApiError> {
        let caller = self.caller(id.0).await?;
        Ok(Json(self.0.people.set_role(caller, user.0, body.0.role).await.map_err(api_error)?))
    }

    /// Removes a member (operator); the last admin cannot be removed.
    #[oai(path = "/tenants/:id/users/:user", method = "delete")]
    async fn remove(&self, _auth: OperatorAuth, id: Path<Uuid>, user: Path<Uuid>) -> Result<Done, ApiError> {
        let caller = self.caller(id.0).await?;
        self.0.people.remove(caller, user.0).await.map_err(api_error)?;
        Ok(Done::NoContent)
    }

    /// The e-mail outbox, newest first (operator): what waits, what was sent, what failed.
    #[oai(path = "/mail", method = "get")]
    async fn mail(
        &self,
        _auth: OperatorAuth,
        /// `pending`, `sent` or `failed`.
        status: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))] limit: Query<Option<i64>>,
    ) -> Result<Json<Vec<MailView>>, ApiError> {
        if let Some(s) = status.0.as_deref()
            && !["pending", "sent", "failed"].contains(&s)
        {
            return Err(ApiError::field("status", "status: must be pending, sent or failed"));
        }
        let rows = mail::list(&self.0.catalog, status.0.as_deref(), limit.0.unwrap_or(100)).await?;
        Ok(Json(
            rows.into_iter()
                .map(|r| MailView {
                    id: r.id,
                    kind: r.kind,
                    tenant_id: r.tenant_id,
                    recipient: r.recipient,
                    subject: r.subject,
                    status: r.status,
                    attempts: r.attempts,
                    next_attempt_at: r.next_attempt_at,
                    last_error: r.last_error,
                    created_at: r.created_at,
                    sent_at: r.sent_at,
                })
                .collect(),
        ))
    }
}

//! `/invitations`, `/users` and `/auth/password…`: a company's people and each user's own
//! password. Signed-in routes take the user's access token ([`UserAuth`]).

use std::sync::Arc;

use api_types::people::{
    AcceptInvitation, Invitation, Member, NewInvitation, PasswordChange, PasswordResetConfirm, PasswordResetRequest,
    RoleChange,
};
use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use secrecy::SecretString;
use uuid::Uuid;

use super::auth::signed_in;
use super::security::{UserAuth, client_address};
use super::wire::{LoginToken, TenantSummary};
use crate::people::{Accepted, PeopleError};
use crate::state::AppState;
use http_api::{ApiError, ErrorBody, JsonBody};

pub struct PeopleApi(pub Arc<AppState>);

#[derive(ApiResponse)]
pub(super) enum InvitationCreated {
    #[oai(status = 201)]
    Created(Json<Invitation>),
}

#[derive(ApiResponse)]
pub enum SignedIn {
    /// The invitation was accepted: signed in, as a login answers.
    #[oai(status = 201)]
    Created(Json<LoginToken>),
}

#[derive(ApiResponse)]
pub(super) enum Done {
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
pub enum Accepted202 {
    /// Whether or not the address has an account (no account enumeration).
    #[oai(status = 202)]
    Accepted,
}

pub(super) fn api_error(e: PeopleError) -> ApiError {
    match e {
        PeopleError::Forbidden(m) => ApiError::forbidden("forbidden", m),
        PeopleError::NotFound(m) => ApiError::not_found(m),
        PeopleError::Conflict { code, message } => ApiError::conflict(ErrorBody::new(code, message)),
        PeopleError::Invalid { code, field, message } => {
            ApiError::Unprocessable(Json(ErrorBody::on_field(code, field, format!("{field}: {message}"))))
        }
        PeopleError::Throttled(wait) => {
            ApiError::TooManyRequests(Json(ErrorBody::new("throttled", e.to_string())), wait.as_secs().max(1))
        }
        PeopleError::Busy(wait) => {
            ApiError::Unavailable(Json(ErrorBody::new("busy", e.to_string())), wait.as_secs().max(1))
        }
        other => ApiError::internal(other),
    }
}

#[OpenApi(tag = "super::signup::Tag::People")]
impl PeopleApi {
    /// Invites someone to the company with a role (admins). The invitee gets an e-mail with a
    /// single-use code, valid for 7 days.
    #[oai(path = "/invitations", method = "post")]
    async fn invite(&self, auth: UserAuth, body: JsonBody<NewInvitation>) -> Result<InvitationCreated, ApiError> {
        let invitation = self.0.people.invite(auth.0, body.0).await.map_err(api_error)?;
        Ok(InvitationCreated::Created(Json(invitation)))
    }

    /// Pending invitations, newest first (admins and managers); expired ones say so.
    #[oai(path = "/invitations", method = "get")]
    async fn invitations(&self, auth: UserAuth) -> Result<Json<Vec<Invitation>>, ApiError> {
        Ok(Json(self.0.people.invitations(auth.0).await.map_err(api_error)?))
    }

    /// Withdraws a pending invitation (admins): its code stops working.
    #[oai(path = "/invitations/:id", method = "delete")]
    async fn revoke(&self, auth: UserAuth, id: Path<Uuid>) -> Result<Done, ApiError> {
        self.0.people.revoke(auth.0, id.0).await.map_err(api_error)?;
        Ok(Done::NoContent)
    }

    /// Sends a pending invitation again with a new code and expiry (admins); the old code stops
    /// working.
    #[oai(path = "/invitations/:id/resend", method = "post")]
    async fn resend(&self, auth: UserAuth, id: Path<Uuid>) -> Result<Json<Invitation>, ApiError> {
        Ok(Json(self.0.people.resend(auth.0, id.0).await.map_err(api_error)?))
    }

    /// Accepts an invitation (public): a new account, or an existing one with its password.
    /// Answers as a login does. Attempts are throttled per client address.
    #[oai(path = "/invitations/accept", method = "post")]
    async fn accept(&self, req: &Request, body: JsonBody<AcceptInvitation>) -> Result<SignedIn, ApiError> {
        let body = body.0;
        let client = client_address(req);
        let Accepted { signed, tenant, role } = self
            .0
            .people
            .accept(&body.code, SecretString::from(body.password), &body.full_name, client.as_deref())
            .await
            .map_err(api_error)?;
        Ok(SignedIn::Created(Json(signed_in(&self.0, signed, TenantSummary::from(&tenant), role.as_str()))))
    }

    /// The company's members (admins and managers).
    #[oai(path = "/users", method = "get")]
    async fn members(&self, auth: UserAuth) -> Result<Json<Vec<Member>>, ApiError> {
        Ok(Json(self.0.people.members(auth.0).await.map_err(api_error)?))
    }

    /// Changes a member's role (admins). The last admin cannot be demoted. The member's tokens
    /// stop working on every router within a second; they sign in again with the new role.
    #[oai(path = "/users/:id", method = "patch")]
    async fn set_role(
        &self,
        auth: UserAuth,
        id: Path<Uuid>,
        body: JsonBody<RoleChange>,
    ) -> Result<Json<Member>, ApiError> {
        Ok(Json(self.0.people.set_role(auth.0, id.0, body.0.role).await.map_err(api_error)?))
    }

    /// Removes a member from the company (admins). The last admin cannot be removed. Their
    /// tokens stop working and their live connections close within a second.
    #[oai(path = "/users/:id", method = "delete")]
    async fn remove(&self, auth: UserAuth, id: Path<Uuid>) -> Result<Done, ApiError> {
        self.0.people.remove(auth.0, id.0).await.map_err(api_error)?;
        Ok(Done::NoContent)
    }

    /// Changes the caller's password (the signup rules apply). Every token issued before,
    /// including the one used here, stops working: sign in again.
    #[oai(path = "/auth/password", method = "post")]
    async fn change_password(
        &self,
        req: &Request,
        auth: UserAuth,
        body: JsonBody<PasswordChange>,
    ) -> Result<Done, ApiError> {
        let body = body.0;
        let client = client_address(req);
        self.0
            .people
            .change_password(
                auth.0,
                SecretString::from(body.current_password),
                SecretString::from(body.new_password),
                client.as_deref(),
            )
            .await
            .map_err(api_error)?;
        Ok(Done::NoContent)
    }

    /// Mails a password reset code to the address if it has an account. Always `202`.
    #[oai(path = "/auth/password-reset", method = "post")]
    async fn request_reset(
        &self,
        req: &Request,
        body: JsonBody<PasswordResetRequest>,
    ) -> Result<Accepted202, ApiError> {
        let client = client_address(req);
        // Off the request, so the answer and its timing say nothing of the address.
        let state = self.0.clone();
        let email = body.0.email;
        tokio::spawn(async move {
            if let Err(error) = state.people.request_reset(&email, client.as_deref()).await {
                tracing::warn!(%error, "password reset request");
            }
        });
        Ok(Accepted202::Accepted)
    }

    /// Sets a new password with a reset code (single use). Every token issued before stops
    /// working.
    #[oai(path = "/auth/password-reset/confirm", method = "post")]
    async fn confirm_reset(&self, req: &Request, body: JsonBody<PasswordResetConfirm>) -> Result<Done, ApiError> {
        let body = body.0;
        let client = client_address(req);
        self.0
            .people
            .confirm_reset(&body.code, SecretString::from(body.new_password), client.as_deref())
            .await
            .map_err(api_error)?;
        Ok(Done::NoContent)
    }
}

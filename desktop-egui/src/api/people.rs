//! The control plane's people calls: members, invitations, and each user's own password.
//! All go to the control plane's base URL (the one the sign-in screen uses), never the router.

use reqwest::Method;
use uuid::Uuid;

use super::wire::*;
use super::{ApiError, Client};

impl Client {
    pub async fn members(&self, base: &str, token: &str) -> Result<Vec<Member>, ApiError> {
        self.send(self.request(Method::GET, base, "/users", Some(token))).await
    }

    pub async fn change_role(&self, base: &str, token: &str, id: Uuid, role: Role) -> Result<Member, ApiError> {
        self.send(self.request(Method::PATCH, base, &format!("/users/{id}"), Some(token)).json(&RoleChange { role }))
            .await
    }

    pub async fn remove_member(&self, base: &str, token: &str, id: Uuid) -> Result<(), ApiError> {
        self.send_raw(self.request(Method::DELETE, base, &format!("/users/{id}"), Some(token))).await.map(|_| ())
    }

    /// The pending invitations, newest first.
    pub async fn invitations(&self, base: &str, token: &str) -> Result<Vec<Invitation>, ApiError> {
        self.send(self.request(Method::GET, base, "/invitations", Some(token))).await
    }

    pub async fn invite(&self, base: &str, token: &str, invitation: &NewInvitation) -> Result<Invitation, ApiError> {
        self.send(self.request(Method::POST, base, "/invitations", Some(token)).json(invitation)).await
    }

    pub async fn resend_invitation(&self, base: &str, token: &str, id: Uuid) -> Result<Invitation, ApiError> {
        self.send(self.request(Method::POST, base, &format!("/invitations/{id}/resend"), Some(token))).await
    }

    pub async fn revoke_invitation(&self, base: &str, token: &str, id: Uuid) -> Result<(), ApiError> {
        self.send_raw(self.request(Method::DELETE, base, &format!("/invitations/{id}"), Some(token))).await.map(|_| ())
    }

    /// Accepting answers like a login: the new member is signed in.
    pub async fn accept_invitation(&self, base: &str, body: &AcceptInvitation) -> Result<LoginToken, ApiError> {
        let token: LoginToken =
            self.send(self.request(Method::POST, base, "/invitations/accept", None).json(body)).await?;
        if token.access_token.is_empty() || token.api_url.is_empty() {
            return Err(ApiError::NotNexaCore("the answer lacks a token".into()));
        }
        Ok(token)
    }

    /// Afterwards every token issued before is refused: the caller signs in again.
    pub async fn change_password(&self, base: &str, token: &str, body: &PasswordChange) -> Result<(), ApiError> {
        self.send_raw(self.request(Method::POST, base, "/auth/password", Some(token)).json(body)).await.map(|_| ())
    }

    /// Always `202`, whether or not the address has an account (nothing to learn from it).
    pub async fn request_password_reset(&self, base: &str, email: &str) -> Result<(), ApiError> {
        let body = PasswordResetRequest { email: email.to_owned() };
        self.send_raw(self.request(Method::POST, base, "/auth/password-reset", None).json(&body)).await.map(|_| ())
    }

    pub async fn confirm_password_reset(&self, base: &str, body: &PasswordResetConfirm) -> Result<(), ApiError> {
        self.send_raw(self.request(Method::POST, base, "/auth/password-reset/confirm", None).json(body))
            .await
            .map(|_| ())
    }
}

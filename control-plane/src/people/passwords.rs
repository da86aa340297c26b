//! A user's own password: change it (signed in), or reset it by a code sent by e-mail. Either
//! way every membership gets a new epoch, so every token issued before stops working.

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;
use time::OffsetDateTime;

use super::{Caller, People, PeopleError, new_code, readable};
use crate::catalog::audit::{self, Actor};
use crate::catalog::{password_resets, refresh_tokens, users};
use crate::domain::Email;
use crate::identity::gate::GateError;
use crate::identity::password;
use crate::mail::{self, templates};

impl People {
    pub async fn change_password(
        &self,
        caller: Caller,
        current: SecretString,
        new: SecretString,
        client: Option<&str>,
    ) -> Result<(), PeopleError> {
        let user = users::by_id(&self.catalog, caller.user)
            .await?
            .ok_or_else(|| PeopleError::NotFound("no such user".into()))?;
        let ok = self
            .passwords
            .check(&user.email, client, current, Some(user.password_hash.clone()))
            .await
            .map_err(gate_error)?;
        if !ok {
            return Err(PeopleError::Invalid {
                code: "bad_credentials",
                field: "current_password",
                message: "is not your current password".into(),
            });
        }
        let hash = self.new_hash(&user.email, "new_password", new).await?;
        let mut tx = self.catalog.begin().await?;
        users::set_password(&mut *tx, user.id, &hash).await?;
        refresh_tokens::revoke_user(&mut *tx, user.id, None).await?;
        password_resets::void_for_user(&mut *tx, user.id).await?;
        mail::enqueue(&mut *tx, &self.master, &templates::password_changed(&user.email)).await?;
        audit::record(&mut *tx, &caller.actor(), "password.changed", Some(caller.tenant), json!({ "user": user.id }))
            .await?;
        tx.commit().await?;
        self.mail.wake();
        Ok(())
    }

    /// Mails a reset code if the address has an account. The caller answers the same either
    /// way (no account enumeration); this runs off the request for the same reason.
    pub async fn request_reset(&self, email: &str, client: Option<&str>) -> Result<(), PeopleError> {
        self.code_attempts.hit(client.unwrap_or("unknown")).await.map_err(PeopleError::Throttled)?;
        let Ok(email) = Email::parse(email) else { return Ok(()) };
        let Some(user) = users::by_email(&self.catalog, email.as_str()).await? else { return Ok(()) };
        let code = new_code();
        let expires_at = OffsetDateTime::now_utc() + self.settings.reset_ttl;
        let mut tx = self.catalog.begin().await?;
        password_resets::insert(&mut *tx, user.id, &self.master.code_hash(&code), expires_at).await?;
        mail::enqueue(&mut *tx, &self.master, &templates::password_reset(&user.email, &code, &readable(expires_at)))
            .await?;
        let actor = Actor(format!("reset@{}", client.unwrap_or("unknown")));
        audit::record(&mut *tx, &actor, "password.reset_requested", None, json!({ "user": user.id })).await?;
        tx.commit().await?;
        self.mail.wake();
        Ok(())
    }

    pub async fn confirm_reset(&self, code: &str, new: SecretString, client: Option<&str>) -> Result<(), PeopleError> {
        self.code_attempts.hit(client.unwrap_or("unknown")).await.map_err(PeopleError::Throttled)?;
        let mut tx = self.catalog.begin().await?;
        // Taken in this transaction: a weak new password rolls back and leaves the code usable.
        let user =
            password_resets::take(&mut *tx, &self.master.code_hash(code)).await?.ok_or(PeopleError::Invalid {
                code: "invalid_code",
                field: "code",
                message: "this code is not valid, was used, or has expired; ask for a new one".into(),
            })?;
        let user = users::by_id(&mut *tx, user).await?.ok_or_else(|| PeopleError::NotFound("no such user".into()))?;
        let hash = self.new_hash(&user.email, "new_password", new).await?;
        users::set_password(&mut *tx, user.id, &hash).await?;
        refresh_tokens::revoke_user(&mut *tx, user.id, None).await?;
        password_resets::void_for_user(&mut *tx, user.id).await?;
        mail::enqueue(&mut *tx, &self.master, &templates::password_changed(&user.email)).await?;
        let actor = Actor(format!("reset@{}", client.unwrap_or("unknown")));
        audit::record(&mut *tx, &actor, "password.reset", None, json!({ "user": user.id })).await?;
        tx.commit().await?;
        self.mail.wake();
        Ok(())
    }

    async fn new_hash(&self, email: &str, field: &'static str, new: SecretString) -> Result<String, PeopleError> {
        let local = email.split('@').next().unwrap_or_default().to_owned();
        password::check_strength(new.expose_secret(), &[&local]).map_err(|m| PeopleError::invalid(field, m))?;
        self.passwords.hash(new).await.map_err(|b| PeopleError::Busy(b.retry_after))
    }
}

fn gate_error(e: GateError) -> PeopleError {
    match e {
        GateError::Throttled(wait) => PeopleError::Throttled(wait),
        GateError::Busy(busy) => PeopleError::Busy(busy.retry_after),
    }
}

//! Sign-ins that last a working day: a sign-in gets a short access token and a refresh token;
//! `POST /auth/refresh` trades a refresh token (once) for a new pair of the same family. A token
//! presented a second time was copied, so its whole family is revoked. Refresh re-reads the
//! membership: a removed member gets nothing, a changed role gets the new role.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::keys::Keyring;
use super::tokens::{AccessToken, TokenError, TokenIssuer};
use crate::catalog::{refresh_tokens, tenants, users};
use crate::secrets::MasterKey;

/// An access token and the refresh token that renews it.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub access: AccessToken,
    pub refresh_token: String,
    /// Seconds until the sign-in ends (the family's end, not this token's).
    pub refresh_expires_in: u64,
}

/// A refresh that worked: the new pair, for this company with this role.
pub struct Refreshed {
    pub signed: SignedIn,
    pub tenant: tenants::TenantRow,
    pub role: tenancy::Role,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the sign-in has ended; sign in again")]
    Ended,
    #[error("this refresh token was already used; every session of this sign-in was ended")]
    Reused,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

pub struct Sessions {
    pub catalog: PgPool,
    pub master: Arc<MasterKey>,
    pub keys: Arc<Keyring>,
    pub issuer: TokenIssuer,
    /// How long a sign-in lasts, refreshes included.
    pub lifetime: Duration,
}

fn new_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

impl Sessions {
    /// A new sign-in (login, signup, accepted invitation): a new family.
    pub async fn start(
        &self,
        user: Uuid,
        tenant: Uuid,
        role: tenancy::Role,
        epoch: i64,
    ) -> Result<SignedIn, SessionError> {
        let ends = OffsetDateTime::now_utc() + self.lifetime;
        let refresh_token = new_token();
        let hash = self.master.refresh_token_hash(&refresh_token);
        refresh_tokens::insert(&self.catalog, Uuid::new_v4(), user, tenant, &hash, ends).await?;
        let access = self.issuer.issue(&self.keys, user, tenant, role, epoch).await?;
        Ok(SignedIn { access, refresh_token, refresh_expires_in: self.lifetime.as_secs() })
    }

    pub async fn refresh(&self, token: &str) -> Result<Refreshed, SessionError> {
        retry_deadlocks(|| self.try_refresh(token)).await
    }

    async fn try_refresh(&self, token: &str) -> Result<Refreshed, SessionError> {
        let hash = self.master.refresh_token_hash(token);
        let mut tx = self.catalog.begin().await?;
        let row = refresh_tokens::by_hash_for_update(&mut tx, &hash).await?.ok_or(SessionError::Ended)?;
        if row.used_at.is_some() && row.revoked_at.is_none() {
            // Presented twice: whoever holds the other copy must not keep a session either.
            refresh_tokens::revoke_family(&mut *tx, row.family).await?;
            tx.commit().await?;
            tracing::warn!(user = %row.user_id, family = %row.family, "a refresh token was reused; its sign-in is ended");
            return Err(SessionError::Reused);
        }
        let now = OffsetDateTime::now_utc();
        if row.revoked_at.is_some() || row.used_at.is_some() || row.expires_at <= now {
            return Err(SessionError::Ended);
        }
        let membership =
            users::memberships(&mut *tx, row.user_id).await?.into_iter().find(|m| m.tenant_id == row.tenant_id);
        let Some(membership) = membership.filter(|m| m.status == "active") else {
            refresh_tokens::revoke_family(&mut *tx, row.family).await?;
            tx.commit().await?;
            return Err(SessionError::Ended);
        };
        let role = tenancy::Role::parse(&membership.role).ok_or(SessionError::Ended)?;
        refresh_tokens::mark_used(&mut *tx, row.id).await?;
        let refresh_token = new_token();
        let next = self.master.refresh_token_hash(&refresh_token);
        refresh_tokens::insert(&mut *tx, row.family, row.user_id, row.tenant_id, &next, row.expires_at).await?;
        let tenant = tenants::get(&mut *tx, row.tenant_id).await?.ok_or(SessionError::Ended)?;
        tx.commit().await?;
        let access = self.issuer.issue(&self.keys, row.user_id, row.tenant_id, role, membership.token_epoch).await?;
        users::touch_login(&self.catalog, row.user_id).await?;
        let refresh_expires_in = (row.expires_at - now).whole_seconds().max(0) as u64;
        Ok(Refreshed { signed: SignedIn { access, refresh_token, refresh_expires_in }, tenant, role })
    }

    /// Sign-out: the token's whole family ends. Unknown tokens are not an error (nothing to end).
    pub async fn end(&self, token: &str) -> Result<(), SessionError> {
        retry_deadlocks(|| self.try_end(token)).await
    }

    async fn try_end(&self, token: &str) -> Result<(), SessionError> {
        let hash = self.master.refresh_token_hash(token);
        let mut tx = self.catalog.begin().await?;
        if let Some(row) = refresh_tokens::by_hash_for_update(&mut tx, &hash).await? {
            refresh_tokens::revoke_family(&mut *tx, row.family).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Runs `attempt` again when Postgres chose it as a deadlock's victim. Refreshes and sign-outs
/// lock a family in one order, but revoking all of a user's sign-ins (a password change, a
/// removal) locks rows in its own: Postgres aborts one, and running it again settles it.
async fn retry_deadlocks<T, F, Fut>(attempt: F) -> Result<T, SessionError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, SessionError>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(SessionError::Sql(sqlx::Error::Database(e))) if e.code().as_deref() == Some("40P01") && tries < 3 => {
                tries += 1;
                tracing::debug!(tries, "refresh token transaction deadlocked; running it again");
            }
            outcome => return outcome,
        }
    }
}

//! Login: e-mail and password against the catalog, throttled, ending in an access token for
//! one of the user's companies (or the list to choose from).

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use sqlx::PgPool;

use crate::catalog::users::{self, MembershipView};
use crate::identity::gate::{GateError, PasswordGate};
use crate::identity::sessions::{SessionError, Sessions, SignedIn};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong e-mail or password")]
    BadCredentials,
    #[error("too many failed attempts; try again later")]
    Throttled(Duration),
    #[error("the service is busy checking passwords; try again in a moment")]
    Busy(Duration),
    #[error("you are not a member of this company")]
    NotAMember,
    #[error("this company is suspended; contact support")]
    Suspended,
    #[error("you are not a member of any active company")]
    NoCompany,
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

pub enum LoginOutcome {
    Signed {
        token: SignedIn,
        tenant: MembershipView,
    },
    /// The user belongs to several companies and named none.
    Choose(Vec<MembershipView>),
}

pub struct LoginService {
    pub catalog: PgPool,
    pub sessions: Arc<Sessions>,
    pub passwords: Arc<PasswordGate>,
}

impl LoginService {
    pub async fn login(
        &self,
        email: &str,
        password: SecretString,
        tenant_slug: Option<&str>,
        client: Option<&str>,
    ) -> Result<LoginOutcome, LoginError> {
        let email = email.trim().to_lowercase();
        let user = users::by_email(&self.catalog, &email).await?;
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let ok = self.passwords.check(&email, client, password, hash).await.map_err(|e| match e {
            GateError::Throttled(wait) => LoginError::Throttled(wait),
            GateError::Busy(busy) => LoginError::Busy(busy.retry_after),
        })?;
        let user = match (ok, user) {
            (true, Some(user)) => user,
            _ => return Err(LoginError::BadCredentials),
        };

        let memberships = users::memberships(&self.catalog, user.id).await?;
        let chosen = match tenant_slug {
            Some(slug) => memberships.into_iter().find(|m| m.slug == slug).ok_or(LoginError::NotAMember)?,
            None => {
                let (active, suspended): (Vec<_>, Vec<_>) = memberships.into_iter().partition(|m| m.status == "active");
                match active.len() {
                    0 if !suspended.is_empty() => return Err(LoginError::Suspended),
                    0 => return Err(LoginError::NoCompany),
                    1 => active.into_iter().next().expect("one"),
                    _ => return Ok(LoginOutcome::Choose(active)),
                }
            }
        };
        if chosen.status != "active" {
            return Err(LoginError::Suspended);
        }
        // The catalog allows only the roles tokens know; a role this build does not know gets
        // no token rather than a guessed one.
        let role = tenancy::Role::parse(&chosen.role).ok_or(LoginError::NotAMember)?;
        let token = self.sessions.start(user.id, chosen.tenant_id, role, chosen.token_epoch).await?;
        users::touch_login(&self.catalog, user.id).await?;
        Ok(LoginOutcome::Signed { token, tenant: chosen })
    }
}

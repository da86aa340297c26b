//! Access tokens: EdDSA-signed JWTs with the claims of DESIGN.md (`sub`, `tid`, `role`, `iss`,
//! `aud`, `iat`, `nbf`, `exp`, and the `kid` header).

use std::time::Duration;

use jsonwebtoken::{Algorithm, Header, Validation};
use uuid::Uuid;

use super::keys::Keyring;
pub use tenancy::Claims;

#[derive(Debug, Clone)]
pub struct TokenIssuer {
    pub issuer: String,
    pub audience: String,
    pub ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is invalid: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("the token names no key, or a key that is not in the JWKS")]
    UnknownKey,
}

impl TokenIssuer {
    /// A token for `user` in `tenant` with `role`, bound to the membership's `epoch`.
    pub async fn issue(
        &self,
        keys: &Keyring,
        user: Uuid,
        tenant: Uuid,
        role: tenancy::Role,
        epoch: i64,
    ) -> Result<AccessToken, TokenError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: user,
            tid: tenancy::TenantId(tenant),
            role,
            ep: epoch,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            nbf: now,
            exp: now + self.ttl.as_secs() as i64,
        };
        let (kid, key) = keys.current().await;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid);
        let token = jsonwebtoken::encode(&header, &claims, &key)?;
        Ok(AccessToken { token, expires_in: self.ttl.as_secs() })
    }

    /// Verifies a token the way a relying service must: EdDSA only, known `kid`, `exp`, `nbf`,
    /// `iss` and `aud` checked.
    pub async fn verify(&self, keys: &Keyring, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token)?;
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = keys.decoding_key(&kid).await.ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        Ok(jsonwebtoken::decode::<Claims>(token, &key, &validation)?.claims)
    }
}

//! Every password check of the control plane goes through [`PasswordGate::check`]: the
//! throttle reserves the attempt, the hashing pool verifies (against a decoy for an unknown
//! account, so the answer and its timing are the same), a right password gives the
//! reservation back. New passwords are hashed through the same pool.

use secrecy::SecretString;

use super::hashing::{HashingBusy, PasswordHashing};
use super::password;
use super::throttle::PasswordThrottle;

#[derive(Debug, Clone, Copy, thiserror::Error)]
pub enum GateError {
    #[error("too many failed attempts; try again later")]
    Throttled(std::time::Duration),
    #[error(transparent)]
    Busy(#[from] HashingBusy),
}

pub struct PasswordGate {
    pub throttle: PasswordThrottle,
    pub hashing: PasswordHashing,
}

impl PasswordGate {
    /// Whether `password` is the account's (`phc`: its stored hash, `None` when there is no such
    /// account), counted against `email` and `client`.
    pub async fn check(
        &self,
        email: &str,
        client: Option<&str>,
        password: SecretString,
        phc: Option<String>,
    ) -> Result<bool, GateError> {
        let reservation =
            self.throttle.reserve(email, client).await.map_err(|t| GateError::Throttled(t.retry_after))?;
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| password::decoy_hash().to_owned());
        // Refused for load: the attempt never ran, so it does not count.
        let ok = match self.hashing.verify(password, phc).await {
            Ok(ok) => ok && known,
            Err(busy) => {
                self.throttle.not_made(reservation).await;
                return Err(busy.into());
            }
        };
        if ok {
            self.throttle.succeeded(reservation).await;
        }
        Ok(ok)
    }

    /// A hash of a new password.
    pub async fn hash(&self, password: SecretString) -> Result<String, HashingBusy> {
        self.hashing.hash(password).await
    }
}

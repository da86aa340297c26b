//! The master secret and what is derived from it: tenant role passwords (never stored),
//! at-rest encryption of server credentials and signing keys, and request fingerprints.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit as _};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;

use tenancy::TenantRoleKey;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the master key must be at least 32 bytes of base64 (e.g. `openssl rand -base64 32`)")]
    WeakMasterKey,
    #[error("encrypted value is corrupt or was sealed with another master key")]
    Unseal,
}

/// The control plane's master secret. Everything secret the catalog holds is either derived
/// from it or sealed with it, so a copy of the catalog alone reveals no credentials.
pub struct MasterKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// Parses a base64 master key of at least 32 bytes. Longer keys are compressed with HMAC.
    pub fn from_base64(encoded: &SecretString) -> Result<Self, SecretError> {
        let raw = B64.decode(encoded.expose_secret().trim()).map_err(|_| SecretError::WeakMasterKey)?;
        if raw.len() < 32 {
            return Err(SecretError::WeakMasterKey);
        }
        let mut mac = HmacSha256::new_from_slice(b"nexacore master key").expect("hmac takes any key");
        mac.update(&raw);
        let bytes: [u8; 32] = mac.finalize().into_bytes().into();
        Ok(Self(SecretBox::new(Box::new(bytes))))
    }

    /// A fresh random key, base64-encoded, for `ops up` and tests.
    pub fn generate_base64() -> String {
        B64.encode(rand::random::<[u8; 32]>())
    }

    fn derive(&self, purpose: &[u8], input: &[u8]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(self.0.expose_secret()).expect("hmac takes any key");
        mac.update(purpose);
        mac.update(&[0]);
        mac.update(input);
        mac.finalize().into_bytes().into()
    }

    /// The key tenant role passwords are derived from (see `tenancy::TenantRoleKey`). Routers
    /// get this key, not the master key.
    pub fn tenant_role_key(&self) -> TenantRoleKey {
        TenantRoleKey::from_bytes(self.derive(b"tenant-role-key", b"v1"))
    }

    /// A keyed fingerprint of a request, for idempotency checks: equal requests match, and
    /// the stored value reveals nothing about the request (it may contain a password).
    pub fn fingerprint(&self, canonical_request: &[u8]) -> String {
        hex::encode(self.derive(b"request-fingerprint", canonical_request))
    }

    /// A keyed hash of a one-time code (invitation, password reset): the catalog keeps only this,
    /// so whoever reads it cannot use a code. Codes are compared after [`normalize_code`].
    pub fn code_hash(&self, code: &str) -> Vec<u8> {
        self.derive(b"one-time-code", normalize_code(code).as_bytes()).to_vec()
    }

    /// A keyed hash of a refresh token, as the catalog keeps it.
    pub fn refresh_token_hash(&self, token: &str) -> Vec<u8> {
        self.derive(b"refresh-token", token.as_bytes()).to_vec()
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        let key = self.derive(b"at-rest-encryption", b"v1");
        ChaCha20Poly1305::new(Key::from_slice(&key))
    }

    /// Encrypts a secret for storage: a random nonce followed by the ciphertext.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes: [u8; 12] = rand::random();
        let mut out = nonce_bytes.to_vec();
        let sealed = self
            .cipher()
            .encrypt(Nonce::from_slice(&nonce_bytes), plaintext)
            .expect("chacha20poly1305 encryption cannot fail for in-memory buffers");
        out.extend_from_slice(&sealed);
        out
    }

    pub fn unseal(&self, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        if sealed.len() < 12 {
            return Err(SecretError::Unseal);
        }
        let (nonce, ciphertext) = sealed.split_at(12);
        self.cipher().decrypt(Nonce::from_slice(nonce), ciphertext).map_err(|_| SecretError::Unseal)
    }
}

/// A code as typed or pasted: case, spaces and hyphens do not matter.
pub fn normalize_code(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

/// PBKDF2 iterations of a tenant role's SCRAM verifier.
///
/// Iterations only slow down guessing a *low-entropy* password from a stolen verifier or a
/// sniffed exchange. Tenant role passwords are 256-bit HMAC outputs ([`tenancy::TenantRoleKey`]),
/// which no number of guesses finds, so RFC 7677's 4096 (meant for human passwords) buys nothing
/// here while costing the router ≈ 1–2 ms of CPU on every new connection — and a router under a
/// connection budget opens many. Never use this count for a password a person chose.
pub const TENANT_ROLE_SCRAM_ITERATIONS: u32 = 16;

/// A SCRAM-SHA-256 verifier for `CREATE ROLE … PASSWORD '<verifier>'` of a tenant role whose
/// password was derived by [`tenancy::TenantRoleKey::password_for`]. Postgres stores verifiers
/// given in this form as they are, so the plain password never travels to the server nor can
/// appear in its statement log.
pub fn tenant_role_scram_verifier(password: &SecretString) -> String {
    const ITERATIONS: u32 = TENANT_ROLE_SCRAM_ITERATIONS;
    let salt: [u8; 16] = rand::random();
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.expose_secret().as_bytes(), &salt, ITERATIONS, &mut salted);
    let hmac = |key: &[u8], msg: &[u8]| -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(key).expect("hmac takes any key");
        mac.update(msg);
        mac.finalize().into_bytes().into()
    };
    let client_key = hmac(&salted, b"Client Key");
    let stored_key: [u8; 32] = {
        use sha2::Digest as _;
        Sha256::digest(client_key).into()
    };
    let server_key = hmac(&salted, b"Server Key");
    format!("SCRAM-SHA-256${ITERATIONS}:{}${}:{}", B64.encode(salt), B64.encode(stored_key), B64.encode(server_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::from_base64(&SecretString::from(MasterKey::generate_base64())).unwrap()
    }

    #[test]
    fn short_master_keys_are_refused() {
        let short = SecretString::from(B64.encode([1u8; 16]));
        assert!(matches!(MasterKey::from_base64(&short), Err(SecretError::WeakMasterKey)));
    }

    #[test]
    fn sealed_values_round_trip_and_fail_under_another_key() {
        let (a, b) = (key(), key());
        let sealed = a.seal(b"postgres://u:p@h/db");
        assert_eq!(a.unseal(&sealed).unwrap(), b"postgres://u:p@h/db");
        assert!(b.unseal(&sealed).is_err());
    }

    #[test]
    fn the_role_key_is_stable_per_master_key() {
        let (a, b) = (key(), key());
        let role = tenancy::RoleName::parse("t_a").unwrap();
        let pw = |k: &MasterKey| k.tenant_role_key().password_for(&role).expose_secret().to_owned();
        assert_eq!(pw(&a), pw(&a));
        assert_ne!(pw(&a), pw(&b));
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        assert_eq!(format!("{:?}", key()), "MasterKey(<redacted>)");
    }
}

//! Password hashing (argon2id at OWASP's minimum parameters or stronger) and strength rules.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};

/// OWASP's minimum for argon2id: 19 MiB of memory, 2 iterations, 1 lane.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const LANES: u32 = 1;

pub use api_types::password::{MAX_LEN, MIN_LEN, check_strength};

fn hasher() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(MEMORY_KIB, ITERATIONS, LANES, None).expect("valid argon2 parameters"),
    )
}

/// Hashes a password into a PHC string. CPU-heavy (tens of milliseconds): call it from
/// `spawn_blocking`, never on an async worker.
pub fn hash(password: &SecretString) -> String {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes is a valid salt");
    hasher()
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .expect("argon2 hashing of an in-memory password cannot fail")
        .to_string()
}

/// Checks a password against a stored hash. A malformed hash verifies nothing.
pub fn verify(password: &SecretString, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else { return false };
    hasher().verify_password(password.expose_secret().as_bytes(), &parsed).is_ok()
}

/// A hash of a random password, verified against when the user does not exist, so a login
/// for an unknown e-mail takes as long as one with a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash(&SecretString::from(hex::encode(rand::random::<[u8; 16]>()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password() {
        let h = hash(&SecretString::from("Tr0ub4dor&3x!"));
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify(&SecretString::from("Tr0ub4dor&3x!"), &h));
        assert!(!verify(&SecretString::from("Tr0ub4dor&3x?"), &h));
        assert!(!verify(&SecretString::from("x"), "not a hash"));
    }
}

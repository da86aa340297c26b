//! Password hashing (argon2id at OWASP's minimum parameters or stronger) and strength rules.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};

/// OWASP's minimum for argon2id: 19 MiB of memory, 2 iterations, 1 lane.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const LANES: u32 = 1;

pub const MIN_LEN: usize = 12;
pub const MAX_LEN: usize = 128;

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

const COMMON: &[&str] = &[
    "password", "passw0rd", "123456", "qwerty", "letmein", "welcome", "admin", "iloveyou", "monkey", "dragon",
    "sunshine", "football", "baseball", "master", "abc123", "changeme", "trustno1",
];

/// Checks a new password; the error says what to change. `context` holds words the password
/// must not contain (the e-mail's local part, the company's slug).
pub fn check_strength(password: &str, context: &[&str]) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(format!("must be at least {MIN_LEN} characters long"));
    }
    if len > MAX_LEN {
        return Err(format!("must be at most {MAX_LEN} characters long"));
    }
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ]
    .iter()
    .filter(|&&present| present)
    .count();
    // Long passphrases are strong without symbol soup.
    if len < 16 && classes < 3 {
        return Err("must mix at least three of: lowercase, uppercase, digits, symbols (or be 16+ characters)".into());
    }
    let distinct = {
        let mut chars: Vec<char> = password.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        chars.len()
    };
    if distinct < 5 {
        return Err("uses too few different characters".into());
    }
    let lower = password.to_lowercase();
    if COMMON.iter().any(|word| lower.contains(word)) {
        return Err("contains a commonly used password".into());
    }
    for word in context.iter().filter(|w| w.len() >= 4) {
        if lower.contains(&word.to_lowercase()) {
            return Err("must not contain your e-mail name or the company's name".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(password: &str, ok: bool) {
        assert_eq!(check_strength(password, &["annsmith", "acme"]).is_ok(), ok, "{password:?}");
    }

    #[test]
    fn strength_rules_accept_strong_and_refuse_weak_passwords() {
        check("Tr0ub4dor&3x!", true);
        check("correct horse battery staple", true);
        check("short1A!", false);
        check("alllowercaseletters", true);
        check("alllowercase", false);
        check("Password1234!", false);
        check("Acme-Corp-2026!", false);
        check("aaaaaaaaaaaaaaaaaaaa", false);
    }

    #[test]
    fn hashes_verify_only_their_password() {
        let h = hash(&SecretString::from("Tr0ub4dor&3x!"));
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify(&SecretString::from("Tr0ub4dor&3x!"), &h));
        assert!(!verify(&SecretString::from("Tr0ub4dor&3x?"), &h));
        assert!(!verify(&SecretString::from("x"), "not a hash"));
    }
}

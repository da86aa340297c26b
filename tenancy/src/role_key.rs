//! Tenant role passwords: derived, never stored. The control plane derives this key from its
//! master key and hands only this key to routers, so a router can log in as tenant roles but
//! cannot unseal anything else the master key protects (such as signing keys).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;

use crate::ids::RoleName;

pub struct TenantRoleKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for TenantRoleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantRoleKey(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the tenant role key must be 64 hex characters")]
pub struct BadRoleKey;

impl TenantRoleKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    /// Parses the hex form (`NEXACORE_TENANT_ROLE_KEY`).
    pub fn from_hex(encoded: &SecretString) -> Result<Self, BadRoleKey> {
        let raw = hex::decode(encoded.expose_secret().trim()).map_err(|_| BadRoleKey)?;
        let bytes: [u8; 32] = raw.try_into().map_err(|_| BadRoleKey)?;
        Ok(Self::from_bytes(bytes))
    }

    /// The hex form, for handing to routers.
    pub fn to_hex(&self) -> SecretString {
        SecretString::from(hex::encode(self.0.expose_secret()))
    }

    /// Seals a realtime event for a wake-up on the catalog's channel: ChaCha20-Poly1305 under a
    /// key derived from this one, with `associated` (tenant, seq, channel) bound to it. Whoever
    /// can `LISTEN` there without this key reads nothing of the event, and a replica delivers
    /// a carried event only if it opens, so no one without the key can inject one either.
    /// Returns base64 of the random nonce followed by the ciphertext.
    pub fn seal_event(&self, associated: &[u8], text: &[u8]) -> String {
        let nonce: [u8; 12] = rand::random();
        let sealed = self
            .event_cipher()
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: text, aad: associated })
            .expect("chacha20poly1305 encryption cannot fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        B64.encode(out)
    }

    /// Opens what [`seal_event`](Self::seal_event) sealed for the same `associated` data; `None`
    /// for anything else (another key, other associated data, tampered or malformed).
    pub fn open_event(&self, associated: &[u8], sealed: &str) -> Option<Vec<u8>> {
        let raw = B64.decode(sealed).ok()?;
        if raw.len() < 12 {
            return None;
        }
        let (nonce, ciphertext) = raw.split_at(12);
        self.event_cipher().decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: associated }).ok()
    }

    fn event_cipher(&self) -> ChaCha20Poly1305 {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose_secret()).expect("hmac takes any key");
        // Domain-separated from role passwords by a prefix no role name can have.
        mac.update(b"nexacore-event-seal\0");
        <ChaCha20Poly1305 as chacha20poly1305::KeyInit>::new(Key::from_slice(&mac.finalize().into_bytes()))
    }

    /// The login password of a tenant's database role.
    pub fn password_for(&self, role: &RoleName) -> SecretString {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose_secret()).expect("hmac takes any key");
        mac.update(role.as_str().as_bytes());
        SecretString::from(hex::encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_events_open_only_with_their_key_and_associated_data() {
        let a = TenantRoleKey::from_bytes([1; 32]);
        let b = TenantRoleKey::from_bytes([2; 32]);
        let sealed = a.seal_event(b"t\n5\nemployees", b"{\"name\":\"Ada\"}");
        assert!(!sealed.contains("Ada"));
        assert_eq!(a.open_event(b"t\n5\nemployees", &sealed).as_deref(), Some(&b"{\"name\":\"Ada\"}"[..]));
        assert_eq!(a.open_event(b"t\n6\nemployees", &sealed), None, "another seq");
        assert_eq!(a.open_event(b"u\n5\nemployees", &sealed), None, "another tenant");
        assert_eq!(b.open_event(b"t\n5\nemployees", &sealed), None, "another key");
        assert_eq!(a.open_event(b"t\n5\nemployees", "not base64!"), None);
        let mut tampered = B64.decode(&sealed).unwrap();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(a.open_event(b"t\n5\nemployees", &B64.encode(tampered)), None);
        assert_ne!(a.seal_event(b"x", b"same"), a.seal_event(b"x", b"same"), "a fresh nonce each time");
    }

    #[test]
    fn passwords_are_stable_and_differ_between_roles_and_keys() {
        let a = TenantRoleKey::from_bytes([1; 32]);
        let b = TenantRoleKey::from_bytes([2; 32]);
        let r1 = RoleName::parse("t_a").unwrap();
        let r2 = RoleName::parse("t_b").unwrap();
        assert_eq!(a.password_for(&r1).expose_secret(), a.password_for(&r1).expose_secret());
        assert_ne!(a.password_for(&r1).expose_secret(), a.password_for(&r2).expose_secret());
        assert_ne!(a.password_for(&r1).expose_secret(), b.password_for(&r1).expose_secret());
        let round = TenantRoleKey::from_hex(&a.to_hex()).unwrap();
        assert_eq!(round.password_for(&r1).expose_secret(), a.password_for(&r1).expose_secret());
        assert_eq!(format!("{a:?}"), "TenantRoleKey(<redacted>)");
    }
}

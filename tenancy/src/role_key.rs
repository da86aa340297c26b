//! Tenant role passwords: derived, never stored. The control plane derives this key from its
//! master key and hands only this key to routers, so a router can log in as tenant roles but
//! cannot unseal anything else the master key protects (such as signing keys).

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

    /// A tag that proves a realtime wake-up was sent by a holder of this key (a router), so
    /// a replica can deliver the event it carries without reading the outbox. Domain-separated
    /// from role passwords by a prefix no role name can have.
    pub fn event_tag(&self, message: &[u8]) -> String {
        hex::encode(self.event_mac(message).finalize().into_bytes())
    }

    /// Checks an [`event_tag`](Self::event_tag) in constant time.
    pub fn verify_event_tag(&self, message: &[u8], tag: &str) -> bool {
        hex::decode(tag).is_ok_and(|tag| self.event_mac(message).verify_slice(&tag).is_ok())
    }

    fn event_mac(&self, message: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose_secret()).expect("hmac takes any key");
        mac.update(b"nexacore-event-wakeup\0");
        mac.update(message);
        mac
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
    fn event_tags_verify_only_the_message_and_key_they_were_made_for() {
        let a = TenantRoleKey::from_bytes([1; 32]);
        let b = TenantRoleKey::from_bytes([2; 32]);
        let tag = a.event_tag(b"t\n5\nemployees\n{}");
        assert!(a.verify_event_tag(b"t\n5\nemployees\n{}", &tag));
        assert!(!a.verify_event_tag(b"t\n6\nemployees\n{}", &tag));
        assert!(!b.verify_event_tag(b"t\n5\nemployees\n{}", &tag));
        assert!(!a.verify_event_tag(b"t\n5\nemployees\n{}", "not hex"));
        assert_ne!(tag, a.password_for(&RoleName::parse("t_a").unwrap()).expose_secret());
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

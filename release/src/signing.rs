//! The operator's side: Ed25519 key pairs as PEM files, key ids, and signing a manifest into the
//! envelope the control plane serves. Key generation takes the 32 secret bytes from the caller
//! (`ops` draws them from the OS), so this crate needs no random source.

use api_types::releases::SignedRelease;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::Digest as _;

use crate::manifest::{Manifest, ManifestError};

/// A key's id: the first 8 bytes of SHA-256 of its 32-byte public key, as 16 hex digits. Derived,
/// never chosen, so an id always names exactly one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    pub fn of(key: &VerifyingKey) -> Self {
        let digest = sha2::Sha256::digest(key.as_bytes());
        Self(hex::encode(&digest[..8]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a PKCS#8 PEM Ed25519 private key")]
    BadPrivateKey,
    #[error("not a PEM Ed25519 public key")]
    BadPublicKey,
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// A new signing key from 32 secret random bytes.
pub fn signing_key_from_secret(secret: [u8; 32]) -> SigningKey {
    SigningKey::from_bytes(&secret)
}

/// `release.key`: PKCS#8 PEM. The caller writes it with mode 0600.
pub fn private_key_pem(key: &SigningKey) -> Result<String, KeyError> {
    key.to_pkcs8_pem(LineEnding::LF).map(|pem| pem.to_string()).map_err(|_| KeyError::BadPrivateKey)
}

pub fn read_private_key_pem(pem: &str) -> Result<SigningKey, KeyError> {
    SigningKey::from_pkcs8_pem(pem).map_err(|_| KeyError::BadPrivateKey)
}

/// `release.pub`: SubjectPublicKeyInfo PEM, the form the trusted-keys file holds.
pub fn public_key_pem(key: &VerifyingKey) -> Result<String, KeyError> {
    key.to_public_key_pem(LineEnding::LF).map_err(|_| KeyError::BadPublicKey)
}

pub fn read_public_key_pem(pem: &str) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_public_key_pem(pem).map_err(|_| KeyError::BadPublicKey)
}

/// Signs the manifest's compact JSON bytes; the envelope carries exactly those bytes.
pub fn sign(manifest: &Manifest, key: &SigningKey) -> Result<SignedRelease, KeyError> {
    let bytes = manifest.to_bytes()?;
    Ok(sign_bytes(&bytes, key))
}

/// Signs bytes as they are (tests use it to sign manifests the builder would refuse).
pub fn sign_bytes(bytes: &[u8], key: &SigningKey) -> SignedRelease {
    let signature = key.sign(bytes);
    SignedRelease {
        manifest: STANDARD.encode(bytes),
        signature: STANDARD.encode(signature.to_bytes()),
        key_id: KeyId::of(&key.verifying_key()).0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_pem_and_ids_are_derived() {
        let key = signing_key_from_secret([7; 32]);
        let private = private_key_pem(&key).unwrap();
        assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"), "{private}");
        assert_eq!(read_private_key_pem(&private).unwrap().to_bytes(), key.to_bytes());
        let public = public_key_pem(&key.verifying_key()).unwrap();
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "{public}");
        assert_eq!(read_public_key_pem(&public).unwrap(), key.verifying_key());
        let id = KeyId::of(&key.verifying_key());
        assert_eq!(id.as_str().len(), 16);
        assert_ne!(id, KeyId::of(&signing_key_from_secret([8; 32]).verifying_key()));
        assert!(read_private_key_pem(&public).is_err());
        assert!(read_public_key_pem("junk").is_err());
    }
}

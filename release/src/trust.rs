//! The app's side: which keys it trusts and what it accepts.
//!
//! Verification runs in a fixed order and nothing is read before the signature holds: decode the
//! envelope, find its key among the trusted ones, verify the signature over the exact bytes
//! received, and only then parse them. The offer rules come after: right platform and channel,
//! not expired, above the installed version, and not below the highest version this install has
//! ever seen (persisted by the caller), so a replayed older manifest — validly signed, not yet
//! expired — is still refused.

use api_types::Version;
use api_types::releases::{Channel, Platform, SignedRelease};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};
use time::OffsetDateTime;

use crate::manifest::{Manifest, ManifestError};
use crate::signing::{KeyError, KeyId, read_public_key_pem};

/// The public keys compiled into the app: the current release key and the next one, so a key can
/// be rotated by shipping the next key in a release signed with the current one. The file holds
/// public keys only.
const COMPILED_IN: &str = include_str!("../trusted-keys.pem");

#[derive(Debug, Clone)]
pub struct TrustedKeys {
    keys: Vec<(KeyId, VerifyingKey)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("the envelope's {0} is not valid base64")]
    Encoding(&'static str),
    #[error("the manifest is signed by an unknown key ({0})")]
    UnknownKey(String),
    #[error("the manifest's signature does not verify")]
    BadSignature,
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// Why a verified manifest is still not installed here.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OfferError {
    #[error("the manifest expired at {0}")]
    Expired(OffsetDateTime),
    #[error("the release is for {0:?}, not this platform")]
    WrongPlatform(Platform),
    #[error("the release is on the {0:?} channel, not this install's")]
    WrongChannel(Channel),
    #[error("version {offered} is not above the installed {installed}")]
    NotNewer { offered: Version, installed: Version },
    #[error("version {offered} is below {highest_seen}, already seen: a replayed older manifest")]
    Replayed { offered: Version, highest_seen: Version },
}

/// What the app knows of itself when it judges an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Installed {
    pub version: Version,
    pub platform: Platform,
    pub channel: Channel,
    /// The highest version any verified manifest ever named here (persisted by the caller).
    pub highest_seen: Version,
}

impl TrustedKeys {
    /// The keys built into this program.
    pub fn compiled_in() -> Self {
        Self::from_pem(COMPILED_IN).expect("trusted-keys.pem holds valid public keys (checked by a test)")
    }

    /// Every `PUBLIC KEY` PEM block in `text`; other text (comments) is ignored.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
        const END: &str = "-----END PUBLIC KEY-----";
        let mut keys = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find(BEGIN) {
            let end = rest[start..].find(END).ok_or(KeyError::BadPublicKey)? + start + END.len();
            let key = read_public_key_pem(&rest[start..end])?;
            keys.push((KeyId::of(&key), key));
            rest = &rest[end..];
        }
        Ok(Self { keys })
    }

    pub fn from_keys(keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        Self { keys: keys.into_iter().map(|k| (KeyId::of(&k), k)).collect() }
    }

    /// These keys and `others` (a key in both is kept once).
    pub fn and(mut self, others: TrustedKeys) -> Self {
        for (id, key) in others.keys {
            if !self.keys.iter().any(|(known, _)| *known == id) {
                self.keys.push((id, key));
            }
        }
        self
    }

    pub fn ids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.iter().map(|(id, _)| id)
    }

    /// Checks the signature over the exact bytes received, then parses them.
    pub fn verify(&self, envelope: &SignedRelease) -> Result<Verified, VerifyError> {
        let bytes = STANDARD.decode(&envelope.manifest).map_err(|_| VerifyError::Encoding("manifest"))?;
        let signature = STANDARD.decode(&envelope.signature).map_err(|_| VerifyError::Encoding("signature"))?;
        let signature = Signature::from_slice(&signature).map_err(|_| VerifyError::BadSignature)?;
        let key = self
            .keys
            .iter()
            .find(|(id, _)| id.as_str() == envelope.key_id)
            .map(|(_, key)| key)
            .ok_or_else(|| VerifyError::UnknownKey(envelope.key_id.chars().take(32).collect()))?;
        // verify_strict: refuses small-order keys and non-canonical signatures (malleability).
        key.verify_strict(&bytes, &signature).map_err(|_| VerifyError::BadSignature)?;
        Ok(Verified { manifest: Manifest::parse(&bytes)?, bytes })
    }
}

/// A manifest whose signature held, with the bytes it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub manifest: Manifest,
    pub bytes: Vec<u8>,
}

impl Verified {
    /// Whether this install may take the release now.
    pub fn offer_to(&self, installed: &Installed, now: OffsetDateTime) -> Result<(), OfferError> {
        let m = &self.manifest;
        if now >= m.expires {
            return Err(OfferError::Expired(m.expires));
        }
        if m.platform != installed.platform {
            return Err(OfferError::WrongPlatform(m.platform));
        }
        if m.channel != installed.channel {
            return Err(OfferError::WrongChannel(m.channel));
        }
        if m.version < installed.highest_seen {
            return Err(OfferError::Replayed { offered: m.version, highest_seen: installed.highest_seen });
        }
        if m.version <= installed.version {
            return Err(OfferError::NotNewer { offered: m.version, installed: installed.version });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tests::sample;
    use crate::signing::{public_key_pem, sign, sign_bytes, signing_key_from_secret};
    use time::macros::datetime;

    fn key(n: u8) -> ed25519_dalek::SigningKey {
        signing_key_from_secret([n; 32])
    }

    fn installed(version: &str, highest: &str) -> Installed {
        Installed {
            version: version.parse().unwrap(),
            platform: Platform::LinuxX86_64,
            channel: Channel::Stable,
            highest_seen: highest.parse().unwrap(),
        }
    }

    const NOW: OffsetDateTime = datetime!(2026-12-04 12:00 UTC);

    #[test]
    fn the_compiled_in_file_holds_two_public_keys_and_nothing_secret() {
        let keys = TrustedKeys::compiled_in();
        assert_eq!(keys.ids().count(), 2, "current and next");
        assert!(!COMPILED_IN.contains("PRIVATE"));
    }

    #[test]
    fn a_manifest_signed_by_a_trusted_key_verifies_and_is_offered() {
        let trusted = TrustedKeys::from_keys([key(1).verifying_key(), key(2).verifying_key()]);
        for signer in [key(1), key(2)] {
            let verified = trusted.verify(&sign(&sample("1.3.0"), &signer).unwrap()).unwrap();
            assert_eq!(verified.manifest, sample("1.3.0"));
            assert_eq!(verified.offer_to(&installed("1.2.0", "1.2.0"), NOW), Ok(()));
        }
    }

    #[test]
    fn pem_text_with_comments_yields_its_keys() {
        let text = format!(
            "# current\n{}\n# next\n{}",
            public_key_pem(&key(1).verifying_key()).unwrap(),
            public_key_pem(&key(2).verifying_key()).unwrap()
        );
        let trusted = TrustedKeys::from_pem(&text).unwrap();
        assert_eq!(trusted.ids().count(), 2);
        assert!(trusted.verify(&sign(&sample("1.0.0"), &key(2)).unwrap()).is_ok());
        let more = trusted.and(TrustedKeys::from_keys([key(2).verifying_key(), key(3).verifying_key()]));
        assert_eq!(more.ids().count(), 3, "a key in both is kept once");
        assert!(more.verify(&sign(&sample("1.0.0"), &key(3)).unwrap()).is_ok());
    }

    #[test]
    fn tampered_envelopes_are_refused_before_anything_is_parsed() {
        let trusted = TrustedKeys::from_keys([key(1).verifying_key()]);
        let good = sign(&sample("1.3.0"), &key(1)).unwrap();

        let mut other_bytes = good.clone();
        let tampered = String::from_utf8(STANDARD.decode(&good.manifest).unwrap())
            .unwrap()
            .replace(r#""rollout_percent":100"#, r#""rollout_percent":99"#);
        other_bytes.manifest = STANDARD.encode(tampered);
        assert_eq!(trusted.verify(&other_bytes), Err(VerifyError::BadSignature));

        let mut flipped = good.clone();
        let mut sig = STANDARD.decode(&good.signature).unwrap();
        sig[0] ^= 1;
        flipped.signature = STANDARD.encode(sig);
        assert_eq!(trusted.verify(&flipped), Err(VerifyError::BadSignature));

        let unknown = sign(&sample("1.3.0"), &key(9)).unwrap();
        assert!(matches!(trusted.verify(&unknown), Err(VerifyError::UnknownKey(_))));

        // A key id relabelled to a trusted key does not help a foreign signature.
        let mut relabelled = unknown.clone();
        relabelled.key_id = good.key_id.clone();
        assert_eq!(trusted.verify(&relabelled), Err(VerifyError::BadSignature));

        let mut garbage = good.clone();
        garbage.manifest = "***".into();
        assert_eq!(trusted.verify(&garbage), Err(VerifyError::Encoding("manifest")));
        let mut short = good;
        short.signature = STANDARD.encode([0u8; 10]);
        assert_eq!(trusted.verify(&short), Err(VerifyError::BadSignature));

        // Signed but not a manifest: the signature holds, the content is still refused.
        let junk = sign_bytes(b"{\"hello\":1}", &key(1));
        assert!(matches!(trusted.verify(&junk), Err(VerifyError::Manifest(_))));
    }

    #[test]
    fn expired_older_replayed_and_foreign_manifests_are_not_offered() {
        let trusted = TrustedKeys::from_keys([key(1).verifying_key()]);
        let check = |manifest: Manifest, installed: Installed| {
            trusted.verify(&sign(&manifest, &key(1)).unwrap()).unwrap().offer_to(&installed, NOW)
        };
        let mut expired = sample("1.3.0");
        expired.expires = datetime!(2026-12-04 11:59 UTC);
        expired.pub_date = datetime!(2026-11-01 00:00 UTC);
        assert!(matches!(check(expired, installed("1.2.0", "1.2.0")), Err(OfferError::Expired(_))));
        assert!(matches!(check(sample("1.2.0"), installed("1.2.0", "1.2.0")), Err(OfferError::NotNewer { .. })));
        assert!(matches!(check(sample("1.1.0"), installed("1.0.0", "1.0.0")), Ok(())));
        // Installed 1.0.0 after a rollback but has seen 1.3.0: an older signed 1.1.0 is a replay.
        assert!(matches!(check(sample("1.1.0"), installed("1.0.0", "1.3.0")), Err(OfferError::Replayed { .. })));
        let mut windows = sample("1.3.0");
        windows.platform = Platform::WindowsX86_64;
        assert!(matches!(check(windows, installed("1.2.0", "1.2.0")), Err(OfferError::WrongPlatform(_))));
        let mut beta = sample("1.3.0");
        beta.channel = Channel::Beta;
        assert!(matches!(check(beta, installed("1.2.0", "1.2.0")), Err(OfferError::WrongChannel(_))));
    }
}

//! The release manifest: the one JSON document the operator signs and the app trusts. Every
//! field that decides what the app does (version, platform, hash, size, expiry) is inside the
//! signature; the server may only choose *whether* to offer it, never change what it says.

use api_types::Version;
use api_types::releases::{Channel, Platform};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A signed description of one build for one platform and channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(with = "version_text")]
    pub version: Version,
    pub channel: Channel,
    pub platform: Platform,
    #[serde(with = "time::serde::rfc3339")]
    pub pub_date: OffsetDateTime,
    /// After this instant the manifest is refused: a captured manifest cannot be replayed forever.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub mandatory: bool,
    /// Installs below this version must update before they may go on (the "Update required" path).
    #[serde(default, with = "optional_version_text")]
    pub min_supported: Option<Version>,
    /// 0–100: the share of installs offered this release (see [`crate::rollout`]).
    pub rollout_percent: u8,
    /// Where the zip is: an absolute `http(s)` URL or a path on the control plane (`/releases/…`).
    pub url: String,
    /// The zip's exact size in bytes.
    pub size: u64,
    /// The zip's SHA-256, lowercase hex.
    pub sha256: Sha256Digest,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("manifest is not valid JSON of the expected shape: {0}")]
    Malformed(String),
    #[error("manifest field `{field}` {problem}")]
    Invalid { field: &'static str, problem: &'static str },
}

impl Manifest {
    /// Parses the signed bytes and checks what serde cannot: ranges and the URL's form.
    pub fn parse(bytes: &[u8]) -> Result<Self, ManifestError> {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        manifest.check()?;
        Ok(manifest)
    }

    /// The bytes to sign: compact JSON. Verification never re-serialises; it checks the bytes it got.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ManifestError> {
        self.check()?;
        serde_json::to_vec(self).map_err(|e| ManifestError::Malformed(e.to_string()))
    }

    pub fn check(&self) -> Result<(), ManifestError> {
        let invalid = |field, problem| Err(ManifestError::Invalid { field, problem });
        if self.rollout_percent > 100 {
            return invalid("rollout_percent", "must be between 0 and 100");
        }
        if self.expires <= self.pub_date {
            return invalid("expires", "must be after pub_date");
        }
        if self.size == 0 {
            return invalid("size", "must be above 0");
        }
        if !(self.url.starts_with("https://") || self.url.starts_with("http://") || self.url.starts_with('/')) {
            return invalid("url", "must be an http(s) URL or a path starting with /");
        }
        if self.min_supported.is_some_and(|min| min > self.version) {
            return invalid("min_supported", "must not be above version");
        }
        Ok(())
    }
}

/// A SHA-256 digest, written as 64 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Self(sha2::Sha256::digest(bytes).into())
    }

    pub fn parse(hex_text: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_text, &mut out).ok()?;
        Some(Self(out))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).ok_or_else(|| serde::de::Error::custom("must be 64 hex digits"))
    }
}

mod version_text {
    use api_types::Version;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Version, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Version, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

mod optional_version_text {
    use api_types::Version;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Version>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Version>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => text.parse().map(Some).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use time::macros::datetime;

    pub fn sample(version: &str) -> Manifest {
        Manifest {
            version: version.parse().unwrap(),
            channel: Channel::Stable,
            platform: Platform::LinuxX86_64,
            pub_date: datetime!(2026-12-01 00:00 UTC),
            expires: datetime!(2027-03-01 00:00 UTC),
            notes: "Faster sign-in".into(),
            mandatory: false,
            min_supported: None,
            rollout_percent: 100,
            url: format!("/releases/artifacts/stable/linux-x86_64/{version}.zip"),
            size: 1234,
            sha256: Sha256Digest::of(b"zip"),
        }
    }

    #[test]
    fn a_manifest_round_trips_through_its_signed_bytes() {
        let manifest = sample("1.2.3");
        let bytes = manifest.to_bytes().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(r#""version":"1.2.3""#), "{text}");
        assert!(text.contains(r#""platform":"linux-x86_64""#), "{text}");
        assert_eq!(Manifest::parse(&bytes).unwrap(), manifest);
    }

    #[test]
    fn out_of_range_fields_are_refused_by_name() {
        let check = |edit: fn(&mut Manifest), field: &str| {
            let mut m = sample("1.0.0");
            edit(&mut m);
            match m.to_bytes() {
                Err(ManifestError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        };
        check(|m| m.rollout_percent = 101, "rollout_percent");
        check(|m| m.expires = m.pub_date, "expires");
        check(|m| m.size = 0, "size");
        check(|m| m.url = "file:///etc/passwd".into(), "url");
        check(|m| m.min_supported = Some("2.0.0".parse().unwrap()), "min_supported");
    }

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        for bad in [&b""[..], b"{}", b"[1]", br#"{"version":"x"}"#] {
            assert!(matches!(Manifest::parse(bad), Err(ManifestError::Malformed(_))), "{bad:?}");
        }
        let mut text = String::from_utf8(sample("1.0.0").to_bytes().unwrap()).unwrap();
        text = text.replace(&Sha256Digest::of(b"zip").to_hex(), "abc");
        assert!(matches!(Manifest::parse(text.as_bytes()), Err(ManifestError::Malformed(_))));
    }
}

//! Desktop releases on the wire: the signed envelope the app verifies, the channel and platform
//! names, and what clients report and operators see. The signed manifest itself is defined in
//! the `release` crate: on the wire it is opaque base64, verified before it is read.

use serde::{Deserialize, Serialize};

/// A release channel: every install follows one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[cfg_attr(feature = "openapi", oai(rename_all = "lowercase"))]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    #[default]
    Stable,
    Beta,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Channel::Stable, Channel::Beta];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Stable => "stable",
            Channel::Beta => "beta",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }
}

/// The operating system and processor a build runs on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
pub enum Platform {
    #[default]
    #[serde(rename = "linux-x86_64")]
    #[cfg_attr(feature = "openapi", oai(rename = "linux-x86_64"))]
    LinuxX86_64,
    #[serde(rename = "windows-x86_64")]
    #[cfg_attr(feature = "openapi", oai(rename = "windows-x86_64"))]
    WindowsX86_64,
    #[serde(rename = "macos-aarch64")]
    #[cfg_attr(feature = "openapi", oai(rename = "macos-aarch64"))]
    MacosAarch64,
}

impl Platform {
    pub const ALL: [Platform; 3] = [Platform::LinuxX86_64, Platform::WindowsX86_64, Platform::MacosAarch64];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::LinuxX86_64 => "linux-x86_64",
            Platform::WindowsX86_64 => "windows-x86_64",
            Platform::MacosAarch64 => "macos-aarch64",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }

    /// The platform this program was built for, when it is one we ship.
    pub fn current() -> Option<Self> {
        match (std::env::consts::OS, std::env::consts::ARCH) {
            ("linux", "x86_64") => Some(Platform::LinuxX86_64),
            ("windows", "x86_64") => Some(Platform::WindowsX86_64),
            ("macos", "aarch64") => Some(Platform::MacosAarch64),
            _ => None,
        }
    }
}

/// `GET /releases/latest`: the manifest exactly as it was signed, so the client verifies the
/// bytes it received (no canonical form to agree on), the Ed25519 signature over them, and which
/// trusted key made it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct SignedRelease {
    /// Base64 (standard, padded) of the signed manifest's JSON bytes.
    pub manifest: String,
    /// Base64 (standard, padded) of the 64-byte Ed25519 signature over those bytes.
    pub signature: String,
    /// The signing key's id: the first 8 bytes of SHA-256 of its public key, in hex.
    pub key_id: String,
}

/// What an install reports about a release, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[cfg_attr(feature = "openapi", oai(rename_all = "snake_case"))]
#[serde(rename_all = "snake_case")]
pub enum ReleaseEventKind {
    Checked,
    Downloaded,
    Verified,
    Applied,
    FirstRunOk,
    RolledBack,
}

impl ReleaseEventKind {
    pub const ALL: [ReleaseEventKind; 6] = [
        ReleaseEventKind::Checked,
        ReleaseEventKind::Downloaded,
        ReleaseEventKind::Verified,
        ReleaseEventKind::Applied,
        ReleaseEventKind::FirstRunOk,
        ReleaseEventKind::RolledBack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseEventKind::Checked => "checked",
            ReleaseEventKind::Downloaded => "downloaded",
            ReleaseEventKind::Verified => "verified",
            ReleaseEventKind::Applied => "applied",
            ReleaseEventKind::FirstRunOk => "first_run_ok",
            ReleaseEventKind::RolledBack => "rolled_back",
        }
    }
}

/// `POST /releases/events` (public): one install's report on one release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
pub struct ReleaseEvent {
    pub version: String,
    pub channel: Channel,
    pub platform: Platform,
    /// The install's random id (at most 64 characters).
    pub install_id: String,
    pub kind: ReleaseEventKind,
    /// Why, for `rolled_back` (at most 500 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none))]
    pub reason: Option<String>,
}

/// How many of each event a release has received.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct ReleaseEventCounts {
    pub checked: i64,
    pub downloaded: i64,
    pub verified: i64,
    pub applied: i64,
    pub first_run_ok: i64,
    pub rolled_back: i64,
}

/// Where a release stands: offered (`active`), held back (`paused`), or withdrawn (`yanked`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[cfg_attr(feature = "openapi", oai(rename_all = "lowercase"))]
#[serde(rename_all = "lowercase")]
pub enum ReleaseState {
    #[default]
    Active,
    Paused,
    Yanked,
}

/// A published release as operators see it (`GET /releases`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct ReleaseView {
    pub version: String,
    pub channel: Channel,
    pub platform: Platform,
    pub state: ReleaseState,
    /// Why it is paused or yanked (`rollbacks` when it paused itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none))]
    pub state_reason: Option<String>,
    pub rollout_percent: u8,
    pub mandatory: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none))]
    pub min_supported: Option<String>,
    pub size: u64,
    pub sha256: String,
    pub key_id: String,
    #[cfg_attr(feature = "openapi", oai(default))]
    pub published_at: String,
    pub events: ReleaseEventCounts,
}

/// `PUT /releases/{version}/rollout`: the share of installs offered the release from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
pub struct RolloutRequest {
    pub percent: u8,
}

//! Health and platform status, as both services and the app read them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct Health {
    pub status: String,
    pub version: String,
    /// Which service answers: [`Health::CONTROL_PLANE`] or [`Health::ROUTER`] (so a client given
    /// the router's address can say which address to enter instead).
    pub service: String,
}

impl Health {
    pub const CONTROL_PLANE: &str = "control-plane";
    pub const ROUTER: &str = "tenant-router";
}

/// `GET /ready`: whether the service can serve now, and each check behind the answer (`200`
/// when every check passes, else `503`), for load balancers and orchestrators.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct Readiness {
    pub ready: bool,
    pub checks: Vec<ReadinessCheck>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct ReadinessCheck {
    /// `catalog`, `listener`, `signing_keys`.
    pub name: String,
    pub ok: bool,
}

impl Readiness {
    pub fn of(checks: Vec<ReadinessCheck>) -> Self {
        Self { ready: checks.iter().all(|c| c.ok), checks }
    }
}

/// The client versions the platform serves (the live socket's `client_versions` notice).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientVersions {
    pub min_client_version: String,
    pub latest_version: String,
}

/// `GET /system/status`: maintenance and the client versions served.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none))]
#[serde(default)]
pub struct SystemStatus {
    pub maintenance_mode: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub min_client_version: String,
    pub latest_version: String,
}

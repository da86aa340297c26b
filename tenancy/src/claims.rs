//! The claims of a NexaCore access token (an EdDSA-signed JWT with a `kid` header).

use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: Uuid,
    /// The tenant's id: the router serves this tenant's database and no other.
    pub tid: Uuid,
    /// The user's role in this tenant: admin, manager or staff.
    pub role: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

/// The defaults both services use unless configured otherwise.
pub const DEFAULT_ISSUER: &str = "nexacore-control-plane";
pub const DEFAULT_AUDIENCE: &str = "nexacore-api";

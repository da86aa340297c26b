//! The claims of a NexaCore access token (an EdDSA-signed JWT with a `kid` header).

use uuid::Uuid;

use crate::TenantId;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: Uuid,
    /// The tenant's id: the router serves this tenant's database and no other.
    pub tid: TenantId,
    /// The user's role in this tenant. A token with any other role does not verify.
    pub role: Role,
    /// The membership's token epoch when the token was issued: routers refuse the token once
    /// the membership is gone or has another epoch (its role or the password changed). Tokens
    /// from before epochs existed carry none (0), which no membership has.
    #[serde(default)]
    pub ep: i64,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

/// The defaults both services use unless configured otherwise.
pub const DEFAULT_ISSUER: &str = "nexacore-control-plane";
pub const DEFAULT_AUDIENCE: &str = "nexacore-api";

/// A member's role inside one company: the wire type, so a token, the API and the desktop
/// speak of roles with one definition.
pub use api_types::people::Role;

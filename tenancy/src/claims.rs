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

/// A member's role inside one company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Manager,
    Staff,
}

impl Role {
    /// As stored in `memberships.role` and carried in tokens.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Manager => "manager",
            Self::Staff => "staff",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Admin, Self::Manager, Self::Staff].into_iter().find(|r| r.as_str() == raw)
    }

    /// Admins and managers change records; staff only read.
    pub const fn may_write(self) -> bool {
        matches!(self, Self::Admin | Self::Manager)
    }

    /// Only admins delete records.
    pub const fn may_delete(self) -> bool {
        matches!(self, Self::Admin)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_and_write_their_catalog_text_and_a_token_with_another_role_fails() {
        for role in [Role::Admin, Role::Manager, Role::Staff] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            assert_eq!(serde_json::to_string(&role).unwrap(), format!("\"{role}\""));
        }
        assert_eq!(Role::parse("root"), None);
        assert!(serde_json::from_str::<Role>("\"root\"").is_err());
    }
}

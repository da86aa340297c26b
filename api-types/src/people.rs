//! A company's people: roles, members, invitations, and each user's own password
//! (`/users`, `/invitations`, `/auth/password…` on the control plane).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// A member's role in one company. Carried in access tokens and stored in memberships.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[cfg_attr(feature = "openapi", oai(rename_all = "lowercase"))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including people and deletions.
    Admin,
    /// Reads and changes records, reads the member list; deletes nothing.
    Manager,
    /// Reads only.
    #[default]
    Staff,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Manager, Role::Staff];

    /// As stored in `memberships.role` and carried in tokens.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Manager => "manager",
            Self::Staff => "staff",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }

    /// Admins and managers change records; staff only read.
    pub const fn may_write(self) -> bool {
        matches!(self, Self::Admin | Self::Manager)
    }

    /// Only admins delete records.
    pub const fn may_delete(self) -> bool {
        matches!(self, Self::Admin)
    }

    /// Admins and managers see the member list; only admins change it.
    pub const fn may_see_people(self) -> bool {
        matches!(self, Self::Admin | Self::Manager)
    }

    pub const fn may_manage_people(self) -> bool {
        matches!(self, Self::Admin)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /invitations`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none))]
pub struct NewInvitation {
    /// An e-mail address whose domain has a dot.
    #[cfg_attr(
        feature = "openapi",
        oai(validator(min_length = 3, max_length = 254, pattern = "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$"))
    )]
    pub email: String,
    pub role: Role,
    /// Shown in the e-mail and proposed when the invitee accepts; 1–100 characters.
    #[cfg_attr(feature = "openapi", oai(validator(min_length = 1, max_length = 100, pattern = "\\S")))]
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::not_null")]
    pub full_name: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[cfg_attr(feature = "openapi", oai(rename_all = "lowercase"))]
#[serde(rename_all = "lowercase")]
pub enum InvitationStatus {
    #[default]
    Pending,
    Accepted,
    Revoked,
    Expired,
}

/// An invitation as admins see it (never its code).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct Invitation {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub full_name: Option<String>,
    pub status: InvitationStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Default for Invitation {
    fn default() -> Self {
        Self {
            id: Uuid::nil(),
            email: String::new(),
            role: Role::Staff,
            full_name: None,
            status: InvitationStatus::Pending,
            expires_at: OffsetDateTime::UNIX_EPOCH,
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }
}

/// `POST /invitations/accept` (public). Answers `201` with a [`crate::session::LoginToken`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
pub struct AcceptInvitation {
    /// The code from the invitation e-mail.
    #[cfg_attr(feature = "openapi", oai(write_only, validator(min_length = 1, max_length = 200)))]
    pub code: String,
    /// A new account: the password to set (the signup rules). An existing account: its password.
    #[cfg_attr(feature = "openapi", oai(write_only, validator(min_length = 1, max_length = 128)))]
    pub password: String,
    /// 1–100 characters; ignored for an existing account.
    #[cfg_attr(feature = "openapi", oai(validator(min_length = 1, max_length = 100, pattern = "\\S")))]
    pub full_name: String,
}

/// One member of the company (`GET /users`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct Member {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_login_at: Option<OffsetDateTime>,
}

impl Default for Member {
    fn default() -> Self {
        Self {
            id: Uuid::nil(),
            email: String::new(),
            full_name: String::new(),
            role: Role::Staff,
            created_at: OffsetDateTime::UNIX_EPOCH,
            last_login_at: None,
        }
    }
}

/// `PATCH /users/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
pub struct RoleChange {
    pub role: Role,
}

/// `POST /auth/password`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
pub struct PasswordChange {
    #[cfg_attr(feature = "openapi", oai(write_only, validator(min_length = 1, max_length = 128)))]
    pub current_password: String,
    /// The signup rules: at least 12 characters mixing three kinds (or 16+).
    #[cfg_attr(feature = "openapi", oai(write_only, validator(min_length = 12, max_length = 128)))]
    pub new_password: String,
}

/// `POST /auth/password-reset`: always `202`, whether or not the address has an account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
pub struct PasswordResetRequest {
    #[cfg_attr(feature = "openapi", oai(validator(min_length = 3, max_length = 254)))]
    pub email: String,
}

/// `POST /auth/password-reset/confirm`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
pub struct PasswordResetConfirm {
    #[cfg_attr(feature = "openapi", oai(write_only, validator(min_length = 1, max_length = 200)))]
    pub code: String,
    #[cfg_attr(feature = "openapi", oai(write_only, validator(min_length = 12, max_length = 128)))]
    pub new_password: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_and_write_their_catalog_text_and_nothing_else() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            assert_eq!(serde_json::to_string(&role).unwrap(), format!("\"{role}\""));
        }
        assert_eq!(Role::parse("root"), None);
        assert!(serde_json::from_str::<Role>("\"root\"").is_err());
    }

    #[test]
    fn permissions_grow_from_staff_to_admin() {
        assert!(!Role::Staff.may_write() && !Role::Staff.may_see_people());
        assert!(Role::Manager.may_write() && !Role::Manager.may_delete() && !Role::Manager.may_manage_people());
        assert!(Role::Manager.may_see_people());
        assert!(Role::Admin.may_delete() && Role::Admin.may_manage_people());
    }
}

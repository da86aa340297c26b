//! Tenant ids and the SQL identifiers derived from them, and a tenant's lifecycle status.

use std::fmt;

use uuid::Uuid;

/// A tenant's id: a UUIDv7, so ids sort by creation time and page well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct TenantId(pub Uuid);

impl TenantId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// The name of this tenant's database and of its login role. Derived from the id, never
    /// from user text, so no request can influence an identifier that reaches DDL.
    pub fn database_name(&self) -> DbName {
        DbName(format!("t_{}", self.0.simple()))
    }

    pub fn role_name(&self) -> RoleName {
        RoleName(format!("t_{}", self.0.simple()))
    }

    /// The key of this tenant's provisioning advisory lock (see `provision`).
    pub fn lock_key(&self) -> i64 {
        let bytes = self.0.as_bytes();
        i64::from_be_bytes(bytes[8..16].try_into().expect("16-byte uuid"))
    }
}

impl Default for TenantId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::str::FromStr for TenantId {
    type Err = uuid::Error;

    fn from_str(raw: &str) -> Result<Self, uuid::Error> {
        raw.parse().map(Self)
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A validated SQL identifier: lowercase ASCII letters, digits and underscores, starting with a
/// letter or underscore, at most 63 bytes (Postgres's limit). `quoted()` is the only way one
/// reaches SQL text.
macro_rules! sql_identifier {
    ($name:ident, $what:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, String> {
                let ok_first = raw.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
                let ok_rest = raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if raw.is_empty() || raw.len() > 63 || !ok_first || !ok_rest {
                    return Err(format!(
                        "{} {raw:?} must be 1–63 characters of a-z, 0-9 and _ and start with a letter or _",
                        $what
                    ));
                }
                Ok(Self(raw.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The identifier in double quotes, ready for SQL. The character set checked in
            /// `parse` contains no quote, so no escaping can be needed.
            pub fn quoted(&self) -> String {
                format!("\"{}\"", self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

sql_identifier!(DbName, "database name");
sql_identifier!(RoleName, "role name");

/// The status of a tenant in the catalog; the string forms are stored in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Provisioning,
    Active,
    Suspended,
    Deleting,
    Deleted,
}

impl TenantStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "provisioning" => Self::Provisioning,
            "active" => Self::Active,
            "suspended" => Self::Suspended,
            "deleting" => Self::Deleting,
            "deleted" => Self::Deleted,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_refuse_anything_that_needs_quoting() {
        assert!(DbName::parse("t_0a1b").is_ok());
        for bad in ["", "T_upper", "1abc", "a\"b", "a b", "a;drop", &"a".repeat(64)] {
            assert!(DbName::parse(bad).is_err(), "{bad:?}");
        }
        let id = TenantId::new();
        assert!(DbName::parse(id.database_name().as_str()).is_ok());
        assert_eq!(id.database_name().quoted(), format!("\"t_{}\"", id.0.simple()));
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in [
            TenantStatus::Provisioning,
            TenantStatus::Active,
            TenantStatus::Suspended,
            TenantStatus::Deleting,
            TenantStatus::Deleted,
        ] {
            assert_eq!(TenantStatus::parse(s.as_str()), Some(s));
        }
    }
}

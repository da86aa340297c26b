//! Departments and the chart of accounts on the wire: the `GET` answers (also what live
//! `departments`/`accounts` events carry) and the create bodies.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct Department {
    pub id: Uuid,
    /// Unique ignoring case.
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Default for Department {
    fn default() -> Self {
        Self {
            id: Uuid::nil(),
            name: String::new(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }
}

/// `POST /departments`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[cfg_attr(feature = "openapi", oai(deny_unknown_fields))]
#[serde(deny_unknown_fields)]
pub struct NewDepartment {
    #[cfg_attr(feature = "openapi", oai(validator(min_length = 1, max_length = 100, pattern = "\\S")))]
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none))]
#[serde(default)]
pub struct Account {
    pub id: Uuid,
    /// The natural key accountants use, e.g. `1200`.
    pub code: String,
    pub name: String,
    /// `asset`, `liability`, `equity`, `income` or `expense`.
    pub account_type: String,
    /// The code of the parent (summary) account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_code: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Default for Account {
    fn default() -> Self {
        Self {
            id: Uuid::nil(),
            code: String::new(),
            name: String::new(),
            account_type: String::new(),
            parent_code: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }
}

/// `POST /accounts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none, deny_unknown_fields))]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// Letters, digits, `.` and `-`, starting with a letter or digit.
    #[cfg_attr(
        feature = "openapi",
        oai(validator(min_length = 1, max_length = 20, pattern = "^[A-Za-z0-9][A-Za-z0-9.-]*$"))
    )]
    pub code: String,
    #[cfg_attr(feature = "openapi", oai(validator(min_length = 1, max_length = 200, pattern = "\\S")))]
    pub name: String,
    /// `asset`, `liability`, `equity`, `income` or `expense`.
    #[cfg_attr(feature = "openapi", oai(validator(pattern = "^(asset|liability|equity|income|expense)$")))]
    pub account_type: String,
    /// The code of an existing account, not this one; `null` or absent: none.
    #[cfg_attr(
        feature = "openapi",
        oai(validator(min_length = 1, max_length = 20, pattern = "^[A-Za-z0-9][A-Za-z0-9.-]*$"))
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_code: Option<String>,
}

//! Signing in: `POST /auth/login` and what it (and a signup) answers.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST /auth/login`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none))]
pub struct LoginRequest {
    #[cfg_attr(feature = "openapi", oai(validator(min_length = 1, pattern = "\\S")))]
    pub email: String,
    #[cfg_attr(feature = "openapi", oai(write_only, validator(min_length = 1)))]
    pub password: String,
    /// The company's slug; required when the user belongs to several.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::not_null")]
    pub tenant: Option<String>,
}

/// A company as its users see it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct TenantSummary {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub status: String,
}

/// A signed-in session: what a login answers (and, with role `admin`, a signup).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct LoginToken {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    pub tenant: TenantSummary,
    /// The user's role in this company.
    pub role: String,
    /// The tenant router's URL for data calls.
    pub api_url: String,
    pub ws_url: String,
}

/// The answer to a login of a user in several companies without `tenant`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct TenantChoice {
    /// The user's active companies; log in again with `tenant` set to one of the slugs.
    pub tenants: Vec<TenantSummary>,
}

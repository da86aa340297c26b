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
#[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none))]
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
    /// Trade it at `POST /auth/refresh` for a new access token (and a new refresh token) before
    /// `expires_in` runs out; each works once. Keep it secret (the OS keyring).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Seconds until the sign-in ends, however often it is refreshed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_expires_in: Option<u64>,
}

/// `POST /auth/refresh` and `POST /auth/logout`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
pub struct RefreshRequest {
    #[cfg_attr(feature = "openapi", oai(write_only, validator(min_length = 1, max_length = 200)))]
    pub refresh_token: String,
}

/// The answer to a login of a user in several companies without `tenant`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct TenantChoice {
    /// The user's active companies; log in again with `tenant` set to one of the slugs.
    pub tenants: Vec<TenantSummary>,
}

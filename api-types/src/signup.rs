//! Creating a company: `POST /tenants` and the wizard's helpers (`GET /signup/options`,
//! `GET /signup/slug-availability`).

use serde::{Deserialize, Serialize};

use crate::session::TenantSummary;

/// The company's first admin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
pub struct AdminInput {
    /// An e-mail address whose domain has a dot.
    #[cfg_attr(
        feature = "openapi",
        oai(validator(min_length = 3, max_length = 254, pattern = "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$"))
    )]
    pub email: String,
    /// At least 12 characters mixing three of: lowercase, uppercase, digits, symbols (or 16+);
    /// not built from the e-mail or the slug.
    #[cfg_attr(feature = "openapi", oai(write_only, validator(min_length = 12, max_length = 128)))]
    pub password: String,
    /// 1–100 characters, no control characters.
    #[cfg_attr(feature = "openapi", oai(validator(min_length = 1, max_length = 100, pattern = "\\S")))]
    pub full_name: String,
}

/// `POST /tenants`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none))]
pub struct CreateTenantRequest {
    /// 2–100 characters (after trimming), no control characters.
    #[cfg_attr(feature = "openapi", oai(validator(min_length = 2, max_length = 100, pattern = "\\S.*\\S")))]
    pub company_name: String,
    /// 3–40 characters of a-z, 0-9 and hyphens, starting with a letter, no trailing or double
    /// hyphen, not reserved; suggested from the name when absent.
    #[cfg_attr(feature = "openapi", oai(validator(min_length = 3, max_length = 40, pattern = "^[a-z](-?[a-z0-9])+$")))]
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::not_null")]
    pub slug: Option<String>,
    pub admin: AdminInput,
    /// An IANA time zone, e.g. `Europe/Berlin` (see `GET /signup/options`).
    #[cfg_attr(feature = "openapi", oai(validator(min_length = 1, max_length = 64, pattern = "\\S")))]
    pub timezone: String,
    /// An ISO 4217 currency code, e.g. `EUR` (see `GET /signup/options`).
    #[cfg_attr(feature = "openapi", oai(validator(pattern = "^[A-Za-z]{3}$")))]
    pub currency: String,
    /// A chart-of-accounts template code (see `GET /signup/options`); `standard` when absent.
    #[cfg_attr(feature = "openapi", oai(validator(min_length = 1, max_length = 40)))]
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::not_null")]
    pub chart_template: Option<String>,
    /// Departments to create, each 1–100 characters, no duplicates; a default list when absent.
    #[cfg_attr(feature = "openapi", oai(validator(max_items = 50, unique_items)))]
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::not_null")]
    pub departments: Option<Vec<String>>,
}

/// `201` of `POST /tenants`: a session for the new company's admin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
#[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none))]
pub struct CreateTenantResponse {
    pub tenant: TenantSummary,
    /// A token for the new company's admin.
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    pub api_url: String,
    pub ws_url: String,
    /// See [`crate::session::LoginToken::refresh_token`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_expires_in: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct ChartTemplate {
    pub code: String,
    pub name: String,
    pub description: String,
    pub accounts: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct Currency {
    pub code: String,
    pub name: String,
}

/// `GET /signup/options`: what the wizard offers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct SignupOptions {
    pub chart_templates: Vec<ChartTemplate>,
    pub default_chart_template: String,
    pub currencies: Vec<Currency>,
    pub timezones: Vec<String>,
    pub default_departments: Vec<String>,
    pub password_min_length: usize,
}

/// `GET /signup/slug-availability`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none))]
#[serde(default)]
pub struct SlugAvailability {
    pub slug: String,
    pub available: bool,
    /// Why the slug cannot be used, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A free slug close to the one asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

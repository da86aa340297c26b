//! The error body every 4xx/5xx of both services carries: `{error, message, field?, …}`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct ErrorBody {
    /// A stable code, e.g. `invalid_field`, `version_mismatch`, `maintenance`.
    pub error: String,
    /// For people: what went wrong and, where it helps, what to do.
    pub message: String,
    /// The request field or parameter at fault (`admin.email`, `limit`).
    #[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The record as it is now, on a version conflict.
    #[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<serde_json::Value>,
    #[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_client_version: Option<String>,
    #[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_version: Option<String>,
    /// Every field at fault, when there are several.
    #[cfg_attr(feature = "openapi", oai(default, skip_serializing_if_is_empty))]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldProblem>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

impl ErrorBody {
    pub fn new(error: &str, message: impl Into<String>) -> Self {
        Self { error: error.into(), message: message.into(), ..Self::default() }
    }

    pub fn on_field(error: &str, field: &str, message: impl Into<String>) -> Self {
        Self { field: Some(field.into()), ..Self::new(error, message) }
    }
}

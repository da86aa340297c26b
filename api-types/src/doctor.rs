//! `GET /doctor`: the platform's health, check by check, and one line per problem with its fix.

use serde::{Deserialize, Serialize};

/// What the control plane found. `problems` is empty exactly when the platform is healthy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct DoctorReport {
    pub checks: Vec<DoctorCheck>,
    pub problems: Vec<DoctorProblem>,
}

/// One check and what it covered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct DoctorCheck {
    /// `catalog`, `keys`, `templates`, `spares`, `connections`, `connect_privileges`, `backups`.
    pub name: String,
    pub status: CheckStatus,
    /// What was looked at, or why the check was skipped.
    pub detail: String,
}

/// A check's outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", oai(rename_all = "snake_case"))]
pub enum CheckStatus {
    #[default]
    Ok,
    /// At least one problem (listed in `problems`).
    Problem,
    /// Not run: `detail` says what it needs.
    Skipped,
}

/// One problem and what fixes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct DoctorProblem {
    /// The check that found it.
    pub check: String,
    /// What it is about: a server, a database, a tenant's slug.
    pub subject: String,
    pub problem: String,
    pub fix: String,
}

impl DoctorProblem {
    /// `check: subject: problem; fix: …` on one line.
    pub fn line(&self) -> String {
        format!("{}: {}: {}; fix: {}", self.check, self.subject, self.problem, self.fix)
    }
}

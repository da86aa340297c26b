//! The JSON bodies the app sends and receives. Every response type is lenient
//! (`#[serde(default)]`): a field the server adds or drops never makes a screen fail.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Every error answer: `{error, message, field?, details?, current?, min_client_version?, …}`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
    pub field: Option<String>,
    pub details: Vec<FieldProblem>,
    pub current: Option<serde_json::Value>,
    pub min_client_version: Option<String>,
    pub latest_version: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Health {
    pub status: String,
    pub version: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct SystemStatus {
    pub maintenance_mode: bool,
    pub message: Option<String>,
    pub min_client_version: String,
    pub latest_version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct TenantSummary {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub status: String,
}

/// A signed-in session: what login and signup both answer.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct LoginToken {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    pub tenant: TenantSummary,
    pub role: String,
    pub api_url: String,
    pub ws_url: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LoginOutcome {
    Signed(LoginToken),
    /// The user belongs to several companies: pick one and log in again with its slug.
    Choose(Vec<TenantSummary>),
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ChartTemplate {
    pub code: String,
    pub name: String,
    pub description: String,
    pub accounts: usize,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Currency {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct SignupOptions {
    pub chart_templates: Vec<ChartTemplate>,
    pub default_chart_template: String,
    pub currencies: Vec<Currency>,
    pub timezones: Vec<String>,
    pub default_departments: Vec<String>,
    pub password_min_length: usize,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct SlugAvailability {
    pub slug: String,
    pub available: bool,
    pub reason: Option<String>,
    pub suggestion: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AdminInput {
    pub email: String,
    pub password: String,
    pub full_name: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CreateTenantRequest {
    pub company_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    pub admin: AdminInput,
    pub timezone: String,
    pub currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart_template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub departments: Option<Vec<String>>,
}

/// `201` of `POST /tenants`: the same shape as a login (without `role`, which is `admin`).
pub type CreatedTenant = LoginToken;

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Employee {
    pub id: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub job_title: Option<String>,
    pub department_id: Option<Uuid>,
    pub hire_date: String,
    pub status: String,
    pub version: i64,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct EmployeePage {
    pub items: Vec<Employee>,
    pub next_cursor: Option<String>,
}

/// The writable fields of an employee, as the form sends them (create and full update).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct EmployeeInput {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub job_title: Option<String>,
    pub department_id: Option<Uuid>,
    pub hire_date: String,
    pub status: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Department {
    pub id: Uuid,
    pub name: String,
}

/// One WebSocket message: a change (`seq` set) or a system message (channel `system`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct LiveMessage {
    pub channel: String,
    pub action: String,
    pub data: serde_json::Value,
    pub seq: Option<i64>,
}

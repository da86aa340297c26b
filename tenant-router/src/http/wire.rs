//! Request and response bodies of the router's API, converted from the data layer's rows at the
//! edge so the API can stay stable while the schema changes. Response bodies derive both
//! `Object` (their documented schema) and `Serialize` (how [`http_api::JsonReply`] writes them):
//! keep the two in step; the API tests read every field back.

use poem_openapi::Object;
use serde::{Deserialize, Deserializer, Serialize};
use tenant_schema::data::{accounts::Account, departments::Department, employees::Employee};
use time::OffsetDateTime;
use uuid::Uuid;

/// Tells a field that is absent (leave as is) from one that is `null` (clear it).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Clone, Object, Serialize)]
pub struct EmployeeView {
    pub id: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub job_title: Option<String>,
    pub department_id: Option<Uuid>,
    /// `YYYY-MM-DD`.
    pub hire_date: String,
    /// `active`, `on_leave` or `terminated`.
    pub status: String,
    /// Increases by one with every change; send it back as `If-Match` (or `version`) to update.
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<Employee> for EmployeeView {
    fn from(e: Employee) -> Self {
        Self {
            id: e.id,
            first_name: e.first_name,
            last_name: e.last_name,
            email: e.email,
            job_title: e.job_title,
            department_id: e.department_id,
            hire_date: e.hire_date.to_string(),
            status: e.status.as_str().to_owned(),
            version: e.version,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

#[derive(Debug, Object, Serialize)]
pub struct EmployeePage {
    pub items: Vec<EmployeeView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEmployeeRequest {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub job_title: Option<String>,
    pub department_id: Option<Uuid>,
    /// `YYYY-MM-DD`.
    pub hire_date: String,
    /// `active` (default), `on_leave` or `terminated`.
    pub status: Option<String>,
}

/// Only the fields present change; `null` clears `job_title` or `department_id`.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmployeePatchRequest {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub job_title: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub department_id: Option<Option<Uuid>>,
    pub hire_date: Option<String>,
    pub status: Option<String>,
    /// The version being edited (alternative to the `If-Match` header).
    pub version: Option<i64>,
}

#[derive(Debug, Object, Serialize)]
pub struct DeletedRecord {
    pub id: Uuid,
    /// The seq of the change event this delete produced.
    pub seq: i64,
}

#[derive(Debug, Object, Serialize)]
pub struct DepartmentView {
    pub id: Uuid,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<Department> for DepartmentView {
    fn from(d: Department) -> Self {
        Self { id: d.id, name: d.name, created_at: d.created_at, updated_at: d.updated_at }
    }
}

#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDepartmentRequest {
    pub name: String,
}

#[derive(Debug, Object, Serialize)]
pub struct AccountView {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    /// `asset`, `liability`, `equity`, `income` or `expense`.
    pub account_type: String,
    pub parent_code: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<Account> for AccountView {
    fn from(a: Account) -> Self {
        Self {
            id: a.id,
            code: a.code,
            name: a.name,
            account_type: a.account_type.as_str().to_owned(),
            parent_code: a.parent_code,
            created_at: a.created_at,
        }
    }
}

#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccountRequest {
    pub code: String,
    pub name: String,
    pub account_type: String,
    pub parent_code: Option<String>,
}

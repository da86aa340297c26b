//! Request and response bodies of the router's API, converted from the data layer's rows at the
//! edge so the API can stay stable while the schema changes. Response bodies derive both
//! `Object` (their documented schema) and `Serialize` (how [`http_api::JsonReply`] writes them):
//! keep the two in step; the API tests read every field back.

use std::borrow::Cow;

use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use poem_openapi::{Enum, Object};
use serde::{Deserialize, Deserializer, Serialize};
use tenant_schema::data::accounts::Account;
use tenant_schema::data::departments::Department;
use tenant_schema::data::employees::{Employee, EmployeeStatus};
use time::{Date, OffsetDateTime};
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
#[oai(skip_serializing_if_is_none)]
pub struct EmployeeView {
    pub id: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department_id: Option<Uuid>,
    /// `YYYY-MM-DD`.
    pub hire_date: IsoDate,
    pub status: EmployeeStatusView,
    /// Increases by one with every change; send it back as `If-Match` (or `version`) to update.
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A calendar date on the wire: `YYYY-MM-DD`, documented as OpenAPI's `string`/`date`
/// (poem-openapi's own `Date` says `naive-date`, which no client generator knows).
///
/// Serialised straight into the response through `Date`'s `Display`, with no `String` per row:
/// a page of 50 employees is the router's hottest response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsoDate(pub Date);

impl Serialize for IsoDate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl Type for IsoDate {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string_date".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "date")))
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromJSON for IsoDate {
    fn parse_from_json(value: Option<serde_json::Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            serde_json::Value::String(text) => Ok(Self(Date::parse(&text, ISO_DATE)?)),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl ToJSON for IsoDate {
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(self.0.to_string()))
    }
}

const ISO_DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// Where an employee stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum EmployeeStatusView {
    Active,
    OnLeave,
    Terminated,
}

impl From<EmployeeStatus> for EmployeeStatusView {
    fn from(status: EmployeeStatus) -> Self {
        match status {
            EmployeeStatus::Active => Self::Active,
            EmployeeStatus::OnLeave => Self::OnLeave,
            EmployeeStatus::Terminated => Self::Terminated,
        }
    }
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
            hire_date: IsoDate(e.hire_date),
            status: e.status.into(),
            version: e.version,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

#[derive(Debug, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct EmployeePage {
    pub items: Vec<EmployeeView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Object, Deserialize)]
#[oai(skip_serializing_if_is_none, deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct NewEmployeeRequest {
    #[oai(validator(min_length = 1, max_length = 100, pattern = "\\S"))]
    pub first_name: String,
    #[oai(validator(min_length = 1, max_length = 100, pattern = "\\S"))]
    pub last_name: String,
    /// An e-mail address, unique within the company.
    #[oai(validator(min_length = 3, max_length = 254, pattern = "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$"))]
    pub email: String,
    #[oai(validator(max_length = 100))]
    pub job_title: Option<String>,
    pub department_id: Option<Uuid>,
    /// `YYYY-MM-DD`, from 1900-01-01 to a year from today. (The pattern declares a subset that
    /// is always valid: a schema cannot say "a year from today" or which days a month has.)
    #[oai(validator(pattern = "^(19[0-9]{2}|20[01][0-9]|202[0-6])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$"))]
    pub hire_date: String,
    /// `active` (default), `on_leave` or `terminated`.
    #[oai(validator(pattern = "^(active|on_leave|terminated)$"))]
    pub status: Option<String>,
}

/// Only the fields present change; `null` clears `job_title` or `department_id`.
#[derive(Debug, Object, Deserialize)]
#[oai(skip_serializing_if_is_none, deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct EmployeePatchRequest {
    #[oai(validator(min_length = 1, max_length = 100, pattern = "\\S"))]
    pub first_name: Option<String>,
    #[oai(validator(min_length = 1, max_length = 100, pattern = "\\S"))]
    pub last_name: Option<String>,
    #[oai(validator(min_length = 3, max_length = 254, pattern = "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$"))]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub job_title: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub department_id: Option<Option<Uuid>>,
    #[oai(validator(pattern = "^(19[0-9]{2}|20[01][0-9]|202[0-6])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$"))]
    pub hire_date: Option<String>,
    #[oai(validator(pattern = "^(active|on_leave|terminated)$"))]
    pub status: Option<String>,
    /// The version being edited (alternative to the `If-Match` header).
    pub version: Option<i64>,
}

#[derive(Debug, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct DeletedRecord {
    pub id: Uuid,
    /// The seq of the change event this delete produced.
    pub seq: i64,
}

#[derive(Debug, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
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
#[oai(skip_serializing_if_is_none, deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct NewDepartmentRequest {
    #[oai(validator(min_length = 1, max_length = 100, pattern = "\\S"))]
    pub name: String,
}

#[derive(Debug, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct AccountView {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    /// `asset`, `liability`, `equity`, `income` or `expense`.
    pub account_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
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
#[oai(skip_serializing_if_is_none, deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct NewAccountRequest {
    /// Letters, digits, `.` and `-`, starting with a letter or digit.
    #[oai(validator(min_length = 1, max_length = 20, pattern = "^[A-Za-z0-9][A-Za-z0-9.-]*$"))]
    pub code: String,
    #[oai(validator(min_length = 1, max_length = 200, pattern = "\\S"))]
    pub name: String,
    /// `asset`, `liability`, `equity`, `income` or `expense`.
    #[oai(validator(pattern = "^(asset|liability|equity|income|expense)$"))]
    pub account_type: String,
    /// The code of an existing account, not this one.
    #[oai(validator(min_length = 1, max_length = 20, pattern = "^[A-Za-z0-9][A-Za-z0-9.-]*$"))]
    pub parent_code: Option<String>,
}

//! Employees on the wire: what `GET /employees/{id}` answers and what a live `employees` event
//! carries (the same type, so both are the same JSON), and the create and patch bodies.

use serde::{Deserialize, Deserializer, Serialize};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// One employee.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none))]
#[serde(default)]
pub struct Employee {
    pub id: Uuid,
    pub first_name: String,
    pub last_name: String,
    /// Lower case.
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department_id: Option<Uuid>,
    /// `YYYY-MM-DD`.
    pub hire_date: IsoDate,
    pub status: EmployeeStatus,
    /// Increases by one with every change; send it back as `If-Match` (or `version`) to update.
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Default for Employee {
    fn default() -> Self {
        Self {
            id: Uuid::nil(),
            first_name: String::new(),
            last_name: String::new(),
            email: String::new(),
            job_title: None,
            department_id: None,
            hire_date: IsoDate::default(),
            status: EmployeeStatus::default(),
            version: 0,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }
}

/// Where an employee stands (also the column `employees.status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[cfg_attr(feature = "openapi", oai(rename_all = "snake_case"))]
#[serde(rename_all = "snake_case")]
pub enum EmployeeStatus {
    #[default]
    Active,
    OnLeave,
    Terminated,
}

impl EmployeeStatus {
    pub const ALL: [EmployeeStatus; 3] = [EmployeeStatus::Active, EmployeeStatus::OnLeave, EmployeeStatus::Terminated];

    /// As stored and as sent: `"active"`, `"on_leave"`, `"terminated"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EmployeeStatus::Active => "active",
            EmployeeStatus::OnLeave => "on_leave",
            EmployeeStatus::Terminated => "terminated",
        }
    }

    pub fn parse(value: &str) -> Option<EmployeeStatus> {
        EmployeeStatus::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

/// A calendar date on the wire: `YYYY-MM-DD`, documented as OpenAPI's `string`/`date`
/// (poem-openapi's own `Date` says `naive-date`, which no client generator knows). Written
/// straight through `Date`'s `Display`: a page of 50 employees is the router's hottest answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoDate(pub Date);

impl Default for IsoDate {
    fn default() -> Self {
        Self(OffsetDateTime::UNIX_EPOCH.date())
    }
}

const ISO_DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

impl IsoDate {
    pub fn parse(text: &str) -> Result<Self, time::error::Parse> {
        Date::parse(text.trim(), ISO_DATE).map(Self)
    }
}

impl std::fmt::Display for IsoDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for IsoDate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for IsoDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "openapi")]
mod iso_date_schema {
    use std::borrow::Cow;

    use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
    use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};

    use super::IsoDate;

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
                serde_json::Value::String(text) => Ok(IsoDate::parse(&text)?),
                other => Err(ParseError::expected_type(other)),
            }
        }
    }

    impl ToJSON for IsoDate {
        fn to_json(&self) -> Option<serde_json::Value> {
            Some(serde_json::Value::String(self.0.to_string()))
        }
    }
}

/// One page of `GET /employees`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none))]
#[serde(default)]
pub struct EmployeePage {
    pub items: Vec<Employee>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /employees`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none, deny_unknown_fields))]
#[serde(deny_unknown_fields)]
pub struct NewEmployee {
    #[cfg_attr(feature = "openapi", oai(validator(min_length = 1, max_length = 100, pattern = "\\S")))]
    pub first_name: String,
    #[cfg_attr(feature = "openapi", oai(validator(min_length = 1, max_length = 100, pattern = "\\S")))]
    pub last_name: String,
    /// An e-mail address, unique within the company.
    #[cfg_attr(
        feature = "openapi",
        oai(validator(min_length = 3, max_length = 254, pattern = "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$"))
    )]
    pub email: String,
    /// `null` or absent: none.
    #[cfg_attr(feature = "openapi", oai(validator(max_length = 100)))]
    pub job_title: Option<String>,
    /// `null` or absent: none.
    pub department_id: Option<Uuid>,
    /// `YYYY-MM-DD`, from 1900-01-01 to a year from today. (The pattern declares a subset that
    /// is always valid: a schema cannot say "a year from today" or which days a month has.)
    #[cfg_attr(
        feature = "openapi",
        oai(validator(pattern = "^(19[0-9]{2}|20[01][0-9]|202[0-6])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$"))
    )]
    pub hire_date: String,
    /// `active` (default), `on_leave` or `terminated`.
    #[cfg_attr(feature = "openapi", oai(validator(pattern = "^(active|on_leave|terminated)$")))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// `PATCH /employees/{id}`: only the fields present change; `null` clears `job_title` or
/// `department_id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none, deny_unknown_fields))]
#[serde(deny_unknown_fields)]
pub struct EmployeePatch {
    #[cfg_attr(feature = "openapi", oai(validator(min_length = 1, max_length = 100, pattern = "\\S")))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[cfg_attr(feature = "openapi", oai(validator(min_length = 1, max_length = 100, pattern = "\\S")))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[cfg_attr(
        feature = "openapi",
        oai(validator(min_length = 3, max_length = 254, pattern = "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$"))
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub job_title: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub department_id: Option<Option<Uuid>>,
    #[cfg_attr(
        feature = "openapi",
        oai(validator(pattern = "^(19[0-9]{2}|20[01][0-9]|202[0-6])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$"))
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hire_date: Option<String>,
    #[cfg_attr(feature = "openapi", oai(validator(pattern = "^(active|on_leave|terminated)$")))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The version being edited (alternative to the `If-Match` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

/// Every field of a new employee, as a full update: what an edit form sends.
impl From<NewEmployee> for EmployeePatch {
    fn from(n: NewEmployee) -> Self {
        Self {
            first_name: Some(n.first_name),
            last_name: Some(n.last_name),
            email: Some(n.email),
            job_title: Some(n.job_title),
            department_id: Some(n.department_id),
            hire_date: Some(n.hire_date),
            status: n.status,
            version: None,
        }
    }
}

/// Tells a field that is absent (leave as is) from one that is `null` (clear it).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The answer to a delete: the id and the seq of the change event it produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct DeletedRecord {
    pub id: Uuid,
    pub seq: i64,
}

/// What a live `deleted` event carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeletedId {
    pub id: Uuid,
}

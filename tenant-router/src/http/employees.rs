//! Employees of the token's company: list (keyset pages, search, filters), create, get,
//! update with optimistic concurrency, delete. Every write commits its change event in the
//! same transaction and answers its `seq` in `X-Event-Seq`.

use std::sync::Arc;

use http_api::{ApiError, JsonBody, JsonReply};
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::{ApiResponse, OpenApi};
use tenant_schema::data::employees::{self, EmployeePatch, EmployeeStatus, ListQuery, NewEmployee};
use time::Date;
use uuid::Uuid;

use super::errors::{from_data, from_pool};
use super::security::TenantAuth;
use crate::state::AppState;
use api_types::employees as wire;

pub struct EmployeesApi(pub Arc<AppState>);

#[derive(ApiResponse)]
pub enum EmployeeWritten {
    #[oai(status = 201)]
    Created(
        JsonReply<wire::Employee>,
        #[oai(header = "X-Event-Seq")] i64,
        #[oai(header = "ETag")] String,
        #[oai(header = "Location")] String,
    ),
    #[oai(status = 200)]
    Updated(JsonReply<wire::Employee>, #[oai(header = "X-Event-Seq")] i64, #[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
pub enum EmployeeRead {
    #[oai(status = 200)]
    Ok(JsonReply<wire::Employee>, #[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
pub enum EmployeeDeleted {
    #[oai(status = 200)]
    Ok(JsonReply<wire::DeletedRecord>, #[oai(header = "X-Event-Seq")] i64),
}

fn parse_date(field: &str, raw: &str) -> Result<Date, ApiError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(raw.trim(), &format)
        .map_err(|_| ApiError::field(field, format!("{field}: must be a date like 2024-05-31")))
}

fn parse_status(raw: &str) -> Result<EmployeeStatus, ApiError> {
    EmployeeStatus::parse(raw.trim())
        .ok_or_else(|| ApiError::field("status", "status: must be active, on_leave or terminated"))
}

/// `If-Match: "7"`, `If-Match: 7` or `W/"7"` → 7.
fn parse_if_match(raw: &str) -> Result<i64, ApiError> {
    raw.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_if_match", "If-Match must be the record's version, e.g. \"3\""))
}

fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

#[OpenApi(tag = "super::Tag::Employees")]
impl EmployeesApi {
    /// Employees ordered by last name, first name; keyset pages (`cursor` from the previous
    /// page), search by name or e-mail (`q`), filters by department and status.
    #[oai(path = "/employees", method = "get")]
    async fn list(
        &self,
        auth: TenantAuth,
        /// Page size, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
        cursor: Query<Option<String>>,
        #[oai(validator(max_length = 200))] q: Query<Option<String>>,
        department_id: Query<Option<Uuid>>,
        /// `active`, `on_leave` or `terminated`.
        #[oai(validator(pattern = "^(active|on_leave|terminated)$"))]
        status: Query<Option<String>>,
    ) -> Result<JsonReply<wire::EmployeePage>, ApiError> {
        let limit = limit.0.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ApiError::field("limit", "limit: must be between 1 and 200"));
        }
        let status = status.0.as_deref().map(parse_status).transpose()?;
        let query = ListQuery { limit, cursor: cursor.0, search: q.0, department_id: department_id.0, status };
        let mut conn = self.0.pools.acquire(&auth.0.route).await.map_err(from_pool)?;
        let page = employees::list(&mut conn, &query).await.map_err(|e| from_data(e, false))?;
        Ok(JsonReply(wire::EmployeePage { items: page.items, next_cursor: page.next_cursor }))
    }

    /// Creates an employee.
    #[oai(path = "/employees", method = "post")]
    async fn create(&self, auth: TenantAuth, body: JsonBody<wire::NewEmployee>) -> Result<EmployeeWritten, ApiError> {
        auth.0.require_writer()?;
        let b = body.0;
        let new = NewEmployee {
            first_name: b.first_name,
            last_name: b.last_name,
            email: b.email,
            job_title: b.job_title,
            department_id: b.department_id,
            hire_date: parse_date("hire_date", &b.hire_date)?,
            status: b.status.as_deref().map(parse_status).transpose()?,
        };
        let mut conn = self.0.pools.acquire(&auth.0.route).await.map_err(from_pool)?;
        let change = employees::create(&mut conn, &new).await.map_err(|e| from_data(e, false))?;
        self.0.realtime.published(auth.0.route.id, &change.event).await;
        let seq = change.seq();
        let view = change.value;
        let (tag, location) = (etag(view.version), format!("/employees/{}", view.id));
        Ok(EmployeeWritten::Created(JsonReply(view), seq, tag, location))
    }

    /// One employee.
    #[oai(path = "/employees/:id", method = "get")]
    async fn get(&self, auth: TenantAuth, id: Path<Uuid>) -> Result<EmployeeRead, ApiError> {
        let mut conn = self.0.pools.acquire(&auth.0.route).await.map_err(from_pool)?;
        let employee = employees::get(&mut conn, id.0).await.map_err(|e| from_data(e, false))?;
        let tag = etag(employee.version);
        Ok(EmployeeRead::Ok(JsonReply(employee), tag))
    }

    /// Changes the fields given. With `If-Match` (or `version`), the change applies only to
    /// that version: a lost race answers 412 (`If-Match`) or 409 (`version`) with the current
    /// record.
    #[oai(path = "/employees/:id", method = "patch")]
    async fn update(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        /// The version being changed, as the `ETag` gave it: `"7"` (also `7` or `W/"7"`).
        #[oai(name = "If-Match", validator(pattern = "^(W/)?\"?[0-9]{1,18}\"?$"))]
        if_match: Header<Option<String>>,
        body: JsonBody<wire::EmployeePatch>,
    ) -> Result<EmployeeWritten, ApiError> {
        auth.0.require_writer()?;
        let b = body.0;
        let header_version = if_match.0.as_deref().map(parse_if_match).transpose()?;
        let expected = header_version.or(b.version);
        let patch = EmployeePatch {
            first_name: b.first_name,
            last_name: b.last_name,
            email: b.email,
            job_title: b.job_title,
            department_id: b.department_id,
            hire_date: b.hire_date.as_deref().map(|d| parse_date("hire_date", d)).transpose()?,
            status: b.status.as_deref().map(parse_status).transpose()?,
        };
        let mut conn = self.0.pools.acquire(&auth.0.route).await.map_err(from_pool)?;
        let change = employees::update(&mut conn, id.0, expected, &patch)
            .await
            .map_err(|e| from_data(e, header_version.is_some()))?;
        self.0.realtime.published(auth.0.route.id, &change.event).await;
        let seq = change.seq();
        let view = change.value;
        let tag = etag(view.version);
        Ok(EmployeeWritten::Updated(JsonReply(view), seq, tag))
    }

    /// Deletes an employee (admins only). `If-Match` makes it conditional on the version.
    #[oai(path = "/employees/:id", method = "delete")]
    async fn delete(
        &self,
        auth: TenantAuth,
        id: Path<Uuid>,
        /// The version being changed, as the `ETag` gave it: `"7"` (also `7` or `W/"7"`).
        #[oai(name = "If-Match", validator(pattern = "^(W/)?\"?[0-9]{1,18}\"?$"))]
        if_match: Header<Option<String>>,
    ) -> Result<EmployeeDeleted, ApiError> {
        auth.0.require_admin()?;
        let expected = if_match.0.as_deref().map(parse_if_match).transpose()?;
        let mut conn = self.0.pools.acquire(&auth.0.route).await.map_err(from_pool)?;
        let change =
            employees::delete(&mut conn, id.0, expected).await.map_err(|e| from_data(e, expected.is_some()))?;
        self.0.realtime.published(auth.0.route.id, &change.event).await;
        let seq = change.seq();
        Ok(EmployeeDeleted::Ok(JsonReply(wire::DeletedRecord { id: change.value, seq }), seq))
    }
}

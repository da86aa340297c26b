//! Employees: validation, keyset-paginated listing and search, and versioned writes.
//!
//! Every update bumps `version` by one (a trigger does it, see `migrations/V1__initial.sql`);
//! [`update`] and [`delete`] take the version the caller last saw and refuse with
//! [`DataError::VersionMismatch`] if the row has moved on since.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{Connection, PgConnection, Row};
use time::macros::date;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::{Change, DataError, Problems, Violation, map_violation, record_event};

/// The outbox channel of employee events.
pub const CHANNEL: &str = api_types::live::channel::EMPLOYEES;

/// The most rows one [`list`] call returns.
pub const MAX_PAGE_SIZE: u32 = 200;

/// Names and job titles are at most this many characters.
pub const MAX_NAME_CHARS: usize = 100;

/// E-mail addresses are at most this many characters.
pub const MAX_EMAIL_CHARS: usize = 254;

/// The earliest hire date accepted.
pub const EARLIEST_HIRE_DATE: Date = date!(1900 - 01 - 01);

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

/// One employee: the wire type itself, so what is stored, what the API answers and what the
/// outbox event carries are one definition.
pub use api_types::employees::{Employee, EmployeeStatus};

/// Reads an employee row (every column of `employees`).
fn from_row(row: PgRow) -> Result<Employee, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(Employee {
        id: row.try_get("id")?,
        first_name: row.try_get("first_name")?,
        last_name: row.try_get("last_name")?,
        email: row.try_get("email")?,
        job_title: row.try_get("job_title")?,
        department_id: row.try_get("department_id")?,
        hire_date: api_types::employees::IsoDate(row.try_get("hire_date")?),
        status: EmployeeStatus::parse(&status).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "status".to_owned(),
            source: format!("unknown employee status {status:?}").into(),
        })?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The writable fields of a new employee.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEmployee {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    /// `None` or blank: no job title.
    pub job_title: Option<String>,
    pub department_id: Option<Uuid>,
    pub hire_date: Date,
    /// `None`: [`EmployeeStatus::Active`].
    pub status: Option<EmployeeStatus>,
}

/// Fields to change. `None` leaves a field as it is; for nullable fields `Some(None)` clears
/// it (as does a blank job title).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmployeePatch {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub job_title: Option<Option<String>>,
    pub department_id: Option<Option<Uuid>>,
    pub hire_date: Option<Date>,
    pub status: Option<EmployeeStatus>,
}

/// Which employees [`list`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// Page size, 1 to [`MAX_PAGE_SIZE`].
    pub limit: u32,
    /// [`Page::next_cursor`] of the previous page; `None` for the first page.
    pub cursor: Option<String>,
    /// Case-insensitive prefix of the first name, the last name, "first last", or the e-mail
    /// address. Blank means no search.
    pub search: Option<String>,
    /// Only employees of this department.
    pub department_id: Option<Uuid>,
    /// Only employees with this status.
    pub status: Option<EmployeeStatus>,
}

impl Default for ListQuery {
    /// The first page of everyone, 50 at a time.
    fn default() -> Self {
        ListQuery { limit: 50, cursor: None, search: None, department_id: None, status: None }
    }
}

/// One page of [`list`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    /// In list order: last name, first name, id.
    pub items: Vec<Employee>,
    /// Pass as [`ListQuery::cursor`] for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Checks a new employee and returns it normalised: text trimmed, the e-mail address in lower
/// case, a blank job title as `None`, the status defaulted to active.
///
/// Rules: first and last name 1 to 100 characters; e-mail at most 254 characters with one `@`
/// and a dotted domain; job title at most 100 characters; hire date between 1900-01-01 and a
/// year from today. Errors are always [`DataError::Invalid`], listing every field at fault.
pub fn validate_new(new: &NewEmployee) -> Result<NewEmployee, DataError> {
    let mut problems = Problems::default();
    let first_name = problems.text("first_name", &new.first_name, MAX_NAME_CHARS);
    let last_name = problems.text("last_name", &new.last_name, MAX_NAME_CHARS);
    let email = check_email(&mut problems, &new.email);
    let job_title = problems.optional_text("job_title", new.job_title.as_deref(), MAX_NAME_CHARS);
    let hire_date = check_hire_date(&mut problems, new.hire_date);
    match (first_name, last_name, email, job_title, hire_date) {
        (Some(first_name), Some(last_name), Some(email), Some(job_title), Some(hire_date)) => Ok(NewEmployee {
            first_name,
            last_name,
            email,
            job_title,
            department_id: new.department_id,
            hire_date,
            status: Some(new.status.unwrap_or(EmployeeStatus::Active)),
        }),
        _ => Err(problems.into_error()),
    }
}

/// Checks the fields a patch sets, by the rules of [`validate_new`], and returns the patch
/// normalised the same way.
pub fn validate_patch(patch: &EmployeePatch) -> Result<EmployeePatch, DataError> {
    let mut problems = Problems::default();
    // Outer option: is the field in the patch; inner: did it pass (failures are recorded).
    let first_name = patch.first_name.as_deref().map(|v| problems.text("first_name", v, MAX_NAME_CHARS));
    let last_name = patch.last_name.as_deref().map(|v| problems.text("last_name", v, MAX_NAME_CHARS));
    let email = patch.email.as_deref().map(|v| check_email(&mut problems, v));
    let job_title = patch.job_title.as_ref().map(|v| problems.optional_text("job_title", v.as_deref(), MAX_NAME_CHARS));
    let hire_date = patch.hire_date.map(|v| check_hire_date(&mut problems, v));
    problems.check()?;
    Ok(EmployeePatch {
        first_name: first_name.flatten(),
        last_name: last_name.flatten(),
        email: email.flatten(),
        job_title: job_title.flatten(),
        department_id: patch.department_id,
        hire_date: hire_date.flatten(),
        status: patch.status,
    })
}

/// The address trimmed and in lower case, if it looks like one: at most 254 characters, no
/// white space or control characters, exactly one `@` with something before it, and a domain
/// of dot-separated non-empty labels (at least two). Deliberately simple: whether mail arrives
/// is not something syntax can tell.
fn check_email(problems: &mut Problems, email: &str) -> Option<String> {
    let email = email.trim().to_lowercase();
    let well_formed = || {
        let (local, domain) = email.split_once('@')?;
        let ok = !local.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && domain.split('.').all(|label| !label.is_empty())
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        ok.then_some(())
    };
    if email.is_empty() {
        problems.add("email", "must not be blank");
        None
    } else if email.chars().count() > MAX_EMAIL_CHARS {
        problems.add("email", format!("must be at most {MAX_EMAIL_CHARS} characters"));
        None
    } else if well_formed().is_none() {
        problems.add("email", "is not an e-mail address");
        None
    } else {
        Some(email)
    }
}

fn check_hire_date(problems: &mut Problems, hire_date: Date) -> Option<Date> {
    let latest = latest_hire_date(OffsetDateTime::now_utc().date());
    if (EARLIEST_HIRE_DATE..=latest).contains(&hire_date) {
        Some(hire_date)
    } else {
        problems.add("hire_date", format!("must be between {EARLIEST_HIRE_DATE} and {latest}"));
        None
    }
}

/// A year after `today` (the 28th of February after a 29th).
fn latest_hire_date(today: Date) -> Date {
    let year = today.year() + 1;
    let day = today.day().min(today.month().length(year));
    Date::from_calendar_date(year, today.month(), day).unwrap_or(Date::MAX)
}

/// The constraints a write may violate, and the field each one is about.
const CONSTRAINTS: &[(&str, Violation)] = &[
    ("employees_email_key", Violation::Conflict { field: "email", message: "is already used by another employee" }),
    ("employees_department_id_fkey", Violation::Invalid { field: "department_id", message: "is not a department" }),
    ("employees_first_name_valid", Violation::Invalid { field: "first_name", message: "is not a valid name" }),
    ("employees_last_name_valid", Violation::Invalid { field: "last_name", message: "is not a valid name" }),
    ("employees_email_valid", Violation::Invalid { field: "email", message: "is not an e-mail address" }),
    ("employees_job_title_valid", Violation::Invalid { field: "job_title", message: "is too long" }),
    ("employees_status_valid", Violation::Invalid { field: "status", message: "is not a status" }),
];

/// The position of a row in list order, encoded as an opaque cursor.
struct Cursor {
    last_name: String,
    first_name: String,
    id: Uuid,
}

impl Cursor {
    fn after(employee: &Employee) -> Cursor {
        Cursor { last_name: employee.last_name.clone(), first_name: employee.first_name.clone(), id: employee.id }
    }

    /// URL-safe base64 of the JSON array `[last_name, first_name, id]`.
    fn encode(&self) -> String {
        let position = serde_json::Value::from(vec![
            serde_json::Value::from(self.last_name.as_str()),
            serde_json::Value::from(self.first_name.as_str()),
            serde_json::Value::from(self.id.to_string()),
        ]);
        URL_SAFE_NO_PAD.encode(position.to_string())
    }

    /// The position in `cursor`, or `None` if it is not something [`Cursor::encode`] made.
    fn decode(cursor: &str) -> Option<Cursor> {
        let json = URL_SAFE_NO_PAD.decode(cursor.trim()).ok()?;
        let (last_name, first_name, id) = serde_json::from_slice::<(String, String, Uuid)>(&json).ok()?;
        Some(Cursor { last_name, first_name, id })
    }
}

/// `value` as a LIKE pattern matching itself literally (backslash is LIKE's default escape).
fn like_escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// One page of employees in list order (last name, first name, id), filtered by `query`.
///
/// Keyset pagination: the cursor holds the last row's `(last_name, first_name, id)` and the
/// next page starts strictly after it, so rows inserted or deleted between pages never make
/// another row appear twice or go missing, and a page costs the same however deep it is.
/// The order and the filters use the indexes of `migrations/V1__initial.sql`.
///
/// Errors: [`DataError::Invalid`] for `limit` outside 1 to [`MAX_PAGE_SIZE`] (field `limit`)
/// or a cursor that did not come from this function (field `cursor`).
pub async fn list(conn: &mut PgConnection, query: &ListQuery) -> Result<Page, DataError> {
    let mut problems = Problems::default();
    if !(1..=MAX_PAGE_SIZE).contains(&query.limit) {
        problems.add("limit", format!("must be between 1 and {MAX_PAGE_SIZE}"));
    }
    let cursor = query.cursor.as_deref().and_then(|cursor| {
        let decoded = Cursor::decode(cursor);
        if decoded.is_none() {
            problems.add("cursor", "is not a cursor from a previous page");
        }
        decoded
    });
    problems.check()?;

    // The search, with runs of white space made single spaces: a prefix pattern for the whole
    // text, and one for its first word (a "first last" match starts with the first name, and
    // that condition can use the first-name index).
    let search = query.search.as_deref().map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "));
    let search = search.filter(|s| !s.is_empty());
    let pattern = search.as_deref().map(|s| format!("{}%", like_escape(s)));
    let first_word_pattern =
        search.as_deref().and_then(|s| s.split(' ').next()).map(|w| format!("{}%", like_escape(w)));

    let mut items: Vec<Employee> = sqlx::query(
        r#"
        SELECT id, first_name, last_name, email, job_title, department_id, hire_date, status, version,
               created_at, updated_at
        FROM employees
        WHERE ($1::text IS NULL OR (last_name, first_name, id) > ($1::text, $2::text, $3::uuid))
          AND ($4::uuid IS NULL OR department_id = $4::uuid)
          AND ($5::text IS NULL OR status = $5::text)
          AND ($6::text IS NULL
               OR lower(last_name) LIKE lower($6::text)
               OR lower(first_name) LIKE lower($6::text)
               OR lower(email) LIKE lower($6::text)
               OR (lower(first_name) LIKE lower($7::text)
                   AND lower(first_name || ' ' || last_name) LIKE lower($6::text)))
        ORDER BY last_name, first_name, id
        LIMIT $8
        "#,
    )
    .bind(cursor.as_ref().map(|c| c.last_name.as_str()))
    .bind(cursor.as_ref().map(|c| c.first_name.as_str()))
    .bind(cursor.as_ref().map(|c| c.id))
    .bind(query.department_id)
    .bind(query.status.map(EmployeeStatus::as_str))
    .bind(pattern)
    .bind(first_word_pattern)
    .bind(i64::from(query.limit) + 1)
    .try_map(from_row)
    .fetch_all(conn)
    .await?;

    // One row more than asked for says whether there is a next page.
    let next_cursor = if items.len() > query.limit as usize {
        items.truncate(query.limit as usize);
        items.last().map(|last| Cursor::after(last).encode())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// The employee with this id; [`DataError::NotFound`] if there is none.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Employee, DataError> {
    sqlx::query(
        r#"
        SELECT id, first_name, last_name, email, job_title, department_id, hire_date, status, version,
               created_at, updated_at
        FROM employees
        WHERE id = $1
        "#,
    )
    .bind(id)
    .try_map(from_row)
    .fetch_optional(conn)
    .await?
    .ok_or(DataError::NotFound)
}

/// Validates (see [`validate_new`]) and inserts an employee, with a `created` event.
///
/// Errors: [`DataError::Invalid`] for invalid fields or an unknown `department_id`;
/// [`DataError::Conflict`] (field `email`) if another employee has the address, ignoring case.
pub async fn create(conn: &mut PgConnection, new: &NewEmployee) -> Result<Change<Employee>, DataError> {
    let new = validate_new(new)?;
    let mut tx = conn.begin().await?;
    let employee: Employee = sqlx::query(
        r#"
        INSERT INTO employees (id, first_name, last_name, email, job_title, department_id, hire_date, status)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        RETURNING id, first_name, last_name, email, job_title, department_id, hire_date, status, version,
                  created_at, updated_at
        "#,
    )
    .bind(Uuid::now_v7())
    .bind(&new.first_name)
    .bind(&new.last_name)
    .bind(&new.email)
    .bind(&new.job_title)
    .bind(new.department_id)
    .bind(new.hire_date)
    .bind(new.status.unwrap_or(EmployeeStatus::Active).as_str())
    .try_map(from_row)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| map_violation(e, CONSTRAINTS))?;
    let event = record_event(&mut tx, CHANNEL, "created", employee.id, &employee).await?;
    tx.commit().await?;
    Ok(Change { value: employee, event })
}

/// Validates (see [`validate_patch`]) and applies a patch, with an `updated` event. The version
/// goes up by one, also for an empty patch.
///
/// With `expected_version`, the update only happens if the row is still at that version;
/// otherwise [`DataError::VersionMismatch`] carries the row as it is now. Other errors:
/// [`DataError::NotFound`], and those of [`create`].
pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    expected_version: Option<i64>,
    patch: &EmployeePatch,
) -> Result<Change<Employee>, DataError> {
    let patch = validate_patch(patch)?;
    let mut tx = conn.begin().await?;
    // The CASE flags tell "leave as is" from "set to NULL" for the nullable columns.
    let updated: Option<Employee> = sqlx::query(
        r#"
        UPDATE employees SET
            first_name    = COALESCE($3, first_name),
            last_name     = COALESCE($4, last_name),
            email         = COALESCE($5, email),
            job_title     = CASE WHEN $6 THEN $7 ELSE job_title END,
            department_id = CASE WHEN $8 THEN $9 ELSE department_id END,
            hire_date     = COALESCE($10, hire_date),
            status        = COALESCE($11, status)
        WHERE id = $1 AND ($2::bigint IS NULL OR version = $2)
        RETURNING id, first_name, last_name, email, job_title, department_id, hire_date, status, version,
                  created_at, updated_at
        "#,
    )
    .bind(id)
    .bind(expected_version)
    .bind(&patch.first_name)
    .bind(&patch.last_name)
    .bind(&patch.email)
    .bind(patch.job_title.is_some())
    .bind(patch.job_title.clone().flatten())
    .bind(patch.department_id.is_some())
    .bind(patch.department_id.flatten())
    .bind(patch.hire_date)
    .bind(patch.status.map(EmployeeStatus::as_str))
    .try_map(from_row)
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| map_violation(e, CONSTRAINTS))?;
    let Some(employee) = updated else {
        tx.rollback().await?;
        return Err(lost_write(conn, id).await);
    };
    let event = record_event(&mut tx, CHANNEL, "updated", employee.id, &employee).await?;
    tx.commit().await?;
    Ok(Change { value: employee, event })
}

/// Deletes an employee, with a `deleted` event whose payload is `{"id": ...}`.
///
/// `expected_version` and the errors are as for [`update`].
pub async fn delete(
    conn: &mut PgConnection,
    id: Uuid,
    expected_version: Option<i64>,
) -> Result<Change<Uuid>, DataError> {
    let mut tx = conn.begin().await?;
    let deleted: Option<Uuid> =
        sqlx::query_scalar("DELETE FROM employees WHERE id = $1 AND ($2::bigint IS NULL OR version = $2) RETURNING id")
            .bind(id)
            .bind(expected_version)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(id) = deleted else {
        tx.rollback().await?;
        return Err(lost_write(conn, id).await);
    };
    let event = record_event(&mut tx, CHANNEL, "deleted", id, &api_types::employees::DeletedId { id }).await?;
    tx.commit().await?;
    Ok(Change { value: id, event })
}

/// Why a conditional write matched no row: the row is gone, or it has another version now.
async fn lost_write(conn: &mut PgConnection, id: Uuid) -> DataError {
    match get(conn, id).await {
        Ok(current) => DataError::VersionMismatch { current: Box::new(current) },
        Err(error) => error,
    }
}

//! Departments: listing and creating them.

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::{Connection, FromRow, PgConnection, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Change, DataError, Problems, Violation, map_violation, record_event};

/// The outbox channel of department events.
pub const CHANNEL: &str = api_types::live::channel::DEPARTMENTS;

/// Department names are at most this many characters.
pub const MAX_NAME_CHARS: usize = 100;

/// One department, as stored and as sent to clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Department {
    pub id: Uuid,
    /// Unique ignoring case.
    pub name: String,
    /// Serialised as RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Serialised as RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The row on the wire: what the API answers and the outbox event carries.
impl From<Department> for api_types::ledger::Department {
    fn from(d: Department) -> Self {
        Self { id: d.id, name: d.name, created_at: d.created_at, updated_at: d.updated_at }
    }
}

impl FromRow<'_, PgRow> for Department {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Department {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

const CONSTRAINTS: &[(&str, Violation)] = &[
    ("departments_name_key", Violation::Conflict { field: "name", message: "is already used by another department" }),
    ("departments_name_valid", Violation::Invalid { field: "name", message: "is not a valid name" }),
];

/// Every department, ordered by name ignoring case.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<Department>, DataError> {
    // lower(name) is unique, so this order is total (and the unique index serves it).
    let departments = sqlx::query_as("SELECT id, name, created_at, updated_at FROM departments ORDER BY lower(name)")
        .fetch_all(conn)
        .await?;
    Ok(departments)
}

/// Creates a department, with a `created` event.
///
/// The name is trimmed and must have 1 to 100 characters ([`DataError::Invalid`], field
/// `name`); [`DataError::Conflict`] (field `name`) if a department of that name exists,
/// ignoring case.
pub async fn create(conn: &mut PgConnection, name: &str) -> Result<Change<Department>, DataError> {
    let mut problems = Problems::default();
    let Some(name) = problems.text("name", name, MAX_NAME_CHARS) else {
        return Err(problems.into_error());
    };
    let mut tx = conn.begin().await?;
    let department: Department =
        sqlx::query_as("INSERT INTO departments (id, name) VALUES ($1, $2) RETURNING id, name, created_at, updated_at")
            .bind(Uuid::now_v7())
            .bind(&name)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| map_violation(e, CONSTRAINTS))?;
    let event = record_event(
        &mut tx,
        CHANNEL,
        "created",
        department.id,
        &api_types::ledger::Department::from(department.clone()),
    )
    .await?;
    tx.commit().await?;
    Ok(Change { value: department, event })
}

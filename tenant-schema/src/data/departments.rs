//! Departments: listing and creating them.

use sqlx::postgres::PgRow;
use sqlx::{Connection, PgConnection, Row};
use uuid::Uuid;

use super::{Change, DataError, Problems, Violation, map_violation, record_event};

/// The outbox channel of department events.
pub const CHANNEL: &str = api_types::live::channel::DEPARTMENTS;

/// Department names are at most this many characters.
pub const MAX_NAME_CHARS: usize = 100;

/// One department: the wire type itself (stored, answered and carried by events alike).
pub use api_types::ledger::Department;

fn from_row(row: PgRow) -> Result<Department, sqlx::Error> {
    Ok(Department {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const CONSTRAINTS: &[(&str, Violation)] = &[
    ("departments_name_key", Violation::Conflict { field: "name", message: "is already used by another department" }),
    ("departments_name_valid", Violation::Invalid { field: "name", message: "is not a valid name" }),
];

/// Every department, ordered by name ignoring case.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<Department>, DataError> {
    // lower(name) is unique, so this order is total (and the unique index serves it).
    let departments = sqlx::query("SELECT id, name, created_at, updated_at FROM departments ORDER BY lower(name)")
        .try_map(from_row)
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
        sqlx::query("INSERT INTO departments (id, name) VALUES ($1, $2) RETURNING id, name, created_at, updated_at")
            .bind(Uuid::now_v7())
            .bind(&name)
            .try_map(from_row)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| map_violation(e, CONSTRAINTS))?;
    let event = record_event(&mut tx, CHANNEL, "created", department.id, &department).await?;
    tx.commit().await?;
    Ok(Change { value: department, event })
}

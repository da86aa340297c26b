//! What the schema itself guarantees about employees, departments, accounts and settings.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::{constraint_violation, migrated_database};

async fn insert_employee(
    conn: &mut PgConnection,
    email: &str,
    status: &str,
    department_id: Option<Uuid>,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO employees (id, first_name, last_name, email, department_id, hire_date, status)
         VALUES ($1, 'Ada', 'Lovelace', $2, $3, DATE '2024-03-01', $4)
         RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(email)
    .bind(department_id)
    .bind(status)
    .fetch_one(conn)
    .await
}

async fn insert_department(conn: &mut PgConnection, name: &str) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar("INSERT INTO departments (name) VALUES ($1) RETURNING id").bind(name).fetch_one(conn).await
}

async fn employee_version(conn: &mut PgConnection, id: Uuid) -> i64 {
    sqlx::query_scalar("SELECT version FROM employees WHERE id = $1").bind(id).fetch_one(conn).await.unwrap()
}

/// Asserts `result` failed with this SQLSTATE on this constraint.
fn assert_violates<T: std::fmt::Debug>(result: Result<T, sqlx::Error>, sqlstate: &str, constraint: &str) {
    let error = result.expect_err("the statement should have been rejected");
    assert_eq!(constraint_violation(&error), (sqlstate.to_owned(), Some(constraint.to_owned())), "{error}");
}

const CHECK_VIOLATION: &str = "23514";
const UNIQUE_VIOLATION: &str = "23505";

#[tokio::test]
async fn employee_status_outside_the_allowed_set_is_rejected() {
    let (_db, mut conn) = migrated_database().await;

    for status in ["active", "on_leave", "terminated"] {
        insert_employee(&mut conn, &format!("{status}@example.com"), status, None)
            .await
            .unwrap_or_else(|e| panic!("status {status} should be accepted: {e}"));
    }
    for status in ["fired", "Active", ""] {
        assert_violates(
            insert_employee(&mut conn, "other@example.com", status, None).await,
            CHECK_VIOLATION,
            "employees_status_valid",
        );
    }
}

#[tokio::test]
async fn employee_emails_are_unique_ignoring_case() {
    let (_db, mut conn) = migrated_database().await;
    insert_employee(&mut conn, "ada@example.com", "active", None).await.unwrap();

    assert_violates(
        insert_employee(&mut conn, "ADA@Example.com", "active", None).await,
        UNIQUE_VIOLATION,
        "employees_email_key",
    );
    assert_violates(
        insert_employee(&mut conn, "not-an-address", "active", None).await,
        CHECK_VIOLATION,
        "employees_email_valid",
    );
}

#[tokio::test]
async fn every_employee_update_bumps_the_version_exactly_once() {
    let (_db, mut conn) = migrated_database().await;
    let id = insert_employee(&mut conn, "ada@example.com", "active", None).await.unwrap();
    assert_eq!(employee_version(&mut conn, id).await, 1);

    // The optimistic-concurrency write: only matches the version the writer read.
    let updated = sqlx::query(
        "UPDATE employees SET job_title = 'Analyst', version = version + 1
         WHERE id = $1 AND version = $2",
    )
    .bind(id)
    .bind(1_i64)
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(updated.rows_affected(), 1);
    assert_eq!(employee_version(&mut conn, id).await, 2, "bumped once, not twice");

    // A writer that read version 1 has lost the race.
    let stale = sqlx::query("UPDATE employees SET job_title = 'Boss' WHERE id = $1 AND version = $2")
        .bind(id)
        .bind(1_i64)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(stale.rows_affected(), 0);

    // An update that forgets the version (or tries to rewind it) still bumps it.
    sqlx::query("UPDATE employees SET status = 'on_leave', version = 1 WHERE id = $1")
        .bind(id)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(employee_version(&mut conn, id).await, 3);
}

#[tokio::test]
async fn deleting_a_department_keeps_its_employees_without_one() {
    let (_db, mut conn) = migrated_database().await;
    let sales = insert_department(&mut conn, "Sales").await.unwrap();
    let id = insert_employee(&mut conn, "ada@example.com", "active", Some(sales)).await.unwrap();

    sqlx::query("DELETE FROM departments WHERE id = $1").bind(sales).execute(&mut conn).await.unwrap();

    let department: Option<Uuid> = sqlx::query_scalar("SELECT department_id FROM employees WHERE id = $1")
        .bind(id)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(department, None);
}

#[tokio::test]
async fn department_names_are_unique_ignoring_case() {
    let (_db, mut conn) = migrated_database().await;
    insert_department(&mut conn, "Sales").await.unwrap();

    assert_violates(insert_department(&mut conn, "sALES").await, UNIQUE_VIOLATION, "departments_name_key");
    assert_violates(insert_department(&mut conn, " ").await, CHECK_VIOLATION, "departments_name_valid");
}

#[tokio::test]
async fn account_type_outside_the_allowed_set_is_rejected_and_parents_must_exist() {
    let (_db, mut conn) = migrated_database().await;
    let insert = |code: &'static str, account_type: &'static str, parent: Option<&'static str>| {
        sqlx::query("INSERT INTO accounts (code, name, type, parent_code) VALUES ($1, 'Cash', $2, $3)")
            .bind(code)
            .bind(account_type)
            .bind(parent)
    };
    insert("1000", "asset", None).execute(&mut conn).await.unwrap();

    assert_violates(
        insert("1100", "assets", Some("1000")).execute(&mut conn).await,
        CHECK_VIOLATION,
        "accounts_type_valid",
    );
    assert_violates(
        insert("1200", "asset", Some("9999")).execute(&mut conn).await,
        "23503",
        "accounts_parent_code_fkey",
    );
    assert_violates(insert("1000", "asset", None).execute(&mut conn).await, UNIQUE_VIOLATION, "accounts_code_key");
}

#[tokio::test]
async fn company_settings_holds_at_most_one_row() {
    let (_db, mut conn) = migrated_database().await;
    let insert = |id: bool| {
        sqlx::query(
            "INSERT INTO company_settings (id, company_name, timezone, currency, chart_template)
             VALUES ($1, 'Acme', 'UTC', 'EUR', 'standard')",
        )
        .bind(id)
    };
    insert(true).execute(&mut conn).await.unwrap();

    assert_violates(insert(true).execute(&mut conn).await, UNIQUE_VIOLATION, "company_settings_pkey");
    assert_violates(insert(false).execute(&mut conn).await, CHECK_VIOLATION, "company_settings_single_row");
}

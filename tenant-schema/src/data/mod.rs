//! The tenant data layer: validated reads and writes of employees, departments and accounts,
//! each write committed together with its outbox event.
//!
//! Every function takes the `&mut PgConnection` of one company's database, logged in as that
//! company's own role: nothing here needs a superuser, and "not found" means "not in this
//! company's database". Writes run in their own transaction (a savepoint if the caller already
//! opened one) and end by appending one event to the [outbox], so a change and
//! its event commit or roll back together; [`Change::seq`] is that event's sequence number.
//!
//! Errors are [`DataError`]: its variants are what an API needs to choose a status code
//! (not found, invalid input naming the field, conflict naming the field, lost race with the
//! newer row); anything else is [`DataError::Database`], which callers should report as an
//! opaque internal error.

pub mod accounts;
pub mod departments;
pub mod employees;

use std::fmt;

use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::outbox;

/// A problem with one input field, named as in the JSON API (`"email"`, `"hire_date"`,
/// `"department_id"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field, as named in the JSON API.
    pub field: String,
    /// What is wrong with it, for people (e.g. `"must be at most 100 characters"`).
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), message: message.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.message)
    }
}

/// Everything a data-layer call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// No such row in this company's database.
    #[error("not found")]
    NotFound,

    /// The input is invalid; one entry per field at fault, in field order. Nothing was written.
    #[error("invalid input: {}", join(.0))]
    Invalid(Vec<FieldError>),

    /// The input clashes with an existing row (e.g. the e-mail address is taken). Nothing was
    /// written.
    #[error("conflict: {0}")]
    Conflict(FieldError),

    /// The row's version is no longer the expected one: someone else changed it first. Nothing
    /// was written; `current` is the row as it is now. (Boxed to keep `Result`s small.)
    #[error("the employee was changed meanwhile (now at version {})", .current.version)]
    VersionMismatch {
        /// The row as it is now.
        current: Box<employees::Employee>,
    },

    /// Anything else (connection lost, ...). Not for end users as-is.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl DataError {
    /// A [`DataError::Invalid`] about a single field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> DataError {
        DataError::Invalid(vec![FieldError::new(field, message)])
    }
}

fn join(errors: &[FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// A committed write: the written value and the outbox event it produced (whose `seq` lets a
/// client recognise, and skip, that event when it arrives live).
#[derive(Debug, Clone, PartialEq)]
pub struct Change<T> {
    /// The row as written (for a delete: the id of the deleted row).
    pub value: T,
    /// The write's event as committed to the outbox (what a reader of the outbox would get).
    pub event: outbox::OutboxEvent,
}

impl<T> Change<T> {
    /// The outbox sequence number of the write's event.
    pub fn seq(&self) -> i64 {
        self.event.seq
    }
}

/// Appends the event of a write to the outbox, inside the write's transaction, and returns its
/// event. Called as the last statement of the transaction (see `outbox::append`).
async fn record_event(
    conn: &mut PgConnection,
    channel: &str,
    action: &str,
    entity_id: Uuid,
    payload: &impl Serialize,
) -> Result<outbox::OutboxEvent, DataError> {
    let payload = serde_json::to_value(payload).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    Ok(outbox::insert_event(conn, channel, action, Some(entity_id), &payload).await?)
}

/// What a violated constraint means for the caller.
#[derive(Clone, Copy)]
enum Violation {
    /// The value clashes with another row: [`DataError::Conflict`].
    Conflict { field: &'static str, message: &'static str },
    /// The value is not acceptable: [`DataError::Invalid`].
    Invalid { field: &'static str, message: &'static str },
}

/// Maps a constraint violation listed in `rules` (by constraint name) to the field at fault;
/// any other error stays a [`DataError::Database`].
///
/// Validation runs before every write, so check constraints should only ever fire here if the
/// validation and the schema disagree; they are mapped anyway so that such a bug surfaces as a
/// field error rather than as an internal error.
fn map_violation(error: sqlx::Error, rules: &[(&str, Violation)]) -> DataError {
    let constraint = error.as_database_error().and_then(|e| e.constraint());
    match rules.iter().find(|(name, _)| Some(*name) == constraint) {
        Some((_, Violation::Conflict { field, message })) => DataError::Conflict(FieldError::new(*field, *message)),
        Some((_, Violation::Invalid { field, message })) => DataError::invalid(*field, *message),
        None => DataError::Database(error),
    }
}

/// Collects field errors while an input is checked, so that one call reports every problem.
#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// `value`, trimmed, if it is non-blank, at most `max_chars` characters and free of control
    /// characters; otherwise records why not and returns `None`.
    fn text(&mut self, field: &str, value: &str, max_chars: usize) -> Option<String> {
        let value = value.trim();
        if value.is_empty() {
            self.add(field, "must not be blank");
            None
        } else if value.chars().count() > max_chars {
            self.add(field, format!("must be at most {max_chars} characters"));
            None
        } else if value.chars().any(char::is_control) {
            self.add(field, "must not contain control characters");
            None
        } else {
            Some(value.to_owned())
        }
    }

    /// Like [`Problems::text`] for a nullable field: blank means "none".
    fn optional_text(&mut self, field: &str, value: Option<&str>, max_chars: usize) -> Option<Option<String>> {
        match value.map(str::trim) {
            None | Some("") => Some(None),
            Some(value) => self.text(field, value, max_chars).map(Some),
        }
    }

    /// [`DataError::Invalid`] with everything recorded.
    fn into_error(self) -> DataError {
        DataError::Invalid(self.0)
    }

    /// `Ok` if nothing was recorded, else [`DataError::Invalid`] with everything recorded.
    fn check(self) -> Result<(), DataError> {
        if self.0.is_empty() { Ok(()) } else { Err(DataError::Invalid(self.0)) }
    }
}

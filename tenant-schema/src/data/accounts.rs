//! The chart of accounts: listing and adding accounts.

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::{Connection, FromRow, PgConnection, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Change, DataError, Problems, Violation, map_violation, record_event};
use crate::seed::AccountType;

/// The outbox channel of account events.
pub const CHANNEL: &str = api_types::live::channel::ACCOUNTS;

/// Account codes are at most this many characters.
pub const MAX_CODE_CHARS: usize = 20;

/// Account names are at most this many characters.
pub const MAX_NAME_CHARS: usize = 200;

/// One account, as stored and as sent to clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: Uuid,
    /// The natural key accountants use, e.g. `"1200"`.
    pub code: String,
    pub name: String,
    /// Serialised as `"asset"`, `"liability"`, `"equity"`, `"income"` or `"expense"`.
    pub account_type: AccountType,
    /// Code of the parent (summary) account.
    pub parent_code: Option<String>,
    /// Serialised as RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The row on the wire: what the API answers and the outbox event carries.
impl From<Account> for api_types::ledger::Account {
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

impl FromRow<'_, PgRow> for Account {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let account_type: String = row.try_get("type")?;
        Ok(Account {
            id: row.try_get("id")?,
            code: row.try_get("code")?,
            name: row.try_get("name")?,
            account_type: AccountType::parse(&account_type).ok_or_else(|| sqlx::Error::ColumnDecode {
                index: "type".to_owned(),
                source: format!("unknown account type {account_type:?}").into(),
            })?,
            parent_code: row.try_get("parent_code")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// A new account.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAccount {
    /// 1 to 20 characters of `0-9 A-Z a-z . -`, starting with a letter or digit.
    pub code: String,
    /// 1 to 200 characters.
    pub name: String,
    pub account_type: AccountType,
    /// The code of an existing account; `None` or blank for a top-level account.
    pub parent_code: Option<String>,
}

const CONSTRAINTS: &[(&str, Violation)] = &[
    ("accounts_code_key", Violation::Conflict { field: "code", message: "is already used by another account" }),
    ("accounts_parent_code_fkey", Violation::Invalid { field: "parent_code", message: "is not an account" }),
    ("accounts_code_valid", Violation::Invalid { field: "code", message: "is not a valid account code" }),
    ("accounts_name_valid", Violation::Invalid { field: "name", message: "is not a valid name" }),
    ("accounts_type_valid", Violation::Invalid { field: "account_type", message: "is not an account type" }),
    ("accounts_not_own_parent", Violation::Invalid { field: "parent_code", message: "must not be the account itself" }),
];

/// Every account, ordered by code in byte order (`"1000"` < `"1000.1"` < `"1100"` < `"A100"`),
/// whatever the database's collation.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<Account>, DataError> {
    let accounts = sqlx::query_as(
        r#"SELECT id, code, name, type, parent_code, created_at FROM accounts ORDER BY code COLLATE "C""#,
    )
    .fetch_all(conn)
    .await?;
    Ok(accounts)
}

/// Checks a new account and returns it normalised (text trimmed, a blank parent as `None`).
/// Errors are always [`DataError::Invalid`], listing every field at fault.
pub fn validate_new(new: &NewAccount) -> Result<NewAccount, DataError> {
    let mut problems = Problems::default();
    let code = check_code(&mut problems, "code", &new.code);
    let name = problems.text("name", &new.name, MAX_NAME_CHARS);
    let parent_code = match new.parent_code.as_deref().map(str::trim) {
        None | Some("") => Some(None),
        Some(parent) if code.as_deref() == Some(parent) => {
            problems.add("parent_code", "must not be the account itself");
            None
        }
        Some(parent) => check_code(&mut problems, "parent_code", parent).map(Some),
    };
    match (code, name, parent_code) {
        (Some(code), Some(name), Some(parent_code)) => {
            Ok(NewAccount { code, name, account_type: new.account_type, parent_code })
        }
        _ => Err(problems.into_error()),
    }
}

fn check_code(problems: &mut Problems, field: &str, code: &str) -> Option<String> {
    let code = code.trim();
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-';
    if code.is_empty() {
        problems.add(field, "must not be blank");
        None
    } else if code.chars().count() > MAX_CODE_CHARS {
        problems.add(field, format!("must be at most {MAX_CODE_CHARS} characters"));
        None
    } else if !code.chars().all(allowed) || !code.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        problems.add(field, "must be letters, digits, '.' and '-', starting with a letter or digit");
        None
    } else {
        Some(code.to_owned())
    }
}

/// Validates (see [`validate_new`]) and adds an account, with a `created` event.
///
/// Errors: [`DataError::Invalid`] for invalid fields or a `parent_code` that names no account;
/// [`DataError::Conflict`] (field `code`) if the code is taken.
pub async fn create(conn: &mut PgConnection, new: &NewAccount) -> Result<Change<Account>, DataError> {
    let new = validate_new(new)?;
    let mut tx = conn.begin().await?;
    let account: Account = sqlx::query_as(
        r#"
        INSERT INTO accounts (id, code, name, type, parent_code)
        VALUES ($1, $2, $3, $4, $5)
        RETURNING id, code, name, type, parent_code, created_at
        "#,
    )
    .bind(Uuid::now_v7())
    .bind(&new.code)
    .bind(&new.name)
    .bind(new.account_type.as_str())
    .bind(&new.parent_code)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| map_violation(e, CONSTRAINTS))?;
    let event =
        record_event(&mut tx, CHANNEL, "created", account.id, &api_types::ledger::Account::from(account.clone()))
            .await?;
    tx.commit().await?;
    Ok(Change { value: account, event })
}

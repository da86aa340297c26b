//! Seed data for a new company: chart-of-accounts templates, default departments, and
//! [`seed_company`], which writes them into a freshly created company database.
//!
//! Default roles are not seeded here: a migration inserts them, so they are already in the
//! template database every company database is copied from.

use sqlx::PgConnection;

use crate::SchemaError;

mod charts;

/// The five account types of double-entry bookkeeping (column `accounts.type`); in JSON as in
/// the column (`"asset"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountType {
    /// Resources the company owns (cash, receivables, equipment).
    Asset,
    /// What the company owes (payables, loans, taxes due).
    Liability,
    /// The owners' stake (capital, retained earnings).
    Equity,
    /// Revenue and other income.
    Income,
    /// Costs and expenses.
    Expense,
}

impl AccountType {
    /// Every account type, in the usual chart order.
    pub const ALL: [AccountType; 5] =
        [AccountType::Asset, AccountType::Liability, AccountType::Equity, AccountType::Income, AccountType::Expense];

    /// The value stored in `accounts.type`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AccountType::Asset => "asset",
            AccountType::Liability => "liability",
            AccountType::Equity => "equity",
            AccountType::Income => "income",
            AccountType::Expense => "expense",
        }
    }

    /// Parses a value of `accounts.type`.
    pub fn parse(value: &str) -> Option<AccountType> {
        AccountType::ALL.into_iter().find(|t| t.as_str() == value)
    }
}

/// One account of a chart template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountSeed {
    /// Account code, unique within the chart (e.g. `"1200"`).
    pub code: &'static str,
    /// Display name (e.g. `"Accounts receivable"`).
    pub name: &'static str,
    /// Account type; a child has its parent's type.
    pub account_type: AccountType,
    /// Code of the parent (summary) account, listed earlier in the same chart.
    pub parent: Option<&'static str>,
}

/// A chart-of-accounts template a company can start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartTemplate {
    /// Stable code stored in `company_settings.chart_template` and accepted by signup.
    pub code: &'static str,
    /// Display name for the signup wizard.
    pub name: &'static str,
    /// One-sentence description for the signup wizard.
    pub description: &'static str,
    /// The accounts, parents before their children.
    pub accounts: &'static [AccountSeed],
}

/// The template used when signup does not choose one.
pub const DEFAULT_CHART_TEMPLATE: &str = "standard";

/// Every chart template, the default first.
pub fn chart_templates() -> &'static [ChartTemplate] {
    charts::TEMPLATES
}

/// The chart template with this code.
pub fn chart_template(code: &str) -> Option<&'static ChartTemplate> {
    chart_templates().iter().find(|t| t.code == code)
}

/// The departments a new company gets unless signup lists its own.
pub fn default_departments() -> &'static [&'static str] {
    &["Administration", "Finance", "Operations", "Sales"]
}

/// What [`seed_company`] writes into a new company database.
#[derive(Debug, Clone, Copy)]
pub struct CompanySeed<'a> {
    /// The company's display name.
    pub company_name: &'a str,
    /// IANA time zone name, e.g. `"Europe/Berlin"`.
    pub timezone: &'a str,
    /// ISO 4217 currency code, e.g. `"EUR"`.
    pub currency: &'a str,
    /// The chart of accounts to start from.
    pub chart_template: &'a ChartTemplate,
    /// Departments to create (names unique ignoring case); may be empty.
    pub departments: &'a [String],
}

/// Seeds a freshly created (and migrated) company database: the settings row, the chart of
/// accounts and the departments.
///
/// It is one SQL statement (data-modifying CTEs, accounts and departments bulk-inserted from
/// arrays with `unnest`), so it is atomic and costs a single round trip on the provisioning path.
///
/// Errors, with nothing written in every case:
/// - [`SchemaError::AlreadySeeded`] if the database already has its settings row;
/// - [`SchemaError::InvalidSeed`] if a value breaks a schema constraint (blank or overlong
///   company name, unknown time zone, currency not three capital letters, blank or duplicate
///   department name);
/// - [`SchemaError::Database`] otherwise.
pub async fn seed_company(conn: &mut PgConnection, seed: &CompanySeed<'_>) -> Result<(), SchemaError> {
    let accounts = seed.chart_template.accounts;
    let codes: Vec<&str> = accounts.iter().map(|a| a.code).collect();
    let names: Vec<&str> = accounts.iter().map(|a| a.name).collect();
    let types: Vec<&str> = accounts.iter().map(|a| a.account_type.as_str()).collect();
    let parents: Vec<Option<&str>> = accounts.iter().map(|a| a.parent).collect();
    let departments: Vec<&str> = seed.departments.iter().map(String::as_str).collect();

    // The settings insert decides: if the row already exists it inserts nothing, and the other
    // two inserts are conditional on it, so a second run writes nothing at all. Foreign keys
    // between accounts (parent_code) are checked at the end of the statement, so the order of
    // rows within the array does not matter.
    let seeded: bool = sqlx::query_scalar(
        r#"
        WITH settings AS (
            INSERT INTO company_settings (company_name, timezone, currency, chart_template)
            VALUES ($1, $2, $3, $4)
            ON CONFLICT (id) DO NOTHING
            RETURNING id
        ), chart AS (
            INSERT INTO accounts (code, name, type, parent_code)
            SELECT a.code, a.name, a.type, a.parent_code
            FROM unnest($5::text[], $6::text[], $7::text[], $8::text[])
                AS a (code, name, type, parent_code)
            WHERE EXISTS (SELECT FROM settings)
        ), departments AS (
            INSERT INTO departments (name)
            SELECT d.name
            FROM unnest($9::text[]) AS d (name)
            WHERE EXISTS (SELECT FROM settings)
        )
        SELECT EXISTS (SELECT FROM settings)
        "#,
    )
    .bind(seed.company_name)
    .bind(seed.timezone)
    .bind(seed.currency)
    .bind(seed.chart_template.code)
    .bind(&codes)
    .bind(&names)
    .bind(&types)
    .bind(&parents)
    .bind(&departments)
    .fetch_one(&mut *conn)
    .await
    .map_err(invalid_seed)?;

    if !seeded {
        return Err(SchemaError::AlreadySeeded);
    }
    tracing::debug!(
        chart_template = seed.chart_template.code,
        accounts = accounts.len(),
        departments = departments.len(),
        "seeded company database"
    );
    Ok(())
}

/// Maps a constraint violation caused by a seed value to the field at fault.
fn invalid_seed(error: sqlx::Error) -> SchemaError {
    let Some(db_error) = error.as_database_error() else {
        return error.into();
    };
    let (field, reason) = match db_error.constraint() {
        Some("company_settings_company_name_valid") => ("company_name", "must be non-blank and at most 200 characters"),
        Some("company_settings_timezone_valid") => ("timezone", "is not a known time zone"),
        Some("company_settings_currency_valid") => ("currency", "must be an ISO 4217 code of three capital letters"),
        Some("company_settings_chart_template_valid") => ("chart_template", "is not a valid template code"),
        Some("departments_name_valid") => ("departments", "names must be non-blank and at most 100 characters"),
        Some("departments_name_key") => ("departments", "names must be unique, ignoring case"),
        _ => return error.into(),
    };
    SchemaError::InvalidSeed { field, reason }
}

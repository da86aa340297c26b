//! Seeding a new company database.

use sqlx::PgConnection;
use tenant_schema::SchemaError;
use tenant_schema::seed::{
    ChartTemplate, CompanySeed, DEFAULT_CHART_TEMPLATE, chart_template, chart_templates, default_departments,
    seed_company,
};

use crate::migrated_database;

fn default_chart() -> &'static ChartTemplate {
    chart_template(DEFAULT_CHART_TEMPLATE).expect("the default template exists")
}

fn departments(names: &[&str]) -> Vec<String> {
    names.iter().map(|&n| n.to_owned()).collect()
}

async fn count(conn: &mut PgConnection, table: &str) -> i64 {
    let sql = match table {
        "company_settings" => "SELECT count(*) FROM company_settings",
        "accounts" => "SELECT count(*) FROM accounts",
        "departments" => "SELECT count(*) FROM departments",
        other => panic!("no count query for {other}"),
    };
    sqlx::query_scalar(sql).fetch_one(conn).await.unwrap()
}

#[tokio::test]
async fn seeding_writes_settings_chart_and_departments() {
    let (_db, mut conn) = migrated_database().await;
    let chart = default_chart();
    let names = departments(default_departments());

    seed_company(
        &mut conn,
        &CompanySeed {
            company_name: "Acme Widgets GmbH",
            timezone: "Europe/Berlin",
            currency: "EUR",
            chart_template: chart,
            departments: &names,
        },
    )
    .await
    .unwrap();

    let settings: (String, String, String, String) =
        sqlx::query_as("SELECT company_name, timezone, currency, chart_template FROM company_settings")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        settings,
        ("Acme Widgets GmbH".into(), "Europe/Berlin".into(), "EUR".into(), DEFAULT_CHART_TEMPLATE.into())
    );

    let accounts: Vec<(String, String, String, Option<String>)> =
        sqlx::query_as("SELECT code, name, type, parent_code FROM accounts ORDER BY code")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let mut expected: Vec<(String, String, String, Option<String>)> = chart
        .accounts
        .iter()
        .map(|a| {
            (a.code.to_owned(), a.name.to_owned(), a.account_type.as_str().to_owned(), a.parent.map(str::to_owned))
        })
        .collect();
    expected.sort();
    assert_eq!(accounts, expected);

    let stored: Vec<String> =
        sqlx::query_scalar("SELECT name FROM departments ORDER BY name").fetch_all(&mut conn).await.unwrap();
    let mut expected = names.clone();
    expected.sort();
    assert_eq!(stored, expected);
}

#[tokio::test]
async fn every_chart_template_can_be_seeded() {
    for template in chart_templates() {
        let (_db, mut conn) = migrated_database().await;
        seed_company(
            &mut conn,
            &CompanySeed {
                company_name: "Template Test Ltd",
                timezone: "UTC",
                currency: "USD",
                chart_template: template,
                departments: &[],
            },
        )
        .await
        .unwrap_or_else(|e| panic!("seeding template {}: {e}", template.code));
        assert_eq!(count(&mut conn, "accounts").await, template.accounts.len() as i64);
        assert_eq!(count(&mut conn, "departments").await, 0);
    }
}

#[tokio::test]
async fn seeding_twice_fails_cleanly_and_changes_nothing() {
    let (_db, mut conn) = migrated_database().await;
    let names = departments(&["Sales"]);
    let seed = CompanySeed {
        company_name: "Twice Inc",
        timezone: "America/New_York",
        currency: "USD",
        chart_template: default_chart(),
        departments: &names,
    };
    seed_company(&mut conn, &seed).await.unwrap();

    let other_names = departments(&["Support"]);
    let again = CompanySeed { company_name: "Someone Else", departments: &other_names, ..seed };
    let error = seed_company(&mut conn, &again).await.unwrap_err();

    assert!(matches!(error, SchemaError::AlreadySeeded), "{error:?}");
    let name: String =
        sqlx::query_scalar("SELECT company_name FROM company_settings").fetch_one(&mut conn).await.unwrap();
    assert_eq!(name, "Twice Inc");
    assert_eq!(count(&mut conn, "accounts").await, default_chart().accounts.len() as i64);
    assert_eq!(count(&mut conn, "departments").await, 1);
}

#[tokio::test]
async fn invalid_seed_values_are_rejected_and_write_nothing() {
    let (_db, mut conn) = migrated_database().await;
    let valid_departments = departments(&["Sales"]);
    let valid = CompanySeed {
        company_name: "Valid Co",
        timezone: "Europe/Paris",
        currency: "EUR",
        chart_template: default_chart(),
        departments: &valid_departments,
    };
    let blank_department = departments(&["Sales", "  "]);
    let duplicate_departments = departments(&["Sales", "SALES"]);
    let too_long_name = "x".repeat(201);

    // (what is wrong, the seed, the field the error must name)
    let cases = [
        ("blank company name", CompanySeed { company_name: "   ", ..valid }, "company_name"),
        ("overlong company name", CompanySeed { company_name: &too_long_name, ..valid }, "company_name"),
        ("unknown time zone", CompanySeed { timezone: "Mars/Olympus_Mons", ..valid }, "timezone"),
        ("empty time zone", CompanySeed { timezone: "", ..valid }, "timezone"),
        ("lower-case currency", CompanySeed { currency: "eur", ..valid }, "currency"),
        ("four-letter currency", CompanySeed { currency: "EURO", ..valid }, "currency"),
        ("blank department", CompanySeed { departments: &blank_department, ..valid }, "departments"),
        ("duplicate departments", CompanySeed { departments: &duplicate_departments, ..valid }, "departments"),
    ];
    for (case, seed, field) in cases {
        check_rejected(&mut conn, case, &seed, field).await;
    }

    // Nothing was written by the failures: the valid seed still goes through.
    seed_company(&mut conn, &valid).await.unwrap();
}

async fn check_rejected(conn: &mut PgConnection, case: &str, seed: &CompanySeed<'_>, field: &str) {
    match seed_company(conn, seed).await {
        Err(SchemaError::InvalidSeed { field: actual, .. }) => {
            assert_eq!(actual, field, "{case}: wrong field");
        }
        other => panic!("{case}: expected InvalidSeed for {field}, got {other:?}"),
    }
    for table in ["company_settings", "accounts", "departments"] {
        assert_eq!(count(conn, table).await, 0, "{case}: {table} written");
    }
}

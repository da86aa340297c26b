//! The chart-of-accounts data layer.

use serde_json::json;
use tenant_schema::data::DataError;
use tenant_schema::data::accounts::{self, NewAccount, validate_new};
use tenant_schema::outbox::{events_after, last_seq};
use tenant_schema::seed::AccountType;

use crate::migrated_database;

fn account(code: &str, name: &str, parent_code: Option<&str>) -> NewAccount {
    NewAccount {
        code: code.to_owned(),
        name: name.to_owned(),
        account_type: AccountType::Asset,
        parent_code: parent_code.map(str::to_owned),
    }
}

fn invalid_fields<T: std::fmt::Debug>(result: Result<T, DataError>) -> Vec<String> {
    match result {
        Err(DataError::Invalid(errors)) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

#[tokio::test]
async fn created_accounts_are_listed_by_code_each_with_an_event() {
    let (_db, mut conn) = migrated_database().await;
    let assets = accounts::create(&mut conn, &account("1000", "Assets", None)).await.unwrap();
    let cash = accounts::create(&mut conn, &account(" 1000.1 ", "Cash", Some("1000"))).await.unwrap();
    let income = NewAccount { account_type: AccountType::Income, ..account("A-400", "Sales income", Some("")) };
    let income = accounts::create(&mut conn, &income).await.unwrap();
    accounts::create(&mut conn, &account("1100", "Receivables", Some("1000"))).await.unwrap();
    assert_eq!((assets.seq(), cash.seq(), income.seq()), (1, 2, 3));
    assert_eq!((cash.value.code.as_str(), cash.value.parent_code.as_deref()), ("1000.1", Some("1000")));
    assert_eq!(income.value.parent_code, None);

    let codes: Vec<String> = accounts::list(&mut conn).await.unwrap().into_iter().map(|a| a.code).collect();
    assert_eq!(codes, ["1000", "1000.1", "1100", "A-400"]);

    let events = events_after(&mut conn, 0, 10).await.unwrap();
    let event = &events[1];
    assert_eq!(
        (event.channel.as_str(), event.action.as_str(), event.entity_id),
        ("accounts", "created", Some(cash.value.id))
    );
    assert_eq!(event.payload, serde_json::to_value(&cash.value).unwrap());
    let payload = &events[2].payload;
    assert_eq!(
        (&payload["code"], &payload["account_type"], &payload["parent_code"]),
        (&json!("A-400"), &json!("income"), &json!(null))
    );
}

#[tokio::test]
async fn an_unknown_parent_is_invalid_and_a_taken_code_is_a_conflict_without_events() {
    let (_db, mut conn) = migrated_database().await;
    accounts::create(&mut conn, &account("1000", "Assets", None)).await.unwrap();

    let orphan = account("1200", "Receivables", Some("9999"));
    assert_eq!(invalid_fields(accounts::create(&mut conn, &orphan).await), ["parent_code"]);
    match accounts::create(&mut conn, &account("1000", "Other assets", None)).await {
        Err(DataError::Conflict(field)) => assert_eq!(field.field, "code"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(last_seq(&mut conn).await.unwrap(), 1);
    assert_eq!(accounts::list(&mut conn).await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_seeded_chart_is_listed() {
    let (_db, mut conn) = migrated_database().await;
    let chart = tenant_schema::seed::chart_template(tenant_schema::seed::DEFAULT_CHART_TEMPLATE).unwrap();
    let departments = Vec::new();
    let seed = tenant_schema::seed::CompanySeed {
        company_name: "Acme",
        timezone: "UTC",
        currency: "EUR",
        chart_template: chart,
        departments: &departments,
    };
    tenant_schema::seed::seed_company(&mut conn, &seed).await.unwrap();
    let listed = accounts::list(&mut conn).await.unwrap();
    assert_eq!(listed.len(), chart.accounts.len());
    for seeded in chart.accounts {
        let found = listed.iter().find(|a| a.code == seeded.code).unwrap();
        assert_eq!(
            (found.name.as_str(), found.account_type, found.parent_code.as_deref()),
            (seeded.name, seeded.account_type, seeded.parent)
        );
    }
}

/// Asserts that `validate_new` accepts `input` (`field` is `None`) or rejects exactly `field`.
fn check(input: NewAccount, field: Option<&str>) {
    match (field, validate_new(&input)) {
        (None, Ok(_)) => {}
        (Some(field), Err(DataError::Invalid(errors))) => {
            let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, [field], "{input:?}: {errors:?}");
        }
        (expected, outcome) => panic!("{input:?}: expected {expected:?}, got {outcome:?}"),
    }
}

#[test]
fn account_validation_names_the_field_at_fault() {
    check(account("1000", "Assets", None), None);
    check(account("a.B-9", "Assets", None), None);
    check(account(&"9".repeat(20), "Assets", None), None);
    check(account("", "Assets", None), Some("code"));
    check(account(&"9".repeat(21), "Assets", None), Some("code"));
    check(account("10 00", "Assets", None), Some("code"));
    check(account("10_00", "Assets", None), Some("code"));
    check(account(".100", "Assets", None), Some("code"));
    check(account("-100", "Assets", None), Some("code"));
    check(account("1000", "", None), Some("name"));
    check(account("1000", &"x".repeat(200), None), None);
    check(account("1000", &"x".repeat(201), None), Some("name"));
    check(account("1100", "Cash", Some("1000")), None);
    check(account("1100", "Cash", Some(" ")), None);
    check(account("1100", "Cash", Some("1100")), Some("parent_code"));
    check(account("1100", "Cash", Some("10 00")), Some("parent_code"));
}

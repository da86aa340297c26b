//! The data layer as production runs it: logged in as the company's own role, which owns the
//! tables but is not a superuser.

use sqlx::PgConnection;
use tenant_schema::data::accounts::{self, NewAccount};
use tenant_schema::data::employees::{self, EmployeePatch, ListQuery, NewEmployee};
use tenant_schema::data::{DataError, departments};
use tenant_schema::outbox::{events_after, last_seq};
use tenant_schema::seed::AccountType;
use time::macros::date;

use crate::tenant_role_database;

async fn is_superuser(conn: &mut PgConnection) -> bool {
    sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetch_one(conn).await.unwrap()
}

#[tokio::test]
async fn the_data_layer_works_for_a_tenant_role_that_is_not_a_superuser() {
    let (tenant, mut conn) = tenant_role_database().await;
    assert!(!is_superuser(&mut conn).await);
    let owner: String = sqlx::query_scalar("SELECT tableowner::text FROM pg_tables WHERE tablename = 'employees'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(owner, tenant.role());

    let research = departments::create(&mut conn, "Research").await.unwrap();
    let new = NewEmployee {
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        email: "ada@example.com".into(),
        job_title: None,
        department_id: Some(research.value.id),
        hire_date: date!(2024 - 03 - 01),
        status: None,
    };
    let ada = employees::create(&mut conn, &new).await.unwrap();
    let patch = EmployeePatch { job_title: Some(Some("Analyst".into())), ..EmployeePatch::default() };
    let updated = employees::update(&mut conn, ada.value.id, Some(1), &patch).await.unwrap();
    let page = employees::list(&mut conn, &ListQuery { search: Some("ada lov".into()), ..ListQuery::default() })
        .await
        .unwrap();
    assert_eq!(page.items, std::slice::from_ref(&updated.value));
    let account =
        NewAccount { code: "1000".into(), name: "Assets".into(), account_type: AccountType::Asset, parent_code: None };
    let account = accounts::create(&mut conn, &account).await.unwrap();
    assert_eq!(accounts::list(&mut conn).await.unwrap(), [account.value]);
    assert!(matches!(
        employees::create(&mut conn, &new).await,
        Err(DataError::Conflict(field)) if field.field == "email"
    ));
    let deleted = employees::delete(&mut conn, ada.value.id, Some(2)).await.unwrap();
    assert_eq!(departments::list(&mut conn).await.unwrap(), [research.value]);

    // A second session of the same role sees the events in order.
    let mut other = tenant.connect().await;
    assert!(!is_superuser(&mut other).await);
    assert_eq!(last_seq(&mut other).await.unwrap(), deleted.seq());
    let actions: Vec<(String, String)> =
        events_after(&mut other, 0, 10).await.unwrap().into_iter().map(|e| (e.channel, e.action)).collect();
    let expected = [
        ("departments", "created"),
        ("employees", "created"),
        ("employees", "updated"),
        ("accounts", "created"),
        ("employees", "deleted"),
    ];
    assert_eq!(actions, expected.map(|(c, a)| (c.to_owned(), a.to_owned())));
}

//! The departments data layer.

use tenant_schema::data::{DataError, departments};
use tenant_schema::outbox::{events_after, last_seq};

use crate::migrated_database;

#[tokio::test]
async fn created_departments_are_listed_by_name_ignoring_case_each_with_an_event() {
    let (_db, mut conn) = migrated_database().await;
    let mut seqs = Vec::new();
    for name in ["sales", "  Research ", "Administration", "operations"] {
        seqs.push(departments::create(&mut conn, name).await.unwrap().seq());
    }
    assert_eq!(seqs, [1, 2, 3, 4]);

    let listed = departments::list(&mut conn).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["Administration", "operations", "Research", "sales"]);

    let events = events_after(&mut conn, 0, 10).await.unwrap();
    let research = listed.iter().find(|d| d.name == "Research").unwrap();
    let event = &events[1];
    assert_eq!(
        (event.channel.as_str(), event.action.as_str(), event.entity_id),
        ("departments", "created", Some(research.id))
    );
    assert_eq!(event.payload, serde_json::to_value(research).unwrap());
    assert_eq!(event.payload["name"], "Research");
}

#[tokio::test]
async fn a_department_name_taken_in_any_case_is_a_conflict_and_leaves_no_event() {
    let (_db, mut conn) = migrated_database().await;
    departments::create(&mut conn, "Sales").await.unwrap();
    match departments::create(&mut conn, " SALES ").await {
        Err(DataError::Conflict(field)) => assert_eq!(field.field, "name"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(last_seq(&mut conn).await.unwrap(), 1);
    assert_eq!(departments::list(&mut conn).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_blank_or_overlong_department_name_is_invalid() {
    let (_db, mut conn) = migrated_database().await;
    for name in ["", "   ", &"x".repeat(101), "Tab\tin name"] {
        match departments::create(&mut conn, name).await {
            Err(DataError::Invalid(errors)) => {
                assert_eq!(errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["name"], "{name:?}")
            }
            other => panic!("{name:?}: expected Invalid, got {other:?}"),
        }
    }
    departments::create(&mut conn, &"x".repeat(100)).await.unwrap();
    assert_eq!(last_seq(&mut conn).await.unwrap(), 1);
}

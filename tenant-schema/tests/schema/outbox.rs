//! The event outbox: gap-free sequence numbers in commit order.

use serde_json::json;
use sqlx::Connection;
use tenant_schema::outbox::{append, events_after, last_seq};
use uuid::Uuid;

use crate::migrated_database;

#[tokio::test]
async fn a_rolled_back_write_leaves_no_gap_in_the_outbox_sequence() {
    let (_db, mut conn) = migrated_database().await;
    assert_eq!(last_seq(&mut conn).await.unwrap(), 0);

    let mut tx = conn.begin().await.unwrap();
    let lost = append(&mut tx, "employees", "created", Some(Uuid::now_v7()), &json!({"n": 0})).await.unwrap();
    assert_eq!(lost.seq, 1);
    tx.rollback().await.unwrap();

    let entity = Uuid::now_v7();
    let first = append(&mut conn, "employees", "created", Some(entity), &json!({"n": 1})).await.unwrap();
    let second = append(&mut conn, "employees", "deleted", Some(entity), &json!({"n": 2})).await.unwrap();

    assert_eq!((first.seq, second.seq), (1, 2));
    assert_eq!(last_seq(&mut conn).await.unwrap(), 2);
    let events = events_after(&mut conn, 0, 10).await.unwrap();
    assert_eq!(events, [first.clone(), second.clone()]);
    assert_eq!(events_after(&mut conn, 1, 10).await.unwrap(), [second]);
    assert_eq!(events_after(&mut conn, 0, 1).await.unwrap(), [first]);
}

#[tokio::test]
async fn concurrent_writers_get_consecutive_sequence_numbers() {
    let (db, _conn) = migrated_database().await;
    let writers = 8;
    let mut tasks = Vec::new();
    for i in 0..writers {
        let mut conn = db.connect().await;
        tasks.push(tokio::spawn(async move {
            let mut tx = conn.begin().await.unwrap();
            let event = append(&mut tx, "employees", "updated", None, &json!({ "writer": i })).await.unwrap();
            // Every third writer gives up: its number must be reused, not lost.
            if i % 3 == 0 {
                tx.rollback().await.unwrap();
                None
            } else {
                tx.commit().await.unwrap();
                Some(event.seq)
            }
        }));
    }
    let mut committed = Vec::new();
    for task in tasks {
        committed.extend(task.await.unwrap());
    }
    committed.sort();

    let expected: Vec<i64> = (1..=committed.len() as i64).collect();
    assert_eq!(committed, expected);
}

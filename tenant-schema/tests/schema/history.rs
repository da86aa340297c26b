//! The step-by-step API of bulk migrations: reading a database's history against the code
//! (pending migrations, drift of every kind) and applying one migration at a time in the
//! caller's transaction, with history rows refinery itself accepts.

use refinery::Migration;
use sqlx::Connection;
use tenant_schema::{Drift, PendingMigration, apply_one, check_history, lock_for_transaction, migrate_with};

use crate::{fresh_database, table_names};

fn migration(file_name: &str, sql: &str) -> Migration {
    Migration::unapplied(file_name, sql).expect("valid migration name")
}

fn pending(list: &[(i32, &str)]) -> Vec<PendingMigration> {
    list.iter().map(|(version, name)| PendingMigration { version: *version, name: (*name).to_owned() }).collect()
}

#[tokio::test]
async fn history_is_compared_with_the_code_up_to_a_target() {
    let db = fresh_database().await;
    let mut conn = db.connect().await;
    let code = [
        migration("V1__a", "CREATE TABLE a (id int);"),
        migration("V2__b", "CREATE TABLE b (id int);"),
        migration("V3__c", "CREATE TABLE c (id int);"),
    ];

    let empty = check_history(&mut conn, &code, None).await.unwrap();
    assert_eq!(empty.applied_version, None);
    assert_eq!(empty.pending, pending(&[(1, "a"), (2, "b"), (3, "c")]));
    assert_eq!(empty.drift, None);

    migrate_with(&mut conn, &code[..1]).await.unwrap();
    let check = check_history(&mut conn, &code, Some(2)).await.unwrap();
    assert_eq!(check.applied_version, Some(1));
    assert_eq!(check.pending, pending(&[(2, "b")]), "nothing beyond the target");
    assert_eq!(check.drift, None);
}

#[tokio::test]
async fn every_kind_of_drift_is_named_and_leaves_nothing_pending() {
    let code = [migration("V1__a", "CREATE TABLE a (id int);"), migration("V2__b", "CREATE TABLE b (id int);")];
    let check = |applied: Vec<Migration>, code: Vec<Migration>| async move {
        let db = fresh_database().await;
        let mut conn = db.connect().await;
        migrate_with(&mut conn, &applied).await.unwrap();
        check_history(&mut conn, &code, None).await.unwrap()
    };

    let edited =
        check(vec![code[0].clone()], vec![migration("V1__a", "CREATE TABLE a (id bigint);"), code[1].clone()]).await;
    assert!(matches!(&edited.drift, Some(Drift::Divergent { version: 1, same_name: true, .. })), "{edited:?}");
    assert!(edited.pending.is_empty());
    assert!(edited.drift.unwrap().to_string().contains("different checksum"));

    let renamed = check(vec![code[0].clone()], vec![migration("V1__other", "CREATE TABLE a (id int);")]).await;
    assert!(matches!(&renamed.drift, Some(Drift::Divergent { version: 1, same_name: false, .. })), "{renamed:?}");

    let newer = check(code.to_vec(), vec![code[0].clone()]).await;
    assert_eq!(newer.drift, Some(Drift::UnknownToCode { version: 2, name: "b".into() }));

    let skipped = check(vec![code[1].clone()], code.to_vec()).await;
    assert_eq!(skipped.drift, Some(Drift::NeverApplied { version: 1, name: "a".into() }));
    assert!(skipped.pending.is_empty());
}

#[tokio::test]
async fn applying_one_at_a_time_in_a_transaction_commits_or_rolls_back_together() {
    let db = fresh_database().await;
    let mut conn = db.connect().await;
    let code = [
        migration("V1__a", "CREATE TABLE a (id int);"),
        migration("V2__b", "CREATE TABLE b (id int); -- a trailing comment"),
        migration("V3__broken", "CREATE TABLE c (id int);\nSELECT * FROM no_such_table;"),
    ];
    migrate_with(&mut conn, &code[..1]).await.unwrap();

    // V2 applies, V3 fails: the rollback takes both back.
    let mut tx = conn.begin().await.unwrap();
    lock_for_transaction(&mut tx).await.unwrap();
    let applied = apply_one(&mut tx, &code, 2).await.unwrap();
    assert_eq!((applied.version, applied.name.as_str()), (2, "b"));
    assert!(apply_one(&mut tx, &code, 3).await.is_err());
    tx.rollback().await.unwrap();
    assert_eq!(table_names(&mut conn).await, ["a", "refinery_schema_history"]);

    // V2 alone commits, and its history row is one refinery agrees with: a later
    // `migrate_with` of the same code sees no drift and nothing to do up to V2.
    let mut tx = conn.begin().await.unwrap();
    lock_for_transaction(&mut tx).await.unwrap();
    apply_one(&mut tx, &code, 2).await.unwrap();
    tx.commit().await.unwrap();
    let check = check_history(&mut conn, &code[..2], None).await.unwrap();
    assert_eq!((check.applied_version, check.drift, check.pending.len()), (Some(2), None, 0));
    let report = migrate_with(&mut conn, &code[..2]).await.unwrap();
    assert!(report.applied.is_empty(), "{report:?}");
}

//! Migrating: reaching the latest version, grouped rollback, refusing divergent history.

use refinery::{Migration, Runner};
use sqlx::{Connection, PgConnection};
use tenant_schema::refinery_driver::SqlxConnection;
use tenant_schema::{SchemaError, applied_version, latest_version, migrate_to_latest, migrate_with};

use crate::{fresh_database, table_names};

fn migration(file_name: &str, sql: &str) -> Migration {
    Migration::unapplied(file_name, sql).expect("valid migration name")
}

#[test]
fn latest_version_is_the_highest_embedded_migration() {
    let migrations = tenant_schema::migrations();
    let versions: Vec<i32> = migrations.iter().map(Migration::version).collect();
    assert!(!versions.is_empty());
    assert!(versions.is_sorted(), "migrations come in version order: {versions:?}");
    let mut unique = versions.clone();
    unique.dedup();
    assert_eq!(unique, versions, "versions are unique");
    assert_eq!(latest_version(), *versions.last().unwrap());
}

#[tokio::test]
async fn migrating_an_empty_database_reaches_the_latest_version() {
    let db = fresh_database().await;
    let mut conn = db.connect().await;
    assert_eq!(applied_version(&mut conn).await.unwrap(), None);

    let report = migrate_to_latest(&mut conn).await.unwrap();

    assert_eq!(report.previous_version, None);
    assert_eq!(report.current_version, Some(latest_version()));
    let applied: Vec<i32> = report.applied.iter().map(|m| m.version).collect();
    let all: Vec<i32> = tenant_schema::migrations().iter().map(Migration::version).collect();
    assert_eq!(applied, all);
    assert_eq!(applied_version(&mut conn).await.unwrap(), Some(latest_version()));
    assert_eq!(
        table_names(&mut conn).await,
        [
            "accounts",
            "company_settings",
            "departments",
            "employees",
            "outbox",
            "outbox_seq",
            "refinery_schema_history",
            "roles",
        ]
    );
}

#[tokio::test]
async fn migrating_twice_applies_nothing_the_second_time() {
    let db = fresh_database().await;
    let mut conn = db.connect().await;
    migrate_to_latest(&mut conn).await.unwrap();

    let report = migrate_to_latest(&mut conn).await.unwrap();

    assert!(report.applied.is_empty(), "{report:?}");
    assert_eq!(report.previous_version, Some(latest_version()));
    assert_eq!(report.current_version, Some(latest_version()));
}

#[tokio::test]
async fn migrating_adds_the_default_roles() {
    let db = fresh_database().await;
    let mut conn = db.connect().await;
    migrate_to_latest(&mut conn).await.unwrap();

    let roles: Vec<(String, Vec<String>)> =
        sqlx::query_as("SELECT code, permissions FROM roles ORDER BY code").fetch_all(&mut conn).await.unwrap();

    let codes: Vec<&str> = roles.iter().map(|(code, _)| code.as_str()).collect();
    assert_eq!(codes, ["admin", "manager", "staff"]);
    assert_eq!(roles[0].1, ["*"]);
    assert!(roles[2].1.contains(&"employees.read".to_owned()));
}

#[tokio::test]
async fn a_failing_migration_leaves_the_database_unchanged() {
    let db = fresh_database().await;
    let mut conn = db.connect().await;
    let migrations = [
        migration("V1__first", "CREATE TABLE first_table (id int);"),
        migration("V2__second", "CREATE TABLE second_table (id int);\nSELECT * FROM no_such_table;"),
    ];

    let error = migrate_with(&mut conn, &migrations).await.unwrap_err();

    assert!(matches!(error, SchemaError::Migration(_)), "{error:?}");
    // refinery creates its (empty) history table before the grouped run; nothing else exists.
    assert_eq!(table_names(&mut conn).await, ["refinery_schema_history"]);
    assert_eq!(applied_version(&mut conn).await.unwrap(), None);
    // The connection is still usable and the lock was released: a fixed run succeeds.
    let fixed = [
        migration("V1__first", "CREATE TABLE first_table (id int);"),
        migration("V2__second", "CREATE TABLE second_table (id int);"),
    ];
    let report = migrate_with(&mut conn, &fixed).await.unwrap();
    assert_eq!(report.current_version, Some(2));
}

#[tokio::test]
async fn a_failing_upgrade_keeps_the_previous_version() {
    let db = fresh_database().await;
    let mut conn = db.connect().await;
    let v1 = migration("V1__first", "CREATE TABLE first_table (id int);");
    migrate_with(&mut conn, std::slice::from_ref(&v1)).await.unwrap();
    let upgrade = [
        v1,
        migration("V2__second", "CREATE TABLE second_table (id int);"),
        migration("V3__third", "ALTER TABLE first_table ADD COLUMN id int;"),
    ];

    let error = migrate_with(&mut conn, &upgrade).await.unwrap_err();

    assert!(matches!(error, SchemaError::Migration(_)), "{error:?}");
    assert_eq!(applied_version(&mut conn).await.unwrap(), Some(1));
    assert_eq!(table_names(&mut conn).await, ["first_table", "refinery_schema_history"]);
}

#[tokio::test]
async fn a_database_with_divergent_history_is_refused() {
    let db = fresh_database().await;
    let mut conn = db.connect().await;
    migrate_with(&mut conn, &[migration("V1__first", "CREATE TABLE a (id int);")]).await.unwrap();
    let edited =
        [migration("V1__first", "CREATE TABLE a (id bigint);"), migration("V2__second", "CREATE TABLE b (id int);")];

    let error = migrate_with(&mut conn, &edited).await.unwrap_err();

    assert!(matches!(&error, SchemaError::DivergentHistory { version: 1, .. }), "{error:?}");
    assert_eq!(applied_version(&mut conn).await.unwrap(), Some(1));
    assert_eq!(table_names(&mut conn).await, ["a", "refinery_schema_history"]);
}

#[tokio::test]
async fn a_database_newer_than_the_code_is_refused() {
    let db = fresh_database().await;
    let mut conn = db.connect().await;
    let v1 = migration("V1__first", "CREATE TABLE a (id int);");
    let v2 = migration("V2__second", "CREATE TABLE b (id int);");
    migrate_with(&mut conn, &[v1.clone(), v2]).await.unwrap();

    let error = migrate_with(&mut conn, &[v1]).await.unwrap_err();

    assert!(matches!(&error, SchemaError::MissingMigration { version: 2, name } if name == "second"), "{error:?}");
    assert_eq!(applied_version(&mut conn).await.unwrap(), Some(2));
}

#[tokio::test]
async fn concurrent_migrators_apply_each_migration_once() {
    let db = fresh_database().await;
    let mut first = db.connect().await;
    let mut second = db.connect().await;

    let (a, b) = tokio::join!(migrate_to_latest(&mut first), migrate_to_latest(&mut second));

    let (a, b) = (a.unwrap(), b.unwrap());
    let applied = a.applied.len() + b.applied.len();
    assert_eq!(applied, tenant_schema::migrations().len(), "{a:?} {b:?}");
    assert_eq!(a.current_version, Some(latest_version()));
    assert_eq!(b.current_version, Some(latest_version()));
}

#[tokio::test]
async fn the_driver_runs_ungrouped_migrations_one_transaction_each_on_an_owned_connection() {
    let db = fresh_database().await;
    let runner = Runner::new(&[
        migration("V1__two_statements", "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1), (2);"),
        migration("V2__broken", "CREATE TABLE b (id int);\nSELEC 1;"),
    ]);
    let mut driver = SqlxConnection(db.connect().await);

    let error = runner.run_async(&mut driver).await.unwrap_err();

    // V1 committed on its own; V2 rolled back entirely.
    let applied = error.report().expect("a report of what was applied");
    assert_eq!(applied.applied_migrations().len(), 1);
    let mut conn: PgConnection = driver.into_inner();
    assert_eq!(applied_version(&mut conn).await.unwrap(), Some(1));
    assert_eq!(table_names(&mut conn).await, ["a", "refinery_schema_history"]);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM a").fetch_one(&mut conn).await.unwrap();
    assert_eq!(count, 2);
    let applied = runner.get_applied_migrations_async(&mut SqlxConnection(&mut conn)).await.unwrap();
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].name(), "two_statements");
}

#[tokio::test]
async fn the_driver_does_not_commit_a_transaction_of_the_caller() {
    let db = fresh_database().await;
    let mut conn = db.connect().await;
    let runner = Runner::new(&[migration("V1__first", "CREATE TABLE a (id int);")]).set_grouped(true);

    let mut tx = conn.begin().await.unwrap();
    runner.run_async(&mut SqlxConnection(&mut *tx)).await.unwrap();
    tx.rollback().await.unwrap();

    assert_eq!(table_names(&mut conn).await, Vec::<String>::new());
}

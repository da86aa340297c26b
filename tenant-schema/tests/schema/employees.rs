//! The employees data layer: validation, writes with their outbox events, optimistic
//! concurrency, keyset pagination, search and filters.

use std::collections::HashSet;

use serde_json::json;
use sqlx::PgConnection;
use tenant_schema::data::employees::{
    self, Employee, EmployeePatch, EmployeeStatus, ListQuery, NewEmployee, validate_new, validate_patch,
};
use tenant_schema::data::{DataError, FieldError, departments};
use tenant_schema::outbox::{events_after, last_seq};
use time::macros::date;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::migrated_database;

fn new_employee(first_name: &str, last_name: &str, email: &str) -> NewEmployee {
    NewEmployee {
        first_name: first_name.to_owned(),
        last_name: last_name.to_owned(),
        email: email.to_owned(),
        job_title: None,
        department_id: None,
        hire_date: date!(2024 - 03 - 01),
        status: None,
    }
}

fn ada() -> NewEmployee {
    NewEmployee { job_title: Some("Analyst".to_owned()), ..new_employee("Ada", "Lovelace", "ada@example.com") }
}

async fn create(conn: &mut PgConnection, new: &NewEmployee) -> Employee {
    employees::create(conn, new).await.unwrap_or_else(|e| panic!("creating {new:?}: {e}")).value
}

/// The fields named by an `Invalid` error.
fn invalid_fields<T: std::fmt::Debug>(result: Result<T, DataError>) -> Vec<String> {
    match result {
        Err(DataError::Invalid(errors)) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

/// Every page of `query` (from its first page on), checking the page sizes on the way.
async fn all_pages(conn: &mut PgConnection, mut query: ListQuery) -> Vec<Employee> {
    let mut all = Vec::new();
    loop {
        let page = employees::list(conn, &query).await.unwrap();
        assert!(page.items.len() <= query.limit as usize);
        all.extend(page.items);
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => return all,
        }
    }
}

fn ids(employees: &[Employee]) -> Vec<Uuid> {
    employees.iter().map(|e| e.id).collect()
}

fn sorted_names(employees: &[Employee]) -> Vec<String> {
    let mut names: Vec<String> = employees.iter().map(|e| format!("{} {}", e.first_name, e.last_name)).collect();
    names.sort();
    names
}

async fn search(conn: &mut PgConnection, text: &str) -> Vec<String> {
    let query = ListQuery { search: Some(text.to_owned()), ..ListQuery::default() };
    sorted_names(&employees::list(conn, &query).await.unwrap().items)
}

/// Ids of all employees in list order, straight from SQL: the order `list` must follow.
async fn ids_in_list_order(conn: &mut PgConnection) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT id FROM employees ORDER BY last_name, first_name, id").fetch_all(conn).await.unwrap()
}

/// 120 employees: 12 last names × 5 first names, each pair twice (so the id decides between
/// equal names).
async fn create_staff(conn: &mut PgConnection) -> Vec<Employee> {
    let last_names =
        ["Nakamura", "Okafor", "Schmidt", "Rossi", "Kowalski", "Dubois", "Silva", "Jensen", "Novak", "Ivanova"];
    let last_names = last_names.iter().chain(&["Murphy", "Haddad"]);
    let first_names = ["Mia", "Noah", "Lena", "Omar", "Yuki"];
    let mut staff = Vec::new();
    for (i, last) in last_names.enumerate() {
        for (j, first) in first_names.iter().enumerate() {
            for copy in 0..2 {
                let email = format!("{}.{}.{copy}.{i}{j}@example.com", first.to_lowercase(), last.to_lowercase());
                staff.push(create(conn, &new_employee(first, last, &email)).await);
            }
        }
    }
    assert_eq!(staff.len(), 120);
    staff
}

#[tokio::test]
async fn create_get_update_delete_round_trip_counts_versions_and_seqs_up_by_one() {
    let (_db, mut conn) = migrated_database().await;

    let created = employees::create(&mut conn, &ada()).await.unwrap();
    assert_eq!(created.seq(), 1);
    let ada = created.value;
    assert_eq!(ada.version, 1);
    assert_eq!(ada.status, EmployeeStatus::Active);
    assert_eq!(ada.job_title.as_deref(), Some("Analyst"));
    assert_eq!(ada.created_at, ada.updated_at);
    assert_eq!(employees::get(&mut conn, ada.id).await.unwrap(), ada);

    let patch = EmployeePatch { job_title: Some(Some("Chief Analyst".to_owned())), ..EmployeePatch::default() };
    let promoted = employees::update(&mut conn, ada.id, Some(1), &patch).await.unwrap();
    assert_eq!((promoted.value.version, promoted.seq()), (2, 2));
    assert_eq!(promoted.value.job_title.as_deref(), Some("Chief Analyst"));
    assert_eq!(promoted.value.first_name, "Ada", "fields not in the patch stay as they were");

    // Without an expected version the update happens whatever the version is.
    let patch = EmployeePatch { status: Some(EmployeeStatus::OnLeave), ..EmployeePatch::default() };
    let on_leave = employees::update(&mut conn, ada.id, None, &patch).await.unwrap();
    assert_eq!((on_leave.value.version, on_leave.seq()), (3, 3));
    assert_eq!(on_leave.value.status, EmployeeStatus::OnLeave);
    assert_eq!(employees::get(&mut conn, ada.id).await.unwrap(), on_leave.value);

    let deleted = employees::delete(&mut conn, ada.id, Some(3)).await.unwrap();
    assert_eq!((deleted.value, deleted.seq()), (ada.id, 4));
    assert!(matches!(employees::get(&mut conn, ada.id).await, Err(DataError::NotFound)));

    // One event per write, in order, each carrying the row as the write left it.
    let events = events_after(&mut conn, 0, 100).await.unwrap();
    let summary: Vec<(i64, &str, &str, Option<Uuid>)> =
        events.iter().map(|e| (e.seq, e.channel.as_str(), e.action.as_str(), e.entity_id)).collect();
    assert_eq!(
        summary,
        [
            (1, "employees", "created", Some(ada.id)),
            (2, "employees", "updated", Some(ada.id)),
            (3, "employees", "updated", Some(ada.id)),
            (4, "employees", "deleted", Some(ada.id)),
        ]
    );
    // The wire form of the row: what the API answers for it.
    let wire = |e: &tenant_schema::data::employees::Employee| serde_json::to_value(e).unwrap();
    assert_eq!(events[0].payload, wire(&ada));
    assert_eq!(events[1].payload, wire(&promoted.value));
    assert_eq!(events[2].payload, wire(&on_leave.value));
    assert_eq!(events[3].payload, json!({ "id": ada.id }));
}

#[tokio::test]
async fn an_employee_serialises_to_the_json_of_the_public_contract() {
    let (_db, mut conn) = migrated_database().await;
    let department = departments::create(&mut conn, "Research").await.unwrap().value;
    let new = NewEmployee { department_id: Some(department.id), status: Some(EmployeeStatus::OnLeave), ..ada() };
    let ada = create(&mut conn, &new).await;

    let value = serde_json::to_value(&ada).unwrap();
    let rfc3339 = |at: OffsetDateTime| at.format(&time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(
        value,
        json!({
            "id": ada.id,
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.com",
            "job_title": "Analyst",
            "department_id": department.id,
            "hire_date": "2024-03-01",
            "status": "on_leave",
            "version": 1,
            "created_at": rfc3339(ada.created_at),
            "updated_at": rfc3339(ada.updated_at),
        })
    );
    let parsed: Employee = serde_json::from_value(value).unwrap();
    assert_eq!(parsed, ada);
    let statuses: Vec<String> =
        EmployeeStatus::ALL.iter().map(|s| serde_json::to_value(s).unwrap().to_string()).collect();
    assert_eq!(statuses, [r#""active""#, r#""on_leave""#, r#""terminated""#]);
}

#[tokio::test]
async fn keyset_pagination_returns_every_employee_exactly_once_in_list_order() {
    let (_db, mut conn) = migrated_database().await;
    create_staff(&mut conn).await;

    let mut query = ListQuery { limit: 25, ..ListQuery::default() };
    let mut page_sizes = Vec::new();
    let mut listed = Vec::new();
    loop {
        let page = employees::list(&mut conn, &query).await.unwrap();
        page_sizes.push(page.items.len());
        listed.extend(page.items);
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }

    assert_eq!(page_sizes, [25, 25, 25, 25, 20]);
    assert_eq!(ids(&listed), ids_in_list_order(&mut conn).await);
    assert_eq!(ids(&listed).into_iter().collect::<HashSet<_>>().len(), 120);
}

#[tokio::test]
async fn a_page_that_ends_exactly_at_the_last_employee_has_no_next_cursor() {
    let (_db, mut conn) = migrated_database().await;
    for i in 0..4 {
        create(&mut conn, &new_employee("Mia", &format!("Person{i}"), &format!("p{i}@example.com"))).await;
    }
    let first = employees::list(&mut conn, &ListQuery { limit: 2, ..ListQuery::default() }).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let query = ListQuery { limit: 2, cursor: first.next_cursor, ..ListQuery::default() };
    let second = employees::list(&mut conn, &query).await.unwrap();
    assert_eq!(second.items.len(), 2);
    assert_eq!(second.next_cursor, None);

    let everyone = employees::list(&mut conn, &ListQuery { limit: 200, ..ListQuery::default() }).await.unwrap();
    assert_eq!((everyone.items.len(), everyone.next_cursor), (4, None));
}

#[tokio::test]
async fn keyset_pagination_is_stable_when_employees_are_added_between_pages() {
    let (_db, mut conn) = migrated_database().await;
    let staff = create_staff(&mut conn).await;

    let mut query = ListQuery { limit: 25, ..ListQuery::default() };
    let first = employees::list(&mut conn, &query).await.unwrap();
    let mut listed = first.items;
    query.cursor = first.next_cursor;

    // One newcomer sorts before the pages already read, one after: neither may shift the rest.
    let before = create(&mut conn, &new_employee("Aaron", "Aaberg", "aaron@example.com")).await;
    let after = create(&mut conn, &new_employee("Zoe", "Zylstra", "zoe@example.com")).await;
    listed.extend(all_pages(&mut conn, query).await);

    let listed_ids = ids(&listed);
    let unique: HashSet<Uuid> = listed_ids.iter().copied().collect();
    assert_eq!(unique.len(), listed_ids.len(), "no employee is listed twice");
    assert!(staff.iter().all(|e| unique.contains(&e.id)), "no employee is skipped");
    assert!(!unique.contains(&before.id), "a newcomer before the cursor is not on a later page");
    assert_eq!(listed_ids.last(), Some(&after.id), "a newcomer after the cursor is on a later page");
    assert_eq!(listed.len(), 121);
}

#[tokio::test]
async fn search_matches_name_prefixes_the_full_name_and_the_email_ignoring_case() {
    let (_db, mut conn) = migrated_database().await;
    create(&mut conn, &ada()).await;
    create(&mut conn, &new_employee("Adam", "Smith", "adam.smith@example.com")).await;
    create(&mut conn, &new_employee("Charles", "Babbage", "charles@engines.example")).await;
    create(&mut conn, &new_employee("Grace", "Hopper", "g.hopper@navy.example")).await;
    create(&mut conn, &new_employee("Mary Ann", "Evans", "eliot@example.com")).await;
    create(&mut conn, &new_employee("Percy", "100%_Sure", "percy@example.com")).await;

    // Partial names: prefixes of the first or the last name.
    assert_eq!(search(&mut conn, "love").await, ["Ada Lovelace"]);
    assert_eq!(search(&mut conn, "LOVELACE").await, ["Ada Lovelace"]);
    assert_eq!(search(&mut conn, "ada").await, ["Ada Lovelace", "Adam Smith"]);
    assert_eq!(search(&mut conn, "bab").await, ["Charles Babbage"]);
    // The full name, however it is spaced, and a prefix of it.
    assert_eq!(search(&mut conn, "Ada Lovelace").await, ["Ada Lovelace"]);
    assert_eq!(search(&mut conn, "  ada   lovelace ").await, ["Ada Lovelace"]);
    assert_eq!(search(&mut conn, "ada lo").await, ["Ada Lovelace"]);
    assert_eq!(search(&mut conn, "mary ann ev").await, ["Mary Ann Evans"]);
    assert!(search(&mut conn, "lovelace ada").await.is_empty());
    // E-mail addresses (stored in lower case).
    assert_eq!(search(&mut conn, "ada@example.com").await, ["Ada Lovelace"]);
    assert_eq!(search(&mut conn, "G.Hopper@").await, ["Grace Hopper"]);
    assert_eq!(search(&mut conn, "charles@engines").await, ["Charles Babbage"]);
    // Substrings that are not prefixes do not match; LIKE wildcards are taken literally.
    assert!(search(&mut conn, "velace").await.is_empty());
    assert!(search(&mut conn, "%").await.is_empty());
    assert!(search(&mut conn, "_").await.is_empty());
    assert_eq!(search(&mut conn, "100%_").await, ["Percy 100%_Sure"]);
    // A blank search is no search.
    assert_eq!(search(&mut conn, "   ").await.len(), 6);
}

#[tokio::test]
async fn listing_filters_by_department_and_status_across_pages() {
    let (_db, mut conn) = migrated_database().await;
    let research = departments::create(&mut conn, "Research").await.unwrap().value;
    let sales = departments::create(&mut conn, "Sales").await.unwrap().value;
    let statuses = [EmployeeStatus::Active, EmployeeStatus::OnLeave, EmployeeStatus::Terminated];
    let mut everyone = Vec::new();
    for i in 0..18 {
        let department = [Some(research.id), Some(sales.id), None][i % 3];
        let new = NewEmployee {
            department_id: department,
            status: Some(statuses[(i / 3) % 3]),
            ..new_employee("Kim", &format!("Member{i:02}"), &format!("m{i}@example.com"))
        };
        everyone.push(create(&mut conn, &new).await);
    }
    let expected = |department: Option<Uuid>, status: Option<EmployeeStatus>| -> Vec<Uuid> {
        let mut matching: Vec<&Employee> = everyone
            .iter()
            .filter(|e| department.is_none_or(|d| e.department_id == Some(d)))
            .filter(|e| status.is_none_or(|s| e.status == s))
            .collect();
        matching.sort_by(|a, b| (&a.last_name, a.id).cmp(&(&b.last_name, b.id)));
        matching.iter().map(|e| e.id).collect()
    };

    for (department, status) in [
        (Some(research.id), None),
        (Some(sales.id), None),
        (None, Some(EmployeeStatus::OnLeave)),
        (None, Some(EmployeeStatus::Terminated)),
        (Some(research.id), Some(EmployeeStatus::Active)),
    ] {
        let query = ListQuery { limit: 2, department_id: department, status, ..ListQuery::default() };
        let listed = all_pages(&mut conn, query).await;
        let want = expected(department, status);
        assert!(!want.is_empty());
        assert_eq!(ids(&listed), want, "department {department:?}, status {status:?}");
    }

    let nowhere = ListQuery { department_id: Some(Uuid::now_v7()), ..ListQuery::default() };
    assert!(employees::list(&mut conn, &nowhere).await.unwrap().items.is_empty());
    let search_and_filter =
        ListQuery { search: Some("member1".to_owned()), status: Some(EmployeeStatus::Active), ..ListQuery::default() };
    let found = employees::list(&mut conn, &search_and_filter).await.unwrap().items;
    let names: Vec<&str> = found.iter().map(|e| e.last_name.as_str()).collect();
    assert_eq!(names, ["Member10", "Member11"]);
}

#[tokio::test]
async fn a_taken_email_is_a_conflict_and_the_failed_write_leaves_no_event() {
    let (_db, mut conn) = migrated_database().await;
    let ada = create(&mut conn, &ada()).await;
    let grace = create(&mut conn, &new_employee("Grace", "Hopper", "grace@example.com")).await;
    assert_eq!(last_seq(&mut conn).await.unwrap(), 2);

    // Case is ignored (addresses are stored in lower case).
    let copycat = new_employee("Ada", "Byron", "  ADA@Example.com ");
    let error = employees::create(&mut conn, &copycat).await.unwrap_err();
    let DataError::Conflict(field) = error else { panic!("expected a conflict, got {error:?}") };
    assert_eq!(field.field, "email");

    let patch = EmployeePatch { email: Some("Ada@example.com".to_owned()), ..EmployeePatch::default() };
    let error = employees::update(&mut conn, grace.id, Some(1), &patch).await.unwrap_err();
    assert!(matches!(&error, DataError::Conflict(FieldError { field, .. }) if field == "email"), "{error:?}");

    assert_eq!(last_seq(&mut conn).await.unwrap(), 2, "failed writes append no event");
    assert_eq!(employees::get(&mut conn, grace.id).await.unwrap(), grace, "the failed update changed nothing");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM employees").fetch_one(&mut conn).await.unwrap();
    assert_eq!(count, 2);

    // The next successful write takes the next number: no hole.
    let next = employees::update(&mut conn, ada.id, Some(1), &EmployeePatch::default()).await.unwrap();
    assert_eq!((next.seq(), next.value.version), (3, 2));
}

#[tokio::test]
async fn an_unknown_department_is_invalid_and_leaves_no_event() {
    let (_db, mut conn) = migrated_database().await;
    let new = NewEmployee { department_id: Some(Uuid::now_v7()), ..ada() };
    assert_eq!(invalid_fields(employees::create(&mut conn, &new).await), ["department_id"]);

    let ada = create(&mut conn, &ada()).await;
    let patch = EmployeePatch { department_id: Some(Some(Uuid::now_v7())), ..EmployeePatch::default() };
    assert_eq!(invalid_fields(employees::update(&mut conn, ada.id, None, &patch).await), ["department_id"]);

    assert_eq!(last_seq(&mut conn).await.unwrap(), 1);
    assert_eq!(employees::get(&mut conn, ada.id).await.unwrap(), ada);
}

#[tokio::test]
async fn a_stale_version_is_refused_with_the_current_employee() {
    let (_db, mut conn) = migrated_database().await;
    let ada = create(&mut conn, &ada()).await;
    let patch = EmployeePatch { last_name: Some("King".to_owned()), ..EmployeePatch::default() };
    let current = employees::update(&mut conn, ada.id, Some(1), &patch).await.unwrap().value;

    let stale = EmployeePatch { last_name: Some("Byron".to_owned()), ..EmployeePatch::default() };
    match employees::update(&mut conn, ada.id, Some(1), &stale).await {
        Err(DataError::VersionMismatch { current: now }) => assert_eq!(*now, current),
        other => panic!("expected a version mismatch, got {other:?}"),
    }
    match employees::delete(&mut conn, ada.id, Some(1)).await {
        Err(DataError::VersionMismatch { current: now }) => assert_eq!(*now, current),
        other => panic!("expected a version mismatch, got {other:?}"),
    }
    assert_eq!(employees::get(&mut conn, ada.id).await.unwrap(), current);
    assert_eq!(last_seq(&mut conn).await.unwrap(), 2, "refused writes append no event");
}

#[tokio::test]
async fn updating_or_deleting_a_missing_employee_is_not_found() {
    let (_db, mut conn) = migrated_database().await;
    let gone = create(&mut conn, &ada()).await;
    employees::delete(&mut conn, gone.id, None).await.unwrap();

    for id in [gone.id, Uuid::now_v7()] {
        assert!(matches!(employees::get(&mut conn, id).await, Err(DataError::NotFound)));
        for version in [None, Some(1)] {
            let result = employees::update(&mut conn, id, version, &EmployeePatch::default()).await;
            assert!(matches!(result, Err(DataError::NotFound)), "{result:?}");
            let result = employees::delete(&mut conn, id, version).await;
            assert!(matches!(result, Err(DataError::NotFound)), "{result:?}");
        }
    }
    assert_eq!(last_seq(&mut conn).await.unwrap(), 2);
}

#[tokio::test]
async fn of_two_concurrent_updates_from_the_same_version_exactly_one_wins() {
    let (db, mut conn) = migrated_database().await;
    let mut alice = db.connect().await;
    let mut bob = db.connect().await;

    for round in 0..5 {
        let email = format!("round{round}@example.com");
        let employee = create(&mut conn, &new_employee("Ada", "Lovelace", &email)).await;
        let seq_before = last_seq(&mut conn).await.unwrap();
        let by_alice = EmployeePatch { job_title: Some(Some("Alice's choice".to_owned())), ..EmployeePatch::default() };
        let by_bob = EmployeePatch { job_title: Some(Some("Bob's choice".to_owned())), ..EmployeePatch::default() };

        let (a, b) = tokio::join!(
            employees::update(&mut alice, employee.id, Some(1), &by_alice),
            employees::update(&mut bob, employee.id, Some(1), &by_bob),
        );

        let (winner, loser) = match (a, b) {
            (Ok(winner), Err(loser)) | (Err(loser), Ok(winner)) => (winner, loser),
            (a, b) => panic!("round {round}: expected exactly one winner, got {a:?} and {b:?}"),
        };
        assert_eq!(winner.value.version, 2);
        assert_eq!(winner.seq(), seq_before + 1);
        match loser {
            DataError::VersionMismatch { current } => assert_eq!(*current, winner.value, "round {round}"),
            other => panic!("round {round}: expected a version mismatch, got {other:?}"),
        }
        assert_eq!(employees::get(&mut conn, employee.id).await.unwrap(), winner.value);
        assert_eq!(last_seq(&mut conn).await.unwrap(), seq_before + 1, "round {round}: one event");
    }
}

#[tokio::test]
async fn a_patch_clears_nullable_fields_with_some_none_and_leaves_absent_fields_alone() {
    let (_db, mut conn) = migrated_database().await;
    let research = departments::create(&mut conn, "Research").await.unwrap().value;
    let ada = create(&mut conn, &NewEmployee { department_id: Some(research.id), ..ada() }).await;

    let clear = EmployeePatch { job_title: Some(None), department_id: Some(None), ..EmployeePatch::default() };
    let cleared = employees::update(&mut conn, ada.id, Some(1), &clear).await.unwrap().value;
    assert_eq!((cleared.job_title.as_deref(), cleared.department_id), (None, None));
    let untouched = |e: &Employee| (e.first_name.clone(), e.last_name.clone(), e.email.clone(), e.hire_date, e.status);
    assert_eq!(untouched(&cleared), untouched(&ada));

    let set = EmployeePatch {
        first_name: Some(" Augusta ".to_owned()),
        email: Some("Augusta@Example.com".to_owned()),
        job_title: Some(Some("   ".to_owned())),
        department_id: Some(Some(research.id)),
        hire_date: Some(date!(2020 - 01 - 31)),
        status: Some(EmployeeStatus::Terminated),
        ..EmployeePatch::default()
    };
    let changed = employees::update(&mut conn, ada.id, Some(2), &set).await.unwrap().value;
    assert_eq!(changed.first_name, "Augusta");
    assert_eq!(changed.last_name, "Lovelace");
    assert_eq!(changed.email, "augusta@example.com");
    assert_eq!(changed.job_title, None, "a blank job title clears it");
    assert_eq!(changed.department_id, Some(research.id));
    assert_eq!(changed.hire_date.0, date!(2020 - 01 - 31));
    assert_eq!(changed.status, EmployeeStatus::Terminated);
    assert_eq!(changed.version, 3);
    assert!(changed.updated_at >= changed.created_at);
}

#[tokio::test]
async fn creating_normalises_the_input() {
    let (_db, mut conn) = migrated_database().await;
    let new = NewEmployee {
        job_title: Some("  ".to_owned()),
        ..new_employee("  Ada ", "\tLovelace\n", " Ada.Lovelace@Example.COM ")
    };
    let ada = create(&mut conn, &new).await;
    assert_eq!(
        (ada.first_name.as_str(), ada.last_name.as_str(), ada.email.as_str(), ada.job_title),
        ("Ada", "Lovelace", "ada.lovelace@example.com", None)
    );
}

/// Asserts that `validate_new` accepts `input` (`field` is `None`) or rejects exactly `field`.
fn check(input: NewEmployee, field: Option<&str>) {
    let outcome = validate_new(&input);
    match (field, outcome) {
        (None, Ok(_)) => {}
        (Some(field), Err(DataError::Invalid(errors))) => {
            let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, [field], "{input:?}: {errors:?}");
        }
        (expected, outcome) => panic!("{input:?}: expected {expected:?}, got {outcome:?}"),
    }
}

#[test]
fn validation_names_the_field_at_fault() {
    let base = || new_employee("Ada", "Lovelace", "ada@example.com");
    let today = OffsetDateTime::now_utc().date();
    let long = |n: usize| "x".repeat(n);

    check(base(), None);
    check(NewEmployee { first_name: "".into(), ..base() }, Some("first_name"));
    check(NewEmployee { first_name: "   ".into(), ..base() }, Some("first_name"));
    check(NewEmployee { first_name: long(100), ..base() }, None);
    check(NewEmployee { first_name: "é".repeat(100), ..base() }, None);
    check(NewEmployee { first_name: long(101), ..base() }, Some("first_name"));
    check(NewEmployee { first_name: "Ada\0".into(), ..base() }, Some("first_name"));
    check(NewEmployee { last_name: "".into(), ..base() }, Some("last_name"));
    check(NewEmployee { last_name: long(101), ..base() }, Some("last_name"));
    check(NewEmployee { last_name: "O'Brien-Núñez".into(), ..base() }, None);

    check(NewEmployee { email: "".into(), ..base() }, Some("email"));
    check(NewEmployee { email: "ada".into(), ..base() }, Some("email"));
    check(NewEmployee { email: "ada@example".into(), ..base() }, Some("email"));
    check(NewEmployee { email: "@example.com".into(), ..base() }, Some("email"));
    check(NewEmployee { email: "ada@@example.com".into(), ..base() }, Some("email"));
    check(NewEmployee { email: "ada@home@example.com".into(), ..base() }, Some("email"));
    check(NewEmployee { email: "ada@example.".into(), ..base() }, Some("email"));
    check(NewEmployee { email: "ada@.example.com".into(), ..base() }, Some("email"));
    check(NewEmployee { email: "ada lovelace@example.com".into(), ..base() }, Some("email"));
    check(NewEmployee { email: "ada+erp@mail.example.co.uk".into(), ..base() }, None);
    let domain = format!("{}.com", long(240)); // 244 characters: 254 in all with 9 before the @
    check(NewEmployee { email: format!("{}@{domain}", long(9)), ..base() }, None);
    check(NewEmployee { email: format!("{}@{domain}", long(10)), ..base() }, Some("email"));

    check(NewEmployee { job_title: Some(long(100)), ..base() }, None);
    check(NewEmployee { job_title: Some(long(101)), ..base() }, Some("job_title"));
    check(NewEmployee { job_title: Some("".into()), ..base() }, None);

    check(NewEmployee { hire_date: date!(1900 - 01 - 01), ..base() }, None);
    check(NewEmployee { hire_date: date!(1899 - 12 - 31), ..base() }, Some("hire_date"));
    check(NewEmployee { hire_date: today + Duration::days(365), ..base() }, None);
    check(NewEmployee { hire_date: today + Duration::days(367), ..base() }, Some("hire_date"));
}

#[test]
fn validation_reports_every_field_at_fault_in_field_order() {
    let input = NewEmployee { hire_date: date!(1800 - 01 - 01), ..new_employee(" ", "Lovelace", "nope") };
    assert_eq!(invalid_fields(validate_new(&input)), ["first_name", "email", "hire_date"]);

    let patch = EmployeePatch {
        last_name: Some("".into()),
        email: Some("nope".into()),
        job_title: Some(Some("x".repeat(101))),
        ..EmployeePatch::default()
    };
    assert_eq!(invalid_fields(validate_patch(&patch)), ["last_name", "email", "job_title"]);
    assert_eq!(validate_patch(&EmployeePatch::default()).unwrap(), EmployeePatch::default());
}

#[tokio::test]
async fn invalid_input_writes_nothing() {
    let (_db, mut conn) = migrated_database().await;
    let new = NewEmployee { email: "not an address".into(), ..ada() };
    assert_eq!(invalid_fields(employees::create(&mut conn, &new).await), ["email"]);
    let ada = create(&mut conn, &ada()).await;
    let patch = EmployeePatch { first_name: Some("".into()), ..EmployeePatch::default() };
    assert_eq!(invalid_fields(employees::update(&mut conn, ada.id, Some(1), &patch).await), ["first_name"]);
    assert_eq!(employees::get(&mut conn, ada.id).await.unwrap(), ada);
    assert_eq!(last_seq(&mut conn).await.unwrap(), 1);
}

#[tokio::test]
async fn a_malformed_cursor_or_page_size_is_invalid() {
    let (_db, mut conn) = migrated_database().await;
    create(&mut conn, &ada()).await;

    for cursor in ["", "not a cursor", "bm90IGpzb24", "WyJhIiwiYiJd", "WyJhIiwiYiIsIm5vdC1hLXV1aWQiXQ"] {
        let query = ListQuery { cursor: Some(cursor.to_owned()), ..ListQuery::default() };
        assert_eq!(invalid_fields(employees::list(&mut conn, &query).await), ["cursor"], "cursor {cursor:?}");
    }
    for limit in [0, 201] {
        let query = ListQuery { limit, ..ListQuery::default() };
        assert_eq!(invalid_fields(employees::list(&mut conn, &query).await), ["limit"], "limit {limit}");
    }
    let query = ListQuery { limit: 0, cursor: Some("?".to_owned()), ..ListQuery::default() };
    assert_eq!(invalid_fields(employees::list(&mut conn, &query).await), ["limit", "cursor"]);
}

//! Signup (`POST /tenants`): isolation of the created databases, validation that changes
//! nothing, idempotency.

use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

use crate::helpers::{PASSWORD, TestApp, signup_body, unique};

async fn tenant_row(app: &TestApp, slug: &str) -> (String, String, String) {
    let mut catalog = app.catalog().await;
    sqlx::query_as("SELECT status, database_name, role_name FROM tenants WHERE slug = $1")
        .bind(slug)
        .fetch_one(&mut catalog)
        .await
        .unwrap()
}

/// A connection URL for `role` with `password` to `database` on the app's server.
fn url_as(app: &TestApp, role: &str, password: &str, database: &str) -> String {
    let base = url::Url::parse(&app.server.superuser_url()).unwrap();
    let mut u = base.clone();
    u.set_username(role).unwrap();
    u.set_password(Some(password)).unwrap();
    u.set_path(&format!("/{database}"));
    u.to_string()
}

#[tokio::test]
async fn two_companies_get_their_own_databases_and_roles_that_cannot_cross_connect() {
    let app = TestApp::spawn().await;
    let (a, b) = (unique("alpha-"), unique("beta-"));
    let created = app.create_tenant(&a).await;
    assert_eq!(created["tenant"]["slug"], a);
    assert_eq!(created["tenant"]["status"], "active");
    assert!(created["access_token"].as_str().unwrap().len() > 50);
    app.create_tenant(&b).await;

    let (status_a, db_a, role_a) = tenant_row(&app, &a).await;
    let (_, db_b, role_b) = tenant_row(&app, &b).await;
    assert_eq!(status_a, "active");
    assert_ne!(db_a, db_b);
    assert_ne!(role_a, role_b);

    // The tenant's own role connects to its database, owns its tables and sees the seed data.
    let mut own = PgConnection::connect(&url_as(&app, &role_a, &app.role_password(&role_a), &db_a)).await.unwrap();
    let owner: String = sqlx::query_scalar("SELECT tableowner FROM pg_tables WHERE tablename = 'employees'")
        .fetch_one(&mut own)
        .await
        .unwrap();
    assert_eq!(owner, role_a);
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts").fetch_one(&mut own).await.unwrap();
    assert!(accounts > 10, "chart of accounts seeded");
    let currency: String =
        sqlx::query_scalar("SELECT currency FROM company_settings").fetch_one(&mut own).await.unwrap();
    assert_eq!(currency, "EUR");
    sqlx::query("INSERT INTO departments (name) VALUES ('Research')").execute(&mut own).await.unwrap();

    // Tenant A's role cannot connect to B's database.
    let cross = PgConnection::connect(&url_as(&app, &role_a, &app.role_password(&role_a), &db_b)).await;
    let err = cross.expect_err("A's role must not reach B's database").to_string();
    assert!(err.contains("permission denied"), "{err}");

    // A role with only PUBLIC's rights can connect to neither.
    let mut admin = PgConnection::connect(&app.server.superuser_url()).await.unwrap();
    let outsider = unique("outsider_");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE ROLE {outsider} LOGIN PASSWORD 'pw-outsider'")))
        .execute(&mut admin)
        .await
        .unwrap();
    for db in [&db_a, &db_b] {
        let err = PgConnection::connect(&url_as(&app, &outsider, "pw-outsider", db))
            .await
            .expect_err("PUBLIC may not connect");
        assert!(err.to_string().contains("permission denied"), "{err}");
    }
    let public_connect: bool = sqlx::query_scalar("SELECT has_database_privilege('public', $1, 'CONNECT')")
        .bind(&db_a)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(!public_connect);
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE {outsider}"))).execute(&mut admin).await.unwrap();
}

/// An edit that turns a valid signup body into an invalid one.
type Change = Box<dyn FnOnce(&mut Value)>;

/// Sends a signup whose valid body was changed by `change`, and checks the refusal names
/// `field` and leaves nothing behind.
async fn check_refused(app: &TestApp, change: impl FnOnce(&mut Value), status: u16, field: &str) {
    let before = app.footprint().await;
    let mut body = signup_body(&unique("check-"));
    change(&mut body);
    let response = app.signup(&body).await;
    let got_status = response.status().as_u16();
    let error: Value = response.json().await.unwrap();
    assert_eq!(got_status, status, "{body} → {error}");
    assert_eq!(error["field"], field, "{body} → {error}");
    assert!(error["message"].as_str().unwrap().contains(field), "{error}");
    let after = app.footprint().await;
    assert_eq!(before.tenants, after.tenants, "no catalog row for {body}");
    assert_eq!(before.users, after.users, "no user for {body}");
}

#[tokio::test]
async fn each_invalid_field_gets_a_4xx_naming_it_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let taken = unique("taken-");
    app.create_tenant(&taken).await;
    let cases: Vec<(Change, u16, &str)> = vec![
        (Box::new(|b| b["company_name"] = json!("")), 422, "company_name"),
        (Box::new(|b| b["company_name"] = json!("x".repeat(101))), 422, "company_name"),
        (
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("company_name");
            }),
            422,
            "company_name",
        ),
        (Box::new(|b| b["company_name"] = json!(42)), 422, "company_name"),
        (Box::new(|b| b["slug"] = json!("Not A Slug")), 422, "slug"),
        (Box::new(|b| b["slug"] = json!("www")), 422, "slug"),
        (Box::new(|b| b["slug"] = json!("a")), 422, "slug"),
        (Box::new(move |b| b["slug"] = json!(taken)), 409, "slug"),
        (Box::new(|b| b["admin"]["email"] = json!("not-an-email")), 422, "admin.email"),
        (
            Box::new(|b| {
                b["admin"].as_object_mut().unwrap().remove("email");
            }),
            422,
            "admin.email",
        ),
        (Box::new(|b| b["admin"]["password"] = json!("short")), 422, "admin.password"),
        (Box::new(|b| b["admin"]["password"] = json!("password12345")), 422, "admin.password"),
        (Box::new(|b| b["admin"]["full_name"] = json!("")), 422, "admin.full_name"),
        (Box::new(|b| b["timezone"] = json!("Mars/Olympus_Mons")), 422, "timezone"),
        (Box::new(|b| b["currency"] = json!("ZZZ")), 422, "currency"),
        (Box::new(|b| b["chart_template"] = json!("no-such-template")), 422, "chart_template"),
        (Box::new(|b| b["departments"] = json!(["Sales", "SALES"])), 422, "departments[1]"),
    ];
    for (change, status, field) in cases {
        check_refused(&app, change, status, field).await;
    }
}

#[tokio::test]
async fn malformed_oversized_and_non_json_bodies_are_refused_and_create_nothing() {
    let app = TestApp::spawn().await;
    let before = app.footprint().await;

    let malformed = app
        .http
        .post(app.url("/tenants"))
        .header("content-type", "application/json")
        .body("{\"company_name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["error"], "malformed_json");

    let mut huge = signup_body(&unique("huge-"));
    huge["company_name"] = json!("x".repeat(200_000));
    let oversized = app.signup(&huge).await;
    assert_eq!(oversized.status(), 413);
    let body: Value = oversized.json().await.unwrap();
    assert_eq!(body["error"], "payload_too_large");

    let text =
        app.http.post(app.url("/tenants")).header("content-type", "text/plain").body("hello").send().await.unwrap();
    assert_eq!(text.status(), 400);
    let body: Value = text.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_media_type");

    let after = app.footprint().await;
    assert_eq!(before.tenants, after.tenants);
    assert_eq!(before.users, after.users);
}

#[tokio::test]
async fn the_same_idempotency_key_twice_gives_the_same_tenant_once() {
    let app = TestApp::spawn().await;
    let slug = unique("idem-");
    let body = signup_body(&slug);
    let key = unique("key-");
    let send = || app.http.post(app.url("/tenants")).header("Idempotency-Key", &key).json(&body).send();

    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let second = send().await.unwrap();
    assert_eq!(second.status(), 201);
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["tenant"]["id"], second["tenant"]["id"]);

    let mut catalog = app.catalog().await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants WHERE slug = $1")
        .bind(&slug)
        .fetch_one(&mut catalog)
        .await
        .unwrap();
    assert_eq!(count, 1);

    // The same key with another body is refused, not silently answered with the first tenant.
    let mut other = body.clone();
    other["company_name"] = json!("Something Else");
    let reused = app.http.post(app.url("/tenants")).header("Idempotency-Key", &key).json(&other).send().await.unwrap();
    assert_eq!(reused.status(), 422);
    let reused: Value = reused.json().await.unwrap();
    assert_eq!(reused["error"], "idempotency_key_reused");
}

#[tokio::test]
async fn concurrent_requests_with_one_idempotency_key_create_one_tenant() {
    let app = TestApp::spawn().await;
    let slug = unique("race-");
    let body = signup_body(&slug);
    let key = unique("key-");
    let requests =
        (0..4).map(|_| app.http.post(app.url("/tenants")).header("Idempotency-Key", &key).json(&body).send());
    let responses = futures::future::join_all(requests).await;
    let statuses: Vec<u16> = responses.into_iter().map(|r| r.unwrap().status().as_u16()).collect();
    // Duplicates wait for the first request and answer its result.
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let mut catalog = app.catalog().await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants WHERE slug = $1")
        .bind(&slug)
        .fetch_one(&mut catalog)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn an_existing_user_can_found_a_second_company_only_with_their_password() {
    let app = TestApp::spawn().await;
    let first = unique("first-");
    app.create_tenant(&first).await;
    let email = format!("admin@{first}.example.com");

    let mut second = signup_body(&unique("second-"));
    second["admin"]["email"] = json!(email);
    second["admin"]["password"] = json!("An0ther&Secret!");
    let refused = app.signup(&second).await;
    assert_eq!(refused.status(), 409);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["field"], "admin.email");

    second["admin"]["password"] = json!(PASSWORD);
    assert_eq!(app.signup(&second).await.status(), 201);
}

#[tokio::test]
async fn slug_availability_and_signup_options_come_from_the_server() {
    let app = TestApp::spawn().await;
    let slug = unique("avail-");
    app.create_tenant(&slug).await;
    let check: Value = app
        .http
        .get(app.url(&format!("/signup/slug-availability?slug={slug}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(check["available"], false);
    assert_eq!(check["suggestion"], format!("{slug}-2"));
    let free: Value = app
        .http
        .get(app.url("/signup/slug-availability?name=Brand%20New%20GmbH"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(free["slug"], "brand-new-gmbh");
    assert_eq!(free["available"], true);

    let options: Value = app.http.get(app.url("/signup/options")).send().await.unwrap().json().await.unwrap();
    assert!(options["chart_templates"].as_array().unwrap().len() >= 2);
    let codes: Vec<&str> =
        options["currencies"].as_array().unwrap().iter().filter_map(|c| c["code"].as_str()).collect();
    assert!(codes.contains(&"EUR") && codes.contains(&"VND"), "{codes:?}");
    for test_or_fund in ["XTS", "XXX", "XAU", "XDR", "BOV", "CLF", "USN"] {
        assert!(!codes.contains(&test_or_fund), "{test_or_fund} is offered");
    }
    assert!(options["timezones"].as_array().unwrap().iter().any(|t| t == "Europe/Berlin"));
}

#[tokio::test]
async fn signup_can_be_restricted_to_operators() {
    let app = TestApp::spawn_with(|c| c.signup = control_plane::config::SignupPolicy::OperatorOnly).await;
    let body = signup_body(&unique("closed-"));
    assert_eq!(app.signup(&body).await.status(), 401);
    let with_token = app.operator(reqwest::Method::POST, "/tenants").json(&body).send().await.unwrap();
    assert_eq!(with_token.status(), 201);
}

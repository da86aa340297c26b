//! Moving a tenant to another server while it works: every write lands exactly once, the only
//! refusals are 503 `maintenance` with `Retry-After` during the fence, the router follows the
//! catalog's route; and moves that name something wrong are refused with nothing changed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

use crate::helpers::unique;

struct Moving {
    platform: stack::Platform,
    router: String,
    http: reqwest::Client,
    /// The second server's name in the catalog.
    second: String,
}

impl Moving {
    async fn start() -> Self {
        let mut platform = stack::Platform::builder_for_tests()
            .routers(0)
            .control_plane(|c| c.spare_databases_per_server = 0)
            .start()
            .await
            .unwrap();
        // Long, so that only the catalog's notification can explain a quick reaction.
        let router = platform.start_router(|c| c.route_ttl = Duration::from_secs(300)).await.unwrap();
        let url = router.url.clone();
        platform.routers.push(router);
        let second = unique("second-");
        let second_url = local_postgres::second_test_server().superuser_url();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let moving = Self { platform, router: url, http, second: second.clone() };
        let response =
            moving.operator(reqwest::Method::POST, "/servers").json(&json!({"name": second, "admin_url": second_url}));
        let response = response.send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        moving
    }

    fn operator(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.platform.control_plane.url))
            .bearer_auth(&self.platform.operator_token)
    }

    async fn start_move(&self, tenant: &str, body: Value) -> reqwest::Response {
        self.operator(reqwest::Method::POST, &format!("/tenants/{tenant}/moves")).json(&body).send().await.unwrap()
    }

    /// Follows a move until it settles.
    async fn settle(&self, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let m: Value = self
                .operator(reqwest::Method::GET, &format!("/moves/{id}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if matches!(m["state"].as_str(), Some("done" | "failed")) {
                return m;
            }
            assert!(tokio::time::Instant::now() < deadline, "the move did not settle: {m:#}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn catalog(&self) -> PgConnection {
        PgConnection::connect(&self.platform.catalog_url).await.unwrap()
    }

    async fn route(&self, tenant: uuid::Uuid) -> (String, String, bool) {
        sqlx::query_as(
            "SELECT s.name, t.database_name, t.maintenance_mode FROM tenants t
             JOIN database_servers s ON s.id = t.server_id WHERE t.id = $1",
        )
        .bind(tenant)
        .fetch_one(&mut self.catalog().await)
        .await
        .unwrap()
    }
}

/// One write of the load: the e-mail it tried, and what the router answered.
struct Attempt {
    email: String,
    status: u16,
    retry_after: bool,
    error: Option<String>,
}

#[tokio::test]
async fn a_tenant_moved_under_load_keeps_every_write_once_and_refuses_only_during_the_fence() {
    let moving = Moving::start().await;
    let company = moving.platform.signup(&unique("moving-")).await.unwrap();
    let before = moving.route(company.id).await;

    // Writes every 10 ms through the router; a refused write is tried again with the same
    // e-mail (a duplicate would then show), so each e-mail is one intended employee.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (http, router, token, stop) =
            (moving.http.clone(), moving.router.clone(), company.token.clone(), stop.clone());
        tokio::spawn(async move {
            let mut attempts = Vec::new();
            let mut n = 0;
            let mut ticker = tokio::time::interval(Duration::from_millis(10));
            while !stop.load(Ordering::SeqCst) {
                ticker.tick().await;
                let email = format!("w{n}@load.example.com");
                let body =
                    json!({"first_name": "Load", "last_name": "Writer", "email": email, "hire_date": "2024-01-15"});
                let response = http.post(format!("{router}/employees")).bearer_auth(&token).json(&body).send().await;
                let attempt = match response {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let retry_after = r.headers().contains_key("retry-after");
                        let error = r.json::<Value>().await.ok().and_then(|b| b["error"].as_str().map(str::to_owned));
                        Attempt { email: email.clone(), status, retry_after, error }
                    }
                    Err(e) => {
                        Attempt { email: email.clone(), status: 0, retry_after: false, error: Some(e.to_string()) }
                    }
                };
                if attempt.status == 201 {
                    n += 1;
                }
                attempts.push(attempt);
            }
            attempts
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let response = moving.start_move(&company.slug, json!({"to": moving.second})).await;
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    let started: Value = response.json().await.unwrap();
    let done = moving.settle(started["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "done", "{done:#}");
    // Writes go on after the switch, now to the target.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let attempts = writer.await.unwrap();

    for a in &attempts {
        let fenced = a.status == 503 && a.retry_after && a.error.as_deref() == Some("maintenance");
        assert!(
            a.status == 201 || fenced,
            "{}: {} {:?} (only 503 maintenance with Retry-After)",
            a.email,
            a.status,
            a.error
        );
    }
    let written: Vec<&str> = attempts.iter().filter(|a| a.status == 201).map(|a| a.email.as_str()).collect();
    assert!(written.len() > 40, "the writer kept writing: {} writes", written.len());

    let (server, database, maintenance) = moving.route(company.id).await;
    assert_eq!(server, moving.second, "the route names the target");
    assert_ne!(database, before.1);
    assert!(!maintenance, "unfenced");
    let target_url = local_postgres::second_test_server().url_for_database(&database);
    let mut target = PgConnection::connect(&target_url).await.unwrap();
    let emails: Vec<String> =
        sqlx::query_scalar("SELECT email FROM employees WHERE email LIKE '%@load.example.com' ORDER BY email")
            .fetch_all(&mut target)
            .await
            .unwrap();
    let mut expected: Vec<String> = written.iter().map(|s| s.to_string()).collect();
    expected.sort();
    if emails != expected {
        let source_url = local_postgres::shared_test_server().url_for_database(&before.1);
        let mut source = PgConnection::connect(&source_url).await.unwrap();
        let on_source: Vec<(String, i64)> =
            sqlx::query_as("SELECT email, (SELECT count(*) FROM outbox) FROM employees WHERE email LIKE '%@load.example.com' ORDER BY email")
                .fetch_all(&mut source)
                .await
                .unwrap();
        let missing: Vec<&String> = expected.iter().filter(|e| !emails.contains(e)).collect();
        let src: Vec<&String> = on_source.iter().map(|(e, _)| e).filter(|e| missing.contains(e)).collect();
        let order: Vec<String> = attempts.iter().map(|a| format!("{}:{}", a.email, a.status)).collect();
        eprintln!("DEBUG missing {missing:?} on source {src:?}; attempts {order:?}; move {done:#}");
    }
    assert_eq!(emails, expected, "every acknowledged write is on the target, once, and nothing else");
    let (events, last): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM outbox), (SELECT last FROM outbox_seq)")
            .fetch_one(&mut target)
            .await
            .unwrap();
    assert_eq!(events, last, "the outbox and its counter came along together");
    // Replication is gone from both sides; the old database is kept, closed to the tenant.
    let subscriptions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_subscription").fetch_one(&mut target).await.unwrap();
    assert_eq!(subscriptions, 0);
    let mut source = PgConnection::connect(&moving.platform.database_url("postgres").unwrap()).await.unwrap();
    let (slots, can_connect, replication): (i64, bool, bool) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM pg_replication_slots WHERE database = $1),
                has_database_privilege($2, $1, 'CONNECT'),
                (SELECT rolreplication FROM pg_roles WHERE rolname = $2)",
    )
    .bind(&before.1)
    .bind(format!("t_{}", company.id.simple()))
    .fetch_one(&mut source)
    .await
    .unwrap();
    assert_eq!((slots, can_connect, replication), (0, false, false), "source kept, closed; no slot; no REPLICATION");
}

#[tokio::test]
async fn moves_naming_something_wrong_are_refused_with_nothing_changed_and_placement_skips_draining_servers() {
    let moving = Moving::start().await;
    let company = moving.platform.signup(&unique("stay-")).await.unwrap();
    let before = moving.route(company.id).await;
    let first_server = before.0.clone();

    let check = |body: Value, tenant: String, status: u16, field: Option<&'static str>| {
        let moving = &moving;
        async move {
            let response = moving.start_move(&tenant, body.clone()).await;
            assert_eq!(response.status(), status, "{body} for {tenant}");
            let answer: Value = response.json().await.unwrap();
            if let Some(field) = field {
                assert_eq!(answer["field"], field, "{answer}");
            }
        }
    };
    check(json!({"to": "no-such-server"}), company.slug.clone(), 422, Some("to")).await;
    check(json!({"to": first_server}), company.slug.clone(), 422, Some("to")).await;
    check(json!({"to": moving.second}), "no-such-company".into(), 404, None).await;

    // A draining server takes no moves and no signups.
    let drain = moving
        .operator(reqwest::Method::PATCH, &format!("/servers/{}", moving.second))
        .json(&json!({"status": "draining"}))
        .send()
        .await
        .unwrap();
    assert_eq!(drain.status(), 200);
    check(json!({"to": moving.second}), company.slug.clone(), 422, Some("to")).await;
    let bad = moving
        .operator(reqwest::Method::PATCH, &format!("/servers/{}", moving.second))
        .json(&json!({"status": "asleep"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);

    let moves: i64 = sqlx::query_scalar("SELECT count(*) FROM moves WHERE tenant_id = $1")
        .bind(company.id)
        .fetch_one(&mut moving.catalog().await)
        .await
        .unwrap();
    assert_eq!(moves, 0, "no refused move left a row");
    assert_eq!(moving.route(company.id).await, before, "the route did not change");

    // With the first server draining, a signup lands on the second, and a move without `to`
    // goes there too; a second move of the same tenant meanwhile is refused.
    let active = moving
        .operator(reqwest::Method::PATCH, &format!("/servers/{}", moving.second))
        .json(&json!({"status": "active"}))
        .send()
        .await
        .unwrap();
    assert_eq!(active.status(), 200);
    let drain = moving
        .operator(reqwest::Method::PATCH, &format!("/servers/{first_server}"))
        .json(&json!({"status": "draining"}))
        .send()
        .await
        .unwrap();
    assert_eq!(drain.status(), 200);
    let newcomer = moving.platform.signup(&unique("placed-")).await.unwrap();
    assert_eq!(moving.route(newcomer.id).await.0, moving.second, "placement skips the draining server");

    let response = moving.start_move(&company.slug, json!({})).await;
    assert_eq!(response.status(), 202);
    let started: Value = response.json().await.unwrap();
    assert_eq!(started["target_server"], moving.second.as_str());
    let again = moving.start_move(&company.slug, json!({"to": moving.second})).await;
    assert_eq!(again.status(), 409, "a second move of the same tenant");
    assert_eq!(again.json::<Value>().await.unwrap()["error"], "move_running");
    let done = moving.settle(started["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "done", "{done:#}");
    assert_eq!(moving.route(company.id).await.0, moving.second);
}

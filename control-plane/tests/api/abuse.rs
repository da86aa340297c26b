//! Abuse stays bounded: slow clients are cut off; password guessing is throttled wherever a
//! password is checked; password hashing cannot take unbounded memory.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{PASSWORD, TestApp, unique};

#[tokio::test]
async fn a_slowloris_client_is_cut_off_after_the_header_timeout_while_a_prompt_client_is_served() {
    let app = TestApp::spawn_with(|c| c.http.header_timeout = Duration::from_secs(1)).await;
    let address = app.base.trim_start_matches("http://").to_owned();

    // One header line every 300 ms: never idle, never done.
    let mut slow = TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();
    let mut cut_off = None;
    for i in 0..40 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if slow.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes()).await.is_err() {
            cut_off = Some(started.elapsed());
            break;
        }
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(1), slow.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                cut_off = Some(started.elapsed());
                break;
            }
            Ok(Ok(_)) => panic!("the server answered a request whose head never ended"),
            Err(_) => {}
        }
    }
    let cut_off = cut_off.expect("the server closed the slow connection within 12 s");
    assert!(cut_off >= Duration::from_millis(900), "not before the header timeout: {cut_off:?}");

    // A client that sends its head at once is served as usual.
    let health = app.http.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

/// Statuses of `n` logins sent at once.
async fn parallel_logins(app: &TestApp, n: usize, body: impl Fn(usize) -> serde_json::Value) -> Vec<u16> {
    let calls = (0..n).map(|i| {
        let request = app.http.post(app.url("/auth/login")).json(&body(i));
        async move { request.send().await.map(|r| r.status().as_u16()).unwrap_or(0) }
    });
    futures::future::join_all(calls).await
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test]
async fn forty_parallel_wrong_passwords_for_one_email_evaluate_at_most_the_limit_and_the_owner_still_signs_in() {
    let app = TestApp::spawn().await;
    let slug = unique("guess-");
    app.create_tenant(&slug).await;
    let email = format!("admin@{slug}.example.com");
    let statuses = parallel_logins(&app, 40, |i| json!({"email": email, "password": format!("Wr0ng&Guess{i}!")})).await;
    let evaluated = count(&statuses, 401);
    assert!(evaluated <= 5, "at most the per-pair limit (5) reached the hash: {statuses:?}");
    assert!(evaluated >= 1, "{statuses:?}");
    assert_eq!(evaluated + count(&statuses, 429) + count(&statuses, 503), 40, "{statuses:?}");
    // The right password from the same address is refused for now, and answers the same as
    // for an account that does not exist.
    let locked = app.login(&email, PASSWORD, None).await;
    assert_eq!(locked.status(), 429);
    let unknown = app.login(&format!("nobody@{slug}.example.com"), PASSWORD, None).await;
    assert_eq!(unknown.status(), 401, "an unknown account is just a wrong password");
}

#[tokio::test]
async fn signup_with_an_existing_account_checks_its_password_through_the_login_throttle() {
    let app = TestApp::spawn().await;
    let slug = unique("oracle-");
    app.create_tenant(&slug).await;
    let email = format!("admin@{slug}.example.com");
    let mut statuses = Vec::new();
    for i in 0..8 {
        let mut body = crate::helpers::signup_body(&unique(&format!("oracle{i}-")));
        body["admin"]["email"] = json!(email);
        body["admin"]["password"] = json!(format!("Wr0ng&Guess{i}!x"));
        statuses.push(app.signup(&body).await.status().as_u16());
    }
    assert_eq!(statuses, [409, 409, 409, 409, 409, 429, 429, 429], "five guesses, then throttled");
    // Logins from the same address are throttled by the same count.
    assert_eq!(app.login(&email, PASSWORD, None).await.status(), 429);
}

/// Peak resident memory of this process, from `/proc/self/status`.
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() / 1024
}

#[tokio::test]
async fn four_hundred_parallel_logins_are_answered_with_bounded_hashing_memory() {
    // Throttles out of the way: this is about the hashing bound alone.
    let app = TestApp::spawn_with(|c| {
        c.login_throttle.max_failures_per_client = 100_000;
        c.login_throttle.max_failures_per_email = 100_000;
        c.login_throttle.max_failures_per_email_and_client = 100_000;
    })
    .await;
    let before = peak_rss_mib();
    let statuses = parallel_logins(
        &app,
        400,
        |i| json!({"email": format!("nobody{i}@flood.example.com"), "password": "Wr0ng&Password!"}),
    )
    .await;
    let grown = peak_rss_mib().saturating_sub(before);
    assert_eq!(count(&statuses, 401) + count(&statuses, 503), 400, "only 401 and 503: {statuses:?}");
    assert!(count(&statuses, 503) > 0, "the queue overflowed and was refused: {statuses:?}");
    // Unbounded, 400 argon2 hashes at 19 MiB each would take ≈ 7.6 GiB.
    assert!(grown < 1024, "peak memory grew by {grown} MiB");
    let health = app.http.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_nul_byte_or_invalid_utf8_in_any_parameter_or_field_is_a_4xx_naming_it() {
    let app = TestApp::spawn().await;
    let slug = unique("nul-");
    let created = app.create_tenant(&slug).await;
    let id = created["tenant"]["id"].as_str().unwrap().to_owned();
    let public = |method: reqwest::Method, path: &str| app.http.request(method, app.url(path));
    use reqwest::Method;
    let cases: Vec<(reqwest::RequestBuilder, &str)> = vec![
        (public(Method::POST, "/auth/login").json(&json!({"email": "a\u{0}@b.com", "password": "x"})), "email"),
        (public(Method::POST, "/auth/login").json(&json!({"email": "a@b.com", "password": "x\u{0}"})), "password"),
        (public(Method::GET, "/signup/slug-availability?slug=a%00b"), "slug"),
        (public(Method::GET, "/signup/slug-availability?name=%FF%FE"), "name"),
        (app.operator(Method::GET, "/tenants?q=%00"), "q"),
        (app.operator(Method::GET, &format!("/tenants/{id}%00")), "path"),
        (
            app.operator(Method::PATCH, &format!("/tenants/{id}")).json(&json!({"feature_flags": {"a\u{0}": true}})),
            "feature_flags.a\\0",
        ),
        (
            app.operator(Method::PUT, "/system/maintenance")
                .json(&json!({"maintenance_mode": false, "tenant": "\u{0}"})),
            "tenant",
        ),
        (
            app.operator(Method::PUT, "/system/maintenance")
                .json(&json!({"maintenance_mode": true, "message": "x\u{0}"})),
            "message",
        ),
    ];
    let mut body = crate::helpers::signup_body(&unique("nul-b-"));
    body["admin"]["full_name"] = json!("Ada\u{0}");
    let cases = cases.into_iter().chain([(public(Method::POST, "/tenants").json(&body), "admin.full_name")]);
    for (request, field) in cases {
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(status.is_client_error(), "{field}: {status} {body}");
        assert_eq!(body["field"], field, "{body}");
    }
    let status: serde_json::Value = app.http.get(app.url("/system/status")).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["maintenance_mode"], false, "nothing changed");
}

#[tokio::test]
async fn a_short_or_empty_operator_token_is_refused_at_start_up() {
    for token in ["", "   ", "short-token", &"x".repeat(31)] {
        let config = control_plane::Config::new(
            secrecy::SecretString::from(local_postgres::shared_test_server().superuser_url()),
            secrecy::SecretString::from(control_plane::secrets::MasterKey::generate_base64()),
            secrecy::SecretString::from(token.to_owned()),
        );
        let refused = control_plane::App::build(config).await.err().map(|e| e.to_string());
        assert!(refused.is_some_and(|e| e.contains("at least 32 characters")), "{token:?} was accepted");
    }
}

#[tokio::test]
async fn an_explicit_null_where_the_schema_has_none_or_an_array_for_an_object_is_a_422_and_changes_nothing() {
    let app = TestApp::spawn().await;
    for (body, field) in [
        (json!({"maintenance_mode": true, "tenant": null}), "tenant"),
        (json!({"maintenance_mode": true, "message": null}), "message"),
    ] {
        let response = app.operator(reqwest::Method::PUT, "/system/maintenance").json(&body).send().await.unwrap();
        assert_eq!(response.status(), 422, "{body}");
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(answer["field"], field, "{answer}");
    }
    let mut signup = crate::helpers::signup_body(&unique("null-"));
    signup["slug"] = serde_json::Value::Null;
    let response = app.signup(&signup).await;
    assert_eq!(response.status(), 422);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["field"], "slug");

    // serde would read `[]` as a request with every field absent, and start a run.
    let response = app.operator(reqwest::Method::POST, "/migrations/runs").json(&json!([])).send().await.unwrap();
    assert_eq!(response.status(), 422);
    let runs: serde_json::Value =
        app.operator(reqwest::Method::GET, "/migrations/runs").send().await.unwrap().json().await.unwrap();
    assert_eq!(runs.as_array().map(Vec::len), Some(0), "no run started: {runs}");

    let status: serde_json::Value = app.http.get(app.url("/system/status")).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["maintenance_mode"], false, "nothing changed");
}

#[tokio::test]
async fn a_method_a_path_does_not_have_is_a_405_with_allow_listing_the_ones_it_has() {
    let app = TestApp::spawn().await;
    for (method, path, allow) in [
        (reqwest::Method::DELETE, "/auth/login", "POST"),
        (reqwest::Method::PUT, "/tenants", "GET, POST, HEAD"),
        (reqwest::Method::POST, "/openapi.json", "GET, HEAD"),
    ] {
        let response = app.http.request(method.clone(), app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
    }
}

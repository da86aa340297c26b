//! Staff accounts end to end: invitations mailed over real SMTP, accepted by code, roles that
//! the router enforces, changes and removals that cut tokens and sockets off; mail that waits
//! out an SMTP outage and a control plane restart.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stack::smtp_sink::SmtpSink;
use stack::{Platform, TEST_PASSWORD, unique};

use crate::realtime::{close_code, connect};

const STAFF_PASSWORD: &str = "Blue-Harbor-2026!";

async fn platform_mailing_to(smtp_url: String) -> Platform {
    Platform::builder_for_tests()
        .control_plane(move |c| {
            c.signup_limit_per_hour = 100_000;
            c.mail.smtp_url = Some(smtp_url.into());
            c.mail.retry_base = Duration::from_millis(100);
            c.mail.poll_interval = Duration::from_millis(200);
        })
        .routers(1)
        .start()
        .await
        .unwrap()
}

async fn call(
    platform: &Platform,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = platform.http.request(method, format!("{}{path}", platform.control_plane.url)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn router(platform: &Platform, method: Method, path: &str, token: &str, body: Option<Value>) -> StatusCode {
    let mut request = platform.http.request(method, format!("{}{path}", platform.routers[0].url)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().status()
}

/// The invitation code in a mail (`XXXX-XXXX-XXXX-XXXX`).
fn code_in(mail: &str) -> String {
    mail.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .find(|w| w.len() == 19 && w.split('-').count() == 4 && w.split('-').all(|g| g.len() == 4))
        .unwrap_or_else(|| panic!("a code in {mail}"))
        .to_owned()
}

fn employee(n: usize) -> Value {
    json!({"first_name": "Eve", "last_name": format!("N{n}"), "email": format!("eve{n}@staff.example.com"),
           "hire_date": "2024-01-02"})
}

/// Polls until the router refuses `token` (401); how long that took.
async fn until_refused(platform: &Platform, token: &str) -> Duration {
    let start = Instant::now();
    while router(platform, Method::GET, "/employees", token, None).await != StatusCode::UNAUTHORIZED {
        assert!(start.elapsed() < Duration::from_secs(10), "the token is still served after 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn an_invited_staff_member_reads_is_promoted_and_is_cut_off_when_removed() {
    let sink = SmtpSink::start().await.unwrap();
    let platform = platform_mailing_to(sink.url()).await;
    let company = platform.signup(&unique("people-")).await.unwrap();
    let admin = company.token.clone();
    let welcome = sink.wait_for(Duration::from_secs(10), |m| m.contains(&company.admin_email)).await;
    assert!(welcome.is_some_and(|m| m.contains("Welcome to NexaCore")), "the admin got a welcome e-mail");

    let staff_email = format!("staff@{}.example.com", company.slug);
    let (status, invitation) =
        call(&platform, Method::POST, "/invitations", &admin, Some(json!({"email": staff_email, "role": "staff"})))
            .await;
    assert_eq!(status, 201, "{invitation}");
    assert_eq!((invitation["status"].as_str(), invitation["role"].as_str()), (Some("pending"), Some("staff")));
    let mail =
        sink.wait_for(Duration::from_secs(10), |m| m.contains(&staff_email)).await.expect("the invitation arrives");
    // Quoted-printable: soft line breaks joined, `=3D` is `=`.
    let mail = mail.replace("=\n", "").replace("=3D", "=");
    assert!(mail.contains(&company.name), "the e-mail names the company");
    let code = code_in(&mail);
    assert!(mail.contains(&format!("nexacore://accept?code={code}")), "{mail}");

    let accept = json!({"code": code, "password": STAFF_PASSWORD, "full_name": "Sam Staff"});
    let (status, signed) = call(&platform, Method::POST, "/invitations/accept", "", Some(accept.clone())).await;
    assert_eq!(status, 201, "{signed}");
    assert_eq!(signed["role"], "staff");
    assert_eq!(signed["tenant"]["name"].as_str(), Some(company.name.as_str()));
    let staff = signed["access_token"].as_str().unwrap().to_owned();
    let (status, reused) = call(&platform, Method::POST, "/invitations/accept", "", Some(accept)).await;
    assert_eq!((status, reused["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("code_used")));

    // Staff read and may not write.
    assert_eq!(router(&platform, Method::GET, "/employees", &staff, None).await, 200);
    assert_eq!(router(&platform, Method::POST, "/employees", &staff, Some(employee(1))).await, 403);
    let (status, _) = call(&platform, Method::GET, "/users", &staff, None).await;
    assert_eq!(status, 403, "staff do not see the member list");

    // Promoted: the old token ends, a new sign-in carries the new role and may write.
    let (_, members) = call(&platform, Method::GET, "/users", &admin, None).await;
    let staff_id = members.as_array().unwrap().iter().find(|m| m["email"] == staff_email).unwrap()["id"].clone();
    let (status, changed) = call(
        &platform,
        Method::PATCH,
        &format!("/users/{}", staff_id.as_str().unwrap()),
        &admin,
        Some(json!({"role": "manager"})),
    )
    .await;
    assert_eq!((status, changed["role"].as_str()), (StatusCode::OK, Some("manager")));
    let took = until_refused(&platform, &staff).await;
    println!("a role change refused the old token after {took:?}");
    let login = json!({"email": staff_email, "password": STAFF_PASSWORD});
    let (status, signed) = call(&platform, Method::POST, "/auth/login", "", Some(login)).await;
    assert_eq!((status, signed["role"].as_str()), (StatusCode::OK, Some("manager")), "{signed}");
    let manager = signed["access_token"].as_str().unwrap().to_owned();
    let manager_refresh = signed["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(router(&platform, Method::POST, "/employees", &manager, Some(employee(2))).await, 201);

    // Removed: token refused and socket closed.
    let mut socket = connect(&platform.routers[0].url, &manager, "").await;
    let (status, _) =
        call(&platform, Method::DELETE, &format!("/users/{}", staff_id.as_str().unwrap()), &admin, None).await;
    assert_eq!(status, 204);
    let took = until_refused(&platform, &manager).await;
    println!("a removal refused the token after {took:?}");
    assert_eq!(close_code(&mut socket, Duration::from_secs(10)).await, 4001, "the live socket closes");
    let refresh = json!({"refresh_token": manager_refresh});
    let (status, _) = call(&platform, Method::POST, "/auth/refresh", "", Some(refresh)).await;
    assert_eq!(status, 401, "a removal ends the member's sign-ins");
    platform.stop().await.unwrap();
}

#[tokio::test]
async fn bad_people_requests_are_refused_with_4xx_and_change_nothing() {
    let sink = SmtpSink::start().await.unwrap();
    let platform = platform_mailing_to(sink.url()).await;
    let company = platform.signup(&unique("peoplebad-")).await.unwrap();
    let admin = company.token.clone();
    let invite = |body: Value| call(&platform, Method::POST, "/invitations", &admin, Some(body));

    let (status, body) = invite(json!({"email": "x@y.example.com", "role": "owner"})).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("role")), "{body}");
    let (status, body) = invite(json!({"email": "not-an-address", "role": "staff"})).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("email")), "{body}");
    let (status, body) = invite(json!({"email": company.admin_email, "role": "staff"})).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::CONFLICT, Some("already_member")), "{body}");
    let (status, _) = invite(json!({"email": "twice@y.example.com", "role": "staff"})).await;
    assert_eq!(status, 201);
    let (status, body) = invite(json!({"email": "TWICE@y.example.com", "role": "manager"})).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::CONFLICT, Some("invitation_pending")), "{body}");

    let guess = json!({"code": "ABCD-EFGH-JKLM-NPQR", "password": STAFF_PASSWORD, "full_name": "Guess"});
    let (status, body) = call(&platform, Method::POST, "/invitations/accept", "", Some(guess)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_code")), "{body}");

    // The last admin can be neither removed nor demoted.
    let (_, members) = call(&platform, Method::GET, "/users", &admin, None).await;
    let admin_id = members[0]["id"].as_str().unwrap().to_owned();
    let (status, body) = call(&platform, Method::DELETE, &format!("/users/{admin_id}"), &admin, None).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::CONFLICT, Some("last_admin")));
    let demote = Some(json!({"role": "staff"}));
    let (status, body) = call(&platform, Method::PATCH, &format!("/users/{admin_id}"), &admin, demote).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::CONFLICT, Some("last_admin")));

    // A forged or missing token gets nothing.
    let (status, _) = call(&platform, Method::GET, "/users", "not-a-token", None).await;
    assert_eq!(status, 401);
    let (status, _) = call(&platform, Method::GET, "/users", &format!("{admin}x"), None).await;
    assert_eq!(status, 401);

    // Nothing changed: one member, one pending invitation, the admin still admin.
    let (_, members) = call(&platform, Method::GET, "/users", &admin, None).await;
    assert_eq!(members.as_array().map(Vec::len), Some(1));
    assert_eq!(members[0]["role"], "admin");
    let (_, invitations) = call(&platform, Method::GET, "/invitations", &admin, None).await;
    assert_eq!(invitations.as_array().map(Vec::len), Some(1), "{invitations}");
    assert_eq!(router(&platform, Method::GET, "/employees", &admin, None).await, 200, "the admin's token still works");
    platform.stop().await.unwrap();
}

#[tokio::test]
async fn mail_waits_out_an_smtp_outage_and_a_restart_and_arrives_once() {
    let mut sink = SmtpSink::reserve().await.unwrap();
    let mut platform = platform_mailing_to(sink.url()).await;
    let company = platform.signup(&unique("mailout-")).await.unwrap();
    let catalog = sqlx::PgPool::connect(&platform.catalog_url).await.unwrap();
    let attempts = || async {
        sqlx::query_scalar::<_, i32>("SELECT coalesce(max(attempts), 0) FROM mail_outbox WHERE status = 'pending'")
            .fetch_one(&catalog)
            .await
            .unwrap()
    };
    // The welcome mail is tried against a server that is down.
    let start = Instant::now();
    while attempts().await < 2 {
        assert!(start.elapsed() < Duration::from_secs(20), "the sender retries");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sink.resume().await.unwrap();
    let welcome = sink.wait_for(Duration::from_secs(30), |m| m.contains(&company.admin_email)).await;
    assert!(welcome.is_some(), "delivered once the server is back");

    // An invitation committed while the control plane can send nothing (no transport), then
    // a restart with SMTP: delivered, once.
    platform.restart_control_plane(|c| c.mail.smtp_url = None).await.unwrap();
    let invited = format!("later@{}.example.com", company.slug);
    let body = Some(json!({"email": invited, "role": "staff"}));
    let (status, _) = call(&platform, Method::POST, "/invitations", &company.token, body).await;
    assert_eq!(status, 201);
    let url = sink.url();
    platform
        .restart_control_plane(move |c| {
            c.mail.smtp_url = Some(url.into());
            c.mail.poll_interval = Duration::from_millis(200);
        })
        .await
        .unwrap();
    assert!(sink.wait_for(Duration::from_secs(30), |m| m.contains(&invited)).await.is_some());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let copies = sink.messages().iter().filter(|m| m.contains(&invited)).count();
    assert_eq!(copies, 1, "exactly once");
    let welcomes = sink.messages().iter().filter(|m| m.contains("Welcome to NexaCore")).count();
    assert_eq!(welcomes, 1, "the welcome mail was not sent again");
    let (status, _) = call(
        &platform,
        Method::POST,
        "/auth/login",
        "",
        Some(json!({"email": company.admin_email, "password": TEST_PASSWORD})),
    )
    .await;
    assert_eq!(status, 200);
    platform.stop().await.unwrap();
}

#[tokio::test]
async fn passwords_change_and_reset_by_mailed_code_and_end_every_earlier_token() {
    let sink = SmtpSink::start().await.unwrap();
    let platform = platform_mailing_to(sink.url()).await;
    let company = platform.signup(&unique("pwd-")).await.unwrap();
    let login = |password: &str| {
        call(
            &platform,
            Method::POST,
            "/auth/login",
            "",
            Some(json!({"email": company.admin_email, "password": password})),
        )
    };

    // Change: the current password is checked, the new one must be strong, old tokens end.
    let change = |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let (status, body) = call(
        &platform,
        Method::POST,
        "/auth/password",
        &company.token,
        Some(change("wrong-password-1!", STAFF_PASSWORD)),
    )
    .await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("current_password")));
    let (status, body) =
        call(&platform, Method::POST, "/auth/password", &company.token, Some(change(TEST_PASSWORD, "short"))).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("new_password")), "{body}");
    assert_eq!(router(&platform, Method::GET, "/employees", &company.token, None).await, 200, "nothing changed");
    let (status, _) =
        call(&platform, Method::POST, "/auth/password", &company.token, Some(change(TEST_PASSWORD, STAFF_PASSWORD)))
            .await;
    assert_eq!(status, 204);
    until_refused(&platform, &company.token).await;
    assert_eq!(login(TEST_PASSWORD).await.0, 401);
    let (status, signed) = login(STAFF_PASSWORD).await;
    assert_eq!(status, 200);
    let token = signed["access_token"].as_str().unwrap().to_owned();
    assert!(sink.wait_for(Duration::from_secs(10), |m| m.contains("password was changed")).await.is_some());

    // Reset: always 202; a code by e-mail for a real account only; single use.
    let reset = |email: &str| call(&platform, Method::POST, "/auth/password-reset", "", Some(json!({"email": email})));
    assert_eq!(reset("nobody@nowhere.example.com").await.0, 202);
    assert_eq!(reset(&company.admin_email).await.0, 202);
    let mail = sink
        .wait_for(Duration::from_secs(10), |m| m.contains("Reset your NexaCore password"))
        .await
        .expect("the reset code arrives")
        .replace("=\n", "")
        .replace("=3D", "=");
    let code = code_in(&mail);
    let confirm = |new: &str| json!({"code": code, "new_password": new});
    let (status, body) = call(&platform, Method::POST, "/auth/password-reset/confirm", "", Some(confirm("weak"))).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("new_password")));
    let (status, _) =
        call(&platform, Method::POST, "/auth/password-reset/confirm", "", Some(confirm("Green-Valley-2027?"))).await;
    assert_eq!(status, 204, "a refused weak password left the code usable");
    let (status, body) =
        call(&platform, Method::POST, "/auth/password-reset/confirm", "", Some(confirm("Other-Valley-2028?"))).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_code")));
    until_refused(&platform, &token).await;
    assert_eq!(login("Green-Valley-2027?").await.0, 200);
    assert!(
        sink.messages().iter().all(|m| !m.contains("nobody@nowhere.example.com")),
        "no mail for an address without an account"
    );
    platform.stop().await.unwrap();
}

#[tokio::test]
async fn a_suspended_companys_members_keep_no_access_to_its_people() {
    let sink = SmtpSink::start().await.unwrap();
    let platform = platform_mailing_to(sink.url()).await;
    let company = platform.signup(&unique("suspended-")).await.unwrap();
    let (status, _) = call(&platform, Method::GET, "/users", &company.token, None).await;
    assert_eq!(status, 200);
    let suspend = Some(json!({"status": "suspended"}));
    let (status, _) =
        call(&platform, Method::PATCH, &format!("/tenants/{}", company.id), &platform.operator_token, suspend).await;
    assert_eq!(status, 200);
    let invite = Some(json!({"email": "late@example.com", "role": "staff"}));
    let (status, _) = call(&platform, Method::POST, "/invitations", &company.token, invite).await;
    assert_eq!(status, 401, "the token no longer opens the company's people");
    platform.stop().await.unwrap();
}

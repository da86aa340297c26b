//! Access is taken back before tokens expire: a removed membership, a changed one (role,
//! password) and a revoked signing key are enforced by the router within a second, live
//! sockets included.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Company, PASSWORD, Stack, unique};
use crate::realtime::{close_code, connect};

/// Polls `GET /employees` with `token` until it answers 401 (or 1 s passes); returns the body
/// and how long it took.
async fn refused_within_a_second(stack: &Stack, token: &str) -> (Value, Duration) {
    let started = Instant::now();
    loop {
        let response = stack.call(Method::GET, "/employees", token).send().await.unwrap();
        if response.status() == 401 {
            return (response.json().await.unwrap(), started.elapsed());
        }
        let status = response.status();
        assert_eq!(status, 200, "{}", response.text().await.unwrap());
        assert!(started.elapsed() < Duration::from_secs(1), "still served after 1 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn login(stack: &Stack, company: &Company) -> reqwest::Response {
    let body = json!({"email": format!("admin@{}.example.com", company.slug), "password": PASSWORD});
    stack.http.post(format!("{}/auth/login", stack.control_plane)).json(&body).send().await.unwrap()
}

#[tokio::test]
async fn a_removed_users_token_is_refused_within_a_second_and_their_socket_closes() {
    let stack = Stack::start().await;
    let company = stack.signup(&unique("removed-")).await;
    let other = stack.signup(&unique("stays-")).await;
    assert_eq!(stack.call(Method::GET, "/employees", &company.token).send().await.unwrap().status(), 200);
    let mut ws = connect(&stack.router, &company.token, "").await;
    let mut others_ws = connect(&stack.router, &other.token, "").await;

    let mut catalog = stack.catalog().await;
    sqlx::query("DELETE FROM memberships WHERE tenant_id = $1::uuid")
        .bind(&company.id)
        .execute(&mut catalog)
        .await
        .unwrap();
    let (body, took) = refused_within_a_second(&stack, &company.token).await;
    assert_eq!(body["error"], "token_revoked", "{body}");
    println!("removed membership refused after {took:?}");
    assert_eq!(close_code(&mut ws, Duration::from_secs(5)).await, 4001);
    // Nobody else is touched.
    assert_eq!(stack.call(Method::GET, "/employees", &other.token).send().await.unwrap().status(), 200);
    stack.add_employee(&other.token, "still@here.example.com").await;
    let event = tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut others_ws)).await;
    assert!(matches!(event, Ok(Some(Ok(_)))), "the other company's socket stays open");
}

#[tokio::test]
async fn a_changed_membership_ends_old_tokens_and_a_new_sign_in_works() {
    let stack = Stack::start().await;
    let company = stack.signup(&unique("changed-")).await;
    let mut ws = connect(&stack.router, &company.token, "").await;
    // What a role or password change does to the membership.
    let mut catalog = stack.catalog().await;
    sqlx::query("UPDATE memberships SET token_epoch = nextval('membership_token_epochs') WHERE tenant_id = $1::uuid")
        .bind(&company.id)
        .execute(&mut catalog)
        .await
        .unwrap();
    let (body, _) = refused_within_a_second(&stack, &company.token).await;
    assert_eq!(body["error"], "token_revoked", "{body}");
    assert_eq!(close_code(&mut ws, Duration::from_secs(5)).await, 4001);

    let signed_in: Value = login(&stack, &company).await.json().await.unwrap();
    let fresh = signed_in["access_token"].as_str().expect("a new token");
    assert_eq!(stack.call(Method::GET, "/employees", fresh).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_revoked_signing_key_stops_verifying_at_once_and_new_tokens_use_the_new_key() {
    let stack = Stack::start().await;
    let company = stack.signup(&unique("revoke-key-")).await;
    assert_eq!(stack.call(Method::GET, "/employees", &company.token).send().await.unwrap().status(), 200);
    let jwks: Value = stack.http.get(&stack.jwks_url).send().await.unwrap().json().await.unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();

    let revoked = stack.operator(Method::POST, &format!("/keys/{kid}/revoke")).send().await.unwrap();
    assert_eq!(revoked.status(), 200);
    let revoked: Value = revoked.json().await.unwrap();
    assert_eq!(revoked["kid"], kid.as_str());
    assert!(revoked["new_current"].is_string(), "the current key was replaced: {revoked}");
    let (body, _) = refused_within_a_second(&stack, &company.token).await;
    assert_eq!(body["error"], "invalid_token", "{body}");

    let signed_in: Value = login(&stack, &company).await.json().await.unwrap();
    let fresh = signed_in["access_token"].as_str().expect("a new token");
    assert_eq!(stack.call(Method::GET, "/employees", fresh).send().await.unwrap().status(), 200);
    let unknown = stack.operator(Method::POST, "/keys/00ff/revoke").send().await.unwrap();
    assert_eq!(unknown.status(), 404);
}

//! Sign-ins that last a working day: refresh tokens rotate, a reused one ends its sign-in,
//! sign-out, removals and password changes end them, and a sign-in has an end.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use stack::{Platform, TEST_PASSWORD, unique};

async fn post(platform: &Platform, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut request = platform.http.post(format!("{}{path}", platform.control_plane.url)).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn refresh(platform: &Platform, token: &str) -> (StatusCode, Value) {
    post(platform, "/auth/refresh", None, json!({"refresh_token": token})).await
}

async fn login(platform: &Platform, email: &str, password: &str) -> Value {
    let (status, body) = post(platform, "/auth/login", None, json!({"email": email, "password": password})).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn employees(platform: &Platform, token: &str) -> StatusCode {
    let url = format!("{}/employees", platform.routers[0].url);
    platform.http.get(url).bearer_auth(token).send().await.unwrap().status()
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_ends_the_sign_in() {
    let platform = Platform::builder_for_tests().routers(1).start().await.unwrap();
    let company = platform.signup(&unique("refresh-")).await.unwrap();
    let signed = login(&platform, &company.admin_email, TEST_PASSWORD).await;
    let first = signed["refresh_token"].as_str().expect("a refresh token").to_owned();
    assert!(signed["refresh_expires_in"].as_u64().unwrap() >= 13 * 3600, "a working day");

    let (status, renewed) = refresh(&platform, &first).await;
    assert_eq!(status, 200, "{renewed}");
    let second = renewed["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first, "rotated");
    assert_eq!(renewed["role"], "admin");
    assert_eq!(employees(&platform, renewed["access_token"].as_str().unwrap()).await, 200);

    // The first token again: copied. The whole sign-in ends, the second token with it.
    let (status, body) = refresh(&platform, &first).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("refresh_reused")));
    let (status, body) = refresh(&platform, &second).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("session_ended")));
    let (status, _) = refresh(&platform, "made-up").await;
    assert_eq!(status, 401);

    // Sign-out ends a sign-in; another sign-in is not touched.
    let a = login(&platform, &company.admin_email, TEST_PASSWORD).await["refresh_token"].as_str().unwrap().to_owned();
    let b = login(&platform, &company.admin_email, TEST_PASSWORD).await["refresh_token"].as_str().unwrap().to_owned();
    let (status, _) = post(&platform, "/auth/logout", None, json!({"refresh_token": a})).await;
    assert_eq!(status, 204);
    assert_eq!(refresh(&platform, &a).await.0, 401);
    assert_eq!(refresh(&platform, &b).await.0, 200);
    platform.stop().await.unwrap();
}

#[tokio::test]
async fn a_password_change_ends_sign_ins_and_a_sign_in_has_an_end() {
    let platform = Platform::builder_for_tests()
        .control_plane(|c| c.session_lifetime = Duration::from_secs(3))
        .routers(1)
        .start()
        .await
        .unwrap();
    let company = platform.signup(&unique("sessend-")).await.unwrap();
    let signed = login(&platform, &company.admin_email, TEST_PASSWORD).await;
    let token = signed["access_token"].as_str().unwrap().to_owned();
    let kept = signed["refresh_token"].as_str().unwrap().to_owned();
    let change = json!({"current_password": TEST_PASSWORD, "new_password": "Blue-Harbor-2026!"});
    let (status, body) = post(&platform, "/auth/password", Some(&token), change).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(refresh(&platform, &kept).await.0, 401, "a password change ends every sign-in");

    // The sign-in's end holds however often it refreshes.
    let fresh = login(&platform, &company.admin_email, "Blue-Harbor-2026!").await;
    let (status, renewed) = refresh(&platform, fresh["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert!(renewed["refresh_expires_in"].as_u64().unwrap() <= 3);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(refresh(&platform, renewed["refresh_token"].as_str().unwrap()).await.0, 401);
    platform.stop().await.unwrap();
}

/// A sign-out racing the reuse of an older token of the same sign-in: each locks its own token
/// first and then the whole family, which can deadlock. Neither may answer 5xx.
#[tokio::test]
async fn a_sign_out_racing_a_reused_token_never_answers_5xx() {
    let platform = Platform::builder_for_tests().routers(1).start().await.unwrap();
    let company = platform.signup(&unique("race-")).await.unwrap();
    for _ in 0..40 {
        let old =
            login(&platform, &company.admin_email, TEST_PASSWORD).await["refresh_token"].as_str().unwrap().to_owned();
        let (status, renewed) = refresh(&platform, &old).await;
        assert_eq!(status, 200, "{renewed}");
        let current = renewed["refresh_token"].as_str().unwrap().to_owned();
        let (reused, signed_out) = tokio::join!(
            refresh(&platform, &old),
            post(&platform, "/auth/logout", None, json!({"refresh_token": current})),
        );
        assert_eq!(reused.0, StatusCode::UNAUTHORIZED, "{}", reused.1);
        assert!(signed_out.0.is_success(), "{} {}", signed_out.0, signed_out.1);
        assert_eq!(refresh(&platform, &current).await.0, StatusCode::UNAUTHORIZED, "the sign-in ended");
    }
}

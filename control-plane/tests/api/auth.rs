//! Login, tokens, the JWKS, key rotation and throttling.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, unique};

/// Verifies a token against the app's JWKS, as a relying service would.
async fn verify(app: &TestApp, token: &str) -> Result<Value, String> {
    let jwks: Value = app.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    assert_eq!(header.alg, Algorithm::EdDSA);
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid).ok_or("kid not in JWKS")?;
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    let key = DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["nexacore-api"]);
    validation.set_issuer(&["nexacore-control-plane"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation).map(|d| d.claims).map_err(|e| e.to_string())
}

#[tokio::test]
async fn the_right_password_gives_a_token_that_verifies_with_the_jwks_key() {
    let app = TestApp::spawn().await;
    let slug = unique("login-");
    let created = app.create_tenant(&slug).await;
    let response = app.login(&format!("admin@{slug}.example.com"), PASSWORD, None).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["tenant"]["slug"], slug);
    assert_eq!(body["role"], "admin");
    assert!(body["api_url"].as_str().unwrap().starts_with("http"));
    assert!(body["ws_url"].as_str().unwrap().starts_with("ws"));

    let claims = verify(&app, body["access_token"].as_str().unwrap()).await.unwrap();
    assert_eq!(claims["tid"], created["tenant"]["id"]);
    assert_eq!(claims["role"], "admin");
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
    assert!(claims["sub"].as_str().is_some());
    // The signup token verifies too.
    verify(&app, created["access_token"].as_str().unwrap()).await.unwrap();
}

#[tokio::test]
async fn a_tampered_token_does_not_verify() {
    let app = TestApp::spawn().await;
    let slug = unique("tamper-");
    let created = app.create_tenant(&slug).await;
    let token = created["access_token"].as_str().unwrap();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&engine.decode(&parts[1]).unwrap()).unwrap();
    claims["tid"] = json!(uuid::Uuid::new_v4());
    parts[1] = engine.encode(serde_json::to_vec(&claims).unwrap());
    assert!(verify(&app, &parts.join(".")).await.is_err());
}

#[tokio::test]
async fn wrong_password_unknown_user_and_suspended_tenant_are_refused() {
    let app = TestApp::spawn().await;
    let slug = unique("refuse-");
    let created = app.create_tenant(&slug).await;
    let email = format!("admin@{slug}.example.com");

    let wrong = app.login(&email, "Wr0ng&Password!", None).await;
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"], "bad_credentials");

    let unknown = app.login("nobody@nowhere.example.com", PASSWORD, None).await;
    assert_eq!(unknown.status(), 401);

    let id = created["tenant"]["id"].as_str().unwrap();
    let suspend = app
        .operator(reqwest::Method::PATCH, &format!("/tenants/{id}"))
        .json(&json!({"status": "suspended"}))
        .send()
        .await
        .unwrap();
    assert_eq!(suspend.status(), 200);
    let suspended = app.login(&email, PASSWORD, None).await;
    assert_eq!(suspended.status(), 403);
    let body: Value = suspended.json().await.unwrap();
    assert_eq!(body["error"], "tenant_suspended");
    let named = app.login(&email, PASSWORD, Some(&slug)).await;
    assert_eq!(named.status(), 403);

    let resume = app
        .operator(reqwest::Method::PATCH, &format!("/tenants/{id}"))
        .json(&json!({"status": "active"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resume.status(), 200);
    assert_eq!(app.login(&email, PASSWORD, None).await.status(), 200);
}

#[tokio::test]
async fn repeated_failures_are_throttled_even_with_the_right_password() {
    let app = TestApp::spawn().await;
    let slug = unique("throttle-");
    app.create_tenant(&slug).await;
    let email = format!("admin@{slug}.example.com");
    for _ in 0..5 {
        assert_eq!(app.login(&email, "Wr0ng&Password!", None).await.status(), 401);
    }
    let throttled = app.login(&email, PASSWORD, None).await;
    assert_eq!(throttled.status(), 429);
    assert!(throttled.headers().get("retry-after").is_some());
    let body: Value = throttled.json().await.unwrap();
    assert_eq!(body["error"], "throttled");
}

#[tokio::test]
async fn a_user_in_two_companies_chooses_one() {
    let app = TestApp::spawn().await;
    let first = unique("one-");
    app.create_tenant(&first).await;
    let email = format!("admin@{first}.example.com");
    let second = unique("two-");
    let mut body = crate::helpers::signup_body(&second);
    body["admin"]["email"] = json!(email);
    assert_eq!(app.signup(&body).await.status(), 201);

    let choose: Value = app.login(&email, PASSWORD, None).await.json().await.unwrap();
    let slugs: Vec<&str> = choose["tenants"].as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs.len(), 2, "{choose}");
    assert!(slugs.contains(&first.as_str()) && slugs.contains(&second.as_str()));

    let chosen: Value = app.login(&email, PASSWORD, Some(&second)).await.json().await.unwrap();
    assert_eq!(chosen["tenant"]["slug"], second);
    let not_member = app.login(&email, PASSWORD, Some("someone-else")).await;
    assert_eq!(not_member.status(), 403);
}

#[tokio::test]
async fn after_key_rotation_old_tokens_still_verify_and_new_ones_use_the_new_key() {
    let app = TestApp::spawn().await;
    let slug = unique("rotate-");
    let created = app.create_tenant(&slug).await;
    let old_token = created["access_token"].as_str().unwrap().to_owned();
    let old_kid = jsonwebtoken::decode_header(&old_token).unwrap().kid.unwrap();

    let rotated = app.operator(reqwest::Method::POST, "/keys/rotate").send().await.unwrap();
    assert_eq!(rotated.status(), 200);
    let new_kid = rotated.json::<Value>().await.unwrap()["kid"].as_str().unwrap().to_owned();
    assert_ne!(old_kid, new_kid);

    let jwks: Value = app.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert!(kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()), "{kids:?}");
    verify(&app, &old_token).await.unwrap();

    let fresh: Value = app.login(&format!("admin@{slug}.example.com"), PASSWORD, None).await.json().await.unwrap();
    let token = fresh["access_token"].as_str().unwrap();
    assert_eq!(jsonwebtoken::decode_header(token).unwrap().kid.unwrap(), new_kid);
    verify(&app, token).await.unwrap();
}

#[tokio::test]
async fn a_configured_signing_key_is_used_and_published() {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    let pem = key.to_pkcs8_pem(Default::default()).unwrap().to_string();
    let app = TestApp::spawn_with(|c| c.signing_key_pem = Some(secrecy::SecretString::from(pem))).await;
    let created = app.create_tenant(&unique("pem-")).await;
    let claims = verify(&app, created["access_token"].as_str().unwrap()).await.unwrap();
    assert!(claims["tid"].is_string());
    let jwks: Value = app.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
    assert!(jwks["keys"].as_array().unwrap().iter().any(|k| k["x"] == x));
}

//! Every kind of bad token is refused with 401 and a clear message; a suspended tenant's valid
//! token is refused within a second, on a router that had cached the tenant's route.

use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Stack, claims_for, unique};

async fn check_refused(stack: &Stack, token: &str, case: &str) {
    let response = stack.call(Method::GET, "/employees", token).send().await.unwrap();
    assert_eq!(response.status(), 401, "{case}");
    let body: Value = response.json().await.unwrap();
    assert!(!body["message"].as_str().unwrap_or("").is_empty(), "{case}: a clear message");
}

#[tokio::test]
async fn every_tampered_or_invalid_token_is_refused() {
    let stack = Stack::start().await;
    let company = stack.signup(&unique("tok-")).await;
    assert_eq!(stack.call(Method::GET, "/employees", &company.token).send().await.unwrap().status(), 200);

    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims = claims_for(&company);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();

    // alg: none, unsigned.
    let none = format!(
        "{}.{}.",
        b64.encode(json!({"alg": "none", "typ": "JWT", "kid": stack.kid()}).to_string()),
        b64.encode(claims.to_string())
    );
    check_refused(&stack, &none, "alg none").await;

    // HS256 with the public key as the HMAC secret (the classic algorithm-confusion attack).
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some(stack.kid());
    let public = stack.signing_key.verifying_key().to_bytes();
    let confused = jsonwebtoken::encode(&hs, &claims, &jsonwebtoken::EncodingKey::from_secret(&public)).unwrap();
    check_refused(&stack, &confused, "HS256 with the public key").await;

    let mut expired = claims.clone();
    expired["exp"] = json!(now - 3600);
    expired["iat"] = json!(now - 7200);
    expired["nbf"] = json!(now - 7200);
    check_refused(&stack, &stack.sign(&expired), "expired").await;

    let mut future = claims.clone();
    future["nbf"] = json!(now + 3600);
    check_refused(&stack, &stack.sign(&future), "not yet valid").await;

    let mut audience = claims.clone();
    audience["aud"] = json!("someone-else");
    check_refused(&stack, &stack.sign(&audience), "wrong audience").await;

    let mut issuer = claims.clone();
    issuer["iss"] = json!("evil-issuer");
    check_refused(&stack, &stack.sign(&issuer), "wrong issuer").await;

    // Signed by a key the JWKS does not hold.
    let stranger = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    let der = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(&stranger).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("0123456789abcdef".into());
    let unknown =
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes())).unwrap();
    check_refused(&stack, &unknown, "unknown key").await;
    // A stranger's key under the real kid: the signature does not verify.
    header.kid = Some(stack.kid());
    let forged =
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes())).unwrap();
    check_refused(&stack, &forged, "forged signature").await;

    // A real token whose payload was edited to another tenant.
    let mut parts: Vec<String> = company.token.split('.').map(str::to_owned).collect();
    let mut payload: Value = serde_json::from_slice(&b64.decode(&parts[1]).unwrap()).unwrap();
    payload["tid"] = json!(uuid::Uuid::new_v4());
    parts[1] = b64.encode(payload.to_string());
    check_refused(&stack, &parts.join("."), "edited payload").await;

    check_refused(&stack, "not-a-jwt", "garbage").await;
    let missing = stack.http.get(format!("{}/employees", stack.router)).send().await.unwrap();
    assert_eq!(missing.status(), 401);

    // A validly signed token for a tenant that does not exist.
    let mut ghost = claims.clone();
    ghost["tid"] = json!(uuid::Uuid::new_v4());
    check_refused(&stack, &stack.sign(&ghost), "unknown tenant").await;

    // Garbage kids do not make the router hammer the control plane's JWKS.
    let fetches = stack.router_state.verifier.fetch_count();
    for i in 0..20 {
        header.kid = Some(format!("garbage-{i}"));
        let t =
            jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes())).unwrap();
        check_refused(&stack, &t, "garbage kid").await;
    }
    assert!(stack.router_state.verifier.fetch_count() - fetches <= 1, "JWKS refetches are rate-limited");
}

#[tokio::test]
async fn a_suspended_tenant_is_refused_within_a_second_on_a_router_that_cached_it() {
    let stack = Stack::start().await;
    let company = stack.signup(&unique("susp-")).await;
    assert_eq!(stack.call(Method::GET, "/employees", &company.token).send().await.unwrap().status(), 200);
    let lookups = stack.router_state.routes.lookup_count();
    assert_eq!(stack.call(Method::GET, "/employees", &company.token).send().await.unwrap().status(), 200);
    assert_eq!(stack.router_state.routes.lookup_count(), lookups, "the route is served from the cache");

    let suspend =
        stack.operator(Method::PATCH, &format!("/tenants/{}", company.id)).json(&json!({"status": "suspended"}));
    assert_eq!(suspend.send().await.unwrap().status(), 200);
    let suspended_at = Instant::now();
    let mut refused = false;
    while suspended_at.elapsed() < Duration::from_secs(1) {
        let response = stack.call(Method::GET, "/employees", &company.token).send().await.unwrap();
        if response.status() == 403 {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "tenant_suspended");
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "refused within one second of the suspend (route TTL is 120 s)");

    let resume = stack.operator(Method::PATCH, &format!("/tenants/{}", company.id)).json(&json!({"status": "active"}));
    assert_eq!(resume.send().await.unwrap().status(), 200);
    let served = crate::helpers::eventually(|| async {
        stack.call(Method::GET, "/employees", &company.token).send().await.unwrap().status() == 200
    })
    .await;
    assert!(served, "served again after resume");
}

//! Gates: platform and per-tenant maintenance, the per-tenant migration lock, and the client
//! version gate.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Stack, eventually, unique};

async fn status_of(stack: &Stack, token: &str) -> (u16, Value, Option<String>) {
    let r = stack.call(Method::GET, "/employees", token).send().await.unwrap();
    let status = r.status().as_u16();
    let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (status, r.json().await.unwrap_or(Value::Null), retry)
}

#[tokio::test]
async fn maintenance_answers_503_with_the_message_globally_or_for_one_tenant() {
    let stack = Stack::start().await;
    let a = stack.signup(&unique("mnt-a-")).await;
    let b = stack.signup(&unique("mnt-b-")).await;

    let on = stack
        .operator(Method::PUT, "/system/maintenance")
        .json(&json!({"maintenance_mode": true, "message": "Back at 14:00"}));
    assert_eq!(on.send().await.unwrap().status(), 200);
    assert!(eventually(|| async { status_of(&stack, &a.token).await.0 == 503 }).await);
    let (_, body, retry) = status_of(&stack, &b.token).await;
    assert_eq!(body["error"], "maintenance");
    assert_eq!(body["message"], "Back at 14:00");
    assert!(retry.is_some());
    let status: Value =
        stack.http.get(format!("{}/system/status", stack.router)).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["maintenance_mode"], true);

    let off = stack.operator(Method::PUT, "/system/maintenance").json(&json!({"maintenance_mode": false}));
    assert_eq!(off.send().await.unwrap().status(), 200);
    assert!(eventually(|| async { status_of(&stack, &a.token).await.0 == 200 }).await);

    let one = stack
        .operator(Method::PUT, "/system/maintenance")
        .json(&json!({"maintenance_mode": true, "message": "Moving A", "tenant": a.slug}));
    assert_eq!(one.send().await.unwrap().status(), 200);
    assert!(eventually(|| async { status_of(&stack, &a.token).await.0 == 503 }).await);
    assert_eq!(status_of(&stack, &a.token).await.1["message"], "Moving A");
    assert_eq!(status_of(&stack, &b.token).await.0, 200, "B is not affected");
    let a_view: Value = stack.call(Method::GET, "/system/status", &a.token).send().await.unwrap().json().await.unwrap();
    assert_eq!(a_view["message"], "Moving A");
}

#[tokio::test]
async fn a_tenant_being_migrated_gets_503_with_a_retry_hint_and_others_are_served() {
    let stack = Stack::start().await;
    let a = stack.signup(&unique("mig-a-")).await;
    let b = stack.signup(&unique("mig-b-")).await;
    assert_eq!(status_of(&stack, &a.token).await.0, 200);
    let mut catalog = stack.catalog().await;
    // What the migration engine does around a tenant's migration.
    sqlx::query("UPDATE tenants SET migrating = true WHERE id = $1::uuid")
        .bind(&a.id)
        .execute(&mut catalog)
        .await
        .unwrap();
    assert!(eventually(|| async { status_of(&stack, &a.token).await.0 == 503 }).await);
    let (_, body, retry) = status_of(&stack, &a.token).await;
    assert_eq!(body["error"], "migrating");
    assert!(retry.unwrap().parse::<u64>().unwrap() > 0);
    assert_eq!(status_of(&stack, &b.token).await.0, 200);
    sqlx::query("UPDATE tenants SET migrating = false WHERE id = $1::uuid")
        .bind(&a.id)
        .execute(&mut catalog)
        .await
        .unwrap();
    assert!(eventually(|| async { status_of(&stack, &a.token).await.0 == 200 }).await);

    // A schema version this build does not serve: a fast 503, not SQL errors.
    sqlx::query("UPDATE tenants SET schema_version = 999 WHERE id = $1::uuid")
        .bind(&a.id)
        .execute(&mut catalog)
        .await
        .unwrap();
    assert!(eventually(|| async { status_of(&stack, &a.token).await.0 == 503 }).await);
    assert_eq!(status_of(&stack, &a.token).await.1["error"], "schema_version_unsupported");
}

#[tokio::test]
async fn an_old_client_version_gets_426_with_the_supported_versions() {
    let stack = Stack::start().await;
    let a = stack.signup(&unique("ver-")).await;
    let set = stack
        .operator(Method::PUT, "/system/client-versions")
        .json(&json!({"min_client_version": "2.0.0", "latest_version": "2.3.1"}));
    assert_eq!(set.send().await.unwrap().status(), 200);
    let old = || stack.call(Method::GET, "/employees", &a.token).header("X-Client-Version", "1.9.9").send();
    assert!(eventually(|| async { old().await.unwrap().status() == 426 }).await);
    let body: Value = old().await.unwrap().json().await.unwrap();
    assert_eq!(body["min_client_version"], "2.0.0");
    assert_eq!(body["latest_version"], "2.3.1");
    let current =
        stack.call(Method::GET, "/employees", &a.token).header("X-Client-Version", "2.0.0").send().await.unwrap();
    assert_eq!(current.status(), 200);
    let none = stack.call(Method::GET, "/employees", &a.token).send().await.unwrap();
    assert_eq!(none.status(), 200);
    let _ = Duration::ZERO;
}

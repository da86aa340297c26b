//! The operator API: authentication, tenant list and lifecycle, maintenance, audit log.

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

use crate::helpers::{TestApp, unique};

#[tokio::test]
async fn operator_routes_refuse_missing_or_wrong_tokens() {
    let app = TestApp::spawn().await;
    for (method, path) in
        [(Method::GET, "/tenants"), (Method::GET, "/servers"), (Method::POST, "/keys/rotate"), (Method::GET, "/audit")]
    {
        let none = app.http.request(method.clone(), app.url(path)).send().await.unwrap();
        assert_eq!(none.status(), 401, "{path} without a token");
        let body: Value = none.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
        let wrong = app.http.request(method, app.url(path)).bearer_auth("not-the-token").send().await.unwrap();
        assert_eq!(wrong.status(), 401, "{path} with a wrong token");
    }
}

#[tokio::test]
async fn tenants_are_listed_with_filters_and_pages() {
    let app = TestApp::spawn().await;
    let prefix = unique("list");
    for i in 0..5 {
        app.create_tenant(&format!("{prefix}-{i}")).await;
    }
    let first: Value =
        app.operator(Method::GET, &format!("/tenants?q={prefix}&limit=2")).send().await.unwrap().json().await.unwrap();
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let mut seen: Vec<String> =
        first["items"].as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap().to_owned()).collect();
    let mut cursor = Some(cursor.to_owned());
    while let Some(c) = cursor {
        let page: Value = app
            .operator(Method::GET, &format!("/tenants?q={prefix}&limit=2&cursor={c}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen.extend(page["items"].as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap().to_owned()));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    seen.sort();
    assert_eq!(seen, (0..5).map(|i| format!("{prefix}-{i}")).collect::<Vec<_>>());

    let suspended: Value =
        app.operator(Method::GET, "/tenants?status=suspended").send().await.unwrap().json().await.unwrap();
    assert!(suspended["items"].as_array().unwrap().is_empty());
    let bad = app.operator(Method::GET, "/tenants?status=sleeping").send().await.unwrap();
    assert_eq!(bad.status(), 422);
    assert_eq!(bad.json::<Value>().await.unwrap()["field"], "status");
}

#[tokio::test]
async fn deleting_a_tenant_drops_its_database_and_role_and_keeps_an_audited_row() {
    let app = TestApp::spawn().await;
    let slug = unique("gone-");
    let created = app.create_tenant(&slug).await;
    let id = created["tenant"]["id"].as_str().unwrap();
    let detail: Value =
        app.operator(Method::GET, &format!("/tenants/{id}")).send().await.unwrap().json().await.unwrap();
    let db = detail["database_name"].as_str().unwrap().to_owned();

    let flags = app
        .operator(Method::PATCH, &format!("/tenants/{id}"))
        .json(&json!({"feature_flags": {"beta_reports": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(flags.status(), 200);
    assert_eq!(flags.json::<Value>().await.unwrap()["feature_flags"]["beta_reports"], true);

    let deleted = app.operator(Method::DELETE, &format!("/tenants/{id}")).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(deleted.json::<Value>().await.unwrap()["tenant"]["status"], "deleted");

    let mut admin = PgConnection::connect(&app.server.superuser_url()).await.unwrap();
    let db_left: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&db)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    let role_left: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(&db)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(!db_left && !role_left);

    let row: Value = app.operator(Method::GET, &format!("/tenants/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(row["status"], "deleted");
    assert!(row["deleted_at"].is_string());

    let audit: Value =
        app.operator(Method::GET, &format!("/audit?tenant={id}")).send().await.unwrap().json().await.unwrap();
    let actions: Vec<&str> = audit.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["tenant.deleted", "tenant.feature_flags", "tenant.created"]);
    assert!(audit[0]["actor"].as_str().unwrap().starts_with("operator"));

    // The slug is free again, and the deleted tenant's admin can no longer sign in to it.
    let login = app.login(&format!("admin@{slug}.example.com"), crate::helpers::PASSWORD, None).await;
    assert_eq!(login.status(), 403);
    app.create_tenant(&slug).await;
}

#[tokio::test]
async fn maintenance_and_client_versions_show_in_the_public_status() {
    let app = TestApp::spawn().await;
    let status: Value = app.http.get(app.url("/system/status")).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["maintenance_mode"], false);

    let on = app
        .operator(Method::PUT, "/system/maintenance")
        .json(&json!({"maintenance_mode": true, "message": "Upgrading until 14:00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(on.status(), 200);
    let status: Value = app.http.get(app.url("/system/status")).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["maintenance_mode"], true);
    assert_eq!(status["message"], "Upgrading until 14:00");

    let versions = app
        .operator(Method::PUT, "/system/client-versions")
        .json(&json!({"min_client_version": "1.2.0", "latest_version": "1.4.0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(versions.status(), 200);
    let bad = app
        .operator(Method::PUT, "/system/client-versions")
        .json(&json!({"min_client_version": "two", "latest_version": "1.4.0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    assert_eq!(bad.json::<Value>().await.unwrap()["field"], "min_client_version");

    let slug = unique("maint-");
    app.create_tenant(&slug).await;
    let one = app
        .operator(Method::PUT, "/system/maintenance")
        .json(&json!({"maintenance_mode": true, "message": "Moving you", "tenant": slug}))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let mut catalog = app.catalog().await;
    let (on, message): (bool, Option<String>) =
        sqlx::query_as("SELECT maintenance_mode, maintenance_message FROM tenants WHERE slug = $1")
            .bind(&slug)
            .fetch_one(&mut catalog)
            .await
            .unwrap();
    assert!(on);
    assert_eq!(message.as_deref(), Some("Moving you"));
    let unknown = app
        .operator(Method::PUT, "/system/maintenance")
        .json(&json!({"maintenance_mode": true, "tenant": "no-such-co"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 422);
}

#[tokio::test]
async fn health_and_unknown_routes_answer_json() {
    let app = TestApp::spawn().await;
    let health: Value = app.http.get(app.url("/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let missing = app.http.get(app.url("/no/such/route")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"], "not_found");
    let docs = app.http.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    // Graceful shutdown completes and the port stops answering.
    let base = app.url("/health");
    app.stop().await;
    assert!(reqwest::get(base).await.is_err());
}

#[tokio::test]
async fn catalog_changes_are_announced_to_listening_routers() {
    let app = TestApp::spawn().await;
    let created = app.create_tenant(&unique("notify-")).await;
    let id: uuid::Uuid = created["tenant"]["id"].as_str().unwrap().parse().unwrap();
    let mut listener = sqlx::postgres::PgListener::connect(&app.catalog_url).await.unwrap();
    listener.listen(tenancy::notify::CHANNEL).await.unwrap();

    app.operator(Method::PATCH, &format!("/tenants/{id}")).json(&json!({"status": "suspended"})).send().await.unwrap();
    assert_eq!(next_event(&mut listener).await, tenancy::notify::CatalogEvent::Tenant { id });
    app.operator(Method::POST, "/keys/rotate").send().await.unwrap();
    assert_eq!(next_event(&mut listener).await, tenancy::notify::CatalogEvent::Keys);
    app.operator(Method::PUT, "/system/maintenance").json(&json!({"maintenance_mode": false})).send().await.unwrap();
    assert_eq!(next_event(&mut listener).await, tenancy::notify::CatalogEvent::Settings);
}

async fn next_event(listener: &mut sqlx::postgres::PgListener) -> tenancy::notify::CatalogEvent {
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv())
        .await
        .expect("a notification")
        .unwrap();
    tenancy::notify::CatalogEvent::parse(n.payload()).expect("a known event")
}

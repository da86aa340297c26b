//! What the tenant router sees: a tenant is refused (503 with a retry hint) exactly while its
//! own migration runs, other tenants are served meanwhile, and a tenant whose schema is beyond
//! what the router's build serves gets a fast 503 instead of SQL errors.

use std::time::Duration;

use control_plane::secrets::MasterKey;
use secrecy::SecretString;
use serde_json::json;
use tokio::sync::oneshot;

use super::*;
use crate::helpers::{TestApp, eventually};

/// A tenant router (its real `App::build`) on the app's catalog.
async fn start_router(app: &TestApp) -> (String, oneshot::Sender<()>) {
    let role_key =
        MasterKey::from_base64(&SecretString::from(app.master_key.clone())).unwrap().tenant_role_key().to_hex();
    let mut config = tenant_router::Config::new(
        SecretString::from(
            control_plane::catalog::access::router_catalog_url(
                &app.server.superuser_url(),
                &control_plane::domain::DbName::parse(&app.catalog_database).unwrap(),
            )
            .unwrap(),
        ),
        role_key,
        app.url("/.well-known/jwks.json"),
    );
    config.listen = "127.0.0.1:0".parse().unwrap();
    // Long, so that only the catalog's notification can explain a quick reaction.
    config.route_ttl = Duration::from_secs(300);
    let router = tenant_router::App::build(config).await.expect("the router starts");
    let base = format!("http://127.0.0.1:{}", router.port());
    let (stop, stopped) = oneshot::channel();
    tokio::spawn(router.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    (base, stop)
}

#[tokio::test]
async fn while_a_tenant_migrates_the_router_answers_it_503_with_a_retry_hint_and_serves_the_others() {
    let app = TestApp::spawn().await;
    let tenants = create_tenants(&app, "routed", 2).await;
    let (x, y) = (&tenants[0], &tenants[1]);
    let app = app.restart_with(|config| config.tenant_migrations = with_next(0)).await;
    let (router, _stop) = start_router(&app).await;
    let http = reqwest::Client::new();
    let employees = |t: &Tenant| http.get(format!("{router}/employees")).bearer_auth(&t.token).send();
    assert_eq!(employees(x).await.unwrap().status(), 200, "served before the run");

    // X's migration will wait on a lock held here, so it is "in progress" for as long as we like.
    let mut holder = connect(&app, &x.database).await;
    sqlx::raw_sql("BEGIN; LOCK TABLE employees IN ACCESS SHARE MODE").execute(&mut holder).await.unwrap();
    let run = start_run(&app, json!({ "tenants": [x.slug], "lock_timeout_ms": 60000 })).await;
    let id = run["id"].as_str().unwrap().to_owned();
    wait_run(&app, &id, Duration::from_secs(30), |r| r["totals"]["running"] == 1).await;

    let refused = eventually(Duration::from_secs(5), || {
        let request = employees(x);
        async move { request.await.is_ok_and(|r| r.status() == 503) }
    })
    .await;
    assert!(refused, "X is refused while it migrates");
    let response = employees(x).await.unwrap();
    assert_eq!(response.status(), 503);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 0);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "migrating", "{body}");
    for _ in 0..5 {
        assert_eq!(employees(y).await.unwrap().status(), 200, "Y is served meanwhile");
    }

    sqlx::raw_sql("COMMIT").execute(&mut holder).await.unwrap();
    let run = wait_settled(&app, &id).await;
    assert_eq!(run["state"], "completed", "{run:#}");
    assert_eq!(run["totals"]["succeeded"], 1);
    let catalog = catalog_versions(&app).await;
    let row = catalog.iter().find(|(id, ..)| *id == x.id).unwrap();
    assert_eq!((row.1, row.2), (Some(n() + 1), false), "X unlocked, at N+1");

    // X is now beyond what this router build serves (its newest migration is N): a fast 503
    // with a retry hint, not a SQL error. Y, still at N, is served.
    let skewed = eventually(Duration::from_secs(5), || {
        let request = employees(x);
        async move {
            match request.await {
                Ok(r) if r.status() == 503 => {
                    r.json::<serde_json::Value>().await.is_ok_and(|b| b["error"] == "schema_version_unsupported")
                }
                _ => false,
            }
        }
    })
    .await;
    assert!(skewed, "X gets the version-skew answer");
    assert!(employees(x).await.unwrap().headers().contains_key("retry-after"));
    assert_eq!(employees(y).await.unwrap().status(), 200);
}

//! The catalog connection pool: the router hands out catalog connections without pinging them
//! first, so a route lookup must get past connections that died while idle.

use reqwest::Method;

use crate::helpers::{Stack, eventually, sessions_named, unique};

#[tokio::test]
async fn a_route_lookup_gets_past_catalog_connections_that_died() {
    let name = unique("router-catalog-test-");
    let stack = Stack::start_with(|c| c.pool.application_name = name.clone()).await;
    let catalog_sessions = format!("{name}-catalog");
    let (warm, cold) = (stack.signup(&unique("cat-warm-")).await, stack.signup(&unique("cat-cold-")).await);
    let listed = stack.call(Method::GET, "/employees?limit=1", &warm.token).send().await.unwrap();
    assert_eq!(listed.status(), 200);

    // Every catalog session of this router ends, as in a server restart or an administrator's
    // pg_terminate_backend; the router's pool still holds them as idle.
    let mut admin = stack.catalog().await;
    let before = sessions_named(&mut admin, &catalog_sessions).await;
    assert!(before >= 2, "the router keeps catalog connections open ({before})");
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1")
        .bind(&catalog_sessions)
        .execute(&mut admin)
        .await
        .unwrap();
    let gone = eventually(|| {
        let catalog_sessions = catalog_sessions.clone();
        let url = stack.catalog_url.clone();
        async move {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
            sessions_named(&mut conn, &catalog_sessions).await == 0
        }
    })
    .await;
    assert!(gone, "the terminated sessions left pg_stat_activity");

    // A tenant the router has not seen needs a route lookup, on a dead connection first.
    let lookups = stack.router_state.routes.lookup_count();
    let listed = stack.call(Method::GET, "/employees?limit=1", &cold.token).send().await.unwrap();
    assert_eq!(listed.status(), 200, "{}", listed.text().await.unwrap());
    assert_eq!(stack.router_state.routes.lookup_count() - lookups, 1);
}

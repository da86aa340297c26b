//! The router and its catalog: catalog connections are handed out without a ping first, so a
//! route lookup must get past connections that died while idle; catalog notices are applied
//! off the listening loop, coalesced, with paced key fetches.

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

#[tokio::test]
async fn a_flood_of_catalog_notices_costs_paced_key_fetches_and_never_stalls_requests() {
    let stack = Stack::start().await;
    let company = stack.signup(&unique("flood-")).await;
    assert_eq!(stack.call(Method::GET, "/employees", &company.token).send().await.unwrap().status(), 200);
    let fetches = stack.router_state.verifier.fetch_count();
    let mut catalog = stack.catalog().await;
    let started = std::time::Instant::now();
    // 500 key notices and 500 of one tenant, as anyone able to NOTIFY on the catalog could send.
    for _ in 0..500 {
        sqlx::query("SELECT pg_notify('nexacore_catalog', '{\"kind\":\"keys\"}'), pg_notify('nexacore_catalog', $1)")
            .bind(format!(r#"{{"kind":"tenant","id":"{}"}}"#, company.id))
            .execute(&mut catalog)
            .await
            .unwrap();
    }
    // Requests keep being served throughout.
    for _ in 0..10 {
        assert_eq!(stack.call(Method::GET, "/employees", &company.token).send().await.unwrap().status(), 200);
    }
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let fetched = stack.router_state.verifier.fetch_count() - fetches;
    // At most one fetch per 500 ms, plus the one that starts the burst.
    let allowed = (elapsed / 0.5).ceil() as u64 + 1;
    assert!(fetched >= 1, "the keys were fetched again");
    assert!(fetched <= allowed, "{fetched} JWKS fetches in {elapsed:.1} s");
}

//! The global connection budget: many tenants touched in turn never make the router hold more
//! connections to the server than its budget, nobody gets an error, and idle pools go away.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use reqwest::Method;

use crate::helpers::{Stack, sessions_named, unique};

#[tokio::test]
async fn three_hundred_tenants_in_turn_stay_within_a_budget_of_forty() {
    // The default reserve (a tenth of the budget) closes idle connections ahead of need.
    tenants_in_turn_stay_within_budget(300, 40, None, "router-budget-test").await;
}

#[tokio::test]
async fn without_a_reserve_waiting_requests_reclaim_idle_connections_themselves() {
    tenants_in_turn_stay_within_budget(60, 10, Some(0), "router-budget-test-no-reserve").await;
}

async fn tenants_in_turn_stay_within_budget(tenants: usize, budget: usize, reserve: Option<usize>, app_name: &str) {
    let stack = Stack::start_with(|c| {
        c.pool.budget_per_server = budget;
        c.pool.reserve_per_server = reserve;
        c.pool.max_per_tenant = 2;
        c.pool.idle_timeout = Duration::from_secs(3);
        c.pool.acquire_timeout = Duration::from_secs(10);
        c.pool.application_name = app_name.into();
    })
    .await;
    let mut tokens = Vec::new();
    let prefix = unique("b");
    for i in 0..tenants {
        tokens.push(stack.signup(&format!("{prefix}-{i}")).await.token);
    }
    let admin_url = local_postgres::shared_test_server().superuser_url();
    let mut observer = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url).await.unwrap();
    // Sample the router's connections from a second task while the load runs.
    let peak = Arc::new(AtomicI64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done, url, app_name) = (peak.clone(), done.clone(), admin_url.clone(), app_name.to_owned());
        tokio::spawn(async move {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
            while !done.load(Ordering::Relaxed) {
                let n = sessions_named(&mut conn, &app_name).await;
                peak.fetch_max(n, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    // Four clients at a time, each tenant in turn.
    let mut errors = Vec::new();
    for chunk in tokens.chunks(4) {
        let calls = chunk.iter().map(|t| stack.call(Method::GET, "/employees?limit=5", t).send());
        for r in futures::future::join_all(calls).await {
            let r = r.unwrap();
            if r.status() != 200 {
                errors.push(r.status().as_u16());
            }
        }
        let server = stack.router_state.pools.open_connections_total();
        assert!(server <= budget, "the router's own count is within the budget: {server}");
    }
    done.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    assert!(errors.is_empty(), "no request failed: {errors:?}");
    let peak = peak.load(Ordering::Relaxed);
    assert!(peak <= budget as i64, "pg_stat_activity never showed more than {budget} router connections, saw {peak}");
    assert!(peak > 0, "the sampler saw the router's connections");
    let stats = &stack.router_state.pools.stats;
    let (by_waiters, ahead) =
        (stats.reclaimed_idle.load(Ordering::Relaxed), stats.reserve_reclaims.load(Ordering::Relaxed));
    match reserve {
        Some(0) => {
            assert!(by_waiters > 0 && ahead == 0, "waiters reclaimed idle connections: {by_waiters}, {ahead}");
            // Their permits came back when the backends were seen gone, not only after the grace,
            // and pg_stat_activity (checked above) never saw more than the budget meanwhile.
            assert!(stats.exits_seen.load(Ordering::Relaxed) > 0, "waiters saw reclaimed backends exit");
        }
        _ => assert!(ahead > 0, "the reserve closed idle connections ahead of need: {by_waiters}, {ahead}"),
    }

    // Idle pools are evicted and their connections closed.
    let mut evicted = false;
    for _ in 0..100 {
        stack.router_state.pools.sweep().await;
        if stack.router_state.pools.pool_count() == 0 {
            evicted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(evicted, "idle pools evicted");
    let mut closed = false;
    for _ in 0..100 {
        if sessions_named(&mut observer, app_name).await == 0 {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(closed, "their connections closed");
}

#[tokio::test]
async fn concurrent_first_requests_to_a_cold_tenant_share_one_lookup_and_one_pool() {
    let stack = Stack::start_with(|c| c.pool.acquire_timeout = Duration::from_secs(20)).await;
    let company = stack.signup(&unique("herd-")).await;
    let state = &stack.router_state;
    let (lookups, pools) = (state.routes.lookup_count(), state.pools.stats.pools_created.load(Ordering::Relaxed));
    let calls = (0..64).map(|_| stack.call(Method::GET, "/employees?limit=1", &company.token).send());
    let statuses: Vec<u16> =
        futures::future::join_all(calls).await.into_iter().map(|r| r.unwrap().status().as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(state.routes.lookup_count() - lookups, 1, "one catalog lookup");
    assert_eq!(state.pools.stats.pools_created.load(Ordering::Relaxed) - pools, 1, "one pool");
}

#[tokio::test]
async fn an_exhausted_budget_and_a_dead_database_are_different_clear_503s() {
    let stack = Stack::start_with(|c| {
        c.pool.budget_per_server = 2;
        c.pool.max_per_tenant = 2;
        c.pool.acquire_timeout = Duration::from_millis(300);
        c.pool.breaker_threshold = 2;
        c.pool.breaker_open_for = Duration::from_secs(30);
    })
    .await;
    let a = stack.signup(&unique("hog-")).await;
    let b = stack.signup(&unique("starved-")).await;
    let state = &stack.router_state;
    // Tenant A holds the whole budget (as two long requests would).
    assert_eq!(stack.call(Method::GET, "/employees", &a.token).send().await.unwrap().status(), 200);
    let route = match state.routes.get(a.id.parse().unwrap()).await.unwrap() {
        stack::router::Lookup::Found(route) => route,
        stack::router::Lookup::Unknown => panic!("A is known"),
    };
    let held = (state.pools.acquire(&route).await.unwrap(), state.pools.acquire(&route).await.unwrap());
    let starved = stack.call(Method::GET, "/employees", &b.token).send().await.unwrap();
    assert_eq!(starved.status(), 503);
    assert!(starved.headers().get("retry-after").is_some());
    assert_eq!(starved.json::<serde_json::Value>().await.unwrap()["error"], "capacity_exhausted");
    drop(held);
    assert_eq!(
        stack.call(Method::GET, "/employees", &b.token).send().await.unwrap().status(),
        200,
        "served once freed"
    );

    // B's database refuses its role: 503 database_unavailable, and after the threshold the
    // breaker answers at once without trying to connect (and without taking budget).
    let admin_url = local_postgres::shared_test_server().superuser_url();
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url).await.unwrap();
    let role: String = sqlx::query_scalar("SELECT role_name FROM tenants WHERE id = $1::uuid")
        .bind(&b.id)
        .fetch_one(&mut stack.catalog().await)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("ALTER ROLE \"{role}\" NOLOGIN"))).execute(&mut admin).await.unwrap();
    state.pools.retire_tenant(b.id.parse().unwrap()).await;
    for _ in 0..2 {
        let down = stack.call(Method::GET, "/employees", &b.token).send().await.unwrap();
        assert_eq!(down.status(), 503);
        assert_eq!(down.json::<serde_json::Value>().await.unwrap()["error"], "database_unavailable");
    }
    let failures = state.pools.stats.connect_failures.load(Ordering::Relaxed);
    let fast = stack.call(Method::GET, "/employees", &b.token).send().await.unwrap();
    assert_eq!(fast.status(), 503);
    assert_eq!(state.pools.stats.connect_failures.load(Ordering::Relaxed), failures, "the breaker is open: no connect");
    assert_eq!(stack.call(Method::GET, "/employees", &a.token).send().await.unwrap().status(), 200, "A unaffected");
    sqlx::query(sqlx::AssertSqlSafe(format!("ALTER ROLE \"{role}\" LOGIN"))).execute(&mut admin).await.unwrap();
}

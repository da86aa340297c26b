//! Spare databases: signups adopt a ready copy of the template, the pool refills, spares of an
//! old template are never adopted, and nothing a dead builder or a smaller pool leaves behind
//! stays on the server.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::helpers::{TestApp, eventually, unique};
use crate::migrations::{self, marks, with_next};

const POOL: u32 = 2;

async fn spawn_with_pool(pool: u32) -> TestApp {
    TestApp::spawn_with(|c| {
        c.spare_databases_per_server = pool;
        c.spare_refill_interval = Duration::from_millis(200);
    })
    .await
}

/// Spare ids by state, from the catalog.
async fn spares(app: &TestApp, status: &str) -> BTreeSet<Uuid> {
    let mut catalog = app.catalog().await;
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM spare_databases WHERE status = $1")
        .bind(status)
        .fetch_all(&mut catalog)
        .await
        .unwrap();
    catalog.close().await.ok();
    ids.into_iter().collect()
}

async fn spare_rows(app: &TestApp) -> i64 {
    let mut catalog = app.catalog().await;
    let n = sqlx::query_scalar("SELECT count(*) FROM spare_databases").fetch_one(&mut catalog).await.unwrap();
    catalog.close().await.ok();
    n
}

async fn wait_for_ready(app: &TestApp, count: usize) -> BTreeSet<Uuid> {
    let full = eventually(Duration::from_secs(60), || async { spares(app, "ready").await.len() == count }).await;
    assert!(full, "the pool did not fill to {count} ready spares");
    spares(app, "ready").await
}

/// Whether a database and a role named `t_<id>` exist on the test server.
async fn exists_on_server(app: &TestApp, id: Uuid) -> (bool, bool) {
    let name = format!("t_{}", id.simple());
    let mut admin = PgConnection::connect(&app.server.superuser_url()).await.unwrap();
    let db = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    let role = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(&name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    admin.close().await.ok();
    (db, role)
}

fn tenant_id(body: &Value) -> Uuid {
    body["tenant"]["id"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_signup_adopts_a_ready_spare_that_is_a_complete_tenant_database_and_the_pool_refills() {
    let app = spawn_with_pool(POOL).await;
    let ready = wait_for_ready(&app, POOL as usize).await;
    for id in &ready {
        assert_eq!(exists_on_server(&app, *id).await, (true, true), "a ready spare has its database and role");
    }
    let servers: Value = app.operator(reqwest::Method::GET, "/servers").send().await.unwrap().json().await.unwrap();
    assert_eq!(servers[0]["spares_ready"], i64::from(POOL), "operators see the pool: {servers}");

    let slug = unique("spare-");
    let body = app.create_tenant(&slug).await;
    let id = tenant_id(&body);
    assert!(ready.contains(&id), "the signup adopted one of the ready spares {ready:?}, got {id}");
    assert!(!spares(&app, "ready").await.contains(&id), "an adopted spare leaves the pool");

    // The adopted database is what a built one would be: the tenant's role owns the objects and
    // reads its company's seed rows with its own password; PUBLIC cannot connect.
    let name = format!("t_{}", id.simple());
    let mut url = url::Url::parse(&app.server.url_for_database(&name)).unwrap();
    url.set_username(&name).unwrap();
    url.set_password(Some(&app.role_password(&name))).unwrap();
    let mut as_tenant = PgConnection::connect(url.as_str()).await.expect("the tenant's role connects");
    let company: String =
        sqlx::query_scalar("SELECT company_name FROM company_settings").fetch_one(&mut as_tenant).await.unwrap();
    assert_eq!(company, format!("Company {slug}"));
    let foreign_objects: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)",
    )
    .fetch_one(&mut as_tenant)
    .await
    .unwrap();
    assert_eq!(foreign_objects, 0, "every object of the database belongs to the tenant's role");
    let public_connect: bool =
        sqlx::query_scalar("SELECT has_database_privilege('public', current_database(), 'CONNECT')")
            .fetch_one(&mut as_tenant)
            .await
            .unwrap();
    assert!(!public_connect, "PUBLIC cannot connect to an adopted database");
    as_tenant.close().await.ok();

    let login = app.login(&format!("admin@{slug}.example.com"), "Str0ng&Secret!", None).await;
    assert_eq!(login.status(), 200, "the admin of an adopted database signs in");

    // A second company adopts the other spare; neither role can connect to the other's database.
    let other = tenant_id(&app.create_tenant(&unique("spare-b-")).await);
    assert!(ready.contains(&other), "the second signup adopted the other spare");
    let other_name = format!("t_{}", other.simple());
    for (role, database) in [(&name, &other_name), (&other_name, &name)] {
        let mut url = url::Url::parse(&app.server.url_for_database(database)).unwrap();
        url.set_username(role).unwrap();
        url.set_password(Some(&app.role_password(role))).unwrap();
        let refused = PgConnection::connect(url.as_str()).await;
        assert!(refused.is_err(), "role {role} must not connect to {database}");
    }

    // The adopted spare is replaced, and the pool holds exactly its size again.
    let refilled = wait_for_ready(&app, POOL as usize).await;
    assert!(!refilled.contains(&id));
    assert_eq!(spare_rows(&app).await, i64::from(POOL), "no spare row lingers beyond the pool");
}

#[tokio::test]
async fn concurrent_signups_each_adopt_a_different_spare_or_build_their_own() {
    let app = spawn_with_pool(POOL).await;
    let ready = wait_for_ready(&app, POOL as usize).await;
    let run = unique("");
    let bodies = futures::future::join_all((0..6).map(|i| {
        let app = &app;
        let slug = format!("race-{run}-{i}");
        async move { app.create_tenant(&slug).await }
    }))
    .await;
    let ids: BTreeSet<Uuid> = bodies.iter().map(tenant_id).collect();
    assert_eq!(ids.len(), 6, "six distinct tenants");
    let adopted = ids.intersection(&ready).count();
    assert!(adopted <= POOL as usize, "no spare is adopted twice");
    assert!(adopted >= 1, "with two ready spares at least one signup adopted one");
    for id in ids {
        assert_eq!(exists_on_server(&app, id).await, (true, true), "every tenant has its database and role");
    }
}

#[tokio::test]
async fn spares_of_an_old_template_are_retired_dropped_and_never_adopted() {
    let app = spawn_with_pool(POOL).await;
    let old = wait_for_ready(&app, POOL as usize).await;

    // A new deployment brings migration N+1: the template is migrated at start-up, and the
    // spares copied from it before are copies of version N.
    let app = app
        .restart_with(|c| {
            c.spare_databases_per_server = POOL;
            c.spare_refill_interval = Duration::from_millis(200);
            c.tenant_migrations = with_next(0);
        })
        .await;
    let slug = unique("fresh-");
    let body = app.create_tenant(&slug).await;
    let id = tenant_id(&body);
    assert!(!old.contains(&id), "a spare of the old template was adopted");
    let database = format!("t_{}", id.simple());
    assert_eq!(marks(&app, &database).await, 1, "the new tenant was born at N+1");
    assert_eq!(migrations::history(&app, &database).await.last(), Some(&(migrations::n() + 1)));

    let gone = eventually(Duration::from_secs(30), || async {
        for spare in &old {
            if exists_on_server(&app, *spare).await != (false, false) {
                return false;
            }
        }
        true
    })
    .await;
    assert!(gone, "the old template's spares were dropped");
    let current = wait_for_ready(&app, POOL as usize).await;
    assert!(current.is_disjoint(&old));
    // And the spares now ready are copies of N+1.
    for spare in current {
        assert_eq!(marks(&app, &format!("t_{}", spare.simple())).await, 1, "a ready spare is at N+1");
    }
}

#[tokio::test]
async fn a_spare_whose_builder_died_and_a_pool_made_smaller_leave_nothing_behind() {
    let app = spawn_with_pool(POOL).await;
    let ready = wait_for_ready(&app, POOL as usize).await;

    // What a builder killed after `CREATE DATABASE` leaves: a `creating` row whose lock nobody
    // holds, a role and a database.
    let dead = Uuid::now_v7();
    let name = format!("t_{}", dead.simple());
    let mut catalog = app.catalog().await;
    let server: Uuid =
        sqlx::query_scalar("SELECT id FROM database_servers LIMIT 1").fetch_one(&mut catalog).await.unwrap();
    sqlx::query("INSERT INTO spare_databases (id, server_id, status) VALUES ($1, $2, 'creating')")
        .bind(dead)
        .bind(server)
        .execute(&mut catalog)
        .await
        .unwrap();
    catalog.close().await.ok();
    let mut admin = PgConnection::connect(&app.server.superuser_url()).await.unwrap();
    for ddl in [format!("CREATE ROLE {name} LOGIN"), format!("CREATE DATABASE {name} OWNER {name}")] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(ddl)).execute(&mut admin).await.unwrap();
    }
    admin.close().await.ok();

    // Restarted with the pool turned off: the dead builder's spare and every ready one go.
    let app = app.restart_with(|c| c.spare_databases_per_server = 0).await;
    let clean = eventually(Duration::from_secs(30), || async { spare_rows(&app).await == 0 }).await;
    assert!(clean, "no spare row remains");
    for id in ready.iter().chain([&dead]) {
        assert_eq!(exists_on_server(&app, *id).await, (false, false), "spare {id} left a database or role");
    }
}

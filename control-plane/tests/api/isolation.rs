//! Isolation against a tenant's own database role: it logs into its own database only, on any
//! server; the routers' catalog role reads what routers need and nothing else; and code a tenant
//! plants in its database never runs with more rights than the tenant has, whatever the control
//! plane does there (provisioning, `migrate plan`, `migrate run`; recovery after a crash:
//! `migrations::crash`).

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use uuid::Uuid;

use crate::helpers::{TestApp, eventually, unique};
use crate::migrations::{create_tenants, start_run, wait_settled, with_next};

/// SQLSTATE of `permission denied` (for a database, a table, a column…).
const INSUFFICIENT_PRIVILEGE: &str = "42501";

/// Connection options as `role` (its derived password; the test clusters trust loopback
/// anyway, so what refuses below is the privilege, not the password) to `database`.
fn as_role(app: &TestApp, server_url: &str, role: &str, database: &str) -> PgConnectOptions {
    let options: PgConnectOptions = server_url.parse().unwrap();
    options.username(role).password(&app.role_password(role)).database(database)
}

fn sqlstate(error: &sqlx::Error) -> String {
    error.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned()).unwrap_or_else(|| error.to_string())
}

/// Every database of the platform on one server, by name: `postgres`, `template1`, the
/// template, the catalog where it lives, and every tenant and spare database the catalog knows.
async fn platform_databases(app: &TestApp, server_id: Uuid, primary: bool) -> Vec<String> {
    let mut catalog = app.catalog().await;
    let mut names: Vec<String> = sqlx::query_scalar(
        "SELECT database_name FROM tenants WHERE server_id = $1
         UNION ALL SELECT 't_' || replace(id::text, '-', '') FROM spare_databases WHERE server_id = $1",
    )
    .bind(server_id)
    .fetch_all(&mut catalog)
    .await
    .unwrap();
    names.extend(["postgres".to_owned(), "template1".to_owned(), app.template_database.clone()]);
    if primary {
        names.push(app.catalog_database.clone());
    }
    names
}

#[tokio::test]
async fn a_tenant_role_logs_into_its_own_database_and_no_other_database_on_any_server() {
    let app = TestApp::spawn().await;
    let second = local_postgres::second_test_server();
    let registered = app
        .operator(Method::POST, "/servers")
        .json(&json!({"name": unique("iso-two-"), "admin_url": second.superuser_url(), "capacity": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 200, "{}", registered.text().await.unwrap());
    // Placement alternates (one signup at a time): two companies on each server.
    for i in 0..4 {
        app.create_tenant(&unique(&format!("iso{i}-"))).await;
    }

    let mut catalog = app.catalog().await;
    let tenants: Vec<(String, String, Uuid, bool)> = sqlx::query_as(
        "SELECT t.database_name, t.role_name, t.server_id, s.name = 'primary'
         FROM tenants t JOIN database_servers s ON s.id = t.server_id",
    )
    .fetch_all(&mut catalog)
    .await
    .unwrap();
    assert_eq!(tenants.len(), 4);
    let mut servers_seen = std::collections::BTreeSet::new();
    for (own, role, server_id, primary) in &tenants {
        servers_seen.insert(*server_id);
        let url = if *primary { app.server.superuser_url() } else { second.superuser_url() };
        let own_session = PgConnection::connect_with(&as_role(&app, &url, role, own)).await;
        own_session.expect("a tenant role logs into its own database").close().await.ok();
        let others = platform_databases(&app, *server_id, *primary).await;
        assert!(others.len() >= 5, "{others:?}");
        for database in others.iter().filter(|d| *d != own) {
            match PgConnection::connect_with(&as_role(&app, &url, role, database)).await {
                Ok(_) => panic!("{role} logged into {database}"),
                Err(error) => assert_eq!(sqlstate(&error), INSUFFICIENT_PRIVILEGE, "{role} → {database}: {error}"),
            }
        }
        // The same holds in the catalog's own words: PUBLIC may connect to none of them.
        let mut admin = PgConnection::connect(&url).await.unwrap();
        let open: Vec<String> = sqlx::query_scalar(
            "SELECT datname::text FROM pg_database WHERE datname = ANY($1)
               AND (has_database_privilege('public', oid, 'CONNECT') OR has_database_privilege('public', oid, 'TEMPORARY'))",
        )
        .bind(&others)
        .fetch_all(&mut admin)
        .await
        .unwrap();
        assert_eq!(open, Vec::<String>::new(), "databases open to PUBLIC");
    }
    assert_eq!(servers_seen.len(), 2, "tenants on both servers");
}

#[tokio::test]
async fn a_tenant_role_cannot_listen_to_the_catalogs_channels() {
    let app = TestApp::spawn().await;
    let tenant = &create_tenants(&app, "listen", 1).await[0];
    let role = tenant.database.clone();
    let options = as_role(&app, &app.server.superuser_url(), &role, &app.catalog_database);
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect_lazy_with(options);
    let Err(refused) = sqlx::postgres::PgListener::connect_with(&pool).await else {
        panic!("a tenant role opened a session in the catalog");
    };
    assert_eq!(sqlstate(&refused), INSUFFICIENT_PRIVILEGE, "{refused}");
}

#[tokio::test]
async fn the_routers_catalog_role_reads_routes_and_settings_and_nothing_else() {
    let app = TestApp::spawn().await;
    create_tenants(&app, "routerrole", 1).await;
    let catalog = control_plane::domain::DbName::parse(&app.catalog_database).unwrap();
    let url = control_plane::catalog::access::router_catalog_url(&app.server.superuser_url(), &catalog).unwrap();
    let mut router = PgConnection::connect(&url).await.expect("the router role logs into the catalog");
    let superuser: bool = sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        .fetch_one(&mut router)
        .await
        .unwrap();
    assert!(!superuser);
    // What the router's queries read.
    let routes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT t.id, t.status, t.server_id, s.host, s.port, t.database_name, t.role_name,
                t.schema_version, t.maintenance_mode, t.maintenance_message, t.migrating
             FROM tenants t JOIN database_servers s ON s.id = t.server_id) r",
    )
    .fetch_one(&mut router)
    .await
    .unwrap();
    assert_eq!(routes, 1);
    sqlx::query(
        "SELECT maintenance_mode, maintenance_message, min_client_version, latest_version FROM system_settings",
    )
    .fetch_one(&mut router)
    .await
    .unwrap();
    for refused in [
        "SELECT * FROM users",
        "SELECT * FROM signing_keys",
        "SELECT * FROM memberships",
        "SELECT * FROM audit_log",
        "SELECT * FROM idempotency_keys",
        "SELECT admin_url_sealed FROM database_servers",
        "SELECT slug, name FROM tenants",
        "UPDATE tenants SET status = 'active'",
        "UPDATE system_settings SET maintenance_mode = true",
        "DELETE FROM tenants",
        "CREATE TABLE planted (id int)",
        "CREATE ROLE planted",
        "CREATE DATABASE planted",
    ] {
        let error = sqlx::raw_sql(AssertSqlSafe(refused)).execute(&mut router).await.expect_err(refused);
        assert_eq!(sqlstate(&error), INSUFFICIENT_PRIVILEGE, "{refused}: {error}");
    }
}

/// Plants in a tenant's database everything a tenant owner could use to run code in a session
/// that opens it: a search path with its own schema first (set on the database, so it applies
/// to every session), functions there named like the ones the control plane calls, a view that
/// shadows the migration history, and triggers on the tables migrations change. Each piece,
/// run with superuser rights, counts on a sequence (sequences ignore rollbacks) and makes the
/// tenant role a superuser.
pub async fn plant(server_url: &str, database: &str, password: &str) {
    let role = database;
    let options: PgConnectOptions = server_url.parse().unwrap();
    let options = options.username(role).password(password).database(database);
    let mut conn = PgConnection::connect_with(&options).await.unwrap();
    let sql = format!(
        r#"
        CREATE SCHEMA evil;
        CREATE SEQUENCE evil.superuser_runs;
        CREATE FUNCTION evil.escalate() RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN
            BEGIN RESET ROLE; EXCEPTION WHEN others THEN NULL; END;
            IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
                PERFORM pg_catalog.nextval('evil.superuser_runs');
                EXECUTE 'ALTER ROLE {role} SUPERUSER';
            END IF;
            RETURN true;
        END $$;
        CREATE FUNCTION evil.pg_advisory_xact_lock(bigint) RETURNS void LANGUAGE plpgsql AS $$
            BEGIN PERFORM evil.escalate(); PERFORM pg_catalog.pg_advisory_xact_lock($1); END $$;
        CREATE FUNCTION evil.has_schema_privilege(text, text, text) RETURNS boolean LANGUAGE plpgsql AS $$
            BEGIN RETURN evil.escalate() AND pg_catalog.has_schema_privilege($1, $2, $3); END $$;
        CREATE FUNCTION evil.has_schema_privilege(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
            BEGIN RETURN evil.escalate() AND pg_catalog.has_schema_privilege($1, $2); END $$;
        CREATE FUNCTION evil.to_regclass(text) RETURNS regclass LANGUAGE plpgsql AS $$
            BEGIN PERFORM evil.escalate(); RETURN pg_catalog.to_regclass($1); END $$;
        CREATE VIEW evil.refinery_schema_history AS
            SELECT * FROM public.refinery_schema_history WHERE evil.escalate();
        CREATE FUNCTION evil.on_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM evil.escalate(); RETURN NULL; END $$;
        CREATE TRIGGER evil_departments AFTER INSERT OR UPDATE OR DELETE ON public.departments
            FOR EACH STATEMENT EXECUTE FUNCTION evil.on_change();
        CREATE TRIGGER evil_employees AFTER INSERT OR UPDATE OR DELETE ON public.employees
            FOR EACH STATEMENT EXECUTE FUNCTION evil.on_change();
        CREATE TRIGGER evil_settings AFTER INSERT OR UPDATE OR DELETE ON public.company_settings
            FOR EACH STATEMENT EXECUTE FUNCTION evil.on_change();
        ALTER DATABASE {database} SET search_path = evil, pg_catalog, public;
        "#
    );
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await.expect("a tenant owner can plant all this");
    conn.close().await.ok();
}

/// Whether any planted piece ever ran as superuser, and whether the role is one now.
pub async fn planted_code_ran_as_superuser(server_url: &str, database: &str) -> (bool, bool) {
    let options: PgConnectOptions = server_url.parse().unwrap();
    let mut admin = PgConnection::connect_with(&options.database(database)).await.unwrap();
    let ran: bool =
        sqlx::query_scalar("SELECT is_called FROM evil.superuser_runs").fetch_one(&mut admin).await.unwrap();
    let superuser: bool = sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = $1")
        .bind(database)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    admin.close().await.ok();
    (ran, superuser)
}

#[tokio::test]
async fn code_a_tenant_plants_in_its_database_never_runs_as_superuser_in_migrate_plan_or_run() {
    let app = TestApp::spawn().await;
    let tenants = create_tenants(&app, "planted", 2).await;
    let url = app.server.superuser_url();
    for tenant in &tenants {
        plant(&url, &tenant.database, &app.role_password(&tenant.database)).await;
    }
    let app = app.restart_with(|config| config.tenant_migrations = with_next(0)).await;

    let plan = start_run(&app, json!({ "dry_run": true })).await;
    let plan = wait_settled(&app, plan["id"].as_str().unwrap()).await;
    assert_eq!(plan["totals"]["planned"], 2, "{plan:#}");
    for tenant in &tenants {
        assert_eq!(planted_code_ran_as_superuser(&url, &tenant.database).await, (false, false), "after the plan");
    }

    let run = start_run(&app, json!({})).await;
    let run = wait_settled(&app, run["id"].as_str().unwrap()).await;
    assert_eq!(run["totals"]["succeeded"], 2, "{run:#}");
    for tenant in &tenants {
        assert_eq!(planted_code_ran_as_superuser(&url, &tenant.database).await, (false, false), "after the run");
        // The migration did run, as the tenant, in `public` (the planted search path is ignored).
        let mut admin = PgConnection::connect(&app.server.url_for_database(&tenant.database)).await.unwrap();
        let owner: String = sqlx::query_scalar(
            "SELECT tableowner::text FROM pg_tables WHERE schemaname = 'public' AND tablename = 'schema_marks'",
        )
        .fetch_one(&mut admin)
        .await
        .unwrap();
        assert_eq!(owner, tenant.database);
    }
}

#[tokio::test]
async fn code_planted_in_a_spare_database_never_runs_as_superuser_when_a_signup_adopts_it() {
    let app = TestApp::spawn_with(|c| {
        c.spare_databases_per_server = 1;
        c.spare_refill_interval = Duration::from_millis(200);
    })
    .await;
    let ready = || async {
        let mut catalog = app.catalog().await;
        sqlx::query_scalar::<_, Uuid>("SELECT id FROM spare_databases WHERE status = 'ready'")
            .fetch_optional(&mut catalog)
            .await
            .unwrap()
    };
    assert!(eventually(Duration::from_secs(60), || async { ready().await.is_some() }).await, "a spare is ready");
    let spare = ready().await.unwrap();
    let database = format!("t_{}", spare.simple());
    plant(&app.server.superuser_url(), &database, &app.role_password(&database)).await;

    let adopted = app.create_tenant(&unique("adopt-")).await;
    assert_eq!(adopted["tenant"]["id"], spare.to_string(), "the signup adopted the planted spare");
    assert_eq!(planted_code_ran_as_superuser(&app.server.superuser_url(), &database).await, (false, false));
}

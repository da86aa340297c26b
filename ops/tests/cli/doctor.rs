//! `ops up --servers 2` and `ops doctor` on it: two local Postgres servers, the second
//! registered and given a tenant; the doctor finds the platform healthy (exit 0), then names
//! real breaks (a tenant database opened to PUBLIC, a router budget the servers cannot hold)
//! with their fixes (exit 1), and is healthy again once the fix is applied.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sqlx::Connection as _;

use crate::{free_port, get, start_stack_args, stop_running, wait_for};

fn ops(env: &[(String, String)], args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ops"))
        .args(args)
        .args(["--url", &get(env, "NEXACORE_CONTROL_PLANE_URL"), "--token", &get(env, "NEXACORE_OPERATOR_TOKEN")])
        .env_remove("NEXACORE_ROUTER_URL")
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn servers(env: &[(String, String)]) -> Vec<Value> {
    let (code, stdout, stderr) = ops(env, &["servers", "list", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str::<Value>(&stdout).unwrap().as_array().unwrap().clone()
}

/// Runs one SQL statement as the superuser of `url`'s server.
fn execute(runtime: &tokio::runtime::Runtime, url: &str, sql: String) {
    runtime.block_on(async {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
        conn.close().await.ok();
    });
}

#[test]
fn ops_up_with_two_servers_places_tenants_on_both_and_the_doctor_names_each_break_with_its_fix() {
    let dir = tempfile::tempdir().unwrap();
    let stack_dir = dir.path().join(".nexacore");
    let vars = [("NEXACORE_SPARE_DATABASES", "1")];
    let (child, env) = start_stack_args(&stack_dir, free_port(), false, &vars, &["--servers", "2"]);
    let listed = servers(&env);
    let names: Vec<&str> = listed.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["primary", "local-2"], "{listed:#?}");
    let first_url = get(&env, "NEXACORE_DATABASE_URL");
    let second_url = get(&env, "NEXACORE_DATABASE_URL_2");
    assert_ne!(second_url, first_url);

    // Two signups: the least-loaded placement puts one on each server.
    let base = get(&env, "NEXACORE_CONTROL_PLANE_URL");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    for n in ["a", "b"] {
        let slug = format!("doc-{suffix}-{n}");
        let body = serde_json::json!({
            "company_name": "Doctor Test", "slug": slug, "timezone": "UTC", "currency": "USD",
            "admin": {"email": format!("admin@{slug}.example.com"), "password": "Str0ng&Secret!", "full_name": "Ada"}
        });
        let created = runtime.block_on(http.post(format!("{base}/tenants")).json(&body).send()).unwrap();
        assert_eq!(created.status(), 201);
    }
    let listed = servers(&env);
    assert!(listed.iter().all(|s| s["tenants"] == 1), "one tenant on each server: {listed:#?}");
    // The spare pools fill in the background and the doctor checks them: wait for them first.
    assert!(
        wait_for(Duration::from_secs(60), || servers(&env).iter().all(|s| s["spares_ready"] == 1)),
        "the spare pools filled"
    );

    let router = get(&env, "NEXACORE_ROUTER_URL");
    let doctor = |budget: &str| ops(&env, &["doctor", "--router-budget", budget, "--router", &router]);
    let (code, stdout, stderr) = doctor("50");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("healthy") && stdout.contains("connect_privileges"), "{stdout}");
    let (code, stdout, _) = ops(&env, &["doctor", "--router-budget", "50", "--json"]);
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert!(report["problems"].as_array().unwrap().is_empty(), "{report:#}");
    let statuses: Vec<(&str, &str)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    for name in ["catalog", "keys", "servers", "templates", "spares", "connections", "connect_privileges", "jwks"] {
        assert!(statuses.contains(&(name, "ok")), "{name} ran and passed: {statuses:?}");
    }
    assert!(statuses.contains(&("backups", "skipped")), "no schedule, no backup check: {statuses:?}");

    // Break: the tenant database on the second server opened to PUBLIC, and a router budget
    // above what the servers' max_connections (100) can hold.
    let mut catalog_url = url::Url::parse(&first_url).unwrap();
    catalog_url.set_path("/nexacore_catalog");
    let tenant_db: String = runtime.block_on(async {
        let mut catalog = sqlx::PgConnection::connect(catalog_url.as_str()).await.unwrap();
        sqlx::query_scalar(
            "SELECT t.database_name FROM tenants t JOIN database_servers s ON s.id = t.server_id WHERE s.name = 'local-2'",
        )
        .fetch_one(&mut catalog)
        .await
        .unwrap()
    });
    execute(&runtime, &second_url, format!("GRANT CONNECT ON DATABASE \"{tenant_db}\" TO PUBLIC"));
    let (code, stdout, stderr) = doctor("1000");
    assert_eq!(code, 1, "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines.contains(&format!(
            "connect_privileges: database {tenant_db} on local-2: tenant database open to PUBLIC: every tenant role may log into it; fix: REVOKE ALL ON DATABASE \"{tenant_db}\" FROM PUBLIC"
        ).as_str()),
        "{stdout}"
    );
    for server in ["primary", "local-2"] {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("connections: server {server}: max_connections 100"))
                && l.contains("fix: raise max_connections")),
            "{stdout}"
        );
    }
    assert_eq!(lines.len(), 3, "one line per problem, nothing else: {stdout}");
    assert!(stderr.contains("3 problem(s) found"), "{stderr}");

    // The fix it names makes it healthy again.
    execute(&runtime, &second_url, format!("REVOKE ALL ON DATABASE \"{tenant_db}\" FROM PUBLIC"));
    let (code, stdout, stderr) = doctor("50");
    assert_eq!(code, 0, "{stdout}{stderr}");

    // Bad usage: exit code 2.
    let (code, _, _) = ops(&env, &["doctor", "--router-budget", "0"]);
    assert_eq!(code, 2);
    assert!(stop_running(child, "INT").success());
}

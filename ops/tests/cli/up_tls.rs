//! `ops up --tls`: a local CA under `<dir>/tls`, Postgres with `ssl=on`, both services on HTTPS,
//! the database URL checked with `verify-full`; `stack.env` names the CA for clients, and `ops`
//! itself trusts it from there.

use std::process::Command;

use sqlx::Connection as _;

use crate::{free_port, get, start_stack_args, stop_running};

#[test]
fn ops_up_with_tls_serves_https_on_postgres_with_ssl_and_names_its_ca_in_stack_env() {
    let dir = tempfile::tempdir().unwrap();
    let stack_dir = dir.path().join(".nexacore");
    let port = free_port();
    let (child, env) = start_stack_args(&stack_dir, port, false, &[], &["--tls"]);
    let base = get(&env, "NEXACORE_CONTROL_PLANE_URL");
    let router = get(&env, "NEXACORE_ROUTER_URL");
    let ca_file = get(&env, "NEXACORE_TLS_CA_FILE");
    let database_url = get(&env, "NEXACORE_DATABASE_URL");
    assert_eq!(base, format!("https://127.0.0.1:{port}"));
    assert!(router.starts_with("https://"), "{router}");
    assert_eq!(
        std::path::Path::new(&ca_file).canonicalize().unwrap(),
        stack_dir.join("tls/ca.pem").canonicalize().unwrap()
    );
    assert!(database_url.contains("sslmode=verify-full"), "{database_url}");

    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca_file).unwrap()).unwrap();
    let http = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for url in [&base, &router] {
            let health = http.get(format!("{url}/health")).send().await.expect("https with the stack's CA");
            assert_eq!(health.status(), 200);
        }
        let untrusted = reqwest::Client::new().get(format!("{base}/health")).send().await;
        assert!(untrusted.is_err(), "the public roots alone do not trust the local CA");
        let mut db = sqlx::PgConnection::connect(&database_url).await.expect("verify-full against the CA");
        let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert!(ssl);
    });

    // `ops` finds the stack and its CA in stack.env (run from the directory that holds it).
    let listed = Command::new(env!("CARGO_BIN_EXE_ops"))
        .current_dir(dir.path())
        .args(["tenants", "list", "--json"])
        .env_remove("NEXACORE_CONTROL_PLANE_URL")
        .env_remove("NEXACORE_OPERATOR_TOKEN")
        .env_remove("NEXACORE_TLS_CA_FILE")
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    // `ops doctor` reaches the JWKS and the router over https with the same CA.
    let doctor = Command::new(env!("CARGO_BIN_EXE_ops"))
        .current_dir(dir.path())
        .args(["doctor", "--json", "--router", &router])
        .env_remove("NEXACORE_CONTROL_PLANE_URL")
        .env_remove("NEXACORE_OPERATOR_TOKEN")
        .env_remove("NEXACORE_TLS_CA_FILE")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&doctor.stdout).expect("a JSON report");
    // (Other checks may still be settling just after start: spare databases, for one.)
    for name in ["jwks", "router"] {
        let check = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == name);
        assert_eq!(check.map(|c| &c["status"]), Some(&serde_json::json!("ok")), "{name}: {report:#}");
    }
    assert!(stop_running(child, "INT").success());
}

/// `ops` against the stack `ops up` wrote into `env`, trusting its CA.
fn ops_tls(env: &[(String, String)], args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ops"))
        .args(args)
        .env("NEXACORE_CONTROL_PLANE_URL", get(env, "NEXACORE_CONTROL_PLANE_URL"))
        .env("NEXACORE_OPERATOR_TOKEN", get(env, "NEXACORE_OPERATOR_TOKEN"))
        .env("NEXACORE_TLS_CA_FILE", get(env, "NEXACORE_TLS_CA_FILE"))
        .env("NEXACORE_ADMIN_PASSWORD", "Corr3ct-horse-battery!")
        .env_remove("NEXACORE_ROUTER_URL")
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn a_tenant_moves_between_two_servers_that_are_reached_over_tls_only() {
    // Both servers with ssl=on and verify-full URLs; the target server's subscription connects
    // to the source with sslmode=require, which must work with no client certificate around.
    let dir = tempfile::tempdir().unwrap();
    let stack_dir = dir.path().join(".nexacore");
    let (child, env) = start_stack_args(&stack_dir, free_port(), false, &[], &["--tls", "--servers", "2"]);
    assert!(get(&env, "NEXACORE_DATABASE_URL_2").contains("sslmode=verify-full"));
    let slug = format!("tlsmove-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let email = format!("admin@{slug}.example.com");
    let create = ["tenants", "create", "--name", "TLS Move", "--slug", &slug, "--admin-email", &email];
    let (code, _, stderr) = ops_tls(&env, &[&create[..], &["--admin-name", "Ada"]].concat());
    assert_eq!(code, 0, "{stderr}");
    let servers = |env: &[(String, String)]| {
        let (code, stdout, stderr) = ops_tls(env, &["servers", "list", "--json"]);
        assert_eq!(code, 0, "{stderr}");
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()
    };
    let on = |listed: &serde_json::Value, name: &str| {
        listed.as_array().unwrap().iter().find(|s| s["name"] == name).map(|s| s["tenants"].clone())
    };
    let before = servers(&env);
    let (from, to) = if on(&before, "local-2") == Some(serde_json::json!(1)) {
        ("local-2", "primary")
    } else {
        ("primary", "local-2")
    };
    let (code, stdout, stderr) = ops_tls(&env, &["tenants", "move", &slug, "--to", to]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let after = servers(&env);
    assert_eq!(on(&after, to), Some(serde_json::json!(1)), "{after:#}");
    assert_eq!(on(&after, from), Some(serde_json::json!(0)), "{after:#}");
    assert!(stop_running(child, "INT").success());
}

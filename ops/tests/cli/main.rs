//! Integration tests of the `ops` binary: the dev stack comes up with no configuration, serves,
//! keeps its data, and stops cleanly on Ctrl-C (SIGINT) and on SIGTERM. `migrate`: `ops migrate` against a
//! control plane.

mod backups;
mod deploy;
mod doctor;
mod migrate;
mod moves;
mod releases;
mod restore;
mod system;
mod up_tls;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the `ops` binary with `args` against a control plane (`--url base`, the operator token in
/// its environment variable, and `env`); returns the exit code, stdout and stderr.
pub async fn ops_with_env(base: &str, token: &str, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_ops"))
        .args(args)
        .arg("--url")
        .arg(base)
        .env("NEXACORE_OPERATOR_TOKEN", token)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), stdout, stderr)
}

/// [`ops_with_env`] with nothing more in the environment.
pub async fn ops_at(base: &str, token: &str, args: &[&str]) -> (i32, String, String) {
    ops_with_env(base, token, &[], args).await
}

/// [`ops_at`] against `platform`'s control plane.
pub async fn ops_on(platform: &stack::Platform, args: &[&str]) -> (i32, String, String) {
    ops_at(&platform.control_plane.url, &platform.operator_token, args).await
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn read_env(path: &Path) -> Option<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
}

fn wait_for(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// A running `ops up`; interrupted on drop, so a failing test leaves no stack running.
struct Running(Option<std::process::Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            let _ = stop(child, "INT");
        }
    }
}

/// Starts `ops up` in `dir`, waits for its stack.env, and returns (child, env).
fn start_stack(dir: &Path, port: u16, fresh: bool) -> (Running, Vec<(String, String)>) {
    start_stack_with(dir, port, fresh, &[])
}

/// [`start_stack`] with `NEXACORE_*` variables set for `ops up`.
fn start_stack_with(dir: &Path, port: u16, fresh: bool, vars: &[(&str, &str)]) -> (Running, Vec<(String, String)>) {
    start_stack_args(dir, port, fresh, vars, &[])
}

/// [`start_stack_with`] with more `ops up` flags.
fn start_stack_args(
    dir: &Path,
    port: u16,
    fresh: bool,
    vars: &[(&str, &str)],
    flags: &[&str],
) -> (Running, Vec<(String, String)>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ops"));
    command.envs(vars.iter().copied());
    command.arg("up").arg("--dir").arg(dir).arg("--port").arg(port.to_string()).args(flags);
    command.arg("--router-port").arg(free_port().to_string());
    if fresh {
        command.arg("--fresh");
    }
    let child = command.env_remove("DATABASE_URL").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let running = Running(Some(child));
    let env_path = dir.join("stack.env");
    assert!(wait_for(Duration::from_secs(60), || env_path.exists()), "ops up wrote no stack.env");
    (running, read_env(&env_path).unwrap())
}

/// Stops `ops up` with `signal` (`INT` as Ctrl-C sends, `TERM` as `timeout`, systemd and
/// container runtimes send) and waits for its exit.
fn stop_running(mut running: Running, signal: &str) -> std::process::ExitStatus {
    stop(running.0.take().expect("running"), signal)
}

fn stop(mut child: std::process::Child, signal: &str) -> std::process::ExitStatus {
    let status = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "ops up did not stop on SIG{signal}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn get(env: &[(String, String)], key: &str) -> String {
    env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_else(|| panic!("{key} missing from stack.env"))
}

/// The services' variables reach the services `ops up` starts: signup closed to the public
/// (control plane) and metrics off (both services).
#[test]
fn ops_up_passes_nexacore_variables_through_to_both_services() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let vars = [("NEXACORE_SIGNUP", "operator"), ("NEXACORE_METRICS", "off")];
    let (child, env) = start_stack_with(&dir.path().join(".nexacore"), port, false, &vars);
    let (base, router) = (get(&env, "NEXACORE_CONTROL_PLANE_URL"), get(&env, "NEXACORE_ROUTER_URL"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    runtime.block_on(async {
        let body = serde_json::json!({
            "company_name": "Closed Signup", "timezone": "UTC", "currency": "USD",
            "admin": {"email": "admin@closed.example.com", "password": "Str0ng&Secret!", "full_name": "Ada"}
        });
        let refused = http.post(format!("{base}/tenants")).json(&body).send().await.unwrap();
        assert_eq!(refused.status(), 401, "NEXACORE_SIGNUP=operator reached the control plane");
        for url in [&base, &router] {
            let metrics = http.get(format!("{url}/metrics")).send().await.unwrap();
            assert_eq!(metrics.status(), 404, "NEXACORE_METRICS=off reached {url}");
            let health = http.get(format!("{url}/health")).send().await.unwrap();
            assert_eq!(health.status(), 200);
        }
    });
    assert!(stop_running(child, "INT").success());
}

#[test]
fn ops_up_runs_the_platform_with_no_configuration_keeps_data_and_stops_on_ctrl_c_or_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let stack_dir = dir.path().join(".nexacore");
    let port = free_port();
    let (child, env) = start_stack(&stack_dir, port, false);
    let base = get(&env, "NEXACORE_CONTROL_PLANE_URL");
    assert_eq!(base, format!("http://127.0.0.1:{port}"));
    let token = get(&env, "NEXACORE_OPERATOR_TOKEN");
    let database_url = get(&env, "NEXACORE_DATABASE_URL");
    let router = get(&env, "NEXACORE_ROUTER_URL");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let slug = format!("up-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    runtime.block_on(async {
        let health = http.get(format!("{base}/health")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let body = serde_json::json!({
            "company_name": "Up Test", "slug": slug, "timezone": "UTC", "currency": "USD",
            "admin": {"email": format!("admin@{slug}.example.com"), "password": "Str0ng&Secret!", "full_name": "Ada"}
        });
        let created = http.post(format!("{base}/tenants")).json(&body).send().await.unwrap();
        assert_eq!(created.status(), 201);
        let created: serde_json::Value = created.json().await.unwrap();
        assert_eq!(created["api_url"], router.as_str(), "tokens point clients at the router");
        // The router serves the new company's data with the signup token.
        let admin_token = created["access_token"].as_str().unwrap();
        let employees = http.get(format!("{router}/employees")).bearer_auth(admin_token).send().await.unwrap();
        assert_eq!(employees.status(), 200);
        let list = http.get(format!("{base}/tenants")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(list.status(), 200);
        // With no SMTP server, the welcome e-mail is a file a developer can open.
        let admin_email = format!("admin@{slug}.example.com");
        let mail_dir = stack_dir.join("mail");
        let has_mail_to = |to: &str| {
            std::fs::read_dir(&mail_dir).into_iter().flatten().flatten().any(|f| {
                f.path().extension().is_some_and(|e| e == "eml")
                    && std::fs::read_to_string(f.path()).is_ok_and(|m| m.contains(&format!("To: {to}")))
            })
        };
        assert!(wait_for(Duration::from_secs(20), || has_mail_to(&admin_email)), "a welcome .eml under {mail_dir:?}");
        // Operators manage people and see the outbox.
        let ops = |args: &[&str]| {
            let out = Command::new(env!("CARGO_BIN_EXE_ops"))
                .args(args)
                .args(["--url", &base, "--token", &token])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(out.status.success(), "ops {args:?}: {text}{}", String::from_utf8_lossy(&out.stderr));
            text
        };
        let invitee = format!("staff@{slug}.example.com");
        ops(&["users", "invite", "--tenant", &slug, &invitee, "--role", "staff"]);
        let people: serde_json::Value =
            serde_json::from_str(&ops(&["users", "list", "--tenant", &slug, "--json"])).unwrap();
        assert_eq!(people["members"][0]["email"], admin_email.as_str());
        assert_eq!(people["invitations"][0]["email"], invitee.as_str());
        assert!(wait_for(Duration::from_secs(20), || has_mail_to(&invitee)), "the invitation .eml");
        let outbox: serde_json::Value = serde_json::from_str(&ops(&["mail", "list", "--json"])).unwrap();
        let kinds: Vec<&str> = outbox.as_array().unwrap().iter().filter_map(|m| m["kind"].as_str()).collect();
        assert!(kinds.contains(&"welcome") && kinds.contains(&"invitation"), "{outbox:#}");
        // The admin database URL works as printed.
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&database_url).await.unwrap();
        let _: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await.unwrap();
    });
    let status = stop_running(child, "INT");
    assert!(status.success(), "ops up exits 0 after Ctrl-C, got {status}");
    assert!(!stack_dir.join("stack.env").exists(), "stack.env removed on stop");
    let pg_port = url::Url::parse(&database_url).unwrap().port().unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", pg_port)).is_err(), "Postgres stopped");

    // Data persists between runs.
    let (child, env) = start_stack(&stack_dir, port, false);
    let base = get(&env, "NEXACORE_CONTROL_PLANE_URL");
    let pg_port = url::Url::parse(&get(&env, "NEXACORE_DATABASE_URL")).unwrap().port().unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", pg_port)).is_ok(), "Postgres is up again");
    runtime.block_on(async {
        let list: serde_json::Value = http
            .get(format!("{base}/tenants?q={slug}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list["items"].as_array().unwrap().len(), 1, "the tenant survived a restart");
    });
    // A second `ops up` on the same directory (even with --fresh) refuses at once and leaves the
    // running one and its files alone.
    let second = Command::new(env!("CARGO_BIN_EXE_ops"))
        .arg("up")
        .arg("--dir")
        .arg(&stack_dir)
        .arg("--fresh")
        .args(["--port", &free_port().to_string(), "--router-port", &free_port().to_string()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{said}");
    assert!(said.contains("another `ops up` is running"), "{said}");
    assert!(stack_dir.join("stack.env").exists() && stack_dir.join("pg").exists(), "nothing removed");
    assert!(std::net::TcpStream::connect(("127.0.0.1", pg_port)).is_ok(), "the first one's Postgres still runs");
    runtime.block_on(async {
        let health = http.get(format!("{base}/health")).send().await.unwrap();
        assert_eq!(health.status(), 200, "the first one still serves");
    });
    let status = stop_running(child, "TERM");
    assert!(status.success(), "ops up exits 0 after SIGTERM, got {status}");
    assert!(!stack_dir.join("stack.env").exists(), "stack.env removed on SIGTERM");
    assert!(std::net::TcpStream::connect(("127.0.0.1", pg_port)).is_err(), "Postgres stopped on SIGTERM");

    // --fresh starts empty.
    let (child, env) = start_stack(&stack_dir, port, true);
    let base = get(&env, "NEXACORE_CONTROL_PLANE_URL");
    let token = get(&env, "NEXACORE_OPERATOR_TOKEN");
    runtime.block_on(async {
        let list: serde_json::Value =
            http.get(format!("{base}/tenants")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        assert!(list["items"].as_array().unwrap().is_empty(), "--fresh starts empty");
    });
    assert!(stop_running(child, "INT").success());
}

#[test]
fn keys_role_key_reads_the_master_key_from_a_file_and_writes_the_same_key_to_a_private_file() {
    let dir = tempfile::tempdir().unwrap();
    let master_file = dir.path().join("master_key");
    std::fs::write(&master_file, "bWFzdGVyLWtleS1mb3ItdGhlLXJvbGUta2V5LXRlc3QtMDEyMzQ1Njc4OQ==\n").unwrap();
    let ops = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ops"));
        command.env_remove("NEXACORE_MASTER_KEY").env("NEXACORE_MASTER_KEY_FILE", &master_file).current_dir(dir.path());
        command
    };
    let printed = ops().args(["keys", "role-key"]).output().unwrap();
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    let key = String::from_utf8(printed.stdout).unwrap();
    assert!(key.trim().len() >= 64 && key.trim().chars().all(|c| c.is_ascii_hexdigit()), "{key:?}");
    let out = dir.path().join("tenant-role-key");
    let written = ops().args(["keys", "role-key", "--output"]).arg(&out).output().unwrap();
    assert!(written.status.success(), "{}", String::from_utf8_lossy(&written.stderr));
    assert!(written.stdout.is_empty(), "the key is not printed when written to a file");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), key);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

#[test]
fn keys_router_url_names_the_least_privileged_router_role_and_carries_no_password() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ops"))
        .args([
            "keys",
            "router-url",
            "--database-url",
            "postgres://postgres:s3cret@db.example:6432/postgres?sslmode=require",
        ])
        .env_remove("NEXACORE_DATABASE_URL")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let url = String::from_utf8(output.stdout).unwrap();
    assert_eq!(url.trim(), "postgres://nexacore_catalog_router@db.example:6432/nexacore_catalog?sslmode=require");
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_ops"))
        .args(["keys", "router-url", "--database-url", "postgres://x@h/db", "--catalog", "Bad Name"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1), "a bad catalog name is an error");
}

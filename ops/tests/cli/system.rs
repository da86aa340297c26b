//! `ops maintenance`, `ops client-versions`, `ops audit`, `ops servers`, `ops tenants flags`
//! and `ops tenants create` against a real control plane: each changes what the API shows, and
//! bad input is refused with the API's message and a non-zero exit code.

use serde_json::Value;
use stack::Platform;

/// `ops` with the new company's admin password in its environment variable (`tenants create`).
async fn ops(platform: &Platform, args: &[&str]) -> (i32, String, String) {
    let env = [("NEXACORE_ADMIN_PASSWORD", stack::TEST_PASSWORD)];
    crate::ops_with_env(&platform.control_plane.url, &platform.operator_token, &env, args).await
}

async fn get(platform: &Platform, path: &str) -> Value {
    let response = platform
        .http
        .get(format!("{}{path}", platform.control_plane.url))
        .bearer_auth(&platform.operator_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn ops_covers_maintenance_client_versions_audit_servers_flags_and_tenant_creation() {
    let platform = Platform::builder_for_tests().routers(0).start().await.unwrap();
    let suffix = stack::unique("");
    let a = platform.signup(&format!("sys-{suffix}-a")).await.unwrap();

    // Platform maintenance on with a message, then off.
    let (code, out, err) = ops(&platform, &["maintenance", "on", "--message", "Back at 10:00"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let status = get(&platform, "/system/status").await;
    assert_eq!(status["maintenance_mode"], true);
    assert_eq!(status["message"], "Back at 10:00");
    let (code, _, _) = ops(&platform, &["maintenance", "off"]).await;
    assert_eq!(code, 0);
    assert_eq!(get(&platform, "/system/status").await["maintenance_mode"], false);
    // One tenant, by slug.
    let (code, out, err) = ops(&platform, &["maintenance", "on", "--tenant", &a.slug]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(get(&platform, &format!("/tenants/{}", a.id)).await["maintenance_mode"], true);
    let (code, _, err) = ops(&platform, &["maintenance", "on", "--tenant", "no-such-tenant"]).await;
    assert_eq!(code, 2, "{err}");

    // Client versions; a minimum above the latest is refused by the API, nothing changed.
    let (code, out, err) = ops(&platform, &["client-versions", "set", "--min", "1.2.0", "--latest", "1.4.0"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(get(&platform, "/system/status").await["min_client_version"], "1.2.0");
    let (code, _, err) = ops(&platform, &["client-versions", "set", "--min", "2.0.0", "--latest", "1.0.0"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("422") && err.contains("latest_version"), "{err}");
    assert_eq!(get(&platform, "/system/status").await["latest_version"], "1.4.0");

    // Feature flags.
    let (code, out, err) = ops(&platform, &["tenants", "flags", &a.slug, "set", "payroll"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(get(&platform, &format!("/tenants/{}", a.id)).await["feature_flags"]["payroll"], true);
    let (code, _, _) = ops(&platform, &["tenants", "flags", &a.id.to_string(), "unset", "payroll"]).await;
    assert_eq!(code, 0);
    assert_eq!(get(&platform, &format!("/tenants/{}", a.id)).await["feature_flags"]["payroll"], false);

    // A company created as the wizard does.
    let new_slug = format!("sys-{suffix}-new");
    let email = format!("boss@{new_slug}.example.com");
    let (code, out, err) = ops(
        &platform,
        &[
            "tenants",
            "create",
            "--name",
            "New Co",
            "--slug",
            &new_slug,
            "--admin-email",
            &email,
            "--admin-name",
            "Boss",
            "--json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["slug"], new_slug.as_str());
    assert_eq!(created["status"], "active");
    let (code, _, err) = ops(
        &platform,
        &[
            "tenants",
            "create",
            "--name",
            "Again",
            "--slug",
            &new_slug,
            "--admin-email",
            "x@y.example.com",
            "--admin-name",
            "X",
        ],
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("409") && err.contains("already taken"), "{err}");

    // Servers.
    let (code, out, err) = ops(&platform, &["servers", "list", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let servers: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(servers[0]["name"], "primary");
    assert_eq!(servers[0]["tenants"], 2);
    let (code, _, err) =
        ops(&platform, &["servers", "add", "bad one", "--admin-url", "postgres://x@127.0.0.1:1/postgres"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("name"), "{err}");

    // The audit log shows all of it; --tenant and --since filter.
    let (code, out, err) = ops(&platform, &["audit", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let entries: Vec<Value> = serde_json::from_str(&out).unwrap();
    let actions: Vec<&str> = entries.iter().filter_map(|e| e["action"].as_str()).collect();
    for action in ["system.maintenance", "system.client_versions", "tenant.maintenance", "tenant.feature_flags"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    let (code, out, _) = ops(&platform, &["audit", "--tenant", &a.slug, "--json"]).await;
    assert_eq!(code, 0);
    let mine: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert!(!mine.is_empty() && mine.iter().all(|e| e["tenant_id"] == a.id.to_string()), "{mine:?}");
    let (code, out, _) = ops(&platform, &["audit", "--since", "2999-01-01T00:00:00Z", "--json"]).await;
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "[]");
    let (code, _, _) = ops(&platform, &["audit", "--since", "yesterday"]).await;
    assert_eq!(code, 2);
    platform.stop().await.unwrap();
}

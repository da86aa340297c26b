//! `ops tenants move` and `ops servers drain` against a real control plane on two servers:
//! the move ends on the named server with its summary, a wrong server exits 2 with nothing
//! changed, and a drain moves every tenant off and leaves the server draining.

use serde_json::Value;
use stack::Platform;

async fn ops(platform: &Platform, args: &[&str]) -> (i32, String, String) {
    crate::ops_on(platform, args).await
}

async fn server_of(platform: &Platform, tenant: uuid::Uuid) -> String {
    let url = format!("{}/tenants/{tenant}", platform.control_plane.url);
    let t: Value =
        platform.http.get(url).bearer_auth(&platform.operator_token).send().await.unwrap().json().await.unwrap();
    let servers: Value = platform
        .http
        .get(format!("{}/servers", platform.control_plane.url))
        .bearer_auth(&platform.operator_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let found = servers.as_array().unwrap().iter().find(|s| s["id"] == t["server_id"]).unwrap();
    found["name"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn ops_moves_a_tenant_and_drains_a_server() {
    let platform = Platform::builder_for_tests()
        .routers(0)
        .control_plane(|c| c.spare_databases_per_server = 0)
        .start()
        .await
        .unwrap();
    let suffix = stack::unique("");
    let (a, b) = (
        platform.signup(&format!("mv-{suffix}-a")).await.unwrap(),
        platform.signup(&format!("mv-{suffix}-b")).await.unwrap(),
    );
    let first = server_of(&platform, a.id).await;
    // Registered after the signups, so both companies start on the first server.
    let second = stack::unique("drainable-");
    let url = local_postgres::second_test_server().superuser_url();
    let (code, out, err) = ops(&platform, &["servers", "add", &second, "--admin-url", &url]).await;
    assert_eq!(code, 0, "{out}{err}");

    let (code, _, err) = ops(&platform, &["tenants", "move", &a.slug, "--to", "no-such-server"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("to:"), "{err}");
    assert_eq!(server_of(&platform, a.id).await, first, "nothing changed");

    let (code, out, err) = ops(&platform, &["tenants", "move", &a.slug, "--to", &second, "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary[0]["move"]["state"], "done", "{summary:#}");
    assert_eq!(server_of(&platform, a.id).await, second);

    // Drain the second server: `a` (its only tenant) comes back; `b` never left.
    let (code, out, err) = ops(&platform, &["servers", "drain", &second]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&a.slug) && out.contains("done"), "{out}");
    assert_eq!(server_of(&platform, a.id).await, first);
    assert_eq!(server_of(&platform, b.id).await, first);
    let (code, out, _) = ops(&platform, &["servers", "list", "--json"]).await;
    assert_eq!(code, 0);
    let servers: Value = serde_json::from_str(&out).unwrap();
    let drained = servers.as_array().unwrap().iter().find(|s| s["name"] == second.as_str()).unwrap();
    assert_eq!((drained["status"].as_str(), drained["tenants"].as_i64()), (Some("draining"), Some(0)));
}

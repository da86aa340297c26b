//! `ops tenants restore`: the restore drill (write → backup → delete → restore in place → the
//! rows and the outbox seq are back), a restore as a new tenant whose role cannot read the
//! original, and bundles refused before anything is touched.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use stack::{Company, Platform};

use crate::backups::{add_employee, ops_tenants, platform_with_backups};

async fn backup_bundle(platform: &Platform, company: &Company, out: &Path) -> PathBuf {
    let (code, stdout, stderr) =
        ops_tenants(platform, &["backup", &company.slug, "--out", out.to_str().unwrap(), "--json"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let outcomes: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    PathBuf::from(outcomes[0]["bundle"].as_str().unwrap())
}

async fn employees_via_router(platform: &Platform, company: &Company) -> Vec<String> {
    let response = platform
        .http
        .get(format!("{}/employees?limit=100", platform.router_url()))
        .bearer_auth(&company.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    let mut emails: Vec<String> =
        page["items"].as_array().unwrap().iter().map(|e| e["email"].as_str().unwrap().to_owned()).collect();
    emails.sort();
    emails
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text message that `wanted` accepts (a generous deadline only guards against a hang).
async fn next_message(socket: &mut Socket, wanted: impl Fn(&Value) -> bool) -> Value {
    use futures::StreamExt as _;
    let read = async {
        while let Some(Ok(message)) = socket.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text).unwrap();
                if wanted(&value) {
                    return Some(value);
                }
            }
        }
        None
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), read).await.ok().flatten().expect("the awaited message")
}

async fn tenant_row(platform: &Platform, id: uuid::Uuid) -> (String, bool, i64) {
    let mut catalog = PgConnection::connect(&platform.catalog_url).await.unwrap();
    let (db, maintenance): (String, bool) =
        sqlx::query_as("SELECT database_name, maintenance_mode FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_one(&mut catalog)
            .await
            .unwrap();
    let tenants: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants").fetch_one(&mut catalog).await.unwrap();
    (db, maintenance, tenants)
}

async fn databases_of(platform: &Platform, id: uuid::Uuid) -> Vec<String> {
    let mut admin = PgConnection::connect(&platform.admin_url).await.unwrap();
    sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY 1")
        .bind(format!("t\\_{}%", id.simple()))
        .fetch_all(&mut admin)
        .await
        .unwrap()
}

async fn outbox_last(platform: &Platform, database: &str) -> i64 {
    let mut conn = PgConnection::connect(&platform.database_url(database).unwrap()).await.unwrap();
    sqlx::query_scalar("SELECT last FROM outbox_seq").fetch_one(&mut conn).await.unwrap()
}

#[tokio::test]
async fn restore_drill_in_place_brings_rows_and_outbox_seq_back_and_as_new_gives_an_isolated_copy() {
    let server_dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let platform = platform_with_backups(server_dir.path()).await;
    let suffix = stack::unique("");
    let a = platform.signup(&format!("rs-{suffix}-a")).await.unwrap();
    for i in 0..3 {
        add_employee(&platform, &a, &format!("e{i}@a.example.com")).await;
    }
    let before = employees_via_router(&platform, &a).await;
    assert_eq!(before.len(), 3);
    let bundle = backup_bundle(&platform, &a, out.path()).await;

    // A live client, then one more employee after the backup (its event reaches the socket, so
    // the router's hub for the tenant is running), then every row deleted.
    let ws_url = format!("{}/ws?token={}", platform.router_url().replace("http://", "ws://"), a.token);
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    add_employee(&platform, &a, "late@a.example.com").await;
    let created = next_message(&mut socket, |m| m["action"] == "created").await;
    assert_eq!(created["seq"], 4, "{created}");
    let (old_db, _, tenants_before) = tenant_row(&platform, a.id).await;
    let mut db = PgConnection::connect(&platform.database_url(&old_db).unwrap()).await.unwrap();
    sqlx::query("DELETE FROM employees").execute(&mut db).await.unwrap();
    db.close().await.ok();
    assert!(employees_via_router(&platform, &a).await.is_empty());
    assert_eq!(outbox_last(&platform, &old_db).await, 4);

    // Restore in place: the rows and the outbox seq of the backup are back, served by the router.
    let (code, stdout, stderr) =
        ops_tenants(&platform, &["restore", bundle.to_str().unwrap(), "--in-place", "--yes", "--json"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let done: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(done["last_outbox_seq"], 3);
    assert_eq!(done["schema_version"], tenant_schema::latest_version());
    // The live socket is told to reload from the restored seq.
    let resync = next_message(&mut socket, |m| m["action"] == "resync").await;
    assert_eq!(resync["channel"], "system");
    assert_eq!(resync["data"]["seq"], 3, "{resync}");
    let (new_db, maintenance, tenants_after) = tenant_row(&platform, a.id).await;
    assert_ne!(new_db, old_db, "restored into a fresh database");
    assert!(!maintenance, "unfenced");
    assert_eq!(tenants_after, tenants_before);
    // The replaced database is kept (a way back), then dropped on request.
    assert!(done["old_database_kept_until"].is_string(), "{done}");
    let mut both = vec![old_db.clone(), new_db.clone()];
    both.sort();
    assert_eq!(databases_of(&platform, a.id).await, both, "the old database is kept");
    let (code, _, _) = ops_tenants(&platform, &["drop-old-databases", &a.slug]).await;
    assert_eq!(code, 2, "without --yes");
    let (code, stdout, stderr) = ops_tenants(&platform, &["drop-old-databases", &a.slug, "--yes", "--json"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let dropped: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(dropped["dropped"], json!([old_db]));
    assert_eq!(databases_of(&platform, a.id).await, vec![new_db.clone()], "the old database is dropped");
    assert_eq!(outbox_last(&platform, &new_db).await, 3);
    assert_eq!(employees_via_router(&platform, &a).await, before, "the router serves the restored rows");
    // The restored database belongs to the tenant's role, which writes to it as before.
    add_employee(&platform, &a, "after@a.example.com").await;
    assert_eq!(outbox_last(&platform, &new_db).await, 4);

    // Restore as a new tenant, with the members: an identical copy under a new id.
    let copy_slug = format!("rs-{suffix}-copy");
    let (code, stdout, stderr) =
        ops_tenants(&platform, &["restore", bundle.to_str().unwrap(), "--as", &copy_slug, "--with-members", "--json"])
            .await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let copy: Value = serde_json::from_str(&stdout).unwrap();
    let copy_id: uuid::Uuid = copy["tenant_id"].as_str().unwrap().parse().unwrap();
    assert_ne!(copy_id, a.id);
    let copy_db = format!("t_{}", copy_id.simple());
    let mut conn = PgConnection::connect(&platform.database_url(&copy_db).unwrap()).await.unwrap();
    let mut emails: Vec<String> = sqlx::query_scalar("SELECT email FROM employees").fetch_all(&mut conn).await.unwrap();
    emails.sort();
    assert_eq!(emails, before);
    let last: i64 = sqlx::query_scalar("SELECT last FROM outbox_seq").fetch_one(&mut conn).await.unwrap();
    assert_eq!(last, 3);
    conn.close().await.ok();
    // The admin of the original can sign in to the copy (--with-members) and the router serves it.
    let login = platform
        .http
        .post(format!("{}/auth/login", platform.control_plane.url))
        .json(&json!({"email": a.admin_email, "password": stack::TEST_PASSWORD, "tenant": copy_slug}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    // The copy's role cannot read the original: it cannot even log into its database.
    let copy_role = format!("t_{}", copy_id.simple());
    let password = platform.role_key.password_for(&tenancy::RoleName::parse(&copy_role).unwrap());
    let mut url = url::Url::parse(&platform.database_url(&new_db).unwrap()).unwrap();
    url.set_username(&copy_role).unwrap();
    url.set_password(Some(secrecy::ExposeSecret::expose_secret(&password))).unwrap();
    let Err(refused) = PgConnection::connect(url.as_str()).await else {
        panic!("the copy's role logged into the original")
    };
    assert_eq!(refused.as_database_error().and_then(|e| e.code()).as_deref(), Some("42501"), "{refused}");
    url.set_path(&format!("/{copy_db}"));
    PgConnection::connect(url.as_str()).await.expect("the copy's role logs into its own database").close().await.ok();
    platform.stop().await.unwrap();
}

#[tokio::test]
async fn corrupt_foreign_or_newer_bundles_and_taken_slugs_are_refused_before_anything_is_touched() {
    let server_dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let platform = platform_with_backups(server_dir.path()).await;
    let suffix = stack::unique("");
    let a = platform.signup(&format!("rf-{suffix}-a")).await.unwrap();
    let b = platform.signup(&format!("rf-{suffix}-b")).await.unwrap();
    add_employee(&platform, &a, "x@a.example.com").await;
    let bundle = backup_bundle(&platform, &a, out.path()).await;
    let manifest: Value = serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    let dump_name = manifest["dump_file"].as_str().unwrap().to_owned();

    let footprint = || async {
        let a_row = tenant_row(&platform, a.id).await;
        let b_row = tenant_row(&platform, b.id).await;
        (a_row, b_row, databases_of(&platform, a.id).await, databases_of(&platform, b.id).await)
    };
    let untouched = footprint().await;

    // A corrupt bundle (one byte changed) and a truncated one: refused by ops before sending.
    for damage in ["flip", "truncate"] {
        let damaged = out.path().join(format!("damaged-{damage}"));
        std::fs::create_dir_all(&damaged).unwrap();
        std::fs::copy(bundle.join("manifest.json"), damaged.join("manifest.json")).unwrap();
        let mut bytes = std::fs::read(bundle.join(&dump_name)).unwrap();
        if damage == "flip" {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0xff;
        } else {
            bytes.truncate(bytes.len() / 2);
        }
        std::fs::write(damaged.join(&dump_name), bytes).unwrap();
        let (code, stdout, stderr) =
            ops_tenants(&platform, &["restore", damaged.to_str().unwrap(), "--in-place", "--yes"]).await;
        assert_eq!(code, 1, "{stdout}{stderr}");
        assert!(stderr.contains("corrupt or truncated"), "{stderr}");
    }

    // The same through the API (a client that skips the check): the server refuses it too.
    let api = |path: &str| {
        platform.http.post(format!("{}{path}", platform.control_plane.url)).bearer_auth(&platform.operator_token)
    };
    let upload = |bytes: Vec<u8>| async {
        let answer = api("/restores/uploads")
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 201);
        answer.json::<Value>().await.unwrap()["upload_id"].clone()
    };
    let good = std::fs::read(bundle.join(&dump_name)).unwrap();
    let mut truncated = good.clone();
    truncated.truncate(good.len() - 10);
    let cases = [
        ("truncated upload", upload(truncated).await, manifest.clone(), json!({"in_place": true}), "manifest.sha256"),
        (
            "another tenant's bundle",
            upload(good.clone()).await,
            manifest.clone(),
            json!({"in_place": true, "tenant": b.slug}),
            "tenant",
        ),
        (
            "newer schema",
            upload(good.clone()).await,
            {
                let mut m = manifest.clone();
                m["schema_version"] = json!(tenant_schema::latest_version() + 1);
                m
            },
            json!({"in_place": true}),
            "manifest.schema_version",
        ),
        (
            "other format",
            upload(good.clone()).await,
            {
                let mut m = manifest.clone();
                m["format"] = json!("something-else/9");
                m
            },
            json!({"slug": format!("rf-{suffix}-new")}),
            "manifest.format",
        ),
        ("invalid slug", upload(good.clone()).await, manifest.clone(), json!({"slug": "Not A Slug"}), "slug"),
    ];
    for (what, upload_id, manifest, extra, field) in cases {
        let mut body = json!({"upload_id": upload_id, "manifest": manifest});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let answer = api("/restores").json(&body).send().await.unwrap();
        assert_eq!(answer.status(), 422, "{what}");
        let error: Value = answer.json().await.unwrap();
        assert_eq!(error["field"], field, "{what}: {error}");
    }
    let taken = json!({"upload_id": upload(good.clone()).await, "manifest": manifest, "slug": b.slug});
    let answer = api("/restores").json(&taken).send().await.unwrap();
    assert_eq!(answer.status(), 409);

    // Through ops: a bundle of another tenant in place.
    let (code, _, stderr) =
        ops_tenants(&platform, &["restore", bundle.to_str().unwrap(), "--in-place", "--yes", "--tenant", &b.slug])
            .await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("belongs to another tenant"), "{stderr}");
    // In place without --yes: a usage error.
    let (code, _, _) = ops_tenants(&platform, &["restore", bundle.to_str().unwrap(), "--in-place"]).await;
    assert_eq!(code, 2);

    assert_eq!(footprint().await, untouched, "nothing changed");
    platform.stop().await.unwrap();
}

//! `ops tenants backup` and the final backup of `ops tenants delete`, against a real platform
//! (control plane and router in this process, the shared test server, real `pg_dump`).

use std::path::Path;

use serde_json::{Value, json};
use sha2::Digest as _;
use sqlx::{Connection, PgConnection};
use stack::{Company, Platform};

/// Runs `ops tenants …` against the platform; returns the exit code, stdout and stderr.
pub async fn ops_tenants(platform: &Platform, args: &[&str]) -> (i32, String, String) {
    crate::ops_on(platform, &[&["tenants"], args].concat()).await
}

/// A platform whose control plane keeps backups in `dir`.
pub async fn platform_with_backups(dir: &Path) -> Platform {
    let dir = dir.to_owned();
    Platform::builder_for_tests().control_plane(move |c| c.backups.dir = dir).start().await.unwrap()
}

pub async fn add_employee(platform: &Platform, company: &Company, email: &str) {
    let body = json!({"first_name": "Grace", "last_name": "Hopper", "email": email, "hire_date": "2024-01-15"});
    let response = platform
        .http
        .post(format!("{}/employees", platform.router_url()))
        .bearer_auth(&company.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

pub async fn superuser(platform: &Platform, company: &Company) -> PgConnection {
    let db = format!("t_{}", company.id.simple());
    PgConnection::connect(&platform.database_url(&db).unwrap()).await.unwrap()
}

async fn operator_get(platform: &Platform, path: &str) -> Value {
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

fn sha256_hex(path: &Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[tokio::test]
async fn ops_backup_dumps_each_tenant_as_its_own_role_into_checked_bundles_recorded_in_the_catalog() {
    let server_dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let platform = platform_with_backups(server_dir.path()).await;
    let suffix = stack::unique("");
    let a = platform.signup(&format!("bk-{suffix}-a")).await.unwrap();
    let b = platform.signup(&format!("bk-{suffix}-b")).await.unwrap();
    for i in 0..3 {
        add_employee(&platform, &a, &format!("a{i}@a.example.com")).await;
    }

    let out_dir = out.path().to_str().unwrap();
    let (code, stdout, stderr) =
        ops_tenants(&platform, &["backup", &a.slug, &b.id.to_string(), "--out", out_dir, "--json"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let outcomes: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(outcomes.len(), 2);
    let first = &outcomes[0];
    assert_eq!(first["slug"], a.slug.as_str());
    assert_eq!(first["backup"]["status"], "done", "{first:#}");
    let manifest = &first["backup"]["manifest"];
    // The manifest describes exactly the dumped snapshot: three employees, three events.
    assert_eq!(manifest["tenant_id"], a.id.to_string());
    assert_eq!(manifest["format"], "nexacore-backup/1");
    assert_eq!(manifest["last_outbox_seq"], 3, "{manifest:#}");
    assert_eq!(manifest["schema_version"], tenant_schema::latest_version());
    assert_eq!(manifest["server"], "primary");
    assert!(manifest["tool_versions"]["pg_dump"].as_str().unwrap().contains("pg_dump"), "{manifest:#}");

    // The bundle: the dump and its manifest, the dump's checksum and size as the manifest says.
    let bundle = Path::new(first["bundle"].as_str().unwrap());
    let on_disk: Value = serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(&on_disk, manifest);
    let dump = bundle.join(manifest["dump_file"].as_str().unwrap());
    assert_eq!(sha256_hex(&dump), manifest["sha256"].as_str().unwrap());
    assert_eq!(std::fs::metadata(&dump).unwrap().len() as i64, manifest["size"].as_i64().unwrap());
    // A real custom-format dump holding the tenant's data.
    let tools = local_postgres::find_dump_tools().unwrap();
    let listing = std::process::Command::new(tools.pg_restore()).arg("--list").arg(&dump).output().unwrap();
    assert!(listing.status.success());
    assert!(String::from_utf8_lossy(&listing.stdout).contains("TABLE DATA public employees"));

    // The catalog records both, for GET /tenants/{id}/backups (by id or slug).
    let listed = operator_get(&platform, &format!("/tenants/{}/backups", a.slug)).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], first["backup"]["id"]);
    assert_eq!(listed[0]["kind"], "manual");
    assert_eq!(listed[0]["manifest"], *manifest);
    let listed_b = operator_get(&platform, &format!("/tenants/{}/backups", b.id)).await;
    assert_eq!(listed_b[0]["status"], "done");
    // The control plane keeps its own copy too.
    let kept = server_dir.path().join(a.id.to_string()).join(manifest["dump_file"].as_str().unwrap());
    assert_eq!(sha256_hex(&kept), manifest["sha256"].as_str().unwrap());

    // pg_dump logs in as the tenant's role, never as a superuser: a table in the tenant's
    // database that only a superuser may read makes the dump fail (a superuser's would not),
    // and the summary says so with exit code 1.
    let mut planted = superuser(&platform, &b).await;
    sqlx::query("CREATE TABLE public.superuser_only (x int)").execute(&mut planted).await.unwrap();
    let (code, stdout, stderr) = ops_tenants(&platform, &["backup", &b.slug]).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("pg_dump failed") && stderr.contains("1 of 1 backup(s) failed"), "{stdout}{stderr}");
    let listed_b = operator_get(&platform, &format!("/tenants/{}/backups", b.id)).await;
    assert_eq!(listed_b[0]["status"], "failed");
    assert_eq!(listed_b.as_array().unwrap().len(), 2);
    // No partial file is left behind.
    let failed_id = listed_b[0]["id"].as_str().unwrap();
    let tenant_dir = server_dir.path().join(b.id.to_string());
    assert!(
        std::fs::read_dir(&tenant_dir).unwrap().flatten().all(|f| !f.file_name().to_string_lossy().contains(failed_id))
    );
    sqlx::query("DROP TABLE public.superuser_only").execute(&mut planted).await.unwrap();
    planted.close().await.ok();

    // --all: every live tenant of this platform; the summary table and its totals.
    let (code, stdout, stderr) =
        ops_tenants(&platform, &["backup", "--all", "--parallel", "2", "--per-server", "1"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&a.slug) && stdout.contains(&b.slug) && stdout.contains("2 of 2 backup(s) done"),
        "{stdout}"
    );

    // Usage errors: exit code 2, nothing recorded.
    let before: i64 = backups_count(&platform).await;
    let (code, _, stderr) = ops_tenants(&platform, &["backup", "no-such-tenant"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no-such-tenant"), "{stderr}");
    let (code, _, _) = ops_tenants(&platform, &["backup"]).await;
    assert_eq!(code, 2, "neither tenants nor --all");
    assert_eq!(backups_count(&platform).await, before);
    platform.stop().await.unwrap();
}

pub async fn backups_count(platform: &Platform) -> i64 {
    let mut catalog = PgConnection::connect(&platform.catalog_url).await.unwrap();
    sqlx::query_scalar("SELECT count(*) FROM backups").fetch_one(&mut catalog).await.unwrap()
}

#[tokio::test]
async fn ops_delete_takes_a_final_backup_first_unless_no_backup() {
    let server_dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let platform = platform_with_backups(server_dir.path()).await;
    let suffix = stack::unique("");
    let kept = platform.signup(&format!("del-{suffix}-a")).await.unwrap();
    let gone = platform.signup(&format!("del-{suffix}-b")).await.unwrap();
    add_employee(&platform, &kept, "last@kept.example.com").await;

    let (code, stdout, stderr) =
        ops_tenants(&platform, &["delete", &kept.slug, "--yes", "--out", out.path().to_str().unwrap()]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("final backup") && stdout.contains(&format!("deleted {}", kept.slug)), "{stdout}");
    // The tenant is gone, its final backup stays listed (by id) and downloaded.
    let tenant = operator_get(&platform, &format!("/tenants/{}", kept.id)).await;
    assert_eq!(tenant["status"], "deleted");
    let listed = operator_get(&platform, &format!("/tenants/{}/backups", kept.id)).await;
    assert_eq!(listed[0]["kind"], "final");
    assert_eq!(listed[0]["status"], "done");
    assert_eq!(listed[0]["manifest"]["last_outbox_seq"], 1);
    let bundles: Vec<_> = std::fs::read_dir(out.path()).unwrap().flatten().collect();
    assert_eq!(bundles.len(), 1);
    assert!(bundles[0].path().join("manifest.json").is_file());

    let (code, stdout, stderr) = ops_tenants(&platform, &["delete", &gone.slug, "--yes", "--no-backup"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(!stdout.contains("final backup"), "{stdout}");
    let listed = operator_get(&platform, &format!("/tenants/{}/backups", gone.id)).await;
    assert!(listed.as_array().unwrap().is_empty());

    // Without --yes: a usage error, nothing deleted or backed up.
    let other = platform.signup(&format!("del-{suffix}-c")).await.unwrap();
    let (code, _, _) = ops_tenants(&platform, &["delete", &other.slug]).await;
    assert_eq!(code, 2);
    assert_eq!(operator_get(&platform, &format!("/tenants/{}", other.id)).await["status"], "active");
    platform.stop().await.unwrap();
}

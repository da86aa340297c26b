//! The generated OpenAPI document, snapshotted so API changes show up in review.
//! Run with `UPDATE_SNAPSHOTS=1` to accept a change.

use serde_json::Value;

use crate::helpers::TestApp;

#[tokio::test]
async fn the_openapi_document_matches_the_snapshot() {
    let app = TestApp::spawn().await;
    let served: Value = app.http.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let pretty = serde_json::to_string_pretty(&served).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/snapshots/openapi.json");
    if std::env::var("UPDATE_SNAPSHOTS").is_ok() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &pretty).unwrap();
    }
    let stored = std::fs::read_to_string(&path).expect("snapshot missing: run with UPDATE_SNAPSHOTS=1 once");
    // Compared as text, but reported briefly: the whole document would drown the test output.
    if stored != pretty {
        let line = stored.lines().zip(pretty.lines()).position(|(a, b)| a != b).unwrap_or(0) + 1;
        panic!("the API changed (first difference at line {line}): review it and run with UPDATE_SNAPSHOTS=1");
    }
    for path in ["/tenants", "/auth/login", "/.well-known/jwks.json", "/system/status", "/system/maintenance"] {
        assert!(served["paths"][path].is_object(), "{path} is documented");
    }
}

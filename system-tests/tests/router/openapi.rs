//! The router's OpenAPI document, snapshotted so API changes show up in review.
//! Run with `UPDATE_SNAPSHOTS=1` to accept a change.

use serde_json::Value;

use crate::helpers::Stack;

#[tokio::test]
async fn the_openapi_document_matches_the_snapshot() {
    let stack = Stack::start().await;
    let served: Value =
        stack.http.get(format!("{}/openapi.json", stack.router)).send().await.unwrap().json().await.unwrap();
    let pretty = serde_json::to_string_pretty(&served).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/router/snapshots/openapi.json");
    if std::env::var("UPDATE_SNAPSHOTS").is_ok() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &pretty).unwrap();
    }
    let stored = std::fs::read_to_string(&path).expect("snapshot missing: run with UPDATE_SNAPSHOTS=1 once");
    if stored != pretty {
        let line = stored.lines().zip(pretty.lines()).position(|(a, b)| a != b).unwrap_or(0) + 1;
        panic!("the API changed (first difference at line {line}): review it and run with UPDATE_SNAPSHOTS=1");
    }
    for path in ["/employees", "/employees/{id}", "/departments", "/accounts", "/system/status"] {
        assert!(served["paths"][path].is_object(), "{path} is documented");
    }
    let docs = stack.http.get(format!("{}/docs", stack.router)).send().await.unwrap();
    assert_eq!(docs.status(), 200);
}

#[tokio::test]
async fn a_method_a_path_does_not_have_is_a_405_with_allow_from_the_document() {
    let stack = Stack::start().await;
    let company = stack.signup(&crate::helpers::unique("allow-")).await;
    let item = format!("/employees/{}", uuid::Uuid::now_v7());
    for (method, path, allow) in [
        (reqwest::Method::PUT, item.as_str(), "GET, DELETE, PATCH, HEAD"),
        (reqwest::Method::DELETE, "/employees", "GET, POST, HEAD"),
        (reqwest::Method::POST, "/ws", "GET, HEAD"),
    ] {
        let response = stack.call(method.clone(), path, &company.token).send().await.unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
    }
}

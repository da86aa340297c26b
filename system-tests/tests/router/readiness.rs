//! `GET /ready` on both services: ready once the catalog answers and (router) the catalog
//! listener is connected or (control plane) a signing key is loaded; each check named.

use serde_json::Value;
use stack::Platform;

#[tokio::test]
async fn both_services_report_ready_with_their_checks() {
    let platform = Platform::builder_for_tests().routers(1).start().await.unwrap();
    for (base, checks) in [
        (&platform.control_plane.url, ["catalog", "signing_keys"]),
        (&platform.routers[0].url, ["catalog", "listener"]),
    ] {
        // The router's listener connects in the background: ready within moments of starting.
        let mut answer = (0, Value::Null);
        for _ in 0..100 {
            let response = platform.http.get(format!("{base}/ready")).send().await.unwrap();
            answer = (response.status().as_u16(), response.json().await.unwrap());
            if answer.0 == 200 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let (status, body) = answer;
        assert_eq!((status, body["ready"].as_bool()), (200, Some(true)), "{base}: {body}");
        let names: Vec<&str> = body["checks"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
        assert_eq!(names, checks);
    }
    platform.stop().await.unwrap();
}

#[test]
fn one_failed_check_makes_a_service_not_ready() {
    use api_types::system::{Readiness, ReadinessCheck};
    let check = |name: &str, ok| ReadinessCheck { name: name.into(), ok };
    assert!(Readiness::of(vec![check("catalog", true), check("listener", true)]).ready);
    assert!(!Readiness::of(vec![check("catalog", true), check("listener", false)]).ready);
}

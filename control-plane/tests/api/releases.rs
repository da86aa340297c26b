//! Desktop releases against a real control plane: publishing (signature, key, expiry, artifact,
//! order), staged rollout over 1,000 install ids, pausing and yanking, resumable downloads, and
//! the installs' reports pausing a release by themselves.

use api_types::releases::{Channel, Platform, SignedRelease};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::helpers::TestApp;
use release::archive::{self, ArchiveInput};
use release::signing::{sign, sign_bytes, signing_key_from_secret};
use release::{Manifest, Sha256Digest, TrustedKeys};

struct Releases {
    app: TestApp,
    key: ed25519_dalek::SigningKey,
    _dir: tempfile::TempDir,
}

impl Releases {
    async fn spawn() -> Self {
        Self::spawn_with_threshold(5).await
    }

    async fn spawn_with_threshold(threshold: i64) -> Self {
        Self::spawn_with(move |r| r.rollback_pause_threshold = threshold).await
    }

    async fn spawn_with(tweak: impl FnOnce(&mut control_plane::releases::ReleaseSettings) + Send + 'static) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = signing_key_from_secret([42; 32]);
        let trusted = TrustedKeys::from_keys([key.verifying_key()]);
        let path = dir.path().to_owned();
        let app = TestApp::spawn_with(move |c| {
            c.releases.dir = path;
            c.releases.trusted_keys = trusted;
            tweak(&mut c.releases);
        })
        .await;
        Self { app, key, _dir: dir }
    }

    /// A zip of a pretend program for `version`, uploaded, and its manifest (unsigned).
    async fn upload(&self, version: &str) -> (Manifest, Vec<u8>) {
        let program = format!("program {version}").repeat(5000);
        let zip =
            archive::build(&[ArchiveInput { path: "nexacore-desktop", bytes: program.as_bytes(), executable: true }])
                .unwrap();
        let sha = Sha256Digest::of(&zip);
        let put = self.app.operator(Method::PUT, &format!("/releases/artifacts/{sha}")).body(zip.clone());
        let response = put.header("content-type", "application/octet-stream").send().await.unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        let now = OffsetDateTime::now_utc();
        let manifest = Manifest {
            version: version.parse().unwrap(),
            channel: Channel::Stable,
            platform: Platform::LinuxX86_64,
            pub_date: now,
            expires: now + Duration::days(30),
            notes: format!("Version {version}"),
            mandatory: false,
            min_supported: None,
            rollout_percent: 100,
            url: format!("/releases/artifacts/{sha}"),
            size: zip.len() as u64,
            sha256: sha,
        };
        (manifest, zip)
    }

    async fn publish(&self, envelope: &SignedRelease) -> reqwest::Response {
        self.app.operator(Method::POST, "/releases").json(envelope).send().await.unwrap()
    }

    async fn publish_version(&self, version: &str, edit: impl FnOnce(&mut Manifest)) -> Manifest {
        let (mut manifest, _) = self.upload(version).await;
        edit(&mut manifest);
        let response = self.publish(&sign(&manifest, &self.key).unwrap()).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        manifest
    }

    async fn latest(&self, current: &str, install_id: &str, manual: bool) -> reqwest::Response {
        let url = format!(
            "/releases/latest?platform=linux-x86_64&channel=stable&current={current}&install_id={install_id}&manual={manual}"
        );
        self.app.http.get(self.app.url(&url)).send().await.unwrap()
    }

    async fn list(&self) -> Value {
        self.app.operator(Method::GET, "/releases").send().await.unwrap().json().await.unwrap()
    }

    async fn event(&self, version: &str, install_id: &str, kind: &str, reason: Option<&str>) -> reqwest::Response {
        let body = json!({"version": version, "channel": "stable", "platform": "linux-x86_64",
                          "install_id": install_id, "kind": kind, "reason": reason});
        self.app.http.post(self.app.url("/releases/events")).json(&body).send().await.unwrap()
    }
}

async fn error_field(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (status, body["field"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_published_release_is_served_exactly_as_signed_and_status_follows_it() {
    let r = Releases::spawn().await;
    let manifest = r.publish_version("1.4.0", |m| m.min_supported = Some("1.2.0".parse().unwrap())).await;

    let response = r.latest("1.3.0", "install-a", false).await;
    assert_eq!(response.status(), 200);
    let envelope: SignedRelease = response.json().await.unwrap();
    let verified = TrustedKeys::from_keys([r.key.verifying_key()]).verify(&envelope).unwrap();
    assert_eq!(verified.manifest, manifest);

    assert_eq!(r.latest("1.4.0", "install-a", false).await.status(), 204, "nothing newer for 1.4.0");
    assert_eq!(r.latest("2.0.0", "install-a", false).await.status(), 204);

    let status: Value = r.app.http.get(r.app.url("/system/status")).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["latest_version"], "1.4.0");
    assert_eq!(status["min_client_version"], "1.2.0");

    let list = r.list().await;
    assert_eq!(list[0]["version"], "1.4.0");
    assert_eq!(list[0]["state"], "active");
    assert_eq!(list[0]["sha256"], manifest.sha256.to_hex());
}

#[tokio::test]
async fn tampered_unknown_expired_and_unuploaded_releases_are_refused_naming_the_field() {
    let r = Releases::spawn().await;
    let (manifest, _) = r.upload("1.0.0").await;
    let good = sign(&manifest, &r.key).unwrap();

    let mut bad_signature = good.clone();
    bad_signature.signature = sign(&r.upload("1.0.1").await.0, &r.key).unwrap().signature;
    assert_eq!(
        error_field(r.publish(&bad_signature).await).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "signature".into())
    );

    let stranger = sign(&manifest, &signing_key_from_secret([7; 32])).unwrap();
    assert_eq!(error_field(r.publish(&stranger).await).await, (StatusCode::UNPROCESSABLE_ENTITY, "key_id".into()));

    let mut expired = manifest.clone();
    expired.pub_date = OffsetDateTime::now_utc() - Duration::days(10);
    expired.expires = OffsetDateTime::now_utc() - Duration::days(1);
    let expired = sign(&expired, &r.key).unwrap();
    assert_eq!(error_field(r.publish(&expired).await).await, (StatusCode::UNPROCESSABLE_ENTITY, "manifest".into()));

    let mut not_uploaded = manifest.clone();
    not_uploaded.sha256 = Sha256Digest::of(b"never uploaded");
    not_uploaded.url = format!("/releases/artifacts/{}", not_uploaded.sha256);
    let not_uploaded = sign(&not_uploaded, &r.key).unwrap();
    assert_eq!(
        error_field(r.publish(&not_uploaded).await).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "manifest".into())
    );

    let mut wrong_size = manifest.clone();
    wrong_size.size += 1;
    let wrong_size = sign(&wrong_size, &r.key).unwrap();
    assert_eq!(error_field(r.publish(&wrong_size).await).await, (StatusCode::UNPROCESSABLE_ENTITY, "manifest".into()));

    let junk = sign_bytes(b"{\"version\": 3}", &r.key);
    assert_eq!(error_field(r.publish(&junk).await).await, (StatusCode::UNPROCESSABLE_ENTITY, "manifest".into()));

    let bad_upload = r
        .app
        .operator(Method::PUT, &format!("/releases/artifacts/{}", Sha256Digest::of(b"x")))
        .header("content-type", "application/octet-stream")
        .body("not x")
        .send()
        .await
        .unwrap();
    assert_eq!(error_field(bad_upload).await, (StatusCode::UNPROCESSABLE_ENTITY, "body".into()));

    assert_eq!(r.list().await, json!([]), "nothing was published");
    assert_eq!(r.publish(&good).await.status(), 201);
}

#[tokio::test]
async fn a_version_not_above_the_channels_latest_is_refused_with_409() {
    let r = Releases::spawn().await;
    r.publish_version("1.2.0", |_| {}).await;
    for version in ["1.2.0", "1.1.9"] {
        let (manifest, _) = r.upload(version).await;
        let response = r.publish(&sign(&manifest, &r.key).unwrap()).await;
        assert_eq!(error_field(response).await, (StatusCode::CONFLICT, "version".into()), "{version}");
    }
    // Another channel has its own order.
    r.publish_version("1.0.0", |m| m.channel = Channel::Beta).await;
    assert_eq!(r.list().await.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn ten_percent_reaches_about_a_tenth_of_installs_and_pausing_reaches_none() {
    let r = Releases::spawn().await;
    r.publish_version("2.0.0", |m| m.rollout_percent = 10).await;
    let ids: Vec<String> = (0..1000).map(|n| format!("install-{n:04}")).collect();
    let mut offered = 0;
    for id in &ids {
        if r.latest("1.0.0", id, false).await.status() == 200 {
            offered += 1;
        }
    }
    assert!((70..=130).contains(&offered), "10% rollout offered to {offered} of 1000");
    // Exactly the installs the shared rule includes.
    assert_eq!(offered, ids.iter().filter(|id| release::rollout::is_included(id, 10)).count());

    let excluded = ids.iter().find(|id| !release::rollout::is_included(id, 10)).unwrap();
    assert_eq!(r.latest("1.0.0", excluded, true).await.status(), 200, "a manual check bypasses the rollout");

    let paused = r.app.operator(Method::POST, "/releases/2.0.0/pause").send().await.unwrap();
    assert_eq!(paused.status(), 200);
    for id in ids.iter().take(200) {
        assert_eq!(r.latest("1.0.0", id, true).await.status(), 204, "paused: offered to nobody");
    }
    assert_eq!(r.app.operator(Method::POST, "/releases/2.0.0/resume").send().await.unwrap().status(), 200);
    let all =
        r.app.operator(Method::PUT, "/releases/2.0.0/rollout").json(&json!({"percent": 100})).send().await.unwrap();
    assert_eq!(all.status(), 200);
    assert_eq!(r.latest("1.0.0", excluded, false).await.status(), 200);

    let bad =
        r.app.operator(Method::PUT, "/releases/2.0.0/rollout").json(&json!({"percent": 101})).send().await.unwrap();
    assert_eq!(error_field(bad).await, (StatusCode::UNPROCESSABLE_ENTITY, "percent".into()));
    let missing = r.app.operator(Method::POST, "/releases/9.9.9/pause").send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn mandatory_releases_bypass_the_rollout_and_yanked_ones_are_gone() {
    let r = Releases::spawn().await;
    r.publish_version("1.1.0", |_| {}).await;
    r.publish_version("1.2.0", |m| {
        m.rollout_percent = 0;
        m.mandatory = true;
    })
    .await;
    let envelope: SignedRelease = r.latest("1.0.0", "anyone", false).await.json().await.unwrap();
    let verified = TrustedKeys::from_keys([r.key.verifying_key()]).verify(&envelope).unwrap();
    assert_eq!(verified.manifest.version.to_string(), "1.2.0");

    let yanked = r.app.operator(Method::POST, "/releases/1.2.0/yank").send().await.unwrap();
    assert_eq!(yanked.status(), 200);
    let envelope: SignedRelease = r.latest("1.0.0", "anyone", false).await.json().await.unwrap();
    let verified = TrustedKeys::from_keys([r.key.verifying_key()]).verify(&envelope).unwrap();
    assert_eq!(verified.manifest.version.to_string(), "1.1.0", "the newest release still standing");
    let status: Value = r.app.http.get(r.app.url("/system/status")).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["latest_version"], "1.1.0");
    let resumed = r.app.operator(Method::POST, "/releases/1.2.0/resume").send().await.unwrap();
    assert_eq!(resumed.status(), 404, "a yanked release stays yanked");
}

#[tokio::test]
async fn artifacts_are_served_with_ranges_if_range_and_416() {
    let r = Releases::spawn().await;
    let (manifest, zip) = r.upload("1.0.0").await;
    let url = r.app.url(&manifest.url);
    let len = zip.len();

    let full = r.app.http.get(&url).send().await.unwrap();
    assert_eq!(full.status(), 200);
    let etag = full.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", manifest.sha256));
    assert_eq!(full.headers()["accept-ranges"], "bytes");
    assert_eq!(full.bytes().await.unwrap(), zip);

    let tail = r.app.http.get(&url).header("range", "bytes=100-").send().await.unwrap();
    assert_eq!(tail.status(), 206);
    assert_eq!(tail.headers()["content-range"].to_str().unwrap(), format!("bytes 100-{}/{len}", len - 1));
    assert_eq!(tail.bytes().await.unwrap(), zip[100..]);

    let same = r.app.http.get(&url).header("range", "bytes=10-19").header("if-range", &etag).send().await.unwrap();
    assert_eq!(same.status(), 206);
    assert_eq!(same.bytes().await.unwrap(), zip[10..20]);

    let stale = r.app.http.get(&url).header("range", "bytes=10-").header("if-range", "\"old\"").send().await.unwrap();
    assert_eq!(stale.status(), 200, "a stale validator gets the whole file");
    assert_eq!(stale.bytes().await.unwrap(), zip);

    let past = r.app.http.get(&url).header("range", format!("bytes={len}-")).send().await.unwrap();
    assert_eq!(past.status(), 416);
    assert_eq!(past.headers()["content-range"].to_str().unwrap(), format!("bytes */{len}"));

    let missing = r.app.http.get(r.app.url(&format!("/releases/artifacts/{}", Sha256Digest::of(b"no")))).send().await;
    assert_eq!(missing.unwrap().status(), 404);
    let not_hex = r.app.http.get(r.app.url("/releases/artifacts/..%2F..%2Fetc%2Fpasswd")).send().await.unwrap();
    assert!(not_hex.status().is_client_error(), "{}", not_hex.status());
}

#[tokio::test]
async fn installs_reports_are_counted_and_rollbacks_pause_the_release() {
    let r = Releases::spawn_with_threshold(3).await;
    r.publish_version("1.5.0", |_| {}).await;
    for kind in ["checked", "downloaded", "verified", "applied", "first_run_ok"] {
        assert_eq!(r.event("1.5.0", "install-ok", kind, None).await.status(), 202, "{kind}");
    }
    let (status, field) = error_field(r.event("1.9.9", "install-ok", "checked", None).await).await;
    assert_eq!((status, field.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "version"));
    let (status, field) = error_field(r.event("1.5.0", "", "checked", None).await).await;
    assert_eq!((status, field.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "install_id"));
    let long = "x".repeat(501);
    let (status, field) = error_field(r.event("1.5.0", "i", "rolled_back", Some(&long)).await).await;
    assert_eq!((status, field.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "reason"));

    // The same install twice counts once towards the pause.
    for install in ["a", "a", "b"] {
        assert_eq!(r.event("1.5.0", install, "rolled_back", Some("health check timed out")).await.status(), 202);
    }
    assert_eq!(r.list().await[0]["state"], "active");
    assert_eq!(r.latest("1.0.0", "someone", false).await.status(), 200);
    assert_eq!(r.event("1.5.0", "c", "rolled_back", Some("crashed at start")).await.status(), 202);

    let list = r.list().await;
    assert_eq!(list[0]["state"], "paused");
    assert_eq!(list[0]["state_reason"], "rollbacks");
    assert_eq!(list[0]["events"]["first_run_ok"], 1);
    assert_eq!(list[0]["events"]["rolled_back"], 4);
    assert_eq!(r.latest("1.0.0", "someone", true).await.status(), 204, "a paused release is offered to nobody");
}

#[tokio::test]
async fn release_routes_check_the_operator_token_and_queries() {
    let r = Releases::spawn().await;
    for (method, path) in
        [(Method::GET, "/releases"), (Method::POST, "/releases"), (Method::POST, "/releases/1.0.0/pause")]
    {
        let response = r.app.http.request(method, r.app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }
    for (query, field) in [
        ("platform=amiga&current=1.0.0&install_id=i", "platform"),
        ("platform=linux-x86_64&current=one&install_id=i", "current"),
        ("platform=linux-x86_64&channel=nightly&current=1.0.0&install_id=i", "channel"),
        ("platform=linux-x86_64&current=1.0.0&install_id=", "install_id"),
    ] {
        let response = r.app.http.get(r.app.url(&format!("/releases/latest?{query}"))).send().await.unwrap();
        let (status, got) = error_field(response).await;
        assert!(status.is_client_error(), "{query}: {status}");
        assert_eq!(got, field, "{query}");
    }
}

#[tokio::test]
async fn reports_from_one_address_are_throttled_and_a_throttled_one_counts_nothing() {
    let r = Releases::spawn().await;
    r.publish_version("1.0.0", |_| {}).await;
    let mut accepted = 0;
    let mut throttled = 0;
    for i in 0..130 {
        match r.event("1.0.0", &format!("install-{i}"), "checked", None).await.status().as_u16() {
            202 => accepted += 1,
            429 => throttled += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(throttled > 0, "130 reports in a row from one address are throttled");
    assert_eq!(r.list().await[0]["events"]["checked"], accepted);
}

#[tokio::test]
async fn update_checks_from_one_address_are_capped_generously_per_minute() {
    // The default (3000 a minute) lets the 2,000 checks of the rollout test through; a cap of 5
    // shows the mechanism.
    let r = Releases::spawn_with(|s| s.checks_per_minute = 5).await;
    for i in 0..5 {
        assert_eq!(r.latest("1.0.0", &format!("install-{i}"), false).await.status(), 204);
    }
    let throttled = r.latest("1.0.0", "install-5", false).await;
    assert_eq!(throttled.status(), 429);
    assert!(throttled.headers().contains_key("retry-after"));
    let body: Value = throttled.json().await.unwrap();
    assert_eq!(body["error"], "throttled");
}

//! The updater against a real local HTTP server serving real bytes, with tampered variants:
//! each is refused or recovered, and the installed program is unchanged when refused.

use std::time::Duration;

use release::archive::{self, ArchiveInput};
use release::signing::{sign, signing_key_from_secret};
use release::{Manifest, Sha256Digest};
use time::macros::datetime;

use super::download::{self, DownloadError, RetryPolicy, Target};
use super::install::{self, Launch, PROGRAM_NAME};
use super::state::UpdateState;
use super::test_server::{Misbehaviour, TestServer};
use super::*;

const NOW: OffsetDateTime = datetime!(2026-12-04 12:00 UTC);

fn build() -> ThisBuild {
    ThisBuild { version: "1.0.0".parse().unwrap(), platform: Platform::LinuxX86_64, channel: Channel::Stable }
}

fn key() -> ed25519_dalek::SigningKey {
    signing_key_from_secret([3; 32])
}

fn trusted() -> TrustedKeys {
    TrustedKeys::from_keys([key().verifying_key()])
}

fn zip_of(program: &[u8]) -> Vec<u8> {
    archive::build(&[ArchiveInput { path: PROGRAM_NAME, bytes: program, executable: true }]).unwrap()
}

fn manifest(version: &str, zip: &[u8]) -> Manifest {
    Manifest {
        version: version.parse().unwrap(),
        channel: Channel::Stable,
        platform: Platform::LinuxX86_64,
        pub_date: datetime!(2026-12-01 00:00 UTC),
        expires: datetime!(2027-01-01 00:00 UTC),
        notes: String::new(),
        mandatory: false,
        min_supported: None,
        rollout_percent: 100,
        url: "/artifact.zip".into(),
        size: zip.len() as u64,
        sha256: Sha256Digest::of(zip),
    }
}

fn envelope_json(m: &Manifest, key: &ed25519_dalek::SigningKey) -> String {
    serde_json::to_string(&sign(m, key).unwrap()).unwrap()
}

fn fast() -> RetryPolicy {
    RetryPolicy { attempts: 4, first_backoff: Duration::from_millis(10), max_backoff: Duration::from_millis(50) }
}

struct Install {
    dir: tempfile::TempDir,
    state: UpdateState,
}

impl Install {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nexacore-desktop"), b"program 1.0.0").unwrap();
        let state = UpdateState::load_or_create(&dir.path().join("update-state.json")).unwrap();
        Self { dir, state }
    }
    fn state_file(&self) -> std::path::PathBuf {
        self.dir.path().join("update-state.json")
    }
    fn program(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("nexacore-desktop")).unwrap()
    }
    async fn check(&mut self, server: &TestServer) -> Result<Option<Offer>, CheckError> {
        let file = self.state_file();
        check(&reqwest::Client::new(), &server.base, build(), &trusted(), &mut self.state, &file, NOW, false).await
    }
    fn target(&self, server: &TestServer, m: &Manifest) -> Target {
        Target {
            url: server.artifact_url(),
            size: m.size,
            sha256: m.sha256,
            part: self.dir.path().join("release.zip.part"),
        }
    }
}

#[tokio::test]
async fn a_signed_newer_release_is_checked_downloaded_staged_swapped_and_committed() {
    let zip = zip_of(b"program 1.1.0");
    let server = TestServer::start(zip.clone()).await;
    let m = manifest("1.1.0", &zip);
    server.set(|s| s.envelope = Some(envelope_json(&m, &key())));
    let mut install = Install::new();

    let offer = install.check(&server).await.unwrap().expect("an offer");
    assert_eq!(offer.manifest, m);
    assert_eq!(offer.url, server.artifact_url());
    assert_eq!(UpdateState::load(&install.state_file()).highest_seen, "1.1.0", "persisted at once");

    let mut seen = Vec::new();
    let target = install.target(&server, &m);
    let path = download::download(&reqwest::Client::new(), &target, &fast(), |p| seen.push(p)).await.unwrap();
    assert_eq!(seen.last().map(|p| (p.done, p.total)), Some((m.size, m.size)));
    let staged = install::stage(&path, install.dir.path(), "1.1.0").unwrap();
    let program = install.dir.path().join("nexacore-desktop");
    let file = install.state_file();
    install::swap(&program, &staged, install.dir.path(), &file, &mut install.state, "1.0.0", "1.1.0").unwrap();
    assert_eq!(install.program(), b"program 1.1.0");
    assert_eq!(
        install::at_launch(&program, &file, &mut install.state, "").unwrap(),
        Launch::FirstRun { from: "1.0.0".into(), to: "1.1.0".into() }
    );
    assert!(install::commit(&file, &mut install.state).unwrap().is_some());
    assert!(
        report(&reqwest::Client::new(), &server.base, build(), &m.version, "i", ReleaseEventKind::FirstRunOk, None)
            .await
    );
}

#[tokio::test]
async fn tampered_replayed_expired_and_foreign_manifests_are_refused_and_nothing_changes() {
    let zip = zip_of(b"program 1.1.0");
    let server = TestServer::start(zip.clone()).await;
    let mut install = Install::new();

    let mut tampered: SignedRelease = sign(&manifest("1.1.0", &zip), &key()).unwrap();
    let other = sign(&manifest("1.2.0", &zip), &key()).unwrap();
    tampered.manifest = other.manifest;
    server.set(|s| s.envelope = Some(serde_json::to_string(&tampered).unwrap()));
    assert!(matches!(install.check(&server).await, Err(CheckError::Untrusted(VerifyError::BadSignature))));

    server.set(|s| s.envelope = Some(envelope_json(&manifest("1.1.0", &zip), &signing_key_from_secret([9; 32]))));
    assert!(matches!(install.check(&server).await, Err(CheckError::Untrusted(VerifyError::UnknownKey(_)))));

    let mut expired = manifest("1.1.0", &zip);
    expired.expires = datetime!(2026-12-02 00:00 UTC);
    server.set(|s| s.envelope = Some(envelope_json(&expired, &key())));
    assert!(matches!(install.check(&server).await, Err(CheckError::Refused(OfferError::Expired(_)))));

    server.set(|s| s.envelope = Some(envelope_json(&manifest("1.0.0", &zip), &key())));
    assert!(matches!(install.check(&server).await, Err(CheckError::Refused(OfferError::NotNewer { .. }))));
    assert_eq!(UpdateState::load(&install.state_file()).highest_seen, "", "nothing refused is remembered");

    // 1.3.0 was seen (and, say, rolled back); a validly signed 1.2.0 is now a replay.
    server.set(|s| s.envelope = Some(envelope_json(&manifest("1.3.0", &zip), &key())));
    assert!(install.check(&server).await.unwrap().is_some());
    server.set(|s| s.envelope = Some(envelope_json(&manifest("1.2.0", &zip), &key())));
    assert!(matches!(install.check(&server).await, Err(CheckError::Refused(OfferError::Replayed { .. }))));

    // A version that was rolled back here is not offered again by the quiet check; a manual one does.
    install.state.rolled_back.push("1.4.0".into());
    server.set(|s| s.envelope = Some(envelope_json(&manifest("1.4.0", &zip), &key())));
    assert!(install.check(&server).await.unwrap().is_none());
    let file = install.state_file();
    let manual =
        check(&reqwest::Client::new(), &server.base, build(), &trusted(), &mut install.state, &file, NOW, true).await;
    assert!(manual.unwrap().is_some());

    server.set(|s| s.envelope = None);
    assert!(install.check(&server).await.unwrap().is_none(), "204: nothing newer");
    assert_eq!(install.program(), b"program 1.0.0");
}

#[tokio::test]
async fn a_download_cut_short_resumes_with_a_range_and_completes() {
    let zip = zip_of(&b"program 1.1.0 ".repeat(20_000));
    let server = TestServer::start(zip.clone()).await;
    server.set(|s| s.misbehaviour = Misbehaviour::CutFirstBodyAt(1000));
    let install = Install::new();
    let target = install.target(&server, &manifest("1.1.0", &zip));
    let path = download::download(&reqwest::Client::new(), &target, &fast(), |_| {}).await.unwrap();
    assert_eq!(std::fs::read(path).unwrap(), zip);
    assert_eq!(server.ranges(), vec![None, Some("bytes=1000-".to_owned())]);
}

#[tokio::test]
async fn a_server_that_ignores_range_or_changed_the_file_gets_a_fresh_whole_download() {
    let zip = zip_of(&b"program 1.1.0 ".repeat(5000));
    let server = TestServer::start(zip.clone()).await;
    let install = Install::new();
    let target = install.target(&server, &manifest("1.1.0", &zip));

    // A part from an earlier run, and a server that ignores Range: the part is replaced, not appended to.
    std::fs::write(&target.part, &zip[..500]).unwrap();
    server.set(|s| s.misbehaviour = Misbehaviour::IgnoreRange);
    let path = download::download(&reqwest::Client::new(), &target, &fast(), |_| {}).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), zip);

    // A part of another file (its ETag no longer matches): If-Range makes the server send it whole.
    std::fs::write(&target.part, b"garbage from an older release").unwrap();
    std::fs::write(target.part.with_extension("part.etag"), "\"old\"").unwrap();
    server.set(|s| s.misbehaviour = Misbehaviour::None);
    let path = download::download(&reqwest::Client::new(), &target, &fast(), |_| {}).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), zip);
}

#[tokio::test]
async fn a_416_means_done_when_the_part_is_whole_and_a_fresh_start_when_it_is_not() {
    let zip = zip_of(&b"program 1.1.0 ".repeat(5000));
    let server = TestServer::start(zip.clone()).await;
    server.set(|s| s.misbehaviour = Misbehaviour::Always416);
    let install = Install::new();
    let target = install.target(&server, &manifest("1.1.0", &zip));

    std::fs::write(&target.part, &zip).unwrap();
    let path = download::download(&reqwest::Client::new(), &target, &fast(), |_| {}).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), zip);

    std::fs::write(&target.part, &zip[..100]).unwrap();
    let path = download::download(&reqwest::Client::new(), &target, &fast(), |_| {}).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), zip);
    assert_eq!(server.ranges().last(), Some(&None), "after the 416 it asked for the whole file");
}

#[tokio::test]
async fn an_artifact_whose_hash_or_size_differs_is_refused_and_removed_before_extraction() {
    let zip = zip_of(b"program 1.1.0");
    let mut evil = zip.clone();
    let middle = evil.len() / 2;
    evil[middle] ^= 0x55;
    let install = Install::new();
    let signed = manifest("1.1.0", &zip);

    let server = TestServer::start(evil.clone()).await;
    assert_eq!(evil.len(), zip.len());
    let target = install.target(&server, &signed);
    let err = download::download(&reqwest::Client::new(), &target, &fast(), |_| {}).await.unwrap_err();
    assert!(matches!(err, DownloadError::HashMismatch), "{err:?}");
    assert!(!target.part.exists());

    let mut longer = zip.clone();
    longer.extend_from_slice(b"trailing bytes");
    let server = TestServer::start(longer).await;
    let target = install.target(&server, &signed);
    let err = download::download(&reqwest::Client::new(), &target, &fast(), |_| {}).await.unwrap_err();
    assert!(matches!(err, DownloadError::TooLarge { .. }), "{err:?}");
    assert!(!target.part.exists());
    assert_eq!(install.program(), b"program 1.0.0");
}

#[tokio::test]
async fn an_unreachable_server_is_retried_a_bounded_number_of_times() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/artifact.zip", listener.local_addr().unwrap());
    drop(listener);
    let install = Install::new();
    let target =
        Target { url, size: 10, sha256: Sha256Digest::of(b"0123456789"), part: install.dir.path().join("x.part") };
    let err = download::download(&reqwest::Client::new(), &target, &fast(), |_| {}).await.unwrap_err();
    assert!(matches!(err, DownloadError::GaveUp { attempts: 4, .. }), "{err:?}");
}

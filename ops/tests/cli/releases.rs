//! `ops release …` against a real control plane (in this process, on the shared test server): a
//! key pair from `keygen`, a publish that the server verifies against that key, a refused
//! re-publish (exit 1 with the server's 409), and steering (rollout, pause, yank) seen in `list`.

use serde_json::Value;
use stack::Platform;

async fn ops(base: &str, token: &str, args: &[&str]) -> (i32, String, String) {
    crate::ops_at(base, token, &[&["release"], args].concat()).await
}

#[tokio::test]
async fn ops_release_keygen_publish_and_steer_a_release() {
    let keys = tempfile::tempdir().unwrap();
    let key_dir = keys.path().join("keys");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ops"))
        .args(["release", "keygen", "--out"])
        .arg(&key_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(key_dir.join("release.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the private key is readable by its owner only");
    }
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_ops"))
        .args(["release", "keygen", "--out"])
        .arg(&key_dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1), "an existing key is never overwritten");

    let public = std::fs::read_to_string(key_dir.join("release.pub")).unwrap();
    let trusted = release::TrustedKeys::from_pem(&public).unwrap();
    let storage = tempfile::tempdir().unwrap();
    let storage_path = storage.path().to_owned();
    let platform = Platform::builder_for_tests()
        .routers(0)
        .control_plane(move |c| {
            c.releases.dir = storage_path;
            c.releases.trusted_keys = trusted;
        })
        .start()
        .await
        .unwrap();
    let (base, token) = (platform.control_plane.url.clone(), platform.operator_token.clone());

    let program = keys.path().join("nexacore-desktop");
    std::fs::write(&program, b"\x7fELF a program".repeat(1000)).unwrap();
    let key = key_dir.join("release.key");
    let publish = |version: &'static str| {
        let (program, key) = (program.to_str().unwrap().to_owned(), key.to_str().unwrap().to_owned());
        let (base, token) = (base.clone(), token.clone());
        async move {
            ops(&base, &token, &["publish", "--version", version, "--file", &program, "--key", &key, "--rollout", "25"])
                .await
        }
    };
    let (code, out, err) = publish("1.2.0").await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("published 1.2.0"), "{out}");
    let (code, out, err) = publish("1.2.0").await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("409"), "{err}");

    let (code, out, err) = ops(&base, &token, &["rollout", "1.2.0", "--percent", "60"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = ops(&base, &token, &["pause", "1.2.0"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let (_, out, _) = ops(&base, &token, &["list", "--json"]).await;
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["version"], "1.2.0");
    assert_eq!(list[0]["rollout_percent"], 60);
    assert_eq!(list[0]["state"], "paused");

    let (code, _, _) = ops(&base, &token, &["yank", "1.2.0"]).await;
    assert_eq!(code, 0);
    let (code, _, err) = ops(&base, &token, &["resume", "1.2.0"]).await;
    assert_eq!(code, 1, "a yanked release cannot be resumed");
    assert!(err.contains("404"), "{err}");
    let (_, out, _) = ops(&base, &token, &["list"]).await;
    assert!(out.contains("yanked"), "{out}");
}

//! End to end on Linux: the real program updates itself against a real control plane.
//!
//! Version N is this build's program, copied into an install directory; version N+1 is the same
//! build with its build stamp saying N+1 (`build_stamp`: the machine code is this source's,
//! nothing is recompiled). Both carry the run's release key in their stamp, the key the control
//! plane is told to accept; the compiled-in keys stay as they are. N+1 is zipped, uploaded,
//! signed and published through the operator API, and `nexacore-desktop --update` — the
//! updater without a window, as a script runs it — does the rest: check, download, verify,
//! stage, self-test, swap, restart into N+1, first-run health, commit or roll back. Every
//! restart waits for its successor, so the first process's exit code is the chain's result.

use std::path::PathBuf;
use std::process::Command;

use api_types::Version;
use api_types::releases::{Channel, Platform};
use desktop_egui::app::{NexaApp, SettingsStore};
use desktop_egui::build_stamp::BuildStamp;
use desktop_egui::settings::Settings;
use desktop_egui::updater::install::PROGRAM_NAME;
use desktop_egui::updater::state::{Outcome, Phase, UpdateState};
use egui_kittest::kittest::Queryable;
use release::archive::{self, ArchiveInput};
use release::signing::{public_key_pem, sign, signing_key_from_secret};
use release::{Manifest, Sha256Digest, TrustedKeys};
use reqwest::Method;
use serde_json::Value;

use crate::helpers::*;

struct Install {
    stack: Stack,
    dir: tempfile::TempDir,
    current: Version,
}

/// The run's release key, version N and the zip of version N+1, made once per test process:
/// reading, stamping and zipping a debug build (~180 MB) is the slow part of these tests.
struct Builds {
    key: ed25519_dalek::SigningKey,
    current: Vec<u8>,
    next: Version,
    next_zip: Vec<u8>,
}

fn builds() -> &'static Builds {
    static BUILDS: std::sync::OnceLock<Builds> = std::sync::OnceLock::new();
    BUILDS.get_or_init(|| {
        let mut secret = [0u8; 32];
        secret[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        secret[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let key = signing_key_from_secret(secret);
        let program = std::fs::read(env!("CARGO_BIN_EXE_desktop-egui")).unwrap();
        let stamped = |version| {
            let release_key_pem = Some(public_key_pem(&key.verifying_key()).unwrap());
            BuildStamp { version, release_key_pem }.write_into(&program).expect("the program has one stamp slot")
        };
        let current: Version = desktop_egui::client_version().parse().unwrap();
        let next = Version { patch: current.patch + 1, ..current };
        let next_program = stamped(Some(next));
        let files = [ArchiveInput { path: PROGRAM_NAME, bytes: &next_program, executable: true }];
        let next_zip = archive::build(&files).unwrap();
        Builds { current: stamped(None), key, next, next_zip }
    })
}

impl Install {
    /// A stack that accepts the run's release key, and version N installed and pointed at it.
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let trusted = TrustedKeys::from_keys([builds().key.verifying_key()]);
        let releases = dir.path().join("releases");
        let stack = Stack::start_with(
            move |c| {
                c.releases.dir = releases;
                c.releases.trusted_keys = trusted;
            },
            |_| {},
        );
        let current = desktop_egui::client_version().parse().unwrap();
        let install = Self { stack, dir, current };
        std::fs::create_dir_all(install.dir.path().join("app")).unwrap();
        std::fs::write(install.program(), &builds().current).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(install.program(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let settings = Settings { server_url: install.stack.control_plane.clone(), ..Settings::default() };
        settings.save(&install.settings()).unwrap();
        install
    }

    fn program(&self) -> PathBuf {
        self.dir.path().join("app").join(PROGRAM_NAME)
    }

    fn settings(&self) -> PathBuf {
        self.dir.path().join("config").join("settings.json")
    }

    fn next(&self) -> Version {
        builds().next
    }

    /// Uploads, signs and publishes version N+1 on `channel` (this platform, everyone).
    fn publish(&self, channel: Channel) {
        let (zip, version) = (&builds().next_zip, builds().next);
        let sha256 = Sha256Digest::of(zip);
        let upload = self
            .stack
            .as_operator(Method::PUT, &format!("/releases/artifacts/{sha256}"))
            .header("content-type", "application/octet-stream")
            .body(zip.clone());
        let (status, answer) = self.stack.send(upload);
        assert_eq!(status, 201, "{answer}");
        let now = time::OffsetDateTime::now_utc();
        let manifest = Manifest {
            version,
            channel,
            platform: Platform::current().expect("a platform with releases"),
            pub_date: now,
            expires: now + time::Duration::days(30),
            notes: format!("Version {version}"),
            mandatory: false,
            min_supported: None,
            rollout_percent: 100,
            url: format!("/releases/artifacts/{sha256}"),
            size: zip.len() as u64,
            sha256,
        };
        let envelope = sign(&manifest, &builds().key).unwrap();
        let (status, answer) = self.stack.send(self.stack.as_operator(Method::POST, "/releases").json(&envelope));
        assert_eq!(status, 201, "{answer}");
    }

    /// `nexacore-desktop --update`, waited for with every restart it leads to: exit code, what
    /// it printed (the log on stderr goes into panic messages).
    fn update(&self, health_secs: Option<&str>) -> (i32, String) {
        let mut command = Command::new(self.program());
        command
            .arg("--update")
            .env("NEXACORE_DESKTOP_SETTINGS", self.settings())
            .env("NEXACORE_DESKTOP_LOG", self.dir.path().join("nexacore.log"))
            .env_remove("NEXACORE_UPDATE_HEALTH_SECS");
        if let Some(secs) = health_secs {
            command.env("NEXACORE_UPDATE_HEALTH_SECS", secs);
        }
        let out = command.output().unwrap();
        let code = out.status.code().unwrap_or(-1);
        if code != 0 {
            eprintln!("--update ended with {code}; its log:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        (code, String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// What the installed program says it is.
    fn installed_version(&self) -> String {
        let out = Command::new(self.program()).arg("--version").output().unwrap();
        String::from_utf8_lossy(&out.stdout).split_whitespace().last().unwrap_or_default().to_owned()
    }

    fn state(&self) -> UpdateState {
        UpdateState::load(&self.dir.path().join("config").join("updates").join("update-state.json"))
    }

    /// The installs' reports on `version`, as an operator sees them.
    fn events(&self, version: Version) -> Value {
        let (status, list) = self.stack.send(self.stack.as_operator(Method::GET, "/releases"));
        assert_eq!(status, 200, "{list}");
        let release = list.as_array().unwrap().iter().find(|r| r["version"] == version.to_string()).cloned();
        release.unwrap_or_else(|| panic!("{version} in {list}"))["events"].clone()
    }
}

#[test]
fn the_running_version_updates_itself_restarts_into_the_next_and_reports_first_run_ok() {
    let install = Install::start();
    let (current, next) = (install.current, install.next());
    assert_eq!(install.installed_version(), current.to_string());
    assert_eq!(install.update(None), (0, format!("NexaCore {current} is up to date\n")), "nothing published yet");

    install.publish(Channel::Stable);
    let (code, output) = install.update(None);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains(&format!("updated to {next}; it started and reached the platform")), "{output}");
    assert_eq!(install.installed_version(), next.to_string());
    let state = install.state();
    assert_eq!(state.phase, Phase::Idle);
    assert_eq!(state.last_outcome, Some(Outcome::Updated { from: current.to_string(), to: next.to_string() }));
    let events = install.events(next);
    for (kind, count) in [("downloaded", 1), ("verified", 1), ("applied", 1), ("first_run_ok", 1), ("rolled_back", 0)] {
        assert_eq!(events[kind], count, "{kind} in {events}");
    }
    // The previous version is kept beside the state file.
    let previous = install.dir.path().join("config").join("updates").join(format!("previous-{current}"));
    assert_eq!(std::fs::read(previous).unwrap(), builds().current);

    // Told once, and nothing newer is on offer now.
    let (code, output) = install.update(None);
    assert_eq!((code, output), (0, format!("updated from {current} to {next}\nNexaCore {next} is up to date\n")));
}

#[test]
fn a_next_version_that_is_not_healthy_in_time_is_rolled_back_and_the_previous_one_runs_again() {
    let install = Install::start();
    let (current, next) = (install.current, install.next());
    install.publish(Channel::Stable);
    // No first run can be healthy within 0 s: the watchdog's verdict, not a simulated crash.
    let (code, output) = install.update(Some("0"));
    assert_eq!(code, 1, "{output}");
    let reason = format!("version {next} did not report healthy within 0 s of its first start");
    assert!(
        output.contains(&format!("version {next} did not start properly and {current} is installed again: {reason}")),
        "{output}"
    );
    assert_eq!(install.installed_version(), current.to_string(), "the next launch is N again");
    let state = install.state();
    assert_eq!(state.phase, Phase::Idle);
    assert_eq!(state.rolled_back, vec![next.to_string()]);
    assert_eq!(state.last_outcome, None, "told once, by the run that started N again");
    let events = install.events(next);
    for (kind, count) in [("applied", 1), ("first_run_ok", 0), ("rolled_back", 1)] {
        assert_eq!(events[kind], count, "{kind} in {events}");
    }
}

#[test]
fn the_beta_channel_is_chosen_in_about_kept_in_the_settings_and_asked_for() {
    let install = Install::start();
    install.publish(Channel::Beta);
    let app = NexaApp::new(SettingsStore::File(install.settings()))
        .with_credentials(CredentialStore::Keyring { service: unique("nexacore-test-") });
    let mut app = egui_kittest::Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .build_ui_state(|ui, app: &mut NexaApp| app.ui(ui), app);
    app.state_mut().open_about();
    app.run();
    assert!(app.query_by_label("Channel: stable").is_some());
    click(&mut app, "Check for updates");
    wait_for_label(&mut app, "No newer version is published.");

    click(&mut app, "Beta (earlier, less proven)");
    assert!(app.query_by_label("Channel: beta").is_some());
    assert_eq!(Settings::load(&install.settings()).channel, Channel::Beta, "kept in the settings file");
    click(&mut app, "Check for updates");
    // The beta release is found; this (unstamped) test build does not trust the run's key.
    wait_for_label_containing(&mut app, "signed by an unknown key");
}

//! Staging, swapping and rolling back real files in a temporary directory.

use super::*;
use release::archive::ArchiveInput;

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        let case = Self { dir: tempfile::tempdir().unwrap() };
        std::fs::write(case.program(), b"version 1.0.0").unwrap();
        case
    }
    fn program(&self) -> PathBuf {
        self.dir.path().join("nexacore-desktop")
    }
    fn work(&self) -> PathBuf {
        let work = self.dir.path().join("updates");
        std::fs::create_dir_all(&work).unwrap();
        work
    }
    fn state_file(&self) -> PathBuf {
        self.dir.path().join("update-state.json")
    }
    fn zip(&self, files: &[ArchiveInput<'_>]) -> PathBuf {
        let path = self.work().join("release.zip");
        std::fs::write(&path, archive::build(files).unwrap()).unwrap();
        path
    }
}

#[test]
fn an_update_is_staged_swapped_committed_and_the_previous_version_kept() {
    let case = Case::new();
    let zip = case.zip(&[ArchiveInput { path: PROGRAM_NAME, bytes: b"version 1.1.0", executable: true }]);
    let staged = stage(&zip, &case.work(), "1.1.0").unwrap();
    let mut state = UpdateState::load_or_create(&case.state_file()).unwrap();
    swap(&case.program(), &staged, &case.work(), &case.state_file(), &mut state, "1.0.0", "1.1.0").unwrap();
    assert_eq!(std::fs::read(case.program()).unwrap(), b"version 1.1.0");
    assert_eq!(std::fs::read(case.work().join("previous-1.0.0")).unwrap(), b"version 1.0.0");

    // The new version's first start, then its health report.
    let mut state = UpdateState::load(&case.state_file());
    let launch = at_launch(&case.program(), &case.state_file(), &mut state, "unused").unwrap();
    assert_eq!(launch, Launch::FirstRun { from: "1.0.0".into(), to: "1.1.0".into() });
    assert_eq!(commit(&case.state_file(), &mut state).unwrap(), Some(("1.0.0".into(), "1.1.0".into())));
    let mut state = UpdateState::load(&case.state_file());
    assert_eq!(state.last_outcome, Some(Outcome::Updated { from: "1.0.0".into(), to: "1.1.0".into() }));
    assert_eq!(at_launch(&case.program(), &case.state_file(), &mut state, "unused").unwrap(), Launch::Normal);
    assert_eq!(std::fs::read(case.program()).unwrap(), b"version 1.1.0");
}

#[test]
fn a_first_run_that_never_reports_healthy_is_rolled_back_at_the_next_launch() {
    let case = Case::new();
    let zip = case.zip(&[ArchiveInput { path: PROGRAM_NAME, bytes: b"version 1.1.0 (broken)", executable: true }]);
    let staged = stage(&zip, &case.work(), "1.1.0").unwrap();
    let mut state = UpdateState::load_or_create(&case.state_file()).unwrap();
    swap(&case.program(), &staged, &case.work(), &case.state_file(), &mut state, "1.0.0", "1.1.0").unwrap();
    let mut state = UpdateState::load(&case.state_file());
    at_launch(&case.program(), &case.state_file(), &mut state, "unused").unwrap();
    // It crashed (or was killed) before reaching its main screen; the next launch:
    let mut state = UpdateState::load(&case.state_file());
    let reason = "version 1.1.0 did not reach its main screen within 60 s";
    let launch = at_launch(&case.program(), &case.state_file(), &mut state, reason).unwrap();
    assert_eq!(launch, Launch::RolledBack { from: "1.0.0".into(), to: "1.1.0".into(), reason: reason.into() });
    assert_eq!(std::fs::read(case.program()).unwrap(), b"version 1.0.0");
    let state = UpdateState::load(&case.state_file());
    assert_eq!(state.phase, Phase::Idle);
    assert!(matches!(state.last_outcome, Some(Outcome::RolledBack { .. })));
    assert_eq!(state.rolled_back, vec!["1.1.0".to_owned()], "never installed again by itself");
}

#[test]
fn a_release_that_cannot_be_staged_leaves_the_program_and_state_untouched() {
    let case = Case::new();
    let without_program = case.zip(&[ArchiveInput { path: "README.txt", bytes: b"hi", executable: false }]);
    assert!(matches!(stage(&without_program, &case.work(), "1.1.0"), Err(InstallError::NoProgram)));
    assert!(!case.work().join("staged-1.1.0").exists());
    std::fs::write(case.work().join("release.zip"), b"PK\x03\x04 not a zip").unwrap();
    assert!(matches!(stage(&case.work().join("release.zip"), &case.work(), "1.1.0"), Err(InstallError::Stage(_))));
    assert_eq!(std::fs::read(case.program()).unwrap(), b"version 1.0.0");
    assert!(!case.state_file().exists());
}

/// A real full disk: a 64 KiB tmpfs (the tests run as root here and in CI).
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_during_staging_leaves_nothing_behind_and_the_program_untouched() {
    struct Mounted(PathBuf);
    impl Drop for Mounted {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let case = Case::new();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let zip = case.zip(&[ArchiveInput { path: PROGRAM_NAME, bytes: &big, executable: true }]);
    let small = case.dir.path().join("small-disk");
    std::fs::create_dir(&small).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&small)
        .status()
        .expect("mount runs");
    assert!(status.success(), "this test needs to mount a tmpfs (root)");
    let _mounted = Mounted(small.clone());

    let err = stage(&zip, &small, "1.1.0").unwrap_err();
    assert!(
        matches!(&err, InstallError::Stage(archive::ArchiveError::Io(e)) if e.raw_os_error() == Some(28)),
        "{err:?}"
    );
    assert_eq!(std::fs::read_dir(&small).unwrap().count(), 0, "the partial staging directory is gone");
    assert_eq!(std::fs::read(case.program()).unwrap(), b"version 1.0.0");
}

#[cfg(unix)]
#[test]
fn a_staged_program_must_start_and_name_its_version_before_it_replaces_anything() {
    use std::os::unix::fs::PermissionsExt as _;
    let case = Case::new();
    let script = |name: &str, body: &str| {
        let path = case.work().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    };
    let limit = std::time::Duration::from_secs(30);
    let good = script("good", r#"[ "$1" = --version ] && echo "desktop-egui 1.1.0""#);
    assert!(self_test(&good, "1.1.0", limit).is_ok());
    let err = self_test(&good, "1.2.0", limit).unwrap_err().to_string();
    assert!(err.contains(r#"reports version "1.1.0", not 1.2.0"#), "{err}");
    let crashing = script("crashing", "exit 7");
    assert!(self_test(&crashing, "1.1.0", limit).unwrap_err().to_string().contains("exited with"));
    let not_a_program = case.work().join("data");
    std::fs::write(&not_a_program, b"\x00\x01 not a program").unwrap();
    assert!(self_test(&not_a_program, "1.1.0", limit).unwrap_err().to_string().contains("cannot be started"));
    assert_eq!(std::fs::read(case.program()).unwrap(), b"version 1.0.0", "the installed program is untouched");
}

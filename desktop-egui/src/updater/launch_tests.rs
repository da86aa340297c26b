//! The launch after a swap, with real files and a real local server taking the reports: the
//! watchdog commits a healthy first run, an unhealthy one is rolled back at the next start, and
//! the state file tells the previous version once what happened.

use std::sync::atomic::{AtomicBool, Ordering};

use api_types::releases::{Channel, Platform};
use release::archive::{self, ArchiveInput};

use super::*;
use crate::updater::install::{self, PROGRAM_NAME};
use crate::updater::state::Phase;
use crate::updater::test_server::TestServer;

struct Case {
    dir: tempfile::TempDir,
    paths: UpdatePaths,
    server: TestServer,
    _runtime: tokio::runtime::Runtime,
}

fn build(version: &str) -> ThisBuild {
    ThisBuild { version: version.parse().unwrap(), platform: Platform::LinuxX86_64, channel: Channel::Stable }
}

impl Case {
    /// Version 1.0.0 installed, then 1.1.0 swapped in.
    fn swapped() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let server = runtime.block_on(TestServer::start(Vec::new()));
        let dir = tempfile::tempdir().unwrap();
        let paths = UpdatePaths { dir: dir.path().join("updates") };
        let case = Self { dir, paths, server, _runtime: runtime };
        std::fs::write(case.program(), b"version 1.0.0").unwrap();
        let zip = case.dir.path().join("release.zip");
        let bytes = b"version 1.1.0";
        std::fs::write(&zip, archive::build(&[ArchiveInput { path: PROGRAM_NAME, bytes, executable: true }]).unwrap())
            .unwrap();
        let staged = install::stage(&zip, &case.paths.dir, "1.1.0").unwrap();
        let mut state = UpdateState::load_or_create(&case.paths.state_file()).unwrap();
        install::swap(
            &case.program(),
            &staged,
            &case.paths.dir,
            &case.paths.state_file(),
            &mut state,
            "1.0.0",
            "1.1.0",
        )
        .unwrap();
        case
    }

    fn program(&self) -> PathBuf {
        self.dir.path().join(PROGRAM_NAME)
    }

    fn start_as(&self, version: &str) -> Start {
        on_start(&self.program(), &self.paths, build(version), &self.server.base, Duration::from_secs(60))
    }

    fn state(&self) -> UpdateState {
        UpdateState::load(&self.paths.state_file())
    }

    fn watchdog(&self, deadline: Duration, healthy: bool) -> (Verdict, bool) {
        let flag: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(healthy)));
        let expired: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
        let report_to =
            ReportTo { server: self.server.base.clone(), build: build("1.1.0"), install_id: self.state().install_id };
        let watchdog = Watchdog::spawn(self.paths.state_file(), deadline, flag, report_to, || {
            expired.store(true, Ordering::SeqCst)
        });
        (watchdog.verdict(), expired.load(Ordering::SeqCst))
    }
}

#[test]
fn a_healthy_first_run_is_committed_reported_and_told_once() {
    let case = Case::swapped();
    let start = case.start_as("1.1.0");
    assert!(matches!(&start, Start::FirstRun { to, .. } if to == "1.1.0"), "{start:?}");
    assert!(matches!(case.state().phase, Phase::FirstRun { .. }));

    assert_eq!(case.watchdog(Duration::from_secs(60), true), (Verdict::Committed, false));
    assert_eq!(case.state().phase, Phase::Idle);
    let events = case.server.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].contains(r#""kind":"first_run_ok""#) && events[0].contains(r#""version":"1.1.0""#));

    let updated = Outcome::Updated { from: "1.0.0".into(), to: "1.1.0".into() };
    assert_eq!(case.start_as("1.1.0"), Start::Continue(Some(updated)));
    assert_eq!(case.start_as("1.1.0"), Start::Continue(None), "told once");
    assert_eq!(std::fs::read(case.program()).unwrap(), b"version 1.1.0");
}

#[test]
fn a_first_run_not_healthy_in_time_is_rolled_back_at_the_next_start_which_reports_why() {
    let case = Case::swapped();
    assert!(matches!(case.start_as("1.1.0"), Start::FirstRun { .. }));
    // A zero deadline: the verdict cannot be "healthy", whatever the scheduler does.
    assert_eq!(case.watchdog(Duration::ZERO, false), (Verdict::Expired, true));
    assert!(matches!(case.state().phase, Phase::FirstRun { .. }), "nothing committed");

    // The restart the expiry triggers (or the user's next launch after a crash) is the new
    // program again: it puts the previous one back and reports.
    assert_eq!(case.start_as("1.1.0"), Start::StartPrevious);
    assert_eq!(std::fs::read(case.program()).unwrap(), b"version 1.0.0");
    let state = case.state();
    assert_eq!(state.phase, Phase::Idle);
    assert_eq!(state.rolled_back, vec!["1.1.0".to_owned()]);
    let reason = "version 1.1.0 did not report healthy within 60 s of its first start";
    let events = case.server.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].contains(r#""kind":"rolled_back""#) && events[0].contains(reason), "{}", events[0]);

    // The previous version, started in its place, tells the user once.
    let told = Outcome::RolledBack { from: "1.0.0".into(), to: "1.1.0".into(), reason: reason.into() };
    assert_eq!(case.start_as("1.0.0"), Start::Continue(Some(told)));
    assert_eq!(case.start_as("1.0.0"), Start::Continue(None));
}

#[test]
fn a_first_start_that_is_not_the_swapped_in_version_is_rolled_back_at_once() {
    let case = Case::swapped();
    assert_eq!(case.start_as("1.0.5"), Start::StartPrevious);
    assert_eq!(std::fs::read(case.program()).unwrap(), b"version 1.0.0");
    match case.state().last_outcome {
        Some(Outcome::RolledBack { reason, .. }) => {
            assert_eq!(reason, "the installed program reports version 1.0.5, not 1.1.0")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn while_another_instance_holds_the_update_lock_the_start_leaves_the_files_alone() {
    let case = Case::swapped();
    let other = UpdateLock::acquire(&case.paths).unwrap();
    assert_eq!(case.start_as("1.1.0"), Start::Continue(None));
    assert!(matches!(case.state().phase, Phase::Swapped { .. }), "still waiting for its first start");
    drop(other);
    assert!(matches!(case.start_as("1.1.0"), Start::FirstRun { .. }));
}

#[test]
fn only_one_holder_of_the_update_lock_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let paths = UpdatePaths { dir: dir.path().join("updates") };
    let first = UpdateLock::acquire(&paths).unwrap();
    assert!(matches!(UpdateLock::acquire(&paths), Err(LockError::Busy)));
    drop(first);
    assert!(UpdateLock::acquire(&paths).is_ok(), "released with its holder");
}

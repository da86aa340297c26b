//! What the program does about updates when it starts, before any window opens.
//!
//! - After a swap (`Swapped`), this is the new version's first start: a watchdog thread gives it
//!   `NEXACORE_UPDATE_HEALTH_SECS` (default 60) to reach its first screen ([`mark_healthy`]).
//!   Reached: the update is committed and `first_run_ok` reported. Not reached (hung): the
//!   program starts itself again and exits, and that next launch rolls back. A crash or a kill
//!   leaves `FirstRun` in the state file too, so the next launch rolls back all the same.
//! - Finding `FirstRun` at start: the previous version is put back, `rolled_back` is reported
//!   with the reason, and the previous version is started in this one's place; it shows the
//!   user what happened (the state file's `last_outcome`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use api_types::releases::ReleaseEventKind;

use super::install::{self, Launch};
use super::state::{Outcome, UpdateState};
use super::{ThisBuild, report};

static HEALTHY: AtomicBool = AtomicBool::new(false);

/// The app reached its first screen.
pub fn mark_healthy() {
    HEALTHY.store(true, Ordering::SeqCst);
}

/// Where the updater keeps its files: the state file, downloads, staged and previous versions.
#[derive(Debug, Clone)]
pub struct UpdatePaths {
    pub dir: PathBuf,
}

impl UpdatePaths {
    /// Beside the settings file, or a temporary directory when there is none.
    pub fn beside(settings_file: Option<&Path>) -> Self {
        let base = settings_file.and_then(Path::parent).map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir);
        Self { dir: base.join("updates") }
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.join("update-state.json")
    }
}

/// Held while an update is being applied or finished: a second instance of the app (or a second
/// click) cannot download over, swap or roll back the same files at the same time. An OS file
/// lock, so a killed holder releases it with its process.
#[derive(Debug)]
pub struct UpdateLock {
    _file: std::fs::File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another NexaCore window is updating")]
    Busy,
    #[error("cannot lock the update directory: {0}")]
    Io(#[from] std::io::Error),
}

impl UpdateLock {
    pub fn acquire(paths: &UpdatePaths) -> Result<Self, LockError> {
        std::fs::create_dir_all(&paths.dir)?;
        let file =
            std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(paths.dir.join("update.lock"))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Busy),
            Err(std::fs::TryLockError::Error(e)) => Err(LockError::Io(e)),
        }
    }
}

fn health_deadline() -> Duration {
    let secs = std::env::var("NEXACORE_UPDATE_HEALTH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    Duration::from_secs(secs)
}

/// Runs first in `main`. Returns the outcome the user should be told about, if any.
pub fn on_start(paths: &UpdatePaths, build: ThisBuild, server: &str) -> Option<Outcome> {
    let program = std::env::current_exe().ok()?;
    // Another instance is mid-update: leave its files alone.
    let lock = UpdateLock::acquire(paths).ok()?;
    let state_file = paths.state_file();
    let mut state = UpdateState::load_or_create(&state_file).ok()?;
    let deadline = health_deadline();
    let reason = format!("version did not reach its first screen within {} s", deadline.as_secs());
    match install::at_launch(&program, &state_file, &mut state, &reason) {
        Ok(Launch::Normal) => {
            // Told once: the outcome is cleared from the file when shown.
            let outcome = state.last_outcome.take();
            if outcome.is_some() {
                let _ = state.save(&state_file);
            }
            outcome
        }
        Ok(Launch::FirstRun { from, to }) => {
            let (server, install_id) = (server.to_owned(), state.install_id.clone());
            std::thread::spawn(move || watchdog(program, state_file, deadline, build, server, install_id, from, to));
            None
        }
        Ok(Launch::RolledBack { from: _, to, reason }) => {
            let version = to.parse().ok();
            if let Some(version) = version {
                block_on(report(
                    &reqwest::Client::new(),
                    server,
                    build,
                    &version,
                    &state.install_id,
                    ReleaseEventKind::RolledBack,
                    Some(reason),
                ));
            }
            // This process is the failed version; the previous one is back in its file and
            // starts in its place (the lock released first, so it can show what happened).
            drop(lock);
            relaunch_and_exit(&program);
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot finish or undo the last update");
            None
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn watchdog(
    program: PathBuf,
    state_file: PathBuf,
    deadline: Duration,
    build: ThisBuild,
    server: String,
    install_id: String,
    _from: String,
    to: String,
) {
    let started = Instant::now();
    while started.elapsed() < deadline {
        if HEALTHY.load(Ordering::SeqCst) {
            let mut state = UpdateState::load(&state_file);
            if install::commit(&state_file, &mut state).is_ok()
                && let Ok(version) = to.parse()
            {
                let client = reqwest::Client::new();
                block_on(report(&client, &server, build, &version, &install_id, ReleaseEventKind::FirstRunOk, None));
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    tracing::error!("the new version did not reach its first screen in time; restarting to roll back");
    relaunch_and_exit(&program);
}

fn relaunch_and_exit(program: &Path) -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let _ = std::process::Command::new(program).args(args).spawn();
    std::process::exit(3);
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime").block_on(future)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_holder_of_the_update_lock_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let paths = UpdatePaths { dir: dir.path().join("updates") };
        let first = UpdateLock::acquire(&paths).unwrap();
        assert!(matches!(UpdateLock::acquire(&paths), Err(LockError::Busy)));
        drop(first);
        assert!(UpdateLock::acquire(&paths).is_ok(), "released with its holder");
    }
}

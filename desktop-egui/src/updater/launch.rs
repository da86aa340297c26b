//! What the program does about updates when it starts, before any window opens.
//!
//! - After a swap (`Swapped`), this is the new version's first start: first it checks that it
//!   is the version the swap installed, then a watchdog thread gives it
//!   `NEXACORE_UPDATE_HEALTH_SECS` (default 60) to report healthy — the window reached its first
//!   screen ([`mark_healthy`]), or without a window, the platform answered its update check.
//!   Healthy: the update is committed and `first_run_ok` reported. Not healthy in time (hung): the
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
use super::state::{Outcome, Phase, UpdateState};
use super::{ThisBuild, report};

static HEALTHY: AtomicBool = AtomicBool::new(false);

/// The app reached its first screen (or, without a window, the platform answered).
pub fn mark_healthy() {
    HEALTHY.store(true, Ordering::SeqCst);
}

/// The flag [`mark_healthy`] sets, for the watchdog of this process.
pub fn health_flag() -> &'static AtomicBool {
    &HEALTHY
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

/// This program's file as it was when the process started (`main` asks first thing). After a
/// swap, `current_exe` names the replaced file (on Linux "… (deleted)"), not the path where the
/// new version now is.
pub fn program_path() -> Option<&'static Path> {
    static PATH: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    PATH.get_or_init(|| std::env::current_exe().ok()).as_deref()
}

/// `NEXACORE_UPDATE_HEALTH_SECS`, default 60.
pub fn health_deadline() -> Duration {
    let secs = std::env::var("NEXACORE_UPDATE_HEALTH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    Duration::from_secs(secs)
}

/// What the start found and what the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Go on; tell the user about the last update, if there is something to tell (told once).
    Continue(Option<Outcome>),
    /// The first start of a new version: run [`Watchdog`] until healthy.
    FirstRun { to: String, install_id: String },
    /// The previous version is back in the program's file (and the rollback reported): start
    /// it in this one's place.
    StartPrevious,
}

/// Finishes or undoes the last update: runs first, before any window.
pub fn on_start(program: &Path, paths: &UpdatePaths, build: ThisBuild, server: &str, deadline: Duration) -> Start {
    // Another instance is mid-update: leave its files alone.
    let Ok(_lock) = UpdateLock::acquire(paths) else { return Start::Continue(None) };
    let state_file = paths.state_file();
    let Ok(mut state) = UpdateState::load_or_create(&state_file) else { return Start::Continue(None) };
    // Used only if this start finds a first run that never reported healthy.
    let unhealthy = match &state.phase {
        Phase::Swapped { to, .. } | Phase::FirstRun { to, .. } => {
            format!("version {to} did not report healthy within {} s of its first start", deadline.as_secs())
        }
        Phase::Idle => String::new(),
    };
    let mut launch = install::at_launch(program, &state_file, &mut state, &unhealthy);
    // The swap must have put the promised version in place; anything else is rolled back at once.
    let wrong = match &launch {
        Ok(Launch::FirstRun { to, .. }) if *to != build.version.to_string() => {
            Some(format!("the installed program reports version {}, not {to}", build.version))
        }
        _ => None,
    };
    if let Some(wrong) = wrong {
        launch = install::at_launch(program, &state_file, &mut state, &wrong);
    }
    match launch {
        Ok(Launch::Normal) => {
            let outcome = state.last_outcome.take();
            if outcome.is_some() {
                let _ = state.save(&state_file);
            }
            Start::Continue(outcome)
        }
        Ok(Launch::FirstRun { from: _, to }) => Start::FirstRun { to, install_id: state.install_id.clone() },
        Ok(Launch::RolledBack { from: _, to, reason }) => {
            if let Ok(version) = to.parse() {
                let http = reqwest::Client::new();
                let event = ReleaseEventKind::RolledBack;
                block_on(report(&http, server, build, &version, &state.install_id, event, Some(reason)));
            }
            Start::StartPrevious
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot finish or undo the last update");
            Start::Continue(None)
        }
    }
}

/// The first run's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Healthy in time: committed, `first_run_ok` reported.
    Committed,
    /// Not healthy in time: the expiry action ran (in the program, it restarts to roll back).
    Expired,
}

/// Watches a first run from its own thread: it commits the update once `healthy` is set, or
/// runs `on_expiry` when the deadline passes first.
pub struct Watchdog {
    thread: std::thread::JoinHandle<Verdict>,
}

/// Whom the watchdog reports `first_run_ok` to.
#[derive(Debug, Clone)]
pub struct ReportTo {
    pub server: String,
    pub build: ThisBuild,
    pub install_id: String,
}

impl Watchdog {
    pub fn spawn(
        state_file: PathBuf,
        deadline: Duration,
        healthy: &'static AtomicBool,
        report_to: ReportTo,
        on_expiry: impl FnOnce() + Send + 'static,
    ) -> Self {
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            while started.elapsed() < deadline {
                if healthy.load(Ordering::SeqCst) {
                    let mut state = UpdateState::load(&state_file);
                    if let Ok(Some((_, to))) = install::commit(&state_file, &mut state)
                        && let Ok(version) = to.parse()
                    {
                        let ReportTo { server, build, install_id } = &report_to;
                        let (http, event) = (reqwest::Client::new(), ReleaseEventKind::FirstRunOk);
                        block_on(report(&http, server, *build, &version, install_id, event, None));
                    }
                    return Verdict::Committed;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            tracing::error!("the new version did not report healthy in time; restarting to roll back");
            on_expiry();
            Verdict::Expired
        });
        Self { thread }
    }

    /// Waits for the verdict.
    pub fn verdict(self) -> Verdict {
        self.thread.join().unwrap_or(Verdict::Expired)
    }
}

/// What `main` does first with a window: returns what to tell the user, or does not return
/// (the previous version starts in this one's place).
pub fn at_program_start(paths: &UpdatePaths, build: ThisBuild, server: &str) -> Option<Outcome> {
    let program = program_path()?.to_owned();
    let deadline = health_deadline();
    match on_start(&program, paths, build, server, deadline) {
        Start::Continue(outcome) => outcome,
        Start::FirstRun { to: _, install_id } => {
            let report_to = ReportTo { server: server.to_owned(), build, install_id };
            let again = program.clone();
            // Detached: the window's first frame sets the flag.
            let _ = Watchdog::spawn(paths.state_file(), deadline, health_flag(), report_to, move || {
                relaunch_and_exit(&again)
            });
            None
        }
        Start::StartPrevious => relaunch_and_exit(&program),
    }
}

/// Starts `program` again with this process's arguments and ends this one (a window app does
/// not wait for its successor).
pub fn relaunch_and_exit(program: &Path) -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let _ = std::process::Command::new(program).args(args).spawn();
    std::process::exit(3);
}

/// Starts `program` again with this process's arguments, waits for it and ends with its exit
/// code (what a script running `--update` waits for).
pub fn run_again_and_exit(program: &Path) -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = std::process::Command::new(program).args(args).status().ok().and_then(|s| s.code()).unwrap_or(1);
    std::process::exit(code);
}

pub(super) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime").block_on(future)
}

#[cfg(test)]
#[path = "launch_tests.rs"]
mod tests;

//! `desktop-egui --update`: the updater without a window, for scripts and fleet tools (and the
//! end-to-end test). The same steps as the window's "Update now", the same launch handling and
//! the same watchdog; only the health signal differs, as there is no screen to reach: the new
//! version is healthy once the platform answered its update check (the manifest verified, or
//! nothing newer).
//!
//! Every restart here waits for its successor and ends with its exit code, so whoever started
//! `--update` learns the final result: 0 updated (and healthy) or already up to date, 1 failed
//! or rolled back (the previous version is installed again).

use std::path::Path;

use super::launch::{self, ReportTo, Start, UpdatePaths, Verdict, Watchdog};
use super::state::{Outcome, UpdateState};
use super::{ThisBuild, check, install_offer};

/// The flag `--update` on the command line.
pub const FLAG: &str = "--update";

/// Runs `--update` and answers the exit code (or does not return: a restart took over).
pub fn run(paths: &UpdatePaths, build: ThisBuild, server: &str) -> i32 {
    let Some(program) = launch::program_path() else { return 1 };
    let deadline = launch::health_deadline();
    match launch::on_start(program, paths, build, server, deadline) {
        Start::StartPrevious => launch::run_again_and_exit(program),
        Start::FirstRun { to, install_id } => first_run(program, paths, build, server, deadline, &to, install_id),
        Start::Continue(Some(Outcome::RolledBack { from, to, reason })) => {
            println!("version {to} did not start properly and {from} is installed again: {reason}");
            1
        }
        Start::Continue(outcome) => {
            if let Some(Outcome::Updated { from, to }) = outcome {
                println!("updated from {from} to {to}");
            }
            update(program, paths, build, server)
        }
    }
}

fn first_run(
    program: &Path,
    paths: &UpdatePaths,
    build: ThisBuild,
    server: &str,
    deadline: std::time::Duration,
    to: &str,
    install_id: String,
) -> i32 {
    let report_to = ReportTo { server: server.to_owned(), build, install_id };
    let again = program.to_owned();
    let watchdog = Watchdog::spawn(paths.state_file(), deadline, launch::health_flag(), report_to, move || {
        launch::run_again_and_exit(&again)
    });
    let file = paths.state_file();
    let mut state = UpdateState::load(&file);
    let keys = crate::build_stamp::trusted_keys();
    let now = time::OffsetDateTime::now_utc();
    let answered =
        launch::block_on(check(&reqwest::Client::new(), server, build, &keys, &mut state, &file, now, false));
    match answered {
        Ok(_) => launch::mark_healthy(),
        // Not healthy: the watchdog's deadline decides (restart, roll back).
        Err(e) => eprintln!("version {to} cannot reach the platform: {e}"),
    }
    match watchdog.verdict() {
        Verdict::Committed => {
            println!("updated to {to}; it started and reached the platform");
            0
        }
        Verdict::Expired => 1,
    }
}

fn update(program: &Path, paths: &UpdatePaths, build: ThisBuild, server: &str) -> i32 {
    let file = paths.state_file();
    let mut state = match UpdateState::load_or_create(&file) {
        Ok(state) => state,
        Err(e) => {
            eprintln!("cannot read the update state: {e}");
            return 1;
        }
    };
    let keys = crate::build_stamp::trusted_keys();
    let now = time::OffsetDateTime::now_utc();
    let http = reqwest::Client::new();
    // Asked for explicitly, like "Check for updates": the rollout percentage does not hold it back.
    let offer = match launch::block_on(check(&http, server, build, &keys, &mut state, &file, now, true)) {
        Ok(Some(offer)) => offer,
        Ok(None) => {
            println!("NexaCore {} is up to date", build.version);
            return 0;
        }
        Err(e) => {
            eprintln!("cannot check for updates: {e}");
            return 1;
        }
    };
    let version = offer.manifest.version;
    println!("downloading version {version} ({} bytes)", offer.manifest.size);
    match launch::block_on(install_offer(&http, server, build, &offer, paths, |_| {})) {
        Ok(()) => {
            println!("version {version} is installed; starting it");
            launch::run_again_and_exit(program)
        }
        Err(e) => {
            eprintln!("version {version} was not installed (NexaCore is unchanged): {e}");
            1
        }
    }
}

//! Putting a verified release in place, and taking it back out.
//!
//! `stage` extracts the verified zip into a fresh directory (the `release` crate's safe
//! extraction: only the signed list's files; nothing is left on failure, a full disk included).
//! `swap` keeps the running program as `previous` (a copy, synced) before replacing it, records
//! `Swapped` in the state file, and only then replaces the program atomically: a crash at any
//! point leaves either the old program, or the new one with the old one kept and the state
//! saying so. `at_launch` runs first thing at every start: it moves `Swapped` to `FirstRun`, or,
//! finding `FirstRun` (the new program's first start never reported healthy), puts `previous`
//! back and records why.

use std::path::{Path, PathBuf};

use release::archive::{self, ExtractLimits};

use super::state::{Outcome, Phase, UpdateState};

/// The program's name inside a release zip (what `ops release publish` writes).
pub const PROGRAM_NAME: &str = "nexacore-desktop";

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("the release cannot be unpacked: {0}")]
    Stage(#[from] archive::ArchiveError),
    #[error("the release has no {PROGRAM_NAME}")]
    NoProgram,
    #[error("the new program does not start properly: {0}")]
    SelfTest(String),
    #[error("cannot replace the program: {0}")]
    Io(#[from] std::io::Error),
}

/// Unpacks `zip` into `dir/staged-<version>` (removed first if an earlier try left it).
pub fn stage(zip: &Path, dir: &Path, version: &str) -> Result<PathBuf, InstallError> {
    let staged = dir.join(format!("staged-{version}"));
    if staged.exists() {
        std::fs::remove_dir_all(&staged)?;
    }
    let list = archive::extract(zip, &staged, &ExtractLimits::default())?;
    if !list.files.iter().any(|f| f.path == PROGRAM_NAME) {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(InstallError::NoProgram);
    }
    Ok(staged.join(PROGRAM_NAME))
}

/// Runs the staged program with `--version` before it replaces anything: it must start, answer
/// within `limit` and name `version`. A release that cannot even start (a broken or foreign
/// build, a missing library) is refused here, while the installed program is still whole — the
/// first-run watchdog cannot help a program that never gets as far as running it.
pub fn self_test(staged: &Path, version: &str, limit: std::time::Duration) -> Result<(), InstallError> {
    let fail = |why: String| InstallError::SelfTest(why);
    let mut child = std::process::Command::new(staged)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| fail(format!("it cannot be started ({e})")))?;
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!("`--version` did not answer within {} s", limit.as_secs())));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        use std::io::Read as _;
        let _ = stdout.read_to_string(&mut out);
    }
    let named = out.split_whitespace().last().unwrap_or_default();
    if !status.success() {
        return Err(fail(format!("`--version` exited with {status}")));
    }
    if named != version {
        return Err(fail(format!("it reports version {named:?}, not {version}")));
    }
    Ok(())
}

/// Replaces `program` with `new_program`, keeping the old one at `dir/previous-<from>`.
pub fn swap(
    program: &Path,
    new_program: &Path,
    dir: &Path,
    state_file: &Path,
    state: &mut UpdateState,
    from: &str,
    to: &str,
) -> Result<(), InstallError> {
    let previous = dir.join(format!("previous-{from}"));
    copy_synced(program, &previous)?;
    state.phase = Phase::Swapped { from: from.into(), to: to.into(), previous: previous.clone() };
    state.save(state_file)?;
    replace(program, new_program)?;
    Ok(())
}

/// What the launch found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// Nothing pending.
    Normal,
    /// First start of a new version: report healthy within the deadline, or the next launch
    /// rolls back.
    FirstRun { from: String, to: String },
    /// The previous version is back in place; start it instead of this one.
    RolledBack { from: String, to: String, reason: String },
}

/// Runs before anything else at start-up.
pub fn at_launch(program: &Path, state_file: &Path, state: &mut UpdateState, reason: &str) -> std::io::Result<Launch> {
    match state.phase.clone() {
        Phase::Idle => Ok(Launch::Normal),
        Phase::Swapped { from, to, previous } => {
            state.phase = Phase::FirstRun { from: from.clone(), to: to.clone(), previous };
            state.save(state_file)?;
            Ok(Launch::FirstRun { from, to })
        }
        Phase::FirstRun { from, to, previous } => {
            replace(program, &previous)?;
            state.phase = Phase::Idle;
            state.rolled_back.push(to.clone());
            state.last_outcome =
                Some(Outcome::RolledBack { from: from.clone(), to: to.clone(), reason: reason.into() });
            state.save(state_file)?;
            Ok(Launch::RolledBack { from, to, reason: reason.into() })
        }
    }
}

/// The new version reached its main screen: the update is committed.
pub fn commit(state_file: &Path, state: &mut UpdateState) -> std::io::Result<Option<(String, String)>> {
    let Phase::FirstRun { from, to, previous: _ } = state.phase.clone() else { return Ok(None) };
    state.phase = Phase::Idle;
    state.last_outcome = Some(Outcome::Updated { from: from.clone(), to: to.clone() });
    state.save(state_file)?;
    Ok(Some((from, to)))
}

fn copy_synced(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::copy(from, to)?;
    std::fs::File::open(to)?.sync_all()
}

/// Atomic replacement of `program` by a copy of `with`: copy beside it, sync, then rename over
/// it (on Unix a running executable may be renamed over). Windows cannot rename over or delete a
/// running executable: there `self-replace` moves the running file aside (deleted once it exits)
/// and puts the new one at its path. Only the Unix branch is exercised by this repository's tests.
fn replace(program: &Path, with: &Path) -> std::io::Result<()> {
    if cfg!(unix) {
        let dir = program.parent().unwrap_or(Path::new("."));
        let temp = dir.join(format!(".nexacore-swap-{}", uuid::Uuid::new_v4().simple()));
        copy_synced(with, &temp)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o755))?;
        }
        std::fs::rename(&temp, program).inspect_err(|_| {
            let _ = std::fs::remove_file(&temp);
        })
    } else if super::launch::program_path().is_some_and(|me| me == program) {
        self_replace::self_replace(with)
    } else {
        std::fs::copy(with, program).map(|_| ())
    }
}

#[cfg(test)]
#[path = "install_tests.rs"]
mod tests;

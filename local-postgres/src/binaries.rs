//! Finding the PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`) and the dump tools
//! (`pg_dump`, `pg_restore`) on this machine.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ClusterError;
use crate::process::{describe, run};

/// Overrides the search, for machines with several PostgreSQL versions installed.
const BINDIR_ENV: &str = "NEXACORE_PG_BINDIR";

/// Where Debian and Ubuntu install the server binaries, one directory per major version,
/// deliberately not on PATH (only client wrappers are).
const DEBIAN_VERSIONED_ROOT: &str = "/usr/lib/postgresql";

const SERVER_PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

/// A directory holding `initdb`, `pg_ctl` and `postgres`, and the major version they are.
#[derive(Clone, Debug)]
pub struct PgBinaries {
    bin_dir: PathBuf,
    major_version: u32,
}

impl PgBinaries {
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    pub fn initdb(&self) -> PathBuf {
        self.bin_dir.join("initdb")
    }

    pub fn pg_ctl(&self) -> PathBuf {
        self.bin_dir.join("pg_ctl")
    }

    pub fn postgres(&self) -> PathBuf {
        self.bin_dir.join("postgres")
    }

    /// E.g. 15 for PostgreSQL 15.14; a data directory only works with its own major version.
    pub fn major_version(&self) -> u32 {
        self.major_version
    }
}

/// Where the server binaries live: `$NEXACORE_PG_BINDIR` when set; else the directory on PATH
/// holding all of `initdb`, `pg_ctl` and `postgres`; else the newest `/usr/lib/postgresql/*/bin`.
///
/// The error names the package to install.
pub fn find_binaries() -> Result<PgBinaries, ClusterError> {
    let bin_dir = locate(
        std::env::var_os(BINDIR_ENV).as_deref(),
        std::env::var_os("PATH").as_deref(),
        Path::new(DEBIAN_VERSIONED_ROOT),
    )
    .ok_or(ClusterError::BinariesNotFound)?;
    let major_version = major_version(&bin_dir.join("postgres"))?;
    Ok(PgBinaries { bin_dir, major_version })
}

/// `pg_dump` and `pg_restore` from one directory, and what `pg_dump --version` says.
#[derive(Clone, Debug)]
pub struct DumpTools {
    bin_dir: PathBuf,
    version: String,
}

impl DumpTools {
    pub fn pg_dump(&self) -> PathBuf {
        self.bin_dir.join("pg_dump")
    }

    pub fn pg_restore(&self) -> PathBuf {
        self.bin_dir.join("pg_restore")
    }

    /// E.g. "pg_dump (PostgreSQL) 15.14 (Debian 15.14-1)", for backup manifests.
    pub fn version(&self) -> &str {
        &self.version
    }
}

const DUMP_PROGRAMS: [&str; 2] = ["pg_dump", "pg_restore"];

/// Where `pg_dump` and `pg_restore` live: `$NEXACORE_PG_BINDIR` when set; else the newest
/// `/usr/lib/postgresql/*/bin` (a dump tool must be at least the server's version, and the
/// newest one reads every older server); else the first directory on PATH holding both.
/// The same search as [`find_binaries`], so a machine that runs the platform needs no step more.
pub fn find_dump_tools() -> Result<DumpTools, ClusterError> {
    let override_dir = std::env::var_os(BINDIR_ENV).filter(|dir| !dir.is_empty());
    let bin_dir = match override_dir {
        Some(dir) => Some(PathBuf::from(dir)).filter(|dir| has_programs(dir, &DUMP_PROGRAMS)),
        None => newest_versioned_dir_with(Path::new(DEBIAN_VERSIONED_ROOT), &DUMP_PROGRAMS).or_else(|| {
            std::env::var_os("PATH")
                .as_deref()
                .into_iter()
                .flat_map(std::env::split_paths)
                .find(|dir| has_programs(dir, &DUMP_PROGRAMS))
        }),
    }
    .ok_or(ClusterError::DumpToolsNotFound)?;
    let mut command = Command::new(bin_dir.join("pg_dump"));
    command.arg("--version");
    let output = run(&mut command)?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    Ok(DumpTools { bin_dir, version })
}

/// The search itself, with its inputs passed in so tests can point it at nothing.
fn locate(override_dir: Option<&OsStr>, path: Option<&OsStr>, versioned_root: &Path) -> Option<PathBuf> {
    if let Some(dir) = override_dir.filter(|dir| !dir.is_empty()) {
        // An explicit choice that does not work is reported, not silently replaced by another.
        let dir = PathBuf::from(dir);
        return has_server_programs(&dir).then_some(dir);
    }
    if let Some(dir) = path.into_iter().flat_map(std::env::split_paths).find(|dir| has_server_programs(dir)) {
        return Some(dir);
    }
    newest_versioned_bin_dir(versioned_root)
}

/// The `<root>/<version>/bin` with the highest version that holds the server programs.
fn newest_versioned_bin_dir(root: &Path) -> Option<PathBuf> {
    newest_versioned_dir_with(root, &SERVER_PROGRAMS)
}

fn newest_versioned_dir_with(root: &Path, programs: &[&str]) -> Option<PathBuf> {
    std::fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = parse_version(entry.file_name().to_str()?)?;
            let bin_dir = entry.path().join("bin");
            has_programs(&bin_dir, programs).then_some((version, bin_dir))
        })
        .max()
        .map(|(_, bin_dir)| bin_dir)
}

/// "15" → [15], "9.6" → [9, 6]; anything else is not a version directory.
fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

fn has_server_programs(dir: &Path) -> bool {
    has_programs(dir, &SERVER_PROGRAMS)
}

fn has_programs(dir: &Path, programs: &[&str]) -> bool {
    programs.iter().all(|program| dir.join(program).is_file())
}

/// Asks `postgres --version` ("postgres (PostgreSQL) 15.14 (Debian …)") for its major version.
fn major_version(postgres: &Path) -> Result<u32, ClusterError> {
    let mut command = Command::new(postgres);
    command.arg("--version");
    let output = run(&mut command)?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_once("(PostgreSQL)")
        .and_then(|(_, rest)| {
            let digits: String = rest.trim_start().chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .ok_or_else(|| ClusterError::UnexpectedOutput { command: describe(&command), output: text.into_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_found_gives_an_error_that_names_the_packages_to_install() {
        let found = locate(None, Some(OsStr::new("/nonexistent/a:/nonexistent/b")), Path::new("/nonexistent"));
        assert_eq!(found, None);
        let message = ClusterError::BinariesNotFound.to_string();
        for install in ["apt install postgresql", "dnf install postgresql-server", "brew install postgresql"] {
            assert!(message.contains(install), "{message}");
        }
    }

    #[test]
    fn an_override_that_lacks_the_programs_is_not_replaced_by_path() {
        let empty = tempfile::tempdir().unwrap();
        let found = locate(
            Some(empty.path().as_os_str()),
            std::env::var_os("PATH").as_deref(),
            Path::new(DEBIAN_VERSIONED_ROOT),
        );
        assert_eq!(found, None);
    }

    #[test]
    fn the_newest_version_directory_wins_numerically() {
        let root = tempfile::tempdir().unwrap();
        for version in ["9.6", "10", "16", "ignored"] {
            let bin = root.path().join(version).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            for program in SERVER_PROGRAMS {
                std::fs::write(bin.join(program), "").unwrap();
            }
        }
        // A newer directory without the server programs (client-only install) does not count.
        std::fs::create_dir_all(root.path().join("17/bin")).unwrap();
        assert_eq!(newest_versioned_bin_dir(root.path()), Some(root.path().join("16/bin")));
    }
}

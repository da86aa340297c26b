//! What the app writes down for support: a log file in the app's data directory (connection
//! state changes, errors), and a diagnostics report (version, system, the log's tail) that the
//! user menu copies to the clipboard.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::PathBuf;
use std::sync::Mutex;

/// A log file is moved to `.old` past this size at start-up, so two files bound the disk use.
const MAX_LOG_BYTES: u64 = 5 * 1024 * 1024;

/// How much of the log's end a report carries.
const REPORT_TAIL_BYTES: u64 = 16 * 1024;

/// `NEXACORE_DESKTOP_LOG`, else `nexacore.log` in the platform's data directory
/// (Linux: `~/.local/share/nexacore/`).
pub fn log_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NEXACORE_DESKTOP_LOG") {
        return Some(path.into());
    }
    directories::ProjectDirs::from("com", "NexaCore", "nexacore").map(|d| d.data_dir().join("nexacore.log"))
}

/// Logs to stderr and, when it can be opened, to the log file (without colours).
pub fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "desktop_egui=info,warn".into());
    let file = log_path().and_then(|path| open_log(&path).ok());
    let file_layer = file.map(|f| tracing_subscriber::fmt::layer().with_ansi(false).with_writer(Mutex::new(f)));
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(file_layer)
        .init();
}

fn open_log(path: &std::path::Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if std::fs::metadata(path).is_ok_and(|m| m.len() > MAX_LOG_BYTES) {
        let _ = std::fs::rename(path, path.with_extension("log.old"));
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// The end of the log file, from the first whole line.
fn log_tail(path: &std::path::Path) -> String {
    let Ok(mut file) = File::open(path) else { return "(no log file)".into() };
    let len = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(REPORT_TAIL_BYTES)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    match text.split_once('\n') {
        Some((_, rest)) if len > REPORT_TAIL_BYTES => rest.to_owned(),
        _ => text,
    }
}

/// The report "Copy diagnostics" puts on the clipboard. Holds no token or password: the log
/// never records them.
pub fn report(server_url: &str, company: Option<&str>) -> String {
    let log = log_path();
    format!(
        "NexaCore desktop {version}\nsystem: {os} {arch}\nserver: {server_url}\ncompany: {company}\nlog: {path}\n\n{tail}",
        version = crate::client_version(),
        os = std::env::consts::OS,
        arch = std::env::consts::ARCH,
        company = company.unwrap_or("(not signed in)"),
        path = log.as_ref().map_or_else(|| "(none)".into(), |p| p.display().to_string()),
        tail = log.as_deref().map_or_else(String::new, log_tail),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_names_the_version_server_and_carries_the_logs_last_lines() {
        let dir = std::env::temp_dir().join(format!("nexacore-diag-{}", std::process::id()));
        let path = dir.join("nexacore.log");
        let mut file = open_log(&path).unwrap();
        std::io::Write::write_all(&mut file, format!("{}\nlast line\n", "x".repeat(40_000)).as_bytes()).unwrap();
        let tail = log_tail(&path);
        assert!(tail.ends_with("last line\n") && tail.len() <= REPORT_TAIL_BYTES as usize, "{}", tail.len());
        let report = report("http://127.0.0.1:8080", Some("Acme"));
        assert!(report.contains(crate::client_version()) && report.contains("http://127.0.0.1:8080"));
        assert!(report.contains("company: Acme"));
        let _ = std::fs::remove_dir_all(dir);
    }
}

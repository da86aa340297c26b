//! The files `ops up` keeps under `./.nexacore/`: `stack.env` (URLs and the operator token of the
//! running local stack) and `secrets.env` (its generated secrets). Other commands read them as
//! their last fallback.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

pub const DEFAULT_DIR: &str = ".nexacore";

/// `./.nexacore/<name>`.
pub fn default_path(name: &str) -> PathBuf {
    Path::new(DEFAULT_DIR).join(name)
}

/// Reads `KEY=value` lines.
pub fn read_env_file(path: &Path) -> std::io::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect())
}

/// One key of a default file, if the file and the key exist.
pub fn lookup(name: &str, key: &str) -> Option<String> {
    read_env_file(&default_path(name)).ok()?.into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Writes a file only its owner can read (mode 0600 on Unix): it holds secrets.
pub fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

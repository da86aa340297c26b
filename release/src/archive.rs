//! The release zip: the program's files plus `nexacore-files.json`, the list of every file with
//! its size and SHA-256. The zip's own hash is in the signed manifest, so the list is signed too,
//! and extraction writes exactly the files it names — nothing else in the zip is ever written.
//!
//! Extraction is written for hostile input: entry names are checked as text before any path is
//! built (no absolute paths, `..`, backslashes or drive letters), symlinks, directories and
//! devices are refused, sizes are bounded before reading and counted while reading, and every
//! file's hash is checked. It writes into a directory it creates and removes that directory on
//! any failure (a full disk included), so a failed extraction leaves nothing behind.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use zip::write::SimpleFileOptions;

use crate::manifest::Sha256Digest;

/// The list's name inside the zip.
pub const FILE_LIST: &str = "nexacore-files.json";

/// The list's bound: it is read into memory before anything else.
const MAX_LIST_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileList {
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative, `/`-separated.
    pub path: String,
    pub size: u64,
    pub sha256: Sha256Digest,
    #[serde(default)]
    pub executable: bool,
}

/// One file to put in a release zip.
#[derive(Debug, Clone)]
pub struct ArchiveInput<'a> {
    pub path: &'a str,
    pub bytes: &'a [u8],
    pub executable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    pub max_entries: usize,
    pub max_file_bytes: u64,
    pub max_total_bytes: u64,
}

impl Default for ExtractLimits {
    /// Generous for a desktop build (tens of MB), small enough that a hostile zip cannot fill a disk.
    fn default() -> Self {
        Self { max_entries: 64, max_file_bytes: 512 << 20, max_total_bytes: 1 << 30 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("not a readable zip: {0}")]
    Zip(String),
    #[error("the zip has no {FILE_LIST}, or it is unreadable: {0}")]
    FileList(String),
    #[error("unsafe entry name {0:?}")]
    UnsafeName(String),
    #[error("entry {0:?} is a symbolic link")]
    Symlink(String),
    #[error("entry {0:?} is a directory or a device, not a plain file")]
    NotAFile(String),
    #[error("entry {0:?} is not in the signed file list")]
    Unlisted(String),
    #[error("entry {0:?} appears twice")]
    Duplicate(String),
    #[error("listed file {0:?} is missing from the zip")]
    Missing(String),
    #[error("file {0:?} is not the size the list says")]
    SizeMismatch(String),
    #[error("file {0:?} does not have the hash the list says")]
    HashMismatch(String),
    #[error("the zip is over the limits ({0})")]
    TooLarge(&'static str),
    #[error("the staging directory already exists: {0}")]
    DestinationExists(PathBuf),
    #[error("cannot write the extracted files: {0}")]
    Io(#[from] io::Error),
}

impl From<zip::result::ZipError> for ArchiveError {
    fn from(e: zip::result::ZipError) -> Self {
        match e {
            zip::result::ZipError::Io(io) => ArchiveError::Io(io),
            other => ArchiveError::Zip(other.to_string()),
        }
    }
}

/// Builds a release zip (deflated) holding `files` and their list.
pub fn build(files: &[ArchiveInput<'_>]) -> Result<Vec<u8>, ArchiveError> {
    let mut seen = HashSet::new();
    let mut list = FileList { files: Vec::with_capacity(files.len()) };
    for file in files {
        if !is_safe_name(file.path) || file.path == FILE_LIST {
            return Err(ArchiveError::UnsafeName(file.path.to_owned()));
        }
        if !seen.insert(file.path) {
            return Err(ArchiveError::Duplicate(file.path.to_owned()));
        }
        list.files.push(FileEntry {
            path: file.path.to_owned(),
            size: file.bytes.len() as u64,
            sha256: Sha256Digest::of(file.bytes),
            executable: file.executable,
        });
    }
    let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    let deflated = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).large_file(true);
    zip.start_file(FILE_LIST, deflated.unix_permissions(0o644))?;
    zip.write_all(&serde_json::to_vec_pretty(&list).map_err(|e| ArchiveError::FileList(e.to_string()))?)?;
    for file in files {
        zip.start_file(file.path, deflated.unix_permissions(if file.executable { 0o755 } else { 0o644 }))?;
        zip.write_all(file.bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}

/// A relative `/`-separated path of plain components, checked as text: what every entry name and
/// every listed path must be before it becomes a path on disk.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('/')
        && !name.contains(['\\', ':', '\0'])
        && name.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
}

/// Extracts the files the zip's list names into `dest`, which must not exist yet. On any error
/// `dest` is removed again.
pub fn extract(zip: &Path, dest: &Path, limits: &ExtractLimits) -> Result<FileList, ArchiveError> {
    if dest.exists() {
        return Err(ArchiveError::DestinationExists(dest.to_owned()));
    }
    let result = fs::File::open(zip).map_err(ArchiveError::from).and_then(|file| {
        fs::create_dir_all(dest)?;
        extract_from(file, dest, limits)
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(dest);
    }
    result
}

fn extract_from(reader: impl Read + Seek, dest: &Path, limits: &ExtractLimits) -> Result<FileList, ArchiveError> {
    let mut archive = zip::ZipArchive::new(reader)?;
    if archive.len() > limits.max_entries {
        return Err(ArchiveError::TooLarge("entries"));
    }
    let list = read_list(&mut archive, limits)?;
    let expected: HashMap<&str, &FileEntry> = list.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut written = HashSet::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index)?;
        let name = std::str::from_utf8(entry.name_raw())
            .map_err(|_| ArchiveError::UnsafeName(String::from_utf8_lossy(entry.name_raw()).into_owned()))?
            .to_owned();
        if name == FILE_LIST {
            continue;
        }
        if !is_safe_name(&name) {
            return Err(ArchiveError::UnsafeName(name));
        }
        if entry.is_symlink() {
            return Err(ArchiveError::Symlink(name));
        }
        // Only plain files: a mode with a file type other than "regular" (device, FIFO, socket,
        // directory) is refused, as is a directory entry.
        let file_type = entry.unix_mode().map(|mode| mode & 0o170000).unwrap_or(0);
        if entry.is_dir() || !(file_type == 0 || file_type == 0o100000) {
            return Err(ArchiveError::NotAFile(name));
        }
        let listed = *expected.get(name.as_str()).ok_or_else(|| ArchiveError::Unlisted(name.clone()))?;
        if !written.insert(name.clone()) {
            return Err(ArchiveError::Duplicate(name));
        }
        if entry.size() != listed.size {
            return Err(ArchiveError::SizeMismatch(name));
        }
        write_file(&mut entry, dest, listed)?;
    }
    if let Some(missing) = list.files.iter().find(|f| !written.contains(&f.path)) {
        return Err(ArchiveError::Missing(missing.path.clone()));
    }
    Ok(list)
}

fn read_list<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    limits: &ExtractLimits,
) -> Result<FileList, ArchiveError> {
    let mut entry = archive.by_name(FILE_LIST).map_err(|e| ArchiveError::FileList(e.to_string()))?;
    let mut text = Vec::new();
    entry.by_ref().take(MAX_LIST_BYTES + 1).read_to_end(&mut text)?;
    if text.len() as u64 > MAX_LIST_BYTES {
        return Err(ArchiveError::TooLarge("file list"));
    }
    let list: FileList = serde_json::from_slice(&text).map_err(|e| ArchiveError::FileList(e.to_string()))?;
    let mut total = 0u64;
    let mut names = HashSet::new();
    for file in &list.files {
        if !is_safe_name(&file.path) || file.path == FILE_LIST {
            return Err(ArchiveError::UnsafeName(file.path.clone()));
        }
        if !names.insert(file.path.as_str()) {
            return Err(ArchiveError::Duplicate(file.path.clone()));
        }
        if file.size > limits.max_file_bytes {
            return Err(ArchiveError::TooLarge("file size"));
        }
        total = total.saturating_add(file.size);
    }
    if total > limits.max_total_bytes {
        return Err(ArchiveError::TooLarge("total size"));
    }
    // Two names that differ only in case would be one file on Windows and macOS.
    let folded: HashSet<String> = list.files.iter().map(|f| f.path.to_lowercase()).collect();
    if folded.len() != list.files.len() {
        return Err(ArchiveError::Duplicate("two names differing only in case".into()));
    }
    Ok(list)
}

/// Copies at most the listed size plus one byte (a lying header cannot make it write more),
/// hashing on the way, then checks both.
fn write_file(entry: &mut impl Read, dest: &Path, listed: &FileEntry) -> Result<(), ArchiveError> {
    let target = dest.join(&listed.path);
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut out = fs::OpenOptions::new().write(true).create_new(true).open(&target)?;
    let mut hasher = sha2::Sha256::new();
    let mut copied = 0u64;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut limited = entry.take(listed.size + 1);
    loop {
        let n = limited.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        copied += n as u64;
        if copied > listed.size {
            return Err(ArchiveError::SizeMismatch(listed.path.clone()));
        }
        hasher.update(&buffer[..n]);
        out.write_all(&buffer[..n])?;
    }
    if copied != listed.size {
        return Err(ArchiveError::SizeMismatch(listed.path.clone()));
    }
    if Sha256Digest(hasher.finalize().into()) != listed.sha256 {
        return Err(ArchiveError::HashMismatch(listed.path.clone()));
    }
    out.sync_all()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = if listed.executable { 0o755 } else { 0o644 };
        fs::set_permissions(&target, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;

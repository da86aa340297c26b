//! Extraction against hostile zips, each built byte for byte with the `zip` writer.

use std::io::Write as _;

use super::*;

const BINARY: &[u8] = b"\x7fELF pretend this is a program";

fn good_zip() -> Vec<u8> {
    build(&[
        ArchiveInput { path: "nexacore-desktop", bytes: BINARY, executable: true },
        ArchiveInput { path: "licenses/NOTICE.txt", bytes: b"notice", executable: false },
    ])
    .unwrap()
}

fn listed(path: &str, bytes: &[u8]) -> FileEntry {
    FileEntry { path: path.into(), size: bytes.len() as u64, sha256: Sha256Digest::of(bytes), executable: false }
}

/// A zip written by hand: the given list, then each entry as given (`None` = symlink to `target`).
fn crafted(list: &[FileEntry], entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default();
    zip.start_file(FILE_LIST, options).unwrap();
    zip.write_all(&serde_json::to_vec(&FileList { files: list.to_vec() }).unwrap()).unwrap();
    for (name, content) in entries {
        match content {
            Some(bytes) => {
                zip.start_file(*name, options).unwrap();
                zip.write_all(bytes).unwrap();
            }
            None => zip.add_symlink(*name, "/etc/passwd", options).unwrap(),
        }
    }
    zip.finish().unwrap().into_inner()
}

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    fn extract(&self, zip_bytes: &[u8], limits: &ExtractLimits) -> Result<FileList, ArchiveError> {
        let zip = self.dir.path().join("release.zip");
        fs::write(&zip, zip_bytes).unwrap();
        extract(&zip, &self.dir.path().join("staged"), limits)
    }

    fn staged(&self) -> PathBuf {
        self.dir.path().join("staged")
    }

    /// Every file in the case's directory except the zip: nothing may be written on failure.
    fn written(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                }
                out.push(path);
            }
        }
        let mut out = Vec::new();
        walk(self.dir.path(), &mut out);
        out.retain(|p| !p.ends_with("release.zip"));
        out
    }
}

#[test]
fn a_built_zip_extracts_to_exactly_its_listed_files() {
    let case = Case::new();
    let list = case.extract(&good_zip(), &ExtractLimits::default()).unwrap();
    assert_eq!(list.files.len(), 2);
    assert_eq!(fs::read(case.staged().join("nexacore-desktop")).unwrap(), BINARY);
    assert_eq!(fs::read(case.staged().join("licenses/NOTICE.txt")).unwrap(), b"notice");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(case.staged().join("nexacore-desktop")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
    }
}

#[test]
fn hostile_zips_are_refused_and_leave_nothing_behind() {
    let evil = b"owned";
    let check = |name: &str, zip: Vec<u8>, expected: fn(&ArchiveError) -> bool| {
        let case = Case::new();
        let err = case.extract(&zip, &ExtractLimits::default()).unwrap_err();
        assert!(expected(&err), "{name}: {err:?}");
        assert_eq!(case.written(), Vec::<PathBuf>::new(), "{name}");
    };
    check("zip-slip", crafted(&[listed("../evil", evil)], &[("../evil", Some(evil))]), |e| {
        matches!(e, ArchiveError::UnsafeName(_))
    });
    check("absolute path", crafted(&[listed("a", evil)], &[("/tmp/evil", Some(evil))]), |e| {
        matches!(e, ArchiveError::UnsafeName(_))
    });
    check("backslash traversal", crafted(&[listed("a", evil)], &[("..\\evil", Some(evil))]), |e| {
        matches!(e, ArchiveError::UnsafeName(_))
    });
    check("symlink", crafted(&[listed("link", b"/etc/passwd")], &[("link", None)]), |e| {
        matches!(e, ArchiveError::Symlink(_))
    });
    check("unlisted entry", crafted(&[listed("a", evil)], &[("a", Some(evil)), ("b", Some(evil))]), |e| {
        matches!(e, ArchiveError::Unlisted(_))
    });
    check("missing entry", crafted(&[listed("a", evil)], &[]), |e| matches!(e, ArchiveError::Missing(_)));
    check("wrong content", crafted(&[listed("a", evil)], &[("a", Some(b"OWNED"))]), |e| {
        matches!(e, ArchiveError::HashMismatch(_))
    });
    check("wrong size", crafted(&[listed("a", evil)], &[("a", Some(b"owned!"))]), |e| {
        matches!(e, ArchiveError::SizeMismatch(_))
    });
    check(
        "names differing only in case",
        crafted(&[listed("a", evil), listed("A", evil)], &[("a", Some(evil)), ("A", Some(evil))]),
        |e| matches!(e, ArchiveError::Duplicate(_)),
    );
    check("listed unsafe path", crafted(&[listed("../a", evil)], &[]), |e| matches!(e, ArchiveError::UnsafeName(_)));
    check(
        "no list",
        {
            let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
            zip.start_file("a", SimpleFileOptions::default()).unwrap();
            zip.finish().unwrap().into_inner()
        },
        |e| matches!(e, ArchiveError::FileList(_)),
    );
    check("not a zip", b"PK\x03\x04 truncated".to_vec(), |e| matches!(e, ArchiveError::Zip(_)));
}

#[test]
fn size_limits_are_enforced_from_the_list_before_writing() {
    let case = Case::new();
    let limits = ExtractLimits { max_file_bytes: 10, ..ExtractLimits::default() };
    let err = case.extract(&good_zip(), &limits).unwrap_err();
    assert!(matches!(err, ArchiveError::TooLarge(_)), "{err:?}");
    assert!(!case.staged().exists());
    let limits = ExtractLimits { max_entries: 2, ..ExtractLimits::default() };
    assert!(matches!(Case::new().extract(&good_zip(), &limits), Err(ArchiveError::TooLarge("entries"))));
}

#[test]
fn an_existing_staging_directory_is_never_written_into() {
    let case = Case::new();
    fs::create_dir(case.staged()).unwrap();
    fs::write(case.staged().join("keep"), b"x").unwrap();
    assert!(matches!(case.extract(&good_zip(), &ExtractLimits::default()), Err(ArchiveError::DestinationExists(_))));
    assert_eq!(fs::read(case.staged().join("keep")).unwrap(), b"x");
}

#[test]
fn the_builder_refuses_names_it_would_refuse_to_extract() {
    for bad in ["../x", "/x", "a//b", "a\\b", "c:x", FILE_LIST] {
        let err = build(&[ArchiveInput { path: bad, bytes: b"", executable: false }]).unwrap_err();
        assert!(matches!(err, ArchiveError::UnsafeName(_)), "{bad}: {err:?}");
    }
}

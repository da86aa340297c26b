//! Every `NEXACORE_*` variable the code reads is documented, so the README's tables cannot drift
//! from the code again: variables of the services in README.md, the desktop's in its README,
//! the benchmarks' in BENCHMARKS.md, the test-only fault hooks in SECURITY.md.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_owned()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() && name != "target" && !name.to_string_lossy().starts_with('.') {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `NEXACORE_…` names in string literals: the variables read.
fn variables_in(text: &str) -> BTreeSet<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.starts_with("NEXACORE_")
                && s[9..].chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .filter(|s| s.len() > 9)
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_variable_the_code_reads_is_documented() {
    let root = workspace();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let read: BTreeSet<String> =
        files.iter().filter_map(|f| std::fs::read_to_string(f).ok()).flat_map(|t| variables_in(&t)).collect();
    assert!(read.contains("NEXACORE_SMTP_URL") && read.len() > 30, "the scan finds the variables: {read:?}");
    let docs: String = ["README.md", "desktop-egui/README.md", "BENCHMARKS.md", "SECURITY.md"]
        .iter()
        .map(|d| std::fs::read_to_string(root.join(d)).unwrap_or_default())
        .collect();
    // Documented as families: `NEXACORE_FAULT_*` (SECURITY.md).
    let undocumented: Vec<&String> = read
        .iter()
        .filter(|v| !docs.contains(v.as_str()))
        .filter(|v| !(v.starts_with("NEXACORE_FAULT_") && docs.contains("NEXACORE_FAULT_*")))
        .collect();
    assert!(undocumented.is_empty(), "read by the code but in no README: {undocumented:?}");
}

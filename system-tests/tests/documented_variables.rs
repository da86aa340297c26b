//! Every `NEXACORE_*` variable the code reads is documented, so the README's tables cannot drift
//! from the code again: variables of the services in README.md, the desktop's in its README,
//! the benchmarks' in BENCHMARKS.md, the test-only fault hooks in SECURITY.md. And the other way
//! round for the deployment files: every setting compose and the Kubernetes manifests give is one
//! the code reads, so a typo there cannot be silently ignored.

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

/// Every `NEXACORE_*` name in a string literal of the workspace's Rust code.
fn variables_read(root: &Path) -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    files.iter().filter_map(|f| std::fs::read_to_string(f).ok()).flat_map(|t| variables_in(&t)).collect()
}

#[test]
fn every_variable_the_code_reads_is_documented() {
    let root = workspace();
    let read = variables_read(&root);
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

/// `NEXACORE_…` words in a text file (YAML keys, `KEY=value` lines).
fn words_in(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("NEXACORE_") && w.len() > 9)
        .map(str::to_owned)
        .collect()
}

/// The keys of the TOML files embedded in a ConfigMap (`name.toml: |` blocks), as variables.
fn toml_keys_in_configmap(text: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.trim_end().ends_with(".toml: |") {
            in_block = true;
        } else if in_block && !line.starts_with("    ") && !line.trim().is_empty() {
            in_block = false;
        } else if in_block
            && let Some((key, _)) = line.trim().split_once(" = ")
            && !key.starts_with('#')
        {
            let upper = key.to_ascii_uppercase();
            keys.insert(if upper.starts_with("NEXACORE_") { upper } else { format!("NEXACORE_{upper}") });
        }
    }
    keys
}

#[test]
fn every_variable_the_deployment_files_set_is_read_by_the_code() {
    let root = workspace();
    let read = variables_read(&root);
    let known = |name: &str| read.contains(name) || name.strip_suffix("_FILE").is_some_and(|n| read.contains(n));
    let mut set = BTreeSet::new();
    for file in ["compose.yaml", ".env.example", "ops/docker/Dockerfile"] {
        set.extend(words_in(&std::fs::read_to_string(root.join(file)).expect(file)));
    }
    let kubernetes = root.join("deploy/kubernetes");
    for entry in std::fs::read_dir(&kubernetes).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        set.extend(words_in(&text));
        set.extend(toml_keys_in_configmap(&text));
    }
    assert!(
        set.contains("NEXACORE_ROUTER_URL") && set.contains("NEXACORE_CATALOG_URL"),
        "the scan finds them: {set:?}"
    );
    let unknown: Vec<&String> = set.iter().filter(|v| !known(v)).collect();
    assert!(unknown.is_empty(), "set by a deployment file but read by no code: {unknown:?}");
}

//! Progress bars while a phase runs (cleared when it ends) and the tables a report ends in.

use comfy_table::{CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// A bar of `len` steps labelled `what`, with the rate and the time left.
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len).with_prefix(what.to_owned());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>36} [{bar:30}] {pos}/{len} {per_sec:>12} eta {eta}")
            .expect("a valid progress template")
            .progress_chars("=> "),
    );
    bar
}

/// A table with `header`, its first column (the row's name) left-aligned and the figures right.
pub fn new_table(header: &[&str]) -> Table {
    table_right_from(header, 1)
}

/// A table with `header` whose columns from `first_right` on are right-aligned.
pub fn table_right_from(header: &[&str], first_right: usize) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(header.to_vec());
    for i in first_right..header.len() {
        if let Some(column) = table.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

/// A row of a targets table: what, the value, the target, and whether it was met.
pub fn target_row(what: impl Into<String>, value: String, target: String, met: bool) -> Vec<String> {
    vec![what.into(), value, target, if met { "yes" } else { "no" }.to_owned()]
}

/// Prints `report` as pretty JSON when `json`, else as `print` lays it out.
pub fn emit<R: Serialize>(json: bool, report: &R, print: impl FnOnce(&R)) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print(report);
    }
    Ok(())
}

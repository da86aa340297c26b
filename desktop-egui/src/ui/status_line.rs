//! A transient status line ("Saved Ada Lovelace."): it fades out of the screen after
//! [`STATUS_TTL`], and can name the record it speaks of so it goes at once when that record
//! is deleted, instead of lingering as news about something no longer there.

use std::time::{Duration, Instant};

use egui::{RichText, Ui};
use uuid::Uuid;

/// How long a status line stays: long enough to read twice.
pub const STATUS_TTL: Duration = Duration::from_secs(8);

#[derive(Debug, Clone, PartialEq)]
pub struct StatusLine {
    pub text: String,
    /// The record it is about, if any.
    pub about: Option<Uuid>,
    pub since: Instant,
}

impl StatusLine {
    pub fn new(text: impl Into<String>, about: Option<Uuid>) -> Self {
        Self { text: text.into(), about, since: Instant::now() }
    }

    pub fn expired(&self) -> bool {
        self.since.elapsed() >= STATUS_TTL
    }
}

/// Drops the line when `id` is the record it spoke of.
pub fn forget_about(line: &mut Option<StatusLine>, id: Uuid) {
    if line.as_ref().is_some_and(|l| l.about == Some(id)) {
        *line = None;
    }
}

/// Draws the line while it lasts, and wakes the UI when it is due to go.
pub fn status_line_ui(ui: &mut Ui, line: &mut Option<StatusLine>) {
    if line.as_ref().is_some_and(StatusLine::expired) {
        *line = None;
    }
    if let Some(l) = line {
        ui.label(RichText::new(&l.text).weak());
        ui.ctx().request_repaint_after(STATUS_TTL.saturating_sub(l.since.elapsed()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_expires_and_goes_with_the_record_it_names() {
        let id = Uuid::new_v4();
        let mut line = Some(StatusLine::new("Saved Ada.", Some(id)));
        forget_about(&mut line, Uuid::new_v4());
        assert!(line.is_some(), "another record's deletion leaves it");
        forget_about(&mut line, id);
        assert!(line.is_none());
        let old = StatusLine { since: Instant::now() - STATUS_TTL, ..StatusLine::new("Deleted.", None) };
        assert!(old.expired());
        assert!(!StatusLine::new("Now.", None).expired());
    }
}

//! A date field: the date as text ("2024-05-31", typed or pasted) with a calendar button
//! beside it (`egui_extras::DatePickerButton`) for those who would rather click.
//!
//! Why keep the text: it is what the form validates and sends, and what the conflict view
//! compares, so picking a date changes nothing downstream; and typing stays the fastest way
//! for a known date.

use egui::{Response, TextEdit, Ui};

use super::error_ui;

/// A grid row: `label`, then the field and the calendar, then `error` under them. Returns
/// the text field's response (changed also when a date was picked).
pub fn date_field_ui(ui: &mut Ui, label: &str, value: &mut String, error: Option<&str>) -> Response {
    let label = ui.label(label);
    let response = ui
        .vertical(|ui| {
            let response = ui
                .horizontal(|ui| {
                    let mut response = ui.add(TextEdit::singleline(value).desired_width(110.0)).labelled_by(label.id);
                    // An unreadable text opens the calendar on today.
                    let mut date = value.trim().parse().unwrap_or_else(|_| today().parse().unwrap_or_default());
                    let before = date;
                    // No calendar icon: the default fonts have no 📆 (the tests fail on tofu).
                    ui.add(
                        egui_extras::DatePickerButton::new(&mut date)
                            .id_salt("date_field")
                            .calendar_week(false)
                            .show_icon(false),
                    )
                    .on_hover_text("Pick from a calendar");
                    if date != before {
                        *value = date.to_string();
                        response.mark_changed();
                    }
                    response
                })
                .inner;
            if let Some(error) = error {
                error_ui(ui, error);
            }
            response
        })
        .inner;
    ui.end_row();
    response
}

fn today() -> String {
    let today = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", today.year(), today.month() as u8, today.day())
}

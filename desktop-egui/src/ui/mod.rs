//! The screens (`sign_in`, `wizard`, and inside a signed-in `workspace`: `employees`,
//! `ledger`, `people`; `dialogs`) and the small widgets they share: a labelled field whose
//! error sits right under it, a form-wide field-error map, the new-password fields.

pub mod date;
pub mod dialogs;
pub mod employees;
pub mod fonts;
pub mod ledger;
pub mod password;
pub mod people;
pub mod picker;
pub mod sign_in;
pub mod status_line;
pub mod update;
pub mod wizard;
pub mod workspace;

use std::collections::BTreeMap;

use egui::{Color32, Response, RichText, TextEdit, Ui};

/// Field name (as the server spells it, e.g. `admin.email`) → message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    pub fn set(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.insert(field.into(), message.into());
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn remove(&mut self, field: &str) {
        self.0.remove(field);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn extend(&mut self, errors: impl IntoIterator<Item = (String, String)>) {
        self.0.extend(errors);
    }
}

pub fn error_color(ui: &Ui) -> Color32 {
    ui.visuals().error_fg_color
}

/// An error line (red), shown under the field or form it concerns.
pub fn error_ui(ui: &mut Ui, message: &str) {
    ui.label(RichText::new(message).color(error_color(ui)));
}

/// A label and a single-line text field tied to it (screen readers and tests find the field
/// by the label), with its error under it. Returns the field's response.
pub fn field_ui(ui: &mut Ui, label: &str, value: &mut String, error: Option<&str>, password: bool) -> Response {
    let label = ui.label(label);
    let response = ui
        .vertical(|ui| {
            let response =
                ui.add(TextEdit::singleline(value).password(password).desired_width(280.0)).labelled_by(label.id);
            if let Some(error) = error {
                error_ui(ui, error);
            }
            response
        })
        .inner;
    ui.end_row();
    response
}

/// True when Enter was pressed in the field that just lost focus: "Enter submits".
pub fn submitted(ui: &Ui, response: &Response) -> bool {
    response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter))
}

/// A coloured dot and a word: the live indicator.
pub fn status_dot_ui(ui: &mut Ui, color: Color32, text: &str) -> Response {
    ui.horizontal(|ui| {
        let (rect, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
        ui.painter().circle_filled(rect.center(), 5.0, color);
        ui.label(text)
    })
    .inner
}

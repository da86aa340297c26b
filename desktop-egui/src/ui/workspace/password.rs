//! "Change password" from the user menu. The server then refuses every token issued before,
//! so the app signs in again with the new password by itself; the dialog stays busy until
//! that new session is in place.

use egui::Ui;

use crate::api::ApiError;
use crate::api::wire::PasswordChange;
use crate::ui::password::NewPassword;
use crate::ui::{FieldErrors, error_ui, field_ui, submitted};

#[derive(Debug, Clone, Default)]
pub struct ChangePassword {
    pub current: String,
    pub new: NewPassword,
    pub errors: FieldErrors,
    pub general: Option<String>,
    pub busy: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PasswordStep {
    Submit(PasswordChange),
    Cancel,
}

impl ChangePassword {
    fn submit(&mut self) -> Option<PasswordStep> {
        self.errors.clear();
        self.general = None;
        if self.current.is_empty() {
            self.errors.set("current_password", "Enter your current password.");
        }
        self.new.check("new_password", &[], &mut self.errors);
        if self.errors.is_empty() && self.new.password == self.current {
            self.errors.set("new_password", "Choose a password other than the current one.");
        }
        if !self.errors.is_empty() {
            return None;
        }
        self.busy = true;
        Some(PasswordStep::Submit(PasswordChange {
            current_password: self.current.clone(),
            new_password: self.new.password.clone(),
        }))
    }

    pub fn on_failed(&mut self, error: &ApiError) {
        self.busy = false;
        self.errors.clear();
        let fields = error.field_errors();
        if error.code() == Some("bad_credentials") || (error.status() == Some(403) && fields.is_empty()) {
            self.errors.set("current_password", "Wrong password.");
        } else if !fields.is_empty() {
            self.errors.extend(fields);
        } else {
            self.general = Some(error.to_string());
        }
    }

    pub fn ui(&mut self, ui: &mut Ui) -> Option<PasswordStep> {
        let mut step = None;
        egui::Modal::new(egui::Id::unique("change_password")).show(ui.ctx(), |ui| {
            ui.set_max_width(460.0);
            ui.heading("Change password");
            ui.label("Your other sessions will have to sign in again.");
            let mut submit = false;
            egui::Grid::new("change_password_grid").num_columns(2).spacing([12.0, 8.0]).show(ui, |ui| {
                let r = field_ui(ui, "Current password", &mut self.current, self.errors.get("current_password"), true);
                submit |= submitted(ui, &r);
                submit |= self.new.ui(ui, "New password", "new_password", &self.errors);
            });
            if let Some(general) = &self.general {
                error_ui(ui, general);
            }
            ui.horizontal(|ui| {
                let go = ui.add_enabled(!self.busy, egui::Button::new("Save new password"));
                if (go.clicked() || submit) && !self.busy {
                    step = self.submit();
                }
                if ui.add_enabled(!self.busy, egui::Button::new("Cancel")).clicked() {
                    step = Some(PasswordStep::Cancel);
                }
                if self.busy {
                    ui.spinner();
                }
            });
        });
        step
    }
}

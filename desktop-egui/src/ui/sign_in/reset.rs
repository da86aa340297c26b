//! "Forgot password": ask for a reset code by e-mail, then set a new password with it. The
//! server answers the request the same whether or not the address has an account, and so
//! does this form. A new password signs the user in at once.

use egui::{RichText, Ui};

use super::{FormStep, SignInAction};
use crate::api::ApiError;
use crate::api::wire::PasswordResetConfirm;
use crate::ui::password::{NewPassword, email_name};
use crate::ui::{FieldErrors, error_ui, field_ui, submitted};

#[derive(Debug, Clone, Default)]
pub struct ResetForm {
    pub email: String,
    /// The code was asked for: the second half of the form shows.
    pub requested: bool,
    pub code: String,
    pub password: NewPassword,
    pub errors: FieldErrors,
    pub general: Option<String>,
    pub busy: bool,
}

impl ResetForm {
    pub fn new(email: &str) -> Self {
        Self { email: email.to_owned(), ..Self::default() }
    }

    fn request(&mut self) -> Option<SignInAction> {
        self.errors.clear();
        self.general = None;
        let email = self.email.trim().to_owned();
        if !email.contains('@') {
            self.errors.set("email", "Enter your e-mail address.");
            return None;
        }
        self.busy = true;
        Some(SignInAction::RequestPasswordReset(email))
    }

    fn confirm(&mut self) -> Option<SignInAction> {
        self.errors.clear();
        self.general = None;
        if self.code.trim().is_empty() {
            self.errors.set("code", "Paste the code from the e-mail.");
        }
        self.password.check("new_password", &[email_name(&self.email)], &mut self.errors);
        if !self.errors.is_empty() {
            return None;
        }
        self.busy = true;
        let body =
            PasswordResetConfirm { code: self.code.trim().to_owned(), new_password: self.password.password.clone() };
        Some(SignInAction::ConfirmPasswordReset { email: self.email.trim().to_owned(), body })
    }

    pub fn on_requested(&mut self, result: Result<(), ApiError>) {
        self.busy = false;
        match result {
            Ok(()) => self.requested = true,
            Err(error) => match error.field_errors().into_iter().next() {
                Some((_, message)) => self.errors.set("email", message),
                None => self.general = Some(error.to_string()),
            },
        }
    }

    /// A refused code or password (a success leaves this form).
    pub fn on_failed(&mut self, error: &ApiError) {
        self.busy = false;
        self.errors.clear();
        let fields = error.field_errors();
        if !fields.is_empty() {
            self.errors.extend(fields);
        } else if matches!(error.status(), Some(400 | 404 | 410)) {
            self.errors.set("code", error.to_string());
        } else {
            self.general = Some(error.to_string());
        }
    }

    pub(super) fn ui(&mut self, ui: &mut Ui) -> Option<FormStep> {
        let mut step = None;
        ui.label(RichText::new("Reset your password").strong().size(18.0));
        let mut submit = false;
        egui::Grid::new("reset_form").num_columns(2).spacing([12.0, 8.0]).show(ui, |ui| {
            let r = field_ui(ui, "Your e-mail", &mut self.email, self.errors.get("email"), false);
            if submitted(ui, &r) && !self.requested && !self.busy {
                step = self.request().map(FormStep::Action);
            }
            if self.requested {
                let r = field_ui(ui, "Reset code", &mut self.code, self.errors.get("code"), false);
                submit |= submitted(ui, &r);
                submit |= self.password.ui(ui, "New password", "new_password", &self.errors);
            }
        });
        if let Some(general) = &self.general {
            error_ui(ui, general);
        }
        ui.add_space(8.0);
        if self.requested {
            ui.label(format!(
                "If {} has a NexaCore account, a reset code is on its way. It is valid for a limited time.",
                self.email.trim()
            ));
        }
        ui.horizontal(|ui| {
            if self.requested {
                let set = ui.add_enabled(!self.busy, egui::Button::new("Set new password"));
                if (set.clicked() || submit) && !self.busy {
                    step = self.confirm().map(FormStep::Action);
                }
                if ui.add_enabled(!self.busy, egui::Button::new("Send another code")).clicked() {
                    step = self.request().map(FormStep::Action);
                }
            } else if ui.add_enabled(!self.busy, egui::Button::new("Send reset code")).clicked() {
                step = self.request().map(FormStep::Action);
            }
            if self.busy {
                ui.spinner();
            }
            if ui.button("Back to sign-in").clicked() {
                step = Some(FormStep::Back);
            }
        });
        step
    }
}

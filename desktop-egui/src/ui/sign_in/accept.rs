//! Accepting an invitation from the sign-in screen: the code (or the e-mail's link), the
//! invitee's name and a new password with its meter, or the password of an existing account.
//! The server answers like a login, so a success lands signed in.

use egui::{RichText, Ui};

use super::{FormStep, SignInAction};
use crate::api::ApiError;
use crate::api::wire::AcceptInvitation;
use crate::links::InviteCode;
use crate::ui::password::{NewPassword, email_name};
use crate::ui::{FieldErrors, error_ui, field_ui, submitted};

#[derive(Debug, Clone, Default)]
pub struct AcceptForm {
    /// As pasted: a code or the link that carries it.
    pub code: String,
    /// Not sent: the answer is a token without the address, and the app needs it to sign in
    /// again later (and remembers it for the next start).
    pub email: String,
    pub full_name: String,
    /// The invitee already has a NexaCore account (another company): its password, no new one.
    pub existing_account: bool,
    pub password: NewPassword,
    pub errors: FieldErrors,
    pub general: Option<String>,
    pub busy: bool,
}

impl AcceptForm {
    /// The form with a code already in it (the app was opened with the link).
    pub fn with_code(code: &str) -> Self {
        Self { code: code.to_owned(), ..Self::default() }
    }

    fn action(&mut self) -> Option<SignInAction> {
        self.errors.clear();
        self.general = None;
        let code = InviteCode::parse(&self.code);
        if code.is_none() {
            self.errors.set("code", "Paste the code from the invitation (like ABCD-EFGH-JKLM-NPQR) or its link.");
        }
        let email = self.email.trim().to_owned();
        if !(email.contains('@') && email.rsplit('@').next().is_some_and(|d| d.contains('.'))) {
            self.errors.set("email", "Enter the address the invitation was sent to.");
        }
        let full_name = self.full_name.trim().to_owned();
        if !self.existing_account && !(1..=100).contains(&full_name.chars().count()) {
            self.errors.set("full_name", "Enter your name.");
        }
        if self.existing_account {
            if self.password.password.is_empty() {
                self.errors.set("password", "Enter your NexaCore password.");
            }
        } else {
            self.password.check("password", &[email_name(&email)], &mut self.errors);
        }
        let code = code?;
        if !self.errors.is_empty() {
            return None;
        }
        self.busy = true;
        // The server ignores the name for an existing account, but wants 1–100 characters.
        let full_name = if full_name.is_empty() { email_name(&email).to_owned() } else { full_name };
        let body =
            AcceptInvitation { code: code.as_str().to_owned(), password: self.password.password.clone(), full_name };
        Some(SignInAction::AcceptInvitation { email, body })
    }

    /// A refusal: at the field it names (an unknown, used or expired code at the code).
    pub fn on_failed(&mut self, error: &ApiError) {
        self.busy = false;
        self.errors.clear();
        self.general = None;
        // The address already has an account: the server wants its password, so the form
        // asks for that instead of a new one.
        if error.code() == Some("bad_credentials") {
            self.existing_account = true;
            self.password.confirm.clear();
        }
        let fields = error.field_errors();
        if !fields.is_empty() {
            // The server calls the fields `code`, `password` and `full_name`, like this form.
            self.errors.extend(fields);
        } else if matches!(error.status(), Some(404 | 410)) {
            self.errors.set("code", error.to_string());
        } else {
            self.general = Some(error.to_string());
        }
    }

    pub(super) fn ui(&mut self, ui: &mut Ui) -> Option<FormStep> {
        let mut step = None;
        ui.label(RichText::new("Accept an invitation").strong().size(18.0));
        ui.label("Paste the code from your invitation e-mail, or the whole link.");
        ui.add_space(8.0);
        let mut submit = false;
        egui::Grid::new("accept_form").num_columns(2).spacing([12.0, 8.0]).show(ui, |ui| {
            let r = field_ui(ui, "Invitation code or link", &mut self.code, self.errors.get("code"), false);
            submit |= submitted(ui, &r);
            let r = field_ui(ui, "Your e-mail", &mut self.email, self.errors.get("email"), false);
            submit |= submitted(ui, &r);
            ui.label("");
            ui.checkbox(&mut self.existing_account, "I already have a NexaCore account");
            ui.end_row();
            if self.existing_account {
                let r = field_ui(ui, "Your password", &mut self.password.password, self.errors.get("password"), true);
                submit |= submitted(ui, &r);
            } else {
                let r = field_ui(ui, "Your full name", &mut self.full_name, self.errors.get("full_name"), false);
                submit |= submitted(ui, &r);
                submit |= self.password.ui(ui, "Choose a password", "password", &self.errors);
            }
        });
        if let Some(general) = &self.general {
            error_ui(ui, general);
        }
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            let accept = ui.add_enabled(!self.busy, egui::Button::new("Accept invitation"));
            if (accept.clicked() || submit) && !self.busy {
                step = self.action().map(FormStep::Action);
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

//! The invitation form: an address, a role, an optional name. Field errors sit under the
//! field the server names; "already a member" or "already invited" under the address.

use egui::Ui;

use super::PeopleAction;
use crate::api::ApiError;
use crate::api::wire::{NewInvitation, Role};
use crate::ui::workspace::role_title;
use crate::ui::{FieldErrors, error_ui, field_ui, submitted};

#[derive(Debug, Clone, Default)]
pub struct InviteForm {
    pub email: String,
    pub full_name: String,
    /// Staff unless chosen otherwise: the least an invitee can do.
    pub role: Role,
    pub errors: FieldErrors,
    pub general: Option<String>,
    pub busy: bool,
}

impl InviteForm {
    fn action(&mut self) -> Option<PeopleAction> {
        self.errors.clear();
        self.general = None;
        let email = self.email.trim().to_owned();
        if !(email.contains('@') && email.rsplit('@').next().is_some_and(|d| d.contains('.'))) {
            self.errors.set("email", "Enter an e-mail address like name@company.com.");
        }
        let full_name = Some(self.full_name.trim().to_owned()).filter(|n| !n.is_empty());
        if full_name.as_ref().is_some_and(|n| n.chars().count() > 100) {
            self.errors.set("full_name", "At most 100 characters.");
        }
        if !self.errors.is_empty() {
            return None;
        }
        self.busy = true;
        Some(PeopleAction::Invite(NewInvitation { email, role: self.role, full_name }))
    }

    pub fn on_failed(&mut self, error: &ApiError) {
        self.busy = false;
        self.errors.clear();
        self.general = None;
        let fields = error.field_errors();
        if !fields.is_empty() {
            self.errors.extend(fields);
        } else if error.status() == Some(409) {
            self.errors.set("email", error.to_string());
        } else {
            self.general = Some(error.to_string());
        }
    }

    pub(super) fn ui(&mut self, ui: &mut Ui) -> Option<PeopleAction> {
        let mut action = None;
        let mut submit = false;
        egui::Grid::new("invite_form").num_columns(2).spacing([12.0, 6.0]).show(ui, |ui| {
            let r = field_ui(ui, "Invitee's e-mail", &mut self.email, self.errors.get("email"), false);
            submit |= submitted(ui, &r);
            let r = field_ui(ui, "Name (optional)", &mut self.full_name, self.errors.get("full_name"), false);
            submit |= submitted(ui, &r);
            ui.label("Role");
            ui.vertical(|ui| {
                ui.horizontal(|ui| {
                    for role in Role::ALL {
                        ui.radio_value(&mut self.role, role, role_title(role));
                    }
                });
                if let Some(error) = self.errors.get("role") {
                    error_ui(ui, error);
                }
            });
            ui.end_row();
        });
        if let Some(general) = &self.general {
            error_ui(ui, general);
        }
        ui.horizontal(|ui| {
            let send = ui.add_enabled(!self.busy, egui::Button::new("Send invitation"));
            if (send.clicked() || submit) && !self.busy {
                action = self.action();
            }
            if self.busy {
                ui.spinner();
            }
        });
        action
    }
}

//! What the People page draws: the invitation form (admins), the members and the pending
//! invitations, and the "are you sure" dialog.

use egui::{RichText, Ui};
use time::OffsetDateTime;

use super::{Confirm, PeopleAction, PeopleScreen, display_name};
use crate::api::wire::Role;
use crate::ui::error_ui;
use crate::ui::workspace::role_title;

impl PeopleScreen {
    pub fn ui(&mut self, ui: &mut Ui) -> Vec<PeopleAction> {
        let mut actions = Vec::new();
        let manage = self.role.may_manage_people();
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading("People");
                if self.loading {
                    ui.spinner();
                }
                if ui.button("Refresh").clicked() {
                    self.loading = true;
                    actions.push(PeopleAction::Load);
                }
            });
            if !manage {
                ui.label(RichText::new("Only admins can invite people or change their roles.").weak());
            }
            if let Some(error) = &self.load_error {
                error_ui(ui, error);
            }
            if manage {
                ui.add_space(8.0);
                ui.group(|ui| {
                    ui.label(RichText::new("Invite someone").strong());
                    actions.extend(self.invite.ui(ui));
                });
            }
            ui.add_space(8.0);
            if let Some(notice) = &self.notice {
                ui.label(RichText::new(notice).color(egui::Color32::from_rgb(0, 150, 70)));
            }
            if let Some(error) = &self.error {
                error_ui(ui, error);
            }
            ui.add_space(8.0);
            self.members_ui(ui, manage, &mut actions);
            ui.add_space(16.0);
            self.invitations_ui(ui, manage, &mut actions);
        });
        if let Some(action) = self.confirm_ui(ui) {
            actions.push(action);
        }
        actions
    }

    fn members_ui(&mut self, ui: &mut Ui, manage: bool, actions: &mut Vec<PeopleAction>) {
        ui.label(RichText::new(format!("Members ({})", self.members.len())).strong());
        let mut confirm = None;
        let mut change = None;
        egui::Grid::new("members_grid").num_columns(5).striped(true).spacing([16.0, 6.0]).show(ui, |ui| {
            for title in ["Name", "E-mail", "Role", "Last sign-in", ""] {
                ui.label(RichText::new(title).strong());
            }
            ui.end_row();
            for member in &self.members {
                let me = self.is_me(member);
                let busy = self.busy.contains(&member.id);
                let name = display_name(member);
                ui.label(if me { format!("{name} (you)") } else { name.clone() });
                ui.label(&member.email);
                if manage {
                    let mut role = member.role;
                    ui.add_enabled_ui(!busy, |ui| {
                        egui::ComboBox::from_id_salt(("member_role", member.id))
                            .selected_text(role_title(role))
                            .show_ui(ui, |ui| {
                                for r in Role::ALL {
                                    ui.selectable_value(&mut role, r, role_title(r));
                                }
                            });
                    });
                    if role != member.role {
                        if me && member.role == Role::Admin {
                            confirm = Some(Confirm::DemoteSelf { id: member.id, role });
                        } else {
                            change = Some((member.id, role));
                        }
                    }
                } else {
                    ui.label(role_title(member.role));
                }
                ui.label(member.last_login_at.map_or("never".to_owned(), when));
                ui.horizontal(|ui| {
                    if manage && !me && ui.add_enabled(!busy, egui::Button::new("Remove…")).clicked() {
                        confirm = Some(Confirm::Remove { id: member.id, who: name.clone() });
                    }
                    if busy {
                        ui.spinner();
                    }
                });
                ui.end_row();
            }
        });
        if let Some((id, role)) = change {
            self.busy.push(id);
            actions.push(PeopleAction::ChangeRole { id, role });
        }
        if confirm.is_some() {
            self.confirm = confirm;
        }
    }

    fn invitations_ui(&mut self, ui: &mut Ui, manage: bool, actions: &mut Vec<PeopleAction>) {
        ui.label(RichText::new(format!("Pending invitations ({})", self.invitations.len())).strong());
        if self.invitations.is_empty() {
            ui.label(RichText::new("No pending invitations.").weak());
            return;
        }
        let mut confirm = None;
        let mut resend = None;
        egui::Grid::new("invitations_grid").num_columns(5).striped(true).spacing([16.0, 6.0]).show(ui, |ui| {
            for title in ["E-mail", "Name", "Role", "Expires", ""] {
                ui.label(RichText::new(title).strong());
            }
            ui.end_row();
            for invitation in &self.invitations {
                let busy = self.busy.contains(&invitation.id);
                ui.label(&invitation.email);
                ui.label(invitation.full_name.as_deref().unwrap_or(""));
                ui.label(role_title(invitation.role));
                ui.label(when(invitation.expires_at));
                ui.horizontal(|ui| {
                    if manage {
                        if ui.add_enabled(!busy, egui::Button::new("Resend")).clicked() {
                            resend = Some(invitation.id);
                        }
                        if ui.add_enabled(!busy, egui::Button::new("Revoke…")).clicked() {
                            confirm = Some(Confirm::Revoke { id: invitation.id, email: invitation.email.clone() });
                        }
                    }
                    if busy {
                        ui.spinner();
                    }
                });
                ui.end_row();
            }
        });
        if let Some(id) = resend {
            self.busy.push(id);
            actions.push(PeopleAction::Resend(id));
        }
        if confirm.is_some() {
            self.confirm = confirm;
        }
    }

    /// The dialog for a step that cannot be undone; "yes" turns it into its action.
    fn confirm_ui(&mut self, ui: &mut Ui) -> Option<PeopleAction> {
        let confirm = self.confirm.clone()?;
        let (title, text, yes, action) = match &confirm {
            Confirm::Remove { id, who } => (
                "Remove member",
                format!(
                    "Remove {who} from the company? They lose access at once; inviting them again is the only way back."
                ),
                "Yes, remove",
                PeopleAction::Remove(*id),
            ),
            Confirm::Revoke { id, email } => (
                "Revoke invitation",
                format!("Revoke the invitation for {email}? Its code stops working."),
                "Yes, revoke",
                PeopleAction::Revoke(*id),
            ),
            Confirm::DemoteSelf { id, role } => (
                "Change your own role",
                format!(
                    "Make yourself {}? You lose the People controls at once; only another admin can give them back.",
                    role_title(*role)
                ),
                "Yes, change my role",
                PeopleAction::ChangeRole { id: *id, role: *role },
            ),
        };
        let mut chosen = None;
        egui::Modal::new(egui::Id::unique("people_confirm")).show(ui.ctx(), |ui| {
            ui.set_max_width(420.0);
            ui.heading(title);
            ui.label(text);
            ui.add_space(8.0);
            ui.horizontal(|ui| {
                if ui.button(yes).clicked() {
                    chosen = Some(true);
                }
                if ui.button("Cancel").clicked() {
                    chosen = Some(false);
                }
            });
        });
        match chosen? {
            true => {
                self.confirm = None;
                let id = match &action {
                    PeopleAction::Remove(id) | PeopleAction::Revoke(id) | PeopleAction::ChangeRole { id, .. } => *id,
                    _ => return Some(action),
                };
                self.busy.push(id);
                Some(action)
            }
            false => {
                self.confirm = None;
                None
            }
        }
    }
}

/// A moment as `2025-03-01 14:05 UTC`: the same for every reader.
fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02} {:02}:{:02} UTC", t.year(), t.month() as u8, t.day(), t.hour(), t.minute())
}

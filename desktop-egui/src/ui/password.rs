//! A new password typed twice, with its strength meter: the wizard, accepting an invitation,
//! resetting and changing a password all ask the same way and check the same rules
//! (`api_types::password`, which the server applies too).

use egui::{Color32, Ui};

use super::{FieldErrors, field_ui};

/// The meter under a new-password field: a bar and "Strength: <word>". Meant for a grid row
/// (an empty label cell first).
pub fn meter_ui(ui: &mut Ui, password: &str) {
    ui.label("");
    let (score, word) = api_types::password::strength(password);
    ui.horizontal(|ui| {
        let color = [
            Color32::RED,
            Color32::from_rgb(230, 120, 0),
            Color32::from_rgb(200, 170, 0),
            Color32::from_rgb(0, 160, 70),
        ][score.min(3) as usize];
        ui.add(egui::ProgressBar::new((score as f32 + 1.0) / 4.0).desired_width(180.0).fill(color));
        ui.label(format!("Strength: {word}"));
    });
    ui.end_row();
}

/// A new password and its confirmation, as typed.
#[derive(Debug, Clone, Default)]
pub struct NewPassword {
    pub password: String,
    pub confirm: String,
}

impl NewPassword {
    /// Grid rows: the password (errors under `field`), its meter, the confirmation (errors
    /// under `confirm`). Returns true when Enter was pressed in either field.
    pub fn ui(&mut self, ui: &mut Ui, label: &str, field: &str, errors: &FieldErrors) -> bool {
        let r = field_ui(ui, label, &mut self.password, errors.get(field), true);
        let mut submit = super::submitted(ui, &r);
        meter_ui(ui, &self.password);
        let r = field_ui(ui, "Confirm new password", &mut self.confirm, errors.get("confirm"), true);
        submit |= super::submitted(ui, &r);
        submit
    }

    /// The server's rules, checked before asking it. `context` holds words the password must
    /// not contain (the e-mail's local part).
    pub fn check(&self, field: &str, context: &[&str], errors: &mut FieldErrors) {
        if let Err(why) = api_types::password::check_strength(&self.password, context) {
            errors.set(field, format!("The password {why}."));
        } else if self.confirm != self.password {
            errors.set("confirm", "The passwords do not match.");
        }
    }

    pub fn clear(&mut self) {
        self.password.clear();
        self.confirm.clear();
    }
}

/// The local part of an address, a word the password must not contain.
pub fn email_name(email: &str) -> &str {
    email.trim().split('@').next().unwrap_or("")
}

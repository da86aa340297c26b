//! The dialogs that block the app: maintenance (retries until it ends), signing in again when
//! the token runs out (the screen beneath, with any unsaved form, stays as it was), and the
//! "update required" screen where the self-updater will hook in.

use egui::{RichText, Ui};

use super::{field_ui, submitted};

/// The blocking maintenance dialog. Returns true when the user asks to retry now.
pub fn maintenance_ui(ui: &mut Ui, message: &str) -> bool {
    let mut retry = false;
    egui::Modal::new(egui::Id::unique("maintenance")).show(ui.ctx(), |ui| {
        ui.set_max_width(420.0);
        ui.heading("Maintenance in progress");
        ui.label(if message.is_empty() { "NexaCore is being maintained. Please wait." } else { message });
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Checking again every few seconds…");
        });
        if ui.button("Retry now").clicked() {
            retry = true;
        }
    });
    retry
}

/// The sign-in-again dialog's state.
#[derive(Debug, Default)]
pub struct Reauth {
    pub password: String,
    pub error: Option<String>,
    pub busy: bool,
    /// Why it is shown ("your session is about to expire").
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReauthAction {
    SignIn(String),
    SignOut,
}

pub fn reauth_ui(ui: &mut Ui, state: &mut Reauth, email: &str, company: &str) -> Option<ReauthAction> {
    let mut action = None;
    egui::Modal::new(egui::Id::unique("reauth")).show(ui.ctx(), |ui| {
        ui.set_max_width(420.0);
        ui.heading("Sign in again");
        ui.label(&state.reason);
        ui.label(RichText::new(format!("{email} at {company}. Nothing you typed is lost.")).weak());
        let mut submit = false;
        egui::Grid::new("reauth_grid").num_columns(2).show(ui, |ui| {
            let r = field_ui(ui, "Your password", &mut state.password, state.error.as_deref(), true);
            submit = submitted(ui, &r);
        });
        ui.horizontal(|ui| {
            let go = ui.add_enabled(!state.busy && !state.password.is_empty(), egui::Button::new("Continue"));
            if (go.clicked() || submit) && !state.busy && !state.password.is_empty() {
                state.busy = true;
                state.error = None;
                action = Some(ReauthAction::SignIn(state.password.clone()));
            }
            if ui.button("Sign out").clicked() {
                action = Some(ReauthAction::SignOut);
            }
            if state.busy {
                ui.spinner();
            }
        });
    });
    action
}

/// What the user chose on the "update required" screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequiredAction {
    BackToSignIn,
    Update(super::update::UpdateAction),
}

/// The "update required" screen, with the updater's panel (offer, download progress, failure).
pub fn update_required_ui(
    ui: &mut Ui,
    ours: &str,
    minimum: &str,
    latest: &str,
    draft_kept: bool,
    update: &super::update::UpdateView,
) -> Option<RequiredAction> {
    let mut action = None;
    ui.vertical_centered(|ui| {
        ui.add_space(60.0);
        ui.heading(RichText::new("Update required").size(26.0));
        ui.add_space(8.0);
        ui.label(format!("This is NexaCore {ours}. The server needs version {minimum} or later."));
        if !latest.is_empty() {
            ui.label(format!("The latest version is {latest}."));
        }
        ui.add_space(8.0);
        if draft_kept {
            ui.label("Your unsaved edit was kept: it opens again when you sign in with the new version.");
        }
        ui.add_space(16.0);
        if ui.button("Back to sign-in").clicked() {
            action = Some(RequiredAction::BackToSignIn);
        }
        // Below the button: the panel changes size as the check and download go on, and the
        // button must not move under the pointer.
        ui.add_space(16.0);
        ui.separator();
        if let Some(a) = super::update::update_panel_ui(ui, update) {
            action = Some(RequiredAction::Update(a));
        }
    });
    action
}

//! The updater's screens: what is on offer, the download's progress (size and speed), the
//! restart, a failure with its reason, and, after a rollback, what happened and why. The same
//! panel sits in "About / Check for updates" and inside the blocking "Update required" screen.

use api_types::releases::Channel;
use egui::{ProgressBar, RichText, Ui};

use super::error_ui;

/// Where the updater stands, as the screens show it.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum UpdateView {
    #[default]
    Idle,
    Checking,
    UpToDate,
    Available {
        version: String,
        notes: String,
        size: u64,
        mandatory: bool,
    },
    Downloading {
        version: String,
        done: u64,
        total: u64,
        bytes_per_sec: f64,
    },
    /// Verified and swapped in; the app restarts into it.
    Restarting {
        version: String,
    },
    Failed {
        reason: String,
    },
    /// The last update did not start properly and the previous version was put back.
    RolledBack {
        from: String,
        to: String,
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateAction {
    Check,
    Install,
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

/// The updater panel. Returns what the user asked for.
pub fn update_panel_ui(ui: &mut Ui, view: &UpdateView) -> Option<UpdateAction> {
    let mut action = None;
    match view {
        UpdateView::Idle => {
            if ui.button("Check for updates").clicked() {
                action = Some(UpdateAction::Check);
            }
        }
        UpdateView::Checking => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Checking for updates…");
            });
        }
        UpdateView::UpToDate => {
            ui.label("No newer version is published.");
            if ui.button("Check for updates").clicked() {
                action = Some(UpdateAction::Check);
            }
        }
        UpdateView::Available { version, notes, size, mandatory } => {
            ui.label(RichText::new(format!("Version {version} is available")).strong());
            if !notes.is_empty() {
                ui.label(notes);
            }
            ui.label(format!("Download: {}", megabytes(*size)));
            if *mandatory {
                ui.label("This update is required.");
            }
            if ui.button("Update now").clicked() {
                action = Some(UpdateAction::Install);
            }
        }
        UpdateView::Downloading { version, done, total, bytes_per_sec } => {
            ui.label(format!("Downloading version {version}"));
            let fraction = if *total > 0 { *done as f32 / *total as f32 } else { 0.0 };
            ui.add(ProgressBar::new(fraction).desired_width(360.0).show_percentage());
            ui.label(format!(
                "{} of {} at {}/s",
                megabytes(*done),
                megabytes(*total),
                megabytes(bytes_per_sec.max(0.0) as u64)
            ));
        }
        UpdateView::Restarting { version } => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!("Version {version} is verified and installed; restarting…"));
            });
        }
        UpdateView::Failed { reason } => {
            error_ui(ui, &format!("The update did not complete: {reason}"));
            ui.label("NexaCore is unchanged.");
            if ui.button("Try again").clicked() {
                action = Some(UpdateAction::Check);
            }
        }
        UpdateView::RolledBack { from, to, reason } => {
            error_ui(ui, &format!("Version {to} did not start properly, so NexaCore went back to {from}."));
            ui.label(format!("Why: {reason}"));
            ui.label("This was reported; the release is checked before it is offered again.");
        }
    }
    action
}

/// The release channel, as a choice: "Channel: stable" and a radio button per channel.
pub fn channel_ui(ui: &mut Ui, channel: &mut Channel) {
    ui.horizontal(|ui| {
        ui.label(format!("Channel: {}", channel.as_str()));
        for choice in Channel::ALL {
            let name = match choice {
                Channel::Stable => "Stable",
                Channel::Beta => "Beta (earlier, less proven)",
            };
            ui.radio_value(channel, choice, name);
        }
    });
}

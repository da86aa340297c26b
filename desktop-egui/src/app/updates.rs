//! The updater in the app: "About / Check for updates", the "Update required" screen's
//! download, and what the last update's outcome was. The work runs on the backend; progress and
//! results come back as [`UpdateMsg`]s.

use crate::ui::update::{UpdateAction, UpdateView};
use crate::updater::download::Progress;
use crate::updater::launch::UpdatePaths;
use crate::updater::state::{Outcome, UpdateState};
use crate::updater::{self, Offer};

use super::{Msg, NexaApp, SettingsStore};

#[derive(Debug)]
pub enum UpdateMsg {
    Checked(Result<Option<Offer>, String>),
    Progress { version: String, progress: Progress },
    Installed(Result<String, String>),
}

/// The updater's part of the app's state.
#[derive(Debug, Default)]
pub struct Updates {
    pub view: UpdateView,
    pub offer: Option<Offer>,
    /// "About / Check for updates" is open.
    pub about_open: bool,
}

pub(super) fn paths(store: &SettingsStore) -> UpdatePaths {
    match store {
        SettingsStore::File(path) => UpdatePaths::beside(Some(path)),
        SettingsStore::Memory => UpdatePaths::beside(None),
    }
}

impl NexaApp {
    /// What the last update did, told once (from `updater::launch::on_start`).
    pub fn show_update_outcome(&mut self, outcome: Outcome) {
        if let Outcome::RolledBack { from, to, reason } = outcome {
            self.updates.view = UpdateView::RolledBack { from, to, reason };
            self.updates.about_open = true;
        }
    }

    pub fn open_about(&mut self) {
        self.updates.about_open = true;
    }

    pub(super) fn on_update_action(&mut self, action: UpdateAction) {
        let Some(build) = updater::this_build() else {
            self.updates.view = UpdateView::Failed { reason: "this platform has no updates".into() };
            return;
        };
        match action {
            UpdateAction::Check => {
                self.updates.view = UpdateView::Checking;
                let (base, paths) = (self.settings.server_url.clone(), paths(&self.store));
                self.backend.spawn(async move {
                    let result = async {
                        let file = paths.state_file();
                        let mut state = UpdateState::load_or_create(&file).map_err(|e| e.to_string())?;
                        let keys = release::TrustedKeys::compiled_in();
                        let now = time::OffsetDateTime::now_utc();
                        let http = reqwest::Client::new();
                        updater::check(&http, &base, build, &keys, &mut state, &file, now, true)
                            .await
                            .map_err(|e| e.to_string())
                    }
                    .await;
                    Msg::Update(UpdateMsg::Checked(result))
                });
            }
            UpdateAction::Install => {
                let Some(offer) = self.updates.offer.clone() else { return };
                let (base, paths, sink) = (self.settings.server_url.clone(), paths(&self.store), self.backend.sink());
                let version = offer.manifest.version.to_string();
                self.updates.view = UpdateView::Downloading {
                    version: version.clone(),
                    done: 0,
                    total: offer.manifest.size,
                    bytes_per_sec: 0.0,
                };
                self.backend.spawn(async move {
                    let http = reqwest::Client::new();
                    let mut last = std::time::Instant::now();
                    let result = updater::install_offer(&http, &base, build, &offer, &paths, |progress| {
                        // A few updates a second are enough for a progress bar.
                        if last.elapsed().as_millis() >= 100 || progress.done == progress.total {
                            last = std::time::Instant::now();
                            sink.send(Msg::Update(UpdateMsg::Progress { version: version.clone(), progress }));
                        }
                    })
                    .await;
                    Msg::Update(UpdateMsg::Installed(result.map(|()| version)))
                });
            }
        }
    }

    pub(super) fn on_update(&mut self, msg: UpdateMsg) {
        match msg {
            UpdateMsg::Checked(Ok(Some(offer))) => {
                let m = &offer.manifest;
                self.updates.view = UpdateView::Available {
                    version: m.version.to_string(),
                    notes: m.notes.clone(),
                    size: m.size,
                    mandatory: m.mandatory,
                };
                self.updates.offer = Some(offer);
            }
            UpdateMsg::Checked(Ok(None)) => self.updates.view = UpdateView::UpToDate,
            UpdateMsg::Checked(Err(reason)) | UpdateMsg::Installed(Err(reason)) => {
                self.updates.view = UpdateView::Failed { reason }
            }
            UpdateMsg::Progress { version, progress } => {
                self.updates.view = UpdateView::Downloading {
                    version,
                    done: progress.done,
                    total: progress.total,
                    bytes_per_sec: progress.bytes_per_sec,
                };
            }
            UpdateMsg::Installed(Ok(version)) => {
                self.updates.view = UpdateView::Restarting { version };
                updater::restart();
            }
        }
    }

    /// The "About / Check for updates" window.
    pub(super) fn about_ui(&mut self, ctx: &egui::Context) {
        if !self.updates.about_open {
            return;
        }
        let mut open = true;
        let mut action = None;
        egui::Window::new("About NexaCore").open(&mut open).collapsible(false).resizable(false).show(ctx, |ui| {
            ui.label(format!("NexaCore {}", crate::CLIENT_VERSION));
            ui.label("Channel: stable");
            ui.separator();
            action = crate::ui::update::update_panel_ui(ui, &self.updates.view);
        });
        self.updates.about_open = open;
        if let Some(action) = action {
            self.on_update_action(action);
        }
    }
}

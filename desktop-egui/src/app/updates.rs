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
    /// The check at start-up: only an offer matters (no network is no news).
    Background(Option<Offer>),
    Progress {
        version: String,
        progress: Progress,
    },
    Installed(Result<String, String>),
}

/// The updater's part of the app's state.
#[derive(Debug, Default)]
pub struct Updates {
    pub view: UpdateView,
    pub offer: Option<Offer>,
    /// "About / Check for updates" is open.
    pub about_open: bool,
    /// The quiet check ran (once, when the server first answered).
    pub checked_at_start: bool,
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

    /// The quiet check at start-up (the rollout percentage applies): a required release leads to
    /// the "Update required" screen, any other shows in About.
    pub(super) fn check_in_background(&mut self) {
        let Some(build) = updater::this_build(self.settings.channel) else { return };
        let (base, paths) = (self.settings.server_url.clone(), paths(&self.store));
        self.backend.spawn(async move {
            let file = paths.state_file();
            let offer = match UpdateState::load_or_create(&file) {
                Ok(mut state) => {
                    let keys = crate::build_stamp::trusted_keys();
                    let now = time::OffsetDateTime::now_utc();
                    let http = reqwest::Client::new();
                    updater::check(&http, &base, build, &keys, &mut state, &file, now, false).await.ok().flatten()
                }
                Err(_) => None,
            };
            Msg::Update(UpdateMsg::Background(offer))
        });
    }

    pub(super) fn on_update_action(&mut self, action: UpdateAction) {
        let Some(build) = updater::this_build(self.settings.channel) else {
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
                        let keys = crate::build_stamp::trusted_keys();
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
                // Nothing else can be done on the blocking screen: the download starts at once.
                if matches!(self.screen, super::Screen::UpdateRequired { .. }) {
                    self.on_update_action(UpdateAction::Install);
                }
            }
            UpdateMsg::Background(Some(offer)) => {
                let required =
                    updater::this_build(self.settings.channel).is_some_and(|b| offer.is_required_for(b.version));
                let version = offer.manifest.version.to_string();
                let minimum = offer.manifest.min_supported.map_or(version.clone(), |v| v.to_string());
                if required {
                    // The screen first (its own check is skipped while this one is on the way),
                    // then the offer, which starts the download there.
                    self.updates.view = UpdateView::Checking;
                    self.update_required(minimum, version);
                }
                self.on_update(UpdateMsg::Checked(Ok(Some(offer))));
            }
            UpdateMsg::Background(None) => {}
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
        let mut channel = self.settings.channel;
        egui::Window::new("About NexaCore").open(&mut open).collapsible(false).resizable(false).show(ctx, |ui| {
            ui.label(format!("NexaCore {}", crate::client_version()));
            crate::ui::update::channel_ui(ui, &mut channel);
            ui.separator();
            action = crate::ui::update::update_panel_ui(ui, &self.updates.view);
        });
        self.updates.about_open = open;
        if channel != self.settings.channel {
            self.set_channel(channel);
        }
        if let Some(action) = action {
            self.on_update_action(action);
        }
    }

    /// Follows another release channel from now on (saved in the settings). An offer from the
    /// old channel no longer applies.
    pub fn set_channel(&mut self, channel: api_types::releases::Channel) {
        self.settings.channel = channel;
        self.save_settings();
        self.updates.offer = None;
        self.updates.view = UpdateView::Idle;
    }
}

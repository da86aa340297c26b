//! The app: which screen shows, the signed-in session (in memory only), the blocking dialogs,
//! and the glue that turns what screens ask for into background jobs and their answers back
//! into screen state. Nothing here blocks: every call goes through [`Backend`].

mod actions;
mod answers;
mod session;
mod updates;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui::Ui;
use uuid::Uuid;

use crate::api::ApiError;
use crate::api::wire::*;
use crate::backend::Backend;
use crate::client_version;
use crate::credentials::CredentialStore;
use crate::drafts::{Draft, DraftStore};
use crate::live::LiveUpdate;
use crate::settings::Settings;
use crate::ui::dialogs::{self, Reauth, ReauthAction};
use crate::ui::sign_in::SignIn;
use crate::ui::wizard::Wizard;
use crate::ui::workspace::Workspace;
use session::LiveHandle;
pub use updates::UpdateMsg;

/// How often the maintenance dialog asks whether maintenance is over.
pub const MAINTENANCE_POLL: Duration = Duration::from_secs(2);

/// Answers from the background.
#[derive(Debug)]
pub enum Msg {
    ServerChecked(Result<(Health, SystemStatus), ApiError>),
    Login {
        reauth: bool,
        email: String,
        result: Result<LoginOutcome, ApiError>,
    },
    Status(Result<SystemStatus, ApiError>),
    Data(DataAnswer),
    Wizard(WizardAnswer),
    People(PeopleAnswer),
    SignIn(SignInAnswer),
    /// `POST /auth/password` answered; on success the app signs in again with `password`.
    PasswordChanged {
        password: String,
        result: Result<(), ApiError>,
    },
    Live(LiveUpdate),
    /// Time to renew the access token `token` (ignored if another one replaced it meanwhile).
    RenewDue {
        token: String,
    },
    /// `POST /auth/refresh` answered.
    Renewed(Result<LoginToken, ApiError>),
    /// The updater's check, progress and result.
    Update(UpdateMsg),
    /// At start-up, the sign-in kept in the keyring was traded for a session (or not).
    Resumed {
        email: String,
        result: Result<LoginToken, ApiError>,
    },
}

/// Answers to the employees screen's data calls.
#[derive(Debug)]
pub enum DataAnswer {
    Employees(Result<Vec<Employee>, ApiError>),
    Departments(Result<Vec<Department>, ApiError>),
    Saved(Result<Employee, ApiError>),
    Deleted(Uuid, Result<(), ApiError>),
    DepartmentCreated(Result<Department, ApiError>),
    Accounts(Result<Vec<Account>, ApiError>),
}

impl DataAnswer {
    pub fn error(&self) -> Option<&ApiError> {
        match self {
            Self::Employees(r) => r.as_ref().err(),
            Self::Departments(r) => r.as_ref().err(),
            Self::Saved(r) => r.as_ref().err(),
            Self::Deleted(_, r) => r.as_ref().err(),
            Self::DepartmentCreated(r) => r.as_ref().err(),
            Self::Accounts(r) => r.as_ref().err(),
        }
    }
}

/// Answers to the People page's calls (on the control plane).
#[derive(Debug)]
pub enum PeopleAnswer {
    /// Both lists, fetched together.
    Loaded {
        members: Result<Vec<Member>, ApiError>,
        invitations: Result<Vec<Invitation>, ApiError>,
    },
    Invited(Result<Invitation, ApiError>),
    Resent(Uuid, Result<Invitation, ApiError>),
    Revoked(Uuid, Result<(), ApiError>),
    RoleChanged(Uuid, Result<Member, ApiError>),
    Removed(Uuid, Result<(), ApiError>),
}

impl PeopleAnswer {
    pub fn error(&self) -> Option<&ApiError> {
        match self {
            Self::Loaded { members, invitations } => members.as_ref().err().or(invitations.as_ref().err()),
            Self::Invited(r) | Self::Resent(_, r) => r.as_ref().err(),
            Self::Revoked(_, r) | Self::Removed(_, r) => r.as_ref().err(),
            Self::RoleChanged(_, r) => r.as_ref().err(),
        }
    }
}

/// Answers to the sign-in screen's password-reset calls (an accepted invitation answers as a
/// [`Msg::Login`]).
#[derive(Debug)]
pub enum SignInAnswer {
    ResetRequested(Result<(), ApiError>),
    /// On success the app signs in with `password` at once.
    ResetConfirmed {
        email: String,
        password: String,
        result: Result<(), ApiError>,
    },
}

/// Answers to the company wizard's calls.
#[derive(Debug)]
pub enum WizardAnswer {
    Options(Result<SignupOptions, ApiError>),
    SlugChecked { asked: String, result: Result<SlugAvailability, ApiError> },
    Created(Result<CreatedTenant, ApiError>),
}

/// The signed-in user's session. Kept in memory only; sign-out drops it.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub api_url: String,
    pub ws_url: String,
    pub tenant: TenantSummary,
    pub email: String,
    /// From the token; an unknown word reads as staff, the least one may do.
    pub role: Role,
    /// When the token runs out: a refusal well before that means access was withdrawn.
    pub expires_at: Instant,
    /// Renews the access token before it runs out; also kept in the OS keyring (see
    /// [`CredentialStore`]) so the next start needs no password.
    pub refresh_token: Option<String>,
}

#[derive(Debug)]
pub enum Screen {
    SignIn(Box<SignIn>),
    Wizard(Box<Wizard>),
    /// Signed in: the company's pages.
    Company(Box<Workspace>),
    UpdateRequired {
        minimum: String,
        latest: String,
        /// An unsaved edit was kept and comes back at the next sign-in.
        draft_kept: bool,
    },
}

impl Screen {
    pub fn name(&self) -> &'static str {
        match self {
            Screen::SignIn(_) => "sign-in",
            Screen::Wizard(_) => "wizard",
            Screen::Company(w) => w.page.name(),
            Screen::UpdateRequired { .. } => "update-required",
        }
    }
}

/// Where the app keeps its settings: the platform's config dir, a given file, or nowhere
/// (tests).
#[derive(Debug, Clone)]
pub enum SettingsStore {
    File(PathBuf),
    Memory,
}

pub struct NexaApp {
    backend: Backend<Msg>,
    settings: Settings,
    store: SettingsStore,
    credentials: CredentialStore,
    drafts: DraftStore,
    /// The kept edit, when there is no file to keep it in (tests).
    draft: Option<Draft>,
    pub screen: Screen,
    pub session: Option<Session>,
    live: Option<LiveHandle>,
    /// The operator's message while maintenance lasts: a blocking dialog.
    pub maintenance: Option<String>,
    status_in_flight: bool,
    data_started: bool,
    pub reauth: Option<Reauth>,
    /// Signing in again after a password change: the refusals of the old token that arrive
    /// meanwhile (live 4001, 401s) are expected, not a reason to ask.
    renewing: bool,
    started: bool,
    /// The window title last sent, so it is sent only when it changes.
    title: String,
    /// The last diagnostics report copied to the clipboard (the next frame copies it).
    pub copied: Option<String>,
    copy_pending: bool,
    /// The updater: "About / Check for updates", the download on "Update required".
    pub updates: updates::Updates,
}

impl NexaApp {
    pub fn new(store: SettingsStore) -> Self {
        let settings = match &store {
            SettingsStore::File(path) => Settings::load(path),
            SettingsStore::Memory => Settings::default(),
        };
        Self::with_settings(settings, store)
    }

    pub fn with_settings(settings: Settings, store: SettingsStore) -> Self {
        let sign_in =
            SignIn::new(settings.server_url.clone(), settings.last_email.clone(), settings.last_company.clone());
        let trust = crate::tls::Trust::configured(settings.extra_ca_file.as_deref());
        Self {
            backend: Backend::with_client(crate::api::Client::with_trust(trust)),
            settings,
            drafts: match &store {
                SettingsStore::File(path) => DraftStore::File(path.with_file_name("draft.json")),
                SettingsStore::Memory => DraftStore::Memory,
            },
            draft: None,
            // A window keeps its sign-in in the OS keyring; an app with settings in memory
            // (tests, a throwaway run) keeps nothing.
            credentials: match &store {
                SettingsStore::File(_) => CredentialStore::os(),
                SettingsStore::Memory => CredentialStore::None,
            },
            store,
            screen: Screen::SignIn(Box::new(sign_in)),
            session: None,
            live: None,
            maintenance: None,
            status_in_flight: false,
            data_started: false,
            reauth: None,
            renewing: false,
            started: false,
            title: String::new(),
            copied: None,
            copy_pending: false,
            updates: updates::Updates::default(),
        }
    }

    /// Where the sign-in is kept between runs (tests pick their own keyring service).
    pub fn with_credentials(mut self, credentials: CredentialStore) -> Self {
        self.credentials = credentials;
        self
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn save_settings(&self) {
        if let SettingsStore::File(path) = &self.store
            && let Err(error) = self.settings.save(path)
        {
            tracing::warn!(%error, "could not save the settings");
        }
    }

    /// One frame: take in the background's answers, then draw.
    pub fn ui(&mut self, ui: &mut Ui) {
        self.backend.attach(ui.ctx());
        if !self.started {
            self.started = true;
            crate::ui::fonts::install(ui.ctx());
            if self.settings.ui_scale != 1.0 {
                ui.ctx().set_zoom_factor(self.settings.ui_scale.clamp(0.5, 3.0));
            }
            self.check_server(self.settings.server_url.clone());
            self.resume();
        }
        if std::mem::take(&mut self.copy_pending)
            && let Some(text) = &self.copied
        {
            ui.ctx().copy_text(text.clone());
        }
        for msg in self.backend.drain() {
            self.handle(msg);
        }
        let title = window_title(self.session.as_ref().map(|s| s.tenant.name.as_str()));
        if title != self.title {
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
        let zoom = ui.ctx().zoom_factor();
        if (zoom - self.settings.ui_scale).abs() > 0.01 {
            self.settings.ui_scale = zoom;
            self.save_settings();
        }
        match &mut self.screen {
            Screen::SignIn(sign_in) => {
                let action = egui::CentralPanel::default_margins()
                    .show(ui, |ui| egui::ScrollArea::vertical().show(ui, |ui| sign_in.ui(ui)).inner)
                    .inner;
                if let Some(action) = action {
                    self.on_sign_in_action(action);
                }
            }
            Screen::Wizard(wizard) => {
                let actions = egui::CentralPanel::default_margins().show(ui, |ui| wizard.ui(ui)).inner;
                for action in actions {
                    self.on_wizard_action(action);
                }
            }
            Screen::Company(workspace) => {
                let actions = workspace.ui(ui);
                for action in actions {
                    self.on_workspace_action(action);
                }
            }
            Screen::UpdateRequired { minimum, latest, draft_kept } => {
                let view = &self.updates.view;
                let action = egui::CentralPanel::default_margins()
                    .show(ui, |ui| {
                        dialogs::update_required_ui(ui, client_version(), minimum, latest, *draft_kept, view)
                    })
                    .inner;
                match action {
                    Some(dialogs::RequiredAction::BackToSignIn) => self.sign_out(),
                    Some(dialogs::RequiredAction::Update(action)) => self.on_update_action(action),
                    None => {}
                }
            }
        }
        let ctx = ui.ctx().clone();
        self.about_ui(&ctx);
        // A frame of a screen was drawn: a freshly updated version is healthy.
        crate::updater::launch::mark_healthy();
        if let Some(message) = self.maintenance.clone()
            && matches!(self.screen, Screen::Company(_))
            && dialogs::maintenance_ui(ui, &message)
        {
            self.check_status(Duration::ZERO);
        }
        if let (Some(reauth), Some(session)) = (self.reauth.as_mut(), self.session.as_ref())
            && self.maintenance.is_none()
            && let Some(action) = dialogs::reauth_ui(ui, reauth, &session.email, &session.tenant.name)
        {
            match action {
                ReauthAction::SignIn(password) => self.sign_in_again(password),
                ReauthAction::SignOut => self.sign_out(),
            }
        }
    }
}

/// The window's title: the signed-in company's name first, so windows (and task-bar
/// entries) of several companies can be told apart.
pub fn window_title(company: Option<&str>) -> String {
    match company.map(str::trim).filter(|c| !c.is_empty()) {
        Some(company) => format!("{company} — NexaCore"),
        None => "NexaCore".to_owned(),
    }
}

impl eframe::App for NexaApp {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        NexaApp::ui(self, ui);
    }
}

#[cfg(test)]
mod tests {
    use super::window_title;

    #[test]
    fn the_window_title_names_the_signed_in_company() {
        for (company, title) in [
            (None, "NexaCore"),
            (Some(""), "NexaCore"),
            (Some("Acme Tools"), "Acme Tools — NexaCore"),
            (Some(" Công ty Ánh Dương "), "Công ty Ánh Dương — NexaCore"),
        ] {
            assert_eq!(window_title(company), title, "{company:?}");
        }
    }
}

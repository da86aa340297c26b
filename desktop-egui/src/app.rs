//! The app: which screen shows, the signed-in session (in memory only), the blocking dialogs,
//! and the glue that turns what screens ask for into background jobs and their answers back
//! into screen state. Nothing here blocks: every call goes through [`Backend`].

use std::path::PathBuf;
use std::time::Duration;

use egui::Ui;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::CLIENT_VERSION;
use crate::api::wire::*;
use crate::api::{ApiError, normalize_url, version_below};
use crate::backend::Backend;
use crate::live::{self, LiveCommand, LiveStatus, LiveUpdate};
use crate::settings::Settings;
use crate::ui::dialogs::{self, Reauth, ReauthAction};
use crate::ui::employees::{EmployeesAction, EmployeesScreen};
use crate::ui::sign_in::{ServerCheck, SignIn, SignInAction};
use crate::ui::wizard::{Wizard, WizardAction};

/// How often the maintenance dialog asks whether maintenance is over.
pub const MAINTENANCE_POLL: Duration = Duration::from_secs(2);

/// Answers from the background.
#[derive(Debug)]
pub enum Msg {
    ServerChecked(Result<(Health, SystemStatus), ApiError>),
    Login { reauth: bool, email: String, result: Result<LoginOutcome, ApiError> },
    Status(Result<SystemStatus, ApiError>),
    Employees(Result<Vec<Employee>, ApiError>),
    Departments(Result<Vec<Department>, ApiError>),
    Saved(Result<Employee, ApiError>),
    Deleted(Uuid, Result<(), ApiError>),
    DepartmentCreated(Result<Department, ApiError>),
    Live(LiveUpdate),
    WizardOptions(Result<SignupOptions, ApiError>),
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
}

#[derive(Debug)]
pub enum Screen {
    SignIn(Box<SignIn>),
    Wizard(Box<Wizard>),
    Employees(Box<EmployeesScreen>),
    UpdateRequired { minimum: String, latest: String },
}

impl Screen {
    pub fn name(&self) -> &'static str {
        match self {
            Screen::SignIn(_) => "sign-in",
            Screen::Wizard(_) => "wizard",
            Screen::Employees(_) => "employees",
            Screen::UpdateRequired { .. } => "update-required",
        }
    }
}

/// The WebSocket task's handle: dropping it stops the task.
struct LiveHandle {
    commands: mpsc::UnboundedSender<LiveCommand>,
    abort: tokio::task::AbortHandle,
}

impl Drop for LiveHandle {
    fn drop(&mut self) {
        self.abort.abort();
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
    pub screen: Screen,
    pub session: Option<Session>,
    live: Option<LiveHandle>,
    /// The operator's message while maintenance lasts: a blocking dialog.
    pub maintenance: Option<String>,
    status_in_flight: bool,
    data_started: bool,
    pub reauth: Option<Reauth>,
    started: bool,
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
        Self {
            backend: Backend::new(),
            settings,
            store,
            screen: Screen::SignIn(Box::new(sign_in)),
            session: None,
            live: None,
            maintenance: None,
            status_in_flight: false,
            data_started: false,
            reauth: None,
            started: false,
        }
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
            if self.settings.ui_scale != 1.0 {
                ui.ctx().set_zoom_factor(self.settings.ui_scale.clamp(0.5, 3.0));
            }
            self.check_server(self.settings.server_url.clone());
        }
        for msg in self.backend.drain() {
            self.handle(msg);
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
            Screen::Employees(screen) => {
                let actions = screen.ui(ui);
                for action in actions {
                    self.on_employees_action(action);
                }
            }
            Screen::UpdateRequired { minimum, latest } => {
                let back = egui::CentralPanel::default_margins()
                    .show(ui, |ui| dialogs::update_required_ui(ui, CLIENT_VERSION, minimum, latest))
                    .inner;
                if back {
                    self.sign_out();
                }
            }
        }
        if let Some(message) = self.maintenance.clone()
            && matches!(self.screen, Screen::Employees(_))
            && dialogs::maintenance_ui(ui, &message)
        {
            self.check_status(Duration::ZERO);
        }
        if let (Some(reauth), Some(session)) = (self.reauth.as_mut(), self.session.as_ref())
            && self.maintenance.is_none()
            && let Some(action) = dialogs::reauth_ui(ui, reauth, &session.email, &session.tenant.name)
        {
            match action {
                ReauthAction::SignIn(password) => {
                    let request = LoginRequest {
                        email: session.email.clone(),
                        password,
                        tenant: Some(session.tenant.slug.clone()),
                    };
                    self.login(request, true);
                }
                ReauthAction::SignOut => self.sign_out(),
            }
        }
    }

    // --- actions ----------------------------------------------------------------------------

    fn check_server(&self, url: String) {
        let client = self.backend.client.clone();
        self.backend.spawn(async move { Msg::ServerChecked(client.check_server(&normalize_url(&url)).await) });
    }

    fn login(&self, request: LoginRequest, reauth: bool) {
        let client = self.backend.client.clone();
        let base = self.settings.server_url.clone();
        let email = request.email.clone();
        self.backend.spawn(async move { Msg::Login { reauth, email, result: client.login(&base, &request).await } });
    }

    fn on_sign_in_action(&mut self, action: SignInAction) {
        match action {
            SignInAction::CheckServer(url) => {
                self.settings.server_url = normalize_url(&url);
                self.save_settings();
                self.check_server(url);
            }
            SignInAction::SignIn { email, password, company } => {
                if let Screen::SignIn(s) = &self.screen {
                    self.settings.server_url = normalize_url(&s.server_url);
                }
                self.login(LoginRequest { email, password, tenant: company }, false);
            }
            SignInAction::CreateCompany => {
                if let Screen::SignIn(s) = &self.screen {
                    self.settings.server_url = normalize_url(&s.server_url);
                }
                self.screen = Screen::Wizard(Box::default());
            }
        }
    }

    fn on_wizard_action(&mut self, action: WizardAction) {
        let client = self.backend.client.clone();
        let base = self.settings.server_url.clone();
        match action {
            WizardAction::LoadOptions => {
                self.backend.spawn(async move { Msg::WizardOptions(client.signup_options(&base).await) });
            }
            WizardAction::CheckSlug { value, by_name } => {
                self.backend.spawn(async move {
                    let result = client.slug_availability(&base, &value, by_name).await;
                    Msg::SlugChecked { asked: value, result }
                });
            }
            WizardAction::Create { request, idempotency_key } => {
                self.backend
                    .spawn(async move { Msg::Created(client.create_tenant(&base, &request, &idempotency_key).await) });
            }
            WizardAction::Cancelled => self.sign_out(),
            WizardAction::Open(created) => {
                let email = match &self.screen {
                    Screen::Wizard(w) => w.admin_email.trim().to_owned(),
                    _ => String::new(),
                };
                self.enter_company(created, email);
            }
        }
    }

    fn on_employees_action(&mut self, action: EmployeesAction) {
        let Some(session) = self.session.clone() else { return };
        let client = self.backend.client.clone();
        let (api, token) = (session.api_url, session.token);
        match action {
            EmployeesAction::Save { id: None, input, .. } => {
                self.backend.spawn(async move { Msg::Saved(client.create_employee(&api, &token, &input).await) });
            }
            EmployeesAction::Save { id: Some(id), version, input } => {
                self.backend
                    .spawn(async move { Msg::Saved(client.update_employee(&api, &token, id, version, &input).await) });
            }
            EmployeesAction::Delete { id, version } => {
                self.backend
                    .spawn(async move { Msg::Deleted(id, client.delete_employee(&api, &token, id, version).await) });
            }
            EmployeesAction::CreateDepartment(name) => {
                self.backend
                    .spawn(async move { Msg::DepartmentCreated(client.create_department(&api, &token, &name).await) });
            }
            EmployeesAction::Reload => self.reload(),
            EmployeesAction::SignOut => self.sign_out(),
        }
    }

    /// Signed in (login, or the wizard's new company): open the employees screen. Data calls
    /// wait for the status check.
    pub fn enter_company(&mut self, token: LoginToken, email: String) {
        self.settings.last_email = email.clone();
        self.settings.last_company = token.tenant.slug.clone();
        self.save_settings();
        self.screen = Screen::Employees(Box::new(EmployeesScreen::new(token.tenant.name.clone(), email.clone())));
        self.session = Some(Session {
            token: token.access_token,
            api_url: token.api_url,
            ws_url: token.ws_url,
            tenant: token.tenant,
            email,
        });
        self.live = None;
        self.maintenance = None;
        self.reauth = None;
        self.data_started = false;
        self.check_status(Duration::ZERO);
    }

    /// Reads the router's `/system/status` (after `delay`): before any data call, and while the
    /// maintenance dialog waits.
    fn check_status(&mut self, delay: Duration) {
        let Some(session) = &self.session else { return };
        if self.status_in_flight {
            return;
        }
        self.status_in_flight = true;
        let client = self.backend.client.clone();
        let (api, token) = (session.api_url.clone(), session.token.clone());
        self.backend.spawn_after(delay, async move { Msg::Status(client.system_status(&api, Some(&token)).await) });
    }

    fn start_data(&mut self) {
        self.data_started = true;
        self.start_live();
        self.reload();
    }

    fn reload(&mut self) {
        let Some(session) = self.session.clone() else { return };
        if let Screen::Employees(screen) = &mut self.screen {
            screen.loading = true;
            screen.load_error = None;
            screen.store.begin_load();
        }
        let client = self.backend.client.clone();
        let (api, token) = (session.api_url.clone(), session.token.clone());
        self.backend.spawn(async move { Msg::Departments(client.departments(&api, &token).await) });
        let client = self.backend.client.clone();
        let (api, token) = (session.api_url, session.token);
        self.backend.spawn(async move { Msg::Employees(client.all_employees(&api, &token).await) });
    }

    fn start_live(&mut self) {
        let Some(session) = &self.session else { return };
        if self.live.is_some() {
            return;
        }
        let (commands, rx) = mpsc::unbounded_channel();
        let sink = self.backend.sink();
        let task = live::run(session.ws_url.clone(), session.token.clone(), move |u| sink.send(Msg::Live(u)), rx);
        let abort = self.backend.spawn_task(task);
        self.live = Some(LiveHandle { commands, abort });
    }

    fn sign_out(&mut self) {
        self.live = None;
        self.session = None;
        self.maintenance = None;
        self.reauth = None;
        self.data_started = false;
        let mut sign_in = SignIn::new(
            self.settings.server_url.clone(),
            self.settings.last_email.clone(),
            self.settings.last_company.clone(),
        );
        sign_in.check = ServerCheck::Checking;
        self.screen = Screen::SignIn(Box::new(sign_in));
        self.check_server(self.settings.server_url.clone());
    }

    fn update_required(&mut self, minimum: String, latest: String) {
        self.live = None;
        self.maintenance = None;
        self.reauth = None;
        self.screen = Screen::UpdateRequired { minimum, latest };
    }

    fn ask_to_sign_in_again(&mut self, reason: &str) {
        if self.session.is_none() {
            return;
        }
        match &mut self.reauth {
            Some(r) => r.reason = reason.to_owned(),
            None => self.reauth = Some(Reauth { reason: reason.to_owned(), ..Reauth::default() }),
        }
    }

    fn enter_maintenance(&mut self, message: String) {
        self.maintenance = Some(message);
        self.check_status(MAINTENANCE_POLL);
    }

    /// Errors any data call may meet, handled the same everywhere. True when handled.
    fn handle_global_error(&mut self, error: &ApiError) -> bool {
        match error {
            ApiError::UpgradeRequired { min_client_version, latest_version } => {
                self.update_required(min_client_version.clone(), latest_version.clone());
                true
            }
            ApiError::Maintenance(message) => {
                self.enter_maintenance(message.clone());
                true
            }
            ApiError::Http { status: 401, .. } => {
                self.ask_to_sign_in_again("Your session has expired.");
                true
            }
            _ => false,
        }
    }

    // --- answers ----------------------------------------------------------------------------

    pub fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::ServerChecked(result) => {
                if let Ok((_, status)) = &result
                    && version_below(CLIENT_VERSION, &status.min_client_version) == Some(true)
                {
                    self.update_required(status.min_client_version.clone(), status.latest_version.clone());
                    return;
                }
                if let Screen::SignIn(s) = &mut self.screen {
                    s.on_checked(result);
                }
            }
            Msg::Login { reauth: true, result, .. } => match result {
                Ok(LoginOutcome::Signed(token)) => {
                    if let Some(session) = &mut self.session {
                        session.token = token.access_token.clone();
                    }
                    if let Some(live) = &self.live {
                        let _ = live.commands.send(LiveCommand::NewToken(token.access_token));
                    }
                    self.reauth = None;
                    if !self.data_started {
                        self.check_status(Duration::ZERO);
                    }
                }
                Ok(LoginOutcome::Choose(_)) => {
                    if let Some(r) = &mut self.reauth {
                        r.busy = false;
                        r.error = Some("Unexpected answer; sign out and in again.".into());
                    }
                }
                Err(error) => {
                    if !self.handle_global_error(&error)
                        && let Some(r) = &mut self.reauth
                    {
                        r.busy = false;
                        r.password.clear();
                        r.error = Some(match error.code() {
                            Some("bad_credentials") => "Wrong password.".into(),
                            _ => error.to_string(),
                        });
                    }
                }
            },
            Msg::Login { reauth: false, email, result } => match result {
                Ok(LoginOutcome::Signed(token)) => self.enter_company(token, email),
                Ok(LoginOutcome::Choose(tenants)) => {
                    if let Screen::SignIn(s) = &mut self.screen {
                        s.busy = false;
                        s.choices = Some(tenants);
                    }
                }
                Err(error) => {
                    if let ApiError::UpgradeRequired { min_client_version, latest_version } = &error {
                        self.update_required(min_client_version.clone(), latest_version.clone());
                    } else if let Screen::SignIn(s) = &mut self.screen {
                        s.on_failed(&error);
                    }
                }
            },
            Msg::Status(result) => {
                self.status_in_flight = false;
                if self.session.is_none() {
                    return;
                }
                match result {
                    Ok(status) => {
                        if version_below(CLIENT_VERSION, &status.min_client_version) == Some(true) {
                            self.update_required(status.min_client_version, status.latest_version);
                        } else if status.maintenance_mode {
                            self.enter_maintenance(status.message.unwrap_or_default());
                        } else {
                            let was_blocked = self.maintenance.take().is_some();
                            if !self.data_started {
                                self.start_data();
                            } else if was_blocked {
                                self.reload();
                            }
                        }
                    }
                    Err(error) => {
                        if !self.handle_global_error(&error) {
                            if let Screen::Employees(screen) = &mut self.screen {
                                screen.load_error = Some(format!("{error} — retrying…"));
                            }
                            self.check_status(MAINTENANCE_POLL);
                        }
                    }
                }
            }
            Msg::Employees(result) => {
                let error = result.as_ref().err().cloned();
                if let Screen::Employees(screen) = &mut self.screen {
                    screen.loading = false;
                    match result {
                        Ok(rows) => screen.store.replace_all(rows),
                        Err(ref e) => screen.load_error = Some(format!("Could not load the employees: {e}")),
                    }
                }
                if let Some(error) = error {
                    self.handle_global_error(&error);
                }
            }
            Msg::Departments(result) => match result {
                Ok(departments) => {
                    if let Screen::Employees(screen) = &mut self.screen {
                        screen.store.set_departments(departments);
                    }
                }
                Err(error) => {
                    self.handle_global_error(&error);
                }
            },
            Msg::Saved(result) => {
                if let Err(error) = &result {
                    self.handle_global_error(error);
                }
                if let Screen::Employees(screen) = &mut self.screen {
                    screen.on_saved(result);
                }
            }
            Msg::Deleted(id, result) => {
                if let Err(error) = &result {
                    self.handle_global_error(error);
                }
                if let Screen::Employees(screen) = &mut self.screen {
                    screen.on_deleted(id, result);
                }
            }
            Msg::DepartmentCreated(result) => {
                if let Err(error) = &result {
                    self.handle_global_error(error);
                }
                if let Screen::Employees(screen) = &mut self.screen {
                    screen.on_department_created(result);
                }
            }
            Msg::Live(update) => self.on_live(update),
            Msg::WizardOptions(result) => {
                if let Screen::Wizard(w) = &mut self.screen {
                    w.on_options(result);
                }
            }
            Msg::SlugChecked { asked, result } => {
                if let Screen::Wizard(w) = &mut self.screen {
                    w.on_slug_checked(&asked, result);
                }
            }
            Msg::Created(result) => {
                if let Screen::Wizard(w) = &mut self.screen {
                    w.on_created(result);
                }
            }
        }
    }

    fn on_live(&mut self, update: LiveUpdate) {
        if self.session.is_none() {
            return;
        }
        match update {
            LiveUpdate::Status(status) => {
                if status == LiveStatus::NeedsSignIn {
                    self.ask_to_sign_in_again("Your session has expired.");
                }
                if let Screen::Employees(screen) = &mut self.screen {
                    screen.live = status;
                }
            }
            LiveUpdate::Message(message) if message.channel == "system" => match message.action.as_str() {
                "maintenance" => {
                    let on = message.data.get("maintenance_mode").and_then(|v| v.as_bool()).unwrap_or(false);
                    if on {
                        let text = message.data.get("message").and_then(|m| m.as_str()).unwrap_or_default();
                        self.enter_maintenance(text.to_owned());
                    } else if self.maintenance.take().is_some() {
                        self.reload();
                    }
                }
                "token_expiring" => self.ask_to_sign_in_again("Your session is about to expire."),
                _ => {}
            },
            LiveUpdate::Message(message) => {
                if let Screen::Employees(screen) = &mut self.screen {
                    screen.apply_live(&message);
                }
            }
            LiveUpdate::Resync => self.reload(),
            LiveUpdate::UpgradeRequired => {
                self.update_required(String::new(), String::new());
                self.check_server(self.settings.server_url.clone());
            }
        }
    }
}

impl eframe::App for NexaApp {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        NexaApp::ui(self, ui);
    }
}

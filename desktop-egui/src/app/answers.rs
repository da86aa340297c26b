//! The background's answers, each handed to the state it concerns.

use std::time::Duration;

use super::{DataAnswer, MAINTENANCE_POLL, Msg, NexaApp, Screen, WizardAnswer};
use crate::CLIENT_VERSION;
use crate::api::wire::{Health, LoginOutcome, SystemNotice, SystemStatus, channel};
use crate::api::{ApiError, version_below};
use crate::live::{LiveCommand, LiveStatus, LiveUpdate};

impl NexaApp {
    pub fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::ServerChecked(result) => self.on_server_checked(result),
            Msg::Login { reauth: true, result, .. } => self.on_signed_in_again(result),
            Msg::Login { reauth: false, email, result } => self.on_signed_in(email, result),
            Msg::Status(result) => self.on_status(result),
            Msg::Data(answer) => self.on_data(answer),
            Msg::Wizard(answer) => self.on_wizard_answer(answer),
            Msg::Live(update) => self.on_live(update),
        }
    }

    fn on_server_checked(&mut self, result: Result<(Health, SystemStatus), ApiError>) {
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

    /// The re-authentication dialog's answer: a fresh token for the same session.
    fn on_signed_in_again(&mut self, result: Result<LoginOutcome, ApiError>) {
        match result {
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
        }
    }

    fn on_signed_in(&mut self, email: String, result: Result<LoginOutcome, ApiError>) {
        match result {
            Ok(LoginOutcome::Signed(token)) => self.enter_company(token, email),
            Ok(LoginOutcome::Choose(tenants)) => {
                if let Screen::SignIn(s) = &mut self.screen {
                    s.busy = false;
                    s.choices = Some(tenants);
                }
            }
            Err(ApiError::UpgradeRequired { min_client_version, latest_version }) => {
                self.update_required(min_client_version, latest_version);
            }
            Err(error) => {
                if let Screen::SignIn(s) = &mut self.screen {
                    s.on_failed(&error);
                }
            }
        }
    }

    fn on_status(&mut self, result: Result<SystemStatus, ApiError>) {
        self.status_in_flight = false;
        if self.session.is_none() {
            return;
        }
        match result {
            Ok(status) if version_below(CLIENT_VERSION, &status.min_client_version) == Some(true) => {
                self.update_required(status.min_client_version, status.latest_version);
            }
            Ok(status) if status.maintenance_mode => self.enter_maintenance(status.message.unwrap_or_default()),
            Ok(_) => {
                let was_blocked = self.maintenance.take().is_some();
                if !self.data_started {
                    self.start_data();
                } else if was_blocked {
                    self.reload();
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

    /// Data calls: errors every call may meet first (they may leave the screen), then the
    /// employees screen takes the answer.
    fn on_data(&mut self, answer: DataAnswer) {
        if let Some(error) = answer.error() {
            self.handle_global_error(&error.clone());
        }
        let Screen::Employees(screen) = &mut self.screen else { return };
        match answer {
            DataAnswer::Employees(result) => {
                screen.loading = false;
                match result {
                    Ok(rows) => screen.store.replace_all(rows),
                    Err(e) => screen.load_error = Some(format!("Could not load the employees: {e}")),
                }
            }
            DataAnswer::Departments(Ok(departments)) => screen.store.set_departments(departments),
            DataAnswer::Departments(Err(_)) => {}
            DataAnswer::Saved(result) => screen.on_saved(result),
            DataAnswer::Deleted(id, result) => screen.on_deleted(id, result),
            DataAnswer::DepartmentCreated(result) => screen.on_department_created(result),
        }
    }

    fn on_wizard_answer(&mut self, answer: WizardAnswer) {
        let Screen::Wizard(w) = &mut self.screen else { return };
        match answer {
            WizardAnswer::Options(result) => w.on_options(result),
            WizardAnswer::SlugChecked { asked, result } => w.on_slug_checked(&asked, result),
            WizardAnswer::Created(result) => w.on_created(result),
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
            LiveUpdate::Message(message) => match message.system() {
                Some(SystemNotice::Maintenance(notice)) if notice.maintenance_mode => {
                    self.enter_maintenance(notice.message.unwrap_or_default());
                }
                Some(SystemNotice::Maintenance(_)) => {
                    if self.maintenance.take().is_some() {
                        self.reload();
                    }
                }
                Some(SystemNotice::TokenExpiring(_)) => self.ask_to_sign_in_again("Your session is about to expire."),
                // The live task turns a resync into `LiveUpdate::Resync`.
                Some(SystemNotice::Resync(_)) => {}
                None if message.channel == channel::SYSTEM => {}
                None => {
                    if let Screen::Employees(screen) = &mut self.screen {
                        screen.apply_live(&message);
                    }
                }
            },
            LiveUpdate::Resync => self.reload(),
            LiveUpdate::UpgradeRequired => {
                self.update_required(String::new(), String::new());
                self.check_server(self.settings.server_url.clone());
            }
        }
    }
}

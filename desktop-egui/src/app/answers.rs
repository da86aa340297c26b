//! The background's answers, each handed to the state it concerns.

use std::time::Duration;

use super::session::{expiry_of, role_of};
use super::{DataAnswer, MAINTENANCE_POLL, Msg, NexaApp, PeopleAnswer, Screen, SignInAnswer, WizardAnswer};
use crate::api::wire::{Health, LoginOutcome, SystemNotice, SystemStatus, channel};
use crate::api::{ApiError, version_below};
use crate::client_version;
use crate::live::{LiveStatus, LiveUpdate};
use crate::ui::sign_in::Mode;

impl NexaApp {
    pub fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::ServerChecked(result) => {
                // The first time the server answers, look for an update quietly.
                if result.is_ok() && !std::mem::replace(&mut self.updates.checked_at_start, true) {
                    self.check_in_background();
                }
                self.on_server_checked(result)
            }
            Msg::Login { reauth: true, result, .. } => self.on_signed_in_again(result),
            Msg::Login { reauth: false, email, result } => self.on_signed_in(email, result),
            Msg::Status(result) => self.on_status(result),
            Msg::Data(answer) => self.on_data(answer),
            Msg::Wizard(answer) => self.on_wizard_answer(answer),
            Msg::People(answer) => self.on_people(answer),
            Msg::SignIn(answer) => self.on_sign_in_answer(answer),
            Msg::PasswordChanged { password, result } => self.on_password_changed(password, result),
            Msg::Live(update) => self.on_live(update),
            Msg::Update(msg) => self.on_update(msg),
            Msg::RenewDue { token } => {
                if self.session.as_ref().is_some_and(|s| s.token == token) {
                    self.renew();
                }
            }
            Msg::Renewed(Ok(token)) => self.on_signed_in_again(Ok(LoginOutcome::Signed(token))),
            Msg::Renewed(Err(ApiError::Unreachable(_))) => {
                // The server is away for now: try again shortly, the token may still have time.
                if let Some(session) = &self.session {
                    let token = session.token.clone();
                    self.backend.spawn_after(Duration::from_secs(10), async move { Msg::RenewDue { token } });
                }
            }
            Msg::Resumed { email, result } => self.on_resumed(email, result),
            Msg::Renewed(Err(error)) => {
                // The sign-in ended (signed out elsewhere, too old, access withdrawn): ask.
                if error.status() == Some(401) {
                    self.forget_sign_in();
                }
                if error.status() == Some(401) || !self.handle_global_error(&error) {
                    self.ask_to_sign_in_again("Your session has ended.");
                }
            }
        }
    }

    fn on_server_checked(&mut self, result: Result<(Health, SystemStatus), ApiError>) {
        if let Ok((_, status)) = &result
            && version_below(client_version(), &status.min_client_version) == Some(true)
        {
            self.update_required(status.min_client_version.clone(), status.latest_version.clone());
            return;
        }
        if let Screen::SignIn(s) = &mut self.screen {
            s.on_checked(result);
        }
    }

    /// Signed in again (the dialog, or after a password change): a fresh token for the same
    /// session, and perhaps a new role, which the screens follow at once.
    fn on_signed_in_again(&mut self, result: Result<LoginOutcome, ApiError>) {
        let after_password_change = std::mem::take(&mut self.renewing);
        match result {
            Ok(LoginOutcome::Signed(token)) => {
                let role = role_of(&token);
                let mut role_changed = false;
                if let Some(session) = &mut self.session {
                    session.token = token.access_token.clone();
                    session.expires_at = expiry_of(&token);
                    role_changed = session.role != role;
                    session.role = role;
                    if token.refresh_token.is_some() {
                        session.refresh_token = token.refresh_token.clone();
                    }
                }
                self.keep_sign_in();
                self.schedule_renewal(token.expires_in);
                if let Some(live) = &mut self.live {
                    live.new_token(token.access_token);
                }
                self.reauth = None;
                if let Screen::Company(workspace) = &mut self.screen {
                    workspace.set_role(role);
                    if after_password_change {
                        workspace.password = None;
                        workspace.notice = Some("Your password was changed.".into());
                    }
                }
                if !self.data_started {
                    self.check_status(Duration::ZERO);
                } else if role_changed {
                    self.reload();
                }
            }
            Err(error) if after_password_change => {
                // The new password is set but signing in with it failed: ask, like any refusal.
                if !self.handle_global_error(&error) {
                    if let Screen::Company(workspace) = &mut self.screen {
                        workspace.password = None;
                    }
                    self.ask_to_sign_in_again("Your password was changed: sign in with the new one.");
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
                    let company = self.session.as_ref().map_or(String::new(), |s| s.tenant.name.clone());
                    r.error = Some(match error.code() {
                        Some("bad_credentials") => "Wrong password.".into(),
                        Some("not_a_member") => format!("You are no longer a member of {company}. Sign out."),
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
            Ok(status) if version_below(client_version(), &status.min_client_version) == Some(true) => {
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
                    if let Screen::Company(workspace) = &mut self.screen {
                        workspace.employees.load_error = Some(format!("{error} — retrying…"));
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
        let Screen::Company(workspace) = &mut self.screen else { return };
        let screen = &mut workspace.employees;
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
            DataAnswer::Accounts(result) => workspace.ledger.on_accounts(result),
        }
    }

    /// People calls: the same global errors first (a 401 here is access withdrawn too).
    fn on_people(&mut self, answer: PeopleAnswer) {
        if let Some(error) = answer.error() {
            self.handle_global_error(&error.clone());
        }
        let Screen::Company(workspace) = &mut self.screen else { return };
        let people = &mut workspace.people;
        match answer {
            PeopleAnswer::Loaded { members, invitations } => people.on_loaded(members, invitations),
            PeopleAnswer::Invited(result) => people.on_invited(result),
            PeopleAnswer::Resent(id, result) => people.on_resent(id, result),
            PeopleAnswer::Revoked(id, result) => people.on_revoked(id, result),
            PeopleAnswer::RoleChanged(id, result) => people.on_role_changed(id, result),
            PeopleAnswer::Removed(id, result) => people.on_removed(id, result),
        }
    }

    fn on_sign_in_answer(&mut self, answer: SignInAnswer) {
        let Screen::SignIn(sign_in) = &mut self.screen else { return };
        match answer {
            SignInAnswer::ResetRequested(result) => {
                if let Mode::Reset(form) = &mut sign_in.mode {
                    form.on_requested(result);
                }
            }
            SignInAnswer::ResetConfirmed { email, password, result: Ok(()) } => {
                if let Some(action) = sign_in.signing_in_after_reset(email, password) {
                    self.on_sign_in_action(action);
                }
            }
            SignInAnswer::ResetConfirmed { result: Err(error), .. } => {
                if let Mode::Reset(form) = &mut sign_in.mode {
                    form.on_failed(&error);
                }
            }
        }
    }

    /// The password changed: every earlier token is refused now, so sign in again with the new
    /// password at once (the dialog stays busy until then).
    fn on_password_changed(&mut self, password: String, result: Result<(), ApiError>) {
        match result {
            Ok(()) => {
                self.renewing = true;
                self.sign_in_again(password);
            }
            Err(error) => {
                self.renewing = false;
                if error.status() == Some(401) && error.code() != Some("bad_credentials") {
                    self.handle_global_error(&error);
                }
                if let Screen::Company(workspace) = &mut self.screen
                    && let Some(dialog) = &mut workspace.password
                {
                    dialog.on_failed(&error);
                }
            }
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
                match &status {
                    LiveStatus::Live => tracing::info!("live connection up"),
                    LiveStatus::Reconnecting { attempt, .. } => {
                        tracing::warn!(attempt, "live connection lost; reconnecting")
                    }
                    LiveStatus::Stopped(why) => tracing::warn!(%why, "live connection stopped"),
                    LiveStatus::NeedsSignIn { .. } => tracing::info!("live connection refused the token"),
                    _ => {}
                }
                // A refusal of a token already replaced is old news.
                if let LiveStatus::NeedsSignIn { token } = status
                    && self.live.as_ref().is_none_or(|live| token >= live.tokens_sent)
                {
                    self.ask_to_sign_in_again(&self.refusal_reason());
                }
                let mut stale_error = false;
                if let Screen::Company(workspace) = &mut self.screen {
                    // Back after an outage: what failed meanwhile is loaded again, and its
                    // error line goes (the live replay from `since` covers the rest).
                    stale_error = status == LiveStatus::Live && workspace.on_back_online();
                    workspace.live = status;
                }
                if stale_error && self.maintenance.is_none() {
                    self.reload();
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
                Some(SystemNotice::TokenExpiring(_)) => self.renew(),
                // The live task turns a resync into `LiveUpdate::Resync`.
                Some(SystemNotice::Resync(_)) => {}
                Some(SystemNotice::ClientVersions(versions)) => {
                    if version_below(client_version(), &versions.min_client_version) == Some(true) {
                        self.update_required(versions.min_client_version, versions.latest_version);
                    }
                }
                None if message.channel == channel::SYSTEM => {}
                None => {
                    if let Screen::Company(workspace) = &mut self.screen {
                        workspace.employees.apply_live(&message);
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

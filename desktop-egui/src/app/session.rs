//! The signed-in session's life: entering a company, the status check that gates data calls,
//! loading, the live connection, maintenance, re-authentication, sign-out.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{DataAnswer, MAINTENANCE_POLL, Msg, NexaApp, Screen, Session};
use crate::api::ApiError;
use crate::api::wire::{LoginToken, Role};
use crate::drafts::Draft;
use crate::live::{self, LiveCommand};
use crate::ui::dialogs::Reauth;
use crate::ui::sign_in::{ServerCheck, SignIn};
use crate::ui::workspace::{Page, Workspace};

/// A refusal of a token this close to its expiry is taken for the expiry itself.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);

/// The WebSocket task's handle: dropping it stops the task.
pub(super) struct LiveHandle {
    pub(super) commands: mpsc::UnboundedSender<LiveCommand>,
    pub(super) abort: tokio::task::AbortHandle,
    /// How many new tokens were sent (the task numbers its tokens the same way).
    pub(super) tokens_sent: u32,
}

impl LiveHandle {
    pub(super) fn new_token(&mut self, token: String) {
        if self.commands.send(LiveCommand::NewToken(token)).is_ok() {
            self.tokens_sent += 1;
        }
    }
}

/// The role a token names; an unknown word (a newer server) grants the least.
pub(super) fn role_of(token: &LoginToken) -> Role {
    Role::parse(&token.role).unwrap_or_else(|| {
        tracing::warn!(role = %token.role, "unknown role in the token; treating it as staff");
        Role::Staff
    })
}

/// When a token issued now runs out.
pub(super) fn expiry_of(token: &LoginToken) -> Instant {
    Instant::now() + Duration::from_secs(token.expires_in)
}

impl Drop for LiveHandle {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

impl NexaApp {
    /// Signed in (login, an accepted invitation, or the wizard's new company): open the
    /// company on its employees. Data calls wait for the status check.
    pub fn enter_company(&mut self, token: LoginToken, email: String) {
        self.settings.last_email = email.clone();
        self.settings.last_company = token.tenant.slug.clone();
        self.save_settings();
        let role = role_of(&token);
        let mut workspace = Workspace::new(token.tenant.name.clone(), email.clone(), role);
        if let Some(draft) = self.drafts.take(&token.tenant.slug, &mut self.draft) {
            workspace.employees.form = Some(draft.form());
            workspace.notice = Some("Your unsaved edit from before the update is back.".into());
        }
        self.screen = Screen::Company(Box::new(workspace));
        self.session = Some(Session {
            expires_at: expiry_of(&token),
            token: token.access_token,
            api_url: token.api_url,
            ws_url: token.ws_url,
            tenant: token.tenant,
            email,
            role,
            refresh_token: token.refresh_token.clone(),
        });
        self.keep_sign_in();
        self.schedule_renewal(token.expires_in);
        self.live = None;
        self.maintenance = None;
        self.reauth = None;
        self.renewing = false;
        self.data_started = false;
        self.check_status(Duration::ZERO);
    }

    /// Reads the router's `/system/status` (after `delay`): before any data call, and while the
    /// maintenance dialog waits.
    pub(super) fn check_status(&mut self, delay: Duration) {
        let Some(session) = &self.session else { return };
        if self.status_in_flight {
            return;
        }
        self.status_in_flight = true;
        let client = self.backend.client.clone();
        let (api, token) = (session.api_url.clone(), session.token.clone());
        self.backend.spawn_after(delay, async move { Msg::Status(client.system_status(&api, Some(&token)).await) });
    }

    pub(super) fn start_data(&mut self) {
        self.data_started = true;
        self.start_live();
        self.reload();
    }

    pub(super) fn reload(&mut self) {
        let Some(session) = self.session.clone() else { return };
        let mut page_load = None;
        if let Screen::Company(workspace) = &mut self.screen {
            let screen = &mut workspace.employees;
            screen.loading = true;
            screen.load_error = None;
            screen.store.begin_load();
            if workspace.page != Page::Employees {
                page_load = workspace.open(workspace.page);
            }
        }
        if let Some(action) = page_load {
            self.on_workspace_action(action);
        }
        let client = self.backend.client.clone();
        let (api, token) = (session.api_url.clone(), session.token.clone());
        self.backend.spawn(async move { Msg::Data(DataAnswer::Departments(client.departments(&api, &token).await)) });
        let client = self.backend.client.clone();
        let (api, token) = (session.api_url, session.token);
        self.backend.spawn(async move { Msg::Data(DataAnswer::Employees(client.all_employees(&api, &token).await)) });
    }

    pub(super) fn start_live(&mut self) {
        let Some(session) = &self.session else { return };
        if self.live.is_some() {
            return;
        }
        let (commands, rx) = mpsc::unbounded_channel();
        let sink = self.backend.sink();
        let trust = self.backend.client.trust().clone();
        let task =
            live::run(session.ws_url.clone(), session.token.clone(), trust, move |u| sink.send(Msg::Live(u)), rx);
        let abort = self.backend.spawn_task(task);
        self.live = Some(LiveHandle { commands, abort, tokens_sent: 0 });
    }

    /// Renews the token a minute before it runs out (or at once if it has less left).
    pub(super) fn schedule_renewal(&self, expires_in: u64) {
        let Some(session) = &self.session else { return };
        if session.refresh_token.is_none() {
            return;
        }
        let delay = Duration::from_secs(expires_in.saturating_sub(60));
        let token = session.token.clone();
        self.backend.spawn_after(delay, async move { Msg::RenewDue { token } });
    }

    /// Trades the refresh token for a new access token, silently.
    pub(super) fn renew(&mut self) {
        let Some(refresh_token) = self.session.as_ref().and_then(|s| s.refresh_token.clone()) else {
            self.ask_to_sign_in_again("Your session is about to expire.");
            return;
        };
        let client = self.backend.client.clone();
        let base = self.settings.server_url.clone();
        self.backend.spawn(async move { Msg::Renewed(client.refresh(&base, &refresh_token).await) });
    }

    /// Keeps the session's refresh token in the keyring for the next start.
    pub(super) fn keep_sign_in(&self) {
        if let Some(session) = &self.session
            && let Some(refresh_token) = &session.refresh_token
        {
            self.credentials.save(&self.settings.server_url, &session.email, refresh_token);
        }
    }

    /// The next start needs the password again.
    pub(super) fn forget_sign_in(&self) {
        if let Some(session) = &self.session {
            self.credentials.forget(&self.settings.server_url, &session.email);
        }
    }

    /// At start-up: a sign-in kept by an earlier run is traded for a session, without a
    /// password, while the sign-in form waits.
    pub(super) fn resume(&mut self) {
        // Opened on an invitation or a reset form (a link): that form is what the user came for.
        if !matches!(&self.screen, Screen::SignIn(s) if matches!(s.mode, crate::ui::sign_in::Mode::SignIn)) {
            return;
        }
        let email = self.settings.last_email.clone();
        let Some(refresh_token) = self.credentials.load(&self.settings.server_url, &email) else { return };
        if let Screen::SignIn(sign_in) = &mut self.screen {
            sign_in.busy = true;
            sign_in.notice = Some(format!("Signing in again as {email}…"));
        }
        tracing::info!("resuming the sign-in kept in the keyring");
        let client = self.backend.client.clone();
        let base = self.settings.server_url.clone();
        self.backend.spawn(async move { Msg::Resumed { email, result: client.refresh(&base, &refresh_token).await } });
    }

    pub(super) fn on_resumed(&mut self, email: String, result: Result<LoginToken, ApiError>) {
        if let Screen::SignIn(sign_in) = &mut self.screen {
            sign_in.busy = false;
            sign_in.notice = None;
        }
        match result {
            Ok(token) if matches!(&self.screen, Screen::SignIn(s) if matches!(s.mode, crate::ui::sign_in::Mode::SignIn)) => {
                self.enter_company(token, email)
            }
            // Signed in by hand meanwhile, or another form opened: that stays.
            Ok(_) => {}
            // The server is away: the token is kept for the next try.
            Err(ApiError::Unreachable(_)) => {}
            Err(error) => {
                tracing::info!(%error, "the kept sign-in was refused; the password is needed");
                self.credentials.forget(&self.settings.server_url, &email);
            }
        }
    }

    pub(super) fn sign_out(&mut self) {
        self.forget_sign_in();
        // The sign-in ends on the server too, so the refresh token is worthless if it leaked.
        if let Some(refresh_token) = self.session.as_ref().and_then(|s| s.refresh_token.clone()) {
            let client = self.backend.client.clone();
            let base = self.settings.server_url.clone();
            self.backend.spawn_task(async move {
                let _ = client.logout(&base, &refresh_token).await;
            });
        }
        self.live = None;
        self.session = None;
        self.maintenance = None;
        self.reauth = None;
        self.renewing = false;
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

    pub(super) fn update_required(&mut self, minimum: String, latest: String) {
        // An edit in progress is kept: the new version opens it again after sign-in.
        let draft = match (&self.screen, &self.session) {
            (Screen::Company(workspace), Some(session)) => {
                workspace.employees.form.as_ref().and_then(|form| Draft::of(&session.tenant.slug, form))
            }
            _ => None,
        };
        let draft_kept = draft.is_some();
        if let Some(draft) = draft {
            self.drafts.save(&draft, &mut self.draft);
        }
        self.live = None;
        self.maintenance = None;
        self.reauth = None;
        self.screen = Screen::UpdateRequired { minimum, latest, draft_kept };
        // Look for the update at once, unless one is already on offer or under way.
        if matches!(self.updates.view, crate::ui::update::UpdateView::Idle | crate::ui::update::UpdateView::UpToDate) {
            self.on_update_action(crate::ui::update::UpdateAction::Check);
        }
    }

    /// Why the current token was refused: run out, or withdrawn well before (a role change,
    /// a removal, a password changed elsewhere).
    pub(super) fn refusal_reason(&self) -> String {
        match &self.session {
            Some(s) if s.expires_at > Instant::now() + EXPIRY_MARGIN => {
                format!("Your access to {} changed; sign in again.", s.tenant.name)
            }
            _ => "Your session has expired.".into(),
        }
    }

    pub(super) fn ask_to_sign_in_again(&mut self, reason: &str) {
        // Signing in again after a password change is under way: its token is coming.
        if self.session.is_none() || self.renewing {
            return;
        }
        match &mut self.reauth {
            Some(r) => r.reason = reason.to_owned(),
            None => self.reauth = Some(Reauth { reason: reason.to_owned(), ..Reauth::default() }),
        }
    }

    pub(super) fn enter_maintenance(&mut self, message: String) {
        self.maintenance = Some(message);
        self.check_status(MAINTENANCE_POLL);
    }

    /// Errors any data call may meet, handled the same everywhere. True when handled.
    pub(super) fn handle_global_error(&mut self, error: &ApiError) -> bool {
        tracing::warn!(%error, "a call failed");
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
                self.ask_to_sign_in_again(&self.refusal_reason());
                true
            }
            _ => false,
        }
    }
}

//! What the screens ask for, turned into background jobs whose answers come back as [`Msg`].

use super::{DataAnswer, Msg, NexaApp, PeopleAnswer, Screen, SignInAnswer, WizardAnswer};
use crate::api::normalize_url;
use crate::api::wire::{LoginOutcome, LoginRequest, PasswordChange};
use crate::live::LiveCommand;
use crate::ui::employees::EmployeesAction;
use crate::ui::people::PeopleAction;
use crate::ui::sign_in::SignInAction;
use crate::ui::wizard::WizardAction;
use crate::ui::workspace::WorkspaceAction;

impl NexaApp {
    pub(super) fn check_server(&self, url: String) {
        let client = self.backend.client.clone();
        self.backend.spawn(async move { Msg::ServerChecked(client.check_server(&normalize_url(&url)).await) });
    }

    pub(super) fn login(&self, request: LoginRequest, reauth: bool) {
        let client = self.backend.client.clone();
        let base = self.settings.server_url.clone();
        let email = request.email.clone();
        self.backend.spawn(async move { Msg::Login { reauth, email, result: client.login(&base, &request).await } });
    }

    /// Signs in again as the session's user, same company (the dialog, a password change).
    pub(super) fn sign_in_again(&self, password: String) {
        let Some(session) = &self.session else { return };
        let request =
            LoginRequest { email: session.email.clone(), password, tenant: Some(session.tenant.slug.clone()) };
        self.login(request, true);
    }

    /// Opens the invitation form with a `nexacore://accept?code=…` link (the app was started
    /// with it), when nobody is signed in.
    pub fn open_link(&mut self, link: &str) {
        if let Screen::SignIn(s) = &mut self.screen {
            s.open_invitation(link);
        }
    }

    pub(super) fn on_sign_in_action(&mut self, action: SignInAction) {
        // Whatever the form, it speaks to the server whose address is typed above it.
        if let Screen::SignIn(s) = &self.screen
            && !matches!(action, SignInAction::CheckServer(_))
        {
            self.settings.server_url = normalize_url(&s.server_url);
        }
        let client = self.backend.client.clone();
        let base = self.settings.server_url.clone();
        match action {
            SignInAction::CheckServer(url) => {
                self.settings.server_url = normalize_url(&url);
                self.save_settings();
                self.check_server(url);
            }
            SignInAction::SignIn { email, password, company } => {
                self.login(LoginRequest { email, password, tenant: company }, false);
            }
            SignInAction::CreateCompany => self.screen = Screen::Wizard(Box::default()),
            SignInAction::AcceptInvitation { email, body } => {
                self.backend.spawn(async move {
                    let result = client.accept_invitation(&base, &body).await.map(LoginOutcome::Signed);
                    Msg::Login { reauth: false, email, result }
                });
            }
            SignInAction::RequestPasswordReset(email) => {
                self.backend.spawn(async move {
                    Msg::SignIn(SignInAnswer::ResetRequested(client.request_password_reset(&base, &email).await))
                });
            }
            SignInAction::ConfirmPasswordReset { email, body } => {
                self.backend.spawn(async move {
                    let result = client.confirm_password_reset(&base, &body).await;
                    Msg::SignIn(SignInAnswer::ResetConfirmed { email, password: body.new_password, result })
                });
            }
        }
    }

    pub(super) fn on_wizard_action(&mut self, action: WizardAction) {
        let client = self.backend.client.clone();
        let base = self.settings.server_url.clone();
        match action {
            WizardAction::LoadOptions => {
                self.backend
                    .spawn(async move { Msg::Wizard(WizardAnswer::Options(client.signup_options(&base).await)) });
            }
            WizardAction::CheckSlug { value, by_name } => {
                self.backend.spawn(async move {
                    let result = client.slug_availability(&base, &value, by_name).await;
                    Msg::Wizard(WizardAnswer::SlugChecked { asked: value, result })
                });
            }
            WizardAction::Create { request, idempotency_key } => {
                self.backend.spawn(async move {
                    Msg::Wizard(WizardAnswer::Created(client.create_tenant(&base, &request, &idempotency_key).await))
                });
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

    pub(super) fn on_workspace_action(&mut self, action: WorkspaceAction) {
        match action {
            WorkspaceAction::Employees(action) => self.on_employees_action(action),
            WorkspaceAction::People(action) => self.on_people_action(action),
            WorkspaceAction::LoadAccounts => self.load_accounts(),
            WorkspaceAction::ChangePassword(change) => self.change_password(change),
            WorkspaceAction::SignOut => self.sign_out(),
            WorkspaceAction::About => self.open_about(),
            WorkspaceAction::CopyDiagnostics => {
                let company = self.session.as_ref().map(|s| s.tenant.name.clone());
                self.copied = Some(crate::diagnostics::report(&self.settings.server_url, company.as_deref()));
                self.copy_pending = true;
                if let Screen::Company(workspace) = &mut self.screen {
                    workspace.notice = Some("Diagnostics copied to the clipboard.".into());
                }
            }
            WorkspaceAction::ReconnectNow => {
                if let Some(live) = &self.live {
                    let _ = live.commands.send(LiveCommand::ReconnectNow);
                }
            }
        }
    }

    pub(super) fn load_accounts(&self) {
        let Some(session) = &self.session else { return };
        let client = self.backend.client.clone();
        let (api, token) = (session.api_url.clone(), session.token.clone());
        self.backend.spawn(async move { Msg::Data(DataAnswer::Accounts(client.accounts(&api, &token).await)) });
    }

    fn change_password(&mut self, change: PasswordChange) {
        let Some(session) = &self.session else { return };
        let client = self.backend.client.clone();
        let (base, token) = (self.settings.server_url.clone(), session.token.clone());
        self.renewing = true;
        self.backend.spawn(async move {
            let result = client.change_password(&base, &token, &change).await;
            Msg::PasswordChanged { password: change.new_password, result }
        });
    }

    /// People calls go to the control plane (the sign-in address), not the router.
    pub(super) fn on_people_action(&mut self, action: PeopleAction) {
        let Some(session) = &self.session else { return };
        let (base, token) = (self.settings.server_url.clone(), session.token.clone());
        let client = self.backend.client.clone();
        let job = async move {
            Msg::People(match action {
                PeopleAction::Load => {
                    let (members, invitations) =
                        futures::join!(client.members(&base, &token), client.invitations(&base, &token));
                    // Both answers are wanted; the members carry any error the app acts on.
                    return Msg::People(PeopleAnswer::Loaded { members, invitations });
                }
                PeopleAction::Invite(invitation) => {
                    PeopleAnswer::Invited(client.invite(&base, &token, &invitation).await)
                }
                PeopleAction::Resend(id) => PeopleAnswer::Resent(id, client.resend_invitation(&base, &token, id).await),
                PeopleAction::Revoke(id) => {
                    PeopleAnswer::Revoked(id, client.revoke_invitation(&base, &token, id).await)
                }
                PeopleAction::ChangeRole { id, role } => {
                    PeopleAnswer::RoleChanged(id, client.change_role(&base, &token, id, role).await)
                }
                PeopleAction::Remove(id) => PeopleAnswer::Removed(id, client.remove_member(&base, &token, id).await),
            })
        };
        self.backend.spawn(job);
    }

    pub(super) fn on_employees_action(&mut self, action: EmployeesAction) {
        let Some(session) = self.session.clone() else { return };
        let client = self.backend.client.clone();
        let (api, token) = (session.api_url, session.token);
        match action {
            EmployeesAction::Save { id: None, input, .. } => {
                self.backend.spawn(async move {
                    Msg::Data(DataAnswer::Saved(client.create_employee(&api, &token, &input).await))
                });
            }
            EmployeesAction::Save { id: Some(id), version, input } => {
                self.backend.spawn(async move {
                    Msg::Data(DataAnswer::Saved(client.update_employee(&api, &token, id, version, &input).await))
                });
            }
            EmployeesAction::Delete { id, version } => {
                self.backend.spawn(async move {
                    Msg::Data(DataAnswer::Deleted(id, client.delete_employee(&api, &token, id, version).await))
                });
            }
            EmployeesAction::CreateDepartment(name) => {
                self.backend.spawn(async move {
                    Msg::Data(DataAnswer::DepartmentCreated(client.create_department(&api, &token, &name).await))
                });
            }
            EmployeesAction::Reload => self.reload(),
        }
    }
}

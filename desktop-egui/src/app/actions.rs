//! What the screens ask for, turned into background jobs whose answers come back as [`Msg`].

use super::{DataAnswer, Msg, NexaApp, Screen, WizardAnswer};
use crate::api::normalize_url;
use crate::api::wire::LoginRequest;
use crate::ui::employees::EmployeesAction;
use crate::ui::sign_in::SignInAction;
use crate::ui::wizard::WizardAction;

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

    pub(super) fn on_sign_in_action(&mut self, action: SignInAction) {
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
            EmployeesAction::SignOut => self.sign_out(),
        }
    }
}

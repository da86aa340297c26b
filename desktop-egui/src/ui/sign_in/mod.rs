//! The first screen: the server address with its connection check, sign-in (e-mail, password,
//! company), the company chooser, the way into the company-creation wizard, and the two
//! forms that stand in for sign-in: accepting an invitation and resetting a password.

mod accept;
mod reset;

use egui::{Color32, RichText, Ui};

use super::{FieldErrors, error_ui, field_ui, submitted};
use crate::api::ApiError;
use crate::api::wire::{AcceptInvitation, Health, PasswordResetConfirm, SystemStatus, TenantSummary};
pub use accept::AcceptForm;
pub use reset::ResetForm;

#[derive(Debug, Clone, PartialEq)]
pub enum ServerCheck {
    Unknown,
    Checking,
    Ok { version: String, status: SystemStatus },
    Failed(String),
}

#[derive(Debug)]
pub struct SignIn {
    pub server_url: String,
    pub check: ServerCheck,
    pub email: String,
    pub password: String,
    pub company: String,
    pub errors: FieldErrors,
    pub general: Option<String>,
    pub busy: bool,
    /// The user belongs to several companies: pick one.
    pub choices: Option<Vec<TenantSummary>>,
    /// What shows in place of the sign-in form.
    pub mode: Mode,
    /// A word of success above the form ("your password was changed").
    pub notice: Option<String>,
}

/// The sign-in form, or one of the forms that lead to a session another way.
#[derive(Debug, Clone, Default)]
pub enum Mode {
    #[default]
    SignIn,
    Accept(AcceptForm),
    Reset(ResetForm),
}

/// What a stand-in form asks for.
#[derive(Debug)]
enum FormStep {
    Action(SignInAction),
    Back,
}

/// What the user asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum SignInAction {
    CheckServer(String),
    SignIn {
        email: String,
        password: String,
        company: Option<String>,
    },
    CreateCompany,
    /// `email` is what the invitee typed: remembered for signing in again, never sent.
    AcceptInvitation {
        email: String,
        body: AcceptInvitation,
    },
    RequestPasswordReset(String),
    ConfirmPasswordReset {
        email: String,
        body: PasswordResetConfirm,
    },
}

impl SignIn {
    pub fn new(server_url: String, email: String, company: String) -> Self {
        Self {
            server_url,
            check: ServerCheck::Unknown,
            email,
            password: String::new(),
            company,
            errors: FieldErrors::default(),
            general: None,
            busy: false,
            choices: None,
            mode: Mode::SignIn,
            notice: None,
        }
    }

    /// Opens the invitation form with the code from a `nexacore://accept` link.
    pub fn open_invitation(&mut self, link_or_code: &str) {
        self.mode = Mode::Accept(AcceptForm::with_code(link_or_code));
    }

    /// The password was reset: back to sign-in with the new password, which the app sends.
    pub fn signing_in_after_reset(&mut self, email: String, password: String) -> Option<SignInAction> {
        self.mode = Mode::SignIn;
        self.email = email;
        self.password = password;
        self.notice = Some("Your password was changed.".into());
        let company = Some(self.company.trim().to_owned()).filter(|c| !c.is_empty());
        self.sign_in_action(company)
    }

    pub fn on_checked(&mut self, result: Result<(Health, SystemStatus), ApiError>) {
        self.check = match result {
            Ok((health, status)) => ServerCheck::Ok { version: health.version, status },
            Err(e @ (ApiError::NotNexaCore(_) | ApiError::RouterAddress)) => {
                let text = e.to_string();
                ServerCheck::Failed(text[..1].to_uppercase() + &text[1..])
            }
            Err(ApiError::Unreachable(why)) => {
                ServerCheck::Failed(format!("Cannot reach the server ({why}). Check the address and your connection."))
            }
            Err(e) => ServerCheck::Failed(format!("The server answered with an error: {e}")),
        };
    }

    /// Shows a login failure next to the field it concerns (in the invitation form when that
    /// is what signed in).
    pub fn on_failed(&mut self, error: &ApiError) {
        if let Mode::Accept(form) = &mut self.mode {
            form.on_failed(error);
            return;
        }
        self.busy = false;
        self.password.clear();
        self.errors.clear();
        self.general = None;
        let fields = error.field_errors();
        match error.code() {
            Some("bad_credentials") => self.errors.set("password", "Wrong e-mail or password."),
            Some("not_a_member") => self.errors.set("tenant", "You are not a member of this company."),
            Some("throttled") => self.general = Some(format!("Too many attempts. {error}")),
            _ if !fields.is_empty() => self.errors.extend(fields),
            _ => self.general = Some(error.to_string()),
        }
    }

    fn sign_in_action(&mut self, company: Option<String>) -> Option<SignInAction> {
        self.errors.clear();
        self.general = None;
        if !self.email.contains('@') {
            self.errors.set("email", "Enter your e-mail address.");
        }
        if self.password.is_empty() {
            self.errors.set("password", "Enter your password.");
        }
        if !self.errors.is_empty() {
            return None;
        }
        self.busy = true;
        Some(SignInAction::SignIn { email: self.email.trim().to_owned(), password: self.password.clone(), company })
    }

    pub fn ui(&mut self, ui: &mut Ui) -> Option<SignInAction> {
        let mut action = None;
        ui.vertical_centered(|ui| {
            ui.add_space(24.0);
            ui.heading(RichText::new("NexaCore").size(28.0));
            ui.label("Sign in to your company");
            ui.add_space(16.0);
        });
        ui.group(|ui| {
            if let Some(a) = self.server_ui(ui) {
                action = Some(a);
            }
        });
        ui.add_space(12.0);
        let step = match &mut self.mode {
            Mode::SignIn => None,
            Mode::Accept(form) => Some(form.ui(ui)),
            Mode::Reset(form) => Some(form.ui(ui)),
        };
        match step {
            None => {}
            Some(Some(FormStep::Action(a))) => return Some(a),
            Some(Some(FormStep::Back)) => {
                self.mode = Mode::SignIn;
                return action;
            }
            Some(None) => return action,
        }
        if let Some(choices) = self.choices.clone() {
            ui.label(RichText::new("You belong to several companies. Choose one:").strong());
            for tenant in choices {
                if ui.button(format!("{} ({})", tenant.name, tenant.slug)).clicked() {
                    self.company = tenant.slug.clone();
                    self.choices = None;
                    action = self.sign_in_action(Some(tenant.slug));
                }
            }
            if ui.button("Back").clicked() {
                self.choices = None;
                self.password.clear();
            }
            return action;
        }
        let mut submit = false;
        egui::Grid::new("sign_in_form").num_columns(2).spacing([12.0, 8.0]).show(ui, |ui| {
            let r = field_ui(ui, "E-mail", &mut self.email, self.errors.get("email"), false);
            submit |= submitted(ui, &r);
            let r = field_ui(ui, "Password", &mut self.password, self.errors.get("password"), true);
            submit |= submitted(ui, &r);
            let r = field_ui(ui, "Company (optional)", &mut self.company, self.errors.get("tenant"), false);
            submit |= submitted(ui, &r);
        });
        if let Some(general) = &self.general {
            error_ui(ui, general);
        }
        if let Some(notice) = &self.notice {
            ui.label(RichText::new(notice).color(Color32::from_rgb(0, 150, 70)));
        }
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            let button = ui.add_enabled(!self.busy, egui::Button::new("Sign in"));
            if (button.clicked() || submit) && !self.busy {
                let company = Some(self.company.trim().to_owned()).filter(|c| !c.is_empty());
                action = self.sign_in_action(company);
            }
            if self.busy {
                ui.spinner();
            }
            if ui.link("Forgot password?").clicked() {
                self.mode = Mode::Reset(ResetForm::new(self.email.trim()));
            }
        });
        ui.add_space(16.0);
        ui.separator();
        ui.label("Invited to a company?");
        if ui.button("Accept an invitation…").clicked() {
            self.mode = Mode::Accept(AcceptForm { email: self.email.trim().to_owned(), ..AcceptForm::default() });
        }
        ui.add_space(8.0);
        ui.label("New to NexaCore?");
        if ui.button("Create a new company…").clicked() {
            action = Some(SignInAction::CreateCompany);
        }
        action
    }

    fn server_ui(&mut self, ui: &mut Ui) -> Option<SignInAction> {
        let mut action = None;
        ui.horizontal(|ui| {
            let label = ui.label("Server");
            let r = ui.add(egui::TextEdit::singleline(&mut self.server_url).desired_width(260.0)).labelled_by(label.id);
            if ui.button("Check connection").clicked() || submitted(ui, &r) {
                self.check = ServerCheck::Checking;
                action = Some(SignInAction::CheckServer(self.server_url.clone()));
            }
        });
        match &self.check {
            ServerCheck::Unknown => {}
            ServerCheck::Checking => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Checking the server…");
                });
            }
            ServerCheck::Ok { version, status } => {
                ui.label(
                    RichText::new(format!("Connected to NexaCore {version}")).color(Color32::from_rgb(0, 150, 70)),
                );
                if status.maintenance_mode {
                    ui.label(
                        RichText::new(format!(
                            "The platform is in maintenance: {}",
                            status.message.as_deref().unwrap_or("please wait")
                        ))
                        .color(ui.visuals().warn_fg_color),
                    );
                }
            }
            ServerCheck::Failed(why) => error_ui(ui, why),
        }
        action
    }
}

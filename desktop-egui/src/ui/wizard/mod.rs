//! The company-creation wizard: (1) company, (2) admin account, (3) setup, (4) review,
//! (5) create. Back and next keep what was typed; each step validates before moving on; the
//! server's errors send the user back to the step and field they concern; a failed create
//! is retried with the same `Idempotency-Key`; cancel asks before discarding.
//!
//! Choices (chart templates, currencies, time zones, departments) and the slug check come
//! from the control plane.

use std::time::{Duration, Instant};

use egui::Ui;

mod steps;

use steps::steps_ui;

use super::picker::{PickItem, PickerState, picker_ui};
use super::{FieldErrors, error_ui, field_ui};
use crate::api::ApiError;
use crate::api::wire::{AdminInput, CreateTenantRequest, CreatedTenant, SignupOptions, SlugAvailability};

/// How long typing must pause before the slug is checked.
pub const SLUG_CHECK_DELAY: Duration = Duration::from_millis(350);

pub const STEPS: [&str; 5] = ["Company", "Admin account", "Setup", "Review", "Create"];

#[derive(Debug, Clone, PartialEq)]
pub enum SlugState {
    /// Nothing to check yet.
    Idle,
    /// Typed; checked once typing pauses.
    Pending {
        since: Instant,
    },
    Checking {
        asked: String,
    },
    Available(String),
    Taken {
        slug: String,
        suggestion: Option<String>,
    },
    Invalid(String),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant, reason = "one per wizard")]
pub enum CreateState {
    NotStarted,
    InFlight,
    /// A network or server failure: retry sends the same key.
    Failed(String),
    Done(CreatedTenant),
}

#[derive(Debug, Clone, PartialEq)]
pub enum WizardAction {
    LoadOptions,
    /// Check `value` (a slug, or with `by_name` a company name).
    CheckSlug {
        value: String,
        by_name: bool,
    },
    Create {
        request: CreateTenantRequest,
        idempotency_key: String,
    },
    /// Closed without creating.
    Cancelled,
    /// Created and signed in: open the company.
    Open(CreatedTenant),
}

#[derive(Debug)]
pub struct Wizard {
    pub step: usize,
    pub options: Option<SignupOptions>,
    pub options_error: Option<String>,
    // Step 1.
    pub company_name: String,
    pub slug: String,
    /// The user typed the slug: stop suggesting one from the name.
    pub slug_edited: bool,
    pub slug_state: SlugState,
    pub timezone: String,
    pub timezone_picker: PickerState,
    pub currency: String,
    pub currency_picker: PickerState,
    /// The options' time zones and currencies as the pickers show them, built once.
    pub timezone_items: Vec<PickItem<String>>,
    pub currency_items: Vec<PickItem<String>>,
    // Step 2.
    pub admin_name: String,
    pub admin_email: String,
    pub password: String,
    pub confirm: String,
    // Step 3.
    pub chart_template: String,
    pub departments: Vec<(String, bool)>,
    pub new_department: String,
    // Steps 4–5.
    pub errors: FieldErrors,
    pub general: Option<String>,
    pub idempotency_key: String,
    pub create: CreateState,
    pub confirm_cancel: bool,
}

impl Default for Wizard {
    fn default() -> Self {
        Self::new()
    }
}

impl Wizard {
    pub fn new() -> Self {
        Self {
            step: 0,
            options: None,
            options_error: None,
            company_name: String::new(),
            slug: String::new(),
            slug_edited: false,
            slug_state: SlugState::Idle,
            timezone: "UTC".into(),
            timezone_picker: PickerState::default(),
            currency: "EUR".into(),
            currency_picker: PickerState::default(),
            timezone_items: Vec::new(),
            currency_items: Vec::new(),
            admin_name: String::new(),
            admin_email: String::new(),
            password: String::new(),
            confirm: String::new(),
            chart_template: String::new(),
            departments: Vec::new(),
            new_department: String::new(),
            errors: FieldErrors::default(),
            general: None,
            idempotency_key: uuid::Uuid::new_v4().to_string(),
            create: CreateState::NotStarted,
            confirm_cancel: false,
        }
    }

    fn has_input(&self) -> bool {
        !(self.company_name.is_empty() && self.admin_email.is_empty() && self.admin_name.is_empty())
    }

    pub fn on_options(&mut self, result: Result<SignupOptions, ApiError>) {
        match result {
            Ok(options) => {
                if self.chart_template.is_empty() {
                    self.chart_template = options.default_chart_template.clone();
                }
                if self.departments.is_empty() {
                    self.departments = options.default_departments.iter().map(|d| (d.clone(), true)).collect();
                }
                self.timezone_items = options.timezones.iter().map(|z| PickItem::new(z.clone(), z.clone())).collect();
                self.currency_items = options
                    .currencies
                    .iter()
                    .map(|c| PickItem::new(c.code.clone(), format!("{} — {}", c.code, c.name)))
                    .collect();
                self.options = Some(options);
                self.options_error = None;
            }
            Err(e) => self.options_error = Some(format!("Cannot load the signup options: {e}")),
        }
    }

    /// The answer to a slug check; stale answers (for a value since changed) are dropped.
    pub fn on_slug_checked(&mut self, asked: &str, result: Result<SlugAvailability, ApiError>) {
        if self.slug_state != (SlugState::Checking { asked: asked.to_owned() }) {
            return;
        }
        self.slug_state = match result {
            Ok(a) => {
                if !self.slug_edited {
                    self.slug = a.slug.clone();
                }
                if a.available {
                    self.errors.remove("slug");
                    SlugState::Available(a.slug)
                } else if a.reason.as_deref() == Some("already taken") {
                    SlugState::Taken { slug: a.slug, suggestion: a.suggestion }
                } else {
                    SlugState::Invalid(a.reason.unwrap_or_else(|| "cannot be used".into()))
                }
            }
            Err(e) => match e.field_errors().into_iter().next() {
                Some((_, message)) => SlugState::Invalid(message),
                None => SlugState::Failed(e.to_string()),
            },
        };
    }

    /// The answer to create: success, or back to the step and field at fault.
    pub fn on_created(&mut self, result: Result<CreatedTenant, ApiError>) {
        match result {
            Ok(created) => self.create = CreateState::Done(created),
            Err(error) => {
                let fields = error.field_errors();
                if fields.is_empty() {
                    if error.code() == Some("idempotency_key_reused") {
                        // The request changed since the key was used: a new attempt needs a new key.
                        self.idempotency_key = uuid::Uuid::new_v4().to_string();
                    }
                    self.create = CreateState::Failed(error.to_string());
                    return;
                }
                // A field error: the request was refused as a whole, nothing was created.
                self.create = CreateState::NotStarted;
                self.idempotency_key = uuid::Uuid::new_v4().to_string();
                self.errors.clear();
                self.errors.extend(fields);
                if error.code() == Some("slug_taken") {
                    self.slug_state = SlugState::Taken { slug: self.slug.clone(), suggestion: None };
                }
                self.step = self.errors.fields().map(step_of_field).min().unwrap_or(0);
            }
        }
    }

    /// What the wizard needs done this frame (debounced slug check), before drawing.
    pub fn tick(&mut self, ui: &Ui) -> Option<WizardAction> {
        if let SlugState::Pending { since } = self.slug_state {
            let waited = since.elapsed();
            if waited >= SLUG_CHECK_DELAY {
                let (value, by_name) = if self.slug_edited {
                    (self.slug.trim().to_owned(), false)
                } else {
                    (self.company_name.trim().to_owned(), true)
                };
                if value.is_empty() {
                    self.slug_state = SlugState::Idle;
                    return None;
                }
                self.slug_state = SlugState::Checking { asked: value.clone() };
                return Some(WizardAction::CheckSlug { value, by_name });
            }
            ui.ctx().request_repaint_after(SLUG_CHECK_DELAY - waited);
        }
        None
    }

    pub fn ui(&mut self, ui: &mut Ui) -> Vec<WizardAction> {
        let mut actions: Vec<WizardAction> = self.tick(ui).into_iter().collect();
        if self.options.is_none() && self.options_error.is_none() {
            self.options_error = Some(String::new());
            actions.push(WizardAction::LoadOptions);
        }
        ui.heading("Create your company");
        steps_ui(ui, self.step);
        ui.separator();
        if let Some(error) = self.options_error.as_deref().filter(|e| !e.is_empty()) {
            error_ui(ui, error);
            if ui.button("Retry").clicked() {
                self.options_error = Some(String::new());
                actions.push(WizardAction::LoadOptions);
            }
        }
        egui::ScrollArea::vertical().auto_shrink([false, true]).max_height(ui.available_height() - 48.0).show(
            ui,
            |ui| match self.step {
                0 => self.company_ui(ui),
                1 => self.admin_ui(ui),
                2 => self.setup_ui(ui),
                3 => self.review_ui(ui),
                _ => self.create_ui(ui, &mut actions),
            },
        );
        if let Some(general) = &self.general {
            error_ui(ui, general);
        }
        ui.separator();
        self.nav_ui(ui, &mut actions);
        if self.confirm_cancel {
            self.confirm_cancel_ui(ui, &mut actions);
        }
        actions
    }

    fn nav_ui(&mut self, ui: &mut Ui, actions: &mut Vec<WizardAction>) {
        let creating = matches!(self.create, CreateState::InFlight);
        let done = matches!(self.create, CreateState::Done(_));
        ui.horizontal(|ui| {
            if !done && ui.add_enabled(!creating, egui::Button::new("Cancel")).clicked() {
                if self.has_input() {
                    self.confirm_cancel = true;
                } else {
                    actions.push(WizardAction::Cancelled);
                }
            }
            if self.step > 0 && self.step < 4 && ui.button("Back").clicked() {
                self.general = None;
                self.step -= 1;
            }
            if self.step < 3 && ui.button("Next").clicked() {
                self.errors = self.validate_step(self.step);
                if self.errors.is_empty() {
                    self.step += 1;
                }
            }
            if self.step == 3 && ui.add_enabled(!creating, egui::Button::new("Create company")).clicked() {
                self.errors = (0..3).map(|s| self.validate_step(s)).fold(FieldErrors::default(), |mut acc, e| {
                    acc.extend(e.0);
                    acc
                });
                if self.errors.is_empty() {
                    self.step = 4;
                    self.create = CreateState::InFlight;
                    actions.push(self.create_action());
                } else {
                    self.step = self.errors.fields().map(step_of_field).min().unwrap_or(0);
                }
            }
        });
    }

    fn create_action(&self) -> WizardAction {
        WizardAction::Create { request: self.request(), idempotency_key: self.idempotency_key.clone() }
    }

    /// The signup request for what was typed.
    pub fn request(&self) -> CreateTenantRequest {
        let departments: Vec<String> = self.departments.iter().filter(|(_, on)| *on).map(|(d, _)| d.clone()).collect();
        CreateTenantRequest {
            company_name: self.company_name.trim().to_owned(),
            slug: Some(self.slug.trim().to_owned()).filter(|s| !s.is_empty()),
            admin: AdminInput {
                email: self.admin_email.trim().to_owned(),
                password: self.password.clone(),
                full_name: self.admin_name.trim().to_owned(),
            },
            timezone: self.timezone.clone(),
            currency: self.currency.clone(),
            chart_template: Some(self.chart_template.clone()).filter(|c| !c.is_empty()),
            departments: Some(departments),
        }
    }

    /// The checks of one step; the server checks again.
    pub fn validate_step(&self, step: usize) -> FieldErrors {
        let mut e = FieldErrors::default();
        match step {
            0 => {
                let name = self.company_name.trim().chars().count();
                if !(2..=100).contains(&name) {
                    e.set("company_name", "Enter the company's name (2–100 characters).");
                }
                match &self.slug_state {
                    SlugState::Taken { slug, .. } => e.set("slug", format!("\"{slug}\" is already taken.")),
                    SlugState::Invalid(why) => e.set("slug", why.clone()),
                    SlugState::Pending { .. } | SlugState::Checking { .. } => {
                        e.set("slug", "Still checking the address; try again in a moment.")
                    }
                    _ if self.slug.trim().is_empty() && name >= 2 => e.set("slug", "Choose a web address."),
                    _ => {}
                }
                if self.timezone.is_empty() {
                    e.set("timezone", "Choose a time zone.");
                }
                if self.currency.is_empty() {
                    e.set("currency", "Choose a currency.");
                }
            }
            1 => {
                if self.admin_name.trim().is_empty() {
                    e.set("admin.full_name", "Enter your name.");
                }
                let email = self.admin_email.trim();
                if !(email.contains('@') && email.rsplit('@').next().is_some_and(|d| d.contains('.'))) {
                    e.set("admin.email", "Enter an e-mail address like you@company.com.");
                }
                let min = self.options.as_ref().map_or(12, |o| o.password_min_length.max(1));
                if self.password.chars().count() < min {
                    e.set("admin.password", format!("Use at least {min} characters."));
                } else if api_types::password::strength(&self.password).0 < 2 {
                    e.set("admin.password", "Too weak: mix upper and lower case, digits and symbols.");
                }
                if self.confirm != self.password {
                    e.set("confirm", "The passwords do not match.");
                }
            }
            2 if self.chart_template.is_empty() => {
                e.set("chart_template", "Choose a chart of accounts.");
            }
            _ => {}
        }
        e
    }
}

/// Which step a server field belongs to.
pub fn step_of_field(field: &str) -> usize {
    match field {
        "company_name" | "slug" | "timezone" | "currency" => 0,
        f if f.starts_with("admin") || f == "confirm" => 1,
        "chart_template" | "departments" => 2,
        _ => 3,
    }
}

/// A slug suggestion while typing: lower case, ASCII letters and digits, single hyphens. The
/// server's check has the last word (and suggests a free one when taken).
pub fn suggest_slug(name: &str) -> String {
    let mut slug = String::new();
    for c in name.trim().chars() {
        let c = match c {
            'ä' | 'Ä' => 'a',
            'ö' | 'Ö' => 'o',
            'ü' | 'Ü' => 'u',
            'é' | 'è' | 'ê' | 'É' => 'e',
            other => other,
        };
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').chars().take(40).collect::<String>().trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_suggested_from_names() {
        for (name, slug) in [
            ("Acme Tools", "acme-tools"),
            ("  Müller & Söhne GmbH ", "muller-sohne-gmbh"),
            ("A--B", "a-b"),
            ("!!!", ""),
        ] {
            assert_eq!(suggest_slug(name), slug, "{name}");
        }
    }

    #[test]
    fn server_fields_map_to_their_steps() {
        for (field, step) in [("slug", 0), ("currency", 0), ("admin.password", 1), ("departments", 2), ("x", 3)] {
            assert_eq!(step_of_field(field), step, "{field}");
        }
    }

    #[test]
    fn a_field_error_sends_the_wizard_back_and_a_network_error_keeps_the_key() {
        let mut w = Wizard::new();
        w.step = 4;
        let key = w.idempotency_key.clone();
        w.on_created(Err(ApiError::Unreachable("down".into())));
        assert!(matches!(w.create, CreateState::Failed(_)));
        assert_eq!(w.idempotency_key, key);
        let body = crate::api::wire::ErrorBody {
            error: "slug_taken".into(),
            message: "slug: taken".into(),
            field: Some("slug".into()),
            ..Default::default()
        };
        w.on_created(Err(ApiError::Http { status: 409, body }));
        assert_eq!(w.step, 0);
        assert_eq!(w.errors.get("slug"), Some("taken"));
    }
}

//! What each of the wizard's steps draws.

use egui::{Color32, RichText, Ui};

use super::*;

impl Wizard {
    pub(super) fn company_ui(&mut self, ui: &mut Ui) {
        let (mut name_changed, mut slug_changed) = (false, false);
        egui::Grid::new("wizard_company").num_columns(2).spacing([12.0, 8.0]).show(ui, |ui| {
            name_changed =
                field_ui(ui, "Company name", &mut self.company_name, self.errors.get("company_name"), false).changed();
            let slug_error = self.errors.get("slug").map(str::to_owned);
            slug_changed = field_ui(ui, "Web address (slug)", &mut self.slug, slug_error.as_deref(), false).changed();
            ui.label("");
            self.slug_status_ui(ui);
            ui.end_row();
            ui.label("Time zone");
            ui.vertical(|ui| {
                picker_ui(ui, "Time zone", &mut self.timezone_picker, &self.timezone_items, &mut self.timezone);
                if let Some(error) = self.errors.get("timezone") {
                    error_ui(ui, error);
                }
            });
            ui.end_row();
            ui.label("Currency");
            ui.vertical(|ui| {
                picker_ui(ui, "Currency", &mut self.currency_picker, &self.currency_items, &mut self.currency);
                if let Some(error) = self.errors.get("currency") {
                    error_ui(ui, error);
                }
            });
            ui.end_row();
        });
        if slug_changed {
            self.slug_edited = !self.slug.trim().is_empty();
            self.slug_state = SlugState::Pending { since: Instant::now() };
        } else if name_changed {
            if !self.slug_edited {
                self.slug = suggest_slug(&self.company_name);
            }
            self.slug_state = SlugState::Pending { since: Instant::now() };
        }
    }

    pub(super) fn slug_status_ui(&mut self, ui: &mut Ui) {
        match self.slug_state.clone() {
            SlugState::Idle => {
                ui.label(RichText::new("Your company's address; suggested from its name.").weak());
            }
            SlugState::Pending { .. } | SlugState::Checking { .. } => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Checking availability…");
                });
            }
            SlugState::Available(slug) => {
                ui.label(RichText::new(format!("\"{slug}\" is available")).color(Color32::from_rgb(0, 150, 70)));
            }
            SlugState::Taken { slug, suggestion } => {
                ui.vertical(|ui| {
                    error_ui(ui, &format!("\"{slug}\" is already taken."));
                    if let Some(s) = suggestion
                        && ui.button(format!("Use \"{s}\"")).clicked()
                    {
                        self.slug = s.clone();
                        self.slug_edited = true;
                        self.errors.remove("slug");
                        self.slug_state = SlugState::Available(s);
                    }
                });
            }
            SlugState::Invalid(why) => error_ui(ui, &why),
            SlugState::Failed(why) => error_ui(ui, &format!("Could not check the address: {why}")),
        }
    }

    pub(super) fn admin_ui(&mut self, ui: &mut Ui) {
        egui::Grid::new("wizard_admin").num_columns(2).spacing([12.0, 8.0]).show(ui, |ui| {
            field_ui(ui, "Your full name", &mut self.admin_name, self.errors.get("admin.full_name"), false);
            field_ui(ui, "Your e-mail", &mut self.admin_email, self.errors.get("admin.email"), false);
            field_ui(ui, "Choose a password", &mut self.password, self.errors.get("admin.password"), true);
            crate::ui::password::meter_ui(ui, &self.password);
            field_ui(ui, "Confirm password", &mut self.confirm, self.errors.get("confirm"), true);
        });
    }

    pub(super) fn setup_ui(&mut self, ui: &mut Ui) {
        ui.label(RichText::new("Chart of accounts").strong());
        let templates = self.options.as_ref().map(|o| o.chart_templates.clone()).unwrap_or_default();
        for t in &templates {
            ui.radio_value(&mut self.chart_template, t.code.clone(), format!("{} ({} accounts)", t.name, t.accounts));
            ui.label(RichText::new(&t.description).weak());
        }
        if let Some(error) = self.errors.get("chart_template") {
            error_ui(ui, error);
        }
        ui.add_space(12.0);
        ui.label(RichText::new("Departments").strong());
        for (name, on) in &mut self.departments {
            ui.checkbox(on, name.as_str());
        }
        ui.horizontal(|ui| {
            let label = ui.label("Add a department");
            let r =
                ui.add(egui::TextEdit::singleline(&mut self.new_department).desired_width(180.0)).labelled_by(label.id);
            let name = self.new_department.trim().to_owned();
            if (ui.add_enabled(!name.is_empty(), egui::Button::new("Add")).clicked() || crate::ui::submitted(ui, &r))
                && !name.is_empty()
                && !self.departments.iter().any(|(d, _)| d.eq_ignore_ascii_case(&name))
            {
                self.departments.push((name, true));
                self.new_department.clear();
            }
        });
        if let Some(error) = self.errors.get("departments") {
            error_ui(ui, error);
        }
    }

    pub(super) fn review_ui(&mut self, ui: &mut Ui) {
        ui.label("Check the details, then create the company.");
        let template = self
            .options
            .as_ref()
            .and_then(|o| o.chart_templates.iter().find(|t| t.code == self.chart_template))
            .map_or(self.chart_template.clone(), |t| t.name.clone());
        let departments: Vec<&str> = self.departments.iter().filter(|(_, on)| *on).map(|(d, _)| d.as_str()).collect();
        egui::Grid::new("wizard_review").num_columns(2).striped(true).spacing([16.0, 6.0]).show(ui, |ui| {
            for (k, v) in [
                ("Company", self.company_name.clone()),
                ("Web address", self.slug.clone()),
                ("Time zone", self.timezone.clone()),
                ("Currency", self.currency.clone()),
                ("Admin", format!("{} <{}>", self.admin_name, self.admin_email)),
                ("Chart of accounts", template),
                ("Departments", if departments.is_empty() { "none".into() } else { departments.join(", ") }),
            ] {
                ui.label(RichText::new(k).strong());
                ui.label(v);
                ui.end_row();
            }
        });
    }

    pub(super) fn create_ui(&mut self, ui: &mut Ui, actions: &mut Vec<WizardAction>) {
        match self.create.clone() {
            CreateState::NotStarted | CreateState::InFlight => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(format!("Creating {}: setting up its own database…", self.company_name.trim()));
                });
            }
            CreateState::Failed(why) => {
                error_ui(ui, &format!("The company could not be created yet: {why}"));
                ui.label("Retrying is safe: it cannot create the company twice.");
                ui.horizontal(|ui| {
                    if ui.button("Retry").clicked() {
                        self.create = CreateState::InFlight;
                        actions.push(self.create_action());
                    }
                    if ui.button("Back to review").clicked() {
                        self.create = CreateState::NotStarted;
                        self.step = 3;
                    }
                });
            }
            CreateState::Done(created) => {
                ui.label(
                    RichText::new(format!("Signed in as admin of {}", created.tenant.name))
                        .size(18.0)
                        .color(Color32::from_rgb(0, 150, 70)),
                );
                ui.label(format!("Its address is \"{}\".", created.tenant.slug));
                if ui.button("Open the company").clicked() {
                    actions.push(WizardAction::Open(created));
                }
            }
        }
    }

    pub(super) fn confirm_cancel_ui(&mut self, ui: &mut Ui, actions: &mut Vec<WizardAction>) {
        egui::Modal::new(egui::Id::unique("wizard_cancel")).show(ui.ctx(), |ui| {
            ui.label("Discard what you typed and leave the wizard?");
            ui.horizontal(|ui| {
                if ui.button("Discard").clicked() {
                    self.confirm_cancel = false;
                    actions.push(WizardAction::Cancelled);
                }
                if ui.button("Keep editing").clicked() {
                    self.confirm_cancel = false;
                }
            });
        });
    }
}

pub(super) fn steps_ui(ui: &mut Ui, current: usize) {
    ui.horizontal(|ui| {
        for (i, name) in STEPS.iter().enumerate() {
            let text = format!("{}. {name}", i + 1);
            let text = if i == current {
                RichText::new(text).strong().color(ui.visuals().hyperlink_color)
            } else if i < current {
                RichText::new(text)
            } else {
                RichText::new(text).weak()
            };
            ui.label(text);
            if i + 1 < STEPS.len() {
                ui.label("›");
            }
        }
    });
}

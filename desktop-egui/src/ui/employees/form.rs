//! The add / edit form: its fields, their checks, and the conflict panel shown when someone
//! else saved the same employee first.

use super::*;

/// The editable fields, as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FormFields {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub job_title: String,
    pub department_id: Option<Uuid>,
    pub hire_date: String,
    pub status: String,
}

impl FormFields {
    fn from_employee(e: &Employee) -> Self {
        Self {
            first_name: e.first_name.clone(),
            last_name: e.last_name.clone(),
            email: e.email.clone(),
            job_title: e.job_title.clone().unwrap_or_default(),
            department_id: e.department_id,
            hire_date: e.hire_date.to_string(),
            status: e.status.as_str().to_owned(),
        }
    }

    fn input(&self) -> NewEmployee {
        NewEmployee {
            first_name: self.first_name.trim().to_owned(),
            last_name: self.last_name.trim().to_owned(),
            email: self.email.trim().to_owned(),
            job_title: Some(self.job_title.trim().to_owned()).filter(|t| !t.is_empty()),
            department_id: self.department_id,
            hire_date: self.hire_date.trim().to_owned(),
            status: Some(self.status.clone()),
        }
    }

    /// The checks the client can make before asking the server.
    fn validate(&self) -> FieldErrors {
        let mut errors = FieldErrors::default();
        if self.first_name.trim().is_empty() {
            errors.set("first_name", "Required.");
        }
        if self.last_name.trim().is_empty() {
            errors.set("last_name", "Required.");
        }
        let email = self.email.trim();
        if !(email.contains('@') && email.rsplit('@').next().is_some_and(|d| d.contains('.'))) {
            errors.set("email", "Enter an e-mail address like name@company.com.");
        }
        let format = time::macros::format_description!("[year]-[month]-[day]");
        if time::Date::parse(self.hire_date.trim(), &format).is_err() {
            errors.set("hire_date", "Enter a date like 2024-05-31.");
        }
        errors
    }
}

#[derive(Debug, Clone)]
pub struct EmployeeForm {
    /// `None`: a new employee.
    pub id: Option<Uuid>,
    /// The version the edit started from (sent as `If-Match`).
    pub base_version: i64,
    pub fields: FormFields,
    pub errors: FieldErrors,
    pub general: Option<String>,
    pub busy: bool,
    /// The server's newer record after a lost race: shown, and the user chooses.
    pub conflict: Option<Employee>,
    /// Someone changed (or deleted) the record live while it was open.
    pub changed_remotely: bool,
    pub deleted_remotely: bool,
    pub confirm_delete: bool,
    pub new_department: String,
    pub department_error: Option<String>,
}

impl EmployeeForm {
    pub fn new_employee() -> Self {
        let today = time::OffsetDateTime::now_utc().date();
        let fields = FormFields {
            status: "active".into(),
            hire_date: format!("{:04}-{:02}-{:02}", today.year(), today.month() as u8, today.day()),
            ..FormFields::default()
        };
        Self::with(None, 0, fields)
    }

    pub fn edit(e: &Employee) -> Self {
        Self::with(Some(e.id), e.version, FormFields::from_employee(e))
    }

    fn with(id: Option<Uuid>, base_version: i64, fields: FormFields) -> Self {
        Self {
            id,
            base_version,
            fields,
            errors: FieldErrors::default(),
            general: None,
            busy: false,
            conflict: None,
            changed_remotely: false,
            deleted_remotely: false,
            confirm_delete: false,
            new_department: String::new(),
            department_error: None,
        }
    }
}

impl EmployeesScreen {
    pub(super) fn form_ui(&mut self, ui: &mut Ui, actions: &mut Vec<EmployeesAction>) {
        let departments = self.store.departments().to_vec();
        let role = self.role;
        let department_picker = &mut self.department_picker;
        let Some(form) = self.form.as_mut() else { return };
        ui.heading(match (form.id, role.may_write()) {
            (_, false) => "Employee",
            (Some(_), true) => "Edit employee",
            (None, true) => "New employee",
        });
        if form.deleted_remotely {
            error_ui(ui, "Someone else deleted this employee. Saving will fail; close the form.");
        } else if form.changed_remotely && form.conflict.is_none() {
            ui.label(
                RichText::new("Someone else changed this employee while you were editing.")
                    .color(ui.visuals().warn_fg_color),
            );
        }
        if let Some(theirs) = form.conflict.clone() {
            conflict_ui(ui, form, &theirs, &departments, actions);
        }
        // Ctrl+S saves, like Enter in a field.
        let mut submit = ui.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::S));
        // Staff see the record with every field disabled: a read view, no way to type.
        ui.add_enabled_ui(role.may_write(), |ui| {
            egui::Grid::new("employee_form_grid").num_columns(2).spacing([8.0, 6.0]).show(ui, |ui| {
                let f = &mut form.fields;
                let e = &form.errors;
                for (label, value, field) in [
                    ("First name", &mut f.first_name, "first_name"),
                    ("Last name", &mut f.last_name, "last_name"),
                    ("Work e-mail", &mut f.email, "email"),
                    ("Job title", &mut f.job_title, "job_title"),
                ] {
                    let response = field_ui(ui, label, value, e.get(field), false);
                    submit |= crate::ui::submitted(ui, &response);
                }
                let response =
                    crate::ui::date::date_field_ui(ui, "Hire date (YYYY-MM-DD)", &mut f.hire_date, e.get("hire_date"));
                submit |= crate::ui::submitted(ui, &response);
                ui.label("Department");
                ui.vertical(|ui| {
                    let items = super::department_items(&departments, "None");
                    picker_ui(ui, "Department", department_picker, &items, &mut form.fields.department_id);
                    if let Some(error) = form.errors.get("department_id") {
                        error_ui(ui, error);
                    }
                    ui.horizontal(|ui| {
                        if !role.may_write() {
                            return;
                        }
                        let label = ui.label("New department");
                        ui.add(egui::TextEdit::singleline(&mut form.new_department).desired_width(140.0))
                            .labelled_by(label.id);
                        let name = form.new_department.trim().to_owned();
                        if ui.add_enabled(!name.is_empty(), egui::Button::new("Create department")).clicked() {
                            actions.push(EmployeesAction::CreateDepartment(name));
                        }
                    });
                    if let Some(error) = &form.department_error {
                        error_ui(ui, error);
                    }
                });
                ui.end_row();
                ui.label("Status");
                ui.vertical(|ui| {
                    egui::ComboBox::from_id_salt("form_status")
                        .selected_text(status_label(&form.fields.status).to_owned())
                        .show_ui(ui, |ui| {
                            for (value, label) in STATUSES {
                                ui.selectable_value(&mut form.fields.status, value.to_owned(), label);
                            }
                        });
                    if let Some(error) = form.errors.get("status") {
                        error_ui(ui, error);
                    }
                });
                ui.end_row();
            });
        });
        if !role.may_write() {
            submit = false;
        }
        if let Some(general) = &form.general {
            error_ui(ui, general);
        }
        ui.add_space(8.0);
        let mut close = false;
        ui.horizontal(|ui| {
            let save = role.may_write()
                && ui.add_enabled(!form.busy && !form.deleted_remotely, egui::Button::new("Save")).clicked();
            if (save || (submit && !form.busy)) && !form.deleted_remotely {
                form.errors = form.fields.validate();
                form.general = None;
                if form.errors.is_empty() {
                    form.busy = true;
                    actions.push(EmployeesAction::Save {
                        id: form.id,
                        version: form.base_version,
                        input: form.fields.input(),
                    });
                }
            }
            close = ui.button("Close").clicked();
            if let Some(id) = form.id
                && !form.deleted_remotely
                && role.may_delete()
            {
                if form.confirm_delete {
                    ui.label("Delete for good?");
                    if ui.button("Yes, delete").clicked() {
                        form.busy = true;
                        actions.push(EmployeesAction::Delete { id, version: form.base_version });
                    }
                    if ui.button("Keep").clicked() {
                        form.confirm_delete = false;
                    }
                } else if ui.add_enabled(!form.busy, egui::Button::new("Delete")).clicked() {
                    form.confirm_delete = true;
                }
            }
            if form.busy {
                ui.spinner();
            }
        });
        if close {
            self.form = None;
        }
    }
}

/// The lost-race panel: their newer version next to what the user typed, and the two ways on.
fn conflict_ui(
    ui: &mut Ui,
    form: &mut EmployeeForm,
    theirs: &Employee,
    departments: &[crate::api::wire::Department],
    actions: &mut Vec<EmployeesAction>,
) {
    egui::Frame::group(ui.style()).fill(ui.visuals().faint_bg_color).show(ui, |ui| {
        ui.label(
            RichText::new(format!("Conflict: someone else saved version {} while you were editing.", theirs.version))
                .strong()
                .color(ui.visuals().warn_fg_color),
        );
        let dept = |id: Option<Uuid>| {
            id.and_then(|id| departments.iter().find(|d| d.id == id)).map_or("None".to_owned(), |d| d.name.clone())
        };
        let mine = &form.fields;
        let rows = [
            ("First name", theirs.first_name.clone(), mine.first_name.clone()),
            ("Last name", theirs.last_name.clone(), mine.last_name.clone()),
            ("E-mail", theirs.email.clone(), mine.email.clone()),
            ("Job title", theirs.job_title.clone().unwrap_or_default(), mine.job_title.clone()),
            ("Department", dept(theirs.department_id), dept(mine.department_id)),
            ("Hire date", theirs.hire_date.to_string(), mine.hire_date.clone()),
            ("Status", status_label(theirs.status.as_str()).to_owned(), status_label(&mine.status).to_owned()),
        ];
        egui::Grid::new("conflict_grid").num_columns(3).show(ui, |ui| {
            ui.label("");
            ui.label(RichText::new("Theirs").strong());
            ui.label(RichText::new("Yours").strong());
            ui.end_row();
            for (name, t, m) in rows.iter().filter(|(_, t, m)| t != m) {
                ui.label(*name);
                ui.label(t);
                ui.label(RichText::new(m).color(Color32::from_rgb(0, 120, 200)));
                ui.end_row();
            }
        });
        ui.horizontal(|ui| {
            if ui.button("Save mine over theirs").clicked() {
                form.base_version = theirs.version;
                form.conflict = None;
                form.changed_remotely = false;
                form.busy = true;
                actions.push(EmployeesAction::Save {
                    id: form.id,
                    version: theirs.version,
                    input: form.fields.input(),
                });
            }
            if ui.button("Discard mine, use theirs").clicked() {
                form.fields = FormFields::from_employee(theirs);
                form.base_version = theirs.version;
                form.conflict = None;
                form.changed_remotely = false;
                form.general = None;
            }
        });
    });
}

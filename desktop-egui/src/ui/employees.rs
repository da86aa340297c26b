//! The employees screen: a virtualised, sortable, searchable table of every employee, kept
//! live, and the add / edit / delete form with field errors and conflict handling.
//!
//! The screen only draws and returns [`EmployeesAction`]s; the app runs them in the
//! background. So the benchmark can drive it with no server at all.

use egui::{Color32, RichText, Sense, Ui};
use egui_extras::{Column, TableBuilder};
use uuid::Uuid;

use super::{FieldErrors, error_ui, field_ui, status_dot_ui};
use crate::api::ApiError;
use crate::api::wire::{Employee, LiveMessage, NewEmployee};
use crate::employees::{Applied, EmployeeStore, Filter, STATUSES, Sort, SortColumn, status_label};
use crate::live::LiveStatus;

pub const ROW_HEIGHT: f32 = 22.0;

#[derive(Debug, Clone, PartialEq)]
pub enum EmployeesAction {
    /// `id` none: create. Otherwise a conditional update on `version`.
    Save {
        id: Option<Uuid>,
        version: i64,
        input: NewEmployee,
    },
    Delete {
        id: Uuid,
        version: i64,
    },
    CreateDepartment(String),
    Reload,
    SignOut,
}

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

#[derive(Debug)]
pub struct EmployeesScreen {
    pub company: String,
    pub user: String,
    pub store: EmployeeStore,
    pub filter: Filter,
    pub sort: Sort,
    pub selected: Option<Uuid>,
    pub form: Option<EmployeeForm>,
    pub loading: bool,
    pub load_error: Option<String>,
    pub live: LiveStatus,
    pub notice: Option<String>,
}

impl EmployeesScreen {
    pub fn new(company: String, user: String) -> Self {
        Self {
            company,
            user,
            store: EmployeeStore::default(),
            filter: Filter { query: String::new(), department: None, status: None },
            sort: Sort::default(),
            selected: None,
            form: None,
            loading: false,
            load_error: None,
            live: LiveStatus::Connecting,
            notice: None,
        }
    }

    /// A live change event: the table follows, and an open form learns it is out of date.
    pub fn apply_live(&mut self, message: &LiveMessage) {
        let applied = self.store.apply(message);
        let Some(form) = self.form.as_mut() else { return };
        match applied {
            Applied::Changed(id)
                if form.id == Some(id)
                    && !form.busy
                    && self.store.get(id).is_some_and(|e| e.version != form.base_version) =>
            {
                form.changed_remotely = true;
            }
            Applied::Removed(id) if form.id == Some(id) => form.deleted_remotely = true,
            _ => {}
        }
    }

    /// The answer to a save.
    pub fn on_saved(&mut self, result: Result<Employee, ApiError>) {
        let Some(form) = self.form.as_mut() else { return };
        form.busy = false;
        match result {
            Ok(e) => {
                self.notice = Some(format!("Saved {} {}.", e.first_name, e.last_name));
                self.selected = Some(e.id);
                self.store.upsert(e);
                self.form = None;
            }
            Err(error) => match (error.status(), error.code()) {
                (Some(412 | 409), Some("version_mismatch")) => {
                    let current = match &error {
                        ApiError::Http { body, .. } => {
                            body.current.clone().and_then(|c| serde_json::from_value::<Employee>(c).ok())
                        }
                        _ => None,
                    };
                    match current {
                        Some(current) => {
                            self.store.upsert(current.clone());
                            form.conflict = Some(current);
                        }
                        None => form.general = Some(error.to_string()),
                    }
                }
                (Some(404), _) => {
                    form.deleted_remotely = true;
                    form.general = Some("This employee was deleted by someone else.".into());
                }
                _ => {
                    form.errors.clear();
                    let fields = error.field_errors();
                    if fields.is_empty() {
                        form.general = Some(error.to_string());
                    } else {
                        form.errors.extend(fields);
                    }
                }
            },
        }
    }

    pub fn on_deleted(&mut self, id: Uuid, result: Result<(), ApiError>) {
        match result {
            Ok(()) => {
                self.store.remove(id);
                self.notice = Some("Employee deleted.".into());
                if self.form.as_ref().is_some_and(|f| f.id == Some(id)) {
                    self.form = None;
                }
            }
            Err(error) => {
                if let Some(form) = self.form.as_mut() {
                    form.busy = false;
                    form.confirm_delete = false;
                    if error.code() == Some("version_mismatch") {
                        form.general =
                            Some("Someone changed this employee meanwhile; review it before deleting.".into());
                        if let ApiError::Http { body, .. } = &error
                            && let Some(current) =
                                body.current.clone().and_then(|c| serde_json::from_value::<Employee>(c).ok())
                        {
                            form.conflict = Some(current);
                        }
                    } else {
                        form.general = Some(error.to_string());
                    }
                }
            }
        }
    }

    pub fn on_department_created(&mut self, result: Result<crate::api::wire::Department, ApiError>) {
        match result {
            Ok(d) => {
                if let Some(form) = self.form.as_mut() {
                    form.fields.department_id = Some(d.id);
                    form.new_department.clear();
                    form.department_error = None;
                }
                self.store.add_department(d);
            }
            Err(error) => {
                if let Some(form) = self.form.as_mut() {
                    let message = error.field_errors().into_iter().next().map_or(error.to_string(), |(_, m)| m);
                    form.department_error = Some(message);
                }
            }
        }
    }

    pub fn ui(&mut self, ui: &mut Ui) -> Vec<EmployeesAction> {
        let mut actions = Vec::new();
        egui::Panel::top("employees_top").show(ui, |ui| self.top_bar_ui(ui, &mut actions));
        if self.form.is_some() {
            egui::Panel::right("employee_form").default_size(360.0).resizable(true).show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.form_ui(ui, &mut actions));
            });
        }
        egui::CentralPanel::default_margins().show(ui, |ui| {
            self.toolbar_ui(ui);
            ui.separator();
            self.table_ui(ui);
        });
        actions
    }

    fn top_bar_ui(&mut self, ui: &mut Ui, actions: &mut Vec<EmployeesAction>) {
        ui.horizontal(|ui| {
            ui.heading(&self.company);
            ui.label(RichText::new(format!("signed in as {}", self.user)).weak());
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui.button("Sign out").clicked() {
                    actions.push(EmployeesAction::SignOut);
                }
                live_indicator_ui(ui, &self.live);
            });
        });
    }

    fn toolbar_ui(&mut self, ui: &mut Ui) {
        ui.horizontal_wrapped(|ui| {
            let label = ui.label("Search");
            ui.add(egui::TextEdit::singleline(&mut self.filter.query).hint_text("name or e-mail").desired_width(200.0))
                .labelled_by(label.id);
            let departments = self.store.departments().to_vec();
            let current = self.filter.department.map_or("All departments".to_owned(), |id| {
                departments.iter().find(|d| d.id == id).map_or("?".to_owned(), |d| d.name.clone())
            });
            egui::ComboBox::from_label("Department filter").selected_text(current).show_ui(ui, |ui| {
                ui.selectable_value(&mut self.filter.department, None, "All departments");
                for d in &departments {
                    ui.selectable_value(&mut self.filter.department, Some(d.id), &d.name);
                }
            });
            let current = self.filter.status.as_deref().map_or("All statuses", status_label).to_owned();
            egui::ComboBox::from_label("Status filter").selected_text(current).show_ui(ui, |ui| {
                ui.selectable_value(&mut self.filter.status, None, "All statuses");
                for (value, label) in STATUSES {
                    ui.selectable_value(&mut self.filter.status, Some(value.to_owned()), label);
                }
            });
            if ui.button("Add employee").clicked() {
                self.form = Some(EmployeeForm::new_employee());
            }
            let shown = self.store.view(&self.filter, self.sort).len();
            ui.label(format!("{shown} of {} employees", self.store.len()));
            if self.loading {
                ui.spinner();
            }
        });
        if let Some(error) = &self.load_error {
            error_ui(ui, error);
        }
        if let Some(notice) = &self.notice {
            ui.label(RichText::new(notice).weak());
        }
    }

    fn table_ui(&mut self, ui: &mut Ui) {
        let view: Vec<usize> = self.store.view(&self.filter, self.sort).to_vec();
        let mut clicked = None;
        let mut sort = self.sort;
        ui.style_mut().interaction.selectable_labels = false;
        TableBuilder::new(ui)
            .id_salt("employees_table")
            .striped(true)
            .sense(Sense::click())
            .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
            .column(Column::initial(130.0).at_least(60.0).clip(true).resizable(true))
            .column(Column::initial(110.0).at_least(60.0).clip(true).resizable(true))
            .column(Column::initial(220.0).at_least(80.0).clip(true).resizable(true))
            .column(Column::initial(140.0).at_least(60.0).clip(true).resizable(true))
            .column(Column::initial(120.0).at_least(60.0).clip(true).resizable(true))
            .column(Column::initial(80.0).at_least(60.0).clip(true).resizable(true))
            .column(Column::remainder().at_least(80.0))
            .header(ROW_HEIGHT + 4.0, |mut header| {
                for column in SortColumn::ALL {
                    header.col(|ui| {
                        let title = RichText::new(column.title()).strong();
                        if ui.add(egui::Button::new(title).frame(false)).clicked() {
                            sort = if sort.column == column {
                                Sort { column, ascending: !sort.ascending }
                            } else {
                                Sort { column, ascending: true }
                            };
                        }
                        if sort.column == column {
                            sort_arrow_ui(ui, sort.ascending);
                        }
                    });
                }
            })
            .body(|body| {
                // Only the rows in sight are laid out: 10,000 rows cost what 30 do.
                body.rows(ROW_HEIGHT, view.len(), |mut row| {
                    let e = self.store.row(view[row.index()]);
                    row.set_selected(self.selected == Some(e.id));
                    let mut hit = false;
                    row.col(|ui| {
                        hit |= ui.add(egui::Button::new(&e.last_name).frame(false)).clicked();
                    });
                    row.col(|ui| {
                        ui.label(&e.first_name);
                    });
                    row.col(|ui| {
                        ui.label(&e.email);
                    });
                    row.col(|ui| {
                        ui.label(e.job_title.as_deref().unwrap_or(""));
                    });
                    row.col(|ui| {
                        ui.label(self.store.department_name(e.department_id));
                    });
                    row.col(|ui| {
                        ui.label(status_label(e.status.as_str()));
                    });
                    row.col(|ui| {
                        ui.label(e.hire_date.to_string());
                    });
                    if hit || row.response().clicked() {
                        clicked = Some(e.id);
                    }
                });
            });
        self.sort = sort;
        if let Some(id) = clicked {
            self.selected = Some(id);
            let unsaved = self.form.as_ref().is_some_and(|f| f.busy);
            if !unsaved && let Some(e) = self.store.get(id) {
                self.form = Some(EmployeeForm::edit(e));
            }
        }
    }

    fn form_ui(&mut self, ui: &mut Ui, actions: &mut Vec<EmployeesAction>) {
        let departments = self.store.departments().to_vec();
        let Some(form) = self.form.as_mut() else { return };
        ui.heading(if form.id.is_some() { "Edit employee" } else { "New employee" });
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
        let mut submit = false;
        egui::Grid::new("employee_form_grid").num_columns(2).spacing([8.0, 6.0]).show(ui, |ui| {
            let f = &mut form.fields;
            let e = &form.errors;
            for (label, value, field) in [
                ("First name", &mut f.first_name, "first_name"),
                ("Last name", &mut f.last_name, "last_name"),
                ("Work e-mail", &mut f.email, "email"),
                ("Job title", &mut f.job_title, "job_title"),
                ("Hire date (YYYY-MM-DD)", &mut f.hire_date, "hire_date"),
            ] {
                let response = field_ui(ui, label, value, e.get(field), false);
                submit |= super::submitted(ui, &response);
            }
            ui.label("Department");
            ui.vertical(|ui| {
                let name = form
                    .fields
                    .department_id
                    .and_then(|id| departments.iter().find(|d| d.id == id))
                    .map_or("None".to_owned(), |d| d.name.clone());
                egui::ComboBox::from_id_salt("form_department").selected_text(name).show_ui(ui, |ui| {
                    ui.selectable_value(&mut form.fields.department_id, None, "None");
                    for d in &departments {
                        ui.selectable_value(&mut form.fields.department_id, Some(d.id), &d.name);
                    }
                });
                if let Some(error) = form.errors.get("department_id") {
                    error_ui(ui, error);
                }
                ui.horizontal(|ui| {
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
        if let Some(general) = &form.general {
            error_ui(ui, general);
        }
        ui.add_space(8.0);
        let mut close = false;
        ui.horizontal(|ui| {
            let save = ui.add_enabled(!form.busy && !form.deleted_remotely, egui::Button::new("Save"));
            if (save.clicked() || (submit && !form.busy)) && !form.deleted_remotely {
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

/// A small triangle after the sorted column's title (the default font has no arrow glyphs).
fn sort_arrow_ui(ui: &mut Ui, ascending: bool) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), Sense::hover());
    let c = rect.center();
    let (tip, base) = if ascending { (-4.0, 3.0) } else { (4.0, -3.0) };
    let points = vec![egui::pos2(c.x, c.y + tip), egui::pos2(c.x - 4.0, c.y + base), egui::pos2(c.x + 4.0, c.y + base)];
    ui.painter().add(egui::Shape::convex_polygon(points, ui.visuals().text_color(), egui::Stroke::NONE));
}

/// A dot and "Live" / "Reconnecting…" / "Offline".
pub fn live_indicator_ui(ui: &mut Ui, live: &LiveStatus) {
    let (color, text) = match live {
        LiveStatus::Live => (Color32::from_rgb(0, 170, 80), "Live".to_owned()),
        LiveStatus::Connecting => (Color32::from_rgb(230, 160, 0), "Connecting…".to_owned()),
        LiveStatus::Reconnecting { retry_in, .. } => {
            (Color32::from_rgb(230, 160, 0), format!("Reconnecting (in {}s)…", retry_in.as_secs().max(1)))
        }
        LiveStatus::NeedsSignIn => (Color32::from_rgb(200, 60, 60), "Offline: sign in again".to_owned()),
        LiveStatus::Stopped(why) => (Color32::GRAY, format!("Offline: {why}")),
    };
    status_dot_ui(ui, color, &text);
}

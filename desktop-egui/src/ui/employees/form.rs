//! The add / edit form: its fields, their checks, and the conflict panel shown when someone
//! else saved the same employee first. The form keeps its base (the record as opened) so that
//! someone else's changes, live or in a 412, are merged three ways ([`crate::merge`]) and only
//! a field both changed is asked about.

use super::*;
use crate::merge::{Field, merge};

/// The editable fields, as typed.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
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
    pub fn from_employee(e: &Employee) -> Self {
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

/// A lost race: the server's newer record and the fields both sides changed differently.
#[derive(Debug, Clone)]
pub struct Conflict {
    pub theirs: Employee,
    pub fields: Vec<Field>,
}

/// What a live change by someone else did to the open form.
#[derive(Debug, Clone, PartialEq)]
pub enum RemoteChange {
    /// Their changes touched only fields the user left alone: they are in the form now.
    Merged,
    /// They also changed fields the user changed: saving will ask about these.
    Conflicting(Vec<Field>),
}

#[derive(Debug, Clone)]
pub struct EmployeeForm {
    /// `None`: a new employee.
    pub id: Option<Uuid>,
    /// The version the fields in `base` are of (sent as `If-Match`).
    pub base_version: i64,
    /// The record as opened, moved forward by changes merged in since: what "the user
    /// changed a field" is measured against.
    pub base: FormFields,
    pub fields: FormFields,
    pub errors: FieldErrors,
    pub general: Option<String>,
    /// `general` says the server could not be reached: it goes once the app is back online.
    pub general_is_outage: bool,
    pub busy: bool,
    /// After a lost race with fields both sides changed: shown, and the user chooses.
    pub conflict: Option<Conflict>,
    /// A lost race merged with no conflict: the next frame saves the merged result.
    pub resave: bool,
    /// Someone changed (or deleted) the record live while it was open.
    pub changed_remotely: Option<RemoteChange>,
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
            base: fields.clone(),
            fields,
            errors: FieldErrors::default(),
            general: None,
            general_is_outage: false,
            busy: false,
            conflict: None,
            resave: false,
            changed_remotely: None,
            deleted_remotely: false,
            confirm_delete: false,
            new_department: String::new(),
            department_error: None,
        }
    }

    /// A newer version arrived live: fields only they changed are taken into the form at
    /// once. With no conflict the form moves to their version; otherwise it keeps the old
    /// version for the conflicting fields, so saving meets the 412 and asks.
    pub fn on_remote_change(&mut self, theirs: &Employee) {
        if theirs.version <= self.base_version {
            return;
        }
        let their_fields = FormFields::from_employee(theirs);
        let merged = merge(&self.base, &self.fields, &their_fields);
        self.fields = merged.fields;
        if merged.conflicts.is_empty() {
            self.base = their_fields;
            self.base_version = theirs.version;
            self.changed_remotely = Some(RemoteChange::Merged);
        } else {
            // The base moves forward everywhere but where the user still has to choose.
            let mut base = their_fields;
            for field in &merged.conflicts {
                field.copy(&self.base, &mut base);
            }
            self.base = base;
            self.changed_remotely = Some(RemoteChange::Conflicting(merged.conflicts));
        }
    }

    /// A save or delete lost the race to `theirs`: merge; true when nothing needs asking
    /// (the form then holds the merged result on their version).
    pub fn lost_race(&mut self, theirs: Employee) -> bool {
        let their_fields = FormFields::from_employee(&theirs);
        let merged = merge(&self.base, &self.fields, &their_fields);
        self.fields = merged.fields;
        self.changed_remotely = None;
        if merged.conflicts.is_empty() {
            self.base = their_fields;
            self.base_version = theirs.version;
            self.conflict = None;
            true
        } else {
            self.conflict = Some(Conflict { theirs, fields: merged.conflicts });
            false
        }
    }

    /// Resolves a conflict: `mine` keeps the user's values in the conflicting fields,
    /// otherwise theirs; either way the form is then on their version.
    fn resolve(&mut self, mine: bool) {
        let Some(conflict) = self.conflict.take() else { return };
        let their_fields = FormFields::from_employee(&conflict.theirs);
        if !mine {
            for field in &conflict.fields {
                field.copy(&their_fields, &mut self.fields);
            }
        }
        self.base = their_fields;
        self.base_version = conflict.theirs.version;
        self.changed_remotely = None;
    }

    fn save_action(&self) -> EmployeesAction {
        EmployeesAction::Save { id: self.id, version: self.base_version, input: self.fields.input() }
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
        } else if form.conflict.is_none() {
            match &form.changed_remotely {
                Some(RemoteChange::Merged) => {
                    ui.label(
                        RichText::new("Someone else changed this employee; their changes are in the form.")
                            .color(ui.visuals().warn_fg_color),
                    );
                }
                Some(RemoteChange::Conflicting(fields)) => {
                    ui.label(
                        RichText::new("Someone else changed this employee while you were editing.")
                            .color(ui.visuals().warn_fg_color),
                    );
                    let names: Vec<&str> = fields.iter().map(|f| f.label()).collect();
                    ui.label(format!("You both changed: {}. Saving will ask which to keep.", names.join(", ")));
                }
                None => {}
            }
        }
        if form.resave && !form.deleted_remotely {
            form.resave = false;
            form.busy = true;
            actions.push(form.save_action());
        }
        if let Some(conflict) = form.conflict.clone() {
            conflict_ui(ui, form, &conflict, &departments, actions);
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
                form.general_is_outage = false;
                if form.errors.is_empty() {
                    form.busy = true;
                    actions.push(form.save_action());
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

/// The lost-race panel: only the fields both sides changed, theirs next to the user's, and
/// the two ways on. Everything else is already merged into the form.
fn conflict_ui(
    ui: &mut Ui,
    form: &mut EmployeeForm,
    conflict: &Conflict,
    departments: &[crate::api::wire::Department],
    actions: &mut Vec<EmployeesAction>,
) {
    let theirs = &conflict.theirs;
    egui::Frame::group(ui.style()).fill(ui.visuals().faint_bg_color).show(ui, |ui| {
        ui.label(
            RichText::new(format!("Conflict: someone else saved version {} while you were editing.", theirs.version))
                .strong()
                .color(ui.visuals().warn_fg_color),
        );
        ui.label("Their other changes are already in the form. You both changed:");
        let dept = |id: Option<Uuid>| {
            id.and_then(|id| departments.iter().find(|d| d.id == id)).map_or("None".to_owned(), |d| d.name.clone())
        };
        let their_fields = FormFields::from_employee(theirs);
        let shown = |fields: &FormFields, field: Field| match field {
            Field::FirstName => fields.first_name.clone(),
            Field::LastName => fields.last_name.clone(),
            Field::Email => fields.email.clone(),
            Field::JobTitle => fields.job_title.clone(),
            Field::Department => dept(fields.department_id),
            Field::HireDate => fields.hire_date.clone(),
            Field::Status => status_label(&fields.status).to_owned(),
        };
        egui::Grid::new("conflict_grid").num_columns(3).show(ui, |ui| {
            ui.label("");
            ui.label(RichText::new("Theirs").strong());
            ui.label(RichText::new("Yours").strong());
            ui.end_row();
            for &field in &conflict.fields {
                ui.label(field.label());
                ui.label(shown(&their_fields, field));
                ui.label(RichText::new(shown(&form.fields, field)).color(Color32::from_rgb(0, 120, 200)));
                ui.end_row();
            }
        });
        ui.horizontal(|ui| {
            if ui.button("Save mine over theirs").clicked() {
                form.resolve(true);
                form.busy = true;
                actions.push(form.save_action());
            }
            if ui.button("Discard mine, use theirs").clicked() {
                form.resolve(false);
                form.general = None;
                form.general_is_outage = false;
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grace(version: i64) -> Employee {
        Employee {
            id: Uuid::from_u128(1),
            first_name: "Grace".into(),
            last_name: "Hopper".into(),
            email: "grace@example.com".into(),
            job_title: Some("Commander".into()),
            hire_date: api_types::employees::IsoDate::parse("2024-01-01").unwrap(),
            version,
            ..Employee::default()
        }
    }

    fn saved(action: EmployeesAction) -> (i64, NewEmployee) {
        match action {
            EmployeesAction::Save { version, input, .. } => (version, input),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_lost_race_with_nothing_to_ask_saves_the_merged_result_on_their_version() {
        let mut form = EmployeeForm::edit(&grace(1));
        form.fields.job_title = "Rear Admiral".into();
        let mut theirs = grace(2);
        theirs.department_id = Some(Uuid::from_u128(9));
        assert!(form.lost_race(theirs));
        assert!(form.conflict.is_none());
        let (version, input) = saved(form.save_action());
        assert_eq!(version, 2);
        assert_eq!(input.job_title.as_deref(), Some("Rear Admiral"));
        assert_eq!(input.department_id, Some(Uuid::from_u128(9)));
    }

    #[test]
    fn resolving_a_conflict_keeps_the_merged_fields_and_uses_their_version() {
        let mut theirs = grace(2);
        theirs.job_title = Some("Commodore".into());
        theirs.department_id = Some(Uuid::from_u128(9));
        theirs.status = api_types::employees::EmployeeStatus::OnLeave;
        for mine_wins in [true, false] {
            let mut form = EmployeeForm::edit(&grace(1));
            form.fields.job_title = "Rear Admiral".into();
            form.fields.last_name = "Hopper-Murray".into();
            assert!(!form.lost_race(theirs.clone()));
            assert_eq!(form.conflict.as_ref().unwrap().fields, [Field::JobTitle]);
            form.resolve(mine_wins);
            let (version, input) = saved(form.save_action());
            assert_eq!(version, 2);
            let title = if mine_wins { "Rear Admiral" } else { "Commodore" };
            assert_eq!(input.job_title.as_deref(), Some(title));
            assert_eq!(input.last_name, "Hopper-Murray", "the user's other change stays");
            assert_eq!(input.department_id, Some(Uuid::from_u128(9)), "theirs stays");
            assert_eq!(input.status.as_deref(), Some("on_leave"));
        }
    }

    #[test]
    fn live_changes_fill_untouched_fields_and_keep_the_old_version_only_for_a_conflict() {
        let mut form = EmployeeForm::edit(&grace(1));
        form.fields.job_title = "Rear Admiral".into();
        let mut v2 = grace(2);
        v2.first_name = "Amazing Grace".into();
        form.on_remote_change(&v2);
        assert_eq!(form.changed_remotely, Some(RemoteChange::Merged));
        assert_eq!((form.base_version, form.fields.first_name.as_str()), (2, "Amazing Grace"));

        // Then a change to the field the user is editing, and to another one.
        let mut v3 = v2.clone();
        v3.version = 3;
        v3.job_title = Some("Commodore".into());
        v3.email = "amazing@example.com".into();
        form.on_remote_change(&v3);
        assert_eq!(form.changed_remotely, Some(RemoteChange::Conflicting(vec![Field::JobTitle])));
        assert_eq!(form.base_version, 2, "saving must meet the 412 and ask");
        assert_eq!(form.fields.email, "amazing@example.com");
        assert_eq!(form.fields.job_title, "Rear Admiral");

        // A fourth version changes the e-mail again: no conflict there, the base moved on.
        let mut v4 = v3.clone();
        v4.version = 4;
        v4.email = "grace.hopper@example.com".into();
        assert!(!form.lost_race(v4));
        assert_eq!(form.conflict.as_ref().unwrap().fields, [Field::JobTitle]);
        assert_eq!(form.fields.email, "grace.hopper@example.com");
    }
}

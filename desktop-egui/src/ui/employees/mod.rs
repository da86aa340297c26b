//! The employees screen: a virtualised, sortable, searchable table of every employee, kept
//! live, and the add / edit / delete form with field errors and conflict handling.
//!
//! The screen only draws and returns [`EmployeesAction`]s; the app runs them in the
//! background. So the benchmark can drive it with no server at all. What it offers follows
//! the user's role: staff only read, managers add and edit, admins also delete.

use egui::{Color32, Key, Modifiers, RichText, Sense, Ui};
use egui_extras::{Column, TableBuilder};
use uuid::Uuid;

mod form;

use super::picker::{PickItem, PickerState, picker_ui};
use super::status_line::{StatusLine, forget_about, status_line_ui};
use super::{FieldErrors, error_ui, field_ui};
use crate::api::ApiError;
use crate::api::wire::{Employee, LiveMessage, NewEmployee, Role};
use crate::employees::{Applied, EmployeeStore, Filter, STATUSES, Sort, SortColumn, status_label};
pub use form::{Conflict, EmployeeForm, FormFields, RemoteChange};

pub const ROW_HEIGHT: f32 = 22.0;

/// The table's narrowest width: every column at its first width. Narrower (the form open
/// beside it, a small window), it scrolls sideways rather than cutting columns off.
const TABLE_MIN_WIDTH: f32 = 130.0 + 110.0 + 220.0 + 140.0 + 120.0 + 80.0 + 100.0;

/// The search field's id, so Ctrl+F can focus it.
fn search_id() -> egui::Id {
    egui::Id::unique("employees_search")
}

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
}

#[derive(Debug)]
pub struct EmployeesScreen {
    /// The signed-in user's role: which controls show. The server refuses the rest anyway.
    pub role: Role,
    pub store: EmployeeStore,
    pub filter: Filter,
    pub sort: Sort,
    pub selected: Option<Uuid>,
    pub form: Option<EmployeeForm>,
    pub loading: bool,
    pub load_error: Option<String>,
    /// "Saved …", "Employee deleted.": transient.
    pub notice: Option<StatusLine>,
    /// The department pickers of the toolbar and of the form.
    department_filter: PickerState,
    department_picker: PickerState,
}

impl EmployeesScreen {
    pub fn new(role: Role) -> Self {
        Self {
            role,
            store: EmployeeStore::default(),
            filter: Filter { query: String::new(), department: None, status: None },
            sort: Sort::default(),
            selected: None,
            form: None,
            loading: false,
            load_error: None,
            notice: None,
            department_filter: PickerState::default(),
            department_picker: PickerState::default(),
        }
    }

    /// A live change event: the table follows, and an open form learns it is out of date.
    pub fn apply_live(&mut self, message: &LiveMessage) {
        let applied = self.store.apply(message);
        if let Applied::Removed(id) = applied {
            forget_about(&mut self.notice, id);
        }
        let Some(form) = self.form.as_mut() else { return };
        match applied {
            // While a save is in flight its answer settles the form (a 412 merges there).
            Applied::Changed(id) if form.id == Some(id) && !form.busy => {
                if let Some(theirs) = self.store.get(id) {
                    form.on_remote_change(theirs);
                }
            }
            Applied::Removed(id) if form.id == Some(id) => form.deleted_remotely = true,
            _ => {}
        }
    }

    /// Back online after an outage: the form's "cannot reach the server" goes; true when a
    /// load failed meanwhile and must run again (which clears its error line).
    pub fn on_back_online(&mut self) -> bool {
        if let Some(form) = self.form.as_mut()
            && form.general_is_outage
        {
            form.general = None;
            form.general_is_outage = false;
        }
        self.load_error.is_some()
    }

    /// The answer to a save.
    pub fn on_saved(&mut self, result: Result<Employee, ApiError>) {
        let Some(form) = self.form.as_mut() else { return };
        form.busy = false;
        match result {
            Ok(e) => {
                self.notice = Some(StatusLine::new(format!("Saved {} {}.", e.first_name, e.last_name), Some(e.id)));
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
                            // Nothing to ask: save the merged result on their version.
                            form.resave = form.lost_race(current);
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
                        form.general_is_outage = matches!(error, ApiError::Unreachable(_));
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
                self.notice = Some(StatusLine::new("Employee deleted.", None));
                if self.form.as_ref().is_some_and(|f| f.id == Some(id)) {
                    self.form = None;
                }
            }
            Err(error) => {
                if let Some(form) = self.form.as_mut() {
                    form.busy = false;
                    form.confirm_delete = false;
                    form.general_is_outage = matches!(error, ApiError::Unreachable(_));
                    if error.code() == Some("version_mismatch") {
                        form.general =
                            Some("Someone changed this employee meanwhile; review it before deleting.".into());
                        if let ApiError::Http { body, .. } = &error
                            && let Some(current) =
                                body.current.clone().and_then(|c| serde_json::from_value::<Employee>(c).ok())
                        {
                            form.lost_race(current);
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
        self.shortcuts(ui);
        if self.form.is_some() {
            egui::Panel::right("employee_form").default_size(360.0).resizable(true).show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.form_ui(ui, &mut actions));
            });
        }
        egui::CentralPanel::default_margins().show(ui, |ui| {
            self.toolbar_ui(ui);
            ui.separator();
            if !self.empty_ui(ui) {
                egui::ScrollArea::horizontal().id_salt("employees_hscroll").auto_shrink(false).show(ui, |ui| {
                    ui.set_width(ui.available_width().max(TABLE_MIN_WIDTH));
                    self.table_ui(ui);
                });
            }
        });
        actions
    }

    /// Ctrl+N new employee, Ctrl+F search, Esc closes the form (Ctrl+S saving is the
    /// form's). Escape first closes an open drop-down: only a second one closes the form.
    fn shortcuts(&mut self, ui: &mut Ui) {
        let (new, find) =
            ui.input_mut(|i| (i.consume_key(Modifiers::COMMAND, Key::N), i.consume_key(Modifiers::COMMAND, Key::F)));
        let busy = self.form.as_ref().is_some_and(|f| f.busy);
        if new && self.role.may_write() && !busy {
            self.form = Some(EmployeeForm::new_employee());
        }
        if find {
            ui.memory_mut(|m| m.request_focus(search_id()));
        }
        if self.form.is_some()
            && !busy
            && !egui::Popup::is_any_open(ui.ctx())
            && ui.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Escape))
        {
            self.form = None;
        }
    }

    /// What shows instead of an empty table: true when it did.
    fn empty_ui(&mut self, ui: &mut Ui) -> bool {
        if !self.store.view(&self.filter, self.sort).is_empty() || self.loading {
            return false;
        }
        ui.add_space(24.0);
        ui.vertical_centered(|ui| {
            if self.store.is_empty() {
                ui.label(RichText::new("No employees yet.").strong());
                if self.role.may_write() {
                    ui.label("Add the first one with \"Add employee\" (Ctrl+N).");
                }
            } else {
                ui.label(RichText::new("No employee matches the search and filters.").strong());
                if ui.button("Clear search and filters").clicked() {
                    self.filter = Filter { query: String::new(), department: None, status: None };
                }
            }
        });
        true
    }

    fn toolbar_ui(&mut self, ui: &mut Ui) {
        ui.horizontal_wrapped(|ui| {
            // Each label stands before its control, so it cannot be read as the next one's.
            let label = ui.label("Search");
            ui.add(
                egui::TextEdit::singleline(&mut self.filter.query)
                    .id(search_id())
                    .hint_text("name or e-mail (Ctrl+F)")
                    .desired_width(200.0),
            )
            .labelled_by(label.id);
            ui.label("Department");
            let items = department_items(self.store.departments(), "All departments");
            picker_ui(ui, "Department", &mut self.department_filter, &items, &mut self.filter.department);
            let current = self.filter.status.as_deref().map_or("All statuses", status_label).to_owned();
            let label = ui.label("Status");
            egui::ComboBox::from_id_salt("status_filter")
                .selected_text(current)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.filter.status, None, "All statuses");
                    for (value, label) in STATUSES {
                        ui.selectable_value(&mut self.filter.status, Some(value.to_owned()), label);
                    }
                })
                .response
                .labelled_by(label.id);
            if self.role.may_write() && ui.button("Add employee").on_hover_text("Ctrl+N").clicked() {
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
        status_line_ui(ui, &mut self.notice);
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
}

/// The departments as a picker lists them, after `none` (no department, or all of them).
fn department_items(departments: &[crate::api::wire::Department], none: &str) -> Vec<PickItem<Option<Uuid>>> {
    std::iter::once(PickItem::new(None, none))
        .chain(departments.iter().map(|d| PickItem::new(Some(d.id), d.name.clone())))
        .collect()
}

/// A small triangle after the sorted column's title (the default font has no arrow glyphs).
fn sort_arrow_ui(ui: &mut Ui, ascending: bool) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), Sense::hover());
    let c = rect.center();
    let (tip, base) = if ascending { (-4.0, 3.0) } else { (4.0, -3.0) };
    let points = vec![egui::pos2(c.x, c.y + tip), egui::pos2(c.x - 4.0, c.y + base), egui::pos2(c.x + 4.0, c.y + base)];
    ui.painter().add(egui::Shape::convex_polygon(points, ui.visuals().text_color(), egui::Stroke::NONE));
}

//! Employees: an add in one app instance appears live in another; an edit that lost a race
//! shows the newer data and can be retried.

use egui_kittest::kittest::Queryable;

use crate::helpers::*;

#[test]
fn an_employee_added_in_app_a_appears_in_app_b_with_no_user_action() {
    let stack = Stack::start();
    let company = stack.signup(&unique("live-"));
    let mut a = stack.app();
    let mut b = stack.app();
    sign_in(&mut a, &company);
    sign_in(&mut b, &company);

    click(&mut a, "Add employee");
    wait_for_label(&mut a, "New employee");
    type_into(&mut a, "First name", "Ada");
    type_into(&mut a, "Last name", "Lovelace");
    type_into(&mut a, "Work e-mail", "ada@example.com");
    // A department made on the spot is picked for her.
    type_into(&mut a, "New department", "Analytical Engines");
    click(&mut a, "Create department");
    wait_for(&mut a, "the new department to be picked", |a| {
        a.state().screen_employees().form.as_ref().is_some_and(|f| f.fields.department_id.is_some())
    });
    click(&mut a, "Save");
    wait_for_label(&mut a, "Saved Ada Lovelace.");
    wait_for_label(&mut a, "Lovelace");

    // B only renders frames.
    wait_for_label(&mut b, "Lovelace");
    assert!(b.query_by_label("1 of 1 employees").is_some());
    wait_for_label(&mut b, "Analytical Engines");
}

#[test]
fn field_errors_from_the_server_are_shown_next_to_the_field() {
    let stack = Stack::start();
    let company = stack.signup(&unique("fields-"));
    stack.add_employee(&company, "Grace", "Hopper");
    let mut app = stack.app();
    sign_in(&mut app, &company);
    wait_for_label(&mut app, "Hopper");
    click(&mut app, "Add employee");
    type_into(&mut app, "First name", "Other");
    type_into(&mut app, "Last name", "Person");
    // The address Grace already has: only the server can know.
    type_into(&mut app, "Work e-mail", &format!("hopper@{}.example.com", company.slug));
    click(&mut app, "Save");
    wait_for_label(&mut app, "is already used by another employee");
}

#[test]
fn an_edit_that_lost_a_race_shows_the_newer_data_and_can_be_saved_again() {
    let stack = Stack::start();
    let company = stack.signup(&unique("conflict-"));
    let created = stack.add_employee(&company, "Grace", "Hopper");
    let id = created["id"].as_str().unwrap().to_owned();
    let mut app = stack.app();
    sign_in(&mut app, &company);
    wait_for_label(&mut app, "Hopper");

    click(&mut app, "Hopper");
    wait_for_label(&mut app, "Edit employee");
    type_into(&mut app, "Job title", "Rear Admiral");

    // Someone else saves first.
    stack.patch_employee(&company, &id, serde_json::json!({"job_title": "Commodore"}));
    wait_for_label(&mut app, "Someone else changed this employee while you were editing.");

    click(&mut app, "Save");
    wait_for_label_containing(&mut app, "Conflict: someone else saved version 2");
    // In the table (live) and in the conflict panel.
    assert!(app.query_all_by_label("Commodore").count() >= 2, "their value is shown");

    click(&mut app, "Save mine over theirs");
    wait_for_label(&mut app, "Saved Grace Hopper.");
    let now = stack.get_employee(&company, &id);
    assert_eq!(now["job_title"], "Rear Admiral");
    assert_eq!(now["version"], 3);
}

#[test]
fn a_colleagues_change_to_another_field_survives_and_only_the_field_both_changed_is_asked() {
    let stack = Stack::start();
    let company = stack.signup(&unique("merge-"));
    let finance = stack.add_department(&company, "Treasury");
    let created = stack.add_employee(&company, "Grace", "Hopper");
    let id = created["id"].as_str().unwrap().to_owned();
    let mut b = stack.app();
    sign_in(&mut b, &company);
    wait_for_label(&mut b, "Hopper");

    click(&mut b, "Hopper");
    wait_for_label(&mut b, "Edit employee");
    type_into(&mut b, "Job title", "Rear Admiral");

    // Colleague A changes the job title and the department.
    stack.patch_employee(&company, &id, serde_json::json!({"job_title": "Commodore", "department_id": finance["id"]}));
    wait_for_label(&mut b, "Someone else changed this employee while you were editing.");
    wait_for_label(&mut b, "You both changed: Job title. Saving will ask which to keep.");
    let finance_id = finance["id"].as_str().and_then(|s| uuid::Uuid::parse_str(s).ok());
    let form = b.state().screen_employees().form.clone().unwrap();
    assert_eq!(form.fields.department_id, finance_id, "the field B left alone follows A at once");
    assert_eq!(form.fields.job_title, "Rear Admiral", "B's own change stays");

    click(&mut b, "Save");
    wait_for_label_containing(&mut b, "Conflict: someone else saved version 2");
    let conflict = b.state().screen_employees().form.as_ref().unwrap().conflict.clone().unwrap();
    assert_eq!(conflict.fields, [desktop_egui::merge::Field::JobTitle], "only the job title is asked");

    click(&mut b, "Save mine over theirs");
    wait_for_label(&mut b, "Saved Grace Hopper.");
    let now = stack.get_employee(&company, &id);
    assert_eq!(now["job_title"], "Rear Admiral");
    assert_eq!(now["department_id"], finance["id"], "A's department is kept");
    assert_eq!(now["version"], 3);
}

#[test]
fn a_live_change_to_a_field_the_user_left_alone_updates_the_open_form_and_saves_without_conflict() {
    let stack = Stack::start();
    let company = stack.signup(&unique("livemerge-"));
    let created = stack.add_employee(&company, "Grace", "Hopper");
    let id = created["id"].as_str().unwrap().to_owned();
    let mut app = stack.app();
    sign_in(&mut app, &company);
    wait_for_label(&mut app, "Hopper");

    click(&mut app, "Hopper");
    wait_for_label(&mut app, "Edit employee");
    type_into(&mut app, "Job title", "Rear Admiral");

    stack.patch_employee(&company, &id, serde_json::json!({"first_name": "Amazing Grace"}));
    wait_for_label(&mut app, "Someone else changed this employee; their changes are in the form.");
    let form = app.state().screen_employees().form.clone().unwrap();
    assert_eq!(form.fields.first_name, "Amazing Grace");
    assert_eq!(form.fields.job_title, "Rear Admiral");
    assert_eq!(form.base_version, 2);
    assert_eq!(field(&app, "First name").value().as_deref(), Some("Amazing Grace"), "the field shows it");

    click(&mut app, "Save");
    wait_for_label(&mut app, "Saved Amazing Grace Hopper.");
    let now = stack.get_employee(&company, &id);
    assert_eq!(now["first_name"], "Amazing Grace");
    assert_eq!(now["job_title"], "Rear Admiral");
    assert_eq!(now["version"], 3);
}

trait EmployeesState {
    fn screen_employees(&self) -> &desktop_egui::ui::employees::EmployeesScreen;
}

impl EmployeesState for desktop_egui::app::NexaApp {
    fn screen_employees(&self) -> &desktop_egui::ui::employees::EmployeesScreen {
        match &self.screen {
            desktop_egui::app::Screen::Company(w) => &w.employees,
            other => panic!("not on the employees screen but {}", other.name()),
        }
    }
}

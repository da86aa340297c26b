//! Layout and keyboard of the employees screen, driven by answers fed to the app (no
//! platform needed): labels stand before their controls, an empty table says so, Ctrl+N
//! opens the new-employee form and Esc closes it, the window title names the company.

use desktop_egui::api::wire::Employee;
use desktop_egui::app::{DataAnswer, Msg};
use egui::accesskit::Role;
use egui::{Key, Modifiers};
use egui_kittest::kittest::Queryable;

use crate::helpers::*;

fn company(role: &str) -> App {
    let mut app = offline_app();
    enter_offline(&mut app, "Acme Freight", "someone@acme.example.com", role);
    feed(&mut app, Msg::Data(DataAnswer::Employees(Ok(Vec::new()))));
    app
}

/// The control labelled `label` (not the label itself).
fn control<'a>(app: &'a App, label: &'a str, role: Role) -> egui_kittest::Node<'a> {
    app.get_by(move |n| n.label().as_deref() == Some(label) && n.role() == role)
}

#[test]
fn each_filter_label_stands_before_its_control() {
    let app = company("manager");
    for (label, role) in [("Search", Role::TextInput), ("Department", Role::ComboBox), ("Status", Role::ComboBox)] {
        // A label's text is its node's value.
        let text = app.get_by(move |n| n.value().as_deref() == Some(label) && n.role() == Role::Label).rect();
        let field = control(&app, label, role).rect();
        assert!(text.max.x <= field.min.x, "{label}: the label ({text:?}) is left of its control ({field:?})");
        assert!((text.center().y - field.center().y).abs() < field.height(), "{label}: on the same line");
    }
}

#[test]
fn an_empty_company_says_so_and_a_filter_with_no_match_offers_to_clear_it() {
    let mut app = company("manager");
    wait_for_label(&mut app, "No employees yet.");
    assert!(app.query_by_label_contains("Ctrl+N").is_some(), "how to add the first");

    let ada = Employee {
        id: uuid::Uuid::from_u128(1),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        email: "ada@acme.example.com".into(),
        version: 1,
        ..Employee::default()
    };
    feed(&mut app, Msg::Data(DataAnswer::Employees(Ok(vec![ada]))));
    wait_for_label(&mut app, "Lovelace");
    type_into(&mut app, "Search", "nobody");
    wait_for_label(&mut app, "No employee matches the search and filters.");
    click(&mut app, "Clear search and filters");
    wait_for_label(&mut app, "Lovelace");
}

#[test]
fn ctrl_n_opens_the_new_employee_form_and_esc_closes_it() {
    let mut app = company("manager");
    app.key_press_modifiers(Modifiers::COMMAND, Key::N);
    wait_for_label(&mut app, "New employee");
    // Typing goes into the form, and Esc still closes it.
    type_into(&mut app, "First name", "Ada");
    app.key_press(Key::Escape);
    app.step();
    app.step();
    assert!(!shown(&app, "New employee"), "Esc closed the form");

    // Ctrl+F puts the cursor in the search field.
    app.key_press_modifiers(Modifiers::COMMAND, Key::F);
    app.step();
    app.step();
    assert!(field(&app, "Search").is_focused());
}

#[test]
fn staff_get_no_form_from_ctrl_n() {
    let mut app = company("staff");
    app.key_press_modifiers(Modifiers::COMMAND, Key::N);
    app.step();
    app.step();
    assert!(!shown(&app, "New employee"));
    assert!(!shown(&app, "Add the first one with \"Add employee\" (Ctrl+N)."), "staff are not told to add");
}

#[test]
fn ctrl_s_saves_the_form_and_the_hire_date_can_be_picked_from_a_calendar() {
    let mut app = company("manager");
    app.key_press_modifiers(Modifiers::COMMAND, Key::N);
    wait_for_label(&mut app, "New employee");
    replace_text(&mut app, "Hire date (YYYY-MM-DD)", "2024-01-15");
    // The calendar beside the field: one day on, then its own Save.
    click(&mut app, "2024-01-15");
    click(&mut app, ">");
    app.query_all_by_label("Save").last().expect("the calendar's Save").click();
    app.step();
    app.step();
    assert_eq!(field(&app, "Hire date (YYYY-MM-DD)").value().as_deref(), Some("2024-01-16"));

    // Ctrl+S checks and saves like the Save button: here, the missing names first.
    app.key_press_modifiers(Modifiers::COMMAND, Key::S);
    wait_for(&mut app, "the two names' errors", |app| app.query_all_by_label("Required.").count() == 2);
    type_into(&mut app, "First name", "Ada");
    type_into(&mut app, "Last name", "Lovelace");
    type_into(&mut app, "Work e-mail", "ada@acme.example.com");
    app.key_press_modifiers(Modifiers::COMMAND, Key::S);
    // Offline, the save is sent and fails as unreachable: the form says so and stays.
    wait_for(&mut app, "the save to be sent", |app| app.query_all_by_label("Required.").count() == 0);
    assert!(shown(&app, "New employee"));
}

#[test]
fn the_department_filter_is_a_searchable_picker() {
    let mut app = company("manager");
    let engineering = uuid::Uuid::from_u128(10);
    let departments = ["Sales", "Engineering"]
        .iter()
        .enumerate()
        .map(|(i, name)| desktop_egui::api::wire::Department {
            id: if i == 1 { engineering } else { uuid::Uuid::from_u128(11) },
            name: (*name).into(),
            ..Default::default()
        })
        .collect();
    feed(&mut app, Msg::Data(DataAnswer::Departments(Ok(departments))));
    let person = |n: u128, last: &str, department| Employee {
        id: uuid::Uuid::from_u128(n),
        first_name: "A".into(),
        last_name: last.into(),
        email: format!("{n}@acme.example.com"),
        department_id: department,
        version: 1,
        ..Employee::default()
    };
    let people = vec![person(1, "Babbage", Some(engineering)), person(2, "Seller", None)];
    feed(&mut app, Msg::Data(DataAnswer::Employees(Ok(people))));
    wait_for_label(&mut app, "Seller");

    control(&app, "Department", Role::ComboBox).click();
    app.step();
    app.step();
    type_into(&mut app, "Department filter", "eng");
    app.key_press(Key::Enter);
    app.step();
    app.step();
    assert!(shown(&app, "Babbage") && !shown(&app, "Seller"), "only Engineering");
    assert!(shown(&app, "1 of 2 employees"));
}

#[test]
fn with_the_form_open_the_table_scrolls_sideways_to_its_last_columns() {
    let mut app = company("manager");
    app.set_size(egui::vec2(1000.0, 700.0));
    let ada =
        Employee { id: uuid::Uuid::from_u128(1), last_name: "Lovelace".into(), version: 1, ..Employee::default() };
    feed(&mut app, Msg::Data(DataAnswer::Employees(Ok(vec![ada]))));
    app.key_press_modifiers(Modifiers::COMMAND, Key::N);
    wait_for_label(&mut app, "New employee");
    let form_left = app.get_by_label("New employee").rect().min.x;
    let header =
        |app: &App| app.get_by(|n| n.label().as_deref() == Some("Hire date") && n.role() == Role::Button).rect();
    assert!(header(&app).min.x > form_left, "the last column starts behind the form");
    app.get_by(|n| n.label().as_deref() == Some("Hire date") && n.role() == Role::Button).scroll_to_me();
    app.run_steps(10);
    assert!(header(&app).max.x <= form_left, "scrolled into sight: {:?} vs {form_left}", header(&app));
}

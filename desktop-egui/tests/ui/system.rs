//! The platform's switches as the app sees them: the maintenance dialog appears and clears by
//! itself; a client below the minimum version gets the update-required screen (from the status
//! check, and from a data call's 426).

use egui_kittest::kittest::Queryable;

use crate::helpers::*;

#[test]
fn the_maintenance_dialog_appears_and_clears_by_itself() {
    let stack = Stack::start();
    let company = stack.signup(&unique("maint-"));
    let mut app = stack.app();
    sign_in(&mut app, &company);

    stack.set_maintenance(true, "Upgrading the database, back at 18:00");
    wait_for_label(&mut app, "Maintenance in progress");
    assert!(app.query_by_label("Upgrading the database, back at 18:00").is_some());

    stack.set_maintenance(false, "");
    wait_for(&mut app, "the dialog to clear", |app| app.query_by_label("Maintenance in progress").is_none());
    assert_eq!(app.state().screen.name(), "employees");
    assert!(app.state().maintenance.is_none());
}

#[test]
fn maintenance_at_sign_in_blocks_until_it_ends_then_loads() {
    let stack = Stack::start();
    let company = stack.signup(&unique("maint2-"));
    stack.add_employee(&company, "Grace", "Hopper");
    stack.set_maintenance(true, "Short break");
    let mut app = stack.app();
    wait_for_label_containing(&mut app, "Connected to NexaCore");
    wait_for_label_containing(&mut app, "The platform is in maintenance");
    type_into(&mut app, "E-mail", &company.email);
    type_into(&mut app, "Password", PASSWORD);
    click(&mut app, "Sign in");
    wait_for_label(&mut app, "Maintenance in progress");
    assert!(app.query_by_label("Hopper").is_none(), "no data call during maintenance");
    stack.set_maintenance(false, "");
    wait_for_label(&mut app, "Hopper");
}

#[test]
fn a_client_below_the_minimum_version_sees_the_update_required_screen_as_soon_as_it_is_raised() {
    let stack = Stack::start();
    let company = stack.signup(&unique("upgrade-"));
    let mut app = stack.app();
    sign_in(&mut app, &company);

    // An edit in progress when the minimum is raised.
    click(&mut app, "Add employee");
    type_into(&mut app, "First name", "Unsaved");

    // Raised while the app runs: the live socket says so at once, before any call.
    stack.set_client_versions("9.0.0", "9.1.0");
    wait_for_label(&mut app, "Update required");
    wait_for_label_containing(&mut app, "Your unsaved edit was kept");
    assert!(app.query_by_label_contains("needs version 9.0.0").is_some());
    assert!(stack.employees(&company).is_empty());

    // A fresh start sees it at the connection check already.
    let mut fresh = stack.app();
    wait_for_label(&mut fresh, "Update required");

    // Once this version is served again ("updated"), signing in brings the edit back.
    stack.set_client_versions("0.0.0", "0.1.0");
    click(&mut app, "Back to sign-in");
    wait_for_label_containing(&mut app, "Connected to NexaCore");
    // The address is remembered from before.
    assert_eq!(field(&app, "E-mail").value().as_deref(), Some(company.email.as_str()));
    type_into(&mut app, "Password", PASSWORD);
    click(&mut app, "Sign in");
    wait_for_label(&mut app, "Your unsaved edit from before the update is back.");
    assert_eq!(field(&app, "First name").value().as_deref(), Some("Unsaved"));
}

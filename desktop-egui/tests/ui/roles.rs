//! The UI follows the role in the token: staff see no add/edit/delete controls, managers
//! cannot delete, only admins and managers see People; a role the server changes takes
//! effect when the app signs in again, without a restart. Driven by answers fed to the app
//! (no platform needed).

use desktop_egui::api::wire::{Employee, LoginOutcome, LoginToken, TenantSummary};
use desktop_egui::app::{DataAnswer, Msg};
use desktop_egui::live::{LiveStatus, LiveUpdate};

use egui_kittest::kittest::NodeT;

use crate::helpers::*;

fn grace() -> Employee {
    Employee {
        id: uuid::Uuid::from_u128(7),
        first_name: "Grace".into(),
        last_name: "Hopper".into(),
        email: "grace@acme.example.com".into(),
        version: 1,
        ..Employee::default()
    }
}

fn company_with_grace(role: &str) -> App {
    let mut app = offline_app();
    enter_offline(&mut app, "Acme Freight", "someone@acme.example.com", role);
    feed(&mut app, Msg::Data(DataAnswer::Employees(Ok(vec![grace()]))));
    wait_for_label(&mut app, "Hopper");
    app
}

#[test]
fn staff_see_employees_without_any_add_edit_or_delete_control() {
    let mut app = company_with_grace("staff");
    assert!(!shown(&app, "Add employee"));
    assert!(!shown(&app, "People"), "staff have no People page");
    assert!(shown(&app, "Employees") && shown(&app, "Departments & accounts"));

    click(&mut app, "Hopper");
    wait_for_label(&mut app, "Employee");
    assert!(!shown(&app, "Edit employee"));
    for control in ["Save", "Delete", "Create department"] {
        assert!(!shown(&app, control), "{control} is hidden from staff");
    }
    assert_eq!(field(&app, "First name").value().as_deref(), Some("Grace"), "the record is shown");
    assert!(field(&app, "First name").accesskit_node().is_disabled(), "and cannot be typed into");
    assert!(shown(&app, "Close"));
}

#[test]
fn managers_add_and_edit_but_cannot_delete() {
    let mut app = company_with_grace("manager");
    assert!(shown(&app, "Add employee"));
    assert!(shown(&app, "People"), "managers read the member list");
    click(&mut app, "Hopper");
    wait_for_label(&mut app, "Edit employee");
    assert!(shown(&app, "Save"));
    assert!(!shown(&app, "Delete"));
}

#[test]
fn admins_get_every_control_and_the_header_names_the_company_not_its_slug() {
    let mut app = company_with_grace("admin");
    assert!(shown(&app, "Acme Freight"));
    assert!(!shown(&app, "acme"));
    click(&mut app, "Hopper");
    wait_for_label(&mut app, "Edit employee");
    assert!(shown(&app, "Save") && shown(&app, "Delete"));
}

#[test]
fn an_unknown_role_in_the_token_grants_the_least() {
    let app = company_with_grace("superuser");
    assert!(!shown(&app, "Add employee"));
}

#[test]
fn the_navigation_opens_departments_and_accounts() {
    let mut app = company_with_grace("staff");
    click(&mut app, "Departments & accounts");
    wait_for_label(&mut app, "Chart of accounts");
    assert_eq!(app.state().screen.name(), "ledger");
    // The call went to a server that is not there: said on the page, not swallowed.
    wait_for_label_containing(&mut app, "Could not load the accounts");
    let accounts = vec![desktop_egui::api::wire::Account {
        code: "1200".into(),
        name: "Receivables".into(),
        account_type: "asset".into(),
        ..Default::default()
    }];
    feed(&mut app, Msg::Data(DataAnswer::Accounts(Ok(accounts))));
    wait_for_label(&mut app, "Receivables");
    click(&mut app, "Employees");
    wait_for_label(&mut app, "Hopper");
}

#[test]
fn withdrawn_access_asks_to_sign_in_again_and_the_new_role_applies_without_a_restart() {
    let mut app = company_with_grace("admin");
    assert!(shown(&app, "Add employee"));
    // The router closes the live socket with 4001 long before the token runs out.
    feed(&mut app, Msg::Live(LiveUpdate::Status(LiveStatus::NeedsSignIn { token: 0 })));
    wait_for_label(&mut app, "Your access to Acme Freight changed; sign in again.");
    assert!(shown(&app, "Offline: sign in again"));

    // Signing in again answers a token with the role the admin gave: staff.
    let token = LoginToken {
        access_token: "a.new.token".into(),
        expires_in: 900,
        role: "staff".into(),
        tenant: TenantSummary { slug: "acme".into(), name: "Acme Freight".into(), ..Default::default() },
        api_url: app.state().session.as_ref().unwrap().api_url.clone(),
        ws_url: "ws://127.0.0.1:9/ws".into(),
        ..Default::default()
    };
    let email = "someone@acme.example.com".to_owned();
    feed(&mut app, Msg::Login { reauth: true, email, result: Ok(LoginOutcome::Signed(token)) });
    wait_for(&mut app, "the dialog to close", |app| app.state().reauth.is_none());
    assert!(!shown(&app, "Add employee"), "staff now");
    assert!(!shown(&app, "People"));
    assert!(shown(&app, "Hopper"), "the screen beneath stayed");
}

#[test]
fn a_refusal_at_the_tokens_expiry_reads_as_an_expired_session() {
    let mut app = company_with_grace("admin");
    app.state_mut().session.as_mut().unwrap().expires_at = std::time::Instant::now();
    feed(&mut app, Msg::Live(LiveUpdate::Status(LiveStatus::NeedsSignIn { token: 0 })));
    wait_for_label(&mut app, "Your session has expired.");
}

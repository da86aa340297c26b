//! The user menu's "Change password": checks before the call, the server's refusal at the
//! field, and signing in again with the new password afterwards (its old token is refused).

use desktop_egui::api::ApiError;
use desktop_egui::api::wire::{ErrorBody, LoginOutcome, LoginToken, TenantSummary};
use desktop_egui::app::Msg;

use egui_kittest::kittest::Queryable;

use crate::helpers::*;

const EMAIL: &str = "ada@acme.example.com";

fn dialog() -> App {
    let mut app = offline_app();
    enter_offline(&mut app, "Acme Freight", EMAIL, "staff");
    click(&mut app, EMAIL);
    click(&mut app, "Change password…");
    wait_for_label(&mut app, "Current password");
    app
}

#[test]
fn changing_the_password_checks_the_fields_and_shows_a_wrong_current_password_at_its_field() {
    let mut app = dialog();
    click(&mut app, "Save new password");
    wait_for_label(&mut app, "Enter your current password.");
    assert!(app.query_all_by_label_contains("at least 12 characters").next().is_some());

    type_into(&mut app, "Current password", "Old&Secret123");
    type_into(&mut app, "New password", PASSWORD);
    assert!(shown(&app, "Strength: strong"));
    type_into(&mut app, "Confirm new password", PASSWORD);
    click(&mut app, "Save new password");
    // The dialog's own call must have failed before the fed answer: the employees page's
    // failed load shows the same words, and a late real answer would overwrite the fed one.
    wait_for(&mut app, "the dialog's call to fail", |app| {
        workspace(app)
            .and_then(|w| w.password.as_ref())
            .is_some_and(|d| !d.busy && d.general.as_deref().is_some_and(|g| g.contains("cannot reach")))
    });

    let wrong = ApiError::Http { status: 401, body: ErrorBody::new("bad_credentials", "wrong password") };
    feed(&mut app, Msg::PasswordChanged { password: PASSWORD.into(), result: Err(wrong) });
    wait_for_label(&mut app, "Wrong password.");
    assert!(app.state().reauth.is_none(), "a wrong current password is not a lost session");

    click(&mut app, "Cancel");
    assert!(!shown(&app, "Current password"));
}

#[test]
fn after_a_password_change_the_app_signs_in_again_with_the_new_password() {
    let mut app = dialog();
    feed(&mut app, Msg::PasswordChanged { password: PASSWORD.into(), result: Ok(()) });
    // The app signed in again by itself; here nobody answers, so it asks, naming why.
    wait_for_label(&mut app, "Your password was changed: sign in with the new one.");
    assert!(!shown(&app, "Current password"), "the dialog made way");

    let token = LoginToken {
        access_token: "n.e.w".into(),
        expires_in: 900,
        role: "staff".into(),
        tenant: TenantSummary { slug: "acme".into(), name: "Acme Freight".into(), ..Default::default() },
        api_url: app.state().settings().server_url.clone(),
        ws_url: "ws://127.0.0.1:9/ws".into(),
        ..Default::default()
    };
    feed(&mut app, Msg::Login { reauth: true, email: EMAIL.into(), result: Ok(LoginOutcome::Signed(token)) });
    wait_for(&mut app, "the dialog to close", |app| app.state().reauth.is_none());
    assert_eq!(app.state().session.as_ref().unwrap().token, "n.e.w");
}

#[test]
fn copy_diagnostics_puts_the_version_server_and_company_on_the_clipboard() {
    let mut app = offline_app();
    enter_offline(&mut app, "Acme Freight", EMAIL, "staff");
    click(&mut app, EMAIL);
    click(&mut app, "Copy diagnostics");
    wait_for_label(&mut app, "Diagnostics copied to the clipboard.");
    let report = app.state().copied.clone().expect("a report");
    assert!(report.contains(desktop_egui::client_version()), "{report}");
    assert!(report.contains("company: Acme Freight") && report.contains("server: http://127.0.0.1:"), "{report}");
    assert!(!report.contains("eyJ"), "no token in a report");
}

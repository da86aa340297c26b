//! The sign-in screen's other ways in: accepting an invitation (a pasted code or link, a new
//! password with its meter) and "forgot password". Checks before any call, and what the app
//! does with the control plane's answers, fed to it.

use desktop_egui::api::ApiError;
use desktop_egui::api::wire::{ErrorBody, LoginOutcome, LoginToken, TenantSummary};
use desktop_egui::app::{Msg, SignInAnswer};

use egui_kittest::kittest::Queryable;

use crate::helpers::*;

fn accept_form() -> App {
    let mut app = offline_app();
    wait_for_label_containing(&mut app, "Cannot reach the server");
    click(&mut app, "Accept an invitation…");
    wait_for_label(&mut app, "Invitation code or link");
    app
}

#[test]
fn accepting_checks_the_code_name_and_password_before_asking_the_server() {
    let mut app = accept_form();
    click(&mut app, "Accept invitation");
    wait_for_label_containing(&mut app, "Paste the code from the invitation (");
    assert!(shown(&app, "Enter the address the invitation was sent to."));
    assert!(shown(&app, "Enter your name."));

    type_into(&mut app, "Invitation code or link", "nexacore://accept?code=ABCD-EFGH-JKLM-NP2R");
    type_into(&mut app, "Your e-mail", "nina@acme.example.com");
    type_into(&mut app, "Your full name", "Nina New");
    type_into(&mut app, "Choose a password", "short");
    assert!(shown(&app, "Strength: weak"));
    click(&mut app, "Accept invitation");
    wait_for_label_containing(&mut app, "at least 12 characters");
    assert!(
        app.query_all_by_label_contains("Paste the code from the invitation (").next().is_none(),
        "the link was read"
    );

    replace_text(&mut app, "Choose a password", PASSWORD);
    assert!(shown(&app, "Strength: strong"));
    type_into(&mut app, "Confirm new password", "Something&Else1");
    click(&mut app, "Accept invitation");
    wait_for_label(&mut app, "The passwords do not match.");

    replace_text(&mut app, "Confirm new password", PASSWORD);
    click(&mut app, "Accept invitation");
    // Everything checked: the call goes out (and here finds nobody).
    wait_for_label_containing(&mut app, "cannot reach the server");
}

#[test]
fn an_accepted_invitation_lands_signed_in() {
    let mut app = accept_form();
    let token = LoginToken {
        access_token: "t.o.k".into(),
        expires_in: 900,
        role: "staff".into(),
        tenant: TenantSummary { slug: "acme".into(), name: "Acme Freight".into(), ..Default::default() },
        api_url: app.state().settings().server_url.clone(),
        ws_url: "ws://127.0.0.1:9/ws".into(),
        ..Default::default()
    };
    let email = "nina@acme.example.com".to_owned();
    feed(&mut app, Msg::Login { reauth: false, email: email.clone(), result: Ok(LoginOutcome::Signed(token)) });
    wait_for_label(&mut app, "Acme Freight");
    assert_eq!(app.state().screen.name(), "employees");
    assert_eq!(app.state().session.as_ref().unwrap().email, email);
    assert!(!shown(&app, "Add employee"), "an invited staff member reads only");
}

fn refused(error: &str, field: &str, message: &str) -> Msg {
    let body = ErrorBody::on_field(error, field, format!("{field}: {message}"));
    Msg::Login { reauth: false, email: String::new(), result: Err(ApiError::Http { status: 422, body }) }
}

#[test]
fn a_refused_code_is_shown_at_the_code() {
    let mut app = accept_form();
    feed(&mut app, refused("code_expired", "code", "this invitation has expired; ask for a new one"));
    wait_for_label(&mut app, "this invitation has expired; ask for a new one");
    assert_eq!(app.state().screen.name(), "sign-in");
}

#[test]
fn an_address_that_has_an_account_is_asked_for_that_password_instead() {
    let mut app = accept_form();
    feed(&mut app, refused("bad_credentials", "password", "you already have an account: enter its password"));
    wait_for_label(&mut app, "you already have an account: enter its password");
    assert!(shown(&app, "Your password") && !shown(&app, "Choose a password"));
}

#[test]
fn an_existing_account_accepts_with_its_own_password_and_no_meter() {
    let mut app = accept_form();
    click(&mut app, "I already have a NexaCore account");
    assert!(!shown(&app, "Choose a password") && !shown(&app, "Your full name"));
    type_into(&mut app, "Invitation code or link", "ABCD-EFGH-JKLM-NP2R");
    type_into(&mut app, "Your e-mail", "old@hand.example.com");
    type_into(&mut app, "Your password", "whatever-it-is");
    click(&mut app, "Accept invitation");
    wait_for_label_containing(&mut app, "cannot reach the server");
}

#[test]
fn forgot_password_asks_for_a_code_then_sets_a_new_password_and_signs_in() {
    let mut app = offline_app();
    wait_for_label_containing(&mut app, "Cannot reach the server");
    click(&mut app, "Forgot password?");
    wait_for_label(&mut app, "Reset your password");
    click(&mut app, "Send reset code");
    wait_for_label(&mut app, "Enter your e-mail address.");
    type_into(&mut app, "Your e-mail", "nina@acme.example.com");
    click(&mut app, "Send reset code");
    wait_for_label_containing(&mut app, "cannot reach the server");

    feed(&mut app, Msg::SignIn(SignInAnswer::ResetRequested(Ok(()))));
    wait_for_label_containing(&mut app, "If nina@acme.example.com has a NexaCore account");
    click(&mut app, "Set new password");
    wait_for_label(&mut app, "Paste the code from the e-mail.");
    type_into(&mut app, "Reset code", "RSET-CODE-1234-5678");
    type_into(&mut app, "New password", PASSWORD);
    type_into(&mut app, "Confirm new password", PASSWORD);

    let answer = SignInAnswer::ResetConfirmed {
        email: "nina@acme.example.com".into(),
        password: PASSWORD.into(),
        result: Ok(()),
    };
    feed(&mut app, Msg::SignIn(answer));
    // Back on sign-in with the new password, already signing in (here: nobody answers).
    wait_for_label(&mut app, "Your password was changed.");
    assert_eq!(field(&app, "E-mail").value().as_deref(), Some("nina@acme.example.com"));
    wait_for_label_containing(&mut app, "cannot reach the server");
}

#[test]
fn back_to_sign_in_leaves_the_invitation_form() {
    let mut app = accept_form();
    click(&mut app, "Back to sign-in");
    wait_for_label(&mut app, "Forgot password?");
}

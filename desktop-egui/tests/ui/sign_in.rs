//! Sign-in: the connection check, wrong passwords shown at the field, success.

use egui_kittest::kittest::Queryable;

use crate::helpers::*;

#[test]
fn signing_in_opens_the_company_and_a_wrong_password_is_shown_at_the_field() {
    let stack = Stack::start();
    let company = stack.signup(&unique("signin-"));
    let mut app = stack.app();
    wait_for_label_containing(&mut app, "Connected to NexaCore");

    type_into(&mut app, "E-mail", &company.email);
    type_into(&mut app, "Password", "not-the-password");
    click(&mut app, "Sign in");
    wait_for_label(&mut app, "Wrong e-mail or password.");
    assert_eq!(app.state().screen.name(), "sign-in");

    type_into(&mut app, "Password", PASSWORD);
    app.key_press(egui::Key::Enter);
    app.step();
    wait_for_label(&mut app, &company.name);
    wait_for_label(&mut app, "Live");
    assert!(app.query_by_label("0 of 0 employees").is_some());
    assert_eq!(app.state().session.as_ref().unwrap().tenant.slug, company.slug);

    sign_out(&mut app, &company.email);
    wait_for_label(&mut app, "Sign in");
    assert!(app.state().session.is_none(), "sign-out drops the token");
}

#[test]
fn an_unreachable_server_is_reported_by_the_connection_check() {
    let stack = Stack::start();
    let mut app = stack.app();
    wait_for_label_containing(&mut app, "Connected to NexaCore");
    // Replace the address with one nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    replace_text(&mut app, "Server", &format!("http://127.0.0.1:{port}"));
    click(&mut app, "Check connection");
    wait_for_label_containing(&mut app, "Cannot reach the server");
}

#[test]
fn the_routers_address_is_told_apart_from_the_sign_in_servers() {
    let stack = Stack::start();
    let mut app = stack.app();
    wait_for_label_containing(&mut app, "Connected to NexaCore");
    replace_text(&mut app, "Server", &stack.router);
    click(&mut app, "Check connection");
    wait_for_label_containing(&mut app, "This is NexaCore's data server (tenant router)");
    replace_text(&mut app, "Server", &stack.control_plane);
    click(&mut app, "Check connection");
    wait_for_label_containing(&mut app, "Connected to NexaCore");
}

#[test]
fn a_user_of_several_companies_chooses_one() {
    let stack = Stack::start();
    let first = stack.signup(&unique("first-"));
    let second = stack.signup_as(&unique("second-"), &first.email);
    let mut app = stack.app();
    wait_for_label_containing(&mut app, "Connected to NexaCore");
    type_into(&mut app, "E-mail", &first.email);
    type_into(&mut app, "Password", PASSWORD);
    click(&mut app, "Sign in");
    wait_for_label(&mut app, "You belong to several companies. Choose one:");
    click(&mut app, &format!("{} ({})", second.name, second.slug));
    wait_for_label(&mut app, &second.name);
    assert_eq!(app.state().session.as_ref().unwrap().tenant.slug, second.slug);
}

#[test]
fn a_sign_in_that_cannot_be_renewed_asks_for_the_password_and_keeps_unsaved_input() {
    // Tokens live 20 s and the router warns 15 s ahead: the renewal comes within ~5 s of sign-in.
    let stack = Stack::start_with(
        |cp| cp.token_ttl = std::time::Duration::from_secs(20),
        |rc| rc.realtime.token_warning = std::time::Duration::from_secs(15),
    );
    let company = stack.signup(&unique("expiring-"));
    let mut app = stack.app();
    sign_in(&mut app, &company);
    click(&mut app, "Add employee");
    type_into(&mut app, "First name", "Unsaved");
    type_into(&mut app, "Last name", "Person");
    type_into(&mut app, "Work e-mail", "unsaved@example.com");
    // Signed out elsewhere: the sign-in is over, so renewing fails and the app must ask.
    stack.logout(&app.state().session.as_ref().unwrap().refresh_token.clone().unwrap());

    wait_for_label(&mut app, "Your session has ended.");
    type_into(&mut app, "Your password", PASSWORD);
    click(&mut app, "Continue");
    wait_for(&mut app, "the dialog to close", |app| app.state().reauth.is_none());
    assert_eq!(field(&app, "First name").value().as_deref(), Some("Unsaved"), "the form kept its input");
    wait_for_label(&mut app, "Live");
    click(&mut app, "Save");
    wait_for_label(&mut app, "Saved Unsaved Person.");
}

#[test]
fn the_access_token_is_renewed_silently_and_sign_out_ends_the_sign_in() {
    // Tokens that live 61 s: the app renews a minute before they run out, so at once.
    let stack = Stack::start_with(|c| c.token_ttl = std::time::Duration::from_secs(61), |_| {});
    let company = stack.signup(&unique("renew-"));
    let mut app = stack.app();
    sign_in(&mut app, &company);
    let first = app.state().session.as_ref().unwrap().token.clone();
    let refresh = app.state().session.as_ref().unwrap().refresh_token.clone().expect("a refresh token");
    wait_for(&mut app, "a renewed token", |app| app.state().session.as_ref().is_some_and(|s| s.token != first));
    assert!(app.state().reauth.is_none(), "no password asked");
    let renewed = app.state().session.as_ref().unwrap().refresh_token.clone().unwrap();
    assert_ne!(renewed, refresh, "the refresh token rotated");
    // The live connection carries on with the new token (it may reconnect with it).
    wait_for_label(&mut app, "Live");

    sign_out(&mut app, &company.email);
    wait_for_label(&mut app, "Sign in");
    // The sign-out's call runs in the background: follow the sign-in until it has ended (a
    // refresh that wins the race rotates the token, and sign-out then ends the family).
    let started = std::time::Instant::now();
    let mut token = renewed;
    loop {
        match stack.refresh(&token) {
            (401, _) => break,
            (200, Some(next)) => token = next,
            other => panic!("unexpected refresh answer {other:?}"),
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "sign-out ended the sign-in on the server");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_started_again_app_resumes_the_sign_in_kept_in_the_os_keyring_and_sign_out_forgets_it() {
    let stack = Stack::start();
    let company = stack.signup(&unique("keep-"));
    let (dir, settings, credentials) = kept_sign_in_setup();

    let mut first = stack.app_with(&settings, credentials.clone(), None);
    sign_in(&mut first, &company);
    wait_for_label(&mut first, "Live");
    let kept = credentials.load(&stack.control_plane, &company.email).expect("the sign-in is kept");
    assert_eq!(Some(&kept), first.state().session.as_ref().unwrap().refresh_token.as_ref());
    drop(first);
    for file in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(file.unwrap().path()).unwrap_or_default();
        assert!(!text.contains(&kept), "the refresh token is in no plain file");
    }

    // Started again: no password asked, the company opens.
    let mut again = stack.app_with(&settings, credentials.clone(), None);
    wait_for(&mut again, "the company without a password", |app| workspace(app).is_some());
    wait_for_label(&mut again, "Live");
    let rotated = credentials.load(&stack.control_plane, &company.email).expect("still kept");
    assert_ne!(rotated, kept, "the kept token is the rotated one");
    assert_eq!(stack.refresh(&kept).0, 401, "the old one is spent");

    sign_out(&mut again, &company.email);
    wait_for_label(&mut again, "Sign in");
    // keyutils may still find an invalidated key for a moment in the process that invalidated it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while credentials.load(&stack.control_plane, &company.email).is_some() {
        assert!(std::time::Instant::now() < deadline, "sign-out forgets the kept sign-in");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(again);

    // Started a third time: the sign-in form, nothing tried.
    let mut third = stack.app_with(&settings, credentials.clone(), None);
    for _ in 0..20 {
        third.step();
    }
    assert!(workspace(&third).is_none());
    assert!(shown(&third, "Sign in"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_invitation_link_opens_its_form_even_with_a_sign_in_kept_in_the_keyring() {
    let stack = Stack::start();
    let company = stack.signup(&unique("link-"));
    let (dir, settings, credentials) = kept_sign_in_setup();
    let mut first = stack.app_with(&settings, credentials.clone(), None);
    sign_in(&mut first, &company);
    drop(first);
    assert!(credentials.load(&stack.control_plane, &company.email).is_some());

    // Started by the invitation's link: its form is what the user came for.
    let mut app = stack.app_with(&settings, credentials.clone(), Some("nexacore://accept?code=ABCD-EFGH-JKMN-PQRS"));
    for _ in 0..40 {
        app.step();
        std::thread::sleep(std::time::Duration::from_millis(15));
    }
    assert!(workspace(&app).is_none(), "the kept sign-in did not take over");
    assert!(shown(&app, "Paste the code from your invitation e-mail, or the whole link."));
    assert!(credentials.load(&stack.control_plane, &company.email).is_some(), "kept for a later start");
    credentials.forget(&stack.control_plane, &company.email);
    std::fs::remove_dir_all(&dir).ok();
}

/// A settings directory of the test's own and the real OS keyring (keyutils here) under a
/// service name of the test's own: what a window started again finds.
fn kept_sign_in_setup() -> (std::path::PathBuf, std::path::PathBuf, CredentialStore) {
    let dir = std::env::temp_dir().join(unique("nexacore-keyring-test-"));
    std::fs::create_dir_all(&dir).unwrap();
    let settings = dir.join("settings.json");
    (dir, settings, CredentialStore::Keyring { service: unique("nexacore-test-") })
}

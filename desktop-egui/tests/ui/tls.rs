//! The app against a platform that serves HTTPS with a company's own CA: trusted through the
//! settings' extra CA file, sign-in (https) and live updates (wss) work; without it the
//! sign-in screen says the certificate is not trusted.

use crate::helpers::*;

#[test]
fn with_the_company_ca_the_app_signs_in_over_https_and_goes_live_over_wss() {
    let ca = tempfile::tempdir().unwrap();
    let stack = Stack::start_tls(ca.path());
    assert!(stack.control_plane.starts_with("https://") && stack.router.starts_with("https://"));
    let company = stack.signup(&unique("tls-"));
    let mut app = stack.app();
    // Waits for "Live": the socket is open over wss.
    sign_in(&mut app, &company);
    stack.add_employee(&company, "Ada", "Lovelace");
    wait_for_label(&mut app, "Lovelace");
}

#[test]
fn without_the_company_ca_the_app_says_the_certificate_is_not_trusted() {
    let ca = tempfile::tempdir().unwrap();
    let stack = Stack::start_tls(ca.path());
    let mut app = app_without_extra_ca(&stack);
    wait_for_label_containing(&mut app, "certificate is not trusted");
}
